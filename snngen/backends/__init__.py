"""Backends: each turns a Program into running code behind one small interface.

A backend provides ``name``, ``version_key()``, ``load_or_generate(net, key)`` (cached module
with ``SPEC``, ``run`` and ``constants_<pop>``) and ``compile(module, args)`` (returns the
number of kernels compiled, 0 when loaded from the cache).
"""

from __future__ import annotations

from ..errors import BackendUnsupported

BACKENDS = ("numba", "cuda")


def get_backend(name: str):
    if name == "numba":
        from .numba import NumbaBackend
        return NumbaBackend()
    if name == "cuda":
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise BackendUnsupported(
                "backend='cuda' needs CuPy (pip install snngen[cuda]) and an NVIDIA GPU; "
                "the CUDA backend is not implemented in this version yet either. Use "
                "backend='numba'.") from None
        raise BackendUnsupported("the CUDA backend is not implemented in this version yet; "
                                 "use backend='numba'")
    raise BackendUnsupported(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")
