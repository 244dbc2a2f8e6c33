"""Shared fixtures, and the rules every test run follows: tests that start a server are slow, and
no process a test started may outlive the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The pipeline is built here, before any test module imports TensorFlow: kfp's task setters
# (set_cpu_request, ...) call inspect.stack(), whose cost grows with every module loaded, and
# built after TensorFlow it made collecting the suite take 27 s of CPU instead of 10 s.
import pipelines.word_ocr_pipeline  # noqa: F401  (imported for its side effect: the pipeline built)
from tests.support.gcs import GcsServer, run_gcs_server
from tests.support.processes import adopt_orphans, kill_descendants, left_running, reap_zombie_children
from tests.support.serving_server import MAX_REQUEST_BYTES, Server, running_server
from tests.support.tiny_data import TINY_SPEC
from wordocr.alphabet import DEFAULT_ALPHABET

# The fixtures here that start a server process: a test that uses one, directly or through another
# fixture, is marked slow (`pytest -m "not slow"` leaves it out).
SERVER_FIXTURES = frozenset({"server", "gcs_server"})


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def no_process_left_running() -> Iterator[None]:
    """The suite ends every process it starts. Set up first and torn down last; orphans are
    adopted, so a grandchild whose parent was killed still counts."""
    adopt_orphans()
    yield
    left = left_running(grace_s=10)
    kill_descendants()
    reap_zombie_children()
    if left:
        pytest.fail("the tests left these processes running (now killed):\n" + "\n".join(left), pytrace=False)


@pytest.fixture(scope="session")
def gcs_server() -> GcsServer:
    """A fake-gcs-server on 127.0.0.1 with one bucket; STORAGE_EMULATOR_HOST points at it."""
    yield from run_gcs_server()


@pytest.fixture(scope="session")
def untrained_model():
    """An untrained tiny Keras model (TINY_SPEC: 32x96, words up to 8 letters)."""
    from wordocr.model import TINY_MODEL_SIZE, build_model

    return build_model(TINY_SPEC, DEFAULT_ALPHABET, TINY_MODEL_SIZE, name="untrained_tiny")


@pytest.fixture(scope="session")
def model_dir(untrained_model, tmp_path_factory) -> Path:
    """``untrained_model`` saved as an artifact once per session (saving converts it to ONNX, a
    few seconds): tests read it and copy it, never write into it."""
    from wordocr.artifact import save_artifact

    out = tmp_path_factory.mktemp("model")
    save_artifact(untrained_model, str(out), TINY_SPEC, DEFAULT_ALPHABET, extra={"trained": False})
    return out


@pytest.fixture(scope="session")
def server(model_dir, tmp_path_factory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    limit = ("--max_request_bytes", str(MAX_REQUEST_BYTES))
    with running_server(model_dir, log_path, "--enable_grpc", "false", *limit) as srv:
        yield srv
