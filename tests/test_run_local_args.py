"""`make run`'s flags: a recipe (local by default, --quick, --recipe) and one flag per setting.

What they give is the compiled pipeline's arguments, checked against its parameters; no run is made.
"""

import pytest
import yaml

from pipelines.compile import COMPILED_PATH
from pipelines.run_local import parse_args, pipeline_arguments, recipe_from_args
from wordocr.recipes import CLUSTER, GATE_CELLS, LOCAL, QUICK, gate_setting


def _recipe(*argv: str):
    return recipe_from_args(parse_args(list(argv)))


def test_make_run_runs_the_local_recipe_and_run_quick_the_quick_one():
    assert _recipe() == LOCAL
    assert _recipe("--quick") == QUICK
    assert _recipe("--recipe", "cluster") == CLUSTER


def test_a_flag_changes_its_setting_and_nothing_else():
    recipe = _recipe("--quick", "--epochs", "3", "--gate", "0.5", "--spelling-weight", "0", "--no-mixed-precision",
                     "--conv-filters", "8,8,8,8,8", "--gate-heldout-hard", "0.4", "--train-samples", "500",
                     "--seed", "7")
    arguments = pipeline_arguments(recipe, "/srv/serving", "word-ocr")
    changed = dict(epochs=3, spelling_weight=0.0, mixed_precision=False, conv_filters="8,8,8,8,8", train_samples=500,
                   seed=7, **{gate_setting(cell): 0.5 for cell in GATE_CELLS})
    changed["gate_heldout_hard"] = 0.4  # a cell's own flag wins over --gate
    assert {name: arguments[name] for name in changed} == changed
    unchanged = {name: value for name, value in QUICK.settings().items() if name not in changed}
    assert {name: arguments[name] for name in unchanged} == unchanged


def test_the_arguments_are_the_compiled_pipelines_parameters():
    parameters = next(yaml.safe_load_all(COMPILED_PATH.read_text()))["root"]["inputDefinitions"]["parameters"]
    arguments = pipeline_arguments(LOCAL, "/srv/serving", "word-ocr", seed=3)
    assert set(arguments) <= set(parameters)
    required = {name for name, spec in parameters.items() if "defaultValue" not in spec}
    assert required <= set(arguments)
    assert arguments["seed"] == 3 and arguments["serving_root"] == "/srv/serving"


def test_quick_and_another_recipe_are_refused_together():
    with pytest.raises(SystemExit):
        parse_args(["--quick", "--recipe", "cluster"])


def test_a_text_no_model_can_be_trained_on_is_refused_before_anything_runs(capsys):
    assert _recipe("--train-text", "written").train_text == "written"
    with pytest.raises(SystemExit):
        parse_args(["--train-text", "cursive"])
    assert "train_text 'cursive', expected one of ('lower', 'written')" in capsys.readouterr().err


def test_a_width_downsample_ctc_cannot_spell_with_is_refused_before_anything_runs(capsys):
    assert _recipe("--width-downsample", "2").training.width_downsample == 2
    with pytest.raises(SystemExit):
        parse_args(["--width-downsample", "8"])
    assert "width_downsample 8 leaves 24 time steps" in capsys.readouterr().err
