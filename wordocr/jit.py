"""Loops compiled with numba, the compiled code cached on disk (``compiled``).

The beam search and the word box's stroke following are loops over a few thousand small
numbers: as numpy calls each step pays microseconds of per-call overhead, compiled they cost
nanoseconds. Compiling takes 1-10 s and 90 MiB of LLVM at every start; loading it from the
cache well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba

F = TypeVar("F", bound=Callable)


def compiled(function: F) -> F:
    """``numba.njit(nogil=True)``, cached on disk where it can be: beside this package or, where
    that is read-only, in ``NUMBA_CACHE_DIR`` / the user's cache folder; with no writable place
    at all the function is compiled at every start."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # numba: "no locator available" for a cache
        return numba.njit(nogil=True)(function)
