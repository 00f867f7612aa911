#!/usr/bin/env bash
# Installs `wrk` (the C HTTP load generator `load --wrk N` drives) from the distribution's packages if it is
# missing. Debian/Ubuntu only; elsewhere install wrk by hand (https://github.com/wg/wrk) and put it on the PATH.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  wrk --version 2>&1 | head -1 || true
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "wrk is not installed and this is not a Debian-like system: install wrk by hand" >&2
  exit 1
fi
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
sudo_if_needed apt-get install -y --no-install-recommends wrk ||
  { sudo_if_needed apt-get update && sudo_if_needed apt-get install -y --no-install-recommends wrk; }
wrk --version 2>&1 | head -1 || true
