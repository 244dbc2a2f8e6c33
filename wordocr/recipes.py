"""Named recipes: every setting of a training run, in one place.

A recipe is what a run is made of: its data (how many images, of which degradation tier and font
set, in how many shards), how the model is trained (``TrainConfig``) and what the model must read
to be published (the gate: a least word accuracy per cell of the test grid, and how much worse
than the served model a cell may read; wordocr/gate.py). Every entry point reads them:

- the pipeline's parameter defaults are ``CLUSTER``'s (pipelines/word_ocr_pipeline.py);
- ``make run`` runs ``LOCAL``, ``make run-quick`` ``QUICK`` (pipelines/run_local.py, whose flags
  override single settings);
- ``python -m wordocr.train --recipe NAME`` trains with a recipe's options, ``TrainConfig()`` is
  ``CLUSTER``'s;
- tools/device_train trains a recipe (``CLUSTER`` by default) on one GPU machine without Kubeflow;
- the bench measures a model on ``BENCH_TIERS`` x ``BENCH_FONT_SETS``.

``Recipe.settings()`` flattens a recipe into the names the pipeline's parameters and the CLIs'
flags use; ``Recipe.with_settings`` changes some of them. Plain values only (no Keras, no KFP):
any layer may import this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from wordocr.config import DEFAULT_INPUT_SPEC, ModelSize

# The weight of the spelling model saved with an artifact; wordocr.char_lm.WEIGHT, the spelling
# model's own default, is the same number (tests/test_recipes.py keeps them equal).
SPELLING_WEIGHT = 0.2

# The grid a model is measured on (bench/run.py, the model card's tables): every degradation tier
# a reader meets, in the training fonts and in families never trained on.
BENCH_TIERS = ("clean", "noisy", "hard", "tight")
BENCH_FONT_SETS = ("train", "heldout")
# The gate measures the same grid, on the test split's words (never trained on): one cell per
# font set and tier, named "font_set/tier".
GATE_CELLS = tuple(f"{font_set}/{tier}" for font_set in BENCH_FONT_SETS for tier in BENCH_TIERS)

Setting = int | float | str | bool
# What a model can be trained on (wordocr.dataset_spec.TEXTS has the test cells' texts too).
TRAIN_TEXTS = ("lower", "written")

# TrainConfig's options that a pipeline run does not take (only `python -m wordocr.train` does), and why.
CLI_ONLY = {
    "val_samples": "a pipeline run generates its validation split at the size it wants (the recipe's "
    "val_samples); capping how many of those to decode only helps with a folder made for another run",
    "shuffle_buffer": "memory, not the model: it must fit the train task's memory limit "
    "(components/resources.TRAIN), which a run cannot change",
    "cache_max_samples": "memory, not the model: it must fit the train task's memory limit "
    "(components/resources.TRAIN), which a run cannot change",
}


def gate_setting(cell: str) -> str:
    """The setting (and pipeline parameter) of a cell's threshold: "heldout/hard" -> "gate_heldout_hard"."""
    return "gate_" + cell.replace("/", "_")


def noise_tolerance(images_per_cell: int, accuracy: float = 0.9, standard_errors: float = 2.0) -> float:
    """How far a cell's word accuracy moves by chance alone: ``standard_errors`` standard errors of
    an accuracy near ``accuracy`` measured on ``images_per_cell`` images (sqrt(p (1 - p) / n)),
    rounded up to 0.001. 0.9 is the hard cells' level, the noisiest cells the gate reads; cells
    nearer 1.0 move less, so this errs towards letting a challenger through."""
    return math.ceil(1000 * standard_errors * math.sqrt(accuracy * (1 - accuracy) / images_per_cell)) / 1000


# ModelSize's fields, flattened into settings of their own.
_MODEL_SIZE_SETTINGS = ("conv_filters", "lstm_units", "dropout", "separable_convs")


