"""`python -m pipelines.submit`: what it sends to Kubeflow Pipelines, and how it refuses bad input.

No KFP API server can run on the machines this project is built on (no Kubernetes, no Docker), so
``kfp.Client`` is replaced by a recorder: the tests check the arguments the real client would get,
and that the package it would upload is the compiled pipeline (with the images renamed on request).
"""

from types import SimpleNamespace
from typing import ClassVar

import kfp
import pytest
import yaml

from pipelines import submit
from pipelines.compile import COMPILED_PATH


class RecordingClient:
    calls: ClassVar[list] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def create_run_from_pipeline_package(self, pipeline_file, **kwargs):
        with open(pipeline_file) as f:
            package = f.read()
        RecordingClient.calls.append(SimpleNamespace(client=self.kwargs, package=package, **kwargs))
        return SimpleNamespace(run_id="run-123")


@pytest.fixture
def client(monkeypatch):
    RecordingClient.calls = []
    monkeypatch.setattr(kfp, "Client", RecordingClient)
    monkeypatch.delenv(submit.HOST_ENV, raising=False)
    return RecordingClient


def test_submits_the_compiled_pipeline_with_typed_parameters(client, capsys):
    code = submit.main([
        "--host", "http://kfp.example:8080", "--experiment", "nightly", "--serving-root", "gs://b/serving",
        "--data-root", "gs://b/runs", "--checkpoint-root", "gs://b/ckpt",
        "--param", "epochs=30", "--param", "learning_rate=0.002", "--param", "gate_heldout_hard=0.8",
    ])  # fmt: skip
    assert code == 0
    [call] = client.calls
    assert call.client == {"host": "http://kfp.example:8080", "namespace": "kubeflow"}
    assert call.arguments == {
        "serving_root": "gs://b/serving", "data_root": "gs://b/runs", "checkpoint_root": "gs://b/ckpt",
        "epochs": 30, "learning_rate": 0.002, "gate_heldout_hard": 0.8,
    }  # fmt: skip
    assert type(call.arguments["epochs"]) is int
    assert call.experiment_name == "nightly"
    assert call.enable_caching is None and call.pipeline_root is None and call.run_name is None
    assert call.package == COMPILED_PATH.read_text()
    assert "started run run-123" in capsys.readouterr().out


def test_host_comes_from_the_environment_and_images_can_be_renamed(client, monkeypatch):
    monkeypatch.setenv(submit.HOST_ENV, "http://from-env")
    submit.main([
        "--serving-root", "gs://b/s", "--registry", "europe-docker.pkg.dev/p/word-ocr", "--image-version", "1.2.3",
        "--no-cache", "--pipeline-root", "gs://b/root", "--namespace", "team-a", "--run-name", "try-1",
    ])  # fmt: skip
    [call] = client.calls
    assert call.client == {"host": "http://from-env", "namespace": "team-a"}
    assert call.enable_caching is False and call.pipeline_root == "gs://b/root" and call.namespace == "team-a"
    assert call.run_name == "try-1"
    executors = next(yaml.safe_load_all(call.package))["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    registry = "europe-docker.pkg.dev/p/word-ocr"
    assert images == {f"{registry}/components:1.2.3", f"{registry}/trainer:1.2.3"}
    assert "ghcr.io/word-ocr/" not in call.package
    # The rollout step serves the model with the predictor pushed beside them.
    assert call.arguments["predictor_image"] == f"{registry}/predictor:1.2.3"


def test_without_image_flags_the_run_keeps_the_inference_services_own_image(client, capsys):
    submit.main(["--host", "http://h", "--serving-root", "gs://b/s", "--param", "isvc_namespace=word-ocr"])
    [call] = client.calls
    assert "predictor_image" not in call.arguments
    assert "keeps the InferenceService's own predictor image" in capsys.readouterr().err


def test_a_predictor_image_by_digest_is_passed_to_the_run_as_given(client, capsys):
    image = "europe-docker.pkg.dev/p/word-ocr/predictor@sha256:" + "0123456789abcdef" * 4
    submit.main([
        "--host", "http://h", "--serving-root", "gs://b/s", "--registry", "europe-docker.pkg.dev/p/word-ocr",
        "--predictor-image", image, "--param", "isvc_namespace=word-ocr",
    ])  # fmt: skip
    [call] = client.calls
    assert call.arguments["predictor_image"] == image
    assert "note:" not in capsys.readouterr().err


def test_a_rollout_with_a_tagged_predictor_image_says_what_a_tag_means(client, capsys):
    submit.main([
        "--host", "http://h", "--serving-root", "gs://b/s", "--registry", "r.example/p", "--param", "isvc_namespace=ns",
    ])  # fmt: skip
    assert client.calls[0].arguments["predictor_image"] == "r.example/p/predictor:0.1.0"
    err = capsys.readouterr().err
    assert "is a tag: it is pulled Always" in err and "@sha256:" in err


def test_without_a_host_it_says_how_to_give_one(client, capsys):
    with pytest.raises(SystemExit) as exit_info:
        submit.main(["--serving-root", "gs://b/s"])
    assert exit_info.value.code == 2
    assert "--host" in capsys.readouterr().err and not client.calls


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--param", "epoch=3"], "no such parameter"),
        (["--param", "epochs=three"], "not a valid NUMBER_INTEGER"),
        (["--param", "epochs"], "expected NAME=VALUE"),
        (["--data-root", "/home/me/data"], "use gs://"),
        (["--param", "serving_root=out/serving"], "use gs://"),
        (["--serving-root", ""], "--serving-root is empty"),  # `make submit` without SERVING_ROOT
        (["--predictor-image", "r/predictor@sha256:abc"], "64 hex digits"),
    ],
)
def test_bad_parameters_are_refused_before_anything_is_sent(client, capsys, flags, message):
    assert submit.main(["--host", "http://h", "--serving-root", "gs://b/s", *flags]) == 2
    assert message in capsys.readouterr().err and not client.calls


def test_help_lists_the_pipeline_parameters(capsys):
    with pytest.raises(SystemExit):
        submit.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "KFP_HOST" in text and "epochs=20" in text and "serving_root (required)" in text


def test_dry_run_sends_nothing(client, capsys):
    assert submit.main(["--serving-root", "gs://b/s", "--dry-run", "--param", "num_shards=16"]) == 0
    assert "'num_shards': 16" in capsys.readouterr().out and not client.calls
