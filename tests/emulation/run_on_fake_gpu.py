"""Run ``python -m scanbook.bench ...`` as if this machine had a GPU: ``cupy`` is
``tests/fake_gpu.py`` (the book's CUDA C run on CPU threads). Used by tests/test_fake_gpu.py in
a subprocess, so that nothing it changes (JAX's x64 flag, the patched device detection) leaks
into other tests.

    python tests/emulation/run_on_fake_gpu.py gpu --elements 2048 --out x.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_gpu_plugin  # noqa: E402, F401  (installs the emulated GPU as cupy)
import scanbook  # noqa: E402
from scanbook.bench import main  # noqa: E402

if __name__ == "__main__":
    assert scanbook.backends.cuda_simulator(), "numba must stay in the simulator here"
    raise SystemExit(main(sys.argv[1:]))
