"""The indexed router (app/routing.py) dispatches exactly as Starlette's linear router: for a path built
from every route of the app (and a few that match none), the first full match and the 405 partial match
are the same."""

from __future__ import annotations

import re

from starlette.routing import Match

from app.routing import IndexedRouter, first_segment


def _dispatch(routes, scope: dict):
    """The route a router would hand ``scope`` to: the first full match, else the first partial one."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, "full"
        if match is Match.PARTIAL and partial is None:
            partial = route
    return (partial, "partial") if partial is not None else (None, "none")


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_app_uses_the_indexed_router(app):
    assert isinstance(app.router, IndexedRouter)


def test_requests_are_dispatched_by_the_index(app, client, monkeypatch):
    """A request goes through ``IndexedRouter.candidates`` (Starlette's Router binds its entry point when it
    is built, so changing the class alone left requests on the linear scan)."""
    asked: list[str] = []
    candidates = IndexedRouter.candidates

    def spy(self, path):
        asked.append(path)
        return candidates(self, path)

    monkeypatch.setattr(IndexedRouter, "candidates", spy)
    assert client.get("/healthz").status_code == 200
    assert asked == ["/healthz"]


def test_every_route_dispatches_as_with_starlettes_router(app):
    router = app.router
    paths = {_sample(getattr(r, "path", "/")) for r in router.routes}
    paths |= {p + "/static/x.css" for p in ("",)} | {
        "/",
        "/nowhere",
        "/processes/1/nothing",
        "/api/v1/zzz",
        "//x",
    }
    assert len(paths) > 100
    checked = 0
    for path in sorted(paths):
        for method in ("GET", "POST", "DELETE"):
            scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
            indexed = _dispatch(router.candidates(path), dict(scope))
            assert indexed == _dispatch(router.routes, dict(scope)), (method, path)
            checked += 1
    assert checked == 3 * len(paths)


def test_routes_added_later_are_indexed(app):
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def late(request):
        return PlainTextResponse("late")

    app.router.routes.append(Route("/late-route-for-test", late))
    assert app.router.candidates("/late-route-for-test")[-1].path == "/late-route-for-test"


def test_first_segment():
    from starlette.routing import Mount, Route

    def endpoint(request):  # pragma: no cover - never called
        return None

    assert first_segment(Route("/", endpoint)) == ""
    assert first_segment(Route("/processes/{id:int}", endpoint)) == "processes"
    assert first_segment(Route("/{slug}", endpoint)) is None
    assert first_segment(Mount("/static", routes=[])) == "static"