@dataclass(frozen=True)
class TrainConfig:
    """How the model is trained. The defaults are the cluster recipe's (``CLUSTER.training``)."""

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # "cosine": linear warm-up then cosine decay; "constant"
    warmup_epochs: float = 0.5
    final_lr_fraction: float = 0.05  # cosine decays to this fraction of learning_rate
    clipnorm: float | None = 5.0  # gradient clipping keeps CTC's occasional spikes from wrecking a run
    patience: int = 4  # epochs without a better val word accuracy before stopping; 0 = never stop early
    seed: int = 1  # weights and shuffling; a pipeline run generates its data with the same seed
    steps_per_epoch: int | None = None  # default: one pass over the training set
    val_samples: int | None = None  # decode at most this many validation images per epoch
    shuffle_buffer: int = 10_000
    cache_max_samples: int = 50_000  # datasets up to this size are decoded once and kept in memory
    model_size: ModelSize = field(default_factory=ModelSize)
    # Input columns per CTC time step (wordocr.config.InputSpec.width_downsample): how finely the
    # network reads along the word. A setting of the run, not of its data: the images are the same
    # whatever the network does with them, so one test grid judges models of any time resolution.
    width_downsample: int = DEFAULT_INPUT_SPEC.width_downsample
    mixed_precision: bool = True  # only takes effect when TensorFlow sees a GPU
    # Weight of the spelling model saved with the artifact (wordocr.char_lm); 0 saves none, and
    # the model then reads by the image alone (for labels that are not English words).
    spelling_weight: float = SPELLING_WEIGHT

    def __post_init__(self) -> None:
        # Refused when a run is set up, not minutes later when the train task builds the model.
        spec = dataclasses.replace(DEFAULT_INPUT_SPEC, width_downsample=self.width_downsample)
        spec.check_time_steps()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_size"] = self.model_size.to_dict()
        return data

    def settings(self) -> dict[str, Setting]:
        """The options a pipeline run takes, flat: ``clipnorm`` 0 for none, ``steps_per_epoch`` 0 for
        one pass over the data, the model size as ``conv_filters`` ("32,64,..."), ``lstm_units``,
        ``dropout``, ``separable_convs``. ``CLI_ONLY`` options are left out."""
        data: dict[str, Setting] = {}
        for option in fields(self):
            if option.name in CLI_ONLY or option.name == "model_size":
                continue
            data[option.name] = getattr(self, option.name)
        data["clipnorm"] = self.clipnorm or 0.0
        data["steps_per_epoch"] = self.steps_per_epoch or 0
        data.update(
            conv_filters=self.model_size.filters_text,
            lstm_units=self.model_size.lstm_units,
            dropout=self.model_size.dropout,
            separable_convs=self.model_size.separable_convs,
        )
        return data

    def with_settings(self, **settings: Setting) -> TrainConfig:
        """This config with some options changed, named and typed as in ``settings()`` (CLI-only
        options too, under their own names)."""
        known = ({f.name for f in fields(self)} - {"model_size"}) | set(_MODEL_SIZE_SETTINGS)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}")
        changes = {name: value for name, value in settings.items() if name not in _MODEL_SIZE_SETTINGS}
        if "clipnorm" in changes:
            changes["clipnorm"] = float(changes["clipnorm"]) or None
        if "steps_per_epoch" in changes:
            changes["steps_per_epoch"] = int(changes["steps_per_epoch"]) or None
        size = self.model_size
        if "conv_filters" in settings:
            size = dataclasses.replace(size, conv_filters=ModelSize.parse_filters(str(settings["conv_filters"])))
        if "lstm_units" in settings:
            size = dataclasses.replace(size, lstm_units=int(settings["lstm_units"]))
        if "dropout" in settings:
            size = dataclasses.replace(size, dropout=float(settings["dropout"]))
        if "separable_convs" in settings:
            size = dataclasses.replace(size, separable_convs=bool(settings["separable_convs"]))
        return dataclasses.replace(self, model_size=size, **changes)


@dataclass(frozen=True)
class Recipe:
    """One named way to train: the data, the training options and the gate."""

    name: str
    train_samples: int
    val_samples: int  # the validation split picks the best epoch; same tier and fonts as training
    # Images per cell of the test grid (GATE_CELLS: every tier in the training and the held-out
    # faces), all of the test split's words, never trained on; the grid decides the gate.
    test_samples: int
    num_shards: int  # of the training set: one generation task (or process) each
    training: TrainConfig
    # The gate (wordocr/gate.py). gate: the least word accuracy of each cell of GATE_CELLS.
    # regression_tolerance: how much lower than the served model's a cell may read; 1 never refuses.
    gate: dict[str, float]
    regression_tolerance: float
    train_tier: str = "train"  # the training mixture of clean, noisy and hard images
    # What the training and validation words are (wordocr.dataset_spec.TEXTS): "lower", lower-case
    # words, a model of a-z; "written", words as people write them, a model of a-z, A-Z, 0-9 and '.
    train_text: str = "lower"

    def __post_init__(self) -> None:
        if self.train_text not in TRAIN_TEXTS:
            raise ValueError(f"recipe {self.name!r}: train_text {self.train_text!r}, expected one of {TRAIN_TEXTS}")
        if set(self.gate) != set(GATE_CELLS):
            raise ValueError(f"recipe {self.name!r}: gate cells {sorted(self.gate)}, expected {list(GATE_CELLS)}")

    def settings(self) -> dict[str, Setting]:
        """Every setting of a run, flat, under the names of the pipeline's parameters (a cell's
        threshold as ``gate_setting(cell)``)."""
        data: dict[str, Setting] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "training", "gate")
        }
        data.update({gate_setting(cell): self.gate[cell] for cell in GATE_CELLS})
        data.update(self.training.settings())
        return data

    def with_settings(self, **settings: Setting) -> Recipe:
        """This recipe with some settings (named as in ``settings()``) changed; its name stays."""
        own = {f.name for f in fields(self)} - {"name", "training", "gate"}
        thresholds = {gate_setting(cell): cell for cell in GATE_CELLS}
        gate = dict(self.gate)
        gate.update({thresholds[name]: float(value) for name, value in settings.items() if name in thresholds})
        training = {name: value for name, value in settings.items() if name not in own and name not in thresholds}
        data = {name: value for name, value in settings.items() if name in own}
        return dataclasses.replace(self, training=self.training.with_settings(**training), gate=gate, **data)


