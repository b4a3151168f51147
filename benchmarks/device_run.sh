#!/usr/bin/env bash
# The whole GPU check in one command of about nine minutes, for a GPU machine lent for a short
# while (its own python3 with CuPy, JAX and Numba CUDA; no package registry). In this order,
# every step under its own `timeout` (and all of them under BUDGET_S), so that one hang cannot
# eat the rest; a step that fails does not stop the next:
#   (a) smoke      python -m scanbook.bench smoke: every GPU kernel and backend against float64
#   (b) bench-*    every benchmark that asks to run here (DEVICE_RUN in its module: gpu, grad),
#                  at the sizes the chapters plot; results to $OUT/results/
#   (c) memcheck, racecheck   compute-sanitizer over the CUDA C kernels at small sizes
#   (d) tests      the kernel, gradient and API tests;  nbval  chapters 3-5 executed
# then a one-screen summary: each step ok / FAILED / TIMEOUT / not run, and each target met /
# MISSED / not run (python -m scanbook.bench report).
#
#   bash benchmarks/device_run.sh                  on the GPU machine (OUT defaults to a temp dir)
#   make gpu-device-dry-run                        here: the same script on the emulated GPU
#
# With the device tool: run `make gpu-wheels` once here (nbval's wheels, git-ignored), then
#   run(command="bash benchmarks/device_run.sh", carry=["benchmarks/wheels"], timeout_s=600)
# and copy what came back into the book:
#   bash benchmarks/collect_results.sh <files_at>     (results -> benchmarks/results/, commit them)
#
# $OUT gets (at most 8 files come back): summary.txt, results/<gpu>.json, results/grad-<gpu>.json,
# smoke.json, logs.tar.gz (every step's log).
#
# Settings (environment): PYTHON (python3), BENCH (the command that runs `scanbook.bench`; the dry
# run sets the emulated GPU's runner), BUDGET_S (560), T_SMOKE (60), T_SANITIZER (35 a tool),
# T_TESTS (60), T_NBVAL (110), SMOKE_ARGS, SANITIZER_ARGS, TEST_ARGS, NBVAL_NOTEBOOKS, and
# EXTRA_ARGS_<benchmark> (more arguments for one benchmark, e.g. EXTRA_ARGS_gpu="--quick"), and
# BENCH_ONLY (the benchmarks of the plan to run, e.g. "gpu grad"; default all).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
LOGS=$OUT/logs
mkdir -p "$LOGS" "$OUT/results"
export PYTHONUNBUFFERED=1 SCANBOOK_DEVICE=${SCANBOOK_DEVICE:-gpu} XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH=$PWD/lib${PYTHONPATH:+:$PYTHONPATH} SCANBOOK_RESULTS_DIR=$OUT/results
PY=${PYTHON:-python3}
read -r -a BENCH <<<"${BENCH:-$PY -m scanbook.bench}"
BUDGET_S=${BUDGET_S:-560}
T_SMOKE=${T_SMOKE:-60} T_SANITIZER=${T_SANITIZER:-35} T_TESTS=${T_TESTS:-60} T_NBVAL=${T_NBVAL:-110}
read -r -a SMOKE_ARGS <<<"${SMOKE_ARGS:-}"
read -r -a SANITIZER_ARGS <<<"${SANITIZER_ARGS:---quick --only cupy}"
read -r -a TEST_ARGS <<<"${TEST_ARGS:-tests/test_core.py tests/test_errors.py tests/test_numba_cuda.py tests/test_cupy_raw.py tests/test_jax.py tests/test_vjp.py}"
read -r -a NBVAL_NOTEBOOKS <<<"${NBVAL_NOTEBOOKS:-chapters/03_numba_cuda.ipynb chapters/04_cupy_rawkernel.ipynb chapters/05_backprop.ipynb}"
START=$SECONDS
: >"$OUT/steps.tsv"

left() { echo $((BUDGET_S - (SECONDS - START))); }

# step NAME LIMIT COMMAND...: run under `timeout` (the smaller of LIMIT and the budget left), log
# to $LOGS/NAME.log, record "NAME<TAB>status<TAB>seconds<TAB>note" in steps.tsv, go on.
step() {
    local name=$1 limit=$2
    shift 2
    local budget
    budget=$(left)
    [ "$budget" -lt "$limit" ] && limit=$budget
    if [ "$budget" -lt 5 ]; then
        printf '%s\tnot run\t0\tno time left in BUDGET_S=%s\n' "$name" "$BUDGET_S" >>"$OUT/steps.tsv"
        echo "== $name: not run (no time left)"
        return
    fi
    echo "== $name (limit ${limit} s): $*"
    local t0=$SECONDS
    timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    local rc=$?
    local status=ok
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=TIMEOUT
    elif [ "$rc" -ne 0 ]; then
        status=FAILED
    fi
    local note
    note=$(grep -E '^(smoke: |[0-9]+ (passed|failed)|=+ .*(passed|failed|error))' "$LOGS/$name.log" | tail -1 | tr -d '=' | sed 's/^ *//')
    [ -z "$note" ] && note=$(grep -E '^wrote ' "$LOGS/$name.log" | tail -1)
    [ -z "$note" ] && note=$(grep -v '^\s*$' "$LOGS/$name.log" | tail -1 | cut -c1-70)
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" $((SECONDS - t0)) "rc $rc; $note" >>"$OUT/steps.tsv"
    echo "== $name: $status (exit $rc) after $((SECONDS - t0)) s"
}

