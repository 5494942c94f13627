"""Two-factor authentication: a TOTP authenticator app (RFC 6238) and single-use recovery codes,
on django-otp's devices (``TOTPDevice``, ``StaticDevice``); docs/two-factor.md.

A member has two-factor authentication when they own a *confirmed* TOTP device; their recovery
codes are the tokens of one confirmed static device, each deleted when used. Both are created
and removed together by the services here. A session is *verified* when django-otp's
``OTPMiddleware`` finds the device that checked the second factor in the session
(``request.user.is_verified()``); the login steps in :mod:`core.auth` set it.

Rules (issue 15):

- Anyone with two-factor authentication gives a code (or a recovery code) after the password, at
  the site's login and the admin's.
- With ``settings.PBTS_STAFF_REQUIRE_2FA``, staff (``is_staff`` or superusers) must have it: the
  admin and the staff API answer only a verified session (or the API token of staff who have it).
- Wrong codes are throttled per device (django-otp: after *n* failures the device refuses every
  code for ``2**(n-1)`` seconds) and, at login, count as failed logins for django-axes.
- Only a superuser resets another member's two-factor authentication, and it is audited.

The TOTP secret and the recovery codes are stored as django-otp stores them (the secret must be
readable to check codes); pages show them only to their owner, while setting up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotPermitted

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django_otp.models import Device

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
TOTP_DIGITS = 6


# --- selectors ------------------------------------------------------------------------------


def has_two_factor(user: Any) -> bool:
    """True when ``user`` (a member, or an anonymous user: False) owns a confirmed TOTP device."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return False
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def recovery_codes_left(user: Any) -> int:
    """How many unused recovery codes ``user`` has (0 without two-factor authentication)."""
    return StaticToken.objects.filter(device__user_id=user.pk, device__confirmed=True).count()


def unconfirmed_totp_device(user: Any) -> TOTPDevice | None:
    """The TOTP device ``user`` started to set up and has not confirmed yet, if any."""
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("-id").first()


def staff_must_use_two_factor(user: Any) -> bool:
    """``settings.PBTS_STAFF_REQUIRE_2FA`` is on and ``user`` is logged-in staff (``is_staff`` or
    superuser)."""
    return bool(
        settings.PBTS_STAFF_REQUIRE_2FA
        and getattr(user, "is_authenticated", False)
        and (user.is_staff or user.is_superuser)
    )


