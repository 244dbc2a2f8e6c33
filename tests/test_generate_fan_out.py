"""Shards made one at a time (as the pipeline's ParallelFor tasks make them), then the manifest last."""

import pytest

from wordocr import generate, shards
from wordocr.dataset_spec import DatasetSpec


def test_shards_made_separately_and_finished_equal_a_dataset_made_at_once(tmp_path):
    dataset = DatasetSpec(split="val", num_samples=6, seed=5, tier="clean", font_set="train", num_shards=2)
    whole = generate.generate_dataset(str(tmp_path / "whole"), dataset, workers=1)
    fanned = str(tmp_path / "fanned")
    infos = [generate.generate_shard(fanned, dataset, shard_index=i) for i in (1, 0)]
    assert not (tmp_path / "fanned" / shards.MANIFEST_NAME).exists(), "no manifest before every shard is in"
    finished = generate.finish_dataset(fanned, dataset, infos)  # any order
    assert finished.to_json() == whole.to_json()
    assert shards.read_manifest(fanned).to_json() == whole.to_json()


def test_finishing_without_every_shard_is_refused(tmp_path):
    dataset = DatasetSpec(split="val", num_samples=4, seed=5, tier="clean", font_set="train", num_shards=2)
    info = generate.generate_shard(str(tmp_path), dataset, shard_index=0)
    for infos in ([info], [info, info]):
        with pytest.raises(ValueError, match="expected shards"):
            generate.finish_dataset(str(tmp_path), dataset, infos)
    assert not (tmp_path / shards.MANIFEST_NAME).exists()
