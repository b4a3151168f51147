"""scanbook: the library of the book *Parallel Scans for Sequence Models*.

Importing it first decides where Numba's CUDA kernels run: on the GPU when there is one,
otherwise in the CUDA simulator (see :mod:`scanbook.backends`). Import ``scanbook`` before
anything that imports numba.
"""

from . import backends

backends.configure()

from . import algorithms, ops, serial  # noqa: E402
from .algorithms import scan  # noqa: E402
from .backends import available_backends  # noqa: E402
from .recurrence import linear_recurrence, linear_recurrence_vjp  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "algorithms",
    "available_backends",
    "backends",
    "linear_recurrence",
    "linear_recurrence_vjp",
    "ops",
    "scan",
    "serial",
]


def __getattr__(name):
    # the heavier modules (jax, models, deer, ...) load on first use: `sb.jax.linear_recurrence`
    import importlib

    if name in {
        "jax",
        "bench",
        "viz",
        "exercises",
        "kernels",
        "models",
        "lti",
        "deer",
        "distributed",
        "tasks",
        "train",
    }:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scanbook' has no attribute {name!r}")
