"""Shards made one at a time (as the pipeline's ParallelFor tasks make them), then the manifest last."""

import pytest

from wordocr import generate, shards


def test_shards_made_separately_and_finished_equal_a_dataset_made_at_once(tmp_path):
    args = dict(split="val", num_samples=6, seed=5, font_set="train", tier="clean")
    whole = generate.generate_dataset(str(tmp_path / "whole"), num_shards=2, workers=1, **args)
    fanned = str(tmp_path / "fanned")
    infos = [generate.generate_shard(fanned, shard_index=i, num_shards=2, **args) for i in (1, 0)]
    assert not (tmp_path / "fanned" / shards.MANIFEST_NAME).exists(), "no manifest before every shard is in"
    finished = generate.finish_dataset(fanned, infos, num_shards=2, **args)  # any order
    assert finished.to_json() == whole.to_json()
    assert shards.read_manifest(fanned).to_json() == whole.to_json()


def test_finishing_without_every_shard_is_refused(tmp_path):
    args = dict(split="val", num_samples=4, seed=5, font_set="train", tier="clean")
    info = generate.generate_shard(str(tmp_path), shard_index=0, num_shards=2, **args)
    for infos in ([info], [info, info]):
        with pytest.raises(ValueError, match="expected shards"):
            generate.finish_dataset(str(tmp_path), infos, num_shards=2, **args)
    assert not (tmp_path / shards.MANIFEST_NAME).exists()
