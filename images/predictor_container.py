"""Run the predictor image as the InferenceService runs it, on this machine (podman or docker).

    python -m images.predictor_container --model out/serving/word-ocr [--port 8081]

The container gets what the manifest gives the pod (manifests/base/inferenceservice.yaml): its
command and args, the model folder at /mnt/models read-only (KServe's storage initializer puts it
there), the image's numeric user, every capability dropped, no privilege escalation, and a
read-only root filesystem (``readOnlyRootFilesystem``), writable only where the manifest mounts
an ``emptyDir`` (the predictor needs none). The port is published on 127.0.0.1 only. Ctrl-C stops the container the
way the kubelet does: SIGTERM, then SIGKILL after the manifest's grace period.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from images.engine import Engine, EngineError, find_engine, last_line

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifests" / "base" / "inferenceservice.yaml"
PREDICTOR_CONTAINER = "kserve-container"
# Kubernetes' default when a pod spec sets none.
DEFAULT_GRACE_S = 30
TMP_SIZE = "64m"
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class PodSpec:
    """What the InferenceService's predictor pod runs, as far as a single container can mirror it."""

    command: list[str]
    args: list[str]
    port: int
    model_name: str
    grace_s: int
    readiness_path: str
    read_only_root: bool
    drop_all_capabilities: bool
    no_privilege_escalation: bool
    writable_paths: tuple[str, ...]


def pod_spec(manifest: Path = MANIFEST) -> PodSpec:
    isvc = yaml.safe_load(manifest.read_text())
    predictor = isvc["spec"]["predictor"]
    container = next(c for c in predictor["containers"] if c["name"] == PREDICTOR_CONTAINER)
    args = [str(a) for a in container.get("args", [])]
    security = container.get("securityContext", {})
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    empty_dirs = {v["name"] for v in predictor.get("volumes", []) if "emptyDir" in v}
    return PodSpec(
        command=[str(c) for c in container["command"]],
        args=args,
        port=int(container["ports"][0]["containerPort"]),
        model_name=args[args.index("--model_name") + 1] if "--model_name" in args else isvc["metadata"]["name"],
        grace_s=int(predictor.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)),
        readiness_path=container["readinessProbe"]["httpGet"]["path"],
        read_only_root=bool(security.get("readOnlyRootFilesystem", False)),
        drop_all_capabilities="ALL" in security.get("capabilities", {}).get("drop", []),
        no_privilege_escalation=security.get("allowPrivilegeEscalation") is False,
        writable_paths=tuple(sorted(path for name, path in mounts.items() if name in empty_dirs)),
    )


def run_args(spec: PodSpec, image: str, model_dir: Path, host_port: int, name: str) -> list[str]:
    """``run`` arguments that start ``image`` as the pod would (detached)."""
    args = ["run", "--detach", "--name", name, "--publish", f"127.0.0.1:{host_port}:{spec.port}",
            "--volume", f"{model_dir.resolve()}:/mnt/models:ro", "--security-opt", "no-new-privileges",
            "--cap-drop", "ALL", "--read-only"]
    # Writable only where the manifest mounts an emptyDir, as in the pod.
    for path in spec.writable_paths:
        args += ["--tmpfs", f"{path}:rw,size={TMP_SIZE},mode=1777"]
    args += ["--stop-timeout", str(spec.grace_s), "--entrypoint", spec.command[0], image, *spec.command[1:], *spec.args]
    return args


def http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


