#!/usr/bin/env bash
# Every test of the project, as the README's quick start and CI run them: the workspace's cargo tests (unit,
# property, HTTP, end-to-end on the real binary, the QA store's kill -9 crash test), then the review page in
# headless Chromium (tests/browser/run.sh installs Debian's chromium and chromium-driver if they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
tests/browser/run.sh
