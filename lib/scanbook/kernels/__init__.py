"""GPU kernels: Numba CUDA (chapter 3) and CUDA C through CuPy RawKernel (chapter 4)."""
