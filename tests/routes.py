"""The gateway's routes, read from the app itself: tests of who may reach what cover every
route there is, including the next one added."""

from collections.abc import Iterator, Sequence

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from gateway.app import create_app
from gateway.settings import GatewaySettings


def operations() -> list[tuple[str, str]]:
    """Every method and path the gateway answers, as its routes declare them."""
    app = create_app(GatewaySettings(_env_file=None))
    return sorted(
        (method, path)
        for path, route in _flattened(app.routes)
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )


def _flattened(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, BaseRoute]]:
    """Each route with its full path. FastAPI 0.16x keeps an included router as one entry of
    `app.routes` and resolves its routes when asked (`effective_route_contexts`)."""
    for route in routes:
        included = getattr(route, "effective_route_contexts", None)
        if included is None:
            yield getattr(route, "path", ""), route
            continue
        for context in included():
            yield context.path, context.original_route


def job_operations() -> list[tuple[str, str]]:
    """The operations on one job (their path names it)."""
    return [(method, path) for method, path in operations() if "{job_id}" in path]
