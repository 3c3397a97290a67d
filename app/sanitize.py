"""Sanitising user text with nh3 under named profiles, and Markdown rendering (raw HTML off).

Profiles:
- ``plain``: no tags at all (names, titles, comments shown as text).
- ``rich``: paragraphs, emphasis, lists, links (rel="nofollow ugc noopener", http/https/mailto only),
  headings h3–h4, blockquote, code. No images, scripts, styles, iframes or event attributes.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

RICH_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "blockquote",
    "code",
    "pre",
}
PROFILES: dict[str, dict] = {
    "plain": {"tags": set(), "attributes": {}},
    "rich": {
        "tags": RICH_TAGS,
        "attributes": {"a": {"href", "title"}},
        "url_schemes": {"http", "https", "mailto"},
        "link_rel": "nofollow ugc noopener",
    },
}

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_md.disable("image")


def sanitize(html: str, profile: str = "rich") -> str:
    try:
        options = PROFILES[profile]
    except KeyError as exc:
        raise ValueError(f"unknown sanitiser profile {profile!r}") from exc
    return nh3.clean(html, **options)


def render_markdown(text: str) -> str:
    """Markdown → HTML with raw HTML disabled, then sanitised with the ``rich`` profile.

    Headings are shifted so that # and ## become h3 (pages keep h1/h2 for their own structure)."""
    html = _md.render(text or "")
    for level in (2, 1):
        html = html.replace(f"<h{level}>", "<h3>").replace(f"</h{level}>", "</h3>")
    for level in (5, 6):
        html = html.replace(f"<h{level}>", "<h4>").replace(f"</h{level}>", "</h4>")
    return sanitize(html, "rich")
