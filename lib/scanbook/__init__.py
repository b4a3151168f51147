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


_LAZY = {"jax", "bench", "viz", "exercises", "kernels"}  # heavier modules, loaded on first use
_LATER = {"models": 6, "tasks": 7, "train": 7, "lti": 8, "deer": 9, "distributed": 10}


def __getattr__(name):
    # `sb.jax.linear_recurrence` works without `import scanbook.jax`
    import importlib

    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name in _LATER:
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(
                f"scanbook.{name} belongs to chapter {_LATER[name]}, which is not written yet"
            ) from None
    raise AttributeError(f"module 'scanbook' has no attribute {name!r}")
