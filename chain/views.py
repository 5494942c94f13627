"""The profile's "ask for migration" forms (POST only; the block is rendered by the
``chain_member_block`` template tag on the member's profile)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from rest_framework import serializers

from chain.api.serializers import decode_blob
from chain.services.migration import migration_challenge, migration_submit
from core.errors import DomainError
from core.views import form_post_only, member_required
from receipts.models import SIGNATURE_BYTES


@form_post_only
@member_required
def migration_request(request: HttpRequest) -> HttpResponse:
    """Issue a migration challenge for the caller; the profile then shows the message to sign."""
    try:
        migration_challenge(member=request.user)
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(
            request, "Sign the challenge below with your BLS key, then paste the signature."
        )
    return redirect("profile")


@form_post_only
@member_required
def migration_sign(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit the caller's signature of challenge ``pk``."""
    try:
        signature = decode_blob(request.POST.get("signature", ""), size=SIGNATURE_BYTES)
        migration_submit(member=request.user, migration_id=pk, signature=signature)
    except serializers.ValidationError as err:
        messages.error(request, f"Signature: {' '.join(str(d) for d in err.detail)}")
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Signature accepted: your reputation is being imported.")
    return redirect("profile")
