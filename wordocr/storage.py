"""One way to read and write bytes at a URI: a local path or ``gs://bucket/key``.

Writes are atomic: a local file is written under a temporary name in the same folder and
renamed into place; a GCS object only becomes visible once its upload completes, and an
upload that fails leaves nothing at the final name. Transient GCS errors (connection refused or
reset, 429, 5xx) are retried with exponential backoff for ``retry_deadline_s()`` seconds
(``$WORD_OCR_GCS_RETRY_DEADLINE_S``, default 60); if GCS is still failing then, the call raises
``StorageError`` naming the URI and the last cause.

GCS access uses Application Default Credentials (Workload Identity on GKE). The tests point
the real client at a GCS-compatible server on loopback with ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

GCS_PREFIX = "gs://"
RETRY_DEADLINE_ENV = "WORD_OCR_GCS_RETRY_DEADLINE_S"
DEFAULT_RETRY_DEADLINE_S = 60.0
DEFAULT_REQUEST_TIMEOUT_S = 60.0  # google-cloud-storage's own default for one HTTP request


class StorageError(RuntimeError):
    """A gs:// object could not be read or written: GCS kept failing for the whole retry deadline."""


def retry_deadline_s() -> float:
    """How long one GCS call keeps retrying transient errors: ``$WORD_OCR_GCS_RETRY_DEADLINE_S`` or 60 s."""
    text = os.environ.get(RETRY_DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_DEADLINE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{RETRY_DEADLINE_ENV} must be a positive number of seconds, got {text!r}")
    return value


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_PREFIX)


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local path or a gs:// URI."""
    if is_gcs(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def _split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(GCS_PREFIX):].partition("/")
    if not bucket:
        raise ValueError(f"not a gs://bucket/key URI: {uri!r}")
    return bucket, key


def _gcs_client():
    # Cached per emulator endpoint, so a test that starts or stops an emulator gets a client
    # that talks to it rather than one made before.
    return _client_for(os.environ.get("STORAGE_EMULATOR_HOST", ""))


@lru_cache(maxsize=4)
def _client_for(emulator_host: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if emulator_host:
        # The emulator takes no credentials; the project name is required but unused.
        return storage.Client(credentials=AnonymousCredentials(), project="word-ocr-test")
    return storage.Client()


def _blob(uri: str):
    bucket, key = _split_gcs(uri)
    return _gcs_client().bucket(bucket).blob(key)


def write_bytes(uri: str, data: bytes) -> None:
    if is_gcs(uri):
        with _gcs_call(uri, "written") as policy:
            _blob(uri).upload_from_string(data, **policy)
        return
    with _atomic_local_file(Path(uri)) as tmp_name, open(tmp_name, "wb") as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())


def upload_file(local_path: str | Path, uri: str) -> None:
    """Copy a finished local file to ``uri`` atomically."""
    if is_gcs(uri):
        with _gcs_call(uri, "written") as policy:
            _blob(uri).upload_from_filename(str(local_path), **policy)
        return
    with _atomic_local_file(Path(uri)) as tmp_name:
        shutil.copyfile(local_path, tmp_name)


@contextmanager
def _atomic_local_file(path: Path) -> Iterator[str]:
    """A temporary name beside ``path`` to write to; renamed onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden temp names are skipped by list_names, so readers never list a file being written.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield tmp_name
        # mkstemp creates 0600 files; a dataset or model folder is read by other users
        # (pipeline steps, the predictor), so publish it as an ordinary file.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        with _gcs_call(uri, "read") as policy:
            return _blob(uri).download_as_bytes(**policy)
    return Path(uri).read_bytes()


def download_file(uri: str, local_path: str | Path) -> None:
    local_path = Path(local_path)
    local_path.parent.mkdir(parents=True, exist_ok=True)
    if is_gcs(uri):
        tmp = local_path.with_name(f".{local_path.name}.part")
        try:
            with _gcs_call(uri, "read") as policy:
                _blob(uri).download_to_filename(str(tmp), **policy)
        except BaseException:
            with suppress(FileNotFoundError):
                tmp.unlink()
            raise
        os.replace(tmp, local_path)
        return
    shutil.copyfile(uri, local_path)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        with _gcs_call(uri, "checked") as policy:
            return _blob(uri).exists(**policy)
    return Path(uri).exists()


def delete(uri: str) -> None:
    """Remove a file or object; one that is already gone is fine, so deleting can be repeated."""
    if is_gcs(uri):
        from google.api_core.exceptions import NotFound

        with _gcs_call(uri, "deleted") as policy, suppress(NotFound):
            _blob(uri).delete(**policy)
        return
    Path(uri).unlink(missing_ok=True)


def list_names(prefix_uri: str) -> list[str]:
    """Names (relative to ``prefix_uri``) of the objects or files under it, sorted."""
    if is_gcs(prefix_uri):
        bucket, key = _split_gcs(prefix_uri)
        key = key.rstrip("/") + "/" if key else ""
        with _gcs_call(prefix_uri, "listed") as policy:
            # The listing is fetched page by page while iterating: keep that inside the block.
            return sorted(b.name[len(key):] for b in _gcs_client().list_blobs(bucket, prefix=key, **policy))
    root = Path(prefix_uri)
    if not root.exists():
        return []
    # Hidden names are in-flight temporary files of atomic writes, not objects.
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


@contextmanager
def _gcs_call(uri: str, done: str) -> Iterator:
    """The keyword arguments (``retry``, ``timeout``) for one call on ``uri``; a transient error that
    outlasts the retry deadline becomes a StorageError.

    Errors that retrying cannot fix (404, 403, a bad request) pass through unchanged. Each HTTP
    request also waits at most the deadline for the server (the client's default is 60 s), so a
    server that accepts connections and never answers fails the call within about twice the
    deadline instead of hanging on its first request.
    """
    from google.api_core.exceptions import RetryError
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    deadline = retry_deadline_s()
    started = time.monotonic()

    def on_error(exc: Exception) -> None:
        log.warning("%s: %s; retrying (for up to %g s in all)", uri, exc, deadline)

    # Every call here is idempotent (uploads put the same bytes at the same name), so retrying
    # writes is as safe as retrying reads.
    retry = Retry(predicate=DEFAULT_RETRY._predicate, initial=0.5, maximum=8.0, multiplier=2.0,
                  timeout=deadline, on_error=on_error)
    try:
        yield {"retry": retry, "timeout": min(deadline, DEFAULT_REQUEST_TIMEOUT_S)}
    except Exception as exc:
        if not isinstance(exc, RetryError) and not DEFAULT_RETRY._predicate(exc):
            raise
        cause = exc.cause if isinstance(exc, RetryError) and exc.cause is not None else exc
        elapsed = time.monotonic() - started
        raise StorageError(
            f"{uri} could not be {done} after {elapsed:.1f} s of retries "
            f"(deadline {deadline:g} s, ${RETRY_DEADLINE_ENV}): {type(cause).__name__}: {cause}"
        ) from exc
