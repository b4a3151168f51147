#!/usr/bin/env bash
# The GPU check in one command, for a machine lent for a short while (no package registry, CuPy,
# JAX and Numba CUDA preinstalled): what `make gpu-check-preinstalled` does, but every step runs
# even when an earlier one fails, and the logs and result files are copied to $OUT.
#
#   bash benchmarks/device_run.sh [tests|bench|all]     (default: all)
#
# Afterwards commit benchmarks/results/*.json: chapters 3-5 plot from them.
set -uo pipefail
stage=${1:-all}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=lib SCANBOOK_DEVICE=gpu XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
status=0

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember a failure, go on
    local name=$1
    shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}

{ nvidia-smi || true; $PY -m pip list 2>/dev/null | grep -Ei '^(cupy|jax|jaxlib|numba|numpy|pytest|hypothesis)[- ]'; } >"$OUT/machine.txt" 2>&1

if [ "$stage" = tests ] || [ "$stage" = all ]; then
    step tests $PY -m pytest tests/test_core.py tests/test_errors.py tests/test_numba_cuda.py \
        tests/test_cupy_raw.py tests/test_jax.py tests/test_vjp.py -q -p no:cacheprovider
fi
if [ "$stage" = bench ] || [ "$stage" = all ]; then
    slug=$($PY -c "import scanbook as sb, scanbook._bench_gpu as g; print(g.slug(sb.backends.gpu_name() or 'gpu'))")
    step bench-gpu $PY -m scanbook.bench gpu
    step bench-grad $PY -m scanbook.bench grad --json "benchmarks/results/grad-$slug.json"
    cp benchmarks/results/*.json "$OUT/" 2>/dev/null || true
fi
echo "logs and results in $OUT"
exit $status
