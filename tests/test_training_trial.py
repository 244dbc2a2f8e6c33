"""tools/training_trial: a training change read on the validation faces, tier by tier."""

import json

import pytest

from tools.training_trial import main
from wordocr.recipes import BENCH_TIERS


@pytest.mark.slow  # generates four small datasets in worker processes that load TensorFlow
def test_a_baseline_trial_reads_every_tier_on_the_validation_faces(model_dir, tmp_path):
    main(["--name", "base", "--model", str(model_dir), "--workdir", str(tmp_path), "--samples", "6"])

    record = json.loads((tmp_path / "base" / "trial.json").read_text())
    assert record["model"] == str(model_dir) and "train_seconds" not in record
    assert set(record["validation_faces"]) == set(BENCH_TIERS)
    for tier in BENCH_TIERS:
        cell = record["validation_faces"][tier]
        assert cell["count"] == 6
        assert {family for family in cell["per_family"]} <= {
            "encode-sans", "overpass", "roboto-condensed", "ibm-plex-sans-condensed", "fira-code", "roboto-mono",
        }  # fmt: skip
    # The artifact's own input geometry made the images (the tiny model reads 32x96).
    assert record["input_spec"]["width"] == 96


def test_help_names_the_levers(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--max-widen" in out and "--width-downsample" in out and "--model" in out
