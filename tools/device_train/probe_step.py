"""Where a training step's time goes on a GPU (a developer's probe, not part of the product).

The first GPU run (Keras 3.15 on torch, H200) took 42 ms a step at batch 128: 3,000 images/s,
so 4 of the cluster's 20 epochs fitted in its 530 s budget. A step of this 1.3M-parameter CRNN is
microseconds of GPU work, so the time is Python dispatch. This times the same step under the
options that could remove it, on random images (the step's cost does not depend on the pixels),
and prints the torch profiler's top CPU operations for the baseline.

    KERAS_BACKEND=torch python3 tools/device_train/probe_step.py [--budget 240]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

START = time.time()


def log(message: str) -> None:
    print(f"[{time.time() - START:6.1f}s] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds; configs past it are skipped")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    import keras
    from train_gpu import compile_model  # beside this file: a script's folder is on sys.path

    from wordocr.alphabet import Alphabet
    from wordocr.config import DEFAULT_INPUT_SPEC as spec
    from wordocr.model import build_model, ctc_loss_fn
    from wordocr.train import LABEL_PAD, TrainConfig

    alphabet = Alphabet()
    rng = np.random.default_rng(0)
    n = 512 * (args.steps + 10)
    x = rng.uniform(0, 1, (n, spec.height, spec.width, 1)).astype(np.float32)
    y = np.full((n, spec.max_word_length), LABEL_PAD, np.int32)
    for i, length in enumerate(rng.integers(1, 12, n)):
        y[i, :length] = rng.integers(0, 26, length)
    log(f"keras {keras.__version__} backend {keras.backend.backend()}; {n} random images")

    def time_config(name: str, batch: int, precision: str, jit: bool) -> None:
        if time.time() - START > args.budget:
            log(f"{name}: skipped (budget)")
            return
        try:
            # The harness's own model and optimizer, at the cluster's 1,563 steps an epoch.
            model = compile_model(spec, alphabet, TrainConfig(epochs=20, batch_size=batch), 1563, precision, jit)
            t0 = time.time()
            model.fit(x[: batch * 10], y[: batch * 10], batch_size=batch, epochs=1, verbose=0)
            warm = time.time() - t0
            t0 = time.time()
            loss = model.fit(x[: batch * args.steps], y[: batch * args.steps], batch_size=batch, epochs=1,
                             verbose=0).history["loss"][-1]
            step = (time.time() - t0) / args.steps
            log(f"{name}: {step * 1000:.1f} ms/step, {batch / step:.0f} images/s (warm-up {warm:.1f} s, "
                f"loss {loss:.2f})")
        except Exception as exc:  # each option is reported and the next one tried
            log(f"{name}: failed: {type(exc).__name__}: {str(exc)[:300]}")

    time_config("mixed_float16 b128", 128, "mixed_float16", False)
    time_config("float32 b128", 128, "float32", False)
    time_config("mixed_float16 b512", 512, "mixed_float16", False)
    profile_baseline(keras, build_model, ctc_loss_fn, spec, alphabet, x, y)
    time_config("mixed_float16 b128 jit_compile", 128, "mixed_float16", True)


def profile_baseline(keras, build_model, ctc_loss_fn, spec, alphabet, x, y) -> None:
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile

        model = build_model(spec, alphabet)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ctc_loss_fn(alphabet))
        model.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model.fit(x[:1280], y[:1280], batch_size=128, epochs=1, verbose=0)
            torch.cuda.synchronize()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=45)
        log("profile of 10 float32 steps, top CPU:\n" + table)
    except Exception as exc:
        log(f"profile failed: {type(exc).__name__}: {str(exc)[:300]}")


if __name__ == "__main__":
    main()
