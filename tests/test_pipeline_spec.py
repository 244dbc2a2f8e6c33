"""The committed pipeline YAML is what the source compiles to, and it holds what a cluster needs."""

from functools import cache

import yaml

from components import resources
from pipelines.compile import COMPILED_PATH, compile_pipeline
from wordocr.recipes import CLUSTER, GATE_CELLS, gate_setting


@cache
def _documents() -> tuple[dict, dict]:
    """(pipeline spec, platform spec): kfp-kubernetes settings are compiled into a second YAML document."""
    pipeline, platform = yaml.safe_load_all(COMPILED_PATH.read_text())
    return pipeline, platform


def _spec() -> dict:
    return _documents()[0]


def _root_tasks() -> dict:
    return _spec()["root"]["dag"]["tasks"]


def _executors() -> dict:
    return _spec()["deploymentSpec"]["executors"]


def test_compiled_yaml_is_up_to_date(tmp_path):
    fresh = compile_pipeline(tmp_path / "pipeline.yaml")
    assert fresh.read_text() == COMPILED_PATH.read_text(), "run `make compile` and commit the YAML"


def test_pipeline_parameters_and_defaults():
    params = _spec()["root"]["inputDefinitions"]["parameters"]
    assert "defaultValue" not in params["serving_root"], "the serving root is the user's, never a machine path"
    # "" = KFP artifacts / no checkpoints: no machine path or bucket is baked into the spec.
    assert params["data_root"]["defaultValue"] == ""
    assert params["checkpoint_root"]["defaultValue"] == ""
    assert params["num_shards"]["defaultValue"] == 8
    for name in ("train_samples", "epochs", "seed", "test_samples", "model_name"):
        assert name in params


def test_every_cell_of_the_grid_has_a_threshold_parameter_and_the_tolerance_one():
    params = _spec()["root"]["inputDefinitions"]["parameters"]
    gate_params = {name for name in params if name.startswith("gate_")}
    assert gate_params == {gate_setting(cell) for cell in GATE_CELLS} and len(gate_params) == 8
    for cell in GATE_CELLS:
        assert params[gate_setting(cell)] == {
            "defaultValue": CLUSTER.gate[cell], "isOptional": True, "parameterType": "NUMBER_DOUBLE"
        }
        assert 0.8 < CLUSTER.gate[cell] < 1.0, "a cluster threshold a trained model could not (or any would) meet"
    assert params["regression_tolerance"]["defaultValue"] == CLUSTER.regression_tolerance
    assert 0.0 < CLUSTER.regression_tolerance < 0.05
    assert "accuracy_gate" not in params and "test_tier" not in params and "test_font_set" not in params
    # The gate task takes every threshold from its pipeline parameter.
    gate_inputs = _root_tasks()["gate-model"]["inputs"]["parameters"]
    for name in [*gate_params, "regression_tolerance", "serving_root", "model_name"]:
        assert gate_inputs[name] == {"componentInputParameter": name}, name


def _branches() -> dict:
    [branches_task] = [t for t in _root_tasks().values() if t["componentRef"]["name"].startswith("comp-condition-")]
    branches = _spec()["components"][branches_task["componentRef"]["name"]]["dag"]["tasks"]
    return {task["taskInfo"]["name"]: task for task in branches.values()}


