"""Faults, for real: the storage server dies mid-write, and a training process is SIGKILLed.

Storage: a fake-gcs-server of the test's own (filesystem backend, so it can be killed and started
again on the same port with its objects) is killed right after the first shard of a dataset is
uploaded. A short outage is ridden out by the retries; a lasting one ends in a StorageError naming
the object, leaves no manifest and no partial shard, and a rerun finishes the same dataset a clean
run makes.

Training: ``python -m wordocr.train --checkpoint-dir`` is killed with SIGKILL after its first epoch
checkpoint appears; the same command again resumes after the last saved epoch.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.gcs import TEST_BUCKET, RestartableGcsServer
from tests.support.tiny_data import write_tiny_datasets
from wordocr import generate, shards, storage
from wordocr.dataset_spec import DatasetSpec

# A small dataset: 3 shards of 2 samples; what matters is that it takes several uploads.
DATASET = DatasetSpec(split="val", num_samples=6, seed=5, tier="clean", num_shards=3)
RETRY_DEADLINE_S = 2.0  # a lasting outage fails after this; production uses 60 s
OUTAGE_S = 1.0  # a short outage: well inside TRANSIENT_DEADLINE_S
TRANSIENT_DEADLINE_S = 15.0
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clean_manifest(tmp_path_factory) -> shards.Manifest:
    """The manifest of DATASET made without faults (locally: shard bytes do not depend on where they go)."""
    return generate.generate_dataset(str(tmp_path_factory.mktemp("clean")), DATASET, workers=1)


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    """This test's own fake-gcs-server, which the test may kill and restart; stopped afterwards."""
    server = RestartableGcsServer(tmp_path / "gcs-root")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)
    server.start()
    try:
        storage._gcs_client().create_bucket(TEST_BUCKET)
        yield server
    finally:
        server.stop()


def _uploads_then(monkeypatch, after_first) -> list[float]:
    """Make ``storage.upload_file`` call ``after_first()`` once the first upload is done; return the
    list the duration of every upload is appended to."""
    upload = storage.upload_file
    durations: list[float] = []

    def upload_file(local_path, uri):
        started = time.monotonic()
        try:
            upload(local_path, uri)
        finally:
            durations.append(time.monotonic() - started)
        if len(durations) == 1:
            after_first()

    monkeypatch.setattr(storage, "upload_file", upload_file)
    return durations


def _retry_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == storage.log.name and "retrying" in r.getMessage()]


@pytest.mark.slow
def test_a_short_storage_outage_mid_write_is_ridden_out(gcs, clean_manifest, monkeypatch, caplog):
    monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, str(TRANSIENT_DEADLINE_S))
    restart = threading.Timer(OUTAGE_S, gcs.start)
    try:
        durations = _uploads_then(monkeypatch, lambda: (gcs.kill(), restart.start()))
        with caplog.at_level(logging.WARNING, logger=storage.log.name):
            manifest = generate.generate_dataset(f"gs://{TEST_BUCKET}/data", DATASET, workers=1)
    finally:
        restart.cancel()
        if restart.is_alive():
            restart.join()
    assert manifest.to_json() == clean_manifest.to_json()
    # The second shard's upload really met the outage: it failed, waited and got through.
    assert durations[1] >= OUTAGE_S * 0.8
    assert _retry_warnings(caplog)
    paths, read_back = shards.local_shard_paths(f"gs://{TEST_BUCKET}/data", cache_dir=gcs.root.parent / "cache")
    assert read_back.to_json() == clean_manifest.to_json() and len(paths) == 3  # every sha256 checked


@pytest.mark.slow
def test_a_lasting_storage_outage_fails_clearly_and_leaves_no_partial_dataset(
    gcs, clean_manifest, monkeypatch, caplog, tmp_path
):
    import tensorflow as tf

    uri = f"gs://{TEST_BUCKET}/data"
    monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, str(RETRY_DEADLINE_S))
    real_upload = storage.upload_file
    _uploads_then(monkeypatch, gcs.kill)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=storage.log.name), pytest.raises(storage.StorageError) as failed:
        generate.generate_dataset(uri, DATASET, workers=1)
    elapsed = time.monotonic() - started
    message = str(failed.value)
    assert message.startswith(f"{uri}/{shards.shard_name(1, 3)} could not be written after ")
    assert "of retries" in message and "Connection refused" in message
    assert len(_retry_warnings(caplog)) >= 2  # it did retry, with backoff, ...
    assert elapsed < RETRY_DEADLINE_S + 3  # ... for a bounded time

    # Storage comes back: what a reader can see is whole, and there is no manifest to trust it by.
    gcs.start()
    visible = storage.list_names(uri)
    assert shards.MANIFEST_NAME not in visible and generate.PREVIEW_NAME not in visible
    expected = {s.name: s for s in clean_manifest.shards}
    assert visible and set(visible) <= set(expected)
    for name in visible:
        local = tmp_path / "visible" / name
        storage.download_file(storage.join(uri, name), local)
        assert shards.file_sha256(local) == expected[name].sha256
        # A TFRecord reader checks every record's length and CRC: a truncated file fails here.
        assert sum(1 for _ in tf.data.TFRecordDataset(str(local))) == expected[name].count
    with pytest.raises(FileNotFoundError, match="incomplete"):
        shards.read_manifest(uri)

    monkeypatch.setattr(storage, "upload_file", real_upload)
    assert generate.generate_dataset(uri, DATASET, workers=1).to_json() == clean_manifest.to_json()


