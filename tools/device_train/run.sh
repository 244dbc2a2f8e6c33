# The GPU machine's command, from the repo root, with .gpu/ beside it (prepare.py builds it) and
# OUT naming the folder the results go to:
#   [BACKEND=torch|jax] bash tools/device_train/run.sh [train_gpu.py flags]
# Installs the carried wheels and fonts, then trains on Keras' BACKEND (torch by default: the one
# measured there, cuDNN LSTMs); if that fails before saving, it tries the other with the time left.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 3
tar xJf .gpu/fonts.tar.xz -C /tmp/site || exit 4
export PYTHONPATH=/tmp/site:$PWD/tools/device_train/site:$PWD PYTHONUNBUFFERED=1 WORDOCR_WORDS_FILE=$PWD/.gpu/words.txt.gz
nvidia-smi -L; nproc; python3 -c "import torch, numpy, PIL; print(torch.__version__, numpy.__version__, PIL.__version__)"
DEADLINE=${DEADLINE:-530}
FIRST=${BACKEND:-torch}
if [ "$FIRST" = torch ]; then SECOND=jax; else SECOND=torch; fi
KERAS_BACKEND=$FIRST python3 tools/device_train/train_gpu.py --out "$OUT/run" --deadline "$DEADLINE" "$@" 2>&1 | tee "$OUT/log.txt"
rc=$?
if [ ! -f "$OUT/run/best.weights.h5" ] && [ $((DEADLINE - SECONDS)) -gt 200 ]; then
  echo "$FIRST backend failed (rc $rc); trying $SECOND with $((DEADLINE - SECONDS - 10)) s"
  KERAS_BACKEND=$SECOND python3 tools/device_train/train_gpu.py --out "$OUT/run" \
    --deadline $((DEADLINE - SECONDS - 10)) "$@" 2>&1 | tee "$OUT/log_$SECOND.txt"
fi
ls -la "$OUT/run"
