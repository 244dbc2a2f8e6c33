"""The gate's two branches: publish a model that passed, say clearly why one did not."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def publish_model(
    model: dsl.Input[dsl.Model],
    serving_root: str,
    model_name: str,
    word_accuracy: float,
) -> str:
    """Publish the model as a new version under ``serving_root``/``model_name``; return the version's URI."""
    import logging

    from wordocr import publish

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # metadata["uri"]: the model lives outside the artifact (the pipeline's data_root).
    artifact_uri = model.metadata.get("uri") or model.path
    uri = publish.publish_model(artifact_uri, serving_root, model_name, metrics={"word_accuracy": word_accuracy})
    logging.info("published %s (word accuracy %.4f) as %s", model_name, word_accuracy, uri)
    return uri


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def reject_model(word_accuracy: float, accuracy_gate: float) -> str:
    """Record that the model stayed below the gate; the serving model is left as it was."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    message = (
        f"NOT PUBLISHED: word accuracy {word_accuracy:.4f} is below the gate {accuracy_gate:.4f}; "
        "the model being served (if any) is unchanged"
    )
    logging.warning(message)
    return message
