"""tools/device_train: a recipe trained without Kubeflow, through wordocr.train, on this machine.

The harness is meant for a GPU machine; here it runs on this machine's TensorFlow, on the CPU,
with the quick recipe shrunk further. What is checked: it makes the recipe's three datasets,
trains with the recipe's options (as the artifact's spec records them), writes the artifact a
pipeline run publishes, evaluates it on the test split against the gate, and a second start
reuses the datasets and the finished epochs instead of redoing them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wordocr import shards
from wordocr.recipes import QUICK

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"train_samples": 192, "val_samples": 32, "test_samples": 32, "num_shards": 2, "epochs": 1,
         "conv_filters": "16,32,48,64,64", "lstm_units": 32, "spelling_weight": 0.0}  # fmt: skip


def _train_recipe(workdir: Path, *flags: str) -> subprocess.CompletedProcess:
    argv = ["--workdir", str(workdir), "--recipe", "quick", "--workers", "1"]
    for name, value in SMALL.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tools.device_train.train_recipe", *argv, *flags], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip


@pytest.mark.slow
def test_a_recipe_trains_through_wordocr_train_and_resumes_where_it_stopped(tmp_path):
    done = _train_recipe(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # the quick recipe's gate is 0

    expected = QUICK.with_settings(**SMALL)
    counts = {split: shards.read_manifest(str(tmp_path / split)).count for split in ("train", "val", "test")}
    assert counts == {"train": 192, "val": 32, "test": 32}
    assert shards.read_manifest(str(tmp_path / "test")).params["tier"] == "noisy"

    spec = json.loads((tmp_path / "model" / "spec.json").read_text())
    assert spec["training"]["config"] == json.loads(json.dumps(expected.training.to_dict()))
    assert "language_model" not in spec or not spec["language_model"], "spelling weight 0 saves no spelling model"

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["recipe"] == "quick" and report["settings"] == expected.settings()
    assert report["test"]["count"] == 32 and 0.0 <= report["test"]["word_accuracy"] <= 1.0
    assert report["passes_gate"] is True and report["training"]["epochs_run"] == 1

    # Started again with one more epoch: the data are kept, only the second epoch trains.
    again = _train_recipe(tmp_path, "--epochs", "2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already has these params; not regenerating" in again.stderr
    assert "resuming from" in again.stderr and "after epoch 1" in again.stderr
    assert json.loads((tmp_path / "run.json").read_text())["training"]["epochs_run"] == 2
