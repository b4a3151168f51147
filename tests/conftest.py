"""Shared test set-up: import scanbook first, so the CUDA simulator is chosen before numba loads."""

import os

# On a GPU, JAX would take 75% of the device's memory when first used and starve the CuPy and
# Numba tests that run after it in the same process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import pytest
import scanbook  # noqa: F401  (must precede any numba import)
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


def reference_recurrence(a, b, h0=None, reverse=False):
    """The float64 loop every implementation is checked against (batch shapes allowed)."""
    a = np.asarray(a, dtype=np.complex128 if np.iscomplexobj(a) else np.float64)
    b = np.asarray(b, dtype=a.dtype)
    h = np.zeros_like(b)
    carry = np.zeros(a.shape[1:], a.dtype) if h0 is None else np.asarray(h0, dtype=a.dtype)
    steps = range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])
    for t in steps:
        carry = a[t] * carry + b[t]
        h[t] = carry
    return h


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend there is a GPU: ``cupy`` is :mod:`fake_gpu` (NumPy arrays, the book's CUDA C run
    by g++ against a CPU emulation). For the host code of chapter 4 and the GPU benchmark."""
    import shutil

    import fake_gpu as fg

    if shutil.which("g++") is None:
        pytest.skip("the emulated GPU needs g++")
    fg.install(monkeypatch.setattr, monkeypatch.setitem)
    yield fg
    fg.forget_modules()
