"""CUDA kernels of a network's BPTT (``templates/cuda/network.cu.j2``): the same derived
bodies as the Numba kernels (:func:`snngen.derive.network.population_bodies`), printed in C,
launched step by step from Python on a GPU (CuPy) or, with ``device="host"``, the same source
compiled for the CPU through the host shim (how the kernels are checked without a GPU).

The interface is the Numba kernels' (:class:`snngen.backends.numba.learning.NetworkKernels`):
``forward(t0, t1, dt, args)`` and ``backward(t0, t1, steps, dt, cutoff, args)`` over the driver's
dict of arrays (NumPy, or CuPy on a GPU: :meth:`NetworkKernels.array` makes them).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ... import __version__
from ...derive.network import jacobian_bodies, population_bodies
from ..base import LearningKernels
from ..templates import environment


def _params(real: str) -> list[tuple[str, str]]:
    """The one argument list of every kernel of the source (unused ones: null or zero)."""
    r = real
    scalars = [("long long", "t"), ("long long", "steps"), ("long long", "batch"),
               ("long long", "n"), (r, "cutoff"), ("double", "dt"), ("int", "use_ds"),
               ("int", "use_dz"), ("long long", "slot"), ("long long", "m"),
               ("long long", "pre0"), ("long long", "post0"), ("long long", "rows"),
               ("long long", "n_pre"), ("long long", "ring"), ("int", "has_dz")]
    arrays = [(f"{r}*", "s"), (f"{r}*", "P"), (f"{r}*", "Q"), ("long long*", "last"),
              ("long long*", "ref"), (f"{r}*", "z_row"), ("unsigned char*", "r_row"),
              (f"{r}*", "ts_row"), (f"{r}*", "tx_row"), (f"{r}*", "x"), (f"{r}*", "N_row"),
              (f"{r}*", "a"), (f"{r}*", "dls_row"), (f"{r}*", "dlz_row"), (f"{r}*", "ax"),
              (f"{r}*", "dz"), ("double*", "gP"), ("double*", "gQ"),
              ("long long*", "indptr"), ("long long*", "indices"), ("long long*", "delays"),
              (f"{r}*", "fval"), (f"{r}*", "ring_arr"), ("double*", "gf"), (f"{r}*", "z_pre"),
              ("double*", "J"), ("double*", "JX"), ("double*", "JZ"), ("double*", "JP"),
              ("double*", "JZP")]
    return scalars + arrays


def render(nlm, net, dtype: str, online: bool = False) -> tuple[str, list[str]]:
    """(CUDA C source, kernel names) of ``nlm`` (a NetworkLearningModel of ``net``);
    ``online``: with each population's Jacobian kernel ``jac_<population>``."""
    from ...derive.surrogate import surrogate_function
    from ...train.cuda_bptt import LearningCPrinter
    pr = LearningCPrinter(dtype)
    real = "float" if dtype == "float32" else "double"
    pops, names = [], ["deliver", "deliver_back"]
    for name, lm in nlm.populations.items():
        pops.append({"name": name, "model": lm.discrete.model.name,
                     "spiking": lm.g is not None,
                     "refractory": lm.discrete.refractory is not None,
                     **population_bodies(lm, pr)})
        names += ([f"thr_{name}"] if lm.g is not None else []) + \
            [f"{k}_{name}" for k in ("upd", "adjx", "adj")]
        if online:
            pops[-1]["jac_body"] = jacobian_bodies(lm, pr, flat=True)
            names.append(f"jac_{name}")
    surrogates = {lm.surrogate for lm in nlm.populations.values()}
    x = sp.Symbol("x", real=True)
    sur = pr.doprint(surrogate_function(surrogates.pop()).expression(x)) if surrogates \
        else "(real)0"
    source = environment().get_template("cuda/network.cu.j2").render(
        version=__version__, dtype=dtype, real=real, pops=pops, surrogate=sur,
        params=[f"{t} {n}" for t, n in _params(real)]) + "\n"
    return source, names


