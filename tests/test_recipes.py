"""One home for every setting: the named recipes, and every entry point reading them.

The pipeline's defaults are the cluster recipe's, TrainConfig's too, every training option
reaches the train task (or is named CLI-only), and `python -m wordocr.train` starts from a recipe.
"""

import dataclasses
import json
import subprocess
import sys
from functools import cache

import pytest
import yaml

from pipelines.compile import COMPILED_PATH
from wordocr import char_lm
from wordocr.config import ModelSize
from wordocr.recipes import (
    CLI_ONLY,
    CLUSTER,
    GATE_CELLS,
    LOCAL,
    LOCAL_READINGS,
    QUICK,
    RECIPES,
    SPELLING_WEIGHT,
    TrainConfig,
    add_setting_flags,
    gate_setting,
    noise_tolerance,
    recipe_from_flags,
    recipe_named,
    threshold_under,
)
from wordocr.train import config_from_args, parse_args


@cache
def _pipeline_spec() -> dict:
    return next(yaml.safe_load_all(COMPILED_PATH.read_text()))


def test_train_config_defaults_are_the_cluster_recipes():
    assert TrainConfig() == CLUSTER.training


def test_the_pipeline_parameters_default_to_the_cluster_recipe():
    parameters = _pipeline_spec()["root"]["inputDefinitions"]["parameters"]
    for name, value in CLUSTER.settings().items():
        assert name in parameters, f"the setting {name} is not a pipeline parameter"
        assert parameters[name]["defaultValue"] == value, name


def test_every_training_option_reaches_the_train_task_or_is_cli_only():
    options = set(TrainConfig().to_dict()) - {"model_size"} | {"conv_filters", "lstm_units", "dropout"}
    train_inputs = _pipeline_spec()["root"]["dag"]["tasks"]["train-model"]["inputs"]["parameters"]
    for option in options - set(CLI_ONLY):
        assert train_inputs.get(option) == {"componentInputParameter": option}, option
    # The pipeline's val_samples is the validation split's size, not TrainConfig's cap.
    assert not set(CLI_ONLY) & set(train_inputs)


@pytest.mark.parametrize("recipe", list(RECIPES.values()), ids=list(RECIPES))
def test_a_recipe_is_its_settings(recipe):
    assert recipe.with_settings(**recipe.settings()) == recipe
    assert recipe_named(recipe.name) is recipe


def test_settings_name_no_clipping_and_one_pass_as_zero():
    changed = LOCAL.with_settings(clipnorm=0.0, steps_per_epoch=0, conv_filters="8,16", lstm_units=8, epochs=3)
    assert changed.training.clipnorm is None and changed.training.steps_per_epoch is None
    assert changed.training.model_size == ModelSize((8, 16), 8, LOCAL.training.model_size.dropout)
    assert (changed.training.epochs, changed.train_samples) == (3, LOCAL.train_samples)
    assert changed.settings()["clipnorm"] == 0.0 and changed.settings()["steps_per_epoch"] == 0


def test_separable_convolutions_are_a_setting_of_the_model_size():
    assert LOCAL.settings()["separable_convs"] is LOCAL.training.model_size.separable_convs
    changed = LOCAL.with_settings(separable_convs=True)

    assert changed.training.model_size.separable_convs
    assert changed.training.model_size.conv_filters == LOCAL.training.model_size.conv_filters
    assert changed.settings()["separable_convs"] is True


def test_an_unknown_setting_or_recipe_is_refused():
    with pytest.raises(ValueError, match="unknown training options"):
        LOCAL.with_settings(epoch=3)
    with pytest.raises(ValueError, match="known: quick, local, cluster"):
        recipe_named("huge")
    with pytest.raises(ValueError):
        QUICK.with_settings(conv_filters="8,,8")


def test_the_recipes_spelling_weight_is_the_spelling_models():
    assert SPELLING_WEIGHT == char_lm.WEIGHT


def test_the_train_cli_starts_from_its_recipe():
    files = ["--train", "t", "--val", "v", "--out", "o"]
    assert config_from_args(parse_args(files)) == CLUSTER.training
    assert config_from_args(parse_args([*files, "--recipe", "local"])) == LOCAL.training
    config = config_from_args(parse_args([*files, "--recipe", "quick", "--patience", "0", "--no-mixed-precision"]))
    assert config == QUICK.training.with_settings(patience=0, mixed_precision=False)


def test_the_bench_measures_the_recipes_grid():
    from bench import run
    from wordocr.recipes import BENCH_FONT_SETS, BENCH_TIERS

    assert (run.TIERS, run.FONT_SETS) == (BENCH_TIERS, BENCH_FONT_SETS)


def test_recipes_load_without_keras_or_kfp():
    code = ("import json, sys, wordocr.recipes; "
            "print(json.dumps([m for m in ('keras', 'tensorflow', 'kfp') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_every_recipe_has_a_threshold_for_every_cell_and_nothing_else():
    for recipe in RECIPES.values():
        assert list(recipe.gate) == list(GATE_CELLS)
    with pytest.raises(ValueError, match="gate cells"):
        dataclasses.replace(LOCAL, gate={"train/noisy": 0.95})


def test_the_quick_recipes_gate_lets_any_model_through():
    assert set(QUICK.gate.values()) == {0.0} and QUICK.regression_tolerance == 1.0


def test_the_local_thresholds_sit_a_margin_under_what_the_local_model_read():
    for cell, reading in LOCAL_READINGS.items():
        margin = reading - LOCAL.gate[cell]
        assert 0.01 <= margin <= 0.05, (cell, margin)
    # The hard tier's spread between runs is wider: a wider margin.
    assert LOCAL_READINGS["heldout/hard"] - LOCAL.gate["heldout/hard"] > 0.03
    assert threshold_under("train/clean", 1.0) == 0.99
    # The cluster recipe's training-face cells are stricter than the local one's (it read them better).
    assert all(CLUSTER.gate[cell] >= LOCAL.gate[cell] for cell in GATE_CELLS)


def test_the_regression_tolerance_is_two_standard_errors_of_a_hard_cell():
    assert noise_tolerance(1000) == 0.019 and LOCAL.regression_tolerance == 0.019
    assert noise_tolerance(2000) == 0.014 and CLUSTER.regression_tolerance == 0.014
    assert noise_tolerance(4000) < noise_tolerance(1000)


def test_each_cells_threshold_is_a_setting_and_gate_sets_them_all():
    import argparse

    settings = LOCAL.settings()
    assert {name for name in settings if name.startswith("gate_")} == {gate_setting(c) for c in GATE_CELLS}
    assert gate_setting("heldout/hard") == "gate_heldout_hard"
    changed = LOCAL.with_settings(gate_heldout_hard=0.5, regression_tolerance=0.1)
    assert changed.gate == {**LOCAL.gate, "heldout/hard": 0.5} and changed.regression_tolerance == 0.1

    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    every = recipe_from_flags("local", parser.parse_args(["--gate", "0.3", "--gate-train-hard", "0.2"]))
    assert every.gate == {**dict.fromkeys(GATE_CELLS, 0.3), "train/hard": 0.2}
    assert recipe_from_flags("local", parser.parse_args([])) == LOCAL
