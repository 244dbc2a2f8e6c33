"""Shared fixtures only."""

from __future__ import annotations

import pytest

from tests.gcs import GcsServer, run_gcs_server


@pytest.fixture(scope="session")
def gcs_server() -> GcsServer:
    """A fake-gcs-server on 127.0.0.1 with one bucket; STORAGE_EMULATOR_HOST points at it."""
    yield from run_gcs_server()
