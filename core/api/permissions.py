"""API permissions shared by every app."""

from rest_framework.permissions import IsAuthenticated


class IsMemberInGoodStanding(IsAuthenticated):
    """Authenticated and not banned: a ban locks the API as it locks the pages and the tracker."""

    message = "Your account is banned."

    def has_permission(self, request, view) -> bool:
        """Authenticated (DRF) and ``request.user.is_banned`` is false."""
        return super().has_permission(request, view) and not request.user.is_banned
