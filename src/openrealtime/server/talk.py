"""The talk page: ``GET /talk``, a browser page to talk to the server.

Everything it loads ships in the package (``static/talk.html``, ``talk.js``,
``talk.css``): no CDN, no build step.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


__all__ = ["talk_routes"]

_TYPES = {"talk.js": "text/javascript", "talk.css": "text/css"}


def _static(name: str) -> bytes:
    return (resources.files("openrealtime.server") / "static" / name).read_bytes()


async def _page(request: Request) -> Response:
    return Response(_static("talk.html"), media_type="text/html; charset=utf-8")


async def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _TYPES.get(name)
    if media_type is None:
        return Response(b"Not Found", 404, media_type="text/plain")
    return Response(_static(name), media_type=media_type)


def talk_routes() -> list[BaseRoute]:
    """``GET /talk`` and its two assets."""
    return [
        Route("/talk", _page, methods=["GET"]),
        Route("/talk/{name}", _asset, methods=["GET"]),
    ]
