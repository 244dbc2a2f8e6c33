"""A cap on request body size, which kserve's server does not have (it reads a 200 MB body whole
into memory). Pure ASGI, so it costs nothing per request beyond a header lookup.

A declared ``Content-Length`` over the cap is refused with 413 before any byte is read; a
chunked body is counted as it arrives and the request fails (413, or 400 if the framework was
already parsing it) as soon as it passes the cap, so memory stays bounded either way.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(send, int(declared))
            return

        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, received)

    async def _refuse(self, send, size: int) -> None:
        log.info("refused a request body of %d+ bytes (limit %d)", size, self.max_body_bytes)
        body = json.dumps(
            {"error": f"request body is {size}+ bytes; the limit is {self.max_body_bytes} (send smaller batches)"}
        ).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
