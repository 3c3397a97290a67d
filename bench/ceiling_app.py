"""The ceiling for bench/pages.py: a bare Starlette + Jinja2 page (no database, no middleware) served by
uvicorn with the same settings as ``mitmachen serve``. Whatever the real pages reach is measured against
what this reaches on the same machine in the same run.

    .venv/bin/python -m bench.ceiling_app --port 8100 --workers 2
"""

from __future__ import annotations

import argparse
import sys

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

PAGE = """<!doctype html>
<html lang="de">
<head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<header><a href="/">Mitmachen</a><nav><a href="/proposals">Vorschläge</a></nav></header>
<main>
<h1>{{ title }}</h1>
<ul>
{% for item in items %}
  <li><h2><a href="/proposals/{{ item.id }}">{{ item.title }}</a></h2><p>{{ item.summary }}</p>
  <p>{{ item.supports }} Unterstützungen · {{ item.comments }} Kommentare</p></li>
{% endfor %}
</ul>
</main>
<footer><a href="/seite/impressum">Impressum</a></footer>
</body>
</html>
"""
ITEMS = [
    {
        "id": i,
        "title": f"Vorschlag {i}: Sicherer Radweg an der Friedrich-Ebert-Straße",
        "summary": "Viele Familien aus dem Viertel wünschen sich das schon lange.",
        "supports": i * 7,
        "comments": i * 3,
    }
    for i in range(1, 21)
]


def create_app() -> Starlette:
    templates = Jinja2Templates(
        env=jinja2.Environment(loader=jinja2.DictLoader({"page.html": PAGE}), autoescape=True)
    )

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html", {"title": "Vorschläge", "items": ITEMS})

    async def healthz(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    return Starlette(routes=[Route("/", page), Route("/healthz", healthz)])


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="the benchmark's ceiling page")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    # the same options as `mitmachen serve` (app/cli.py), so the comparison is fair
    uvicorn.run(
        "bench.ceiling_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
