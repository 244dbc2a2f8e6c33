"""A Kubernetes API on loopback that stores InferenceServices, with a stand-in for KServe's controller.

No kube-apiserver can run here, so the API is kmock's KubernetesEmulator (an in-memory API server
that stores custom objects and applies merge patches) on 127.0.0.1, with what a rollout depends on
and kmock leaves out: the API server bumping ``metadata.generation`` when the spec changes, and
``FakeKServe`` writing ``status`` as KServe's Knative mode does. The controller takes one step each
time the object is read, so a test decides how many polls a revision needs, or that it never
becomes ready, without timing anything.

What FakeKServe copies from KServe 0.20's source (the Knative Service reconciler and
``InferenceServiceStatus.PropagateStatus``) and Knative:

- a change to the predictor's containers makes a new revision;
- ``canaryTrafficPercent`` set, with a last rolled-out revision known: the latest ready revision
  gets that share and the last rolled-out one (tag ``prev``) the rest; unset: the latest ready
  revision gets everything;
- the latest ready revision becomes the rolled-out one once it has all traffic; with
  ``canaryTrafficPercent`` below 100 on an unchanged spec, KServe goes back to the previous one;
- ``status.observedGeneration`` is the Knative Service's generation, which moves only when the
  Knative Service's spec does: it need not equal the InferenceService's ``metadata.generation``;
- the first read after a spec change still shows the old status, and the route follows a traffic
  change one read late.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import kmock
from kubernetes import client

from wordocr import rollout as rollout_lib

NAME, NAMESPACE = "word-ocr", "word-ocr-test"
RESOURCE = kmock.resource(rollout_lib.GROUP, rollout_lib.VERSION, rollout_lib.PLURAL)


class FakeKServe:
    """Writes an InferenceService's status the way KServe's Knative mode does, one step per read.

    A new revision becomes ready ``ready_after`` reads after it is created, unless its STORAGE_URI
    is in ``never_ready`` (stays in progress) or ``failing`` (Knative gives up: RevisionFailed).
    While the latest revision's URI is in ``not_ingressed`` the revision gets ready and traffic, but
    the InferenceService's Ready stays Unknown (as when its ingress is never configured).
    """

    def __init__(self, ready_after: int = 2, lag: bool = True):
        self.ready_after = ready_after
        self.lag = lag
        self.never_ready: set[str] = set()
        self.failing: set[str] = set()
        self.not_ingressed: set[str] = set()
        self.revisions: list[dict] = []  # {"name", "containers", "uri", "reads", "ready"}
        self.rolled_out = ""
        self.previous_rolled_out = ""
        self.seen_generation = 0
        self.ksvc_spec = ""
        self.ksvc_generation = 0
        self.routed: list | None = None  # the traffic targets the route was last programmed with
        self.timeline: list[tuple[str, object]] = []

    def reconcile(self, obj: dict) -> dict | None:
        """The new status for ``obj``, or None to leave it as it is for now."""
        generation = obj["metadata"]["generation"]
        if generation != self.seen_generation:
            self.seen_generation = generation
            if self.lag:
                return None  # not reconciled yet: the old status
        predictor = obj["spec"]["predictor"]
        containers = predictor["containers"]
        targets = self._traffic_spec(predictor.get("canaryTrafficPercent"))
        ksvc_spec = json.dumps([containers, targets], sort_keys=True)
        if ksvc_spec != self.ksvc_spec:
            self.ksvc_spec, self.ksvc_generation = ksvc_spec, self.ksvc_generation + 1
        if not self.revisions or self.revisions[-1]["containers"] != containers:
            name = f"{obj['metadata']['name']}-predictor-{len(self.revisions) + 1:05d}"
            uri = rollout_lib.storage_uri(obj)
            self.revisions.append({"name": name, "containers": copy.deepcopy(containers), "uri": uri})
            self.revisions[-1].update(reads=0, ready=False)
            self.timeline.append(("revision", name))
        latest = self.revisions[-1]
        latest["reads"] += 1
        healthy = latest["uri"] not in self.never_ready | self.failing
        if healthy and not latest["ready"] and latest["reads"] >= self.ready_after:
            latest["ready"] = True
            self.timeline.append(("ready", latest["name"]))
        ready = [r["name"] for r in self.revisions if r["ready"]]
        latest_ready = ready[-1] if ready else ""
        routed, self.routed = (targets if self.routed is None else self.routed), targets
        traffic = self._route(routed, latest_ready)
        self._propagate(traffic, latest_ready, latest["name"])
        status = {
            "observedGeneration": self.ksvc_generation,
            "url": f"http://{obj['metadata']['name']}.{obj['metadata']['namespace']}.example.com",
            "conditions": self._conditions(latest),
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest["name"],
                    **({"latestReadyRevision": latest_ready} if latest_ready else {}),
                    **({"latestRolledoutRevision": self.rolled_out} if self.rolled_out else {}),
                    **({"previousRolledoutRevision": self.previous_rolled_out} if self.previous_rolled_out else {}),
                    "traffic": traffic,
                }
            },
        }
        self.timeline.append(("traffic", self.percent(status)))
        return status

    def _traffic_spec(self, canary: int | None) -> list[dict]:
        """The Knative Service's traffic, as KServe's reconciler writes it."""
        if canary is not None and self.rolled_out:
            targets = [{"latestRevision": True, "percent": canary}]
            if canary < 100:
                targets.append({"revisionName": self.rolled_out, "percent": 100 - canary, "tag": "prev"})
            return targets
        return [{"latestRevision": True, "percent": 100}]

    def _route(self, targets: list[dict], latest_ready: str) -> list[dict]:
        """The route's status: a latestRevision target resolves to the latest ready revision."""
        if not latest_ready:
            return []
        traffic = []
        for target in targets:
            if target.get("latestRevision"):
                traffic.append({"revisionName": latest_ready, "percent": target["percent"], "latestRevision": True})
            else:
                traffic.append({**target, "latestRevision": False})
        return traffic

    def _propagate(self, traffic: list[dict], latest_ready: str, latest_created: str) -> None:
        """KServe's bookkeeping of the last rolled-out revision (PropagateStatus)."""
        per_revision: dict[str, int] = {}
        for target in traffic:
            per_revision[target["revisionName"]] = per_revision.get(target["revisionName"], 0) + target["percent"]
        for target in traffic:
            if target["revisionName"] != latest_ready or not target["latestRevision"]:
                continue
            if self.rolled_out != latest_ready:
                if target["percent"] == 100:
                    self.previous_rolled_out, self.rolled_out = self.rolled_out, latest_ready
            elif latest_ready == latest_created and target["percent"] < 100 and per_revision[latest_ready] == 100:
                # canaryTrafficPercent below 100 on an unchanged spec: back to the previous rollout
                self.rolled_out = self.previous_rolled_out or self.rolled_out

    def _conditions(self, latest: dict) -> list[dict]:
        if latest["ready"] and latest["uri"] in self.not_ingressed:
            return [{"type": "Ready", "status": "Unknown", "reason": "IngressNotConfigured"}]
        if latest["ready"]:
            return [{"type": "Ready", "status": "True"}]
        if latest["uri"] in self.failing:
            message = f"Revision {latest['name']} failed: container exited"
            return [
                {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": message},
                {"type": "PredictorConfigurationReady", "status": "False", "reason": "RevisionFailed"},
            ]
        return [{"type": "Ready", "status": "Unknown", "reason": "RevisionNotReady"}]

    @staticmethod
    def percent(obj: dict) -> dict[str, int]:
        """Revision -> share of traffic (revisions with none left out)."""
        status = obj.get("status", obj)
        shares: dict[str, int] = {}
        for target in status["components"]["predictor"]["traffic"]:
            if target["percent"]:
                shares[target["revisionName"]] = shares.get(target["revisionName"], 0) + target["percent"]
        return shares

    def revision_of(self, uri: str, nth: int = 0) -> str:
        """The name of the ``nth`` revision made for ``uri``."""
        return [r["name"] for r in self.revisions if r["uri"] == uri][nth]

    def traffic_splits(self) -> list[dict[str, int]]:
        return [event for kind, event in self.timeline if kind == "traffic"]


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


@contextmanager
def serve_emulator() -> Iterator[tuple[KServeEmulator, client.CustomObjectsApi]]:
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
    if not started.wait(10):
        raise RuntimeError("the API emulator did not start")
    api_client = client.ApiClient(client.Configuration(host=state["url"]))
    try:
        yield emulator, client.CustomObjectsApi(api_client)
    finally:
        api_client.close()
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        loop.close()
