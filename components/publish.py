"""The gate's two branches: publish a model that passed, say clearly why one did not."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def deploy_model(
    model: dsl.Input[dsl.Model],
    serving_root: str,
    model_name: str,
    word_accuracy: float,
) -> str:
    """Publish the model as the new version the predictor serves from ``serving_root``; return its URI."""
    import logging

    from wordocr.publish import publish_model

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # metadata["uri"]: the model lives outside the artifact (the pipeline's data_root).
    artifact_uri = model.metadata.get("uri") or model.path
    uri = publish_model(artifact_uri, serving_root, model_name, metrics={"word_accuracy": word_accuracy})
    logging.info("deployed %s (word accuracy %.4f) to %s", model_name, word_accuracy, uri)
    return uri


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def reject_model(word_accuracy: float, accuracy_gate: float) -> str:
    """Record that the model stayed below the gate; the serving model is left as it was."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    message = (
        f"NOT DEPLOYED: word accuracy {word_accuracy:.4f} is below the gate {accuracy_gate:.4f}; "
        "the model being served (if any) is unchanged"
    )
    logging.warning(message)
    return message
