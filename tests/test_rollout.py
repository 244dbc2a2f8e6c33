"""The deploy step's rollout, through the real kubernetes client, against a Kubernetes API on loopback.

No kube-apiserver can run here, so the API is kmock's KubernetesEmulator (an in-memory API server
that stores custom objects and applies merge patches) on 127.0.0.1, with the two things the deploy
step waits on and kmock leaves out: the API server bumping ``metadata.generation`` when the spec
changes, and a stand-in for KServe's controller that writes ``status``. The controller takes one
step each time the object is read, so a test decides how many polls a revision needs, or that it
never becomes ready, without timing anything: polls are 10 ms, timeouts short only where the
timeout is the point.

The controller follows KServe's Knative mode as manifests/README.md describes it: a change to the
predictor's containers is a new revision; ``canaryTrafficPercent`` splits traffic between the last
revision that had all traffic and the latest ready one; 0 pins traffic to the former; unset or 100
sends all traffic to the latest ready revision. A revision is only routed once ready.
"""

from __future__ import annotations

import asyncio
import copy
import subprocess
import threading

import jsonschema
import kmock
import pytest
import yaml
from kubernetes import client

from components.images import PREDICTOR_IMAGE
from tests.test_manifests import MANIFESTS, _kustomize_command, inferenceservice_schema
from wordocr import inference_service as isvc_lib
from wordocr.inference_service import DeployResult, RolloutError, build_inference_service, deploy

NAME, NAMESPACE = "word-ocr", "word-ocr-test"
V1 = "gs://models/serving/word-ocr/v20260101-000000-aaaaaa"
V2 = "gs://models/serving/word-ocr/v20260102-000000-bbbbbb"
V3 = "gs://models/serving/word-ocr/v20260103-000000-cccccc"
RESOURCE = kmock.resource(isvc_lib.GROUP, isvc_lib.VERSION, isvc_lib.PLURAL)
FAST = {"poll_s": 0.01, "timeout_s": 10}  # the controller decides when a rollout ends, not the clock


# A KServe controller stand-in -------------------------------------------------------------------


