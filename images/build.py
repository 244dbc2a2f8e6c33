"""Build or push the word-ocr images, one per images/NAME.Dockerfile (run by `make images` / `make push`).

    python3.11 images/build.py build [--registry R] [--version V] [NAME ...]
    python3.11 images/build.py push  [--registry R] [--version V] [NAME ...]

Tags ``REGISTRY/NAME:VERSION``; the defaults are components/images.py's REGISTRY and VERSION, the
names the compiled pipeline refers to. The engine is docker when its daemon answers, else buildah
(no daemon, no root needed: ``--isolation chroot --storage-driver vfs``). Every image gets
``GIT_REVISION`` (``git rev-parse HEAD``, ``-dirty`` with uncommitted changes; the environment
variable GIT_REVISION wins). Pushing uses the engine's own login (``docker login`` /
``buildah login``): no credential is read or passed here. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "images"
NAMES_MODULE = ROOT / "components" / "images.py"
BUILDAH_STORAGE = ["--storage-driver", "vfs"]
NO_ENGINE = "no container engine: install docker or buildah"


def image_names() -> list[str]:
    """One image per images/NAME.Dockerfile."""
    return sorted(path.name.removesuffix(".Dockerfile") for path in IMAGES_DIR.glob("*.Dockerfile"))


def defaults(path: Path = NAMES_MODULE) -> dict[str, str]:
    """REGISTRY and VERSION as components/images.py states them (read, not imported: no kfp needed)."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("REGISTRY", "VERSION"):
                    found[target.id] = node.value.value
    return found


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def find_engine() -> str:
    """``docker`` if its daemon answers, else ``buildah``; SystemExit when neither can build."""
    why_not_docker = ""
    if shutil.which("docker"):
        try:
            info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
            if info.returncode == 0:
                return "docker"
            why_not_docker = (info.stderr.strip().splitlines() or ["`docker info` failed"])[-1]
        except subprocess.TimeoutExpired:
            why_not_docker = "`docker info` timed out"
    if shutil.which("buildah"):
        return "buildah"
    detail = f" (docker is installed but its daemon is unreachable: {why_not_docker})" if why_not_docker else ""
    raise SystemExit(NO_ENGINE + detail)


def tag(registry: str, name: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{name}:{version}"


def build_command(engine: str, name: str, image: str, revision: str) -> list[str]:
    args = ["-f", f"images/{name}.Dockerfile", "-t", image, "--build-arg", f"GIT_REVISION={revision}", "."]
    if engine == "docker":
        return ["docker", "build", *args]
    return ["buildah", *BUILDAH_STORAGE, "bud", "--isolation", "chroot", "--layers", *args]


def push_command(engine: str, image: str) -> list[str]:
    if engine == "docker":
        return ["docker", "push", image]
    return ["buildah", *BUILDAH_STORAGE, "push", image, f"docker://{image}"]


def main(argv: list[str] | None = None) -> None:
    known = defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "push"])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"images (default: all of {image_names()})")
    parser.add_argument("--registry", default=known["REGISTRY"], help="default: %(default)s")
    parser.add_argument("--version", default=known["VERSION"], help="default: %(default)s")
    parser.add_argument("--engine", choices=["docker", "buildah"], help="default: docker if its daemon answers")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_intermixed_args(argv)

    unknown = sorted(set(args.names) - set(image_names()))
    if unknown:
        parser.error(f"no images/NAME.Dockerfile for {unknown}")
    if (args.registry, args.version) != (known["REGISTRY"], known["VERSION"]):
        print(f"note: the compiled pipeline names {tag(known['REGISTRY'], 'NAME', known['VERSION'])}; to run these "
              "images, change components/images.py and `make compile`", file=sys.stderr)
    engine = args.engine or find_engine()
    revision = os.environ.get("GIT_REVISION") or git_revision()
    for name in args.names or image_names():
        image = tag(args.registry, name, args.version)
        if args.action == "build":
            command = build_command(engine, name, image, revision)
        else:
            command = push_command(engine, image)
        print("+", shlex.join(command), flush=True)
        if not args.dry_run:
            done = subprocess.run(command, cwd=ROOT)
            if done.returncode:
                raise SystemExit(f"{args.action} of {image} failed (exit {done.returncode})")


if __name__ == "__main__":
    main()
