"""Publishing a model artifact where the predictor serves it from.

A serving root holds one folder per model name; each published model is a new version folder
and ``current.json`` names the version to serve. The pointer is written last, so a publish
that fails part-way leaves the previous version serving, and the predictor (or KServe's
``storageUri``) never sees a half-copied model. The pointer also holds the model's readings (its
``metrics``: per cell of the test grid and the test set they were read on, wordocr/gate.py), the
record the next model is judged against.

A publish that was judged against a served version names it (``replacing``), and is refused if
another version has been published meanwhile: the new model was never compared with that one.
The check is repeated just before the pointer is written; a publish landing between that check
and the write is not caught (neither local files nor GCS objects are compared-and-swapped here).

    <serving_root>/<model_name>/current.json
    <serving_root>/<model_name>/v20261128-013500-ab12cd/{model.keras, spec.json, ...}
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from wordocr import artifact, storage

log = logging.getLogger(__name__)

POINTER_NAME = "current.json"
# ``replacing`` when the caller judged the model with nothing served.
NOTHING_SERVED = ""


class ServedModelChanged(RuntimeError):
    """Another version was published after the model was judged against the one served then."""


def served_version(serving_root: str, model_name: str) -> str:
    """The version being served, or ``NOTHING_SERVED``."""
    pointer = current_model(serving_root, model_name)
    return pointer["version"] if pointer else NOTHING_SERVED


def _check_replacing(serving_root: str, model_name: str, replacing: str | None) -> None:
    if replacing is None:
        return
    served = served_version(serving_root, model_name)
    if served != replacing:
        judged = f"version {replacing}" if replacing else "nothing served"
        raise ServedModelChanged(
            f"not published: the model was judged against {judged}, but {served or 'nothing'} is served now "
            f"under {storage.join(serving_root, model_name)}; judge it again against what is served"
        )


def publish_model(artifact_uri: str, serving_root: str, model_name: str, metrics: dict | None = None,
                  replacing: str | None = None) -> str:  # fmt: skip
    """Copy the artifact at ``artifact_uri`` into a new version under ``serving_root``; return its URI.

    ``metrics`` are kept in the pointer. ``replacing``: the served version the model was judged
    against (``NOTHING_SERVED`` for none); if another is served, ServedModelChanged is raised and
    the pointer is left as it was. None publishes over whatever is served."""
    names = storage.list_names(artifact_uri)
    if "spec.json" not in names:
        raise FileNotFoundError(f"{artifact_uri} holds no spec.json: not a complete model artifact")
    _check_replacing(serving_root, model_name, replacing)
    version = time.strftime("v%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    version_uri = storage.join(serving_root, model_name, version)
    # spec.json last: a version folder is only complete once it has one.
    for name in sorted(names, key=lambda n: n == "spec.json"):
        storage.write_bytes(storage.join(version_uri, name), storage.read_bytes(storage.join(artifact_uri, name)))
    try:
        _check_replacing(serving_root, model_name, replacing)
    except ServedModelChanged:
        # The copy is never pointed at; remove it (spec.json first, so it never looks complete).
        for name in sorted(names, key=lambda n: n != "spec.json"):
            storage.delete(storage.join(version_uri, name))
        raise
    pointer = {"model_name": model_name, "version": version, "uri": version_uri, "metrics": metrics or {}}
    storage.write_bytes(storage.join(serving_root, model_name, POINTER_NAME), json.dumps(pointer, indent=2).encode())
    log.info("published %s as %s", artifact_uri, version_uri)
    return version_uri


def current_model(serving_root: str, model_name: str) -> dict | None:
    """The pointer of the version being served, or None if nothing was ever published."""
    uri = storage.join(serving_root, model_name, POINTER_NAME)
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_bytes(uri))


def resolve_artifact_uri(model_dir: str) -> str:
    """The artifact to load: ``model_dir`` itself, or the version its ``current.json`` names.

    ``model_dir`` may be an artifact folder or a published model's folder
    (``<serving_root>/<model_name>``, as ``publish_model`` writes it). When KServe's storage
    initializer copied a whole model folder to /mnt/models, the pointer's version is loaded from
    the local copy; otherwise from the URI the pointer records.
    """
    if storage.exists(storage.join(model_dir, artifact.SPEC_FILE)):
        return model_dir
    pointer_uri = storage.join(model_dir, POINTER_NAME)
    if not storage.exists(pointer_uri):
        raise FileNotFoundError(
            f"{model_dir} holds neither a model artifact ({artifact.SPEC_FILE}) nor a {POINTER_NAME}"
        )
    pointer = json.loads(storage.read_bytes(pointer_uri))
    local_copy = storage.join(model_dir, pointer["version"])
    chosen = local_copy if storage.exists(storage.join(local_copy, artifact.SPEC_FILE)) else pointer["uri"]
    log.info("%s points at version %s: loading %s", model_dir, pointer["version"], chosen)
    return chosen
