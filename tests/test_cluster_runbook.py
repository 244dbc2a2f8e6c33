"""docs/cluster.md: its commands create and name what the manifests and the pipeline use, in order.

No cluster here: the ``gcloud`` and ``kubectl`` lines are read, not run. What runs is what can run
offline: the page's edits of the prod overlay (its ``sed`` lines, on a copy of manifests/) and
kustomize's rendering of the result, ``make -n submit`` for the command line `make submit` runs,
and ``pipelines.submit``'s own parser on both submit commands.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from pipelines import submit
from tests.test_manifests import MANIFESTS, REPO, _kustomize_command

DOC = REPO / "docs" / "cluster.md"
# What the page's variables stand for in this test; DIGEST as `gcloud artifacts ... describe` prints it.
ENV = {
    "PROJECT": "my-project",
    "REGION": "europe-west4",
    "BUCKET": "my-project-word-ocr",
    "IMAGE_VERSION": "abc1234",
    "DIGEST": "sha256:" + "0123456789abcdef" * 4,
}
ENV["REGISTRY"] = f"{ENV['REGION']}-docker.pkg.dev/{ENV['PROJECT']}/word-ocr"


@functools.cache
def commands() -> tuple[str, ...]:
    """Every command line in the page's bash blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(re.sub(r"\s+", " ", line))
    return tuple(lines)


def expand(text: str) -> str:
    """``$NAME`` and ``${NAME}`` replaced by ENV (an unknown name stays, so a test sees it)."""
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: ENV.get(m.group(1), m.group(0)), text)


def first(pattern: str) -> int:
    """The index of the first command matching ``pattern``."""
    found = [i for i, line in enumerate(commands()) if re.search(pattern, line)]
    assert found, f"docs/cluster.md has no command matching {pattern!r}"
    return found[0]


@functools.cache
def edited_prod_overlay() -> tuple[dict, ...]:
    """manifests/ copied, the page's sed lines run on it with ENV, the prod overlay rendered."""
    command = _kustomize_command()
    if command is None:
        pytest.skip("no kubectl or kustomize binary")
    seds = [line for line in commands() if line.startswith("sed -i")]
    assert seds, "the page edits the overlay with sed"
    root = Path(tempfile.mkdtemp(prefix="runbook-"))
    try:
        shutil.copytree(MANIFESTS, root / "manifests")
        for line in seds:
            subprocess.run(["bash", "-c", line], cwd=root, env={"PATH": "/usr/bin:/bin", **ENV}, check=True)
        done = subprocess.run(
            [*command, str(root / "manifests" / "overlays" / "prod")], capture_output=True, text=True, check=True
        )
        return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)
    finally:
        shutil.rmtree(root)


def rendered(kind: str) -> dict:
    (obj,) = [o for o in edited_prod_overlay() if o["kind"] == kind]
    return obj