not_run() {  # not_run NAME WHY
    printf '%s\tnot run\t0\t%s\n' "$1" "$2" >>"$OUT/steps.tsv"
    echo "== $1: not run: $2"
}

{
    nvidia-smi || echo "no nvidia-smi"
    $PY -m pip list 2>/dev/null | grep -Ei '^(cupy|jax|jaxlib|numba|numba-cuda|numpy|pytest|nbval|ipykernel)[- ]'
    command -v compute-sanitizer || echo "no compute-sanitizer on PATH"
} >"$LOGS/machine.log" 2>&1

# (a) the smoke test: seconds, and it says whether anything below is worth timing
step smoke "$T_SMOKE" "${BENCH[@]}" smoke --json "$OUT/smoke.json" "${SMOKE_ARGS[@]}"

# (b) the benchmarks that ask for the GPU run, at the chapters' sizes (DEVICE_RUN in each module)
plan=$("${BENCH[@]}" --device-run-plan 2>"$LOGS/plan.log") || plan=""
[ -z "$plan" ] && not_run bench "python -m scanbook.bench --device-run-plan failed (logs/plan.log)"
while read -r -a entry; do
    [ "${#entry[@]}" -ge 2 ] || continue
    if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" ${entry[0]} "* ]]; then
        continue  # BENCH_ONLY="gpu grad": only these benchmarks of the plan
    fi
    extra_var="EXTRA_ARGS_${entry[0]}"  # e.g. EXTRA_ARGS_gpu="--elements 2048" (the dry run)
    read -r -a extra <<<"${!extra_var:-}"
    step "bench-${entry[0]}" "${entry[1]}" "${BENCH[@]}" "${entry[0]}" "${entry[@]:2}" "${extra[@]}"
done <<<"$plan"

# (c) compute-sanitizer over every CUDA C kernel (serial.cu, three_phase.cu, single_pass.cu:
# forward, reverse, gradient, stream_add) at small sizes
SANITIZER=${SANITIZER:-$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)}
if [ -n "$SANITIZER" ] && [ -x "$SANITIZER" ]; then
    for tool in memcheck racecheck; do
        step "$tool" "$T_SANITIZER" "$SANITIZER" --tool "$tool" --error-exitcode 3 \
            "${BENCH[@]}" smoke "${SANITIZER_ARGS[@]}"
    done
else
    not_run memcheck "no compute-sanitizer"
    not_run racecheck "no compute-sanitizer"
fi

# (d) the tests, then nbval over the GPU chapters (nbval's wheels carried when missing)
step tests "$T_TESTS" $PY -m pytest "${TEST_ARGS[@]}" -q -p no:cacheprovider
if ! $PY -c "import nbval, ipykernel" 2>/dev/null && ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
    site=$(mktemp -d)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
        benchmarks/wheels/*.whl >"$LOGS/wheels.log" 2>&1 && export PYTHONPATH=$PYTHONPATH:$site
fi
if $PY -c "import nbval, ipykernel" 2>/dev/null; then
    step nbval "$T_NBVAL" $PY -m pytest --nbval-lax "${NBVAL_NOTEBOOKS[@]}" -q -p no:cacheprovider
else
    not_run nbval "no nbval and no wheels (make gpu-wheels; carry benchmarks/wheels)"
fi

# the summary: one screen
{
    echo "== GPU run: $(grep -m1 -oE 'NVIDIA [A-Za-z0-9 ]+' "$LOGS/machine.log" || echo 'no NVIDIA GPU seen'), $((SECONDS - START)) s of BUDGET_S=$BUDGET_S"
    printf '%-14s %-8s %5s  %s\n' step status secs note
    while IFS=$'\t' read -r name status secs note; do
        printf '%-14s %-8s %5s  %s\n' "$name" "$status" "$secs" "${note:0:90}"
    done <"$OUT/steps.tsv"
    grep -E '^FAIL' "$LOGS/smoke.log" 2>/dev/null | head -8
    echo "-- targets (python -m scanbook.bench report):"
    "${BENCH[@]}" report --dir "$OUT/results" 2>&1 | tail -22
    echo "-- results in $OUT/results: $(cd "$OUT/results" && ls 2>/dev/null | tr '\n' ' ')"
    echo "-- copy them into the book: bash benchmarks/collect_results.sh <the folder holding results/>"
} | tee "$OUT/summary.txt"

# at most 8 files come back from $OUT: the logs travel as one archive
tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs steps.tsv && rm -rf "$LOGS" "$OUT/steps.tsv"
! grep -qP '\t(FAILED|TIMEOUT)\t' <(tar -xzOf "$OUT/logs.tar.gz" steps.tsv)
