"""CUDA kernels of online learning on a network's graph (``templates/cuda/online_network.cu.j2``):
the model-independent half, the same sums as :mod:`snngen.backends.numba.online_network`
with the same call signatures, launched on a GPU (CuPy) or, with ``device="host"``, compiled
for the CPU through the host shim. The models' Jacobians are the ``jac_<population>``
kernels of the network's source (:mod:`snngen.backends.cuda.learning`).
"""

from __future__ import annotations

import numpy as np

from ... import __version__
from ...errors import BackendUnsupported
from ..templates import environment

#: the most states (and trace filter stages) of a population the kernels hold per thread
KMAX = 8

_SCALARS = ("t", "batch", "rows", "pre0", "post0", "slot", "delay", "k", "m", "g", "n_hist",
            "lag")
_REALS = ("J", "JX", "JZ", "J0", "JX0", "eps", "trace", "A", "bvec", "sig", "grad", "delta",
          "fv", "out", "pre", "post", "ebuf")


def _params(real: str) -> list[tuple[str, str]]:
    """The one argument list of every kernel of the source (unused ones: null or zero)."""
    return [("long long", n) for n in _SCALARS] + [("int", "hidden")] + \
        [(f"{real}*", "z_hist"), ("long long*", "indptr"), ("long long*", "indices"),
         ("long long*", "delays")] + [("double*", n) for n in _REALS]


def render(dtype: str) -> tuple[str, list[str]]:
    """(CUDA C source, kernel names) for spikes of ``dtype``."""
    real = "float" if dtype == "float32" else "double"
    source = environment().get_template("cuda/online_network.cu.j2").render(
        version=__version__, dtype=dtype, real=real, kmax=KMAX,
        params=[f"{t} {n}" for t, n in _params(real)]) + "\n"
    return source, ["elig", "elig_pre", "feedback", "outer"]


class OnlineKernels:
    """The online kernels on a GPU (``device="gpu"``) or emulated on the CPU (``"host"``):
    :meth:`eligibility`, :meth:`eligibility_pre`, :meth:`feedback` and :meth:`outer` take
    the arguments of the Numba functions of the same names."""

    def __init__(self, dtype: str, device: str = "gpu"):
        from ...train.cuda_bptt import Kernels
        self.source, names = render(dtype)
        real = "float" if dtype == "float32" else "double"
        self.kernels = Kernels(self.source, names, [(t, n, 0, "") for t, n in _params(real)],
                               device, dtype)
        self.xp = self.kernels.xp

    def _f64(self, a):
        """``a`` as a contiguous float64 array where the kernels read it."""
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=np.float64))

    @staticmethod
    def check(k: int, g: int, where: str) -> None:
        """Refuse what the kernels cannot hold per thread."""
        if max(k, g) > KMAX:
            raise BackendUnsupported(f"{where}: the CUDA online kernels hold at most {KMAX} "
                                     f"states and filter stages per neuron, this one needs "
                                     f"{max(k, g)}; use backend='numba'")

    def _rows(self, indptr) -> int:
        return int(indptr.shape[0]) - 1

    def eligibility(self, z_hist, t, pre0, indptr, indices, post0, delays, slot, J, JX, JZ,  # noqa: N803
                    eps, trace, A, bvec, sig, grad, hidden, ebuf, lag):  # noqa: N803
        rows = self._rows(indptr)
        self.kernels.launch("elig", rows, {
            "t": t, "batch": eps.shape[2], "rows": rows, "pre0": pre0, "post0": post0,
            "slot": slot, "k": eps.shape[1], "m": JX.shape[2], "g": trace.shape[1],
            "n_hist": z_hist.shape[2], "hidden": int(hidden), "z_hist": z_hist,
            "indptr": indptr, "indices": indices, "delays": delays, "J": J, "JX": JX,
            "JZ": JZ, "eps": eps, "trace": trace, "A": self._f64(A), "bvec": self._f64(bvec),
            "sig": sig, "grad": grad, "ebuf": ebuf, "lag": lag})

    def eligibility_pre(self, z_hist, t, pre0, indptr, indices, post0, delay, slot, J0, JX0,  # noqa: N803
                        JZ, pre, trace, A, bvec, sig, grad, hidden, ebuf, lag):  # noqa: N803
        rows = self._rows(indptr)
        self.kernels.launch("elig_pre", rows, {
            "t": t, "batch": pre.shape[2], "rows": rows, "pre0": pre0, "post0": post0,
            "slot": slot, "delay": delay, "k": pre.shape[1], "m": JX0.shape[1],
            "g": trace.shape[1], "n_hist": z_hist.shape[2], "hidden": int(hidden),
            "z_hist": z_hist, "indptr": indptr, "indices": indices, "J0": self._f64(J0),
            "JX0": self._f64(JX0), "JZ": JZ, "pre": pre, "trace": trace, "A": self._f64(A),
            "bvec": self._f64(bvec), "sig": sig, "grad": grad, "ebuf": ebuf, "lag": lag})

    def feedback(self, delta, pre0, indptr, indices, post0, fval, out):
        rows = self._rows(indptr)
        self.kernels.launch("feedback", rows, {
            "batch": delta.shape[2], "rows": rows, "pre0": pre0, "post0": post0,
            "k": delta.shape[1], "indptr": indptr, "indices": indices, "delta": delta,
            "fv": self._f64(fval), "out": out})

    def outer(self, indptr, indices, post0, pre, post, grad):
        rows = self._rows(indptr)
        self.kernels.launch("outer", rows, {
            "batch": pre.shape[1], "rows": rows, "post0": post0, "indptr": indptr,
            "indices": indices, "pre": self._f64(pre), "post": self._f64(post), "grad": grad})
