"""The committed pipeline YAML is what the source compiles to, and it holds what a cluster needs."""

import yaml

from pipelines.compile import COMPILED_PATH, compile_pipeline


def _spec():
    return yaml.safe_load(COMPILED_PATH.read_text())


def test_compiled_yaml_is_up_to_date(tmp_path):
    fresh = compile_pipeline(tmp_path / "pipeline.yaml")
    assert fresh.read_text() == COMPILED_PATH.read_text(), "run `make compile` and commit the YAML"


def test_pipeline_parameters_and_defaults():
    params = _spec()["root"]["inputDefinitions"]["parameters"]
    assert params["accuracy_gate"]["defaultValue"] == 0.95
    assert "defaultValue" not in params["serving_root"], "the serving root is the user's, never a machine path"
    for name in ("train_samples", "epochs", "seed", "test_tier", "model_name"):
        assert name in params


def test_deploy_is_guarded_by_the_accuracy_gate():
    tasks = _spec()["root"]["dag"]["tasks"]
    passed = tasks["condition-branches-1"]["componentRef"]["name"]
    branches = _spec()["components"][passed]["dag"]["tasks"]
    by_name = {task["taskInfo"]["name"]: task for task in branches.values()}
    gate = by_name["accuracy-gate-passed"]["triggerPolicy"]["condition"]
    assert "word_accuracy" in gate and ">=" in gate and "accuracy_gate" in gate
    assert by_name["accuracy-gate-failed"]["triggerPolicy"]["condition"].startswith("!(")

    deploy_branch = _spec()["components"][by_name["accuracy-gate-passed"]["componentRef"]["name"]]
    assert [t["taskInfo"]["name"] for t in deploy_branch["dag"]["tasks"].values()] == ["deploy"]
    reject_branch = _spec()["components"][by_name["accuracy-gate-failed"]["componentRef"]["name"]]
    assert [t["taskInfo"]["name"] for t in reject_branch["dag"]["tasks"].values()] == ["reject (below gate)"]


def test_every_task_runs_in_a_project_image():
    executors = _spec()["deploymentSpec"]["executors"]
    images = {name: e["container"]["image"] for name, e in executors.items()}
    assert images["exec-train-model"].startswith("ghcr.io/word-ocr/trainer:")
    assert all(image.startswith("ghcr.io/word-ocr/") for image in images.values())
    # No task may pip-install at run time: the cluster pulls images, nothing else.
    for executor in executors.values():
        assert "pip install" not in " ".join(executor["container"].get("command", []))
