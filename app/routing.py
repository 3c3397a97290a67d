"""Starlette's router, asking only the routes that can match a request's first path segment.

Starlette tries every route in order until one matches: with about 200 routes, a request for a route near
the end (``/processes/{id}/ballot/cast``) ran ~90 regular expressions before its own, a few per cent of a
ballot's CPU time. ``IndexedRouter`` groups the routes by the literal first segment of their path (``/``,
``processes``, ``api`` …) and tries, in the original order, only that group plus every route whose first
segment is not literal (``/{slug}``, a mount at the root). A route outside the group cannot match the path,
so the first full match, the partial matches (405) and the order are the same as Starlette's.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, Router
from starlette.types import Receive, Scope, Send

WILDCARD = None  # the group key of routes that may match any first segment


def first_segment(route: BaseRoute) -> str | None:
    """The literal first path segment a route needs, or None when it could match any."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return WILDCARD
    segment = path[1:].split("/", 1)[0]
    return WILDCARD if "{" in segment else segment


class IndexedRouter(Router):
    """A drop-in Router (see the module docstring). The index is rebuilt when the route list changes
    (tests append routes to a built app)."""

    _index: dict[str, list[BaseRoute]]
    _rest: list[BaseRoute]
    _indexed: tuple[int, int] = (0, -1)

    @classmethod
    def adopt(cls, router: Router) -> IndexedRouter:
        """Turn the router Starlette built (routes, lifespan, middleware settings) into an indexed one."""
        if router.middleware_stack != router.app:
            raise TypeError("a router with its own middleware cannot be adopted")
        router.__class__ = cls
        assert isinstance(router, IndexedRouter)
        # Starlette's Router binds ``middleware_stack = self.app`` when it is built: without rebinding it,
        # requests would still run the linear Router.app.
        router.middleware_stack = router.app
        return router

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that can match ``path``, in their original order."""
        if self._indexed != (id(self.routes), len(self.routes)):
            self._build()
        segment = path[1:].split("/", 1)[0] if path.startswith("/") else ""
        return self._index.get(segment, self._rest)

    def _build(self) -> None:
        index: dict[str, list[BaseRoute]] = {}
        rest: list[BaseRoute] = []
        for route in self.routes:
            segment = first_segment(route)
            if segment is WILDCARD:
                rest.append(route)
                for group in index.values():
                    group.append(route)
            else:
                index.setdefault(segment, list(rest)).append(route)
        self._index, self._rest = index, rest
        self._indexed = (id(self.routes), len(self.routes))

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)  # lifespan, websockets, mounted apps: as Starlette does
            return
        if "router" not in scope:
            scope["router"] = self
        partial: Any = None
        partial_scope: dict = {}
        for route in self.candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await super().app(scope, receive, send)  # no match: Starlette's slash redirect or 404
