"""The compiled pipeline runs end to end under kfp.local (the real subprocess runner) on tiny sizes.

Nothing is mocked here: the tasks generate shards, train a (tiny) model, evaluate it on the test
grid, judge it and publish it, or refuse to, exactly as `make run` does.
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
from wordocr import shards, test_grid
from wordocr.publish import POINTER_NAME, current_model
from wordocr.recipes import GATE_CELLS

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


def test_a_model_at_or_above_the_gate_is_deployed_with_its_readings_per_cell(deployed_workdir):
    pointer = current_model(str(deployed_workdir / "serving"), "word-ocr")
    assert pointer is not None
    version = deployed_workdir / "serving" / "word-ocr" / pointer["version"]
    assert (version / "spec.json").is_file() and (version / "model.keras").is_file()
    # The record the next model is judged against: every cell, and the test set it was read on.
    cells = pointer["metrics"]["cells"]
    assert sorted(cells) == sorted(GATE_CELLS)  # a KFP struct: its keys come back sorted
    assert all(cell["count"] == 64 and 0.0 <= cell["word_accuracy"] <= 1.0 for cell in cells.values())
    assert pointer["metrics"]["test_set"] == test_grid.describe_test_set(64)


def test_train_shards_are_collected_into_one_dataset_with_its_manifest(deployed_workdir):
    # One task per shard (the ParallelFor), then collect-shards: every shard in one folder, manifest last.
    [dataset] = (deployed_workdir / "pipeline_root").rglob("collect-shards/dataset")
    manifest = shards.read_manifest(str(dataset))
    assert manifest.count == 192
    assert sorted(p.name for p in dataset.glob("*.tfrecord")) == [s.name for s in manifest.shards] == [
        shards.shard_name(0, 2), shards.shard_name(1, 2)
    ]  # fmt: skip
    assert len(list((deployed_workdir / "pipeline_root").rglob("generate-shard/shard"))) == 2


def test_evaluation_reads_every_cell_of_the_grid_and_reports_each_per_face(deployed_workdir):
    reports = list((deployed_workdir / "pipeline_root").rglob("evaluate-model/report"))
    assert reports, "the evaluate task wrote no report artifact"
    report = json.loads(reports[0].read_text())
    assert sorted(report["cells"]) == sorted(report["reports"]) == sorted(GATE_CELLS)
    for cell, details in report["reports"].items():
        assert details["count"] == 64 and 0.0 <= details["word_accuracy"] <= 1.0 and details["cer"] >= 0.0
        assert sum(face["count"] for face in details["per_font"].values()) == 64
        font_set = cell.split("/")[0]
        assert all(face.split("/")[0] in report["test_set"]["families"][font_set] for face in details["per_font"])
    # The grid's images are an artifact of the evaluate task: one dataset per cell, with its preview.
    [grid] = (deployed_workdir / "pipeline_root").rglob("evaluate-model/test_grid")
    for cell in GATE_CELLS:
        assert shards.read_manifest(test_grid.cell_uri(str(grid), cell)).count == 64
        assert (Path(test_grid.cell_uri(str(grid), cell)) / "preview.png").is_file()


def test_the_gate_shows_its_table_in_the_kfp_ui(deployed_workdir):
    [table] = (deployed_workdir / "pipeline_root").rglob("gate-model/table")
    markdown = table.read_text()
    assert markdown.startswith("## Gate: PASSED")
    for cell in GATE_CELLS:
        assert re.search(rf"^\| {cell} \| 0\.000 \| - \| [\d.]+ \| - \| pass \|$", markdown, re.M), markdown


def test_the_console_shows_one_line_per_task_and_the_log_file_everything(deployed_run):
    workdir, console = deployed_run
    [log_path] = workdir.glob("logs/run-*.log")
    lines = console.splitlines()
    assert lines[0] == lines[-1] == f"full log: {log_path}", console
    full_log = plain_text(log_path.read_text())
    executed = re.findall(r"Executing task '([^']+)'", full_log)
    task_lines = [line for line in lines if re.match(r"  \S", line)]
    assert sorted(line.split()[0] for line in task_lines) == sorted(executed), console
    assert all(line.split()[1] == "done" for line in task_lines), console
    # Each task's key number.
    shown = {line.split()[0]: line for line in task_lines}
    assert shown["generate-shard"].endswith(" 96 images")  # 192 train images in 2 shards
    assert shown["collect-shards"].endswith(" 192 train images")
    assert shown["generate-words"].endswith(" 64 val images")
    assert re.search(r"best val word accuracy [\d.]+ \(1 epoch\)$", shown["train-model"])
    assert re.search(r"8 cells of 64 images, the lowest \w+/\w+ [\d.]+$", shown["evaluate-model"])
    assert shown["gate-model"].endswith("passed: publish")
    assert re.search(r"published v\d{8}-\d{6}-\w{6}$", shown["publish-model"])
    # Then the gate's table, every cell with its verdict, and the deployed version.
    table = lines.index("the gate (word accuracy per cell of the test grid):")
    assert lines[table + 1] == "    PASSED: every cell at or above its threshold; no model served yet"
    for cell in GATE_CELLS:
        assert any(re.match(rf"    {cell} +0\.000 +- +[\d.]+ +- +pass$", line) for line in lines), console
    # kfp.local's executor input and the tasks' own logs are in the file, not on the console.
    for detail in ('"parameterValues"', "Streamed logs", "epoch 1/1:"):
        assert detail in full_log and detail not in console
    assert all(line.strip() in full_log for line in task_lines)
    assert "PASSED: every cell at or above its threshold" in full_log, "the run log says what the console said"
    assert len(lines) < len(task_lines) + len(GATE_CELLS) + 16, console


def test_a_model_below_a_threshold_is_not_deployed_and_the_table_says_which_cells(tmp_path, capsys):
    code = run_local.main(["--workdir", str(tmp_path), *TINY, "--gate", "0", "--gate-heldout-hard", "1.01"])
    assert code == 2
    console = capsys.readouterr().out
    assert re.search(r"^  gate-model +done .*refused: nothing published \(table below\)$", console, re.M), console
    assert re.search(r"^  reject-model +done .*refused by the gate: nothing published$", console, re.M), console
    refused = r"^    REFUSED: heldout/hard [\d.]+ is below its threshold 1\.010 by [\d.]+$"
    assert re.search(refused, console, re.M), console
    assert re.search(r"^    heldout/hard +1\.010 .* FAIL: ", console, re.M), console
    assert "error: the gate refused the model" in console
    assert current_model(str(tmp_path / "serving"), "word-ocr") is None
    assert not (tmp_path / "serving").exists()


def test_a_model_worse_than_the_served_one_leaves_it_served(tmp_path, capsys):
    """The served model read every cell perfectly (on the very images this run reads): a tiny model
    is refused for the regression alone, its thresholds being 0."""
    served = tmp_path / "serving" / "word-ocr"
    version = served / "v20261201-000000-aaaaaa"
    version.mkdir(parents=True)
    (version / "spec.json").write_text("{}")
    record = {"test_set": test_grid.describe_test_set(64),
              "cells": {cell: {"word_accuracy": 1.0, "cer": 0.0, "count": 64} for cell in GATE_CELLS}}  # fmt: skip
    pointer = {"model_name": "word-ocr", "version": version.name, "uri": str(version), "metrics": record}
    (served / POINTER_NAME).write_text(json.dumps(pointer))
    before = {path: path.read_bytes() for path in served.rglob("*") if path.is_file()}

    code = run_local.main(["--workdir", str(tmp_path), *TINY, "--gate", "0", "--regression-tolerance", "0.01"])
    assert code == 2
    console = capsys.readouterr().out
    assert re.search(r"^    REFUSED: train/clean [\d.]+ is [\d.]+ below the served model's 1\.000 \(tolerance 0\.010\)",
                     console, re.M), console  # fmt: skip
    header = rf"^    cell +threshold +served {version.name} +challenger +delta +verdict$"
    assert re.search(header, console, re.M), console
    assert {path: path.read_bytes() for path in served.rglob("*") if path.is_file()} == before
    assert [p.name for p in served.iterdir() if p.is_dir()] == [version.name]


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
