"""Safe Markdown rendering for torrent descriptions and site pages (markdown-it-py, then nh3).

markdown-it-py is a CommonMark parser that runs in linear time, so no input can make a render
slow (nested brackets were quadratic in Python-Markdown; ``bench/markdown.py`` measures the
worst inputs found). nh3 (ammonia) then removes every tag, attribute and URL scheme not listed
here. Descriptions and site pages are rendered once, when they are saved, and the HTML is
stored: no page or API request renders Markdown.

Images: with ``PBTS_REMOTE_IMAGES = "refuse"`` (the default) an image whose ``src`` is not this
site's own (a relative URL, or an absolute one on ``PBTS_BASE_URL``'s scheme, host and port) is
replaced by its alt text, so that viewing a page never makes a member's browser contact a third
party (which would learn the member's IP address). ``"allow"`` keeps every http(s) image.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import nh3
from django.conf import settings
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}

# CommonMark plus GFM tables and strikethrough; raw HTML is parsed and then sanitized by nh3.
_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# Every link is parsed as a link, whatever its scheme, so that nh3 drops an unsafe href and
# keeps the link text ("[click me](javascript:...)" renders as "click me"). markdown-it-py's
# own check would leave the whole source text on the page instead.
_PARSER.validateLink = lambda url: True

# An <img> element as nh3 (html5ever) serializes it: lower-case attribute names, one space
# before each, values in double quotes (a '"' inside a value is always written &quot;), no
# closing slash. Text never holds a raw '<', so this matches real elements only.
_IMG = re.compile(r'<img((?: [a-z]+="[^"]*")*)>')
_ATTRIBUTE = re.compile(r'([a-z]+)="([^"]*)"')
# What a browser ignores or rewrites in a URL before resolving it (WHATWG URL standard):
# leading and trailing C0 controls and spaces, every tab and newline; '\' counts as '/'.
_URL_STRIP = "".join(chr(c) for c in range(0x21))
_URL_TAB_NEWLINE = re.compile(r"[\t\n\r]")


def is_own_url(url: str, *, site_url: str) -> bool:
    """Whether a browser showing a page of ``site_url`` would fetch ``url`` from this site.

    ``url`` is an attribute value (entities already decoded); ``site_url`` is
    ``PBTS_BASE_URL``. True for relative URLs (``/static/x.png``, ``x.png``) and absolute
    ones with the same scheme, host and port (spelt alike); false for everything else,
    including protocol-relative ``//host/...`` and ``/\\host/...``, user-info tricks and the
    empty string. Never raises.
    """
    cleaned = _URL_TAB_NEWLINE.sub("", url).strip(_URL_STRIP).replace("\\", "/")
    if not cleaned:
        return False
    try:
        site = urlsplit(site_url)
        target = urlsplit(urljoin(site_url.rstrip("/") + "/", cleaned))
    except ValueError:
        return False
    return (target.scheme.lower(), target.netloc.lower()) == (
        site.scheme.lower(),
        site.netloc.lower(),
    )


def _image_as_text(match: re.Match[str]) -> str:
    """An <img> left without ``src`` becomes its alt text (escaped), or nothing."""
    attributes = dict(_ATTRIBUTE.findall(match.group(1)))
    if "src" in attributes:
        return match.group(0)
    return html.escape(html.unescape(attributes.get("alt", "")))


def render_markdown(
    text: str, *, remote_images: str | None = None, site_url: str | None = None
) -> str:
    """Render Markdown (CommonMark, tables, strikethrough) to sanitized HTML.

    Args:
        text: the member's Markdown. Raw HTML in it is sanitized, not trusted.
        remote_images: ``"refuse"`` or ``"allow"``; ``None`` reads ``PBTS_REMOTE_IMAGES``.
        site_url: this site's address; ``None`` reads ``PBTS_BASE_URL``.

    Links with a scheme other than http, https or mailto lose their href and keep their text;
    links get ``rel="noopener noreferrer"``. With ``"refuse"``, an image that is not this
    site's own (:func:`is_own_url`) is replaced by its alt text. Runs in time linear in
    ``len(text)``; callers cap the length (``PBTS_DESCRIPTION_MAX_CHARS``) and store the
    result. Never raises on any input.
    """
    if remote_images is None:
        remote_images = settings.PBTS_REMOTE_IMAGES
    if site_url is None:
        site_url = settings.PBTS_BASE_URL
    refuse = remote_images != "allow"

    def keep_attribute(element: str, attribute: str, value: str) -> str | None:
        if refuse and element == "img" and attribute == "src":
            return value if is_own_url(value, site_url=site_url) else None
        return value

    cleaned = nh3.clean(
        _PARSER.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=keep_attribute,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
    if refuse:
        cleaned = _IMG.sub(_image_as_text, cleaned)
    return cleaned.strip()