class FakeKServe:
    """Writes an InferenceService's status the way KServe's Knative mode does, one step per read.

    A new revision becomes ready ``ready_after`` reads after it is created, unless its STORAGE_URI
    is in ``never_ready`` (stays in progress) or ``failing`` (Knative gives up: RevisionFailed).
    The first read after a spec change still shows the old status, as a controller that has not
    reconciled yet would, and the traffic split follows ``canaryTrafficPercent`` one read late, while
    Ready stays True, as a route that is still being reprogrammed.
    """

    def __init__(self, ready_after: int = 2, lag: bool = True):
        self.ready_after = ready_after
        self.lag = lag
        self.never_ready: set[str] = set()
        self.failing: set[str] = set()
        self.revisions: list[dict] = []  # {"name", "containers", "uri", "reads", "ready"}
        self.rolled_out: str | None = None
        self.previous: str | None = None
        self.observed = 0
        self.routed_canary: object = ...  # the canaryTrafficPercent the route was last programmed with
        self.timeline: list[tuple[str, object]] = []

    def reconcile(self, obj: dict) -> dict | None:
        """The new status for ``obj``, or None to leave it as it is for now."""
        generation = obj["metadata"]["generation"]
        if generation != self.observed:
            self.observed = generation
            if self.lag:
                return None  # not reconciled yet: the old status, old observedGeneration
        predictor = obj["spec"]["predictor"]
        if not self.revisions or self.revisions[-1]["containers"] != predictor["containers"]:
            name = f"{obj['metadata']['name']}-predictor-{len(self.revisions) + 1:05d}"
            uri = isvc_lib.storage_uri(obj)
            self.revisions.append({"name": name, "containers": copy.deepcopy(predictor["containers"]), "uri": uri})
            self.revisions[-1].update(reads=0, ready=False)
            self.timeline.append(("revision", name))
        latest = self.revisions[-1]
        latest["reads"] += 1
        healthy = latest["uri"] not in self.never_ready | self.failing
        if healthy and not latest["ready"] and latest["reads"] >= self.ready_after:
            latest["ready"] = True
            self.timeline.append(("ready", latest["name"]))
        ready = [r["name"] for r in self.revisions if r["ready"]]
        latest_ready = ready[-1] if ready else None
        canary = predictor.get("canaryTrafficPercent")
        routed, self.routed_canary = (canary if self.routed_canary is ... else self.routed_canary), canary
        traffic = self._route(latest_ready, routed)
        if latest["ready"]:
            conditions = [{"type": "Ready", "status": "True"}]
        elif latest["uri"] in self.failing:
            message = f"Revision {latest['name']} failed: container exited"
            conditions = [
                {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": message},
                {"type": "PredictorConfigurationReady", "status": "False", "reason": "RevisionFailed"},
            ]
        else:
            conditions = [{"type": "Ready", "status": "Unknown", "reason": "RevisionNotReady"}]
        status = {
            "observedGeneration": generation,
            "url": f"http://{obj['metadata']['name']}.{obj['metadata']['namespace']}.example.com",
            "conditions": conditions,
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest["name"],
                    **({"latestReadyRevision": latest_ready} if latest_ready else {}),
                    **({"latestRolledoutRevision": self.rolled_out} if self.rolled_out else {}),
                    **({"previousRolledoutRevision": self.previous} if self.previous else {}),
                    "traffic": traffic,
                }
            },
        }
        self.timeline.append(("traffic", {t["revisionName"]: t["percent"] for t in traffic}))
        return status

    def _route(self, latest_ready: str | None, canary: int | None) -> list[dict]:
        if latest_ready is None:
            return []
        if self.rolled_out is None or self.rolled_out == latest_ready or canary in (None, 100):
            if self.rolled_out != latest_ready:
                self.previous, self.rolled_out = self.rolled_out, latest_ready
            return [{"revisionName": latest_ready, "percent": 100, "latestRevision": True}]
        split = [
            {"revisionName": self.rolled_out, "percent": 100 - canary, "latestRevision": False, "tag": "prev"},
            {"revisionName": latest_ready, "percent": canary, "latestRevision": True, "tag": "latest"},
        ]
        return [t for t in split if t["percent"]]

    def percent(self, obj: dict) -> dict[str, int]:
        return {t["revisionName"]: t["percent"] for t in obj["status"]["components"]["predictor"]["traffic"]}

    def revision_of(self, uri: str) -> str:
        return next(r["name"] for r in self.revisions if r["uri"] == uri)


class KServeEmulator(kmock.KubernetesEmulator):
    """kmock's stateful API plus generation bumps on spec changes and FakeKServe answering reads."""

    controller: FakeKServe

    def stored(self, name: str = NAME) -> dict:
        return self.objects[RESOURCE, NAMESPACE, name].raw

    def _bump(self, request, created: bool) -> None:
        """What the API server does on a write: a new resourceVersion, a new generation if the spec changed."""
        metadata = request.data.get("metadata", {}) if created else {}
        obj = self.objects[request.resource, request.namespace, request.name or metadata["name"]]
        versions = [v for v in obj.history if v is not None]
        generation = obj.raw.get("metadata", {}).get("generation", 0)
        if created or versions[-2].raw.get("spec") != obj.raw.get("spec"):
            generation += 1
        obj.patch({"metadata": {"generation": generation, "resourceVersion": str(len(versions))}})

    async def _serve_create(self, request):
        self._bump(request, created=True)
        return await super()._serve_create(request)

    async def _serve_update(self, request):
        self.controller.timeline.append(("patch", request.data))
        self._bump(request, created=False)
        return await super()._serve_update(request)

    async def _serve_fetch(self, request):
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            status = self.controller.reconcile(copy.deepcopy(self.objects[key].raw))
            if status is not None:
                self.objects[key]["status"] = status
        return await super()._serve_fetch(request)


