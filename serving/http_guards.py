"""Bad input that fails inside kserve's HTTP layer, before any model code runs, made a 4xx with a message.

kserve answers its own errors as ``{"error": "..."}``, but two kinds of bad request escape that:

* FastAPI's own refusals (a v2 body that does not fit the ``InferenceRequest`` schema: 422; an
  unparsable body or form: 400) answer ``{"detail": ...}``; here they answer ``{"error": ...}``
  with the same status, so every client error has one shape.
* A v2 request in the binary tensor extension (a JSON header, then raw tensors; its length in
  ``Inference-Header-Content-Length``) is decoded by kserve before the model sees it, and a
  malformed one (a length that is not a number, a tensor shorter than its shape, a header that is
  not an object) raises ValueError / struct.error / KeyError: a 500. :class:`BinaryInferCheck`
  decodes such a body with kserve's own parser first and refuses it with a 400 if that fails.
* kserve answers 501 when a client asks for what this server does not have (``?model_version=``,
  ``:explain`` without an explainer). It registers that handler when the server starts, after
  ours, so :class:`UnsupportedAsBadRequest` turns those answers into a 400 with the same message.
* kserve's model repository API (``POST /v2/repository/models/<name>/unload`` and ``/load``) lets
  any client unload the one model this server has: predictions then answer 404 while the
  readiness probe still says ready, so nothing restarts it. This server serves one model from
  ``--model_dir`` and has no repository to manage: those routes answer 403.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

BINARY_HEADER = b"inference-header-content-length"
REPOSITORY_PREFIX = "/v2/repository/"
MAX_VALIDATION_ERRORS = 5  # the first few schema errors say enough


def install_http_guards(app: FastAPI) -> None:
    """Add the error handlers and the binary-request check to kserve's app (before it starts)."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BinaryInferCheck)
    app.add_middleware(UnsupportedAsBadRequest)
    app.add_middleware(NoRepositoryManagement)


def error_text(text: str) -> str:
    """``text`` as something a JSON response can always encode (a lone surrogate becomes ``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def _http_exception(request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": error_text(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        # The v2 body is Union[InferenceRequest, bytes]; the bytes branch's complaint says nothing.
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "InferenceRequest")]
        if loc == ["bytes"]:
            continue
        problem = f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}"
        if problem not in problems:
            problems.append(problem)
    message = "; ".join(problems[:MAX_VALIDATION_ERRORS]) or "the body does not match the request schema"
    return JSONResponse({"error": error_text(f"invalid request: {message}")}, status_code=422)


class BinaryInferCheck:
    """Refuse (400) a binary-extension v2 body that kserve's own decoder cannot read."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(BINARY_HEADER)
        if declared is None:
            await self.app(scope, receive, send)
            return

        # Bounded: BodySizeLimit sits outside this middleware and stops an oversized body.
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)

        problem = _binary_problem(body, declared)
        if problem is not None:
            log.info("refused a binary v2 request: %s", problem)
            await _send_json(send, 400, {"error": error_text(problem)})
            return

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class UnsupportedAsBadRequest:
    """A 501 (kserve's NotImplementedError: a feature the client asked for) becomes a 400."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_client_error(message):
            if message["type"] == "http.response.start" and message["status"] == HTTPStatus.NOT_IMPLEMENTED:
                message = {**message, "status": HTTPStatus.BAD_REQUEST}
            await send(message)

        await self.app(scope, receive, send_client_error)


class NoRepositoryManagement:
    """Clients may not load or unload models: 403 for kserve's ``/v2/repository/...`` routes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(REPOSITORY_PREFIX):
            message = "this server serves one model from --model_dir; loading and unloading models is disabled"
            await _send_json(send, HTTPStatus.FORBIDDEN, {"error": message})
            return
        await self.app(scope, receive, send)


def _binary_problem(body: bytes, declared: bytes) -> str | None:
    """Why kserve could not decode this binary-extension body, or None if it can."""
    text = declared.decode("latin-1").strip()
    if not text.isdigit():
        return f"Inference-Header-Content-Length must be a byte count, got {text!r}"
    length = int(text)
    if length > len(body):
        return f"Inference-Header-Content-Length is {length} but the body has only {len(body)} bytes"
    try:
        InferRequest.from_bytes(body, length, "check")
    except InvalidInput as exc:
        return str(exc)
    except Exception as exc:  # whatever kserve's decoder trips on, the bytes are the client's
        return f"malformed binary inference request: {type(exc).__name__}: {exc}"
    return None


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
