"""The Content-Security-Policy (issue 14): on every response, 'self' only for scripts, styles
and images (plus data: images), no framing; no template relies on inline script or style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from tracker.services.members import member_api_token
from tracker.tests.factories import MemberFactory
from tracker.tests.torrents import upload_torrent

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"
COMMENTS = re.compile(r"{% comment %}.*?{% endcomment %}|{#.*?#}", re.DOTALL)


def directives(header: str) -> dict[str, list[str]]:
    """``{"img-src": ["'self'", "data:"], ...}`` from a Content-Security-Policy header."""
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.fixture
def member(client):
    member = MemberFactory(is_staff=True, is_superuser=True)
    client.force_login(member)
    return member


def test_the_policy_allows_only_this_site(client, member):
    policy = directives(client.get(reverse("home"))["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize(
    "path",
    ["/login/", "/", "/torrents/", "/admin/", "/api/docs/", "/api/docs/?script", "/nope/"],
)
def test_every_response_carries_the_policy(client, member, path):
    response = client.get(path)
    assert response.status_code in (200, 302, 404), path
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_api_responses_and_downloads_carry_the_policy(member):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {member_api_token(member)}")
    torrent = upload_torrent(member)
    for path in ("/api/v1/me/", f"/api/v1/torrents/{torrent.pk}/download/"):
        response = api.get(path)
        assert response.status_code == 200
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_a_description_with_a_remote_image_renders_without_it(client, member):
    torrent = upload_torrent(member, description="![cover](https://images.example/c.jpg)")
    response = client.get(reverse("torrent_detail", args=[torrent.pk]))
    assert "images.example" not in response.content.decode()
    assert "cover" in response.content.decode()
    assert "images.example" not in response["Content-Security-Policy"]


def test_the_api_docs_page_has_no_inline_script_or_style(client, member):
    page = client.get("/api/docs/").content.decode()
    assert "<style" not in page
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert '<script src="/api/docs/?script="></script>' in page
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_no_template_relies_on_inline_script_style_or_handlers():
    """Inline code would be blocked by the policy: a console error on every page."""
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = COMMENTS.sub("", template.read_text(encoding="utf-8"))
        inline_script = re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text)
        if inline_script or re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", text):
            offenders.append(str(template.relative_to(TEMPLATES)))
    assert offenders == []
