"""nh3 profiles and Markdown rendering (ASVS V1.3.1, V1.3.5; CVE-2023-32693, CVE-2024-39910)."""

from __future__ import annotations

import re

import pytest

from app.sanitize import render_markdown, sanitize

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "<svg onload=alert(1)>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "<object data=x></object>",
]


@pytest.mark.parametrize("payload", XSS)
def test_rich_profile_strips_active_content(payload):
    """Scripts, event handlers, styles, frames and non-http(s) link schemes never survive."""
    out = sanitize(payload, "rich").lower()
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onclick",
        "javascript:",
        "data:",
        "<iframe",
        "<svg",
        "style=",
        "<object",
    ):
        assert bad not in out


@pytest.mark.parametrize("payload", XSS)
def test_markdown_never_passes_raw_html(payload):
    """Raw HTML in Markdown is escaped, not rendered."""
    out = render_markdown(payload).lower()
    assert "<script" not in out and "<iframe" not in out and "<img" not in out
    assert not re.search(r"<a [^>]*href=\"(javascript|data):", out)


def test_rich_profile_keeps_allowed_markup():
    """Paragraphs, emphasis, lists, h3–h4, blockquote and safe links remain; links get rel nofollow ugc."""
    md = "### Titel\n\n*kursiv* **fett**\n\n- eins\n- zwei\n\n> Zitat\n\n[Stadt](https://www.wuppertal.de)"
    html = render_markdown(md)
    for tag in ("<h3>", "<em>", "<strong>", "<ul>", "<li>", "<blockquote>"):
        assert tag in html
    assert 'rel="nofollow ugc noopener"' in html
    assert "<img" not in render_markdown("![bild](https://x.example/a.png)")


def test_plain_profile_removes_all_tags():
    """The plain profile keeps text only."""
    assert sanitize("<b>Hallo</b> <i>Welt</i>", "plain") == "Hallo Welt"
    with pytest.raises(ValueError):
        sanitize("x", "unknown")
