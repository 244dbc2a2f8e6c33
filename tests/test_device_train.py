"""tools/device_train: the GPU harness's files come back whole and wrap.py turns them into an artifact.

The device machine (a GPU, Keras on torch) cannot be had here, so the harness runs on this
machine's backend, TensorFlow on the CPU, with a tiny data set: what is checked is what travels
back (a weights file without the optimizer's state, small enough for the device's 16 MiB a
file; a history and meta for every epoch) and that wrap.py builds the artifact from exactly
those weights.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from wordocr.recognizer import Recognizer

ROOT = Path(__file__).resolve().parents[1]
DEVICE_FILE_LIMIT = 16 * 2**20


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _h5_arrays(group: h5py.Group) -> dict[str, np.ndarray]:
    arrays = {}
    group.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
def test_a_device_run_returns_its_best_weights_and_wrap_makes_an_artifact_of_them(tmp_path):
    run_dir = tmp_path / "run"
    done = _run(["tools/device_train/train_gpu.py", "--out", str(run_dir), "--train-samples", "256",
                 "--val-samples", "64", "--epochs", "2", "--deadline", "400"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    weights = run_dir / "best.weights.h5"
    assert 0 < weights.stat().st_size < DEVICE_FILE_LIMIT
    with h5py.File(weights) as f:
        assert "optimizer" not in f, "Adam's state would make the file three times larger"
        saved = _h5_arrays(f)
    assert saved, "no weights in the file"

    history = json.loads((run_dir / "history.json").read_text())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["epochs_run"] == len(history["val_word_accuracy"]) == 2
    assert meta["train_images"] == 256 and meta["val_images"] == 64
    # The best epoch is the first with the highest validation accuracy (train.py's rule).
    accuracies = history["val_word_accuracy"]
    assert meta["best_epoch"] == accuracies.index(max(accuracies)) + 1

    artifact = tmp_path / "artifact"
    wrapped = _run(["tools/device_train/wrap.py", str(run_dir), str(artifact)])
    assert wrapped.returncode == 0, wrapped.stderr[-3000:]
    model = keras.saving.load_model(artifact / "model.keras", compile=False)
    loaded = sorted(np.asarray(w).tobytes() for w in model.get_weights())
    assert loaded == sorted(np.asarray(a).tobytes() for a in saved.values())
    spec = json.loads((artifact / "spec.json").read_text())
    assert spec["training"]["best_epoch"] == meta["best_epoch"]
    reading = Recognizer.load(str(artifact)).recognize(np.full((1, 32, 192), 255, np.uint8))
    assert len(reading) == 1
