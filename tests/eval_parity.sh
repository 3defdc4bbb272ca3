#!/usr/bin/env bash
# NumPy/SciPy parity of the evaluation metrics (src/eval):
#   bash tests/eval_parity.sh BUILD_DIR SOURCE_DIR
# tool_eval (tests/tool_eval.c) computes the metrics on feature sets that
# tests/eval_parity.py generates, then the script recomputes them with NumPy
# and SciPy (Debian's /usr/bin/python3) and compares.
set -euo pipefail
build=${1:?usage: eval_parity.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: eval_parity.sh BUILD_DIR SOURCE_DIR}
. "$src/tests/common.bash"

[ -x "$build/tool_eval" ] || { echo "FAIL: $build/tool_eval not found: build the project first"; exit 1; }
"$py" -c 'import numpy, scipy.linalg, scipy.stats' 2>/dev/null || {
    echo "FAIL: NumPy or SciPy missing for $py: install them (apt-get install -y python3-numpy python3-scipy)"
    exit 1
}
OMP_NUM_THREADS=1 "$py" "$src/tests/eval_parity.py" "$build/tool_eval" "$tmp" || exit 1
