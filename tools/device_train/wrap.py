"""Wrap a GPU run's ``best.weights.h5`` into a model artifact the predictor and bench load.

The weights go into a float32 model built here (TensorFlow backend), so the artifact is the same
as one ``wordocr.train`` writes: model.keras, the spelling model, spec.json with the run's facts.

    .venv/bin/python tools/device_train/wrap.py RUN_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wordocr import char_lm
from wordocr.alphabet import Alphabet
from wordocr.config import DEFAULT_INPUT_SPEC
from wordocr.model import DEFAULT_MODEL_SIZE, build_model
from wordocr.train import save_trained_model


def wrap(run_dir: Path, out_dir: str) -> None:
    alphabet = Alphabet()
    model = build_model(DEFAULT_INPUT_SPEC, alphabet, DEFAULT_MODEL_SIZE)
    model.load_weights(run_dir / "best.weights.h5")
    meta = json.loads((run_dir / "meta.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    rates = history["images_per_second"]
    summary = {**meta, "device": f"gpu ({meta.get('gpu')}, Keras {meta.get('backend')} backend)",
               "train_images_per_second": sum(rates) / len(rates), "history": history}
    save_trained_model(model, out_dir, DEFAULT_INPUT_SPEC, alphabet, summary, DEFAULT_MODEL_SIZE, char_lm.WEIGHT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the run's files: best.weights.h5, meta.json, history.json")
    parser.add_argument("out_dir", help="where to write the artifact")
    args = parser.parse_args()
    wrap(args.run_dir, args.out_dir)
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
