"""The XSS corpus and the checker that finds executable markup in a page (parsed as a browser would, with
html5lib's HTML5 parser)."""

from __future__ import annotations

import re

import html5lib

# Known vectors: tags, event handlers, URL schemes, attribute and context breakouts, Markdown link tricks,
# encoding and Unicode tricks. Each is submitted as it stands through every text field.
CORPUS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "<svg><script>alert(4)</script></svg>",
    '" autofocus onfocus="alert(5)',
    '<a href="javascript:alert(6)">x</a> [klick](javascript:alert(6)) [k2](JaVaScRiPt:alert(6))',
    "[d](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==) <iframe src=data:text/html,x></iframe>",
    "[t](java\tscript:alert(8)) [e](&#106;avascript:alert(8)) <a href='&#x6a;avascript:alert(8)'>e</a>",
    '![img](x" onerror="alert(9)) [x](/ "onmouseover=alert(9)")',
    "</textarea><script>alert(10)</script></title><script>alert(10)</script>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(11)>",
    "<details open ontoggle=alert(12)><object data=javascript:alert(12)><embed src=x>",
    "\u202e<scr\u0000ipt>alert(13)</script>\ufeff<ſcript>alert(13)</ſcript>",
    "%3Cscript%3Ealert(14)%3C/script%3E &lt;script&gt;alert(14)&lt;/script&gt; \\u003cscript\\u003e",
    "<base href=//evil.example/><meta http-equiv=refresh content='0;url=javascript:alert(15)'>",
    "{{ 7*7 }}{% raw %}${7*7}<form action=javascript:alert(16)><button formaction=javascript:alert(16)>",
]

URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "poster",
    "background",
    "xlink:href",
    "srcset",
}
FORBIDDEN_TAGS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base"}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def active_content(html: str) -> list[str]:
    """Everything in ``html`` that a browser would execute or that would send the user elsewhere: script
    elements other than our own static files, forbidden embedding tags, event-handler attributes, and
    script/data URLs in link targets."""
    problems = []
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    for el in tree.iter():
        tag = _local(el.tag)
        if not tag:
            continue
        attrs = {_local(k) if "}" in k else k.lower(): v for k, v in el.attrib.items()}
        if tag == "script":
            src = attrs.get("src", "")
            if not src.startswith("/static/") or (el.text or "").strip():
                problems.append(f"<script> src={src!r} text={(el.text or '')[:60]!r}")
        if tag in FORBIDDEN_TAGS:
            problems.append(f"<{tag}>")
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            problems.append("<meta http-equiv=refresh>")
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}={value[:60]!r}>")
            if name == "srcdoc":
                problems.append(f"<{tag} srcdoc>")
            if name in URL_ATTRIBUTES or name.endswith(":href"):
                squeezed = re.sub(r"[\x00-\x20]+", "", value).lower()
                if squeezed.startswith(BAD_SCHEMES) and not squeezed.startswith("data:image/"):
                    problems.append(f"<{tag} {name}={value[:60]!r}>")
            if name == "style" and re.search(r"expression\(|javascript:|url\(", value, re.I):
                problems.append(f"<{tag} style={value[:60]!r}>")
    return problems
