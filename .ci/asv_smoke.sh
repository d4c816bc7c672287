#!/usr/bin/env bash
# Smoke test of the asv suite in the current environment (fastnet installed, asv available):
#   1. `asv check --python=same`: every benchmark is discovered and its attributes are valid;
#   2. `asv run --python=same --quick --dry-run` on a few benchmarks (one of each kind: time, track,
#      peakmem, timeraw, the kernel/reference twins, and the JAX/PyTorch twins, which skip where
#      those libraries are not installed), nothing saved.
# Fails when a benchmark raises: on asv's exit status, and on its output (some asv versions exit 0).
# Usage: .ci/asv_smoke.sh [python]   (default: python on PATH; ASV_SMOKE_BENCH overrides the regex)
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${1:-python}"
BENCH="${ASV_SMOKE_BENCH:-bench_kernels\.AffineForward\.|bench_numgrad\.NumericalGradient\.(time_fastnet|track_fastnet_over_reference)\b|bench_numgrad\.NumericalGradientMemory\.peakmem_fastnet|bench_threads\.BlasAfterParallel\.track_blas_slowdown|bench_coldstart\.ImportFastnet|bench_twins\.Sigmoid\.}"

# asv keeps machine details in ~/.asv-machine.json: use a throwaway home so CI leaves none behind.
SMOKE_HOME="$(mktemp -d)"
LOG="$(mktemp)"
trap 'rm -rf "$SMOKE_HOME" "$LOG"' EXIT

asv() { HOME="$SMOKE_HOME" "$PY" -m asv "$@"; }

echo "== asv check --python=same"
set +e
asv check --python=same 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] || grep -E "Traceback|Error|failed" "$LOG" >/dev/null; then
    echo "asv smoke: asv check reported a problem" >&2
    exit 1
fi

asv machine --yes >/dev/null

echo "== asv run --python=same --quick --dry-run --bench '$BENCH'"
start=$(date +%s)
set +e
asv run --python=same --quick --dry-run --show-stderr --bench "$BENCH" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "asv smoke: run took $(( $(date +%s) - start )) s"

# A benchmark that raised is reported as "failed" with its traceback (and, in asv 0.6, a non-zero
# exit status; older versions exit 0, hence the scan).
if [ "$status" -ne 0 ] || grep -E "failed|Traceback" "$LOG" >/dev/null; then
    echo "asv smoke: a benchmark failed (asv exit status $status; see above)" >&2
    exit 1
fi
ran=$(grep -cE "^\[[ 0-9.]+%\] ··· [A-Za-z_]" "$LOG" || true)
if [ "$ran" -eq 0 ]; then
    echo "asv smoke: no benchmark ran (regex '$BENCH' matched nothing?)" >&2
    exit 1
fi
echo "asv smoke: ok ($ran benchmark lines)"
