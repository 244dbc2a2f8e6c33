"""Start a run of the compiled pipeline on a Kubeflow Pipelines endpoint (what `make submit` runs).

    python -m pipelines.submit --host http://localhost:8080 --serving-root gs://BUCKET/serving \\
        --data-root gs://BUCKET/runs --checkpoint-root gs://BUCKET/checkpoints --param epochs=30

It uploads pipelines/word_ocr_pipeline.yaml (the file `make compile` writes and the tests check) with
``kfp.Client(host=...).create_run_from_pipeline_package``. Parameters are checked against the
compiled spec before anything is sent. With ``--registry`` / ``--image-version`` the images the tasks
run in are renamed to the ones `make push REGISTRY=... IMAGE_VERSION=...` pushed, and the run's
``predictor_image`` (what the rollout step serves the model with) names that registry's predictor;
``--predictor-image REGISTRY/predictor@sha256:...`` names it by digest instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from components import images
from pipelines.compile import COMPILED_PATH

HOST_ENV = "KFP_HOST"
# The images tasks run in; the predictor's is a pipeline parameter (predictor_image).
IMAGE_NAMES = ("components", "trainer")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Roots a pod reads or writes: a path on this machine means nothing there.
CLUSTER_ROOTS = ("serving_root", "data_root", "checkpoint_root")
_CONVERTERS = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": lambda text: {"true": True, "false": False}[text.lower()],
}


def pipeline_parameters(package: Path) -> dict[str, dict]:
    """The compiled pipeline's parameters: name -> {parameterType, defaultValue?, ...}."""
    spec = next(yaml.safe_load_all(package.read_text()))
    return spec["root"]["inputDefinitions"]["parameters"]


def parse_params(pairs: list[str], parameters: dict[str, dict]) -> dict:
    """``["epochs=30", ...]`` -> ``{"epochs": 30}``, typed by the compiled spec; ValueError when wrong."""
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in parameters:
            known = ", ".join(sorted(parameters))
            raise ValueError(f"--param {name}: the pipeline has no such parameter; it has {known}")
        kind = parameters[name]["parameterType"]
        try:
            values[name] = _CONVERTERS[kind](text)
        except (KeyError, ValueError):
            raise ValueError(f"--param {name}={text!r}: not a valid {kind}") from None
    return values


def retag_images(text: str, registry: str | None, version: str | None) -> str:
    """The compiled YAML with the project's images renamed to ``registry/NAME:version``."""
    for name in IMAGE_NAMES:
        old = f"{images.REGISTRY}/{name}:{images.VERSION}"
        new = f"{(registry or images.REGISTRY).rstrip('/')}/{name}:{version or images.VERSION}"
        text = text.replace(old, new)
    return text


def _defaults_text() -> str:
    shown = []
    for name, spec in pipeline_parameters(COMPILED_PATH).items():
        if "defaultValue" not in spec:
            shown.append(f"{name} (required)")
            continue
        default = spec["defaultValue"]
        # The spec stores every number as a JSON number (200000.0): show integers as integers.
        shown.append(f"{name}={int(default) if spec['parameterType'] == 'NUMBER_INTEGER' else default!r}")
    return ", ".join(shown)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.submit",
        description="Start a run of the compiled word-ocr pipeline on a Kubeflow Pipelines 2.x endpoint.",
        epilog=f"Pipeline parameters (--param NAME=VALUE) and their defaults: {_defaults_text()}. "
        "docs/cluster.md sets up a GKE cluster to submit to.",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get(HOST_ENV, ""),
        help=f"the KFP API endpoint, e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
        f"svc/ml-pipeline-ui 8080:80` (default: ${HOST_ENV})",
    )
    parser.add_argument(
        "--experiment", default="word-ocr", help="experiment to file the run under (default: %(default)s)"
    )
    parser.add_argument("--run-name", help="the run's display name (default: KFP's: pipeline name and time)")
    parser.add_argument(
        "--serving-root", required=True, help="gs://BUCKET/serving: where the publish step writes model versions"
    )
    parser.add_argument(
        "--data-root",
        default="",
        help="gs://BUCKET/runs: datasets and the model go to DATA_ROOT/RUN_ID/... (default: the KFP artifacts)",
    )
    parser.add_argument(
        "--checkpoint-root",
        default="",
        help="gs://BUCKET/checkpoints: training saves every epoch there, and a preempted pod resumes "
        "(default: no checkpoints)",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="any other pipeline parameter (repeatable)"
    )
    parser.add_argument("--pipeline-root", help="gs://BUCKET/pipeline-root (default: the KFP deployment's)")
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installs)")
    parser.add_argument("--service-account", help="the Kubernetes service account the run's pods use")
    parser.add_argument("--registry", help=f"where the images were pushed (default: {images.REGISTRY})")
    parser.add_argument("--image-version", help=f"the images' tag (default: {images.VERSION})")
    parser.add_argument(
        "--predictor-image",
        help="the image the rollout step serves the model with, best by digest: REGISTRY/predictor@sha256:... "
        "(default: REGISTRY/predictor:IMAGE_VERSION when either is given, else the InferenceService's own)",
    )
    parser.add_argument("--no-cache", action="store_true", help="run every task again (no KFP cache hits)")
    parser.add_argument(
        "--package",
        type=Path,
        default=COMPILED_PATH,
        help=f"compiled pipeline (default: pipelines/{COMPILED_PATH.name})",
    )
    parser.add_argument("--dry-run", action="store_true", help="check and print the run; send nothing")
    args = parser.parse_args(argv)
    if not args.host and not args.dry_run:
        parser.error(f"no KFP endpoint: pass --host URL or set {HOST_ENV} (docs/cluster.md shows how to reach it)")
    return args


