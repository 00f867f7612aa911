#!/usr/bin/env bash
# One command for every figure side by side with the peers (fastText, scikit-learn), on the same split:
#   benches/run.sh --data PATH --text COL --label HEAD=COL ... (--date COL --split-date YYYY-MM-DD | --split-column COL)
# Builds the release binaries, creates benches/.venv with the peers, then runs benches/run.py (see its docstring).
# Writes benches/out/results.json, benches/out/results-<name>.md and SVG plots. Never part of the test command.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release -p service -p benches --bins
bash "$here/peers/setup.sh"
exec "$here/.venv/bin/python" "$here/run.py" "$@"
