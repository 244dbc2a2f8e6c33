"""DatasetSpec: one frozen description of a generated dataset, refused when it cannot be made."""

import dataclasses

import pytest

from wordocr.dataset_spec import DatasetSpec


def test_shards_split_the_samples_the_first_ones_taking_the_remainder():
    spec = DatasetSpec("train", 10, seed=1, num_shards=4)
    assert spec.shard_sizes() == [3, 3, 2, 2]
    assert [spec.shard_size(i) for i in range(4)] == [3, 3, 2, 2]
    with pytest.raises(ValueError, match="shard 4 of 4 does not exist"):
        spec.shard_size(4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"split": "nope"}, "unknown split"),
        ({"tier": "nope"}, "unknown tier"),
        ({"font_set": "nope"}, "unknown font set"),
        ({"num_shards": 0}, "num_shards must be >= 1"),
        ({"num_samples": -1}, "num_samples must be >= 0"),
        ({"text": "cursive"}, "unknown text"),
    ],
)
def test_a_dataset_that_cannot_be_made_is_refused_when_described(changes, message):
    with pytest.raises(ValueError, match=message):
        DatasetSpec(**{"split": "val", "num_samples": 4, "seed": 1, **changes})


def test_a_spec_is_a_value():
    spec = DatasetSpec("val", 4, seed=1, tier="hard")
    assert spec == DatasetSpec("val", 4, seed=1, tier="hard") and hash(spec) == hash(DatasetSpec("val", 4, 1, "hard"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 2


def test_a_datasets_text_decides_its_alphabet():
    from wordocr.config import LOWER_CASE, WRITTEN

    assert DatasetSpec("val", 4, 1).alphabet == LOWER_CASE
    assert {DatasetSpec("val", 4, 1, text=text).alphabet for text in ("written", "title", "upper")} == {WRITTEN}
