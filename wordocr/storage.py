"""One way to read and write bytes at a URI: a local path or ``gs://bucket/key``.

Writes are atomic: a local file is written under a temporary name in the same folder and
renamed into place; a GCS object only becomes visible once its upload completes, and an
upload that fails leaves nothing at the final name. Transient GCS errors are retried with
exponential backoff by the client's retry policy.

GCS access uses Application Default Credentials (Workload Identity on GKE). The tests point
the real client at a GCS-compatible server on loopback with ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

GCS_PREFIX = "gs://"


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
        _blob(uri).upload_from_string(data, retry=_write_retry())
        return
    with _atomic_local_file(Path(uri)) as tmp_name, open(tmp_name, "wb") as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())


def upload_file(local_path: str | Path, uri: str) -> None:
    """Copy a finished local file to ``uri`` atomically."""
    if is_gcs(uri):
        _blob(uri).upload_from_filename(str(local_path), retry=_write_retry())
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
        return _blob(uri).download_as_bytes()
    return Path(uri).read_bytes()


def download_file(uri: str, local_path: str | Path) -> None:
    local_path = Path(local_path)
    local_path.parent.mkdir(parents=True, exist_ok=True)
    if is_gcs(uri):
        tmp = local_path.with_name(f".{local_path.name}.part")
        _blob(uri).download_to_filename(str(tmp))
        os.replace(tmp, local_path)
        return
    shutil.copyfile(uri, local_path)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists()
    return Path(uri).exists()


def list_names(prefix_uri: str) -> list[str]:
    """Names (relative to ``prefix_uri``) of the objects or files under it, sorted."""
    if is_gcs(prefix_uri):
        bucket, key = _split_gcs(prefix_uri)
        key = key.rstrip("/") + "/" if key else ""
        blobs = _gcs_client().list_blobs(bucket, prefix=key)
        return sorted(b.name[len(key):] for b in blobs)
    root = Path(prefix_uri)
    if not root.exists():
        return []
    # Hidden names are in-flight temporary files of atomic writes, not objects.
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def _write_retry():
    # Uploads are idempotent here (the same bytes to the same name), so retrying is safe.
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    return Retry(predicate=DEFAULT_RETRY._predicate, initial=0.5, maximum=8.0, multiplier=2.0, timeout=60.0)
