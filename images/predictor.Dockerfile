# word-ocr predictor image: the KServe custom predictor (`python -m serving`). On KServe the storage
# initializer puts the InferenceService's storageUri at /mnt/models.
# Build from the repository root: python3.11 images/build.py build   (or `make images`)
ARG PYTHON_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The one lock file, installed before the code so code changes reuse this layer.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml ./
COPY wordocr ./wordocr
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
RUN pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin wordocr
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /home/wordocr
# Numeric, so Kubernetes can check runAsNonRoot.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "serving"]
CMD ["--model_dir", "/mnt/models", "--http_port", "8080"]

# Last, so a new revision only changes the labels layer.
ARG GIT_REVISION=unknown
ARG SOURCE_URL=https://github.com/word-ocr/word-ocr
LABEL org.opencontainers.image.title="word-ocr predictor" \
      org.opencontainers.image.description="KServe custom predictor of word-ocr" \
      org.opencontainers.image.source=$SOURCE_URL \
      org.opencontainers.image.revision=$GIT_REVISION