# Run-to-run spread of one recipe's readings: eight default-size runs read clean and noisy text
# within about a point of each other, and hard text within about two (docs/experiments.md).
RUN_SPREAD = {"clean": 0.01, "noisy": 0.01, "hard": 0.02, "tight": 0.01}


def threshold_under(cell: str, reading: float, images: int = 1000) -> float:
    """A cell's threshold a margin under a model's ``reading`` of it on ``images`` images: the run-to-
    run spread of the cell's tier (RUN_SPREAD) plus two standard errors of the reading, rounded down
    to 0.005. A fresh run of the recipe that trained the model should clear it; a model that lost
    more than that on a cell should not."""
    margin = RUN_SPREAD[cell.split("/")[1]] + 2 * math.sqrt(reading * (1 - reading) / images)
    return math.floor(round((reading - margin) * 200, 6)) / 200


# The model `make run` trained (out/serving/word-ocr, v20261204-181716-43fdd5: the local recipe),
# read on the test grid on 2026-12-04, 1,000 images per cell, held-out faces with the condensed and
# monospaced additions.
LOCAL_READINGS = {
    "train/clean": 0.997, "train/noisy": 0.990, "train/hard": 0.909, "train/tight": 0.993,
    "heldout/clean": 0.995, "heldout/noisy": 0.997, "heldout/hard": 0.898, "heldout/tight": 0.986,
}  # fmt: skip
# The cluster recipe, 4 of its 20 epochs on one GPU (docs/runs/2026-11-28-gpu/report.md), training
# faces; its held-out faces were fewer than today's, so those cells take LOCAL's thresholds.
CLUSTER_TRAIN_READINGS = {"train/clean": 1.000, "train/noisy": 0.996, "train/hard": 0.942, "train/tight": 0.995}
LOCAL_GATE = {cell: threshold_under(cell, reading) for cell, reading in LOCAL_READINGS.items()}
CLUSTER_GATE = LOCAL_GATE | {cell: threshold_under(cell, reading) for cell, reading in CLUSTER_TRAIN_READINGS.items()}

CLUSTER = Recipe(
    name="cluster",  # a GPU node: hours of training
    train_samples=200_000,
    val_samples=2_000,
    test_samples=2_000,
    num_shards=8,
    training=TrainConfig(),
    gate=CLUSTER_GATE,
    regression_tolerance=noise_tolerance(2_000),
)
LOCAL = Recipe(
    name="local",  # `make run`: 2 CPU cores, minutes
    train_samples=30_000,
    val_samples=1_000,
    test_samples=1_000,
    num_shards=4,
    training=TrainConfig(epochs=5, batch_size=64),
    gate=LOCAL_GATE,
    regression_tolerance=noise_tolerance(1_000),
)
QUICK = Recipe(
    name="quick",  # proves the path end to end; the model is too small to pass a real gate
    train_samples=2_000,
    val_samples=200,
    test_samples=200,
    num_shards=2,
    training=TrainConfig(epochs=2, batch_size=64),
    # Any tiny model passes: no threshold, and no refusal for reading worse than the served model
    # (two quick models differ by more than noise).
    gate=dict.fromkeys(GATE_CELLS, 0.0),
    regression_tolerance=1.0,
)
RECIPES = {recipe.name: recipe for recipe in (QUICK, LOCAL, CLUSTER)}


def recipe_named(name: str) -> Recipe:
    """The recipe called ``name``; ValueError naming the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def add_setting_flags(parser: argparse.ArgumentParser, title: str = "settings (override the recipe's)") -> None:
    """A flag for every setting of ``Recipe.settings()`` (``--train-samples``, ``--epochs``, ...,
    ``--gate-heldout-hard``), each defaulting to None (the recipe's), its help listing every
    recipe's value; and ``--gate``, every cell's threshold at once (a cell's own flag wins)."""
    group = parser.add_argument_group(title)
    group.add_argument("--gate", dest="gate_every_cell", type=float,
                       help="the threshold of every cell of the gate (a --gate-CELL flag still sets its own)")
    for name, value in CLUSTER.settings().items():
        flag = "--" + name.replace("_", "-")
        shown = ", ".join(f"{recipe.name}: {recipe.settings()[name]}" for recipe in RECIPES.values())
        if isinstance(value, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=shown)
        else:
            group.add_argument(flag, dest=name, type=type(value), help=shown)


def recipe_from_flags(name: str, args: argparse.Namespace) -> Recipe:
    """The recipe ``name`` with the settings whose flags (``add_setting_flags``) were given."""
    recipe = recipe_named(name)
    given: dict[str, Setting] = {}
    if getattr(args, "gate_every_cell", None) is not None:
        given.update(dict.fromkeys((gate_setting(cell) for cell in GATE_CELLS), args.gate_every_cell))
    given.update({name: getattr(args, name) for name in recipe.settings() if getattr(args, name) is not None})
    return recipe.with_settings(**given)
