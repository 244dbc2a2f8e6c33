"""Compile the pipeline to the IR YAML that Kubeflow Pipelines runs (and `make run` runs locally)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from pipelines.word_ocr_pipeline import word_ocr_pipeline

COMPILED_PATH = Path(__file__).with_name("word_ocr_pipeline.yaml")


def compile_pipeline(path: Path = COMPILED_PATH) -> Path:
    compiler.Compiler().compile(word_ocr_pipeline, package_path=str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=COMPILED_PATH, help="where to write the YAML (default: %(default)s)"
    )
    args = parser.parse_args()
    print(f"compiled {compile_pipeline(args.out)}")


if __name__ == "__main__":
    main()
