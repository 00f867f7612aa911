#!/usr/bin/env bash
# Creates benches/.venv (if missing) with the peers' Python packages: fastText and scikit-learn.
# Idempotent: when the venv already imports all three packages it returns at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/../.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

# The import check is what makes a second run fast: pip is not even started.
if "$venv/bin/python" -c 'import fasttext, sklearn, numpy' 2>/dev/null; then
    exit 0
fi

"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet fasttext-numpy2 scikit-learn numpy
"$venv/bin/python" -c 'import fasttext, sklearn, numpy; print("peers venv ready: numpy", numpy.__version__, "scikit-learn", sklearn.__version__)'
