"""word-ocr core: plain Python that generates, trains, evaluates and recognises word images.

Nothing in this package imports Kubeflow or KServe; the components, the pipeline and the
predictor are thin layers over it.
"""

__version__ = "0.1.0"
