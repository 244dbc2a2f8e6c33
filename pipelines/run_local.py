"""`make run`: the whole pipeline on this machine, then the predictor serving what it deployed.

It runs the very compiled YAML a cluster runs (pipelines/word_ocr_pipeline.yaml) with the KFP
local subprocess runner, writing data, models and the pipeline root under ``--workdir``; prints
the gate's table (every cell's threshold, the served and the new model's reading, the verdict);
then, if the model passed the gate, starts the KServe ModelServer on localhost and prints
``curl`` lines that work.

The terminal shows one line per task and progress bars (pipelines/console.py); everything else,
the predictor's output included, goes to ``WORKDIR/logs/run-*.log``. The predictor never outlives
the runner: Ctrl-C, SIGTERM and SIGHUP stop it, and a parent-death signal ends it if the runner is
killed outright.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TextIO

from pipelines.compile import COMPILED_PATH
from pipelines.console import (
    LineTee,
    RunPlan,
    TaskConsole,
    console_for,
    format_duration,
    new_log_path,
    output_into,
    plain_text,
)
from pipelines.stopping import exit_at_once_on_stop, stop_signals
from tools.processes import http_ok, start_process, stop_process, wait_until_ready
from wordocr.dataset_spec import TEXT_DESCRIPTIONS
from wordocr.gate import Verdict
from wordocr.recipes import RECIPES, Recipe, add_setting_flags, recipe_from_flags

log = logging.getLogger("word-ocr")
# Loading TensorFlow, the model and compiling its XLA and beam-search paths takes 10-30 s on 2 cores.
READY_TIMEOUT_S = 120.0


def pipeline_arguments(recipe: Recipe, serving_root: Path | str, model_name: str, seed: int | None = None) -> dict:
    """The pipeline's arguments for a run of ``recipe`` (its every setting), publishing under
    ``serving_root``; ``seed``, if given, replaces the recipe's."""
    args = recipe.settings()
    if seed is not None:
        args["seed"] = seed
    args.update(serving_root=str(serving_root), model_name=model_name, workers=os.cpu_count() or 1)
    return args


def run_pipeline(workdir: Path, arguments: dict, pipeline_yaml: Path = COMPILED_PATH) -> Verdict:
    """Run the compiled pipeline with kfp.local and return its output, the gate's verdict; raises
    RuntimeError if a task fails."""
    from kfp import components, local

    # use_venv=False: each task runs in this venv (offline; no per-task pip install).
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "pipeline_root"))
    pipeline = components.load_component_from_file(str(pipeline_yaml))
    return Verdict.from_dict(json.loads(pipeline(**arguments).output))


def curl_examples(port: int, model_name: str) -> str:
    base = f"http://localhost:{port}"
    return "\n".join(
        [
            "# word endpoint (renders the word, then reads it):",
            f'curl -s {base}/v1/models/{model_name}:predict -d \'{{"instances": [{{"word": "game"}}]}}\'',
            "# image endpoint (any PNG/JPEG of a word; examples/word.png is one):",
            f"curl -s {base}/v1/models/{model_name}:predict "
            f'-d "{{\\"instances\\": [{{\\"image_b64\\": \\"$(base64 -w0 examples/word.png)\\"}}]}}"',
            "# v2 (Open Inference Protocol):",
            # v2 reads a body without a JSON content type as binary tensors, so say it is JSON.
            f"curl -s {base}/v2/models/{model_name}/infer -H 'Content-Type: application/json' -d "
            '\'{"inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["game"]}]}\'',
            "# the prototype's form API:",
            f"curl -s --data input_word=game {base}/predict",
        ]
    )


def say(console: TextIO, text: str = "") -> None:
    """A line for the person at the terminal, also kept in the log."""
    print(text, file=console, flush=True)
    if text.strip():
        log.info("%s", text.strip())


