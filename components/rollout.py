"""The pipeline's last step on a cluster: serve a published model version from its InferenceService."""

from kfp import dsl

from components.images import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def deploy_inference_service(
    model_uri: str,
    name: str,
    namespace: str,
    canary_percent: int,
    timeout_s: int,
    template_yaml: str = "",
) -> str:
    """Roll ``model_uri`` (a published version folder) out to InferenceService ``namespace/name``; return its URL.

    Creates it if absent, rolls out as a canary first when one is serving, and on failure puts the
    previous version back and fails. ``template_yaml`` is the InferenceService to create when none
    exists (``wordocr.inference_service.template_text()``, embedded when the pipeline is compiled,
    since the components image has no manifests/); "" reads the base manifest of a checkout.
    """
    import logging

    from kubernetes import client, config

    from wordocr.inference_service import deploy, parse_template

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config.load_incluster_config()  # the pod's service account (word-ocr-deployer)
    except config.ConfigException:
        config.load_kube_config()  # KUBECONFIG or ~/.kube/config, outside a cluster
    template = parse_template(template_yaml) if template_yaml else None
    result = deploy(
        client.CustomObjectsApi(),
        name,
        namespace,
        model_uri,
        canary_percent=canary_percent,
        timeout_s=timeout_s,
        template=template,
    )
    logging.info("%s %s/%s: %s serves %s", result.action, namespace, name, result.url, model_uri)
    return result.url
