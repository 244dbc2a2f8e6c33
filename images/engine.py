"""Which container engine builds and runs the images here, and the settings it needs on this host.

Order: docker when its daemon answers; else podman (no daemon: it builds with buildah's code and
runs containers itself); else buildah (build and push only). Podman and buildah get a
``containers.conf`` written under ``out/containers/`` and named by ``CONTAINERS_CONF``: its
open-files and process limits are this host's hard limits, because podman's defaults can be above
them and then every container fails to start ("error setting rlimit"), and it picks ``runc`` when
installed, because crun refuses hosts with hybrid cgroups. ``WORDOCR_CONTAINERS_STATE`` names
another folder for that file and the build records. Standard library only.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("WORDOCR_CONTAINERS_STATE") or ROOT / "out" / "containers")
# Where podman and buildah keep images when run as root (rootless: ~/.local/share/containers).
STORAGE_DIRS = (Path("/var/lib/containers"), Path.home() / ".local" / "share" / "containers")
INSTALL_HINT = "install podman (Debian: apt-get install podman buildah mmdebstrap runc) or start a docker daemon"
NPROC_CAP = 4096


class EngineError(SystemExit):
    """One line that says what to install or set; raised instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


@dataclass(frozen=True)
class Engine:
    """A container CLI and the environment its commands run with."""

    name: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def can_run(self) -> bool:
        return self.name in ("docker", "podman")

    def command(self, *args: str) -> list[str]:
        if self.name == "buildah":
            return ["buildah", "--storage-driver", "vfs", *args]
        return [self.name, *args]

    def run(self, *args: str, check: bool = True, capture: bool = False, timeout: float | None = None):
        """Run ``ENGINE args...``; a failure with ``check`` raises CalledProcessError for the caller to explain."""
        return subprocess.run(
            self.command(*args), env={**os.environ, **self.env}, check=check, timeout=timeout,
            capture_output=capture, text=True,
        )


def last_line(output: str, returncode: int) -> str:
    """The last non-blank line a failed command printed (its complaint), or its exit code."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {returncode}"


def host_limits() -> dict[str, tuple[int, int]]:
    """nofile and nproc for containers: this host's hard limits (nproc capped), soft = hard."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if nproc == resource.RLIM_INFINITY or nproc > NPROC_CAP:
        nproc = NPROC_CAP
    if nofile == resource.RLIM_INFINITY:
        nofile = 1_048_576
    return {"nofile": (nofile, nofile), "nproc": (nproc, nproc)}


def containers_conf_text(limits: dict[str, tuple[int, int]], runtime: str | None) -> str:
    ulimits = ", ".join(f'"{name}={soft}:{hard}"' for name, (soft, hard) in sorted(limits.items()))
    lines = ["# Written by images/engine.py for this host; see its docstring.", "[containers]",
             f"default_ulimits = [{ulimits}]"]
    if runtime:
        lines += ["", "[engine]", f'runtime = "{runtime}"']
    return "\n".join(lines) + "\n"


def write_containers_conf(state_dir: Path = STATE_DIR) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "containers.conf"
    path.write_text(containers_conf_text(host_limits(), "runc" if shutil.which("runc") else None))
    return path


def docker_daemon_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def find_engine(preferred: str | None = None, need_run: bool = False) -> Engine:
    """The first usable engine (or ``preferred``); EngineError with what to install when there is none."""
    candidates = [preferred] if preferred else ["docker", "podman", "buildah"]
    for name in candidates:
        if name == "docker" and docker_daemon_answers():
            return Engine("docker")
        if name in ("podman", "buildah") and shutil.which(name):
            if need_run and name == "buildah":
                continue
            return Engine(name, {"CONTAINERS_CONF": str(write_containers_conf())})
    if preferred:
        raise EngineError(f"{preferred} is not usable here: {INSTALL_HINT}")
    what = "no container engine that can run containers" if need_run else "no container engine"
    raise EngineError(f"{what}: {INSTALL_HINT}")


def free_bytes() -> int:
    """Free space where the engine keeps images (the first of its storage folders that exists)."""
    for folder in (*STORAGE_DIRS, ROOT):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return shutil.disk_usage("/").free
