"""Read-only open-data JSON API under /api/v1/. Being built."""

from starlette.routing import Route

routes: list[Route] = []
