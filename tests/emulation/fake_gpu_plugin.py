"""pytest plugin: run the ``@pytest.mark.gpu`` CuPy tests on the emulated GPU of
``tests/fake_gpu.py`` (``make gpu-emulated``). It checks the GPU tests' own code and the host
code they drive before a real GPU is at hand; it says nothing about speed or the GPU's memory
model. The tests that need more than 2^31 elements are left out by the Makefile target.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fake_gpu  # noqa: E402
import scanbook  # noqa: E402, F401  (before numba: the simulator stays on)

fake_gpu.install()
