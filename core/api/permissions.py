"""API permissions shared by every app."""

from rest_framework.permissions import IsAuthenticated


class IsMemberInGoodStanding(IsAuthenticated):
    """Authenticated and not banned: a ban locks the API as it locks the pages and the tracker."""

    message = "Your account is banned."

    def has_permission(self, request, view) -> bool:
        """Authenticated (DRF) and ``request.user.is_banned`` is false."""
        return super().has_permission(request, view) and not request.user.is_banned


class IsModeratorInGoodStanding(IsMemberInGoodStanding):
    """Staff-only endpoints: an active staff member (``Member.is_moderator``) who is not banned.

    Used instead of DRF's ``IsAdminUser``, which looks at ``is_staff`` alone: a banned
    moderator's token and session stop working for staff endpoints at once.

    With ``PBTS_STAFF_REQUIRE_2FA`` (docs/two-factor.md) staff need two-factor authentication
    here too: a session must have passed the second factor at login; an API token (a script
    cannot type a code) works only while its owner has two-factor authentication set up, so a
    staff token is never a way around the rule."""

    def has_permission(self, request, view) -> bool:
        """In good standing (see :class:`IsMemberInGoodStanding`), active and staff, and the
        two-factor rule for staff holds."""
        if not super().has_permission(request, view):
            return False
        user = request.user
        if not (user.is_active and user.is_moderator):
            self.message = "Staff only."
            return False
        if not staff_api_two_factor_satisfied(request):
            self.message = (
                "Staff need two-factor authentication: set it up on the security page and "
                "log in with a code."
            )
            return False
        return True


def staff_api_two_factor_satisfied(request) -> bool:
    """The ``PBTS_STAFF_REQUIRE_2FA`` rule for a DRF request of staff: off, or a session
    verified by a second factor, or an API token of staff who have two-factor authentication
    (``request.auth`` is the token; ``None`` for session authentication)."""
    from core.two_factor import has_two_factor, session_is_verified, staff_must_use_two_factor

    user = request.user
    if not staff_must_use_two_factor(user):
        return True
    if request.auth is None:
        return session_is_verified(request._request)
    return has_two_factor(user)