def serve(model_uri: str, model_name: str, port: int, console: TextIO, log_file: TextIO) -> int:
    """Run the predictor until Ctrl-C (or SIGTERM, SIGHUP); its output goes to ``log_file``.
    Returns its exit code, 0 when stopped by a signal, 1 if it never became ready."""
    command = [
        sys.executable,
        "-m",
        "serving",
        "--model_dir",
        model_uri,
        "--model_name",
        model_name,
        "--http_port",
        str(port),
        "--enable_grpc",
        "false",
    ]
    log.info("starting the predictor: %s", " ".join(command))
    say(console, f"starting the predictor on port {port} ...")
    log_file.flush()
    # Same process group as the runner, so Ctrl-C in the terminal reaches both; a parent-death
    # signal ends it if the runner is killed outright (SIGKILL).
    process = start_process(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{model_name}"
        try:
            wait_until_ready(lambda: http_ok(url), f"the predictor at {url}", READY_TIMEOUT_S, process, interval_s=0.5)
        except (RuntimeError, TimeoutError) as failed:
            say(console, f"error: {failed}; its output is in the log")
            return 1
        say(console, f"\nThe model is served on http://localhost:{port} (Ctrl-C stops it). Try:\n")
        say(console, curl_examples(port, model_name) + "\n")
        code = process.wait()
        say(console, f"the predictor exited with code {code}")
        return code
    except KeyboardInterrupt:
        say(console, "stopping the predictor")
        return 0
    finally:
        stop_process(process, 10, signal.SIGINT)


def run_pipeline_with_console(
    workdir: Path, arguments: dict, plan: RunPlan, console: TextIO, tee: LineTee, log_path: Path
) -> Verdict | None:
    """``run_pipeline`` with one console line per task; None (after showing the failed task's last
    lines) if the pipeline failed. Stopped (Ctrl-C, SIGTERM, SIGHUP), it ends its tasks, says so and
    exits the process at once."""
    tasks = TaskConsole(console, plan)
    root = logging.getLogger()
    root.addFilter(tasks)
    tee.on_line = tasks.on_line

    def last_words() -> None:
        tasks.interrupted()
        say(console, "stopped")
        say(console, f"full log: {log_path}")
        tee.finish()
        console.flush()

    try:
        with exit_at_once_on_stop(last_words):
            return run_pipeline(workdir, arguments)
    except RuntimeError as failure:  # kfp.local: "Pipeline ... finished with status FAILURE. Inner task failed: ..."
        log.error("%s", failure)
        for task in tasks.failed:
            say(console, f"\nlast lines of {task.name}:")
            for line in task.tail:
                say(console, "    " + line.strip()[:200])
        say(console, "\nthe pipeline failed: " + plain_text(str(failure)))
        return None
    finally:
        tasks.close()
        tee.on_line = None
        root.removeFilter(tasks)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.run_local",
        description="Run the word-ocr pipeline locally (kfp.local), then serve the deployed model. "
        "Its settings are --recipe's (wordocr/recipes.py); each setting's flag changes that one.",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("out"), help="where data, models and runs go (default: %(default)s)"
    )
    parser.add_argument(
        "--recipe", choices=list(RECIPES),
        help="the run's settings: local (the default) fits 2 CPU cores, quick takes a minute or two, cluster "
        "is meant for a GPU",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="the quick recipe: tiny sizes and no gate, for demos and tests"
    )
    parser.add_argument(
        "--model-name", default="word-ocr", help="name served at /v1/models/NAME (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the predictor (default: %(default)s)")
    parser.add_argument("--no-serve", action="store_true", help="stop after the pipeline; do not start the predictor")
    parser.add_argument(
        "--serve-only", action="store_true", help="skip the pipeline; serve the model last deployed under --workdir"
    )
    add_setting_flags(parser)
    args = parser.parse_args(argv)
    if args.quick and args.recipe not in (None, "quick"):
        parser.error(f"--quick and --recipe {args.recipe} name two recipes")
    args.recipe = "quick" if args.quick else args.recipe or "local"
    try:
        recipe_from_flags(args.recipe, args)
    except ValueError as exc:  # a setting no recipe can take, said before anything runs
        parser.error(str(exc))
    return args


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """``--recipe``'s settings with those the flags give."""
    return recipe_from_flags(args.recipe, args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    log_path = new_log_path(workdir, "serve" if args.serve_only else "run")
    console, opened = console_for(sys.stdout)
    try:
        with open(log_path, "a", encoding="utf-8") as log_file, stop_signals(), output_into(log_file) as tee:
            handler = logging.StreamHandler(sys.stdout)  # the tee: into the log file
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(handler)
            logging.getLogger().setLevel(logging.INFO)
            say(console, f"full log: {log_path}")
            try:
                return _run(args, workdir, console, log_file, tee, log_path)
            except KeyboardInterrupt:
                say(console, "stopped")
                return 130
            finally:
                say(console, f"full log: {log_path}")
    finally:
        if opened:
            console.close()


def _run(args: argparse.Namespace, workdir: Path, console: TextIO, log_file: TextIO, tee: LineTee,
         log_path: Path) -> int:  # fmt: skip
    from wordocr.publish import current_model

    serving_root = workdir / "serving"
    if not args.serve_only:
        recipe = recipe_from_args(args)
        before = current_model(str(serving_root), args.model_name)
        arguments = pipeline_arguments(recipe, serving_root, args.model_name)
        log.info("running %s locally with %s", COMPILED_PATH.name, arguments)
        lowest = min(recipe.gate.values())
        say(
            console,
            f"running the pipeline with kfp.local ({recipe.name} recipe): {recipe.train_samples:,} training images "
            f"({TEXT_DESCRIPTIONS[recipe.train_text]}), "
            f"{recipe.training.epochs} epochs; the gate: {len(recipe.gate)} cells of {recipe.test_samples:,} images, "
            f"thresholds {lowest:g}-{max(recipe.gate.values()):g}, tolerance {recipe.regression_tolerance:g}",
        )
        plan = RunPlan(images=recipe.train_samples + recipe.val_samples, epochs=recipe.training.epochs)
        started = time.monotonic()
        verdict = run_pipeline_with_console(workdir, arguments, plan, console, tee, log_path)
        if verdict is None:
            return 1
        say(console, f"pipeline finished in {format_duration(time.monotonic() - started)}")
        say(console, "\nthe gate (word accuracy per cell of the test grid):")
        say(console, textwrap.indent(verdict.text(), "    ") + "\n")
        after = current_model(str(serving_root), args.model_name)
        if not verdict.passed or after is None or after == before:
            say(
                console,
                "error: the gate refused the model and it was not deployed; the model being served (if any) is "
                "unchanged. Train longer (--epochs, --train-samples), or change the gate (--gate, --gate-CELL, "
                "--regression-tolerance)",
            )
            return 2
        say(console, f"deployed {after['uri']}")
    pointer = current_model(str(serving_root), args.model_name)
    if pointer is None:
        say(console, f"error: no model has been deployed under {serving_root} yet: run without --serve-only first")
        return 2
    if args.no_serve:
        return 0
    say(console, f"full log (the predictor's too): {log_path}")
    return serve(pointer["uri"], args.model_name, args.port, console, log_file)


if __name__ == "__main__":
    sys.exit(main())
