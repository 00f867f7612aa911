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
# Selecting the whole workspace keeps the feature set of `cargo test --workspace`, so nothing is built twice.
cargo build --workspace --bin pqrs
# The default model is trained on the first start and cached here, so that later runs start at once.
export PQRS_CACHE_DIR="${PQRS_CACHE_DIR:-$target_dir/browser-test-cache}"
mkdir -p "$PQRS_CACHE_DIR"
cargo test --workspace --test review_page_browser -- --ignored --nocapture
