#!/usr/bin/env bash
# Copy the results of a GPU run (benchmarks/device_run.sh) into the book: DIR is the folder the
# run's $OUT came back to (the device tool's files_at), holding results/*.json and summary.txt.
#
#   bash benchmarks/collect_results.sh DIR       then: git add benchmarks/results && git commit
#
# Results of an emulated GPU or of a CPU are refused: the chapters plot only measured GPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: bash benchmarks/collect_results.sh DIR (the folder holding results/)}
[ -d "$src/results" ] || { echo "no $src/results: is $src the run's \$OUT?" >&2; exit 2; }
mkdir -p benchmarks/results
copied=0
for f in "$src"/results/*.json; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    case "$name" in
        *emulated*|grad-cpu-*|cpu-*) echo "skipped $name (not a GPU)"; continue ;;
    esac
    cp "$f" "benchmarks/results/$name"
    echo "copied benchmarks/results/$name"
    copied=$((copied + 1))
done
[ -f "$src/summary.txt" ] && cat "$src/summary.txt"
[ -f "$src/logs.tar.gz" ] && echo "logs: tar -xzf $src/logs.tar.gz -C /tmp  (one .log a step)"
[ "$copied" -gt 0 ] || { echo "no GPU result files in $src/results" >&2; exit 1; }