def test_the_overlay_edits_put_this_projects_bucket_image_and_account_in_place():
    container = rendered("InferenceService")["spec"]["predictor"]["containers"][0]
    assert container["image"] == f"{ENV['REGISTRY']}/predictor@{ENV['DIGEST']}"
    assert container["env"][0] == {"name": "STORAGE_URI", "value": f"gs://{ENV['BUCKET']}/serving/word-ocr"}
    account = rendered("ServiceAccount")["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert account == f"word-ocr-predictor@{ENV['PROJECT']}.iam.gserviceaccount.com"
    assert "word-ocr-prod" not in yaml.safe_dump_all(edited_prod_overlay()), "a placeholder is left"


def test_the_predictor_can_read_the_bucket_as_the_google_account_its_pods_are_mapped_to():
    """Without these the storage initializer gets 403: account, bucket role, Workload Identity binding."""
    isvc, account = rendered("InferenceService"), rendered("ServiceAccount")
    gsa = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    gsa_id = gsa.split("@")[0]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    created = first(rf"^gcloud iam service-accounts create {gsa_id}$")
    reads = first(rf"buckets add-iam-policy-binding gs://\$BUCKET .*{gsa_id}@.*roles/storage.objectViewer")
    member = f"{ENV['PROJECT']}.svc.id.goog[{account['metadata']['namespace']}/{account['metadata']['name']}]"
    binds = [
        i for i, line in enumerate(commands())
        if "roles/iam.workloadIdentityUser" in line and expand(line).startswith(f"gcloud iam service-accounts "
           f"add-iam-policy-binding {gsa}") and member in expand(line)
    ]  # fmt: skip
    assert binds, f"no Workload Identity binding of {gsa} for {member}"
    applied = first(r"^kubectl apply -k manifests/overlays/prod$")
    assert created < reads < applied and binds[0] < applied


def test_the_rollout_runs_as_the_account_the_pipeline_runs_as_which_has_the_bucket():
    (subject,) = rendered("RoleBinding")["subjects"]
    ksa = f"{subject['namespace']}/{subject['name']}"
    assert ksa == "kubeflow/pipeline-runner"
    runner = [expand(line) for line in commands() if f"[{ksa}]" in expand(line)]
    assert runner and "roles/iam.workloadIdentityUser" in runner[0]
    gsa = re.search(r"add-iam-policy-binding (\S+)", runner[0]).group(1)
    assert first(rf"buckets add-iam-policy-binding gs://\$BUCKET .*{gsa.split('@')[0]}@.*roles/storage.objectAdmin")
    assert first(rf"^kubectl annotate serviceaccount {subject['name']} -n {subject['namespace']} ")


def _submit_arguments(argv: list[str]) -> dict:
    return submit.run_arguments(submit.parse_args([*argv, "--dry-run"]))


def test_both_submit_commands_roll_out_the_pushed_predictor_by_digest_to_the_overlays_namespace():
    namespace = rendered("InferenceService")["metadata"]["namespace"]
    image = f"{ENV['REGISTRY']}/predictor@{ENV['DIGEST']}"
    direct = next(line for line in commands() if line.startswith(".venv/bin/python -m pipelines.submit --host"))
    arguments = _submit_arguments(shlex.split(expand(direct))[3:])
    assert (arguments["predictor_image"], arguments["isvc_namespace"]) == (image, namespace)

    make = next(line for line in commands() if line.startswith("make submit "))
    variables = shlex.split(expand(make))[2:]
    # Under `make test` this make is a sub-make, which would print "Entering directory" lines.
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "submit", *variables],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    argv = shlex.split(dry.stdout.replace("\\\n", " ").strip().splitlines()[-1])
    assert argv[:3] == [".venv/bin/python", "-m", "pipelines.submit"]
    arguments = _submit_arguments(argv[3:])
    assert (arguments["predictor_image"], arguments["isvc_namespace"]) == (image, namespace)
    assert first(r"^kubectl apply -k manifests/overlays/prod$") < first(r"^make submit ")


def test_the_images_are_pushed_with_the_tag_the_digest_is_read_from():
    push = expand(commands()[first(r"^make images push ")])
    assert f"REGISTRY={ENV['REGISTRY']}" in push and f"IMAGE_VERSION={ENV['IMAGE_VERSION']}" in push
    digest = expand(commands()[first(r"DIGEST=\$\(gcloud artifacts docker images describe")])
    assert f"{ENV['REGISTRY']}/predictor:{ENV['IMAGE_VERSION']}" in digest
    assert first(r"^export REGISTRY=\$REGION-docker\.pkg\.dev/")


def test_kubeflow_pipelines_is_the_release_not_the_development_setup():
    version = re.search(r"^export PIPELINE_VERSION=(\S+)$", "\n".join(commands()), flags=re.M).group(1)
    sdk = re.search(r"^kfp==(\S+)", (REPO / "requirements.txt").read_text(), flags=re.M).group(1)
    assert version.split(".")[:2] == sdk.split(".")[:2], f"backend {version} for the kfp {sdk} SDK"
    installs = [line for line in commands() if "github.com/kubeflow/pipelines/manifests/kustomize/env/" in line]
    assert [re.search(r"/env/([^?]+)\?", line).group(1) for line in installs] == ["platform-agnostic"]


def test_kserve_gets_its_namespace_and_no_istio_virtual_hosts_under_kourier():
    assert first(r"^kubectl create namespace kserve ") < first(r"releases/download/\$KSERVE_VERSION/kserve\.yaml")
    assert first(r"ingress-class.*kourier\.ingress\.networking\.knative\.dev")
    assert first(r"jq -c '\.disableIstioVirtualHost = true'") < first(r"patch configmap inferenceservice-config")
    version = re.search(r"^export KSERVE_VERSION=v(\S+)$", "\n".join(commands()), flags=re.M).group(1)
    assert f"kserve=={version}" in (REPO / "requirements.txt").read_text(), "the predictor's kserve package"
    mode = rendered("InferenceService")["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode == "Knative" and int(version.split(".")[1]) >= 16, "Knative mode is named so from KServe 0.16"


def test_knative_does_not_resolve_tags_of_the_private_registry():
    line = expand(commands()[first(r"registries-skipping-tag-resolving")])
    assert f"{ENV['REGION']}-docker.pkg.dev" in line and "config-deployment" in line
    assert ENV["REGISTRY"].startswith(f"{ENV['REGION']}-docker.pkg.dev/")
