"""Comment and notification routes. Being built."""

from starlette.routing import Route

routes: list[Route] = []
