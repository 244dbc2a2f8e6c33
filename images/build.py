"""Build or push the word-ocr images, one per images/NAME.Dockerfile (run by `make images` / `make push`).

    python3.11 -m images.build build [--registry R] [--version V] [NAME ...]
    python3.11 -m images.build push  [--registry R] [--version V] [NAME ...]

Tags ``REGISTRY/NAME:VERSION``; the defaults are components/images.py's REGISTRY and VERSION, the
names the compiled pipeline refers to. The engine is docker when its daemon answers, else podman,
else buildah: no daemon is needed (images/engine.py). The base is the Dockerfiles' default Python
image when it can be had, else an equivalent made from Debian's packages (images/base.py). Pip in
the build reaches the package index with this machine's CA bundle, passed as a build secret that no
layer keeps. Every image gets ``GIT_REVISION`` (``git rev-parse HEAD``, ``-dirty`` with uncommitted
changes; the environment variable GIT_REVISION wins). Pushing uses the engine's own login
(``podman login`` / ``docker login``): no credential is read or passed here. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from images.base import default_base, resolve_base
from images.engine import STATE_DIR, Engine, EngineError, find_engine, free_bytes, last_line

ROOT = Path(__file__).resolve().parent.parent
IMAGES_DIR = ROOT / "images"
NAMES_MODULE = ROOT / "components" / "images.py"
BUILD_TIMES = STATE_DIR / "build-seconds.json"
CA_BUNDLE_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What one build needs free on disk: its venv about three times over while a layer is committed
# (the trainer's 7 GB of CUDA wheels ran out with 20 GiB free).
NEEDED_BYTES = {"components": 6 * 2**30, "predictor": 3 * 2**30, "trainer": 24 * 2**30}


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


def tag(registry: str, name: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{name}:{version}"


def ca_bundle(environ: dict[str, str] | None = None) -> Path | None:
    """The CA bundle this machine's pip trusts: the first of PIP_CERT, SSL_CERT_FILE, REQUESTS_CA_BUNDLE
    naming a file, else Debian's system bundle; None when there is none (the image's own is used)."""
    environ = os.environ if environ is None else environ
    for variable in CA_BUNDLE_VARIABLES:
        value = environ.get(variable, "")
        if value and Path(value).is_file():
            return Path(value)
    return SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None


def build_command(engine: Engine, name: str, image: str, revision: str, base: str | None, cert: Path) -> list[str]:
    args = ["-f", f"images/{name}.Dockerfile", "-t", image, "--build-arg", f"GIT_REVISION={revision}",
            "--secret", f"id=pip_cert,src={cert}"]
    if base:
        args += ["--build-arg", f"PYTHON_IMAGE={base}"]
    if engine.name == "docker":
        return ["docker", "build", *args, "."]
    if engine.name == "podman":
        return ["podman", "build", "--layers", *args, "."]
    return engine.command("bud", "--isolation", "chroot", "--layers", *args, ".")


def push_command(engine: Engine, image: str) -> list[str]:
    if engine.name == "buildah":
        return engine.command("push", image, f"docker://{image}")
    return [engine.name, "push", image]


def _run(engine: Engine, command: list[str]) -> subprocess.CompletedProcess:
    """Run with the engine's output on the terminal; its last lines are kept to explain a failure."""
    print("+", shlex.join(command), flush=True)
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **engine.env}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        process.wait()
        log.seek(0)
        tail = log.read()[-4000:]
    return subprocess.CompletedProcess(command, process.returncode, tail, "")


def explain_build_failure(image: str, output: str, returncode: int) -> str:
    lowered = output.lower()
    if "no space left on device" in lowered:
        return f"build of {image} ran out of disk space ({free_bytes() / 2**30:.1f} GiB free now): free some or " \
               "prune old images (podman image prune / docker image prune)"
    if "could not find a version" in lowered or "certificate verify failed" in lowered:
        return f"build of {image}: pip could not reach the package index from the build container; set PIP_CERT to " \
               "this machine's CA bundle if its TLS goes through a proxy"
    return f"build of {image} failed (exit {returncode}): {last_line(output, returncode)}"


