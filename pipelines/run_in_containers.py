"""The compiled pipeline with every task in the image the YAML names, on this machine.

    python -m pipelines.run_in_containers [--workdir out/containers-run] [--gcs-endpoint URL]

`make run` executes pipelines/word_ocr_pipeline.yaml with kfp.local's subprocess runner, in this
checkout's venv. This runs the same file with kfp.local's DockerRunner: each task starts from its
image (built by `make images`), sees only the pipeline root (bind-mounted at the same path, as a
cluster's artifact store would be the only shared place) and runs as the image's non-root user. A
task that needs a file of the checkout fails here, as it would on a cluster.

No Docker daemon is needed: podman serves Docker's API on a socket under the workdir for the run's
length (``podman system service``). Two workarounds of podman 4.3's Docker API, both local to this
run: kfp starts each container with ``auto_remove=True`` and podman answers an inspection of an
already removed container with 500 (kfp expects 404), so containers are kept until the run ends
and then removed; and the pipeline root is made writable for the images' user (UID 10001).

``--gcs-endpoint``: data, checkpoints and the serving root go to ``gs://`` on that GCS-compatible
server (the containers share this host's network to reach a server on loopback).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from images.engine import Engine, EngineError, find_engine
from pipelines.compile import COMPILED_PATH
from pipelines.run_local import pipeline_arguments
from tools.processes import start_process, stop_process
from wordocr.recipes import QUICK

log = logging.getLogger("word-ocr")
SOCKET_TIMEOUT_S = 30.0
# Small enough for 2 cores with every task's image start on top; the quick recipe's gate lets any
# model through: this run checks that the images work, not how well so little data trains.
SIZES = dict(train_samples=512, val_samples=128, test_samples=128, epochs=1, num_shards=2)


@contextlib.contextmanager
def docker_api(engine: Engine, workdir: Path) -> Iterator[str]:
    """A Docker-compatible API for the run: docker's own daemon, or ``podman system service`` on a socket."""
    if engine.name == "docker":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    socket = workdir / "podman.sock"
    socket.unlink(missing_ok=True)
    url = f"unix://{socket}"
    # SIGTERM when this process ends however it ends: the service never outlives the run.
    service = start_process(engine.command("system", "service", "--time=0", url), death_signal=signal.SIGTERM,
                            env={**os.environ, **engine.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + SOCKET_TIMEOUT_S
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                why = service.stderr.read().decode().strip().splitlines()[-1:] if service.poll() is not None else []
                raise EngineError(f"podman's API service did not start on {socket}: {' '.join(why) or 'no socket'}")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(service, 10)
        socket.unlink(missing_ok=True)


@contextlib.contextmanager
def kept_containers(extra_environment: dict[str, str], network_mode: str | None) -> Iterator[list]:
    """Start kfp's containers without auto-removal (and with our environment), remove them afterwards."""
    import docker.errors
    from docker.models.containers import ContainerCollection

    started: list = []
    original = ContainerCollection.run

    def run(self, image, command=None, **kwargs):
        kwargs["auto_remove"] = False
        kwargs["environment"] = {**extra_environment, **(kwargs.get("environment") or {})}
        if network_mode:
            kwargs["network_mode"] = network_mode
        container = original(self, image, command, **kwargs)
        started.append((image, container))
        return container

    ContainerCollection.run = run
    try:
        yield started
    finally:
        ContainerCollection.run = original
        for _, container in started:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


@contextlib.contextmanager
def writable_for_images(folder: Path) -> Iterator[None]:
    """The tasks run as UID 10001 and write under the pipeline root, which this (root) process creates:
    the root and every folder kfp.local makes in it before a container starts are left writable."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@dataclasses.dataclass(frozen=True)
class ContainerRun:
    """What a run in containers was given and which image each of its tasks started from, in order."""

    arguments: dict
    images: list[str]


def run(workdir: Path, gcs_endpoint: str = "", bucket: str = "word-ocr", seed: int = 1,
        sizes: dict | None = None, engine: Engine | None = None) -> ContainerRun:
    """Run the compiled pipeline in containers. RuntimeError if a task fails."""
    from kfp import components, local

    engine = engine or find_engine(need_run=True)
    workdir = workdir.resolve()
    profile = QUICK.with_settings(**(sizes or SIZES))
    environment = {}
    if gcs_endpoint:
        serving_root = f"gs://{bucket}/serving"
        environment["STORAGE_EMULATOR_HOST"] = gcs_endpoint
    else:
        serving_root = str(workdir / "serving")
    arguments = pipeline_arguments(profile, serving_root, "word-ocr", seed)
    # One worker per generate task: each task is a container on 2 cores already.
    arguments["workers"] = 1
    if gcs_endpoint:
        arguments.update(data_root=f"gs://{bucket}/runs", checkpoint_root=f"gs://{bucket}/checkpoints")
    with writable_for_images(workdir), docker_api(engine, workdir) as api:
        os.environ["DOCKER_HOST"] = api
        with kept_containers(environment, "host" if gcs_endpoint else None) as started:
            local.init(runner=local.DockerRunner(), pipeline_root=str(workdir))
            pipeline = components.load_component_from_file(str(COMPILED_PATH))
            log.info("running %s with every task in its image: %s", COMPILED_PATH.name, arguments)
            pipeline(**arguments)
            images = [image for image, _ in started]
    return ContainerRun(arguments, images)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m pipelines.run_in_containers", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("out/containers-run"),
                        help="pipeline root, data and serving root (default: %(default)s)")
    parser.add_argument("--gcs-endpoint", default="", help="a GCS-compatible server (http://127.0.0.1:PORT)")
    parser.add_argument("--bucket", default="word-ocr", help="bucket on --gcs-endpoint (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    done = run(args.workdir, args.gcs_endpoint, args.bucket, args.seed)
    log.info("pipeline finished in containers in %.1f min (%d tasks, images %s); published under %s",
             (time.monotonic() - started) / 60, len(done.images), sorted(set(done.images)),
             done.arguments["serving_root"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
