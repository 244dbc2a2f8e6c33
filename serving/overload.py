"""What the predictor refuses when it is full, or when one request would take too much of it.

* A bounded queue: every admitted request holds its images and their encoded bytes until it is
  answered. Beyond ``max_queued_items`` images or ``max_queued_bytes`` encoded bytes in flight
  a new request is refused at once with 503 and ``Retry-After``, instead of waiting behind a
  queue whose latency grows without bound; a client (or Knative's activator) retries, or
  another replica takes it.
* A budget of decoded pixels per request: image headers are read first (cheap), and a request
  whose images would decode to more than ``max_decoded_pixels`` is refused with 413 naming the
  budget, before any of them is decoded. A 20-megapixel PNG of white paper is 68 KB encoded
  and a quarter of a second to decode; without the budget, 256 of them in one request would hold
  a core for a minute.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

from fastapi import HTTPException

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


@dataclass(frozen=True)
class OverloadLimits:
    # About a second of work for two cores at batch throughput: a full queue answers within it.
    max_queued_items: int = 1024
    # Encoded images held by the requests in flight (each request's body is also capped, 32 MiB).
    max_queued_bytes: int = 128 * 1024 * 1024
    # Two 20-megapixel images (the largest one accepted), or 256 images of 300 x 500 pixels.
    max_decoded_pixels: int = 40_000_000
    # Requests decoded at once, off the inference thread (their own bound on time and memory).
    decode_threads: int = 2


DEFAULT_OVERLOAD_LIMITS = OverloadLimits()


def overloaded(reason: str) -> HTTPException:
    return HTTPException(
        status_code=503,
        detail=f"the predictor is at capacity ({reason}); retry after {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def over_pixel_budget(where: str, pixels: int, budget: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=(
            f"{where}: the request's images decode to {pixels:,} pixels; the budget is {budget:,} decoded "
            "pixels per request (send fewer or smaller images per request)"
        ),
    )


class Admission:
    """Counts the images and encoded bytes of the requests in flight; refuses beyond the limits."""

    def __init__(self, limits: OverloadLimits = DEFAULT_OVERLOAD_LIMITS):
        self.limits = limits
        self._lock = threading.Lock()
        self.items = 0
        self.bytes = 0
        self.refused = 0

    def enter(self, items: int, encoded_bytes: int) -> None:
        """Admit a request (raises the 503 if it does not fit); pair with :meth:`leave`."""
        with self._lock:
            # An empty server always takes a request that passed the per-request limits.
            busy = self.items > 0
            if busy and (self.items + items > self.limits.max_queued_items
                         or self.bytes + encoded_bytes > self.limits.max_queued_bytes):  # fmt: skip
                self.refused += 1
                reason = f"{self.items} images, {self.bytes:,} encoded bytes in flight"
                if self.refused == 1 or self.refused % 100 == 0:
                    log.warning("refusing requests: %s (%d refused so far)", reason, self.refused)
                raise overloaded(reason)
            self.items += items
            self.bytes += encoded_bytes

    def leave(self, items: int, encoded_bytes: int) -> None:
        with self._lock:
            self.items -= items
            self.bytes -= encoded_bytes


def image_pixels(data: bytes) -> int | None:
    """Width x height from an encoded image's header (nothing decoded), or None if unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # the decoder proper reports unreadable images, with its own message
        return None
    return width * height