@pytest.fixture
def cluster():
    """The emulator serving on 127.0.0.1 from its own thread and event loop, and a real client for it."""
    emulator = KServeEmulator()
    emulator.controller = FakeKServe()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def serve():
        async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            state["url"], state["stop"] = str(server.url).rstrip("/"), asyncio.Event()
            started.set()
            await state["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="kmock", daemon=True)
    thread.start()
    assert started.wait(10), "the API emulator did not start"
    api_client = client.ApiClient(client.Configuration(host=state["url"]))
    try:
        yield emulator, client.CustomObjectsApi(api_client)
    finally:
        api_client.close()
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        loop.close()


def patches(emulator: KServeEmulator) -> list[dict]:
    return [r.data for r in emulator[kmock.action.UPDATE]]


def crd_errors(obj: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(inferenceservice_schema())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)]


def settle(api, reads: int = 3) -> dict:
    """Read the object a few times, so the controller catches up with the last write."""
    for _ in range(reads):
        obj = api.get_namespaced_custom_object(isvc_lib.GROUP, isvc_lib.VERSION, NAMESPACE, isvc_lib.PLURAL, NAME)
    return obj


# The object ---------------------------------------------------------------------------------------


def test_built_inference_service_is_valid_against_the_kserve_crd():
    assert crd_errors(build_inference_service(NAME, NAMESPACE, V1)) == []


def test_crd_check_catches_a_broken_object():
    broken = build_inference_service(NAME, NAMESPACE, V1)
    broken["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    assert crd_errors(broken)


def test_built_inference_service_is_the_base_manifest_for_that_version():
    """One source of truth: kustomize's rendering of manifests/base, with only what deploy sets changed."""
    command = _kustomize_command()
    if command is None:
        pytest.skip("no kubectl or kustomize binary")
    done = subprocess.run([*command, str(MANIFESTS / "base")], capture_output=True, text=True, timeout=60, check=True)
    (base,) = [doc for doc in yaml.safe_load_all(done.stdout) if doc and doc["kind"] == "InferenceService"]
    built = build_inference_service(NAME, NAMESPACE, V1)
    container = isvc_lib.model_container(built)
    assert container["image"] == PREDICTOR_IMAGE
    assert container["env"][0] == {"name": "STORAGE_URI", "value": V1}
    assert built["spec"]["predictor"]["serviceAccountName"] == "word-ocr-predictor"
    assert "canaryTrafficPercent" not in built["spec"]["predictor"]
    base["metadata"]["namespace"] = NAMESPACE
    isvc_lib.set_env(isvc_lib.model_container(base), "STORAGE_URI", V1)
    assert built == base


def test_template_text_round_trips_for_a_pipeline_to_embed():
    template = isvc_lib.parse_template(isvc_lib.template_text())
    assert build_inference_service(NAME, NAMESPACE, V2, template) == build_inference_service(NAME, NAMESPACE, V2)
    with pytest.raises(ValueError, match="not an InferenceService"):
        isvc_lib.parse_template("kind: Deployment\n")


# Reading its status ---------------------------------------------------------------------------------


def _status(generation=2, observed=2, ready="True", created="r-2", latest_ready="r-2", traffic=None) -> dict:
    traffic = [{"revisionName": "r-2", "percent": 100, "latestRevision": True}] if traffic is None else traffic
    predictor = {"latestCreatedRevision": created, "latestReadyRevision": latest_ready, "traffic": traffic}
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready}],
            "components": {"predictor": predictor},
        },
    }


def test_serving_means_ready_at_the_current_generation_with_the_latest_revision_ready():
    assert isvc_lib.is_serving(_status())
    assert not isvc_lib.is_serving(_status(observed=1)), "a Ready status from before the last spec change"
    assert not isvc_lib.is_serving(_status(ready="Unknown"))
    assert not isvc_lib.is_serving(_status(latest_ready="r-1")), "the new revision is not ready yet"


def test_latest_traffic_counts_only_the_latest_ready_revision():
    split = [
        {"revisionName": "r-1", "percent": 90, "tag": "prev"},
        {"revisionName": "r-2", "percent": 10, "latestRevision": True, "tag": "latest"},
    ]
    assert isvc_lib.latest_traffic_percent(_status(traffic=split)) == 10
    assert isvc_lib.latest_traffic_percent(_status()) == 100


