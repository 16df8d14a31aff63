"""Backends: each turns a Program into running code behind one small interface.

A backend provides ``name``, ``version_key()``, ``load_or_generate(net, key)`` (cached module
with ``SPEC`` and ``constants_<pop>``), ``compile(module, args)`` (returns the number of
kernels compiled, 0 when loaded from the cache) and ``runner(module, simulator)`` (a callable
``(n_steps, step0, seed, status, *args) -> steps run``); optionally ``build_csr`` (same
signature and result as :func:`snngen.connectivity.build_csr`, drawn where the kernels run).
``cuda-host`` runs the CUDA backend's kernels on the CPU, for checks without a GPU.
"""

from __future__ import annotations

from ..errors import BackendUnsupported

BACKENDS = ("numba", "cuda", "cuda-host")


def get_backend(name: str):
    if name == "numba":
        from .numba import NumbaBackend
        return NumbaBackend()
    if name == "cuda":
        from .cuda import CudaBackend
        return CudaBackend("gpu")
    if name == "cuda-host":
        from .cuda import CudaBackend
        return CudaBackend("host")
    raise BackendUnsupported(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
