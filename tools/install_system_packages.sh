#!/usr/bin/env bash
# Debian packages the project drives for real, by set:
#   test (the default, run by `make test`): headless Chromium and ChromeDriver (the web page test);
#   bench (run by `make bench`): Tesseract with its English data, and what building tesserocr
#     from source needs (requirements-bench.txt: pip install --no-binary tesserocr); hey, the load
#     generator, whose Go clients leave the 2 cores to the server where Python clients would not;
#   containers (run by `make images`): podman and buildah (build and run images without a daemon),
#     runc (the runtime podman is set to), mmdebstrap (makes the base image where it cannot be pulled).
# Installs the missing ones when it can (root with apt-get, as on CI); elsewhere it says what to
# install, and what needs them skips with the same hint.
#   bash tools/install_system_packages.sh [test|bench|containers]
set -euo pipefail
set_name=${1:-test}
missing=()
case "$set_name" in
  test)
    purpose="the browser tests"
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    ;;
  bench)
    purpose="the Tesseract side of the bench and its load generator"
    for pkg in tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev pkg-config g++ hey; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ;;
  containers)
    purpose="building and running the container images"
    for tool in podman buildah runc mmdebstrap; do
      command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ;;
  *)
    echo "usage: $0 [test|bench|containers]" >&2
    exit 2
    ;;
esac
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get) for $purpose"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed and not root: $purpose will skip" \
       "(sudo apt-get install ${missing[*]})" >&2
fi
