"""Placeholder replaced by the API helper."""

from django.http import JsonResponse


def health(request):
    return JsonResponse({"status": "ok"})
