"""The compiled pipeline, run under kfp.local, with its data, model, checkpoints and serving root on gs://.

The bucket is a real GCS-compatible server (fake-gcs-server, the ``gcs_server`` fixture) on loopback,
talked to by the real google-cloud-storage client: every task subprocess inherits
STORAGE_EMULATOR_HOST from this process. Only the pipeline root (KFP's own bookkeeping) is local,
because kfp.local cannot put it on GCS; the artifacts there hold pointers to the gs:// data.
"""

import json

import pytest

from pipelines import run_local
from wordocr import shards, storage, test_grid
from wordocr.publish import current_model
from wordocr.recipes import GATE_CELLS, QUICK

pytestmark = pytest.mark.slow

TINY = dict(train_samples=192, val_samples=64, test_samples=64, epochs=1, num_shards=2)


@pytest.fixture(scope="module")
def gcs_run(gcs_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gcs-run")
    with pytest.MonkeyPatch.context() as patch:
        # Where tasks cache the shards they download: inside the test's folder, not the system's temp.
        patch.setenv(shards.CACHE_ENV, str(workdir / "cache"))
        profile = QUICK.with_settings(**TINY)
        arguments = run_local.pipeline_arguments(profile, gcs_server.uri("serving"), "word-ocr", seed=3)
        arguments.update(data_root=gcs_server.uri("runs"), checkpoint_root=gcs_server.uri("checkpoints"))
        run_local.run_pipeline(workdir, arguments)
    [run_id] = {name.split("/")[0] for name in storage.list_names(gcs_server.uri("runs"))}
    return gcs_server, workdir, run_id


def test_train_shards_and_their_manifest_are_in_the_bucket(gcs_run):
    server, _, run_id = gcs_run
    train_uri = server.uri("runs", run_id, "train")
    manifest = shards.read_manifest(train_uri)
    assert [s.name for s in manifest.shards] == [shards.shard_name(0, 2), shards.shard_name(1, 2)]
    assert manifest.count == 192 and manifest.split == "train"
    assert storage.list_names(train_uri) == sorted(
        [shards.MANIFEST_NAME, "preview.png", *(s.name for s in manifest.shards)]
    )
    assert shards.read_manifest(server.uri("runs", run_id, "val")).count == 64
    for cell in GATE_CELLS:  # the evaluate task's test grid, 64 images per cell
        assert shards.read_manifest(test_grid.cell_uri(server.uri("runs", run_id, "test"), cell)).count == 64


def test_the_model_artifact_and_checkpoints_are_in_the_bucket(gcs_run):
    server, _, run_id = gcs_run
    model_names = storage.list_names(server.uri("runs", run_id, "model"))
    assert {"model.keras", "spec.json", "history.json", "training_curves.png"} <= set(model_names)
    checkpoint_names = storage.list_names(server.uri("checkpoints", run_id, "train"))
    state = json.loads(storage.read_bytes(server.uri("checkpoints", run_id, "train", "state.json")))
    assert state["epoch"] == 1
    assert set(checkpoint_names) == {"state.json", "last-0001.weights.h5", "best-0001.weights.h5"}


def test_the_published_model_is_in_the_bucket(gcs_run):
    server, _, _ = gcs_run
    pointer = current_model(server.uri("serving"), "word-ocr")
    assert pointer is not None
    assert pointer["uri"].startswith(server.uri("serving", "word-ocr", "v"))
    assert {"model.keras", "spec.json"} <= set(storage.list_names(pointer["uri"]))


def test_the_local_pipeline_root_holds_pointers_not_data(gcs_run):
    server, workdir, run_id = gcs_run
    root = workdir / "pipeline_root"
    assert not list(root.rglob("*.tfrecord")) and not list(root.rglob("model.keras"))
    [collected] = root.rglob("collect-shards/dataset")
    assert json.loads(collected.read_text()) == {"uri": server.uri("runs", run_id, "train")}
