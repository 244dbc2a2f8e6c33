"""The rollout step, through the real kubernetes client, against a Kubernetes API on loopback.

The API and the stand-in for KServe's controller are in tests/support/kserve_emulator.py. Polls are 10 ms
and the controller decides when a rollout ends; timeouts are short only where the timeout is the
point, and then the rollback gets a long one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kmock
import pytest
import yaml

from components.images import PREDICTOR_IMAGE
from tests.support.kserve_emulator import NAME, NAMESPACE, KServeEmulator, serve_emulator
from tests.test_manifests import MANIFESTS, REPO, _kustomize_command, inferenceservice_schema
from wordocr import rollout as rollout_lib
from wordocr.rollout import RolloutError, RolloutResult, build_inference_service, roll_out

V1 = "gs://models/serving/word-ocr/v20260101-000000-aaaaaa"
V2 = "gs://models/serving/word-ocr/v20260102-000000-bbbbbb"
V3 = "gs://models/serving/word-ocr/v20260103-000000-cccccc"
PINNED = "europe-west4-docker.pkg.dev/p/word-ocr/predictor@sha256:" + "ab" * 32
FAST = {"poll_s": 0.01, "timeout_s": 10}  # the controller decides when a rollout ends, not the clock
# A rollout that must time out, and a rollback that must not.
SHORT = {"poll_s": 0.01, "timeout_s": 0.3, "rollback_timeout_s": 10}


@pytest.fixture
def cluster():
    with serve_emulator() as (emulator, api):
        yield emulator, api


def patches(emulator: KServeEmulator) -> list[dict]:
    return [r.data for r in emulator[kmock.action.UPDATE]]


def crd_errors(obj: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(inferenceservice_schema())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]


def settle(api, reads: int = 3) -> dict:
    """Read the object a few times, so the controller catches up with the last write."""
    for _ in range(reads):
        obj = api.get_namespaced_custom_object(
            rollout_lib.GROUP, rollout_lib.VERSION, NAMESPACE, rollout_lib.PLURAL, NAME
        )
    return obj


def rendered_base_inference_service() -> dict:
    command = _kustomize_command()
    if command is None:
        pytest.skip("no kubectl or kustomize binary")
    done = subprocess.run([*command, str(MANIFESTS / "base")], capture_output=True, text=True, timeout=60, check=True)
    (base,) = [doc for doc in yaml.safe_load_all(done.stdout) if doc and doc["kind"] == "InferenceService"]
    return base


# The object ---------------------------------------------------------------------------------------


def test_the_packaged_template_is_the_base_manifest_as_kustomize_renders_it():
    """wordocr/templates/ is a copy of manifests/base (the core may not read the checkout): they must not drift."""
    assert rollout_lib.load_template() == rendered_base_inference_service(), (
        "wordocr/templates/inferenceservice.yaml differs from `kubectl kustomize manifests/base`: copy the change"
    )
    assert rollout_lib.model_container(rollout_lib.load_template())["image"] == PREDICTOR_IMAGE


def test_the_template_is_package_data():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    template = Path(rollout_lib.__file__).parent / rollout_lib.TEMPLATE_RESOURCE
    assert any(template.match(f"wordocr/{pattern}") for pattern in package_data["wordocr"])


def test_the_core_reads_its_template_outside_a_checkout_and_imports_no_layer_above(tmp_path):
    """A copy of the package alone (as the components image installs it) builds the InferenceService."""
    subprocess.run(["cp", "-r", str(REPO / "wordocr"), str(tmp_path / "wordocr")], check=True)
    code = (
        "import sys; from wordocr.rollout import build_inference_service as b; "
        "print(b('x', 'y', 'gs://b/v')['metadata']['name']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('components', 'pipelines', 'kfp')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["x", "[]"]
    for path in (REPO / "wordocr").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("components", "pipelines")], path
            # A path built into the checkout, as in Path(__file__).parents[1] / "manifests".
            assert not (isinstance(node, ast.Constant) and node.value == "manifests"), path


def test_built_inference_service_is_valid_against_the_kserve_crd():
    assert crd_errors(build_inference_service(NAME, NAMESPACE, V1)) == []
    assert crd_errors(build_inference_service(NAME, NAMESPACE, V1, image=PINNED)) == []


def test_crd_check_catches_a_broken_object():
    broken = build_inference_service(NAME, NAMESPACE, V1)
    broken["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    assert crd_errors(broken)


def test_built_inference_service_is_the_base_manifest_for_that_version():
    base = rendered_base_inference_service()
    built = build_inference_service(NAME, NAMESPACE, V1)
    container = rollout_lib.model_container(built)
    assert container["image"] == PREDICTOR_IMAGE
    assert container["env"][0] == {"name": "STORAGE_URI", "value": V1}
    assert built["spec"]["predictor"]["serviceAccountName"] == "word-ocr-predictor"
    assert "canaryTrafficPercent" not in built["spec"]["predictor"]
    base["metadata"]["namespace"] = NAMESPACE
    rollout_lib.set_env(rollout_lib.model_container(base), "STORAGE_URI", V1)
    assert built == base


def test_the_image_given_is_the_image_served_pulled_by_digest_once_or_by_tag_always():
    pinned = rollout_lib.model_container(build_inference_service(NAME, NAMESPACE, V1, image=PINNED))
    assert (pinned["image"], pinned["imagePullPolicy"]) == (PINNED, "IfNotPresent")
    tagged = rollout_lib.model_container(build_inference_service(NAME, NAMESPACE, V1, image="r/predictor:abc123"))
    assert (tagged["image"], tagged["imagePullPolicy"]) == ("r/predictor:abc123", "Always")
    with pytest.raises(ValueError, match="not an InferenceService"):
        rollout_lib.parse_template("kind: Deployment\n")


# Reading its status ---------------------------------------------------------------------------------


def _status(ready="True", created="r-2", latest_ready="r-2", traffic=None) -> dict:
    traffic = [{"revisionName": "r-2", "percent": 100, "latestRevision": True}] if traffic is None else traffic
    predictor = {"latestCreatedRevision": created, "latestReadyRevision": latest_ready, "traffic": traffic}
    return {"status": {"conditions": [{"type": "Ready", "status": ready}], "components": {"predictor": predictor}}}


def test_serving_means_ready_with_the_latest_created_revision_ready():
    assert rollout_lib.is_serving(_status())
    assert not rollout_lib.is_serving(_status(ready="Unknown"))
    assert not rollout_lib.is_serving(_status(created="r-3")), "a newer revision is not ready yet"
    assert rollout_lib.is_ready(_status(), "r-2") and not rollout_lib.is_ready(_status(), "r-1")


def test_traffic_is_read_per_revision():
    split = [
        {"revisionName": "r-2", "percent": 10, "latestRevision": True},
        {"revisionName": "r-1", "percent": 90, "tag": "prev"},
    ]
    assert rollout_lib.traffic(_status(traffic=split)) == {"r-1": 90, "r-2": 10}
    assert rollout_lib.latest_traffic_percent(_status(traffic=split)) == 10
    assert rollout_lib.latest_traffic_percent(_status()) == 100
    pinned = [{"revisionName": "r-2", "percent": 0, "latestRevision": True}, {"revisionName": "r-1", "percent": 100}]
    assert rollout_lib.traffic(_status(traffic=pinned)) == {"r-1": 100}


def test_a_failed_revision_is_recognised():
    failed = _status(ready="False")
    failed["status"]["conditions"][0].update(reason="RevisionFailed", message="container exited")
    assert "RevisionFailed" in rollout_lib.failure(failed)
    assert rollout_lib.failure(_status(ready="Unknown")) is None


# The rollout --------------------------------------------------------------------------------------


def test_creates_the_inference_service_when_absent_and_waits_until_ready(cluster):
    emulator, api = cluster
    result = roll_out(api, NAME, NAMESPACE, V1, **FAST)
    assert result == RolloutResult(
        url=f"http://{NAME}.{NAMESPACE}.example.com", action="created", revision=f"{NAME}-predictor-00001"
    )
    stored, built = emulator.stored(), build_inference_service(NAME, NAMESPACE, V1)
    assert crd_errors(stored) == []
    assert stored["spec"] == built["spec"]
    for field in ("name", "namespace", "labels", "annotations"):
        assert stored["metadata"][field] == built["metadata"][field]
    assert rollout_lib.is_serving(stored)
    assert [r.method.value for r in emulator[kmock.action.CREATE]] == ["POST"]
    assert patches(emulator) == []


def test_rolls_out_a_canary_then_promotes_it_when_one_is_serving(cluster):
    emulator, api = cluster
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    controller = emulator.controller
    result = roll_out(api, NAME, NAMESPACE, V2, canary_percent=10, **FAST)

    assert result.action == "canary"
    assert result.revision == controller.revision_of(V2) == f"{NAME}-predictor-00002"
    canary, promote = patches(emulator)
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert rollout_lib.storage_uri(canary) == V2
    assert canary["metadata"]["resourceVersion"], "the patch must not overwrite a concurrent change"
    assert promote == {"spec": {"predictor": {"canaryTrafficPercent": 100}}}
    # The new revision took 10 % while the old one kept 90 %, and only got all traffic once promoted.
    old, new = controller.revision_of(V1), controller.revision_of(V2)
    assert {old: 90, new: 10} in controller.traffic_splits()
    assert controller.traffic_splits()[-1] == {new: 100}
    stored = emulator.stored()
    assert rollout_lib.storage_uri(stored) == V2 and controller.percent(stored) == {new: 100}
    assert crd_errors(stored) == []


def test_promotes_only_once_the_new_revision_is_ready_not_on_the_old_ready_status(cluster):
    emulator, api = cluster
    emulator.controller.ready_after = 5
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    roll_out(api, NAME, NAMESPACE, V2, **FAST)
    timeline = emulator.controller.timeline
    promote = ("patch", {"spec": {"predictor": {"canaryTrafficPercent": 100}}})
    assert timeline.index(("ready", emulator.controller.revision_of(V2))) < timeline.index(promote)


def test_status_observed_at_a_later_knative_generation_is_not_taken_for_the_new_revision(cluster):
    """KServe reports the Knative Service's observedGeneration: here ahead of the InferenceService's."""
    emulator, api = cluster
    controller = emulator.controller
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    controller.ksvc_generation += 5  # KServe changed the Knative Service on its own (a new config, an upgrade)
    stale = settle(api)
    assert stale["status"]["observedGeneration"] > stale["metadata"]["generation"]
    controller.ready_after = 5
    result = roll_out(api, NAME, NAMESPACE, V2, **FAST)
    new = controller.revision_of(V2)
    assert result.revision == new
    promote = ("patch", {"spec": {"predictor": {"canaryTrafficPercent": 100}}})
    assert controller.timeline.index(("ready", new)) < controller.timeline.index(promote)


def test_a_change_the_knative_service_does_not_see_does_not_stall_the_next_rollout(cluster):
    """An InferenceService-only spec change: its generation moves past the Knative Service's for good."""
    emulator, api = cluster
    controller = emulator.controller
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    api.patch_namespaced_custom_object(
        rollout_lib.GROUP, rollout_lib.VERSION, NAMESPACE, rollout_lib.PLURAL, NAME,
        {"spec": {"predictor": {"timeout": 60}}},
    )  # fmt: skip
    behind = settle(api)
    assert behind["status"]["observedGeneration"] < behind["metadata"]["generation"]
    result = roll_out(api, NAME, NAMESPACE, V2, **FAST)
    assert (result.action, result.revision) == ("canary", controller.revision_of(V2))
    assert controller.percent(emulator.stored()) == {controller.revision_of(V2): 100}


