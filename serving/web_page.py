"""The demo page: ``GET /`` from a browser answers ``serving/static/index.html``.

kserve already owns ``GET /``: its liveness answer ``{"status": "alive"}``, which probes and
scripts may rely on. So the page's route only matches requests whose ``Accept`` header names
``text/html`` (every browser's navigation does; curl, requests and Kubernetes probes send
``*/*``): everything else falls through to kserve's route, untouched. ``GET /ui`` always
answers the page, for a client that cannot choose its ``Accept`` header.

The page is one self-contained file (inline CSS and JS, no network beyond this server, which its
Content-Security-Policy enforces) that calls the v1 predict endpoint with ``fetch`` and asks for
the model's input image with the optional ``"return_image": true`` instance field.

Like :mod:`serving.prototype_routes`, the routes go on ``kserve.model_server.app`` before
``ModelServer.start``, which is why they come before kserve's own ``/`` in the router.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

PAGE_FILE = Path(__file__).with_name("static") / "index.html"
MODEL_NAME_PLACEHOLDER = "{{MODEL_NAME}}"
HINT_PLACEHOLDER = "{{TYPING_HINT}}"
UI_PATH = "/ui"

# The page talks to this server only; inline script and style are its whole code.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def accepts_html(headers: list[tuple[bytes, bytes]]) -> bool:
    accept = dict(headers).get(b"accept", b"").lower()
    return b"text/html" in accept


class BrowserOnlyRoute(APIRoute):
    """A route that matches only requests accepting HTML, so others reach the next route for the path."""

    def matches(self, scope):
        if scope["type"] == "http" and not accepts_html(scope.get("headers") or []):
            return Match.NONE, {}
        return super().matches(scope)


def typing_hint(alphabet: str) -> str:
    """What the page says a typed word may hold: what the served model reads."""
    if any(c.isupper() for c in alphabet):
        return "Letters as you write them (capitals too), digits and apostrophes."
    return "Letters a&ndash;z; capitals read as lower case."


def render_page(model_name: str, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> str:
    page = PAGE_FILE.read_text(encoding="utf-8").replace(MODEL_NAME_PLACEHOLDER, html.escape(model_name))
    return page.replace(HINT_PLACEHOLDER, typing_hint(alphabet))


def add_web_page(app: FastAPI, model_name: str, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> None:
    page = render_page(model_name, alphabet)  # read once: the file ships with the code
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache", "Vary": "Accept"}

    async def web_page() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    app.router.add_api_route(
        "/", web_page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse,
        route_class_override=BrowserOnlyRoute,
    )
    app.add_api_route(UI_PATH, web_page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
