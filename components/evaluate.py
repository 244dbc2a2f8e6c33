"""Evaluate a model artifact on the held-out test split."""

from typing import NamedTuple

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def evaluate_model(
    model: dsl.Input[dsl.Model],
    test_data: dsl.Input[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Artifact],
) -> NamedTuple("EvaluateOutputs", [("word_accuracy", float), ("cer", float)]):
    """Word accuracy and character error rate on words (and fonts, per the test split) never trained on."""
    import json
    import logging
    from collections import namedtuple

    from wordocr.evaluate import evaluate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = evaluate(model.metadata.get("uri") or model.path, test_data.metadata.get("uri") or test_data.path)
    metrics.log_metric("word_accuracy", result["word_accuracy"])
    metrics.log_metric("cer", result["cer"])
    metrics.log_metric("count", result["count"])
    with open(report.path, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    logging.info(
        "word accuracy %.4f, CER %.4f on %d test images", result["word_accuracy"], result["cer"], result["count"]
    )
    outputs = namedtuple("EvaluateOutputs", ["word_accuracy", "cer"])
    return outputs(float(result["word_accuracy"]), float(result["cer"]))
