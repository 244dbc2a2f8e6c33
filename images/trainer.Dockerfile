# word-ocr trainer image (GPU): the KFP train component runs here, on a GPU node (and on the CPU
# where there is none). TensorFlow's CUDA build comes from pip (tensorflow[and-cuda] brings the CUDA
# and cuDNN wheels); the node brings the NVIDIA driver. images/requirements-gpu.txt is
# requirements.txt with tensorflow-cpu swapped for tensorflow[and-cuda] at the same version, plus
# pins for the CUDA wheels, derived by `make lock` (images/gpu_requirements.py) and checked by
# tests/test_images.py.
# Build from the repository root: `make images` (python3.11 -m images.build build).
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# A build machine whose TLS goes through its own certificate authority passes that CA bundle as the
# build secret `pip_cert` (images/build.py does): mounted for the pip steps only, never in a layer,
# and this stage is not shipped.
COPY requirements.txt images/requirements-gpu.txt images/gpu_requirements.py ./
# Refuse a stale derived lock (requirements.txt re-locked without `make lock`) before installing it.
RUN python gpu_requirements.py --check --lock requirements.txt --out requirements-gpu.txt
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && pip install --no-cache-dir -r requirements-gpu.txt

# The project in a stage of its own, so a code change rebuilds a small layer, not the venv's.
FROM build AS project
COPY pyproject.toml ./
COPY wordocr ./wordocr
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && pip install --no-cache-dir --no-deps --target /opt/project .

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin wordocr
COPY --from=build /opt/venv /opt/venv
COPY --from=project /opt/project /opt/venv/lib/python3.11/site-packages
# /usr/local/nvidia: where GKE mounts the node's driver libraries; the NVIDIA container toolkit
# (other clusters) reads the NVIDIA_* variables.
ENV PATH=/opt/venv/bin:$PATH \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /home/wordocr
# Numeric, so Kubernetes can check runAsNonRoot.
USER 10001:10001

# Last, so a new revision only changes the labels layer.
ARG GIT_REVISION=unknown
ARG SOURCE_URL=https://github.com/word-ocr/word-ocr
LABEL org.opencontainers.image.title="word-ocr trainer" \
      org.opencontainers.image.description="KFP train component of word-ocr (TensorFlow CUDA build)" \
      org.opencontainers.image.source=$SOURCE_URL \
      org.opencontainers.image.revision=$GIT_REVISION
