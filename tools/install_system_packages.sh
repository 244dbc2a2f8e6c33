#!/usr/bin/env bash
# Debian packages the test suite drives for real: headless Chromium and ChromeDriver (the web page
# test). Installs the missing ones when it can (root with apt-get, as on CI); elsewhere it says
# what to install, and the tests that need them skip with the same hint.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get) for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed and not root: the browser tests will skip" \
       "(sudo apt-get install ${missing[*]})" >&2
fi
