"""The model as an ONNX graph, for a predictor that runs on ONNX Runtime without TensorFlow.

Every artifact written by ``save_artifact`` carries ``model.onnx`` beside ``model.keras``. An
artifact saved before that has none; this module adds it:

    python -m wordocr.onnx_export out/serving/word-ocr/<version>

(a local folder or gs:// prefix; needs TensorFlow and tf2onnx, so run it where the model was
trained, not in the predictor's image). It writes ``model.onnx`` and then ``spec.json`` again
with the graph named in it, so the spec stays the last file written.

The conversion goes through ``tf2onnx.convert.from_keras`` with a fixed ``[None, H, W]`` float32
input named ``image``: Keras's own ``model.export(format="onnx")`` refuses a loaded model that
was never called, and tf2onnx turns the BiLSTMs into fused ONNX LSTM ops (fast on CPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from wordocr import storage
from wordocr.config import InputSpec

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ONNX_OPSET = 17
INPUT_NAME = "image"


def keras_to_onnx(model: keras.Model, spec: InputSpec) -> bytes:
    """The serialized ONNX graph of ``model``: float32 ``[None, H, W]`` pixels in, logits out."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec([None, spec.height, spec.width], tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    return proto.SerializeToString()


def onnx_entry() -> dict[str, Any]:
    """What spec.json says about the graph."""
    import tf2onnx

    return {"file": ONNX_FILE, "opset": ONNX_OPSET, "input": INPUT_NAME, "converter": f"tf2onnx {tf2onnx.__version__}"}


def export_artifact(artifact_uri: str, force: bool = False) -> bool:
    """Add ``model.onnx`` to an existing artifact (then rewrite its spec.json); False if it had one."""
    from wordocr.artifact import SPEC_FILE, load_artifact, read_spec

    doc = read_spec(artifact_uri)
    if not force and storage.exists(storage.join(artifact_uri, ONNX_FILE)):
        log.info("%s already has %s", artifact_uri, ONNX_FILE)
        return False
    model, spec, _, _ = load_artifact(artifact_uri)
    storage.write_bytes(storage.join(artifact_uri, ONNX_FILE), keras_to_onnx(model, spec))
    doc["onnx"] = onnx_entry()
    storage.write_bytes(storage.join(artifact_uri, SPEC_FILE), json.dumps(doc, indent=2, sort_keys=True).encode())
    log.info("wrote %s to %s", ONNX_FILE, artifact_uri)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wordocr.onnx_export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("artifacts", nargs="+", help="model artifact folders or gs:// prefixes")
    parser.add_argument("--force", action="store_true", help="export again even if model.onnx exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for uri in args.artifacts:
        export_artifact(uri, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
