# word-ocr: every entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Where `make run` writes data, models and the KFP pipeline root (the embedded default).
WORKDIR ?= out
# Extra flags for `make run`, e.g. RUN_FLAGS="--quick" or RUN_FLAGS="--train-samples 60000 --epochs 12".
RUN_FLAGS ?=
PORT ?= 8080
# Extra flags for `make bench`, e.g. BENCH_FLAGS="--samples 200 --requests 100".
BENCH_FLAGS ?=

export PYTHONUNBUFFERED := 1
# Quieter TensorFlow start-up; errors still print.
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help venv run run-quick serve test tesseract lint compile bench lock clean images push submit \
	run-containers serve-image test-images bench-images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=..." >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies

run: $(STAMP) ## generate -> train -> evaluate -> gate -> deploy with kfp.local, then serve on localhost (PORT=8080)
	$(PY) -m pipelines.run_local --workdir $(WORKDIR) --port $(PORT) $(RUN_FLAGS)

run-quick: $(STAMP) ## the same end to end in a minute or two (tiny data, low gate)
	$(PY) -m pipelines.run_local --workdir $(WORKDIR)/quick --port $(PORT) --quick $(RUN_FLAGS)

serve: $(STAMP) ## serve the model last deployed by `make run` (no retraining)
	$(PY) -m pipelines.run_local --workdir $(WORKDIR) --port $(PORT) --serve-only

test: $(STAMP) ## lint, then the whole test suite
	bash tools/install_system_packages.sh test
	$(MAKE) --no-print-directory tesseract
	$(BIN)/ruff check .
	$(BIN)/pytest -q

tesseract: $(STAMP) ## Tesseract and tesserocr, the peer the bench compares with, and hey, its load generator (apt when root)
	bash tools/install_system_packages.sh bench
	$(BIN)/pip install -q --disable-pip-version-check --no-binary tesserocr -r requirements-bench.txt \
		|| echo "note: tesserocr did not install; its tests skip and the bench reports Tesseract as not installed" >&2

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

compile: $(STAMP) ## regenerate the compiled pipeline YAML
	$(PY) -m pipelines.compile

bench: $(STAMP) ## accuracy per tier (ours and Tesseract, same images), latency, load, memory -> bench/report.json, .md, .png (after `make run`)
	$(MAKE) --no-print-directory tesseract
	$(PY) -m bench.run --model $(WORKDIR)/serving/word-ocr $(BENCH_FLAGS)

# `make submit`: the KFP API endpoint and the serving root (docs/cluster.md).
KFP_HOST ?=
EXPERIMENT ?= word-ocr
SERVING_ROOT ?=
# Extra flags for `make submit`, e.g. SUBMIT_FLAGS="--data-root gs://B/runs --checkpoint-root gs://B/ckpt --param epochs=30".
SUBMIT_FLAGS ?=

submit: $(STAMP) ## start a run on Kubeflow Pipelines (KFP_HOST=..., SERVING_ROOT=gs://..., SUBMIT_FLAGS=...)
	$(PY) -m pipelines.submit --host "$(KFP_HOST)" --experiment "$(EXPERIMENT)" --serving-root "$(SERVING_ROOT)" \
		$(if $(REGISTRY),--registry $(REGISTRY)) $(if $(IMAGE_VERSION),--image-version $(IMAGE_VERSION)) $(SUBMIT_FLAGS)

# `make lock`: pip-compile (pip-tools) in a venv of its own, so no lock lists the tool that writes it.
# An existing lock is pip-compile's starting point: its pins stay unless the .in files rule them out.
# The locks are resolved against PyPI alone (a pip.conf's find-links and extra indexes are ignored),
# so every --hash is one of PyPI's files for that release.
LOCK_VENV ?= out/lock-venv
PIP_TOOLS := pip-tools==7.6.2
PIP_COMPILE = env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--no-strip-extras --no-emit-index-url --no-emit-find-links

lock: ## re-resolve requirements*.txt from requirements*.in with pip-compile, and the trainer's images/requirements-gpu.txt
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q $(PIP_TOOLS); }
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-predictor.txt requirements-predictor.in
	$(PYTHON) images/gpu_requirements.py

# Where `make images` / `make push` tag the images; empty: components/images.py's REGISTRY and VERSION
# (the names the compiled pipeline uses).
REGISTRY ?=
IMAGE_VERSION ?=
IMAGE_FLAGS = $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(IMAGE_VERSION),--version $(IMAGE_VERSION))

images: ## build the three container images, no daemon needed (podman; REGISTRY=..., IMAGE_VERSION=...)
	bash tools/install_system_packages.sh containers
	$(PYTHON) -m images.build build $(IMAGE_FLAGS)

push: images ## build, then push them (log in first: podman login / docker login)
	$(PYTHON) -m images.build push $(IMAGE_FLAGS)

run-containers: $(STAMP) images ## the compiled pipeline with every task in its image (kfp.local DockerRunner, small sizes)
	$(PY) -m pipelines.run_in_containers --workdir $(WORKDIR)/containers-run

serve-image: $(STAMP) ## serve the model `make run` published from the predictor image, as KServe runs it (PORT=8080)
	$(PY) -m images.predictor_container --model $(WORKDIR)/serving/word-ocr --port $(PORT)

test-images: $(STAMP) images ## build the images, run the pipeline in them and serve from the predictor image (~12 min)
	WORDOCR_IMAGE_TESTS=1 $(BIN)/pytest -q tests/test_container_images.py

bench-images: $(STAMP) images ## image sizes, predictor cold start, RSS after load and under load -> bench/images-report.json
	$(PY) -m images.measure --model $(WORKDIR)/serving/word-ocr

clean: ## remove the venv and local outputs
	rm -rf $(VENV) $(WORKDIR) .pytest_cache .ruff_cache
