"""Serve a word-ocr model artifact with kserve's ModelServer.

    python -m serving --model_dir /mnt/models --model_name word-ocr --http_port 8080

``--model_dir`` is a local folder or ``gs://`` URI of a model artifact; on KServe the storage
initializer downloads the InferenceService's ``storageUri`` to ``/mnt/models``. Every other
flag is kserve's own (``--http_port``, ``--grpc_port``, ``--enable_grpc`` ...): kserve reads
them from ``sys.argv`` when it is imported, and this parser extends kserve's so ``--help``
lists them all. ``--runtime keras`` serves the Keras model on TensorFlow instead of the
artifact's ONNX graph (for comparison; the predictor's image has no TensorFlow).
"""

from __future__ import annotations

import argparse
import logging

from kserve import ModelServer, model_server
from kserve.logging import KSERVE_LOGGER_DATE_FORMAT, KSERVE_LOGGER_FORMAT

from serving.body_limit import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from serving.client_error_logs import install_client_error_filter
from serving.http_guards import install_http_guards
from serving.overload import OverloadLimits
from serving.predictor import DEFAULT_RUNTIME, RUNTIMES, BatchingConfig, WordOCRModel
from serving.prototype_routes import add_prototype_routes
from serving.web_page import add_web_page

DEFAULT_MODEL_DIR = "/mnt/models"
DEFAULT_MODEL_NAME = "word-ocr"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving", parents=[model_server.parser])
    parser.add_argument(
        "--model_dir", default=DEFAULT_MODEL_DIR, help="model artifact: local folder or gs:// URI"
    )
    parser.add_argument(
        "--max_request_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
        help="refuse request bodies larger than this (413); kserve itself has no limit",
    )
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default=DEFAULT_RUNTIME,
        help="onnx: the artifact's model.onnx on ONNX Runtime (no TensorFlow); keras: the Keras model on TensorFlow",
    )
    parser.add_argument(
        "--max_batch", type=int, default=BatchingConfig.max_batch,
        help="images per model run, gathered from concurrent requests",
    )
    parser.add_argument(
        "--batch_wait_ms", type=float, default=BatchingConfig.max_wait_s * 1000,
        help="how long a model run waits for requests still being decoded (0: never waits)",
    )
    overload = OverloadLimits()
    parser.add_argument(
        "--max_queued_items", type=int, default=overload.max_queued_items,
        help="images in flight beyond which new requests get 503 with Retry-After",
    )
    parser.add_argument(
        "--max_queued_bytes", type=int, default=overload.max_queued_bytes,
        help="encoded image bytes in flight beyond which new requests get 503 with Retry-After",
    )
    parser.add_argument(
        "--max_decoded_pixels", type=int, default=overload.max_decoded_pixels,
        help="decoded pixels one request's images may add up to (beyond: 413)",
    )
    parser.add_argument(
        "--decode_threads", type=int, default=overload.decode_threads,
        help="requests decoded at once, off the inference thread",
    )
    # kserve's parser already owns --model_name; only its default changes.
    parser.set_defaults(model_name=DEFAULT_MODEL_NAME)
    # Strict: a mistyped flag should stop the server, not be ignored.
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Our own loggers (serving.*, wordocr.*) in kserve's format; kserve's loggers don't propagate.
    logging.basicConfig(level=logging.INFO, format=KSERVE_LOGGER_FORMAT, datefmt=KSERVE_LOGGER_DATE_FORMAT)
    if args.workers != 1:
        # Extra routes live on the single-process app only (with 2 workers they answer 404): scale with replicas.
        raise SystemExit("word-ocr serves with --workers 1 (one per container); scale with replicas")

    server = ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        enable_grpc=args.enable_grpc,
    )
    install_client_error_filter()  # after ModelServer, which (re)configures kserve's logging
    model = WordOCRModel(
        args.model_name, args.model_dir, runtime=args.runtime,
        batching=BatchingConfig(max_batch=args.max_batch, max_wait_s=args.batch_wait_ms / 1000),
        overload=OverloadLimits(max_queued_items=args.max_queued_items, max_queued_bytes=args.max_queued_bytes,
                                max_decoded_pixels=args.max_decoded_pixels, decode_threads=args.decode_threads),
    )  # fmt: skip
    model.load()
    add_prototype_routes(model_server.app, model)
    # GET / for browsers (kserve's liveness JSON for others), /ui
    add_web_page(model_server.app, model.name, model.recognizer.alphabet.chars)
    install_http_guards(model_server.app)  # 4xx, not 5xx, for bad input kserve's layer trips on
    model_server.app.add_middleware(BodySizeLimit, max_body_bytes=args.max_request_bytes)
    server.start([model])


if __name__ == "__main__":
    main()
