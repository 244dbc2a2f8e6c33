# word-ocr components image (CPU): the KFP lightweight components (generate, evaluate, publish, roll out)
# run here. Their bodies import only the core package `wordocr` (the compiled pipeline embeds the
# component code itself), so the image holds the one lock and the core.
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
# The lock is installed before the code so code changes reuse this layer.
COPY requirements.txt ./
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && pip install --no-cache-dir -r requirements.txt

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
# KFP runs `python3 -m kfp.dsl.executor_main`: the venv comes first on PATH.
ENV PATH=/opt/venv/bin:$PATH \
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
LABEL org.opencontainers.image.title="word-ocr components" \
      org.opencontainers.image.description="KFP components of word-ocr (CPU)" \
      org.opencontainers.image.source=$SOURCE_URL \
      org.opencontainers.image.revision=$GIT_REVISION