@dataclass
class RunningPredictor:
    """A started predictor container: its engine, name and the URL of its published port."""

    engine: Engine
    name: str
    base_url: str
    spec: PodSpec
    started_at: float

    @property
    def model_url(self) -> str:
        return f"{self.base_url}{self.spec.readiness_path}"

    def running(self) -> bool:
        state = self.engine.run("inspect", "--format", "{{.State.Running}}", self.name, check=False, capture=True)
        return state.stdout.strip() == "true"

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds from the container's start to the readiness probe's 200; EngineError if it never comes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if http_status(self.model_url) == 200:
                return time.monotonic() - self.started_at
            if not self.running():
                raise EngineError(f"the predictor container exited before it was ready:\n{self.logs()[-3000:]}")
            time.sleep(0.2)
        raise EngineError(f"the predictor was not ready within {timeout_s:.0f} s:\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        done = self.engine.run("logs", self.name, check=False, capture=True)
        return done.stdout + done.stderr

    def memory_kib(self) -> dict[str, int]:
        """The server process's resident memory now and at its peak (VmRSS, VmHWM of PID 1), KiB."""
        status = self.engine.run("exec", self.name, "cat", "/proc/1/status", check=False, capture=True).stdout
        found = {}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def stop(self) -> tuple[int, float]:
        """SIGTERM, SIGKILL after the grace period (as the kubelet does); ``(exit code, seconds)``."""
        started = time.monotonic()
        self.engine.run("stop", "--time", str(self.spec.grace_s), self.name, check=False, capture=True)
        code = self.engine.run("wait", self.name, check=False, capture=True).stdout.strip().splitlines()
        seconds = time.monotonic() - started
        return (int(code[-1]) if code and code[-1].lstrip("-").isdigit() else -1), seconds

    def remove(self) -> None:
        self.engine.run("rm", "--force", self.name, check=False, capture=True)


def start(image: str, model_dir: Path, host_port: int, engine: Engine | None = None,
          name: str | None = None, spec: PodSpec | None = None) -> RunningPredictor:
    if not (model_dir / "current.json").is_file() and not (model_dir / "spec.json").is_file():
        raise EngineError(f"{model_dir} holds no published model (current.json) or model artifact (spec.json): "
                          "run `make run` first")
    engine = engine or find_engine(need_run=True)
    spec = spec or pod_spec()
    name = name or f"word-ocr-predictor-{host_port}"
    engine.run("rm", "--force", name, check=False, capture=True)
    args = run_args(spec, image, model_dir, host_port, name)
    started_at = time.monotonic()
    done = engine.run(*args, check=False, capture=True)
    if done.returncode:
        raise EngineError(f"could not start {image}: {last_line(done.stderr, done.returncode)} "
                          "(build it with `make images`)")
    return RunningPredictor(engine, name, f"http://127.0.0.1:{host_port}", spec, started_at)


def main(argv: list[str] | None = None) -> int:
    from components.images import PREDICTOR_IMAGE

    parser = argparse.ArgumentParser(prog="python -m images.predictor_container", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("out/serving/word-ocr"),
                        help="published model folder, mounted read-only at /mnt/models (default: %(default)s)")
    parser.add_argument("--image", default=PREDICTOR_IMAGE, help="default: %(default)s")
    parser.add_argument("--port", type=int, default=8081, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument("--engine", choices=["docker", "podman"], help="default: docker if its daemon answers")
    args = parser.parse_args(argv)

    engine = find_engine(args.engine, need_run=True)
    predictor = start(args.image, args.model, args.port, engine)
    print("+", shlex.join(engine.command(*run_args(predictor.spec, args.image, args.model, args.port,
                                                   predictor.name))), flush=True)
    interrupted = False

    def _stop(signum, frame):
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        seconds = predictor.wait_ready()
        print(f"ready in {seconds:.1f} s: {predictor.model_url} (Ctrl-C stops it)", flush=True)
        print(json.dumps({"memory_kib": predictor.memory_kib()}), flush=True)
        while not interrupted and predictor.running():
            time.sleep(0.5)
    finally:
        code, seconds = predictor.stop()
        print(f"stopped in {seconds:.1f} s, exit code {code}", flush=True)
        predictor.remove()
    return 0 if code in (0, 143) else 1


if __name__ == "__main__":
    sys.exit(main())
