"""Rolling a published model version out to its KServe InferenceService, and back when it fails.

The InferenceService to create when none exists is the package's template
(``wordocr/templates/inferenceservice.yaml``: manifests/base as kustomize renders it, a test keeps
the two equal) with its name, namespace, image and ``STORAGE_URI`` filled in.

A rollout in KServe's Knative mode (manifests/README.md):

- absent: create it from the template and wait until its first revision is Ready;
- present and serving: point ``STORAGE_URI`` (and the image, if one is given) at the new version
  with ``canaryTrafficPercent`` set, so the new revision takes that share while the last rolled-out
  one keeps the rest; once the new revision is Ready, promote it (``canaryTrafficPercent: 100``)
  and wait until it carries all traffic;
- present but not serving, or no canary asked for: the same patch without a canary phase.

Progress is read from revisions, not generations: KServe's ``status.observedGeneration`` is the
Knative Service's, which need not match the InferenceService's ``metadata.generation``. So the
latest created revision is recorded before the patch, and the rollout waits for a newer one to be
created and Ready (and to carry the traffic it should).

Every wait has one deadline. On a timeout, a failed revision or an API error part-way, the rollout
is rolled back to the revision that served before it (``roll_back``), and ``RolloutError`` says
which revisions serve what when it gives up. Every rollout sets ``canaryTrafficPercent`` itself, so
the next one starts from a known state.

Patches are JSON merge patches (what ``CustomObjectsApi`` sends): a list such as ``containers`` is
replaced whole, so the patch carries the current list with one value changed, and the object's
``resourceVersion``, so a concurrent change makes the API server refuse it (409) instead of losing
either change.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from importlib import resources

import yaml

log = logging.getLogger(__name__)

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"

# KServe finds the model server by this container name; a custom predictor's storageUri is this variable.
MODEL_CONTAINER = "kserve-container"
STORAGE_URI_ENV = "STORAGE_URI"
TEMPLATE_RESOURCE = "templates/inferenceservice.yaml"

# Knative's reason when the latest revision cannot become ready (crash loop, image pull, deadline).
FAILED_REASONS = frozenset({"RevisionFailed", "RevisionMissing", "ProgressDeadlineExceeded"})
# GET answers worth polling through: the API server is busy or restarting, not refusing.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class RolloutError(RuntimeError):
    """A rollout that did not complete; the message says what serves now."""


@dataclass(frozen=True)
class RolloutResult:
    url: str
    action: str  # "created" | "canary" | "updated" | "unchanged"
    revision: str = ""


# The object ------------------------------------------------------------------------------------


def template_text() -> str:
    """The InferenceService template shipped with the package, as YAML."""
    return resources.files("wordocr").joinpath(TEMPLATE_RESOURCE).read_text()


def load_template() -> dict:
    return parse_template(template_text())


def parse_template(text: str) -> dict:
    template = yaml.safe_load(text)
    if not isinstance(template, dict) or template.get("kind") != "InferenceService":
        raise ValueError("the template is not an InferenceService manifest")
    return template


def pull_policy(image: str) -> str:
    """``IfNotPresent`` for an image pinned by digest; ``Always`` for a tag, which can be pushed again."""
    return "IfNotPresent" if "@sha256:" in image else "Always"


def build_inference_service(
    name: str, namespace: str, version_uri: str, image: str = "", template: dict | None = None
) -> dict:
    """The InferenceService that serves ``version_uri``: the template with name, namespace, image and URI set.

    ``image`` "" keeps the template's image.
    """
    isvc = copy.deepcopy(template if template is not None else load_template())
    if isvc.get("apiVersion") != API_VERSION or isvc.get("kind") != "InferenceService":
        raise ValueError(f"the template is not a {API_VERSION} InferenceService")
    metadata = isvc.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    container = model_container(isvc)
    if image:
        set_image(container, image)
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


def set_image(container: dict, image: str) -> None:
    container["image"] = image
    container["imagePullPolicy"] = pull_policy(image)


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


def latest_created(isvc: dict) -> str:
    return predictor_status(isvc).get("latestCreatedRevision") or ""


def latest_ready(isvc: dict) -> str:
    return predictor_status(isvc).get("latestReadyRevision") or ""


def rolled_out(isvc: dict) -> str:
    """The last revision that took all traffic: the one ``canaryTrafficPercent`` below 100 keeps the rest on."""
    return predictor_status(isvc).get("latestRolledoutRevision") or ""


def traffic(isvc: dict) -> dict[str, int]:
    """Revision name -> percent of traffic, as the route reports it (revisions with none left out)."""
    shares: dict[str, int] = {}
    for target in predictor_status(isvc).get("traffic", []):
        name = target.get("revisionName") or (latest_ready(isvc) if target.get("latestRevision") else "")
        if name and target.get("percent"):
            shares[name] = shares.get(name, 0) + int(target["percent"])
    return shares


def is_ready(isvc: dict, revision: str) -> bool:
    """``revision`` is the latest created, it is ready, and the InferenceService says Ready."""
    return (
        bool(revision)
        and latest_created(isvc) == revision
        and latest_ready(isvc) == revision
        and condition(isvc).get("status") == "True"
    )


def is_serving(isvc: dict) -> bool:
    """Ready, with the latest created revision ready (no revision of a newer spec still pending)."""
    return is_ready(isvc, latest_created(isvc))


def latest_traffic_percent(isvc: dict) -> int:
    """The share of traffic the latest ready revision carries."""
    return traffic(isvc).get(latest_ready(isvc), 0)


def failure(isvc: dict) -> str | None:
    """Why the latest created revision cannot become ready, if the controller says it never will."""
    for cond in isvc.get("status", {}).get("conditions", []):
        if cond.get("status") == "False" and cond.get("reason") in FAILED_REASONS:
            return f"{cond.get('type')}: {cond.get('reason')}: {cond.get('message', '')}".rstrip(": ")
    return None


def describe(isvc: dict) -> str:
    ready = condition(isvc)
    return (
        f"Ready={ready.get('status', 'Unknown')} {ready.get('reason', '')} {ready.get('message', '')}".rstrip()
        + f"; latest revision created {latest_created(isvc) or '-'}, ready {latest_ready(isvc) or '-'}"
    )


# The rollout -----------------------------------------------------------------------------------


def roll_out(
    api,
    name: str,
    namespace: str,
    version_uri: str,
    image: str = "",
    canary_percent: int = 10,
    timeout_s: float = 600,
    poll_s: float = 5,
    template: dict | None = None,
    rollback_timeout_s: float | None = None,
) -> RolloutResult:
    """Serve ``version_uri`` from InferenceService ``namespace/name``; ``api`` is a ``CustomObjectsApi``.

    ``image`` is the predictor image to run it with; "" keeps the one the InferenceService has (or
    the template's, when creating). ``canary_percent`` between 1 and 99 rolls out to a serving
    InferenceService as a canary first; 0 or 100 rolls out directly. ``timeout_s`` bounds the
    rollout; a rollback after it gets ``rollback_timeout_s`` (default: as long again).
    ``template`` (only read when the InferenceService is absent) defaults to the package's.
    """
    rollback_timeout_s = timeout_s if rollback_timeout_s is None else rollback_timeout_s
    rollout = _Rollout(api, name, namespace, timeout_s, rollback_timeout_s, poll_s)
    current = rollout.get()
    if current is None:
        return rollout.create(build_inference_service(name, namespace, version_uri, image, template))
    return rollout.update(current, version_uri, image, canary_percent)


@dataclass
class _Rollout:
    api: object
    name: str
    namespace: str
    timeout_s: float
    rollback_timeout_s: float
    poll_s: float
    # Revision name -> the STORAGE_URI it serves, for messages that say what serves.
    uris: dict[str, str] = field(default_factory=dict)

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

    def create(self, isvc: dict) -> RolloutResult:
        log.warning(
            "%s does not exist: creating it from the package template (the base manifest: no overlay's "
            "replicas, canary or bucket); apply a manifests overlay first to get that environment's shape",
            self.where,
        )
        log.info("creating %s serving %s", self.where, storage_uri(isvc))
        self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, isvc)
        try:
            ready = self.wait_for_revision(
                after="", what="the first revision to become Ready", deadline=self.deadline()
            )
        except RolloutError as exc:
            # Nothing served before: there is no revision to go back to, and the rollout may not delete.
            raise RolloutError(f"{exc}; it was just created, so nothing else serves it (kubectl describe it)") from exc
        return self.result(ready, "created")

    def update(self, current: dict, version_uri: str, image: str, canary_percent: int) -> RolloutResult:
        previous_uri = storage_uri(current)
        previous_containers = current["spec"]["predictor"]["containers"]
        image = image or model_container(current).get("image", "")
        containers = copy.deepcopy(previous_containers)
        container = next(c for c in containers if c.get("name") == MODEL_CONTAINER)
        set_image(container, image)
        set_env(container, STORAGE_URI_ENV, version_uri)
        serving = is_serving(current)
        if containers == previous_containers and serving and latest_traffic_percent(current) == 100:
            # A retried rollout task whose first try finished.
            log.info("%s already serves %s with all traffic", self.where, version_uri)
            return self.result(current, "unchanged")
        canary = serving and 0 < canary_percent < 100
        # A new spec makes a revision newer than ``before``. ``previous`` serves the current spec,
        # the one a rollback restores; an InferenceService not serving its spec has none.
        before = latest_created(current)
        previous = (rolled_out(current) or latest_ready(current)) if serving else ""
        if previous and previous == latest_ready(current):
            self.uris[previous] = previous_uri or "?"
        new_revision = containers != previous_containers

        # None deletes the field: without a canary the new revision takes all traffic once ready.
        predictor = {"containers": containers, "canaryTrafficPercent": canary_percent if canary else None}
        body: dict = {"spec": {"predictor": predictor}}
        if resource_version := current.get("metadata", {}).get("resourceVersion"):
            body["metadata"] = {"resourceVersion": resource_version}
        how = f"{canary_percent} % canary" if canary else "direct"
        log.info("%s: %s -> %s, image %s (%s; serving revision %s)", self.where, previous_uri, version_uri,
                 image, how, previous or "none")  # fmt: skip
        self.patch(body)  # a refused patch changed nothing: no rollback needed
        deadline = self.deadline()
        try:
            if new_revision:
                what = f"the {canary_percent} % canary" if canary else "the new revision"
                what += " to become Ready"
                ready = self.wait_for_revision(after=before, what=what, deadline=deadline, uri=version_uri)
            else:
                ready = self.wait_for_revision(after=None, what="the revision to become Ready", deadline=deadline)
            revision = latest_ready(ready)
            if canary:
                log.info("%s: canary %s (%s) is Ready, promoting it", self.where, revision, version_uri)
                self.patch({"spec": {"predictor": {"canaryTrafficPercent": 100}}})
            ready = self.wait_for_traffic(revision, "the new revision to take all traffic", deadline)
        except Exception as exc:
            if not previous:
                raise self.no_rollback(
                    exc, "it was not serving its spec before, so there is none to go back to"
                ) from exc
            if not new_revision:
                raise self.no_rollback(exc, "the rollout changed no container, so there is nothing to restore") from exc
            raise self.roll_back(previous, previous_containers, version_uri, exc) from exc
        return self.result(ready, "canary" if canary else "updated")

    def deadline(self, seconds: float | None = None) -> float:
        return time.monotonic() + (self.timeout_s if seconds is None else seconds)

    def poll(self, what: str, deadline: float, done) -> dict:
        """GET until ``done(isvc)`` is true (it may raise RolloutError to stop early) or the deadline passes."""
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
                if done(last):
                    return last
            if time.monotonic() >= deadline:
                raise RolloutError(f"{self.where}: timed out waiting for {what} ({describe(last)})")
            time.sleep(self.poll_s)

    def wait_for_revision(self, after: str | None, what: str, deadline: float, uri: str = "") -> dict:
        """Wait until a revision created after ``after`` is Ready; ``None``: the latest one, whichever it is."""

        def done(isvc: dict) -> bool:
            revision = latest_created(isvc)
            if not revision or (after is not None and revision == after):
                return False  # the controller has not made the new spec's revision yet
            if uri:
                self.uris.setdefault(revision, uri)
            if reason := failure(isvc):
                raise RolloutError(f"{self.where}: revision {revision} failed ({reason})")
            return is_ready(isvc, revision)

        return self.poll(what, deadline, done)

    def wait_for_traffic(self, revision: str, what: str, deadline: float) -> dict:
        return self.poll(what, deadline, lambda isvc: is_ready(isvc, revision) and traffic(isvc) == {revision: 100})

    def roll_back(self, previous: str, previous_containers: list, version_uri: str, cause: Exception) -> RolloutError:
        """Serve the previous containers again, from the revision that served before if KServe still can.

        ``canaryTrafficPercent: 0`` sends all traffic to KServe's last rolled-out revision. While that
        is still the one that served before, the rollback pins traffic there at once, then waits for
        the revision of the restored spec and moves traffic to it (so no revision is left holding
        ``minReplicas`` pods with no traffic). If the new version had already taken all traffic, that
        pin would keep it serving: the restored spec goes out without a canary instead, and takes
        all traffic once ready.
        """
        log.error("%s: rollout of %s failed (%s); rolling back to %s", self.where, version_uri, cause, previous)
        deadline = self.deadline(self.rollback_timeout_s)
        restored = storage_uri({"spec": {"predictor": {"containers": previous_containers}}}) or "?"
        now: dict = {}
        try:
            now = self.get() or {}
            pin = rolled_out(now) == previous
            before = latest_created(now)
            predictor = {"containers": previous_containers, "canaryTrafficPercent": 0 if pin else None}
            self.patch({"spec": {"predictor": predictor}})
            how = f"traffic pinned to {previous}" if pin else f"{version_uri} had taken all traffic"
            log.info("%s: rolling back (%s)", self.where, how)
            ready = self.wait_for_revision(
                after=before, what="the restored spec's revision to become Ready", deadline=deadline, uri=restored
            )
            revision = latest_ready(ready)
            if pin:
                self.patch({"spec": {"predictor": {"canaryTrafficPercent": None}}})
            now = self.wait_for_traffic(revision, "the restored spec's revision to take all traffic", deadline)
        except Exception as exc:
            log.exception("%s: rollback did not finish", self.where)
            try:
                now = self.get() or now
            except Exception:
                log.exception("%s: cannot read it", self.where)
            return RolloutError(
                f"{cause}; the rollback to {restored} did not finish ({exc}); serving now: {self.serving(now)}. "
                f"Check {self.where} by hand"
            )
        return RolloutError(f"{cause}; rolled back: serving now: {self.serving(now)}; {version_uri} is not served")

    def no_rollback(self, cause: Exception, why: str) -> RolloutError:
        try:
            now = self.get() or {}
        except Exception:
            log.exception("%s: cannot read it", self.where)
            now = {}
        return RolloutError(f"{cause}; not rolled back: {why}; serving now: {self.serving(now)} (kubectl describe it)")

    def serving(self, isvc: dict) -> str:
        """Which revision serves which version with which share, as the route reports it."""
        shares = traffic(isvc)
        if not shares:
            return "nothing (no traffic reported)"
        return ", ".join(f"{rev} ({self.uris.get(rev, '?')}) {pct} %" for rev, pct in sorted(shares.items()))

    def result(self, isvc: dict, action: str) -> RolloutResult:
        status = isvc.get("status", {})
        url = status.get("url") or status.get("address", {}).get("url", "")
        revision = latest_ready(isvc)
        log.info("%s %s: %s (revision %s)", self.where, action, url, revision)
        return RolloutResult(url=url, action=action, revision=revision)
