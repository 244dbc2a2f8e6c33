"""The three images, really built and run here: the compiled pipeline with every task in its image
(local folders and gs:// on a GCS-compatible server on loopback), then the predictor image serving
the published model as the InferenceService starts it.

Opt-in (`make test-images` sets WORDOCR_IMAGE_TESTS=1): building all three images from nothing
took 23 minutes on 2 busy cores and needs about 21 GB of disk, more than `make test` may spend;
with the images current, this module took 11.5 minutes. It needs podman (or a docker daemon)
and, where the default base image cannot be pulled, mmdebstrap. No Kubernetes: the pod's
settings are mirrored on one container (images/predictor_container.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from components.images import COMPONENTS_IMAGE, PREDICTOR_IMAGE, TRAINER_IMAGE
from images import predictor_container
from images.base import LOCAL_BASE, default_base, image_exists
from images.engine import find_engine
from pipelines import run_in_containers
from wordocr import storage
from wordocr.publish import current_model

ROOT = Path(__file__).resolve().parent.parent
IMAGES = (COMPONENTS_IMAGE, PREDICTOR_IMAGE, TRAINER_IMAGE)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("WORDOCR_IMAGE_TESTS") != "1",
                       reason="builds and runs the container images (minutes, GBs): run `make test-images`"),
]


@pytest.fixture(scope="module")
def engine():
    return find_engine(need_run=True)


@pytest.fixture(scope="module")
def built(engine):
    """`make images`' own command; with the layers cached it only checks they are current."""
    done = subprocess.run([sys.executable, "-m", "images.build", "build"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    base = default_base()
    return base if image_exists(engine, base) else LOCAL_BASE


def _in_image(engine, image: str, *command: str) -> str:
    done = engine.run("run", "--rm", "--entrypoint", command[0], image, *command[1:], check=False, capture=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("image", IMAGES)
def test_nothing_of_the_build_machine_is_in_an_image(engine, built, image):
    digest = "sha256sum /etc/ssl/certs/ca-certificates.crt"
    base_bundle = _in_image(engine, built, "sh", "-c", digest).split()[0]
    image_bundle = _in_image(engine, image, "sh", "-c", digest).split()[0]
    assert image_bundle == base_bundle, "the image's CA bundle is not its base's"
    if HOST_CA_BUNDLE.exists():
        host_bundle = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()
        if host_bundle != base_bundle:
            assert image_bundle != host_bundle
    # The build stage (sources, pip's secret mount) is not shipped; no variable names the bundle.
    listing = _in_image(engine, image, "sh", "-c", "ls -A /run/secrets /src 2>/dev/null; env")
    assert "pip_cert" not in listing and "PIP_CERT" not in listing
    assert "requirements" not in listing
    history = engine.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image, capture=True).stdout
    assert "pip_cert" not in history and "secret" not in history.lower()
    config = json.loads(engine.run("image", "inspect", image, capture=True).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert not [v for v in config.get("Env", []) if v.split("=")[0] in ("PIP_CERT", "SSL_CERT_FILE",
                                                                        "REQUESTS_CA_BUNDLE")]


def test_the_predictor_image_holds_no_kfp_no_training_fonts_no_test_tools(engine, built):
    listed = _in_image(engine, PREDICTOR_IMAGE, "pip", "list", "--format", "freeze").lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert not {"kfp", "kfp-kubernetes", "pytest", "ruff", "hypothesis", "matplotlib"} & names
    assert {name for name in names if name.startswith("fontpkg-")} == {"fontpkg-roboto"}
    assert "word-ocr" in names


@pytest.fixture(scope="module")
def local_run(built, tmp_path_factory):
    return run_in_containers.run(tmp_path_factory.mktemp("containers-run"))


def test_the_pipeline_runs_with_every_task_in_the_image_the_yaml_names(engine, local_run):
    done = local_run
    # Two train shards, collect, two small splits, train, evaluate, publish, and the plan.
    assert done.images.count(TRAINER_IMAGE) == 1
    assert set(done.images) == {COMPONENTS_IMAGE, TRAINER_IMAGE}
    assert len(done.images) >= 8
    pointer = current_model(done.arguments["serving_root"], "word-ocr")
    assert pointer is not None, "nothing was published"
    assert storage.exists(storage.join(pointer["uri"], "spec.json"))
    left = engine.run("ps", "--all", "--format", "{{.Image}}", capture=True).stdout.split()
    assert not set(left) & set(IMAGES), f"containers left behind: {left}"


def test_the_pipeline_runs_in_containers_against_gcs_on_loopback(built, gcs_server, tmp_path):
    done = run_in_containers.run(tmp_path, gcs_server.endpoint, gcs_server.bucket, seed=2)
    assert done.arguments["serving_root"].startswith("gs://")
    pointer = current_model(done.arguments["serving_root"], "word-ocr")
    assert pointer is not None and pointer["uri"].startswith(f"gs://{gcs_server.bucket}/serving/")
    assert storage.exists(storage.join(pointer["uri"], "spec.json"))
    names = storage.list_names(gcs_server.uri("runs"))
    assert any(name.endswith("train/manifest.json") for name in names), names[:20]


@pytest.fixture(scope="module")
def predictor(engine, local_run):
    done = local_run
    model = Path(done.arguments["serving_root"]) / "word-ocr"
    running = predictor_container.start(PREDICTOR_IMAGE, model, predictor_container_port(), engine)
    try:
        running.wait_ready()
        yield running
    finally:
        running.remove()


def predictor_container_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_predictor_runs_as_the_pod_would(engine, predictor):
    state = json.loads(engine.run("inspect", predictor.name, capture=True).stdout)[0]
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["Config"]["User"] == "10001:10001"
    status = engine.run("exec", predictor.name, "cat", "/proc/1/status", capture=True).stdout
    assert "CapEff:\t0000000000000000" in status
    mounts = {m["Destination"]: m for m in state["Mounts"]}
    assert mounts["/mnt/models"]["RW"] is False
    assert engine.run("exec", predictor.name, "touch", "/home/wordocr/x", check=False, capture=True).returncode != 0
    spec = predictor_container.pod_spec()
    assert state["Config"]["Cmd"][-len(spec.args):] == spec.args


def test_the_readme_requests_answer_through_the_published_port(predictor):
    url = predictor.base_url
    png = base64.b64encode((ROOT / "examples" / "word.png").read_bytes()).decode()
    with httpx.Client(base_url=url, timeout=30) as http:
        word = http.post("/v1/models/word-ocr:predict", json={"instances": [{"word": "game"}]})
        image = http.post("/v1/models/word-ocr:predict", json={"instances": [{"image_b64": png}]})
        v2 = http.post("/v2/models/word-ocr/infer", json={
            "inputs": [{"name": "word", "shape": [1], "datatype": "BYTES", "data": ["game"]}]})
        form = http.post("/predict", data={"input_word": "game"})
        # The page answers what a browser asks for; other clients get kserve's own answer at /.
        page = http.get("/", headers={"accept": "text/html"})
    for response in (word, image, v2, form):
        assert response.status_code == 200, response.text
    assert {"pred_text", "top_3_paths"} <= set(word.json()["predictions"][0])
    assert {"pred_text", "top_3_paths"} <= set(image.json()["predictions"][0])
    assert v2.json()["outputs"]
    assert {"pred_texts", "top_3_paths"} <= set(form.json())
    assert page.status_code == 200 and "<form" in page.text.lower()


def test_bad_input_still_gets_a_4xx_that_says_what_was_wrong(predictor):
    with httpx.Client(base_url=predictor.base_url, timeout=30) as http:
        not_json = http.post("/v1/models/word-ocr:predict", content=b"{", headers={"content-type": "application/json"})
        not_base64 = http.post("/v1/models/word-ocr:predict", json={"instances": [{"image_b64": "%%%"}]})
        no_instances = http.post("/v1/models/word-ocr:predict", json={"rows": []})
    for response in (not_json, not_base64, no_instances):
        assert 400 <= response.status_code < 500, response.text
        assert "Traceback" not in response.text
    assert "base64" in not_base64.text.lower()


def test_sigterm_ends_the_predictor_cleanly_within_the_grace_period(engine, local_run):
    done = local_run
    model = Path(done.arguments["serving_root"]) / "word-ocr"
    running = predictor_container.start(PREDICTOR_IMAGE, model, predictor_container_port(), engine,
                                        name="word-ocr-predictor-sigterm")
    try:
        running.wait_ready()
        code, seconds = running.stop()
        logs = running.logs()
    finally:
        running.remove()
    assert code == 0, logs[-2000:]
    assert seconds < running.spec.grace_s
