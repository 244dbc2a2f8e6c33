"""`make run`: the whole pipeline on this machine, then the predictor serving what it deployed.

It runs the very compiled YAML a cluster runs (pipelines/word_ocr_pipeline.yaml) with the KFP
local subprocess runner, writing data, models and the pipeline root under ``--workdir``; then,
if the model passed the accuracy gate, starts the KServe ModelServer on localhost and prints
``curl`` lines that work.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.compile import COMPILED_PATH
from tools.processes import http_ok, stop_process, wait_until_ready

log = logging.getLogger("word-ocr")
# Loading TensorFlow, the model and compiling its XLA and beam-search paths takes 10-30 s on 2 cores.
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RunProfile:
    """Sizes of one local run; the cluster's defaults live in the pipeline signature."""

    train_samples: int
    val_samples: int
    test_samples: int
    epochs: int
    batch_size: int
    learning_rate: float
    num_shards: int
    accuracy_gate: float
    test_tier: str = "noisy"
    test_font_set: str = "train"
    train_tier: str = "train"


PROFILES = {
    # About 15 minutes on 2 CPU cores.
    "default": RunProfile(
        train_samples=30_000,
        val_samples=1_000,
        test_samples=1_000,
        epochs=5,
        batch_size=64,
        learning_rate=1e-3,
        num_shards=4,
        accuracy_gate=0.95,
    ),
    # A minute or two: proves the path end to end; the model is too small to pass a real gate.
    "quick": RunProfile(
        train_samples=2_000,
        val_samples=200,
        test_samples=200,
        epochs=2,
        batch_size=64,
        learning_rate=1e-3,
        num_shards=2,
        accuracy_gate=0.0,
    ),
}


def pipeline_arguments(profile: RunProfile, serving_root: Path, model_name: str, seed: int) -> dict:
    args = dataclasses.asdict(profile)
    args.update(serving_root=str(serving_root), model_name=model_name, seed=seed, workers=os.cpu_count() or 1)
    return args


def run_pipeline(workdir: Path, arguments: dict, pipeline_yaml: Path = COMPILED_PATH) -> None:
    """Run the compiled pipeline with kfp.local; raises RuntimeError if a task fails."""
    from kfp import components, local

    # use_venv=False: each task runs in this venv (offline; no per-task pip install).
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "pipeline_root"))
    pipeline = components.load_component_from_file(str(pipeline_yaml))
    pipeline(**arguments)


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


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(model_uri: str, model_name: str, port: int) -> int:
    """Run the predictor in the foreground until Ctrl-C; return its exit code."""
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
    process = subprocess.Popen(command)
    # A `kill` (SIGTERM) stops it as Ctrl-C does, so the predictor is never left behind.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{model_name}"
        wait_until_ready(lambda: http_ok(url), f"the predictor at {url}", READY_TIMEOUT_S, process, interval_s=0.5)
        print(f"\nThe model is served on http://localhost:{port} (Ctrl-C stops it). Try:\n", flush=True)
        print(curl_examples(port, model_name) + "\n", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_process(process, 10, signal.SIGINT)


# RunProfile's annotations are strings (postponed evaluation); map them to argparse converters.
_FIELD_TYPES = {"int": int, "float": float, "str": str}


def _profile_help(name: str) -> str:
    return ", ".join(f"{profile}: {getattr(values, name)}" for profile, values in PROFILES.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.run_local",
        description="Run the word-ocr pipeline locally (kfp.local), then serve the deployed model.",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("out"), help="where data, models and runs go (default: %(default)s)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and no gate: a minute or two, for demos and tests"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for data generation and training (default: %(default)s)"
    )
    parser.add_argument(
        "--model-name", default="word-ocr", help="name served at /v1/models/NAME (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the predictor (default: %(default)s)")
    parser.add_argument("--no-serve", action="store_true", help="stop after the pipeline; do not start the predictor")
    parser.add_argument(
        "--serve-only", action="store_true", help="skip the pipeline; serve the model last deployed under --workdir"
    )
    sizes = parser.add_argument_group("sizes (override the profile)")
    for field in dataclasses.fields(RunProfile):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "accuracy_gate":
            flag = "--gate"
        sizes.add_argument(flag, dest=field.name, type=_FIELD_TYPES[field.type], help=_profile_help(field.name))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    from wordocr.publish import current_model

    workdir = args.workdir.resolve()
    serving_root = workdir / "serving"
    if not args.serve_only:
        profile = PROFILES["quick" if args.quick else "default"]
        overrides = {
            f.name: getattr(args, f.name) for f in dataclasses.fields(RunProfile) if getattr(args, f.name) is not None
        }
        profile = dataclasses.replace(profile, **overrides)
        before = current_model(str(serving_root), args.model_name)
        arguments = pipeline_arguments(profile, serving_root, args.model_name, args.seed)
        log.info("running %s locally with %s", COMPILED_PATH.name, arguments)
        started = time.monotonic()
        run_pipeline(workdir, arguments)
        log.info("pipeline finished in %.1f min", (time.monotonic() - started) / 60)
        after = current_model(str(serving_root), args.model_name)
        if after is None or after == before:
            log.error(
                "the model stayed below the accuracy gate %.2f and was not deployed (see the 'reject' task's "
                "log above); train longer (--epochs, --train-samples) or lower --gate",
                profile.accuracy_gate,
            )
            return 2
        log.info(
            "deployed %s with word accuracy %.4f", after["uri"], after["metrics"].get("word_accuracy", float("nan"))
        )
    pointer = current_model(str(serving_root), args.model_name)
    if pointer is None:
        log.error("no model has been deployed under %s yet: run without --serve-only first", serving_root)
        return 2
    if args.no_serve:
        return 0
    return serve(pointer["uri"], args.model_name, args.port)


if __name__ == "__main__":
    sys.exit(main())
