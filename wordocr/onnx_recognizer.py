"""The artifact's ``model.onnx`` on ONNX Runtime: the predictor's reader, with no TensorFlow.

TensorFlow is most of the predictor's memory and start time and none of its work once the
model is exported; ONNX Runtime runs the same graph (the BiLSTMs as fused LSTM ops) faster at
batch 1 and as fast in batches. Decoding, the spelling model and the second look are
``Reader``'s, exactly as on the Keras path, so both read the same words from the same logits.

An artifact saved before ``model.onnx`` existed is converted at load when TensorFlow and tf2onnx
are installed (a warning says so: export it once instead); without them loading fails with the
command that exports it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

import numpy as np

from wordocr import storage
from wordocr.alphabet import Alphabet
from wordocr.artifact import load_language_model, read_spec
from wordocr.char_lm import CharLanguageModel
from wordocr.config import InputSpec
from wordocr.onnx_export import INPUT_NAME, ONNX_FILE
from wordocr.recognizer import Reader
from wordocr.second_look import SECOND_LOOK_BELOW

log = logging.getLogger(__name__)

# Images per ONNX Runtime call. Larger batches read no faster per image on CPU, and the first
# convolution's output alone is about 1.6 MB an image: a request of 256 unsure images (768 with
# the second look) read in one call grew the process by more than a gigabyte, which ONNX
# Runtime's memory arena then keeps.
MAX_IMAGES_PER_CALL = 64
# ONNX Runtime's intra-op threads: it splits one batch over them. More than the cores the
# container really has only adds contention; os.cpu_count() sees the node's, not the limit's.
MAX_DEFAULT_THREADS = 2


class MissingOnnxGraph(RuntimeError):
    """The artifact has no model.onnx and this process cannot make one."""


def default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def onnx_graph_bytes(artifact_uri: str, doc: dict[str, Any]) -> bytes:
    """The artifact's serialized ONNX graph, converted from model.keras if the artifact has none."""
    name = (doc.get("onnx") or {}).get("file", ONNX_FILE)
    uri = storage.join(artifact_uri, name)
    if storage.exists(uri):
        return storage.read_bytes(uri)
    command = f"python -m wordocr.onnx_export {artifact_uri}"
    if not (_importable("tensorflow") and _importable("tf2onnx")):
        raise MissingOnnxGraph(
            f"{artifact_uri} has no {ONNX_FILE} (saved before artifacts carried one) and this process has no "
            f"TensorFlow/tf2onnx to convert model.keras: run `{command}` where TensorFlow is installed "
            "(the training image), or serve this artifact with --runtime keras"
        )
    log.warning("%s has no %s: converting model.keras now (slow; run `%s` once to keep it)",
                artifact_uri, ONNX_FILE, command)  # fmt: skip
    from wordocr.artifact import load_artifact
    from wordocr.onnx_export import keras_to_onnx

    model, spec, _, _ = load_artifact(artifact_uri)
    return keras_to_onnx(model, spec)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class OnnxRecognizer(Reader):
    runtime = "onnx"

    def __init__(
        self,
        graph: bytes,
        spec: InputSpec,
        alphabet: Alphabet,
        info: dict[str, Any] | None = None,
        language_model: CharLanguageModel | None = None,
        second_look_below: float = SECOND_LOOK_BELOW,
        threads: int | None = None,
    ):
        import onnxruntime as ort

        super().__init__(spec, alphabet, info, language_model, second_look_below)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: on two cores a spinning pool steals the CPU the
        # HTTP server and the image decoding need between model runs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = options.intra_op_num_threads
        self._session = ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != [INPUT_NAME]:
            raise ValueError(f"the ONNX graph's inputs are {[i.name for i in inputs]}, expected [{INPUT_NAME!r}]")
        self._output = self._session.get_outputs()[0].name
        expected = (spec.time_steps, alphabet.num_classes)
        shape = self.logits(np.full((1, spec.height, spec.width), 255, np.uint8)).shape[1:]
        if shape != expected:
            raise ValueError(f"the ONNX graph outputs [N, {shape}], spec.json promises [N, {expected}]")
        self.warm_up()

    @classmethod
    def load(cls, artifact_uri: str, threads: int | None = None) -> OnnxRecognizer:
        doc = read_spec(artifact_uri)
        spec = InputSpec.from_dict(doc["input_spec"])
        alphabet = Alphabet(doc["alphabet"])
        graph = onnx_graph_bytes(artifact_uri, doc)
        language_model = load_language_model(artifact_uri, doc)
        log.info("loaded ONNX graph of %s (%s, %d bytes)", artifact_uri, doc.get("model_name"), len(graph))
        return cls(graph, spec, alphabet, doc, language_model=language_model, threads=threads)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """CTC logits ``[N, time_steps, classes]`` for uint8 ``[N, H, W]`` images."""
        images = self._check(images)
        if len(images) == 0:
            return np.zeros((0, self.spec.time_steps, self.alphabet.num_classes), np.float32)
        chunks = [
            self._session.run([self._output], {INPUT_NAME: chunk.astype(np.float32)})[0]
            for chunk in (images[i : i + MAX_IMAGES_PER_CALL] for i in range(0, len(images), MAX_IMAGES_PER_CALL))
        ]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