def explain_push_failure(image: str, output: str, returncode: int) -> str:
    registry = image.split("/", 1)[0]
    return f"push of {image} was refused ({last_line(output, returncode)}): log in first (podman login {registry} / " \
           f"docker login {registry}) or set REGISTRY to one you may push to"


def build(engine: Engine, names: list[str], registry: str, version: str, dry_run: bool = False,
          min_free_bytes: float | None = None) -> dict[str, float]:
    """Build ``names``; seconds each build took. ``min_free_bytes``: refuse to start with less free
    disk (default: what the largest of ``names`` needs)."""
    revision = os.environ.get("GIT_REVISION") or git_revision()
    needed = max(NEEDED_BYTES.get(name, 4 * 2**30) for name in names) if min_free_bytes is None else min_free_bytes
    if not dry_run and free_bytes() < needed:
        raise EngineError(f"not enough disk space to build {', '.join(names)}: {free_bytes() / 2**30:.1f} GiB free, "
                          f"about {needed / 2**30:.0f} GiB needed")
    base = None
    if not dry_run:
        image, how = resolve_base(engine)
        print(f"base image: {image} ({how})", flush=True)
        # The Dockerfiles' own default needs no build argument.
        base = None if image == default_base() else image
    cert = ca_bundle()
    seconds = {}
    with tempfile.NamedTemporaryFile(prefix="no-ca-", suffix=".crt") as empty:
        for name in names:
            image = tag(registry, name, version)
            command = build_command(engine, name, image, revision, base, cert or Path(empty.name))
            if dry_run:
                print("+", shlex.join(command))
                continue
            started = time.monotonic()
            done = _run(engine, command)
            if done.returncode:
                raise EngineError(explain_build_failure(image, done.stdout, done.returncode))
            seconds[name] = time.monotonic() - started
            print(f"built {image} in {seconds[name]:.0f} s", flush=True)
    if seconds:
        record_build_seconds(seconds)
    return seconds


def record_build_seconds(seconds: dict[str, float], path: Path = BUILD_TIMES) -> None:
    """Each image's last build time, for `make bench-images` (a build from cached layers takes seconds)."""
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update({name: round(value, 1) for name, value in seconds.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=2) + "\n")


def push(engine: Engine, names: list[str], registry: str, version: str, dry_run: bool = False) -> None:
    for name in names:
        image = tag(registry, name, version)
        command = push_command(engine, image)
        if dry_run:
            print("+", shlex.join(command))
            continue
        done = _run(engine, command)
        if done.returncode:
            raise EngineError(explain_push_failure(image, done.stdout, done.returncode))


def main(argv: list[str] | None = None) -> None:
    known = defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "push"])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"images (default: all of {image_names()})")
    parser.add_argument("--registry", default=known["REGISTRY"], help="default: %(default)s")
    parser.add_argument("--version", default=known["VERSION"], help="default: %(default)s")
    parser.add_argument("--engine", choices=["docker", "podman", "buildah"],
                        help="default: docker if its daemon answers, else podman, else buildah")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--min-free-gib", type=float,
                        help="refuse to build with less free disk (default: what the largest image needs, "
                             f"{max(NEEDED_BYTES.values()) / 2**30:.0f} GiB for the trainer)")
    args = parser.parse_intermixed_args(argv)

    unknown = sorted(set(args.names) - set(image_names()))
    if unknown:
        parser.error(f"no images/NAME.Dockerfile for {unknown}")
    if (args.registry, args.version) != (known["REGISTRY"], known["VERSION"]):
        print(f"note: the compiled pipeline names {tag(known['REGISTRY'], 'NAME', known['VERSION'])}; "
              "`make submit REGISTRY=...` runs it with these tags instead", file=sys.stderr)
    engine = find_engine(args.engine)
    names = args.names or image_names()
    if args.action == "build":
        min_free = None if args.min_free_gib is None else args.min_free_gib * 2**30
        build(engine, names, args.registry, args.version, args.dry_run, min_free)
    else:
        push(engine, names, args.registry, args.version, args.dry_run)


if __name__ == "__main__":
    main()
