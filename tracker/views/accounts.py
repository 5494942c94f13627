"""Member pages: profiles, invites, security (passkey and API token), registration, login."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from core.auth import TwoStepLoginMixin
from core.errors import DomainError
from core.two_factor import has_two_factor, recovery_codes_left
from core.views import form_post_only, member_required
from reputation.models import Ledger
from reputation.policy import ratio
from reputation.selectors import ledger_site_figures
from tracker import announce_runtime
from tracker.forms import (
    ConfirmForm,
    InviteCreateForm,
    LoginForm,
    RegisterForm,
    add_domain_error,
)
from tracker.models import Invite, Member
from tracker.selectors import member_announce_url
from tracker.services import members

PASSKEY_CONFIRM = "I understand: my torrent clients must use the new announce URL."
TOKEN_CONFIRM = "I understand: scripts using the old API token stop working."


def member_peer_counts(member: Member) -> tuple[int, int]:
    """Return ``(seeding, leeching)``: how many torrents the member is seeding and leeching
    now, as the peer store sees them. Pages read the counts only through this function."""
    return announce_runtime.peer_store().member_counts(member.pk)


def ratio_label(uploaded: int, downloaded: int) -> str:
    """A share ratio as members read it: two decimals, "∞" when only uploaded, "—" when idle."""
    value = ratio(uploaded, downloaded)
    if value is None:
        return "∞" if uploaded > 0 else "—"
    return f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class MemberStats:
    """A member's transfer figures (bytes) and peer counts as the pages show them."""

    uploaded: int
    downloaded: int
    verified_uploaded: int
    verified_downloaded: int
    seeding: int
    leeching: int
    bonus_uploaded: int = 0
    site_uploaded: int = 0
    site_downloaded: int = 0

    @property
    def ratio(self) -> str:
        """The ratio label (see :func:`ratio_label`) of the site's rule's figures
        (``reputation.policy.site_figures``: bonus upload and imported figures included)."""
        return ratio_label(self.site_uploaded, self.site_downloaded)


def member_stats(member: Member) -> MemberStats:
    """Read the member's ledger (zeros when it has none) and peer counts."""
    ledger = Ledger.objects.filter(member=member).first() or Ledger(member=member)
    seeding, leeching = member_peer_counts(member)
    site_up, site_down = ledger_site_figures(ledger)
    return MemberStats(
        uploaded=ledger.uploaded,
        downloaded=ledger.downloaded,
        verified_uploaded=ledger.verified_uploaded,
        verified_downloaded=ledger.verified_downloaded,
        seeding=seeding,
        leeching=leeching,
        bonus_uploaded=ledger.bonus_uploaded,
        site_uploaded=site_up,
        site_downloaded=site_down,
    )


class LoginView(TwoStepLoginMixin, auth_views.LoginView):
    """Django's login view with :class:`~tracker.forms.LoginForm` (banned members refused);
    members already logged in are sent home. Members with two-factor authentication give a
    code next (``login_verify``); staff who must have it are sent to set it up
    (:class:`core.auth.TwoStepLoginMixin`)."""

    form_class = LoginForm
    redirect_authenticated_user = True


def _profile(request: HttpRequest, member: Member) -> HttpResponse:
    viewer = request.user
    is_self = viewer.pk == member.pk
    context = {
        "member": member,
        "is_self": is_self,
        "show_private": is_self or viewer.is_moderator,
        "show_staff": viewer.is_moderator,
        "stats": member_stats(member),
        "announce_url": member_announce_url(member) if is_self else "",
        "invitee_count": member.invitees.count(),
    }
    return render(request, "tracker/member_detail.html", context)


@member_required
def profile(request: HttpRequest) -> HttpResponse:
    """The member's own profile, with their personal announce URL."""
    member = Member.objects.select_related("invited_by").get(pk=request.user.pk)
    return _profile(request, member)


@member_required
def member_detail(request: HttpRequest, username: str) -> HttpResponse:
    """Another member's profile; staff also see e-mail, standing and verified figures."""
    member = get_object_or_404(Member.objects.select_related("invited_by"), username=username)
    if member.pk == request.user.pk:
        return redirect("profile")
    return _profile(request, member)


def _invite_status(invite: Invite, now) -> str:
    if invite.used_by_id is not None or invite.used_at is not None:
        return "used"
    if invite.is_revoked:
        return "revoked"
    if invite.expires_at <= now:
        return "expired"
    return "active"


