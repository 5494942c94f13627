"""Markdown descriptions and site pages (issue 14): rendered once when saved, linear time, a
length cap in the service, the form and the API, and no remote image fetched by a viewer."""

from __future__ import annotations

import importlib
import io
import time

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import InvalidInput
from tracker import markup
from tracker.markup import is_own_url, render_markdown
from tracker.models import SitePage, Torrent
from tracker.services.members import member_api_token
from tracker.services.torrents import torrent_update, torrent_upload
from tracker.tests.factories import CategoryFactory, MemberFactory
from tracker.tests.torrents import make_torrent_bytes, upload_torrent

pytestmark = pytest.mark.django_db

CAP = settings.PBTS_DESCRIPTION_MAX_CHARS
REMOTE = "http://tracker-spy.example/pixel.png"
OTHER_SCHEME = "http" if settings.PBTS_BASE_URL.startswith("https:") else "https"


def worst_inputs(size: int) -> dict[str, str]:
    """The slowest inputs found for markdown-it-py (``bench/markdown.py`` times them), each
    ``size`` characters at most."""
    half = size // 2
    return {
        "nested brackets": "[" * half + "]" * half,
        "image openers": "![" * half,
        "unclosed links": "[a](" * (size // 4),
        "emphasis runs": "*a_" * (size // 3),
        "nested lists": "".join("  " * i + "- a\n" for i in range(size // 200)),
        "nested quotes": ">" * size,
        "link chain": "[a](b)" * (size // 6),
        "table": ("|a" * 50 + "|\n" + "|-" * 50 + "|\n" + "|a" * 50 + "|\n" * (size // 101))[:size],
    }


@pytest.fixture
def member(client):
    member = MemberFactory()
    client.force_login(member)
    return member


def _api(member) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    return client


def _refuse_to_render(monkeypatch) -> None:
    """Make any Markdown rendering fail loudly: reads must serve the stored HTML."""

    def boom(*args, **kwargs):
        raise AssertionError("Markdown rendered during a request")

    monkeypatch.setattr(markup._PARSER, "render", boom)


# --- Rendered once, when saved ---------------------------------------------------------


def test_the_bracket_attack_is_rendered_once_at_upload_and_never_on_reads(
    client, member, monkeypatch
):
    """The issue's attack: 10,000 '[' then 10,000 ']' (25 s to upload, 42 s per API GET with
    Python-Markdown). Now the upload renders it once in bounded time and reads never render."""
    attack = "[" * (CAP // 2) + "]" * (CAP // 2)
    started = time.perf_counter()
    torrent = upload_torrent(member, description=attack)
    assert time.perf_counter() - started < 5
    stored = Torrent.objects.get(pk=torrent.pk).description_html
    assert stored == f"<p>{attack}</p>"

    _refuse_to_render(monkeypatch)
    page = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert page.status_code == 200 and stored in page.content.decode()
    detail = _api(member).get(f"/api/v1/torrents/{torrent.pk}/")
    assert detail.status_code == 200
    assert detail.json()["description_html"] == stored


@pytest.mark.parametrize("name", list(worst_inputs(CAP)))
def test_worst_inputs_at_the_cap_render_in_bounded_time(name):
    """Each of the worst inputs found renders in well under a second on a quiet machine
    (bench/markdown.py); 2 s leaves room for a loaded test host, far below the 25 s before."""
    text = worst_inputs(CAP)[name]
    assert len(text) <= CAP
    started = time.perf_counter()
    render_markdown(text)
    assert time.perf_counter() - started < 2.0, name


def test_edit_renders_the_new_description(member):
    torrent = upload_torrent(member, description="*old*")
    assert torrent.description_html == "<p><em>old</em></p>"
    torrent_update(torrent=torrent, actor=member, description="**new**")
    assert Torrent.objects.get(pk=torrent.pk).description_html == "<p><strong>new</strong></p>"
    torrent_update(torrent=torrent, actor=member, name="Renamed")  # description untouched
    assert Torrent.objects.get(pk=torrent.pk).description_html == "<p><strong>new</strong></p>"


def test_site_pages_are_rendered_when_saved_and_served_as_stored(client, member, monkeypatch):
    page = SitePage.objects.create(slug="faq", title="FAQ", body="**bold** <script>x</script>")
    assert page.body_html == "<p><strong>bold</strong> </p>"
    page.body = "*changed*"
    page.save(update_fields=["body", "updated_at"])  # the seed command's overwrite path
    assert SitePage.objects.get(pk=page.pk).body_html == "<p><em>changed</em></p>"

    _refuse_to_render(monkeypatch)
    body = client.get(reverse("site_page", args=["faq"])).content.decode()
    assert "<em>changed</em>" in body


def test_seeded_pages_are_rendered():
    call_command("seed", verbosity=0)
    for page in SitePage.objects.all():
        assert page.body_html.startswith("<"), page.slug


def test_data_migration_renders_existing_rows(member):
    torrent = upload_torrent(member, description="# Title")
    page = SitePage.objects.create(slug="rules", title="Rules", body="1. one")
    Torrent.objects.filter(pk=torrent.pk).update(description_html="")
    SitePage.objects.filter(pk=page.pk).update(body_html="")
    migration = importlib.import_module("tracker.migrations.0006_rendered_markdown")
    migration.render_existing(apps, None)
    assert Torrent.objects.get(pk=torrent.pk).description_html == "<h1>Title</h1>"
    assert SitePage.objects.get(pk=page.pk).body_html == "<ol>\n<li>one</li>\n</ol>"


# --- The length cap ----------------------------------------------------------------------


def test_service_refuses_a_description_over_the_cap(member):
    with pytest.raises(InvalidInput) as err:
        torrent_upload(uploader=member, data=make_torrent_bytes(), description="x" * (CAP + 1))
    assert err.value.field == "description"
    assert f"at most {CAP:,}" in err.value.message
    assert not Torrent.objects.exists()
    torrent = upload_torrent(member, description="x" * CAP)
    with pytest.raises(InvalidInput) as err:
        torrent_update(torrent=torrent, actor=member, description="y" * (CAP + 1))
    assert err.value.field == "description"


def test_the_cap_is_a_setting_and_line_breaks_count_one(member, settings):
    settings.PBTS_DESCRIPTION_MAX_CHARS = 10
    torrent = torrent_upload(uploader=member, data=make_torrent_bytes(), description="a\r\nb\rc")
    assert torrent.description == "a\nb\nc"
    with pytest.raises(InvalidInput):
        torrent_upload(uploader=member, data=make_torrent_bytes(), description="a" * 11)


def test_upload_form_refuses_a_long_description_and_counts_crlf_once(client, member):
    category = CategoryFactory()

    def post(description: str):
        return client.post(
            reverse("torrent_upload"),
            {
                "file": SimpleUploadedFile("t.torrent", make_torrent_bytes()),
                "category": category.pk,
                "description": description,
            },
        )

    response = post("x" * (CAP + 1))
    assert response.status_code == 200
    assert "description" in response.context["form"].errors
    assert not Torrent.objects.exists()
    assert f'maxlength="{CAP}"' in response.content.decode()
    # A browser sends CRLF; a text the textarea's maxlength accepted is accepted here too.
    lines = "a\r\n" * (CAP // 2)
    assert len(lines) > CAP and len(lines.replace("\r\n", "\n")) <= CAP
    assert post(lines).status_code == 302
    assert Torrent.objects.get().description == lines.replace("\r\n", "\n").strip()


def test_api_refuses_a_long_description_on_the_field(member):
    response = _api(member).post(
        "/api/v1/torrents/",
        {
            "file": SimpleUploadedFile("t.torrent", make_torrent_bytes()),
            "description": "x" * (CAP + 1),
        },
    )
    assert response.status_code == 400
    assert list(response.json()) == ["description"]
    assert not Torrent.objects.exists()


def test_api_shows_the_services_cap_when_the_setting_is_lower(member, settings):
    settings.PBTS_DESCRIPTION_MAX_CHARS = 5
    response = _api(member).post(
        "/api/v1/torrents/",
        {"file": SimpleUploadedFile("t.torrent", make_torrent_bytes()), "description": "123456"},
    )
    assert response.status_code == 400
    assert "at most 5" in response.json()["description"][0]


# --- Remote images -------------------------------------------------------------------------


def test_a_remote_image_in_a_description_is_not_on_the_page(client, member):
    torrent = upload_torrent(
        member,
        description=f"![the cover]({REMOTE}) and ![ours](/static/tracker/favicon.svg)\n\n"
        f'<img src="{REMOTE}" alt="raw html">',
    )
    page = client.get(reverse("torrent_detail", args=[torrent.pk])).content.decode()
    assert "tracker-spy.example" not in page
    assert "the cover" in page and "raw html" in page
    assert '<img src="/static/tracker/favicon.svg" alt="ours">' in page
    detail = _api(member).get(f"/api/v1/torrents/{torrent.pk}/").json()
    assert "tracker-spy.example" not in detail["description_html"]


@pytest.mark.parametrize(
    "src",
    [
        REMOTE,
        "https://tracker-spy.example/x.png",
        "//tracker-spy.example/x.png",
        "/\\tracker-spy.example/x.png",
        "\\\\tracker-spy.example/x.png",
        " //tracker-spy.example/x.png",
        "/\t/tracker-spy.example/x.png",
        # The other scheme without '//' ("http:host" on an https site is still http://host).
        f"{OTHER_SCHEME}:tracker-spy.example/x.png",
        f"{settings.PBTS_BASE_URL}@tracker-spy.example/x.png",
        f"{settings.PBTS_BASE_URL}:1@tracker-spy.example/x.png",
        "http://[tracker-spy",
        "",
    ],
)
def test_every_spelling_of_a_remote_image_is_refused(src):
    html = render_markdown(f'<img src="{src}" alt="alt text">', remote_images="refuse")
    assert html == "alt text"
    assert not is_own_url(src, site_url=settings.PBTS_BASE_URL)


@pytest.mark.parametrize(
    "src", ["/static/x.png", "x.png", "../x.png", f"{settings.PBTS_BASE_URL}/static/x.png"]
)
def test_the_sites_own_images_are_kept(src):
    html = render_markdown(f"![alt]({src})", remote_images="refuse")
    assert html == f'<p><img src="{src}" alt="alt"></p>'


def test_alt_text_of_a_refused_image_stays_text():
    html = render_markdown(
        f'<img src="{REMOTE}" alt="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">',
        remote_images="refuse",
    )
    assert "<script" not in html and "&lt;script&gt;" in html
    linked = render_markdown(f"[![cover]({REMOTE})](https://example.org/)")
    assert linked == '<p><a href="https://example.org/" rel="noopener noreferrer">cover</a></p>'


def test_remote_images_allowed_by_the_setting(member, settings):
    settings.PBTS_REMOTE_IMAGES = "allow"
    torrent = upload_torrent(member, description=f"![cover]({REMOTE})")
    assert torrent.description_html == f'<p><img src="{REMOTE}" alt="cover"></p>'


def test_rerender_command_applies_a_changed_image_setting(member, settings):
    torrent = upload_torrent(member, description=f"![cover]({REMOTE})")
    page = SitePage.objects.create(slug="faq", title="FAQ", body=f"![x]({REMOTE})")
    assert "<img" not in torrent.description_html + page.body_html
    settings.PBTS_REMOTE_IMAGES = "allow"
    out = io.StringIO()
    call_command("rerender_markdown", stdout=out)
    assert "1 torrent description(s), 1 page(s)" in out.getvalue()
    assert Torrent.objects.get(pk=torrent.pk).description_html.startswith(f'<p><img src="{REMOTE}"')
    assert SitePage.objects.get(pk=page.pk).body_html.startswith(f'<p><img src="{REMOTE}"')
    call_command("rerender_markdown", stdout=out)
    assert "0 torrent description(s), 0 page(s)" in out.getvalue()
