"""Named recipes: every setting of a training run, in one place.

A recipe is what a run is made of: its data (how many images, of which degradation tier and font
set, in how many shards), how the model is trained (``TrainConfig``) and the accuracy the model
must reach on the test split to be published (the gate). Every entry point reads them:

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
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from wordocr.config import ModelSize

# The weight of the spelling model saved with an artifact; wordocr.char_lm.WEIGHT, the spelling
# model's own default, is the same number (tests/test_recipes.py keeps them equal).
SPELLING_WEIGHT = 0.2

# The grid a model is measured on (bench/run.py, the model card's tables): every degradation tier
# a reader meets, in the training fonts and in families never trained on.
BENCH_TIERS = ("clean", "noisy", "hard", "tight")
BENCH_FONT_SETS = ("train", "heldout")

Setting = int | float | str | bool

# TrainConfig's options that a pipeline run does not take (only `python -m wordocr.train` does), and why.
CLI_ONLY = {
    "val_samples": "a pipeline run generates its validation split at the size it wants (the recipe's "
    "val_samples); capping how many of those to decode only helps with a folder made for another run",
    "shuffle_buffer": "memory, not the model: it must fit the train task's memory limit "
    "(components/resources.TRAIN), which a run cannot change",
    "cache_max_samples": "memory, not the model: it must fit the train task's memory limit "
    "(components/resources.TRAIN), which a run cannot change",
}
# ModelSize's fields, flattened into settings of their own.
_MODEL_SIZE_SETTINGS = ("conv_filters", "lstm_units", "dropout")


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
    mixed_precision: bool = True  # only takes effect when TensorFlow sees a GPU
    # Weight of the spelling model saved with the artifact (wordocr.char_lm); 0 saves none, and
    # the model then reads by the image alone (for labels that are not English words).
    spelling_weight: float = SPELLING_WEIGHT

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_size"] = self.model_size.to_dict()
        return data

    def settings(self) -> dict[str, Setting]:
        """The options a pipeline run takes, flat: ``clipnorm`` 0 for none, ``steps_per_epoch`` 0 for
        one pass over the data, the model size as ``conv_filters`` ("32,64,..."), ``lstm_units``,
        ``dropout``. ``CLI_ONLY`` options are left out."""
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
        return dataclasses.replace(self, model_size=size, **changes)


@dataclass(frozen=True)
class Recipe:
    """One named way to train: the data, the training options and the gate."""

    name: str
    train_samples: int
    val_samples: int  # the validation split picks the best epoch; same tier and fonts as training
    test_samples: int  # the test split decides the gate; words never trained on
    num_shards: int  # of the training set: one generation task (or process) each
    accuracy_gate: float  # test word accuracy needed to publish the model
    training: TrainConfig
    train_tier: str = "train"  # the training mixture of clean, noisy and hard images
    test_tier: str = "noisy"
    test_font_set: str = "train"

    def settings(self) -> dict[str, Setting]:
        """Every setting of a run, flat, under the names of the pipeline's parameters."""
        data: dict[str, Setting] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "training")
        }
        data.update(self.training.settings())
        return data

    def with_settings(self, **settings: Setting) -> Recipe:
        """This recipe with some settings (named as in ``settings()``) changed; its name stays."""
        own = {f.name for f in fields(self)} - {"name", "training"}
        training = {name: value for name, value in settings.items() if name not in own}
        data = {name: value for name, value in settings.items() if name in own}
        return dataclasses.replace(self, training=self.training.with_settings(**training), **data)


CLUSTER = Recipe(
    name="cluster",  # a GPU node: hours of training
    train_samples=200_000,
    val_samples=2_000,
    test_samples=2_000,
    num_shards=8,
    accuracy_gate=0.95,
    training=TrainConfig(),
)
LOCAL = Recipe(
    name="local",  # `make run`: 2 CPU cores, minutes
    train_samples=30_000,
    val_samples=1_000,
    test_samples=1_000,
    num_shards=4,
    accuracy_gate=0.95,
    training=TrainConfig(epochs=5, batch_size=64),
)
QUICK = Recipe(
    name="quick",  # proves the path end to end; the model is too small to pass a real gate
    train_samples=2_000,
    val_samples=200,
    test_samples=200,
    num_shards=2,
    accuracy_gate=0.0,
    training=TrainConfig(epochs=2, batch_size=64),
)
RECIPES = {recipe.name: recipe for recipe in (QUICK, LOCAL, CLUSTER)}


def recipe_named(name: str) -> Recipe:
    """The recipe called ``name``; ValueError naming the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


# A setting's flag is its name with dashes, except the gate's.
_FLAG_NAMES = {"accuracy_gate": "--gate"}


def add_setting_flags(parser: argparse.ArgumentParser, title: str = "settings (override the recipe's)") -> None:
    """A flag for every setting of ``Recipe.settings()`` (``--train-samples``, ``--epochs``, ...,
    ``--gate``), each defaulting to None (the recipe's), its help listing every recipe's value."""
    group = parser.add_argument_group(title)
    for name, value in CLUSTER.settings().items():
        flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        shown = ", ".join(f"{recipe.name}: {recipe.settings()[name]}" for recipe in RECIPES.values())
        if isinstance(value, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=shown)
        else:
            group.add_argument(flag, dest=name, type=type(value), help=shown)


def recipe_from_flags(name: str, args: argparse.Namespace) -> Recipe:
    """The recipe ``name`` with the settings whose flags (``add_setting_flags``) were given."""
    recipe = recipe_named(name)
    given = {setting: getattr(args, setting) for setting in recipe.settings() if getattr(args, setting) is not None}
    return recipe.with_settings(**given)