class NetworkKernels(LearningKernels):
    """A network's BPTT kernels on a GPU (``device="gpu"``) or emulated on the CPU
    (``device="host"``, the backend ``"cuda-host"``)."""

    def __init__(self, nlm, net, dtype: str, device: str = "gpu", online: bool = False):
        self.nlm, self.net, self.dtype = nlm, net, np.dtype(dtype)
        self.name = "cuda" if device == "gpu" else "cuda-host"
        self.source, self._names = render(nlm, net, dtype, online)
        if device == "gpu":
            from .gpu import check_device
            self.xp = check_device()
        else:
            self.xp = np
        #: the compiled kernels and the model-independent online kernels (sg.Online), built
        #: on first use (a trainer refused after its construction compiles nothing)
        self._kernels, self._online, self._device = None, None, device

    @property
    def kernels(self):
        if self._kernels is None:
            from ...train.cuda_bptt import Kernels
            real = "float" if self.dtype == np.float32 else "double"
            params = [(t, n, 0, "") for t, n in _params(real)]
            self._kernels = Kernels(self.source, self._names, params, self._device,
                                    str(self.dtype))
        return self._kernels

    def online(self):
        """The eligibility, feedback and outer-product kernels (one source for every
        network, compiled once)."""
        if self._online is None:
            from .online_network import OnlineKernels
            self._online = OnlineKernels(str(self.dtype), self._device)
        return self._online

    def jacobian(self, name: str, t: int, dt: float, args: dict, out: list) -> None:
        """Population ``name``'s Jacobians of step t (the tape holds that step alone) into
        ``out`` = [J, JX, JZ, JP, JZP] (float64, the trial last)."""
        v = self._pop(name, args, t, t)
        self.kernels.launch(f"jac_{name}", v["n"], {
            **v, "dt": dt, "cutoff": 0.0, **dict(zip(("J", "JX", "JZ", "JP", "JZP"), out))})

    def array(self, a):
        """``a`` where the kernels read it (a device copy on a GPU)."""
        return a if self.xp is np else self.xp.asarray(a)

    def host(self, a) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def _pop(self, name: str, args: dict, t: int, t0: int) -> dict:
        """The arguments of population ``name``'s kernels at step t (rows of step t; the
        tape's row t - t0)."""
        tape = lambda key: args[f"{key}_{name}"][t - t0]  # noqa: E731
        batch, n = args[f"z_{name}"].shape[1:]
        return {"t": t, "batch": batch, "n": n, "s": args[f"s_{name}"],
                "P": args[f"P_{name}"], "Q": args[f"Q_{name}"], "last": args[f"last_{name}"],
                "ref": args[f"ref_{name}"], "z_row": args[f"z_{name}"][t],
                "r_row": tape("tr"), "ts_row": tape("ts"), "tx_row": tape("tx"),
                "N_row": args[f"N_{name}"][t]}

    def _delivery(self, j: int, d, args: dict, t: int, ring) -> dict:
        proj = self.net.projections[d.projection]
        z = args[f"z_{d.pre}"]
        return {"t": t, "batch": z.shape[1], "n": proj.post.population.n,
                "n_pre": z.shape[2], "rows": proj.pre.n, "pre0": proj.pre.start,
                "post0": proj.post.start, "slot": d.slot, "m": ring.shape[2],
                "ring": ring.shape[0], "z_pre": z[t], "indptr": args[f"indptr_{d.projection}"],
                "indices": args[f"indices_{d.projection}"],
                "delays": args[f"delays_{d.projection}"], "fval": args[f"f_d{j}"],
                "ring_arr": ring}

    def forward(self, t0: int, t1: int, dt: float, args: dict) -> None:
        launch = self.kernels.launch
        for t in range(t0, t1):
            for name, lm in self.nlm.populations.items():
                if lm.g is not None:
                    v = self._pop(name, args, t, t0)
                    launch(f"thr_{name}", v["n"], {**v, "dt": dt})
            for j, d in enumerate(self.nlm.deliveries):
                v = self._delivery(j, d, args, t, args[f"xr_{d.post}"])
                launch("deliver", v["batch"] * v["rows"], v)
            for name in self.nlm.populations:
                v = self._pop(name, args, t, t0)
                xr = args[f"xr_{name}"]
                launch(f"upd_{name}", v["n"], {**v, "dt": dt, "x": xr[t % xr.shape[0]]})

    def backward(self, t0: int, t1: int, steps: int, dt: float, cutoff: float,
                 args: dict) -> None:
        launch = self.kernels.launch
        for t in range(t1 - 1, t0 - 1, -1):
            for name in self.nlm.populations:
                v = self._pop(name, args, t, t0)
                ar = args[f"ar_{name}"]
                use_ds = bool(args[f"use_ds_{name}"])
                launch(f"adjx_{name}", v["n"], {
                    **v, "dt": dt, "cutoff": cutoff, "a": args[f"a_{name}"],
                    "dls_row": args[f"dls_{name}"][t if use_ds else 0], "use_ds": int(use_ds),
                    "ax": ar[t % ar.shape[0]]})
            for j, d in enumerate(self.nlm.deliveries):
                v = self._delivery(j, d, args, t, args[f"ar_{d.post}"])
                pop = d.pre in self.nlm.populations
                launch("deliver_back", v["batch"] * v["rows"], {
                    **v, "steps": steps, "dz": args[f"dz_{d.pre}"] if pop else None,
                    "has_dz": int(pop), "gf": args[f"gf_d{j}"]})
            for name in self.nlm.populations:
                v = self._pop(name, args, t, t0)
                use_dz = bool(args[f"use_dz_{name}"])
                launch(f"adj_{name}", v["n"], {
                    **v, "dt": dt, "cutoff": cutoff, "a": args[f"a_{name}"],
                    "dz": args[f"dz_{name}"], "use_dz": int(use_dz),
                    "dlz_row": args[f"dlz_{name}"][t if use_dz else 0],
                    "gP": args[f"gP_{name}"], "gQ": args[f"gQ_{name}"]})
