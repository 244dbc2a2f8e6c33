"""The pipeline's last step on a cluster: roll a published model version out to its InferenceService."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def roll_out_model(
    model_uri: str,
    name: str,
    namespace: str,
    predictor_image: str,
    canary_percent: int,
    timeout_s: int,
) -> str:
    """Roll ``model_uri`` (a published version folder) out to InferenceService ``namespace/name``; return its URL.

    ``predictor_image`` is the image to serve it with ("" keeps the InferenceService's own, which
    an overlay's ``images:`` entry set). Creates the InferenceService from the package's template
    if absent, rolls out as a canary first when one is serving, and on failure rolls back to the
    revision that served before and fails, saying what serves. ``timeout_s`` bounds the rollout; a
    rollback gets as long again.
    """
    import logging

    from kubernetes import client, config

    from wordocr.rollout import roll_out

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config.load_incluster_config()  # the run's service account (pipeline-runner on standalone KFP)
    except config.ConfigException:
        config.load_kube_config()  # KUBECONFIG or ~/.kube/config, outside a cluster
    result = roll_out(
        client.CustomObjectsApi(),
        name,
        namespace,
        model_uri,
        image=predictor_image,
        canary_percent=canary_percent,
        timeout_s=timeout_s,
    )
    logging.info("%s %s/%s: %s serves %s", result.action, namespace, name, result.url, model_uri)
    return result.url
