"""The gate and its two branches: judge the model against the thresholds and the served model,
publish one that passed, say clearly why one did not."""

from typing import NamedTuple

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def gate_model(
    readings: dict,
    serving_root: str,
    model_name: str,
    regression_tolerance: float,
    gate_train_clean: float,
    gate_train_noisy: float,
    gate_train_hard: float,
    gate_train_tight: float,
    gate_heldout_clean: float,
    gate_heldout_noisy: float,
    gate_heldout_hard: float,
    gate_heldout_tight: float,
    table: dsl.Output[dsl.Markdown],
) -> NamedTuple("GateOutputs", [("decision", str), ("champion_version", str), ("verdict", str)]):
    """Judge the model's ``readings`` (evaluate_model's) against each cell's threshold and the record
    of the model served under ``serving_root``/``model_name`` (wordocr/gate.py). ``decision`` is
    "publish" or "reject"; ``champion_version`` the served version judged against ("" for none),
    which publish checks is still the one served; ``verdict`` the verdict as JSON; ``table`` every
    cell's threshold, served and new reading, delta and verdict."""
    import json
    import logging
    from collections import namedtuple

    from wordocr import gate, publish

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    thresholds = {
        "train/clean": gate_train_clean,
        "train/noisy": gate_train_noisy,
        "train/hard": gate_train_hard,
        "train/tight": gate_train_tight,
        "heldout/clean": gate_heldout_clean,
        "heldout/noisy": gate_heldout_noisy,
        "heldout/hard": gate_heldout_hard,
        "heldout/tight": gate_heldout_tight,
    }
    served = publish.current_model(serving_root, model_name)
    verdict = gate.judge(readings, thresholds, regression_tolerance, served)
    with open(table.path, "w") as f:
        f.write(verdict.markdown())
    (logging.info if verdict.passed else logging.warning)("gate:\n%s", verdict.text())
    outputs = namedtuple("GateOutputs", ["decision", "champion_version", "verdict"])
    decision = "publish" if verdict.passed else "reject"
    return outputs(decision, verdict.champion_version, json.dumps(verdict.to_dict(), sort_keys=True))


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def publish_model(
    model: dsl.Input[dsl.Model],
    serving_root: str,
    model_name: str,
    readings: dict,
    replacing: str,
) -> str:
    """Publish the model as a new version under ``serving_root``/``model_name``, its ``readings`` in
    the pointer; return the version's URI. Refused (the task fails, the served model stays) if the
    served version is no longer ``replacing``, the one the gate judged against ("" for none)."""
    import logging

    from wordocr import publish

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # metadata["uri"]: the model lives outside the artifact (the pipeline's data_root).
    artifact_uri = model.metadata.get("uri") or model.path
    uri = publish.publish_model(artifact_uri, serving_root, model_name, metrics=readings, replacing=replacing)
    logging.info("published %s as %s, replacing %s", model_name, uri, replacing or "nothing")
    return uri


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def reject_model(verdict: str) -> str:
    """Record why the gate refused the model; the served model is left as it was."""
    import json
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    message = f"NOT PUBLISHED. {json.loads(verdict)['summary']}. The model being served (if any) is unchanged."
    logging.warning(message)
    return message
