"""A model artifact: one folder (local or gs://) that is everything the predictor needs.

::

    model.keras   architecture + weights, no optimizer state (load with compile=False)
    model.onnx    the same model as an ONNX graph (wordocr.onnx_export), what the predictor runs
                  on ONNX Runtime without TensorFlow; older artifacts lack it (export it with
                  ``python -m wordocr.onnx_export <artifact>``)
    char_lm.npz   optional: the spelling model that reranks the beam's words (wordocr.char_lm);
                  artifacts without it read with the image alone
    spec.json     written LAST: format, input spec, alphabet, blank index, model name,
                  creation time and a training summary. No spec.json means an incomplete artifact.

The spec makes the artifact self-describing: a reader needs no training code or config to
know the input geometry, the alphabet, and where the CTC blank is. Keras (and so TensorFlow) is
imported only to save or load ``model.keras``: reading the spec and the spelling model needs
neither, which keeps the ONNX predictor free of TensorFlow.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wordocr import storage
from wordocr.alphabet import Alphabet
from wordocr.config import InputSpec

if TYPE_CHECKING:  # the spelling model needs numba and the model Keras; reading a spec needs neither
    import keras

    from wordocr.char_lm import CharLanguageModel

log = logging.getLogger(__name__)

FORMAT = "word-ocr-model/1"
MODEL_FILE = "model.keras"
SPEC_FILE = "spec.json"
LANGUAGE_MODEL_FILE = "char_lm.npz"


def inference_copy(model: keras.Model) -> keras.Model:
    """The same architecture and weights in float32, uncompiled (no optimizer, no loss, no mixed precision)."""
    import keras

    # A model trained under mixed_float16 would otherwise run in float16 on the CPU predictor.
    copy = keras.Model.from_config(_float32_policies(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config: Any) -> Any:
    """``config`` with every mixed-precision dtype policy (nested layers too) set to float32."""
    if isinstance(config, list):
        return [_float32_policies(item) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "DTypePolicy" and str(config["config"].get("name", "")).startswith("mixed"):
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {key: _float32_policies(value) for key, value in config.items()}


def save_artifact(
    model: keras.Model,
    out_uri: str,
    spec: InputSpec,
    alphabet: Alphabet,
    extra: dict[str, Any] | None = None,
    language_model: CharLanguageModel | None = None,
) -> None:
    """Write ``model.keras``, ``model.onnx`` (and ``char_lm.npz``) then ``spec.json`` under
    ``out_uri`` (a folder path or gs:// prefix)."""
    from wordocr.onnx_export import ONNX_FILE, keras_to_onnx, onnx_entry

    spec_doc = {
        "format": FORMAT,
        "model_name": model.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input_spec": spec.to_dict(),
        "alphabet": alphabet.chars,
        "blank_index": alphabet.blank_index,
        "num_classes": alphabet.num_classes,
        "input": {"name": "image", "dtype": "float32", "shape": [None, spec.height, spec.width],
                  "values": "raw pixels 0..255, dark ink on light background"},
        "output": {"name": "logits", "shape": [None, spec.time_steps, alphabet.num_classes],
                   "ctc_blank": "last class"},
        "params": int(model.count_params()),
        **(extra or {}),
    }
    if language_model is not None:
        spec_doc["language_model"] = {
            "file": LANGUAGE_MODEL_FILE, "kind": "character n-gram, training split words",
            "order": language_model.order, "weight": language_model.weight,
        }  # fmt: skip
        storage.write_bytes(storage.join(out_uri, LANGUAGE_MODEL_FILE), language_model.to_bytes())
    served = inference_copy(model)
    with tempfile.TemporaryDirectory(prefix="word-ocr-artifact-") as tmp:
        local_model = Path(tmp, MODEL_FILE)
        served.save(local_model)
        storage.upload_file(local_model, storage.join(out_uri, MODEL_FILE))
    storage.write_bytes(storage.join(out_uri, ONNX_FILE), keras_to_onnx(served, spec))
    spec_doc["onnx"] = onnx_entry()
    storage.write_bytes(storage.join(out_uri, SPEC_FILE), json.dumps(spec_doc, indent=2, sort_keys=True).encode())
    log.info("saved model artifact to %s (%d parameters)", out_uri, spec_doc["params"])


def read_spec(uri: str) -> dict[str, Any]:
    """The artifact's ``spec.json``; raises if the artifact is missing, incomplete or of another format."""
    spec_uri = storage.join(uri, SPEC_FILE)
    if not storage.exists(spec_uri):
        raise FileNotFoundError(f"no {SPEC_FILE} under {uri}: the model artifact is missing or incomplete")
    doc = json.loads(storage.read_bytes(spec_uri).decode())
    if doc.get("format") != FORMAT:
        raise ValueError(f"unknown model artifact format {doc.get('format')!r}; expected {FORMAT!r}")
    if doc["blank_index"] != len(doc["alphabet"]):
        raise ValueError(f"artifact puts the CTC blank at {doc['blank_index']}; this code expects it last")
    return doc


def load_artifact(uri: str) -> tuple[keras.Model, InputSpec, Alphabet, dict[str, Any]]:
    """Load ``(model, input spec, alphabet, spec.json as a dict)`` from a local folder or gs:// prefix."""
    import keras

    doc = read_spec(uri)
    spec = InputSpec.from_dict(doc["input_spec"])
    alphabet = Alphabet(doc["alphabet"])
    with tempfile.TemporaryDirectory(prefix="word-ocr-model-") as tmp:
        if storage.is_gcs(uri):
            local_model = Path(tmp, MODEL_FILE)
            storage.download_file(storage.join(uri, MODEL_FILE), local_model)
        else:
            local_model = Path(uri, MODEL_FILE)
        model = keras.saving.load_model(local_model, compile=False)
    expected = (spec.time_steps, alphabet.num_classes)
    if tuple(model.output_shape[1:]) != expected:
        raise ValueError(f"model outputs {model.output_shape}, spec.json promises [None, {expected}]")
    log.info("loaded model artifact %s (%s)", uri, doc.get("model_name"))
    return model, spec, alphabet, doc


def load_language_model(uri: str, doc: dict[str, Any]) -> CharLanguageModel | None:
    """The artifact's spelling model, or None if its spec.json names none (older artifacts)."""
    entry = doc.get("language_model")
    if not entry:
        return None
    from wordocr.char_lm import CharLanguageModel

    return CharLanguageModel.from_bytes(storage.read_bytes(storage.join(uri, entry["file"])))