def test_a_revision_that_never_gets_ready_times_out_and_the_previous_revision_keeps_all_traffic(cluster):
    emulator, api = cluster
    controller = emulator.controller
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    controller.never_ready.add(V2)
    with pytest.raises(RolloutError, match=r"timed out waiting for the 10 % canary.*rolled back") as error:
        roll_out(api, NAME, NAMESPACE, V2, canary_percent=10, **SHORT)
    old, failed, restored = controller.revision_of(V1), controller.revision_of(V2), controller.revision_of(V1, 1)
    assert f"serving now: {restored} ({V1}) 100 %" in str(error.value)
    assert f"{V2} is not served" in str(error.value)

    canary, pin, unpin = patches(emulator)
    assert rollout_lib.storage_uri(canary) == V2
    assert rollout_lib.storage_uri(pin) == V1 and pin["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert unpin == {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    # All traffic stayed on the old version: first the previous revision, then the restored spec's.
    splits = [split for split in controller.traffic_splits() if split]
    first_restored = splits.index({restored: 100})
    assert all(split == {old: 100} for split in splits[:first_restored]), "the failed revision never got traffic"
    assert all(split == {restored: 100} for split in splits[first_restored:])
    assert failed not in str(error.value).split("serving now:")[1]
    stored = emulator.stored()
    assert rollout_lib.storage_uri(stored) == V1 and "canaryTrafficPercent" not in stored["spec"]["predictor"]
    # No revision is left holding pods at 0 %: only the restored one is routed.
    assert [t["revisionName"] for t in settle(api)["status"]["components"]["predictor"]["traffic"]] == [restored]


def test_a_rollback_after_the_new_revision_took_all_traffic_really_serves_the_previous_version(cluster):
    """canaryTrafficPercent 0 would keep the new version: KServe's `prev` is now the new revision."""
    emulator, api = cluster
    controller = emulator.controller
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    controller.not_ingressed.add(V2)  # rolled out, all traffic, but never Ready: the deadline passes
    with pytest.raises(RolloutError, match=r"timed out waiting for the new revision.*rolled back") as error:
        roll_out(api, NAME, NAMESPACE, V2, canary_percent=0, **SHORT)
    new, restored = controller.revision_of(V2), controller.revision_of(V1, 1)
    assert {new: 100} in controller.traffic_splits(), "the new revision had taken all traffic"
    _, rollback = patches(emulator)
    assert rollout_lib.storage_uri(rollback) == V1
    assert rollback["spec"]["predictor"]["canaryTrafficPercent"] is None, "not 0: that would pin the new version"
    assert controller.traffic_splits()[-1] == {restored: 100}
    assert f"serving now: {restored} ({V1}) 100 %" in str(error.value)


def test_a_failed_revision_rolls_back_without_waiting_for_the_timeout(cluster):
    emulator, api = cluster
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    emulator.controller.failing.add(V2)
    with pytest.raises(RolloutError, match=r"RevisionFailed.*rolled back"):
        roll_out(api, NAME, NAMESPACE, V2, canary_percent=10, poll_s=0.01, timeout_s=30, rollback_timeout_s=30)
    timeline = emulator.controller.timeline
    canary, pin, _ = (i for i, (kind, _) in enumerate(timeline) if kind == "patch")
    reads_between = sum(1 for kind, _ in timeline[canary:pin] if kind == "traffic")
    assert reads_between <= 3, "it kept polling a revision that had failed"
    assert rollout_lib.storage_uri(emulator.stored()) == V1


def test_without_a_canary_the_new_version_rolls_out_directly(cluster):
    emulator, api = cluster
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    result = roll_out(api, NAME, NAMESPACE, V2, canary_percent=0, **FAST)
    assert result.action == "updated"
    (patch,) = patches(emulator)
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] is None, "unset: all traffic once ready"
    assert "canaryTrafficPercent" not in emulator.stored()["spec"]["predictor"]
    assert emulator.controller.percent(emulator.stored()) == {emulator.controller.revision_of(V2): 100}


