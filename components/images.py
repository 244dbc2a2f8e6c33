"""Container images the components run in on a cluster (built from images/ by `make images`).

``kfp.local``'s subprocess runner ignores them and runs in the local venv, with the same code.
"""

REGISTRY = "ghcr.io/word-ocr"
VERSION = "0.1.0"

COMPONENTS_IMAGE = f"{REGISTRY}/components:{VERSION}"
TRAINER_IMAGE = f"{REGISTRY}/trainer:{VERSION}"
PREDICTOR_IMAGE = f"{REGISTRY}/predictor:{VERSION}"
