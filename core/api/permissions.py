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
    moderator's token and session stop working for staff endpoints at once."""

    def has_permission(self, request, view) -> bool:
        """In good standing (see :class:`IsMemberInGoodStanding`), active and staff."""
        if not super().has_permission(request, view):
            return False
        user = request.user
        if not (user.is_active and user.is_moderator):
            self.message = "Staff only."
            return False
        return True