def test_an_inference_service_that_does_not_serve_is_updated_without_a_canary(cluster):
    emulator, api = cluster
    emulator.controller.never_ready.add(V1)
    with pytest.raises(RolloutError, match=r"first revision.*just created"):
        roll_out(api, NAME, NAMESPACE, V1, timeout_s=0.1, poll_s=0.01)
    result = roll_out(api, NAME, NAMESPACE, V2, canary_percent=10, **FAST)
    assert result.action == "updated"
    assert rollout_lib.storage_uri(emulator.stored()) == V2


def test_a_failure_when_nothing_served_before_is_not_called_a_rollback(cluster):
    emulator, api = cluster
    emulator.controller.never_ready.update({V1, V2})
    with pytest.raises(RolloutError):
        roll_out(api, NAME, NAMESPACE, V1, timeout_s=0.1, poll_s=0.01)
    with pytest.raises(RolloutError, match=r"not rolled back: it was not serving its spec before") as error:
        roll_out(api, NAME, NAMESPACE, V2, **SHORT)
    assert "serving now: nothing" in str(error.value)
    assert len(patches(emulator)) == 1


def test_the_overlays_settings_survive_a_rollout_and_the_image_is_the_one_given(cluster):
    """The patch changes the image and STORAGE_URI only: resources, probes and replicas stay as applied."""
    emulator, api = cluster
    applied = build_inference_service(NAME, NAMESPACE, V1, image="registry.example/word-ocr/predictor:applied")
    applied["spec"]["predictor"]["maxReplicas"] = 6
    rollout_lib.model_container(applied)["resources"]["limits"]["memory"] = "3Gi"
    api.create_namespaced_custom_object(rollout_lib.GROUP, rollout_lib.VERSION, NAMESPACE, rollout_lib.PLURAL, applied)
    roll_out(api, NAME, NAMESPACE, V2, **FAST)  # no image given: the applied one stays
    container = rollout_lib.model_container(emulator.stored())
    assert container["image"] == "registry.example/word-ocr/predictor:applied"
    roll_out(api, NAME, NAMESPACE, V2, image=PINNED, **FAST)  # same URI, another image: a rollout
    stored = emulator.stored()
    assert stored["spec"]["predictor"]["maxReplicas"] == 6
    container = rollout_lib.model_container(stored)
    assert container["resources"]["limits"]["memory"] == "3Gi"
    assert (container["image"], container["imagePullPolicy"]) == (PINNED, "IfNotPresent")
    assert emulator.controller.revisions[-1]["containers"][0]["image"] == PINNED


