# Parallel Scans for Sequence Models: the two set-up commands and the GPU check.
#
#   make book       install (into .venv) and build the site into _build/html, executing every chapter
#   make test       install and run every test: lint, the book build (executes every chapter),
#                   library, executed chapters, site
#   make nbval      every chapter under pytest --nbval-lax
#   make gpu-check  on a machine with an NVIDIA GPU: real-kernel tests, then the GPU benchmarks
#   make gpu-check-preinstalled   the same with the machine's own python3 (CuPy, JAX, Numba CUDA
#                   already installed), for GPU machines that cannot reach a package registry
#   make gpu-emulated   no GPU: the GPU tests of the CUDA C kernels on an emulated GPU (slow)
#   make gpu-wheels     nbval's wheels for a GPU machine without a registry (benchmarks/wheels)
#   make gpu-device-dry-run   benchmarks/device_run.sh (the short GPU run) on the emulated GPU
#   make assignments    student notebooks (answers replaced by stubs) into _build/assignments
#   make install-cells  rewrite every chapter's Colab install cell from _config.yml's repository
#
# Needs only python3 (3.11+), make and a C compiler. Everything else comes from the lock files.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
UV_VER   := 0.13.9
LOCK     := requirements.lock
GPU_LOCK := requirements-gpu.lock
STAMP    := $(VENV)/.installed
JB_FLAGS := -W -n --keep-going

.PHONY: book test nbval assignments install-cells gpu-check gpu-check-preinstalled gpu-emulated gpu-wheels gpu-device-dry-run lint \
        venv venv-gpu assets clean help

help:
	@sed -n '3,15p' Makefile

# -- environment -------------------------------------------------------------------------------
$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VER)
	$(BIN)/uv pip sync -q --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

venv: $(STAMP)

# Student notebooks: every chapter with its answer cells replaced by stubs (scanbook.course)
assignments: $(STAMP)
	$(BIN)/python -m scanbook.course.assignments --out _build/assignments

install-cells: $(STAMP)
	$(BIN)/python book/install_cell.py
	$(BIN)/python book/install_cell.py --check

venv-gpu: $(STAMP)
	$(BIN)/uv pip sync -q --python $(BIN)/python $(GPU_LOCK)
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(STAMP)  # the CPU environment must be re-synced before the next make test

assets:
	bash book/vendor.sh

# -- the book ----------------------------------------------------------------------------------
book: $(STAMP) assets
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "The book: $(CURDIR)/_build/html/index.html"

# -- tests -------------------------------------------------------------------------------------
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Build the book first, from a fresh execution cache: it executes every chapter once, top to
# bottom, and any error or failed assert in a cell fails the build (allow_errors: false, -W).
# Then one pytest run: the library tests, the chapters as the build executed them
# (tests/test_chapters_executed.py) and the checks of the built site.
test: $(STAMP) assets
	$(MAKE) --no-print-directory lint
	rm -rf _build/.jupyter_cache _build/jupyter_execute
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	$(BIN)/pytest -m "not gpu" tests

# Every chapter under nbval (pytest --nbval-lax), each in a kernel of its own: the same cells
# and asserts the book build runs, reported per cell.
nbval: $(STAMP)
	$(BIN)/pytest --nbval-lax chapters

# the file name of this GPU's results, as python -m scanbook.bench gpu names them
GPU_SLUG := import scanbook.bench.common as c; print(c.gpu_slug())

# On a GPU: every test with the real kernels (simulator off), then the benchmarks, whose JSON
# results go to benchmarks/results/ (commit them: the chapters plot from those files).
gpu-check: export XLA_PYTHON_CLIENT_PREALLOCATE = false
gpu-check: venv-gpu
	SCANBOOK_DEVICE=gpu $(BIN)/pytest tests --ignore=tests/test_site.py --ignore=tests/test_browser.py -x -q
	SCANBOOK_DEVICE=gpu $(BIN)/pytest --nbval-lax chapters -q
	SCANBOOK_DEVICE=gpu $(BIN)/python -m scanbook.bench gpu
	SCANBOOK_DEVICE=gpu $(BIN)/python -m scanbook.bench grad --save

# The library from lib/ on the machine's python3: the kernel, gradient and API tests (the site,
# widget and repository tests need the book's own stack), then both GPU benchmarks.
GPU_TESTS := tests/test_core.py tests/test_errors.py tests/test_numba_cuda.py \
             tests/test_cupy_raw.py tests/test_jax.py tests/test_vjp.py
gpu-check-preinstalled: export XLA_PYTHON_CLIENT_PREALLOCATE = false
gpu-check-preinstalled:
	SCANBOOK_DEVICE=gpu PYTHONPATH=lib python3 -m pytest $(GPU_TESTS) -q
	SCANBOOK_DEVICE=gpu PYTHONPATH=lib python3 -m scanbook.bench gpu
	SCANBOOK_DEVICE=gpu PYTHONPATH=lib python3 -m scanbook.bench grad --save

# Without a GPU: the @gpu CuPy tests on the emulated GPU of tests/fake_gpu.py (slow, ~6 min;
# not part of make test). Checks the GPU tests' own code and the host code they drive.
gpu-emulated: $(STAMP)
	PYTHONPATH=tests/emulation SCANBOOK_EMU_SEEDS=4 $(BIN)/pytest -p fake_gpu_plugin -m gpu \
		tests/test_cupy_raw.py tests/test_concurrent_emulation.py -k "not past_two_to_the_31" -q

# nbval and the Jupyter kernel stack as wheels (~4 MB, git-ignored) for benchmarks/device_run.sh
# on a GPU machine without a package registry: carry benchmarks/wheels with the device tool.
gpu-wheels:
	bash benchmarks/gpu_wheels.sh

# benchmarks/device_run.sh end to end without a GPU (~2-4 min): CuPy is the emulated GPU of
# tests/fake_gpu.py, Numba CUDA the simulator, at toy sizes and short limits; no sanitizer.
# tests/test_bench_device_run.py checks the script's structure in make test, cheaply.
DRY_OUT ?= /tmp/scanbook-device-dry-run
gpu-device-dry-run: $(STAMP)
	rm -rf $(DRY_OUT) && mkdir -p $(DRY_OUT)/nb
	$(BIN)/python benchmarks/dry_run_notebook.py $(DRY_OUT)/nb/tiny.ipynb
	OUT=$(DRY_OUT) PYTHON=$(BIN)/python SCANBOOK_DEVICE=cpu SANITIZER=/nonexistent \
	BENCH="$(BIN)/python tests/emulation/run_on_fake_gpu.py" BUDGET_S=400 T_SMOKE=150 \
	SMOKE_ARGS="--quick --only cupy backends" T_TESTS=60 TEST_ARGS="tests/test_errors.py -x" \
	EXTRA_ARGS_gpu="--elements 2048 --repeat 2 --warmup 1 --skip-numba --table1-max-T 256" \
	EXTRA_ARGS_grad="--T 300 --channels 3 --repeat 1 --backends numpy cupy" \
	NBVAL_NOTEBOOKS=$(DRY_OUT)/nb/tiny.ipynb bash benchmarks/device_run.sh; \
	echo "exit $$?; files: $$(ls $(DRY_OUT) $(DRY_OUT)/results | tr '\n' ' ')"

clean:
	rm -rf _build
