"""Safe Markdown rendering for torrent descriptions and site pages (markdown-it-py, then nh3).

markdown-it-py is a CommonMark parser that runs in linear time, so no input can make a page
render slowly (nested brackets were quadratic in Python-Markdown). nh3 (ammonia) then removes
every tag, attribute and URL scheme not listed here.
"""

from __future__ import annotations

import nh3
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


def render_markdown(text: str) -> str:
    """Render Markdown (CommonMark, tables, strikethrough) to sanitized HTML.

    ``text``: the member's Markdown. Raw HTML in it is sanitized, not trusted; links with a
    scheme other than http, https or mailto lose their href and keep their text; links get
    ``rel="noopener noreferrer"``. Never raises on any input.
    """
    return nh3.clean(
        _PARSER.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    ).strip()