def test_rolling_out_the_version_already_served_changes_nothing(cluster):
    emulator, api = cluster
    roll_out(api, NAME, NAMESPACE, V1, **FAST)
    roll_out(api, NAME, NAMESPACE, V2, image=PINNED, **FAST)
    count = len(patches(emulator))
    assert roll_out(api, NAME, NAMESPACE, V2, **FAST).action == "unchanged"
    assert roll_out(api, NAME, NAMESPACE, V2, image=PINNED, **FAST).action == "unchanged"
    assert len(patches(emulator)) == count


def test_component_rolls_out_through_a_kubeconfig_outside_a_cluster(cluster, tmp_path, monkeypatch):
    """The KFP component's own body: no in-cluster service account here, so it falls back to KUBECONFIG."""
    from components.rollout import roll_out_model

    emulator, _ = cluster
    emulator.controller.ready_after, emulator.controller.lag = 1, False  # the component polls every 5 s
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": str(emulator.url).rstrip("/")}}],
        "users": [{"name": "deployer", "user": {"token": "test"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "deployer"}}],
        "current-context": "emulator",
    }
    (tmp_path / "config").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    # kubernetes reads KUBECONFIG when imported (long before this test); a pod's process starts with it set.
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "config"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    func = roll_out_model.python_func
    url = func(V1, NAME, NAMESPACE, "", 10, 30)
    assert url == f"http://{NAME}.{NAMESPACE}.example.com"
    assert rollout_lib.model_container(emulator.stored())["image"] == PREDICTOR_IMAGE, "the template's"
    assert func(V3, NAME, NAMESPACE, PINNED, 10, 30) == url
    assert rollout_lib.storage_uri(emulator.stored()) == V3
    assert rollout_lib.model_container(emulator.stored())["image"] == PINNED
    assert emulator.stored()["spec"]["predictor"]["canaryTrafficPercent"] == 100