@member_required
def invite_list(request: HttpRequest) -> HttpResponse:
    """List the member's invites and invitees; POST creates an invite (``invite_create``)."""
    form = InviteCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            invite = members.invite_create(inviter=request.user, email=form.cleaned_data["email"])
        except DomainError as err:
            add_domain_error(form, err)
        else:
            messages.success(
                request, f"Invite created; it expires on {invite.expires_at:%Y-%m-%d %H:%M} UTC."
            )
            return redirect("invite_list")
    member = request.user
    now = timezone.now()
    register_url = request.build_absolute_uri(reverse("register"))
    invites = [
        {
            "invite": invite,
            "status": _invite_status(invite, now),
            "link": f"{register_url}?{urlencode({'invite': invite.code})}",
        }
        for invite in Invite.objects.filter(inviter=member).select_related("used_by")
    ]
    invitees = Member.objects.filter(invited_by=member).order_by("-date_joined")
    context = {
        "form": form,
        "invites": invites,
        "invitees": invitees,
        "unlimited": member.is_moderator,
        "invites_left": member.invites_left,
    }
    return render(request, "tracker/invite_list.html", context)


@member_required
@form_post_only
def invite_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one unused invite (``invite_revoke``); refusals come back as a message."""
    invite = get_object_or_404(Invite, pk=pk)
    try:
        members.invite_revoke(invite=invite, actor=request.user)
    except DomainError as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Invite revoked.")
    return redirect("invite_list")


def _security_page(
    request: HttpRequest,
    *,
    passkey_form: ConfirmForm | None = None,
    token_form: ConfirmForm | None = None,
    status: int = 200,
) -> HttpResponse:
    member = request.user
    context = {
        "announce_url": member_announce_url(member),
        "api_token": members.member_api_token(member),
        "passkey_form": passkey_form or ConfirmForm(label=PASSKEY_CONFIRM, prefix="passkey"),
        "token_form": token_form or ConfirmForm(label=TOKEN_CONFIRM, prefix="token"),
        "two_factor_enabled": has_two_factor(member),
        "recovery_codes_left": recovery_codes_left(member),
    }
    return render(request, "tracker/member_security.html", context, status=status)


@member_required
def security(request: HttpRequest) -> HttpResponse:
    """Passkey and API token: show them to their owner, with the reset forms."""
    return _security_page(request)


@member_required
@form_post_only
def passkey_reset(request: HttpRequest) -> HttpResponse:
    """Reset the member's own passkey once confirmed; the old one stops working at once."""
    form = ConfirmForm(request.POST, label=PASSKEY_CONFIRM, prefix="passkey")
    if not form.is_valid():
        return _security_page(request, passkey_form=form)
    try:
        members.passkey_reset(member=request.user, actor=request.user)
    except DomainError as err:
        add_domain_error(form, err)
        return _security_page(request, passkey_form=form)
    messages.success(
        request,
        "Your passkey was reset. Download your .torrent files again (or change the announce "
        "URL in your client): the old passkey no longer works.",
    )
    return redirect("security")


@member_required
@form_post_only
def api_token_reset(request: HttpRequest) -> HttpResponse:
    """Replace the member's own API token once confirmed."""
    form = ConfirmForm(request.POST, label=TOKEN_CONFIRM, prefix="token")
    if not form.is_valid():
        return _security_page(request, token_form=form)
    try:
        members.api_token_reset(member=request.user)
    except DomainError as err:
        add_domain_error(form, err)
        return _security_page(request, token_form=form)
    messages.success(request, "Your API token was replaced; the old one no longer works.")
    return redirect("security")


def register(request: HttpRequest) -> HttpResponse:
    """Invite-only registration (``member_register``); the new member is logged in."""
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST":
        form = RegisterForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = members.member_register(
                    invite_code=data["invite_code"],
                    username=data["username"],
                    email=data["email"],
                    password=data["password"],
                )
            except DomainError as err:
                add_domain_error(form, err)
            else:
                login(request, member, backend=settings.AUTHENTICATION_BACKENDS[0])
                messages.success(request, f"Welcome, {member.username}!")
                return redirect("home")
    else:
        form = RegisterForm(initial={"invite_code": request.GET.get("invite", "")})
    return render(request, "tracker/member_register.html", {"form": form})