@pytest.mark.slow
def test_a_lasting_outage_on_read_fails_clearly(gcs, monkeypatch):
    monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, "1")
    uri = f"gs://{TEST_BUCKET}/a.txt"
    storage.write_bytes(uri, b"x")
    gcs.kill()
    for call in (storage.read_bytes, storage.exists, storage.list_names):
        expected = r"^gs://word-ocr-test/a\.txt could not be (read|checked|listed) after "
        with pytest.raises(storage.StorageError, match=expected):
            call(uri)


class SilentServer:
    """Accepts TCP connections on loopback and never answers: a storage server that has hung."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self._listener.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        self._listener.close()
        for connection in self.connections:
            connection.close()


def test_a_hung_storage_server_fails_the_call_within_the_retry_deadline(monkeypatch):
    # The client's own per-request timeout is 60 s; a call must not wait that long for a
    # server that took the connection and went silent.
    server = SilentServer()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)
    monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, "1")
    try:
        for call in (lambda uri: storage.write_bytes(uri, b"x"), storage.read_bytes):
            start = time.monotonic()
            with pytest.raises(storage.StorageError, match=r"Timeout"):
                call(f"gs://{TEST_BUCKET}/a.txt")
            # A hang detector, not a speed limit: without the bound this takes a minute or more.
            assert time.monotonic() - start < 20
        assert server.connections, "the client never reached the silent server"
    finally:
        server.close()


def test_retry_deadline_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(storage.RETRY_DEADLINE_ENV, raising=False)
    assert storage.retry_deadline_s() == storage.DEFAULT_RETRY_DEADLINE_S
    monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, "2.5")
    assert storage.retry_deadline_s() == 2.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(storage.RETRY_DEADLINE_ENV, bad)
        with pytest.raises(ValueError, match=storage.RETRY_DEADLINE_ENV):
            storage.retry_deadline_s()


# ---------------------------------------------------------------------------------------------

EPOCHS = 20  # later epochs take ~0.1 s here: enough of them that the kill lands before the end
_TRAIN_ARGS = ["--epochs", str(EPOCHS), "--steps-per-epoch", "2", "--batch-size", "16", "--patience", "0",
               "--learning-rate", "5e-3", "--warmup-epochs", "1", "--conv-filters", "8,8,16,16,16",
               "--lstm-units", "16", "--dropout", "0"]  # fmt: skip


def _train_process(root: Path, train_uri: str, val_uri: str, log_name: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "wordocr.train", "--train", train_uri, "--val", val_uri,
               "--out", str(root / "model"), "--checkpoint-dir", str(root / "ckpt"),
               "--result-json", str(root / "result.json"), *_TRAIN_ARGS]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    with open(root / log_name, "wb") as log_file:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def _reap(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.mark.slow
def test_a_sigkilled_training_run_resumes_from_its_checkpoint(tmp_path):
    train_uri, val_uri = write_tiny_datasets(tmp_path)
    state_file = tmp_path / "ckpt" / "state.json"

    first = _train_process(tmp_path, train_uri, val_uri, "first.log")
    try:
        deadline = time.monotonic() + 60
        while not state_file.exists():
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        _reap(first)
    done = json.loads(state_file.read_text())["epoch"]
    assert 1 <= done < EPOCHS, "the run finished before it was killed"
    assert not (tmp_path / "model" / "spec.json").exists()

    second = _train_process(tmp_path, train_uri, val_uri, "second.log")
    try:
        assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    finally:
        _reap(second)
    log_text = (tmp_path / "second.log").read_text()
    assert f"resuming from {tmp_path / 'ckpt'} after epoch {done}" in log_text
    ran = [e for e in range(1, EPOCHS + 1) if f"epoch {e}/{EPOCHS}:" in log_text]
    assert ran == list(range(done + 1, EPOCHS + 1))  # only the epochs not yet saved
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["epochs_run"] == EPOCHS and len(result["history"]["loss"]) == EPOCHS
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["val_word_accuracy"]) == EPOCHS
    assert (tmp_path / "model" / "spec.json").exists() and (tmp_path / "model" / "model.keras").exists()
