"""One home for every setting: the named recipes, and every entry point reading them.

The pipeline's defaults are the cluster recipe's, TrainConfig's too, every training option
reaches the train task (or is named CLI-only), and `python -m wordocr.train` starts from a recipe.
"""

import json
import subprocess
import sys
from functools import cache

import pytest
import yaml

from pipelines.compile import COMPILED_PATH
from wordocr import char_lm
from wordocr.config import ModelSize
from wordocr.recipes import CLI_ONLY, CLUSTER, LOCAL, QUICK, RECIPES, SPELLING_WEIGHT, TrainConfig, recipe_named
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
