#!/usr/bin/env bash
# Wheels of nbval and the Jupyter kernel stack for a GPU machine without a package registry
# (Python 3.12, x86-64): benchmarks/device_run.sh installs them with `pip --no-index` when the
# machine's python3 lacks nbval. Versions come from requirements.lock; only the packages such
# machines lack are fetched (numpy, pytest, pygments, packaging, psutil, attrs,
# python-dateutil... are there). debugpy (4 MB, for debugging a kernel) and jedi with parso
# (5 MB, tab completion) are left out: IPython and ipykernel run without them.
#
#   bash benchmarks/gpu_wheels.sh      (or make gpu-wheels)  ->  benchmarks/wheels/*.whl (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=benchmarks/wheels
PY=${PYTHON:-python3}
names="nbval nbformat fastjsonschema jsonschema jsonschema-specifications referencing rpds-py
       ipykernel jupyter-client jupyter-core traitlets pyzmq tornado comm ipython
       ipython-pygments-lexers decorator matplotlib-inline nest-asyncio pexpect
       ptyprocess prompt-toolkit wcwidth stack-data asttokens executing pure-eval platformdirs"
pins=()
for n in $names; do
    pin=$(grep -iE "^${n}==" requirements.lock | sed 's/ *;.*//' | head -1 || true)
    pins+=("${pin:-$n}")
done
mkdir -p "$dest"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$dest" "${pins[@]}"
ls "$dest"/*.whl | wc -l | xargs echo "wheels:"
du -sh "$dest"