def session_is_verified(request: HttpRequest) -> bool:
    """The request's session passed a second factor (django-otp's ``OTPMiddleware``)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def staff_two_factor_satisfied(request: HttpRequest) -> bool:
    """The staff rule of ``PBTS_STAFF_REQUIRE_2FA`` holds for this page request: the setting is
    off, the user is not staff, or the session is verified."""
    return not staff_must_use_two_factor(request.user) or session_is_verified(request)


def normalise_code(code: str) -> str:
    """A code as typed, without spaces and hyphens, in lower case ("ABCD-EFGH" -> "abcdefgh")."""
    return "".join(code.split()).replace("-", "").lower()


def format_recovery_code(code: str) -> str:
    """A recovery code as shown: two groups of four (``"abcdefgh"`` -> ``"abcd-efgh"``)."""
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


# --- checking a code ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """What checking a code found: the device that accepted it (``None``: refused) and, when the
    device is throttled after wrong codes, how many seconds remain (``wait_seconds`` > 0)."""

    device: Device | None
    wait_seconds: int = 0

    @property
    def ok(self) -> bool:
        """The code was accepted."""
        return self.device is not None


def check_code(*, user: Any, code: str) -> CodeCheck:
    """Check a second-factor ``code`` of ``user``: six digits are a TOTP code of their confirmed
    authenticator app (one code is accepted once, drift of one 30-second step), anything else a
    recovery code (consumed when accepted).

    A throttled device refuses every code (``wait_seconds`` says how long); a wrong code makes
    the device's next wait longer (django-otp ``ThrottlingMixin``; the failure count is saved
    even though the caller goes on). Raises nothing; an empty or malformed code is just wrong.
    """
    cleaned = normalise_code(code or "")
    if not cleaned or len(cleaned) > 16:
        return CodeCheck(device=None)
    model: type[Device] = (
        TOTPDevice if cleaned.isdigit() and len(cleaned) == TOTP_DIGITS else StaticDevice
    )
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user_id=user.pk, confirmed=True).first()
        if device is None:
            return CodeCheck(device=None)
        allowed, details = device.verify_is_allowed()
        if not allowed:
            until = (details or {}).get("locked_until")
            wait = (until - timezone.now()).total_seconds() if until else 1
            return CodeCheck(device=None, wait_seconds=max(1, math.ceil(wait)))
        accepted = device.verify_token(cleaned)
    return CodeCheck(device=device if accepted else None)


# --- services -------------------------------------------------------------------------------


@transaction.atomic
def totp_enrol_start(*, user: Any) -> TOTPDevice:
    """Begin setting up an authenticator app: an unconfirmed TOTP device with a new random
    secret (160 bits), replacing any earlier unconfirmed one. Nothing changes at login until
    :func:`totp_enrol_confirm`.

    Raises:
        Conflict: ``user`` already has two-factor authentication (turn it off first).
    """
    if has_two_factor(user):
        raise Conflict("Two-factor authentication is already on.")
    TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


def _new_recovery_codes(user: Any) -> list[str]:
    """Replace ``user``'s recovery codes by :data:`RECOVERY_CODE_COUNT` new ones (8 base32
    characters each, 40 random bits); returns them. Runs in the caller's transaction."""
    StaticDevice.objects.filter(user_id=user.pk).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = StaticToken.random_token()
        if code not in codes:
            codes.append(code)
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def totp_enrol_confirm(*, user: Any, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator app with a ``code`` it shows: two-factor authentication is on
    from now on. Returns the device (the caller marks the session verified with it) and the
    new recovery codes (shown once; stored by django-otp).

    Raises:
        Conflict: two-factor authentication is already on.
        InvalidInput (field ``code``): no setup was started, or the code is wrong.
    """
    cleaned = normalise_code(code or "")
    with transaction.atomic():
        if has_two_factor(user):
            raise Conflict("Two-factor authentication is already on.")
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=False)
            .order_by("-id")
            .first()
        )
        if device is None:
            raise InvalidInput("Start again: no authenticator app is being set up.", field="code")
        # No throttling while setting up: whoever is here sees the key anyway.
        device.throttle_reset(commit=False)
        accepted = cleaned.isdigit() and device.verify_token(cleaned)
    if not accepted:
        raise InvalidInput(
            "That code is not the one your app shows now: check the app's clock and try the "
            "newest code.",
            field="code",
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user_id=user.pk).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        audit_record(actor=user, action="two_factor_enable", target=user)
    return device, codes


@transaction.atomic
def recovery_codes_regenerate(*, user: Any) -> list[str]:
    """Replace ``user``'s recovery codes (the old ones stop working); returns the new ones.

    Raises:
        Conflict: ``user`` has no two-factor authentication.
    """
    if not has_two_factor(user):
        raise Conflict("Two-factor authentication is off: there are no recovery codes.")
    return _new_recovery_codes(user)


def _delete_devices(user: Any) -> int:
    totp, _ = TOTPDevice.objects.filter(user_id=user.pk).delete()
    static, _ = StaticDevice.objects.filter(user_id=user.pk).delete()
    return totp + static


@transaction.atomic
def two_factor_disable(*, user: Any) -> None:
    """Turn the member's own two-factor authentication off (authenticator app and recovery
    codes deleted); audited. The caller checked a current code or the password.

    Raises:
        Conflict: it is already off.
    """
    if not has_two_factor(user):
        raise Conflict("Two-factor authentication is already off.")
    _delete_devices(user)
    audit_record(actor=user, action="two_factor_disable", target=user)


@transaction.atomic
def two_factor_reset(*, member: Any, actor: Any, reason: str = "") -> None:
    """Staff reset of a member's two-factor authentication (a lost phone and lost recovery
    codes): the member logs in with the password alone and, if staff, must set it up again.
    Only a superuser may do it, on someone else; audited with ``reason``.

    Raises:
        NotPermitted: ``actor`` is not an active superuser, or resets their own.
        Conflict: the member has no two-factor authentication.
    """
    if not (actor.is_active and actor.is_superuser):
        raise NotPermitted("Only a superuser may reset two-factor authentication.")
    if actor.pk == member.pk:
        raise NotPermitted("Turn your own two-factor authentication off on your security page.")
    if not has_two_factor(member):
        raise Conflict(f"{member} has no two-factor authentication.")
    _delete_devices(member)
    audit_record(
        actor=actor,
        action="two_factor_reset",
        target=member,
        old={"two_factor_enabled": True},
        new={"two_factor_enabled": False},
        reason=reason,
    )