def run_arguments(args: argparse.Namespace) -> dict:
    """The pipeline arguments of the run; ValueError when one is unknown, mistyped or a local path."""
    parameters = pipeline_parameters(args.package)
    if not args.serving_root:
        raise ValueError("--serving-root is empty: give the gs://BUCKET/serving the publish step writes to")
    arguments = {"serving_root": args.serving_root}
    if args.data_root:
        arguments["data_root"] = args.data_root
    if args.checkpoint_root:
        arguments["checkpoint_root"] = args.checkpoint_root
    if image := predictor_image(args):
        arguments["predictor_image"] = image
    arguments.update(parse_params(args.param, parameters))
    image = arguments.get("predictor_image", "")
    if "@" in image and not DIGEST.search(image):
        raise ValueError(f"predictor image {image!r}: a digest is @sha256: and 64 hex digits")
    for name in CLUSTER_ROOTS:
        value = arguments.get(name, "")
        if value and not value.startswith("gs://"):
            raise ValueError(f"{name}={value!r}: the run's pods share no disk with this machine; use gs://BUCKET/...")
    return arguments


def predictor_image(args: argparse.Namespace) -> str:
    """The predictor image the flags name: --predictor-image, else the registry's predictor, else ""."""
    if args.predictor_image:
        return args.predictor_image
    if args.registry or args.image_version:
        return f"{(args.registry or images.REGISTRY).rstrip('/')}/predictor:{args.image_version or images.VERSION}"
    return ""


def rollout_notes(arguments: dict) -> list[str]:
    """What a run that rolls out to KServe will serve the model with, when that deserves a word."""
    if not arguments.get("isvc_namespace"):
        return []
    image = arguments.get("predictor_image", "")
    if not image:
        return ["the rollout keeps the InferenceService's own predictor image (the overlay's `images:` entry)"]
    if not DIGEST.search(image):
        return [
            f"the predictor image {image} is a tag: it is pulled Always, and a tag pushed again changes what "
            "older revisions scale up with; --predictor-image REGISTRY/predictor@sha256:... pins it"
        ]
    return []


def submit(args: argparse.Namespace):
    """Upload the package and start the run; returns kfp's RunPipelineResult."""
    import kfp

    arguments = run_arguments(args)
    text = retag_images(args.package.read_text(), args.registry, args.image_version)
    client = kfp.Client(host=args.host, namespace=args.namespace or "kubeflow")
    with tempfile.TemporaryDirectory(prefix="word-ocr-submit-") as tmp:
        package = Path(tmp, args.package.name)
        package.write_text(text)
        return client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments,
            run_name=args.run_name,
            experiment_name=args.experiment,
            namespace=args.namespace,
            pipeline_root=args.pipeline_root,
            enable_caching=False if args.no_cache else None,
            service_account=args.service_account,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        arguments = run_arguments(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in rollout_notes(arguments):
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        print(f"would start {args.package.name} in experiment {args.experiment!r} with {arguments}")
        return 0
    result = submit(args)
    print(f"started run {result.run_id} in experiment {args.experiment!r} on {args.host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
