"""The base image every Dockerfile starts from: the default Python image, or an equivalent made here.

The Dockerfiles say ``ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm``. Where that
image is present or can be pulled it is used unchanged. Where it cannot (a machine that reaches
package mirrors but no container registry), an image with the same role is made from Debian's own
packages with mmdebstrap: the same Debian release (bookworm) and Python minor version (3.11, with
venv, ``python`` on PATH and the CA certificates), imported as ``localhost/word-ocr-base``. The
build passes it as ``--build-arg PYTHON_IMAGE=...``; the Dockerfiles stay the same. Standard
library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from images.engine import Engine, EngineError, free_bytes, last_line

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "images" / "components.Dockerfile"
SUITE = "bookworm"
PYTHON = "python3.11"
LOCAL_BASE = f"localhost/word-ocr-base:{PYTHON}-{SUITE}"
PACKAGES = (PYTHON, f"{PYTHON}-venv", "python-is-python3", "ca-certificates")
# The tar is about 225 MB; its import doubles that for a moment.
BASE_BYTES = 600 * 2**20
PULL_TIMEOUT_S = 120


def default_base(dockerfile: Path = DOCKERFILE) -> str:
    """The ``PYTHON_IMAGE`` default the Dockerfiles declare."""
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile.read_text(), re.M)
    if not found:
        raise EngineError(f"{dockerfile.name} declares no ARG PYTHON_IMAGE=...")
    return found.group(1)


def image_exists(engine: Engine, image: str) -> bool:
    if engine.name == "podman":
        return engine.run("image", "exists", image, check=False, capture=True).returncode == 0
    if engine.name == "buildah":
        return engine.run("inspect", "--type", "image", image, check=False, capture=True).returncode == 0
    return engine.run("image", "inspect", image, check=False, capture=True).returncode == 0


def import_rootfs(engine: Engine, tar: Path, image: str) -> subprocess.CompletedProcess:
    """Turn a root filesystem tar into ``image``, with the official image's settings that matter to the
    Dockerfiles (UTF-8, python as the command)."""
    if engine.name != "buildah":
        changes = ["--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]']
        return engine.run("import", *changes, str(tar), image, check=False, capture=True)
    container = engine.run("from", "scratch", check=False, capture=True)
    if container.returncode:
        return container
    name = container.stdout.strip()
    try:
        for step in (("add", name, str(tar), "/"), ("config", "--env", "LANG=C.UTF-8", "--cmd", "python3", name),
                     ("commit", name, image)):
            done = engine.run(*step, check=False, capture=True)
            if done.returncode:
                return done
        return done
    finally:
        engine.run("rm", name, check=False, capture=True)


def try_pull(engine: Engine, image: str) -> str:
    """"" when pulled, else the engine's last line of complaint."""
    try:
        pulled = engine.run("pull", image, check=False, capture=True, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"no answer in {PULL_TIMEOUT_S} s"
    if pulled.returncode == 0:
        return ""
    return last_line(pulled.stderr, pulled.returncode)


def make_local_base(engine: Engine, image: str = LOCAL_BASE) -> str:
    """Build ``image`` from Debian packages with mmdebstrap and import it into ``engine``."""
    if not shutil.which("mmdebstrap"):
        raise EngineError(f"cannot make a base image: mmdebstrap is missing (Debian: apt-get install mmdebstrap), "
                          f"or make {default_base()} pullable")
    if free_bytes() < BASE_BYTES:
        raise EngineError(f"not enough disk space to make the base image: {free_bytes() / 2**20:.0f} MiB free, "
                          f"{BASE_BYTES / 2**20:.0f} MiB needed")
    with tempfile.TemporaryDirectory(prefix="word-ocr-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        command = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(tar)]
        print("+", " ".join(command), flush=True)
        made = subprocess.run(command, capture_output=True, text=True)
        if made.returncode:
            last = last_line(made.stderr, made.returncode)
            raise EngineError(f"mmdebstrap could not make the {SUITE} base ({last}); it needs Debian's package "
                              "mirror and root (or unshare) rights")
        imported = import_rootfs(engine, tar, image)
        if imported.returncode:
            last = last_line(imported.stderr, imported.returncode)
            raise EngineError(f"could not import the base image into {engine.name}: {last}")
    return image


def resolve_base(engine: Engine, base: str | None = None) -> tuple[str, str]:
    """``(image, how)``: the default base when present or pullable, else the local equivalent."""
    base = base or default_base()
    if image_exists(engine, base):
        return base, "present"
    why = try_pull(engine, base)
    if not why:
        return base, "pulled"
    print(f"note: cannot pull {base} ({why}); using an equivalent base made from Debian {SUITE}'s "
          f"{PYTHON} packages: {LOCAL_BASE}", file=sys.stderr, flush=True)
    if image_exists(engine, LOCAL_BASE):
        return LOCAL_BASE, "made earlier"
    return make_local_base(engine), "made"
