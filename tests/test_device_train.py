"""tools/device_train: a recipe trained without Kubeflow, through wordocr.train, on this machine.

The harness is meant for a GPU machine; here it runs on this machine's TensorFlow, on the CPU,
with the quick recipe shrunk further. What is checked: it makes the recipe's datasets, trains
with the recipe's options (as the artifact's spec records them), writes the artifact a pipeline
run publishes, reads the gate's test grid and judges every cell by the recipe's thresholds, and
a second start reuses the datasets, the grid and the finished epochs instead of redoing them.
A threshold above any reading refuses the model with exit code 2, naming the cell.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wordocr import shards
from wordocr.recipes import GATE_CELLS, QUICK

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
    counts = {split: shards.read_manifest(str(tmp_path / split)).count for split in ("train", "val")}
    assert counts == {"train": 192, "val": 32}
    for cell in GATE_CELLS:
        manifest = shards.read_manifest(str(tmp_path / "test_grid" / cell.replace("/", "-")))
        font_set, tier = cell.split("/")
        assert (manifest.count, manifest.params["tier"], manifest.params["font_set"]) == (32, tier, font_set)

    spec = json.loads((tmp_path / "model" / "spec.json").read_text())
    assert spec["training"]["config"] == json.loads(json.dumps(expected.training.to_dict()))
    assert "language_model" not in spec or not spec["language_model"], "spelling weight 0 saves no spelling model"

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["recipe"] == "quick" and report["settings"] == expected.settings()
    assert set(report["test_grid"]["cells"]) == set(GATE_CELLS)
    assert all(c["count"] == 32 and 0.0 <= c["word_accuracy"] <= 1.0 for c in report["test_grid"]["cells"].values())
    assert [c["cell"] for c in report["gate"]["cells"]] == list(GATE_CELLS)  # every cell judged
    assert report["passes_gate"] is True and report["gate"]["passed"] is True  # the quick recipe's gate is 0
    assert report["training"]["epochs_run"] == 1

    # Started again with one more epoch: the data are kept, only the second epoch trains.
    again = _train_recipe(tmp_path, "--epochs", "2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already has these params; not regenerating" in again.stderr
    assert "resuming from" in again.stderr and "after epoch 1" in again.stderr
    assert json.loads((tmp_path / "run.json").read_text())["training"]["epochs_run"] == 2

    # A threshold no reading reaches refuses the model, and says which cell.
    refused = _train_recipe(tmp_path, "--epochs", "2", "--gate-heldout-hard", "1.01")
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "REFUSED: heldout/hard" in refused.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["passes_gate"] is False
    assert [c["cell"] for c in report["gate"]["cells"] if c["failures"]] == ["heldout/hard"]
