"""The InferenceService that serves a model version, and rolling a new version out to it.

The object is the base manifest (``manifests/base/inferenceservice.yaml``, with the base
kustomization's labels) with its name, namespace, image and ``STORAGE_URI`` filled in, so
``kubectl apply -k`` and the pipeline's deploy step create the same thing.

A rollout in KServe's Knative mode (see manifests/README.md):

- absent: create it from the template and wait until it is Ready;
- present and serving: point ``STORAGE_URI`` (and the image) at the new version with
  ``canaryTrafficPercent`` set, so the new revision takes that share while the last rolled-out one
  keeps the rest; once the new revision is Ready, promote it (``canaryTrafficPercent: 100``) and
  wait until it carries all traffic;
- present but not serving, or no canary asked for: the same patch without a canary phase.

Every wait has one deadline. On a timeout, a failed revision or an API error part-way, the
predictor is patched back to the containers it had and ``canaryTrafficPercent: 0``, which pins all
traffic to the last rolled-out revision, and ``RolloutError`` says what happened. Every rollout
sets ``canaryTrafficPercent`` itself, so the next deploy starts from a clean state.

Patches are JSON merge patches (what ``CustomObjectsApi`` sends): a list such as ``containers`` is
replaced whole, so the patch carries the current list with one value changed, and the object's
``resourceVersion``, so a concurrent change makes the API server refuse it (409) instead of losing
either change.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.images import PREDICTOR_IMAGE

log = logging.getLogger(__name__)

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"

# KServe finds the model server by this container name; a custom predictor's storageUri is this variable.
MODEL_CONTAINER = "kserve-container"
STORAGE_URI_ENV = "STORAGE_URI"

MANIFESTS_BASE = Path(__file__).resolve().parents[1] / "manifests" / "base"
TEMPLATE_FILE = MANIFESTS_BASE / "inferenceservice.yaml"
KUSTOMIZATION_FILE = MANIFESTS_BASE / "kustomization.yaml"

# Knative's reason when the latest revision cannot become ready (crash loop, image pull, deadline).
FAILED_REASONS = frozenset({"RevisionFailed", "RevisionMissing", "ProgressDeadlineExceeded"})
# GET answers worth polling through: the API server is busy or restarting, not refusing.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class RolloutError(RuntimeError):
    """A rollout that did not complete; the message says what still serves."""


@dataclass(frozen=True)
class DeployResult:
    url: str
    action: str  # "created" | "canary" | "updated" | "unchanged"
    revision: str = ""


# The object ------------------------------------------------------------------------------------


def template_text() -> str:
    """The base manifest with the base kustomization's labels, as YAML (for a pipeline to embed)."""
    return yaml.safe_dump(load_template(), sort_keys=False)


def load_template() -> dict:
    """The base InferenceService as kustomize renders it from manifests/base (labels included)."""
    if not TEMPLATE_FILE.is_file():
        raise FileNotFoundError(
            f"no InferenceService template at {TEMPLATE_FILE}: outside a checkout, pass the template "
            "(wordocr.inference_service.template_text() at pipeline compile time) or apply a manifests overlay first"
        )
    template = yaml.safe_load(TEMPLATE_FILE.read_text())
    kustomization = yaml.safe_load(KUSTOMIZATION_FILE.read_text()) if KUSTOMIZATION_FILE.is_file() else {}
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for entry in kustomization.get("labels", []):
        labels.update(entry.get("pairs", {}))
    if not labels:
        del template["metadata"]["labels"]
    return template


def parse_template(text: str) -> dict:
    template = yaml.safe_load(text)
    if not isinstance(template, dict) or template.get("kind") != "InferenceService":
        raise ValueError("the template is not an InferenceService manifest")
    return template


def build_inference_service(
    name: str, namespace: str, version_uri: str, template: dict | None = None, image: str = PREDICTOR_IMAGE
) -> dict:
    """The InferenceService that serves ``version_uri``: the template with name, namespace, image and URI set."""
    isvc = copy.deepcopy(template if template is not None else load_template())
    if isvc.get("apiVersion") != API_VERSION or isvc.get("kind") != "InferenceService":
        raise ValueError(f"the template is not a {API_VERSION} InferenceService")
    metadata = isvc.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    container = model_container(isvc)
    container["image"] = image
    set_env(container, STORAGE_URI_ENV, version_uri)
    return isvc


def model_container(isvc: dict) -> dict:
    containers = isvc.get("spec", {}).get("predictor", {}).get("containers", [])
    for container in containers:
        if container.get("name") == MODEL_CONTAINER:
            return container
    raise ValueError(f"the InferenceService has no predictor container named {MODEL_CONTAINER!r}")


