"""Try one training change: train a recipe with it and read the validation faces, tier by tier.

    python -m tools.training_trial --name frames2 --frames-per-step 2 [--width-downsample 2] [--max-widen 2]

Choices between training changes are made on the validation faces (wordocr.fonts'
``VALIDATION_FAMILIES``: never trained on, never tested), so the held-out test faces stay unseen
by every choice. Each trial writes ``WORKDIR/NAME/trial.json``: the input geometry and training
options it changed, training time and throughput, and per tier word accuracy, CER, the worst
families and the word classes CTC finds hard. Datasets are made once per input geometry and
reused by every trial that shares it. docs/experiments.md records what the trials measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from wordocr.config import DEFAULT_INPUT_SPEC, InputSpec
from wordocr.dataset_spec import TEXTS, DatasetSpec
from wordocr.recipes import BENCH_TIERS, recipe_named

log = logging.getLogger("training_trial")

VALIDATION_FONT_SET = "validation"
# The seed of the validation-face images (validation words, as the recipe's val split draws them,
# but another draw of them).
TRIAL_TEST_SEED = 23


def _spec_id(spec: InputSpec) -> str:
    frames = f"-f{spec.frames_per_step}" if spec.frames_per_step != 1 else ""
    return f"{spec.height}x{spec.width}-d{spec.width_downsample}-w{spec.max_widen:g}{frames}"


def _dataset(workdir: Path, spec: InputSpec, name: str, dataset: DatasetSpec) -> str:
    from wordocr.generate import generate_dataset

    out = workdir / "data" / _spec_id(spec) / name
    generate_dataset(str(out), dataclasses.replace(dataset, input_spec=spec), workers=os.cpu_count() or 1)
    return str(out)


def _train(workdir: Path, spec: InputSpec, recipe_name: str, settings: dict, model_dir: Path) -> dict:
    from wordocr.train import train

    recipe = recipe_named(recipe_name).with_settings(**settings)
    seed = recipe.training.seed
    text = recipe.train_text
    suffix = "" if text == "lower" else f"-{text}"
    train_uri = _dataset(workdir, spec, f"train-{recipe.train_samples}-s{seed}{suffix}",
                         DatasetSpec("train", recipe.train_samples, seed, tier=recipe.train_tier,
                                     num_shards=recipe.num_shards, text=text))  # fmt: skip
    val_uri = _dataset(workdir, spec, f"val-{recipe.val_samples}-s{seed}{suffix}",
                       DatasetSpec("val", recipe.val_samples, seed, tier=recipe.train_tier, num_shards=1, text=text))
    started = time.monotonic()
    result = train(train_uri, val_uri, str(model_dir), recipe.training)
    return {"train_seconds": round(time.monotonic() - started, 1), "train_result": dataclasses.asdict(result)}


def run_trial(name: str, workdir: Path, spec: InputSpec, recipe_name: str, samples_per_tier: int,
              settings: dict, model: Path | None = None, texts: tuple[str, ...] = ("lower",)) -> dict:  # fmt: skip
    """Train ``recipe_name`` (with ``settings`` changed) on data of geometry ``spec``, or take the
    artifact ``model`` as it is; read the validation faces in each of ``texts``
    (wordocr.dataset_spec.TEXTS; a cell is named by its tier, or "tier/text" for other texts than
    lower case); return (and write) the trial's record."""
    from wordocr.evaluate import evaluate

    record: dict = {"name": name, "recipe": recipe_name, "settings": settings, "input_spec": spec.to_dict()}
    if model is None:
        model_dir = workdir / name / "model"
        record.update(_train(workdir, spec, recipe_name, settings, model_dir))
    else:
        model_dir = model
        record["model"] = str(model)
    record["validation_faces"] = {}
    for text in texts:
        for tier in BENCH_TIERS:
            cell = tier if text == "lower" else f"{tier}/{text}"
            data = _dataset(workdir, spec, f"validation-{cell.replace('/', '-')}-{samples_per_tier}",
                            DatasetSpec("val", samples_per_tier, TRIAL_TEST_SEED, tier=tier,
                                        font_set=VALIDATION_FONT_SET, num_shards=1, text=text))  # fmt: skip
            metrics = evaluate(str(model_dir), data)
            record["validation_faces"][cell] = {
                key: metrics[key] for key in metrics if key not in ("artifact_uri", "dataset_uri", "per_length")
            }
            log.info("%s: validation faces %s: word accuracy %.4f", name, cell, metrics["word_accuracy"])
    out = workdir / name / "trial.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    log.info("wrote %s", out)
    return record


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m tools.training_trial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the trial's name: its folder under --workdir")
    parser.add_argument("--workdir", default="out/trials", help="trials and their datasets (default: %(default)s)")
    parser.add_argument("--recipe", default="local", help="the recipe trained (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=1000,
                        help="validation-face images per tier (default: %(default)s)")
    parser.add_argument("--width", type=int, default=DEFAULT_INPUT_SPEC.width, help="input width in pixels")
    parser.add_argument("--width-downsample", type=int,
                        help="input columns per CTC time step (the recipe's width_downsample setting; "
                        "the images are the same for any)")
    parser.add_argument("--max-widen", type=float, default=DEFAULT_INPUT_SPEC.max_widen,
                        help="widen narrow words by up to this factor (1: keep the aspect ratio)")
    parser.add_argument("--frames-per-step", type=int, default=DEFAULT_INPUT_SPEC.frames_per_step,
                        help="CTC frames the model emits per feature column (1: one)")
    parser.add_argument("--model", type=Path,
                        help="read the validation faces with this artifact instead of training one (a baseline)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change one of the recipe's settings, e.g. --set epochs=6 --set train_text=written")
    parser.add_argument("--texts", default="lower",
                        help="the texts read on the validation faces, comma separated, of "
                        f"{', '.join(TEXTS)} (default: %(default)s)")
    args = parser.parse_args(argv)
    spec = dataclasses.replace(DEFAULT_INPUT_SPEC, width=args.width, max_widen=args.max_widen,
                               frames_per_step=args.frames_per_step)
    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        kind = type(recipe_named(args.recipe).settings()[key])
        settings[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    if args.width_downsample is not None:
        settings["width_downsample"] = args.width_downsample
    if args.model is not None:
        from wordocr.artifact import read_spec
        from wordocr.publish import resolve_artifact_uri

        args.model = Path(resolve_artifact_uri(str(args.model)))
        # The artifact's images; its width downsample is its network's, not the data's.
        spec = dataclasses.replace(InputSpec.from_dict(read_spec(str(args.model))["input_spec"]),
                                   width_downsample=DEFAULT_INPUT_SPEC.width_downsample)
    texts = tuple(args.texts.split(","))
    unknown = sorted(set(texts) - set(TEXTS))
    if unknown:
        parser.error(f"unknown --texts {unknown}; choose from {', '.join(TEXTS)}")
    run_trial(args.name, Path(args.workdir), spec, args.recipe, args.samples, settings, args.model, texts)


if __name__ == "__main__":
    main()
