"""Backends: each turns a Program into running code behind one small interface, the base
classes :class:`~snngen.backends.base.Backend` and :class:`~snngen.backends.base.Runner`.

A backend provides ``name``, ``version_key()``, ``load_or_generate(net, key)`` (cached module
with ``SPEC`` and ``constants_<pop>``), ``compile(module, args)`` (returns the number of
kernels compiled, 0 when loaded from the cache) and ``runner(module, simulator)`` (a
:class:`~snngen.backends.base.Runner`: ``(n_steps, step0, seed, status, *args) -> steps
run``, and the memory moves of a device); ``build_csr``, ``full`` and ``environment`` have
host defaults. ``cuda-host`` runs the CUDA backend's kernels on the CPU, for checks without a
GPU.
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
