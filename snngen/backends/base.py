"""The interface between the simulator and a backend, as base classes.

A :class:`Backend` turns a network into running code: ``load_or_generate`` (the cached
generated module of a network structure), ``compile`` (its kernels, for the argument types of
one simulator) and ``runner`` (a :class:`Runner` bound to that simulator). A :class:`Runner`
runs steps and moves the simulator's arrays where a device keeps its own copies; the defaults
are those of a backend that runs on the simulator's host arrays themselves (Numba).
Everything the simulator and the snapshots ask of a backend is here, with its default: no
attribute is probed.
"""

from __future__ import annotations

import abc
import contextlib

import numpy as np


class Runner(abc.ABC):
    """Runs a built simulator's kernels over its arrays (``arrays``: the simulator's dict of
    kernel arguments, host memory)."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    @abc.abstractmethod
    def __call__(self, n_steps: int, step0: int, seed: int, status, *args) -> int:
        """Run up to ``n_steps`` steps from step ``step0``; the number of steps run."""

    def sync(self) -> None:
        """Bring every host array up to date with the kernels' memory (here: it is)."""
        return None

    def expose(self, name: str) -> np.ndarray | None:
        """Make ``name`` current on the host and keep it so from now on; a new host array
        to use in its place, or None (here: the host array is the kernels')."""
        return None

    def read_array(self, name: str, start: int | None = None,
                   stop: int | None = None) -> np.ndarray:
        """A host copy of rows ``start:stop`` of ``name``, as the kernels will see it."""
        return np.array(np.asarray(self.arrays[name])[start:stop], copy=True)

    def write_array(self, name: str, values: np.ndarray) -> None:
        """Set ``name`` to ``values`` in place, where the kernels read it."""
        self.arrays[name][...] = values

    def rewound(self, counts: dict[str, int]) -> None:
        """The monitors were rewound to ``counts`` records (a restored snapshot)."""
        return None


class Backend(abc.ABC):
    """A code generator and launcher: what :class:`snngen.runtime.simulator.Simulator` uses."""

    name: str = "?"
    #: steps per kernel call between the simulator's checks (NaN, monitors, interrupts):
    #: long enough to amortise the call, short enough for progress bars
    chunk_steps: int = 2000
    #: ``full(shape, value, dtype)``: per-synapse arrays of one value made where the kernels
    #: run (a device backend's method), or None: the simulator makes them in host memory
    full = None

    @abc.abstractmethod
    def version_key(self) -> str:
        """Everything besides the network that decides the generated text."""

    @abc.abstractmethod
    def load_or_generate(self, net, key: str):
        """(module, path) of the network structure ``key``, generated if not cached."""

    @abc.abstractmethod
    def compile(self, module, args) -> int:
        """Compile ``module``'s kernels for these arguments; how many were compiled (0:
        loaded from the cache)."""

    @abc.abstractmethod
    def runner(self, module, sim) -> Runner:
        """A :class:`Runner` of ``module``'s kernels bound to the simulator ``sim``."""

    def build_csr(self, rule, n_pre: int, n_post: int, seed: int, max_bytes=None):
        """The synapse table of ``rule`` (:func:`snngen.connectivity.build_csr`'s); a device
        backend draws it where its kernels run."""
        from ..connectivity import build_csr
        return build_csr(rule, n_pre, n_post, seed, max_bytes)

    def environment(self, flush: bool):
        """The floating-point environment of kernel calls (denormals flushed if ``flush``;
        here: as it is)."""
        return contextlib.nullcontext()


class LearningKernels(abc.ABC):
    """A network's compiled learning kernels (:class:`snngen.train.BPTT` and
    :class:`snngen.train.Online` drive them): the forward pass with its tape, the backward
    pass, each population's Jacobians and the online rules' eligibility kernels. The
    driver's arrays live where the kernels read them (``xp``: NumPy, or CuPy on a GPU)."""

    name: str = "?"
    xp = np

    @abc.abstractmethod
    def forward(self, t0: int, t1: int, dt: float, args: dict) -> None:
        """Steps t0 .. t1 - 1, the tape holding those steps."""

    @abc.abstractmethod
    def backward(self, t0: int, t1: int, steps: int, dt: float, cutoff: float,
                 args: dict) -> None:
        """Steps t1 - 1 .. t0 in reverse, of a run of ``steps``."""

    @abc.abstractmethod
    def jacobian(self, name: str, t: int, dt: float, args: dict, out: list) -> None:
        """Population ``name``'s Jacobians of step t into ``out`` = [J, JX, JZ, JP, JZP]."""

    @abc.abstractmethod
    def online(self):
        """The eligibility, feedback and outer-product kernels (one object for every
        network of the backend)."""

    def array(self, a):
        """``a`` where the kernels read it (here: host memory as it is)."""
        return a

    def host(self, a) -> np.ndarray:
        """``a`` in host memory."""
        return np.asarray(a)