def test_a_failed_revision_is_recognised_only_at_the_generation_waited_for():
    failed = _status(ready="False")
    failed["status"]["conditions"][0].update(reason="RevisionFailed", message="container exited")
    assert "RevisionFailed" in isvc_lib.failure(failed, 2)
    assert isvc_lib.failure(failed, 3) is None, "an old failure says nothing about a newer spec"
    assert isvc_lib.failure(_status(ready="Unknown"), 2) is None


# The rollout --------------------------------------------------------------------------------------


def test_creates_the_inference_service_when_absent_and_waits_until_ready(cluster):
    emulator, api = cluster
    result = deploy(api, NAME, NAMESPACE, V1, **FAST)
    assert result == DeployResult(
        url=f"http://{NAME}.{NAMESPACE}.example.com", action="created", revision=f"{NAME}-predictor-00001"
    )
    stored, built = emulator.stored(), build_inference_service(NAME, NAMESPACE, V1)
    assert crd_errors(stored) == []
    assert stored["spec"] == built["spec"]
    for field in ("name", "namespace", "labels", "annotations"):
        assert stored["metadata"][field] == built["metadata"][field]
    assert isvc_lib.is_serving(stored)
    assert [r.method.value for r in emulator[kmock.action.CREATE]] == ["POST"]
    assert patches(emulator) == []


def test_rolls_out_a_canary_then_promotes_it_when_one_is_serving(cluster):
    emulator, api = cluster
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    controller = emulator.controller
    result = deploy(api, NAME, NAMESPACE, V2, canary_percent=10, **FAST)

    assert result.action == "canary"
    assert result.revision == controller.revision_of(V2) == f"{NAME}-predictor-00002"
    canary, promote = patches(emulator)
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc_lib.storage_uri(canary) == V2
    assert canary["metadata"]["resourceVersion"], "the patch must not overwrite a concurrent change"
    assert promote == {"spec": {"predictor": {"canaryTrafficPercent": 100}}}
    # The new revision took 10 % while the old one kept 90 %, and only got all traffic once promoted.
    old, new = controller.revision_of(V1), controller.revision_of(V2)
    splits = [event for kind, event in controller.timeline if kind == "traffic"]
    assert {old: 90, new: 10} in splits
    assert splits[-1] == {new: 100}
    stored = emulator.stored()
    assert isvc_lib.storage_uri(stored) == V2 and controller.percent(stored) == {new: 100}
    assert crd_errors(stored) == []


def test_promotes_only_once_the_new_revision_is_ready_not_on_the_old_ready_status(cluster):
    emulator, api = cluster
    emulator.controller.ready_after = 5
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    deploy(api, NAME, NAMESPACE, V2, **FAST)
    timeline = emulator.controller.timeline
    new = emulator.controller.revision_of(V2)
    promote = ("patch", {"spec": {"predictor": {"canaryTrafficPercent": 100}}})
    assert timeline.index(("ready", new)) < timeline.index(promote)


def test_a_revision_that_never_gets_ready_times_out_and_the_old_one_keeps_serving(cluster):
    emulator, api = cluster
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    emulator.controller.never_ready.add(V2)
    with pytest.raises(RolloutError, match=r"timed out .* waiting for the 10 % canary.*rolled back") as error:
        deploy(api, NAME, NAMESPACE, V2, canary_percent=10, timeout_s=0.2, poll_s=0.01)
    assert V1 in str(error.value) and V2 in str(error.value)

    canary, rollback = patches(emulator)
    assert isvc_lib.storage_uri(canary) == V2
    assert isvc_lib.storage_uri(rollback) == V1
    assert rollback["spec"]["predictor"]["canaryTrafficPercent"] == 0
    stored = emulator.stored()
    assert isvc_lib.storage_uri(stored) == V1
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 0
    # Once the controller has seen the rollback: the old version's revision has all traffic.
    assert emulator.controller.percent(settle(api)) == {emulator.controller.revision_of(V1): 100}


