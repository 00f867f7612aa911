#!/usr/bin/env bash
# The review page in a real browser: installs Debian's chromium and chromium-driver when /usr/bin/chromium is
# missing (the only network use, and only here, in the setup), builds `pqrs`, and runs the ignored WebDriver test
# tests/tests/review_page_browser.rs, which starts `pqrs serve` on an ephemeral port with a temporary database,
# classifies a few comments, corrects one label in headless Chromium and checks through the API that it is stored.
#
# Usage: tests/browser/run.sh            (honours CARGO_TARGET_DIR; the screenshot goes to /tmp/review-page.png,
#                                          or to PQRS_REVIEW_SCREENSHOT)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "browser test: installing chromium and chromium-driver from Debian"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
fi
/usr/bin/chromium --version
/usr/bin/chromedriver --version

target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
# `cargo test` (not `cargo build`) with the whole workspace selected resolves features as `cargo test --workspace`
# does, dev-dependencies included, so after the test command this builds nothing, and the `pqrs` binary it leaves in
# target/debug is the one the other end-to-end tests ran.
cargo test --workspace --no-run
# The default model is trained on the first start and cached here, so that later runs start at once.
export PQRS_CACHE_DIR="${PQRS_CACHE_DIR:-$target_dir/browser-test-cache}"
mkdir -p "$PQRS_CACHE_DIR"
# Selecting one test target (`--test`) would resolve features without the other packages' dev-dependencies and
# rebuild the libraries; filtering by the test's name instead runs it from the binaries already built.
cargo test --workspace -- --ignored --nocapture headless_chromium
