"""Generate labelled word images: one task per training shard, then the manifest; one task per small split.

Where a dataset lives is decided by ``data_root``:

- ``""``: in the KFP artifacts, under the pipeline root. Each shard task writes its shard into its
  own artifact and ``collect_shards`` copies them into one dataset artifact.
- a folder or ``gs://bucket/prefix``: at ``{data_root}/{run_id}/{split}``, written there directly
  (no copy). The artifact then holds a small ``{"uri": ...}`` file and ``metadata["uri"]`` names
  the dataset; readers take ``metadata["uri"]`` when it is set, else the artifact's path.

Either way the manifest is written last, by one task, after every shard is in place: a reader that
finds a manifest finds whole data.
"""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def plan_shards(num_shards: int) -> list[int]:
    """The shard indices ``0 .. num_shards - 1`` for the ParallelFor (KFP cannot loop over ``range``)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    return list(range(num_shards))


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def generate_shard(
    split: str,
    shard_index: int,
    num_shards: int,
    num_samples: int,
    seed: int,
    tier: str,
    font_set: str,
    text: str,
    data_root: str,
    run_id: str,
    shard: dsl.Output[dsl.Dataset],
):
    """Render shard ``shard_index`` of a ``num_samples``-image dataset (its share of the images, no manifest)."""
    import json
    import logging

    from wordocr.dataset_spec import DatasetSpec
    from wordocr.generate import generate_shard as write_shard
    from wordocr.runs import run_folder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dataset_uri = run_folder(data_root, run_id, split) if data_root else shard.path
    # Each shard's bytes are a pure function of its arguments, so a retried task rewrites the same file.
    dataset_spec = DatasetSpec(
        split, num_samples, seed, tier=tier, font_set=font_set, num_shards=num_shards, text=text
    )
    info = write_shard(dataset_uri, dataset_spec, shard_index)
    shard.metadata.update({"name": info.name, "count": info.count, "sha256": info.sha256})
    if data_root:
        shard.metadata["uri"] = dataset_uri
        with open(shard.path, "w") as f:
            json.dump({"uri": dataset_uri, "shard": info.name}, f)


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def collect_shards(
    shards: dsl.Input[list[dsl.Dataset]],
    split: str,
    num_shards: int,
    num_samples: int,
    seed: int,
    tier: str,
    font_set: str,
    text: str,
    data_root: str,
    run_id: str,
    dataset: dsl.Output[dsl.Dataset],
):
    """Gather the shards into one dataset (copying them when they are KFP artifacts), write the manifest last."""
    import json
    import logging

    from wordocr import storage
    from wordocr.dataset_spec import DatasetSpec
    from wordocr.generate import finish_dataset
    from wordocr.runs import run_folder
    from wordocr.shards import ShardInfo

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Artifact metadata comes back as JSON: counts arrive as floats.
    infos = [ShardInfo(s.metadata["name"], int(s.metadata["count"]), s.metadata["sha256"]) for s in shards]
    if data_root:
        dataset_uri = run_folder(data_root, run_id, split)
        elsewhere = sorted({s.metadata.get("uri") for s in shards} - {dataset_uri})
        if elsewhere:
            raise ValueError(f"shards of {dataset_uri} were written to {elsewhere}")
    else:
        dataset_uri = dataset.path
        for shard, info in zip(shards, infos, strict=True):
            storage.upload_file(storage.join(shard.path, info.name), storage.join(dataset_uri, info.name))
    dataset_spec = DatasetSpec(
        split, num_samples, seed, tier=tier, font_set=font_set, num_shards=num_shards, text=text
    )
    manifest = finish_dataset(dataset_uri, dataset_spec, infos)
    dataset.metadata.update({"split": split, "count": manifest.count, "tier": tier, "font_set": font_set, "text": text})
    if data_root:
        dataset.metadata["uri"] = dataset_uri
        with open(dataset.path, "w") as f:
            json.dump({"uri": dataset_uri}, f)


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def generate_words(
    split: str,
    num_samples: int,
    seed: int,
    tier: str,
    font_set: str,
    text: str,
    num_shards: int,
    workers: int,
    data_root: str,
    run_id: str,
    dataset: dsl.Output[dsl.Dataset],
):
    """Render ``num_samples`` images of the ``split`` words (fonts from ``font_set``, degradations of
    ``tier``, written as ``text`` says: wordocr.dataset_spec.TEXTS)."""
    import json
    import logging

    from wordocr.dataset_spec import DatasetSpec
    from wordocr.generate import generate_dataset
    from wordocr.runs import run_folder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dataset_uri = run_folder(data_root, run_id, split) if data_root else dataset.path
    dataset_spec = DatasetSpec(
        split, num_samples, seed, tier=tier, font_set=font_set, num_shards=num_shards, text=text
    )
    manifest = generate_dataset(dataset_uri, dataset_spec, workers=workers)
    dataset.metadata.update({"split": split, "count": manifest.count, "tier": tier, "font_set": font_set, "text": text})
    if data_root:
        dataset.metadata["uri"] = dataset_uri
        with open(dataset.path, "w") as f:
            json.dump({"uri": dataset_uri}, f)