def storage_uri(isvc: dict) -> str | None:
    for env in model_container(isvc).get("env", []):
        if env.get("name") == STORAGE_URI_ENV:
            return env.get("value")
    return None


def set_env(container: dict, name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for item in env:
        if item.get("name") == name:
            item.clear()  # drops a valueFrom: the value is now literal
            item.update(name=name, value=value)
            return
    env.insert(0, {"name": name, "value": value})


# Its status ------------------------------------------------------------------------------------


def condition(isvc: dict, kind: str = "Ready") -> dict:
    for cond in isvc.get("status", {}).get("conditions", []):
        if cond.get("type") == kind:
            return cond
    return {}


def predictor_status(isvc: dict) -> dict:
    return isvc.get("status", {}).get("components", {}).get("predictor", {})


def observed(isvc: dict, generation: int) -> bool:
    """The controller has seen the spec of ``generation`` (status older than that says nothing)."""
    return isvc.get("status", {}).get("observedGeneration", 0) >= generation


def is_serving(isvc: dict) -> bool:
    """Ready at the current spec, with the latest revision ready."""
    predictor = predictor_status(isvc)
    return (
        observed(isvc, isvc.get("metadata", {}).get("generation", 0))
        and condition(isvc).get("status") == "True"
        and bool(predictor.get("latestReadyRevision"))
        and predictor.get("latestReadyRevision") == predictor.get("latestCreatedRevision")
    )


def latest_traffic_percent(isvc: dict) -> int:
    """The share of traffic the latest ready revision carries."""
    predictor = predictor_status(isvc)
    latest = predictor.get("latestReadyRevision")
    return sum(
        int(t.get("percent") or 0)
        for t in predictor.get("traffic", [])
        if t.get("revisionName") == latest or (t.get("latestRevision") and not t.get("revisionName"))
    )


def failure(isvc: dict, generation: int) -> str | None:
    """Why the revision of ``generation`` cannot become ready, if the controller says it never will."""
    if not observed(isvc, generation):
        return None
    for cond in isvc.get("status", {}).get("conditions", []):
        if cond.get("status") == "False" and cond.get("reason") in FAILED_REASONS:
            return f"{cond.get('type')}: {cond.get('reason')}: {cond.get('message', '')}".rstrip(": ")
    return None


def describe(isvc: dict) -> str:
    ready = condition(isvc)
    predictor = predictor_status(isvc)
    return (
        f"Ready={ready.get('status', 'Unknown')} {ready.get('reason', '')} {ready.get('message', '')}".rstrip()
        + f"; latest revision created {predictor.get('latestCreatedRevision', '-')}"
        + f", ready {predictor.get('latestReadyRevision', '-')}"
        + f"; observed generation {isvc.get('status', {}).get('observedGeneration', '-')}"
        + f" of {isvc.get('metadata', {}).get('generation', '-')}"
    )


# The rollout -----------------------------------------------------------------------------------


def deploy(
    api,
    name: str,
    namespace: str,
    version_uri: str,
    canary_percent: int = 10,
    timeout_s: float = 600,
    poll_s: float = 5,
    template: dict | None = None,
) -> DeployResult:
    """Serve ``version_uri`` from InferenceService ``namespace/name``; ``api`` is a ``CustomObjectsApi``.

    ``canary_percent`` between 1 and 99 rolls out to a serving InferenceService as a canary first;
    0 or 100 rolls out directly. ``timeout_s`` bounds the whole rollout. ``template`` (only read
    when the InferenceService is absent) defaults to the base manifest of this checkout.
    """
    rollout = _Rollout(api, name, namespace, deadline=time.monotonic() + timeout_s, timeout_s=timeout_s, poll_s=poll_s)
    current = rollout.get()
    if current is None:
        return rollout.create(build_inference_service(name, namespace, version_uri, template))
    return rollout.update(current, version_uri, canary_percent)


@dataclass
class _Rollout:
    api: object
    name: str
    namespace: str
    deadline: float
    timeout_s: float
    poll_s: float

    @property
    def where(self) -> str:
        return f"InferenceService {self.namespace}/{self.name}"

    def get(self) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, body: dict) -> dict:
        return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name, body)

    def create(self, isvc: dict) -> DeployResult:
        log.info("creating %s serving %s", self.where, storage_uri(isvc))
        created = self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, isvc)
        try:
            ready = self.wait(created.get("metadata", {}).get("generation", 1), "the first revision to become Ready")
        except RolloutError as exc:
            # Nothing served before: there is no revision to go back to, and the deployer may not delete.
            raise RolloutError(f"{exc}; it was just created, so nothing else serves it (kubectl describe it)") from exc
        return self.result(ready, "created")

    def update(self, current: dict, version_uri: str, canary_percent: int) -> DeployResult:
        previous_uri = storage_uri(current)
        previous_containers = current["spec"]["predictor"]["containers"]
        serving = is_serving(current)
        same_spec = previous_uri == version_uri and model_container(current).get("image") == PREDICTOR_IMAGE
        if same_spec and serving and latest_traffic_percent(current) == 100:
            # A retried deploy task whose first try finished.
            log.info("%s already serves %s with all traffic", self.where, version_uri)
            return self.result(current, "unchanged")
        canary = serving and 0 < canary_percent < 100

        containers = copy.deepcopy(previous_containers)
        container = next(c for c in containers if c.get("name") == MODEL_CONTAINER)
        container["image"] = PREDICTOR_IMAGE
        set_env(container, STORAGE_URI_ENV, version_uri)
        # None deletes the field: without a canary the new revision takes all traffic once ready.
        predictor = {"containers": containers, "canaryTrafficPercent": canary_percent if canary else None}
        body: dict = {"spec": {"predictor": predictor}}
        if resource_version := current.get("metadata", {}).get("resourceVersion"):
            body["metadata"] = {"resourceVersion": resource_version}
        how = f"{canary_percent} % canary" if canary else "direct"
        log.info("%s: %s -> %s (%s)", self.where, previous_uri, version_uri, how)
        patched = self.patch(body)  # a refused patch changed nothing: no rollback needed
        try:
            if canary:
                self.wait(patched["metadata"].get("generation", 0), f"the {canary_percent} % canary to become Ready")
                log.info("%s: canary %s is Ready, promoting it", self.where, version_uri)
                patched = self.patch({"spec": {"predictor": {"canaryTrafficPercent": 100}}})
            ready = self.wait(patched["metadata"].get("generation", 0), "the new revision to take all traffic", True)
        except Exception as exc:
            raise self.roll_back(previous_containers, previous_uri, version_uri, exc) from exc
        return self.result(ready, "canary" if canary else "updated")

    def wait(self, generation: int, what: str, full: bool = False) -> dict:
        """Poll until the spec of ``generation`` is Ready (and, if ``full``, carries all traffic)."""
        from kubernetes.client.exceptions import ApiException

        last: dict = {}
        while True:
            try:
                found = self.get()
            except ApiException as exc:
                if exc.status not in TRANSIENT_STATUSES:
                    raise
                log.warning("%s: GET failed (%s %s), retrying", self.where, exc.status, exc.reason)
            else:
                if found is None:
                    raise RolloutError(f"{self.where} disappeared while waiting for {what}")
                last = found
                if reason := failure(last, generation):
                    raise RolloutError(f"{self.where}: the new revision failed ({reason})")
                done = observed(last, generation) and is_serving(last)
                if done and (not full or latest_traffic_percent(last) == 100):
                    return last
            if time.monotonic() >= self.deadline:
                raise RolloutError(
                    f"{self.where}: timed out after {self.timeout_s:g} s waiting for {what} ({describe(last)})"
                )
            time.sleep(self.poll_s)

    def roll_back(
        self, previous_containers: list, previous_uri: str | None, version_uri: str, cause: Exception
    ) -> RolloutError:
        """Put the previous containers back and pin traffic to the last rolled-out revision; the error to raise."""
        log.error("%s: rollout of %s failed (%s); rolling back to %s", self.where, version_uri, cause, previous_uri)
        try:
            self.patch({"spec": {"predictor": {"containers": previous_containers, "canaryTrafficPercent": 0}}})
        except Exception as exc:
            log.exception("%s: rollback failed", self.where)
            return RolloutError(
                f"{cause}; and the rollback to {previous_uri} FAILED ({exc}): check {self.where} by hand "
                "(kubectl patch ... canaryTrafficPercent 0 pins traffic to the previous revision)"
            )
        return RolloutError(
            f"{cause}; rolled back: STORAGE_URI is {previous_uri} again and canaryTrafficPercent 0 keeps all "
            f"traffic on the last rolled-out revision; {version_uri} is not served"
        )

    def result(self, isvc: dict, action: str) -> DeployResult:
        status = isvc.get("status", {})
        url = status.get("url") or status.get("address", {}).get("url", "")
        revision = predictor_status(isvc).get("latestReadyRevision", "")
        log.info("%s %s: %s (revision %s)", self.where, action, url, revision)
        return DeployResult(url=url, action=action, revision=revision)