def test_the_evaluate_task_renders_the_grid_and_reports_every_cell():
    evaluate = _root_tasks()["evaluate-model"]
    assert evaluate["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == "train-model"
    params = evaluate["inputs"]["parameters"]
    assert params["test_samples"] == {"componentInputParameter": "test_samples"}
    assert params["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    outputs = _spec()["components"]["comp-evaluate-model"]["outputDefinitions"]
    assert outputs["artifacts"]["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["artifacts"]["test_grid"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert outputs["parameters"]["Output"]["parameterType"] == "STRUCT"
    # No separate test split task any more: only the validation data is generated beside training.
    assert not any(t["componentRef"]["name"].startswith("comp-generate-words-") for t in _root_tasks().values())


def test_the_gate_reads_the_served_model_each_run_and_shows_its_table():
    gate = _root_tasks()["gate-model"]
    readings = gate["inputs"]["parameters"]["readings"]["taskOutputParameter"]
    assert readings == {"outputParameterKey": "Output", "producerTask": "evaluate-model"}
    assert gate["cachingOptions"].get("enableCache") is not True, "the served model must be read, not cached"
    outputs = _spec()["components"]["comp-gate-model"]["outputDefinitions"]
    assert outputs["artifacts"]["table"]["artifactType"]["schemaTitle"] == "system.Markdown"
    assert set(outputs["parameters"]) == {"decision", "champion_version", "verdict"}
    # The run's output is the verdict.
    output = _spec()["root"]["dag"]["outputs"]["parameters"]["Output"]["valueFromParameter"]
    assert output == {"outputParameterKey": "verdict", "producerSubtask": "gate-model"}


def test_deploy_is_guarded_by_the_gates_decision():
    by_name = _branches()
    condition = by_name["gate-passed"]["triggerPolicy"]["condition"]
    assert condition == "inputs.parameter_values['pipelinechannel--gate-model-decision'] == 'publish'"
    assert by_name["gate-failed"]["triggerPolicy"]["condition"].startswith("!(")

    deploy_branch = _spec()["components"][by_name["gate-passed"]["componentRef"]["name"]]
    passed_tasks = {t["taskInfo"]["name"]: t for t in deploy_branch["dag"]["tasks"].values()}
    assert set(passed_tasks) == {"publish", "roll-out-to-kserve"}
    publish = passed_tasks["publish"]
    assert publish["componentRef"]["name"] == "comp-publish-model"
    assert publish["cachingOptions"].get("enableCache") is not True, "publishing must never come from the cache"
    # Publish replaces only the version the gate judged against.
    channel = publish["inputs"]["parameters"]["replacing"]["componentInputParameter"]
    [branches_task] = [t for t in _root_tasks().values() if t["componentRef"]["name"].startswith("comp-condition-")]
    source = branches_task["inputs"]["parameters"][channel]["taskOutputParameter"]
    assert source == {"outputParameterKey": "champion_version", "producerTask": "gate-model"}
    reject_branch = _spec()["components"][by_name["gate-failed"]["componentRef"]["name"]]
    assert [t["taskInfo"]["name"] for t in reject_branch["dag"]["tasks"].values()] == ["reject (refused by the gate)"]


def test_every_task_runs_in_a_project_image():
    images = {name: e["container"]["image"] for name, e in _executors().items()}
    assert images["exec-train-model"].startswith("ghcr.io/word-ocr/trainer:")
    assert all(image.startswith("ghcr.io/word-ocr/") for image in images.values())
    # No task may pip-install at run time: the cluster pulls images, nothing else.
    for executor in _executors().values():
        assert "pip install" not in " ".join(executor["container"].get("command", []))


def test_every_task_requests_and_limits_cpu_and_memory():
    for name, executor in _executors().items():
        requested = executor["container"].get("resources", {})
        for key in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"):
            assert requested.get(key), f"{name} has no {key}"


def test_training_requests_a_gpu_on_the_gpu_node_pool():
    train = _executors()["exec-train-model"]["container"]["resources"]
    gpu = resources.TRAINER_GPU
    assert train["accelerator"]["resourceType"] == gpu.accelerator == "nvidia.com/gpu"
    assert train["accelerator"]["resourceCount"] == str(gpu.count)
    assert train["resourceCpuRequest"] == resources.TRAIN.cpu_request
    assert train["resourceMemoryLimit"] == resources.TRAIN.memory_limit
    assert [n for n, e in _executors().items() if "accelerator" in e["container"]["resources"]] == ["exec-train-model"]

    platform = _documents()[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    on_gpu_nodes = [name for name, e in platform.items() if "nodeSelector" in e or "tolerations" in e]
    assert on_gpu_nodes == ["exec-train-model"], "only training goes to (and tolerates) the GPU nodes"
    assert platform["exec-train-model"]["nodeSelector"]["labels"] == {gpu.node_label: gpu.node_label_value}
    assert platform["exec-train-model"]["tolerations"] == [
        {"key": gpu.taint_key, "operator": "Exists", "effect": gpu.taint_effect}
    ]


def test_training_checkpoints_under_the_run_id_and_is_retried():
    train = _root_tasks()["train-model"]
    params = train["inputs"]["parameters"]
    assert params["checkpoint_root"] == {"componentInputParameter": "checkpoint_root"}
    # The same id for a retried pod of the same run: the retry finds the checkpoint and resumes.
    assert params["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    assert train["retryPolicy"]["maxRetryCount"] == resources.TRAIN_RETRY.num_retries


def test_train_data_is_generated_by_a_parallel_for_over_the_shards():
    tasks = _root_tasks()
    [loop] = [t for t in tasks.values() if "parameterIterator" in t]
    assert loop["taskInfo"]["name"] == "train-shards"
    items = loop["parameterIterator"]["items"]["inputParameter"]
    assert loop["inputs"]["parameters"][items]["taskOutputParameter"]["producerTask"] == "plan-shards"
    assert tasks["plan-shards"]["inputs"]["parameters"]["num_shards"] == {"componentInputParameter": "num_shards"}

    body = _spec()["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert list(body) == ["generate-shard"]
    assert body["generate-shard"]["retryPolicy"]["maxRetryCount"] == resources.RETRY.num_retries
    assert body["generate-shard"]["inputs"]["parameters"]["shard_index"] == {
        "componentInputParameter": loop["parameterIterator"]["itemInput"]
    }

    # One collect task gathers every shard (dsl.Collected) and writes the manifest; training reads its output.
    collected = tasks["collect-shards"]["inputs"]["artifacts"]["shards"]["taskOutputArtifact"]
    assert collected["producerTask"] == "for-loop-1"
    assert _spec()["components"]["comp-collect-shards"]["inputDefinitions"]["artifacts"]["shards"]["isArtifactList"]
    train_data = tasks["train-model"]["inputs"]["artifacts"]["train_data"]["taskOutputArtifact"]
    assert train_data == {"outputArtifactKey": "dataset", "producerTask": "collect-shards"}
    # Validation data stays a single task (the test grid is the evaluate task's).
    splits = {t["inputs"]["parameters"]["split"]["runtimeValue"]["constant"] for n, t in tasks.items()
              if n.startswith("generate-words")}  # fmt: skip
    assert splits == {"val"}


def test_the_kserve_rollout_runs_only_with_a_namespace():
    passed = _branches()["gate-passed"]
    inner = _spec()["components"][passed["componentRef"]["name"]]["dag"]["tasks"]
    rollout_branch = next(t for t in inner.values() if t["taskInfo"]["name"] == "roll-out-to-kserve")
    condition = rollout_branch["triggerPolicy"]["condition"]
    assert "isvc_namespace" in condition and "!=" in condition
    rollout_tasks = _spec()["components"][rollout_branch["componentRef"]["name"]]["dag"]["tasks"]
    [rollout] = rollout_tasks.values()
    assert rollout["taskInfo"]["name"] == "roll out to KServe"
    # The published version, not the trained artifact, is what the InferenceService serves.
    channel = rollout["inputs"]["parameters"]["model_uri"]["componentInputParameter"]
    source = rollout_branch["inputs"]["parameters"][channel]["taskOutputParameter"]
    assert source["producerTask"] == "publish-model"
    assert rollout["cachingOptions"].get("enableCache") is not True, "a rollout must never come from the cache"

    params = _spec()["root"]["inputDefinitions"]["parameters"]
    assert params["isvc_namespace"]["defaultValue"] == ""
    assert params["canary_percent"]["defaultValue"] == 10


def test_the_rollout_serves_the_predictor_image_the_run_names():
    """The image is a run parameter (pipelines.submit fills it), not one baked into the spec."""
    params = _spec()["root"]["inputDefinitions"]["parameters"]
    assert params["predictor_image"] == {"defaultValue": "", "isOptional": True, "parameterType": "STRING"}
    rollout_inputs = _spec()["components"]["comp-roll-out-model"]["inputDefinitions"]["parameters"]
    assert "defaultValue" not in rollout_inputs["predictor_image"], "every run passes it through"
    assert "predictor:" not in COMPILED_PATH.read_text(), "no predictor image may be embedded in the spec"


def _retried_tasks() -> dict[str, dict]:
    """Task name -> its retryPolicy, in every DAG of the spec."""
    dags = [_spec()["root"]["dag"], *(c["dag"] for c in _spec()["components"].values() if "dag" in c)]
    return {name: task["retryPolicy"] for dag in dags for name, task in dag["tasks"].items() if "retryPolicy" in task}


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def test_each_retry_window_is_hours_for_training_and_covers_every_attempt():
    """backoffMaxDuration becomes Argo's backoff.maxDuration, counted from the first attempt's start.

    So it is the window for all attempts of a task (and a retried pod's deadline is what is left
    of it): a window shorter than training would leave a pod preempted late unretried.
    """
    retried = _retried_tasks()
    assert set(retried) == {"generate-shard", "collect-shards", "generate-words", "train-model", "evaluate-model"}
    train = retried["train-model"]
    assert _seconds(train["backoffMaxDuration"]) >= 12 * 3600
    # The window holds every attempt's backoff and still leaves hours of training.
    backoffs = sum(
        _seconds(train["backoffDuration"]) * train["backoffFactor"] ** n for n in range(train["maxRetryCount"])
    )
    assert _seconds(train["backoffMaxDuration"]) - backoffs >= 10 * 3600
    for name, policy in retried.items():
        assert _seconds(policy["backoffMaxDuration"]) >= 3600, f"{name}: a window under an hour"


def test_which_failures_are_retried_is_not_in_the_spec():
    """KFP 2.17 has no field for Argo's retryPolicy, so Argo's default (OnFailure) applies on a cluster.

    A pod that fails is retried; a pod deleted under it (Argo: Error, "pod deleted") is not. If a
    KFP release adds such a field this test fails, and resources.RetryPolicy should set it.
    """
    for name, policy in _retried_tasks().items():
        assert set(policy) == {"maxRetryCount", "backoffDuration", "backoffFactor", "backoffMaxDuration"}, name
    from kfp.pipeline_spec import pipeline_spec_pb2

    fields = {f.name for f in pipeline_spec_pb2.PipelineTaskSpec.RetryPolicy.DESCRIPTOR.fields}
    assert fields == {"max_retry_count", "backoff_duration", "backoff_factor", "backoff_max_duration"}
