#!/usr/bin/env bash
# Train a recipe on this GPU machine, without Kubeflow, from the repository root:
#   bash tools/device_train/run.sh --workdir /data/cluster-run [train_recipe.py flags]
# The first time, it makes a venv (VENV, default out/venv-gpu) with the trainer image's locked
# requirements, images/requirements-gpu.txt (TensorFlow with its CUDA wheels; the machine brings
# the NVIDIA driver), and the project. WHEELS=folder installs them from wheels downloaded beforehand
# (pip download -r images/requirements-gpu.txt -d folder) on a machine without network access.
set -euo pipefail
VENV=${VENV:-out/venv-gpu}  # out/ is git-ignored
PYTHON=${PYTHON:-python3.11}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  pip_source=()
  if [ -n "${WHEELS:-}" ]; then pip_source=(--no-index --find-links "$WHEELS"); fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "${pip_source[@]}" -r images/requirements-gpu.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
fi
"$VENV/bin/python" -c "import tensorflow as tf; print('TensorFlow', tf.__version__, 'sees', tf.config.list_physical_devices('GPU'))"
exec "$VENV/bin/python" -m tools.device_train.train_recipe "$@"
