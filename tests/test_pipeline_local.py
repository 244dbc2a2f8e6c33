"""The compiled pipeline runs end to end under kfp.local (the real subprocess runner) on tiny sizes.

Nothing is mocked here: the tasks generate shards, train a (tiny) model, evaluate it and publish
it, or refuse to, exactly as `make run` does.
"""

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines import run_local
from pipelines.console import plain_text
from tools.processes import start_process
from wordocr import shards
from wordocr.publish import current_model

pytestmark = pytest.mark.slow

TINY = [
    "--quick", "--no-serve", "--train-samples", "192", "--val-samples", "64", "--test-samples", "64",
    "--epochs", "1", "--num-shards", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def deployed_run(tmp_path_factory) -> tuple[Path, str]:
    """The work folder of a run that passed the gate, and what the run showed on its console."""
    workdir = tmp_path_factory.mktemp("run")
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        code = run_local.main(["--workdir", str(workdir), *TINY, "--gate", "0.0"])
    assert code == 0, console.getvalue()
    return workdir, console.getvalue()


@pytest.fixture(scope="module")
def deployed_workdir(deployed_run) -> Path:
    return deployed_run[0]


def test_a_model_at_or_above_the_gate_is_deployed(deployed_workdir):
    pointer = current_model(str(deployed_workdir / "serving"), "word-ocr")
    assert pointer is not None
    version = deployed_workdir / "serving" / "word-ocr" / pointer["version"]
    assert (version / "spec.json").is_file() and (version / "model.keras").is_file()
    assert 0.0 <= pointer["metrics"]["word_accuracy"] <= 1.0


def test_train_shards_are_collected_into_one_dataset_with_its_manifest(deployed_workdir):
    # One task per shard (the ParallelFor), then collect-shards: every shard in one folder, manifest last.
    [dataset] = (deployed_workdir / "pipeline_root").rglob("collect-shards/dataset")
    manifest = shards.read_manifest(str(dataset))
    assert manifest.count == 192
    assert sorted(p.name for p in dataset.glob("*.tfrecord")) == [s.name for s in manifest.shards] == [
        shards.shard_name(0, 2), shards.shard_name(1, 2)
    ]  # fmt: skip
    assert len(list((deployed_workdir / "pipeline_root").rglob("generate-shard/shard"))) == 2


def test_evaluation_writes_a_metrics_report(deployed_workdir):
    reports = list((deployed_workdir / "pipeline_root").rglob("report"))
    assert reports, "the evaluate task wrote no report artifact"
    report = json.loads(reports[0].read_text())
    assert report["count"] == 64
    assert 0.0 <= report["word_accuracy"] <= 1.0 and report["cer"] >= 0.0


def test_the_console_shows_one_line_per_task_and_the_log_file_everything(deployed_run):
    workdir, console = deployed_run
    [log_path] = workdir.glob("logs/run-*.log")
    lines = console.splitlines()
    assert lines[0] == lines[-1] == f"full log: {log_path}", console
    full_log = plain_text(log_path.read_text())
    executed = re.findall(r"Executing task '([^']+)'", full_log)
    task_lines = [line for line in lines if line.startswith("  ")]
    assert sorted(line.split()[0] for line in task_lines) == sorted(executed), console
    assert all(line.split()[1] == "done" for line in task_lines), console
    # Each task's key number.
    shown = {line.split()[0]: line for line in task_lines}
    assert shown["generate-shard"].endswith(" 96 images")  # 192 train images in 2 shards
    assert shown["collect-shards"].endswith(" 192 train images")
    assert re.search(r"best val word accuracy [\d.]+ \(1 epoch\)$", shown["train-model"])
    assert re.search(r"word accuracy [\d.]+, CER [\d.]+ on 64 images: passes the gate 0$", shown["evaluate-model"])
    assert any(re.search(r"passed the gate 0: published v\d{8}-", line) for line in task_lines), console
    # kfp.local's executor input and the tasks' own logs are in the file, not on the console.
    for detail in ('"parameterValues"', "Streamed logs", "epoch 1/1:"):
        assert detail in full_log and detail not in console
    assert all(line.strip() in full_log for line in task_lines)
    assert len(lines) < len(task_lines) + 10, console


def test_a_model_below_the_gate_is_not_deployed(tmp_path, capsys):
    code = run_local.main(["--workdir", str(tmp_path), *TINY, "--gate", "1.01"])
    assert code == 2
    console = capsys.readouterr().out
    assert re.search(r"^  evaluate\S* +done .*word accuracy [\d.]+.*: is below the gate 1.01$", console, re.M), console
    assert re.search(r"^  \S*reject\S* +done .*nothing published$", console, re.M), console
    assert current_model(str(tmp_path / "serving"), "word-ocr") is None
    assert not (tmp_path / "serving").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_only_serves_the_deployed_model_on_localhost(deployed_workdir):
    port = _free_port()
    process = start_process(
        [sys.executable, "-m", "pipelines.run_local", "--workdir", str(deployed_workdir), "--serve-only",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        printed = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if "curl -s http://localhost" in line:
                break
        assert any("curl -s http://localhost" in line for line in printed), "".join(printed)
        body = json.dumps({"instances": [{"word": "game"}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/word-ocr:predict", data=body)
        with urllib.request.urlopen(request, timeout=30) as response:
            prediction = json.loads(response.read())["predictions"][0]
        assert set(prediction["pred_text"]) <= set("abcdefghijklmnopqrstuvwxyz")
        assert len(prediction["top_3_paths"]) == 3
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