def test_a_failed_revision_rolls_back_without_waiting_for_the_timeout(cluster):
    emulator, api = cluster
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    emulator.controller.failing.add(V2)
    reads_before = len(emulator[kmock.action.FETCH])
    with pytest.raises(RolloutError, match=r"RevisionFailed.*rolled back"):
        deploy(api, NAME, NAMESPACE, V2, canary_percent=10, timeout_s=5, poll_s=0.01)
    assert len(emulator[kmock.action.FETCH]) - reads_before <= 4, "it kept polling a revision that had failed"
    assert isvc_lib.storage_uri(emulator.stored()) == V1


def test_without_a_canary_the_new_version_rolls_out_directly(cluster):
    emulator, api = cluster
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    result = deploy(api, NAME, NAMESPACE, V2, canary_percent=0, **FAST)
    assert result.action == "updated"
    (patch,) = patches(emulator)
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] is None, "unset: all traffic once ready"
    assert "canaryTrafficPercent" not in emulator.stored()["spec"]["predictor"]
    assert emulator.controller.percent(emulator.stored()) == {emulator.controller.revision_of(V2): 100}


def test_an_inference_service_that_does_not_serve_is_updated_without_a_canary(cluster):
    emulator, api = cluster
    emulator.controller.never_ready.add(V1)
    with pytest.raises(RolloutError, match=r"first revision.*just created"):
        deploy(api, NAME, NAMESPACE, V1, timeout_s=0.1, poll_s=0.01)
    result = deploy(api, NAME, NAMESPACE, V2, canary_percent=10, **FAST)
    assert result.action == "updated"
    assert isvc_lib.storage_uri(emulator.stored()) == V2


def test_the_overlays_settings_survive_a_rollout(cluster):
    """The patch changes the image and STORAGE_URI only: resources, probes and replicas stay as applied."""
    emulator, api = cluster
    applied = build_inference_service(NAME, NAMESPACE, V1)
    applied["spec"]["predictor"]["maxReplicas"] = 6
    isvc_lib.model_container(applied)["resources"]["limits"]["memory"] = "3Gi"
    isvc_lib.model_container(applied)["image"] = "ghcr.io/word-ocr/predictor:0.0.9"
    api.create_namespaced_custom_object(isvc_lib.GROUP, isvc_lib.VERSION, NAMESPACE, isvc_lib.PLURAL, applied)
    deploy(api, NAME, NAMESPACE, V1, **FAST)  # same URI, older image: a rollout
    deploy(api, NAME, NAMESPACE, V2, **FAST)
    stored = emulator.stored()
    assert stored["spec"]["predictor"]["maxReplicas"] == 6
    assert isvc_lib.model_container(stored)["resources"]["limits"]["memory"] == "3Gi"
    assert isvc_lib.model_container(stored)["image"] == PREDICTOR_IMAGE


def test_deploying_the_version_already_served_changes_nothing(cluster):
    emulator, api = cluster
    deploy(api, NAME, NAMESPACE, V1, **FAST)
    deploy(api, NAME, NAMESPACE, V2, **FAST)
    count = len(patches(emulator))
    assert deploy(api, NAME, NAMESPACE, V2, **FAST).action == "unchanged"
    assert len(patches(emulator)) == count


def test_component_deploys_through_a_kubeconfig_outside_a_cluster(cluster, tmp_path, monkeypatch):
    """The KFP component's own body: no in-cluster service account here, so it falls back to KUBECONFIG."""
    from components.deploy_kserve import deploy_inference_service

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
    func = deploy_inference_service.python_func
    url = func(V1, NAME, NAMESPACE, 10, 30, template_yaml=isvc_lib.template_text())
    assert url == f"http://{NAME}.{NAMESPACE}.example.com"
    assert func(V3, NAME, NAMESPACE, 10, 30) == url
    assert isvc_lib.storage_uri(emulator.stored()) == V3
    assert emulator.stored()["spec"]["predictor"]["canaryTrafficPercent"] == 100
