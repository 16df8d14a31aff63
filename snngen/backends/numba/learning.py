"""Numba kernels of a network's BPTT: the derived steps of its populations rendered through
``templates/numba/network.py.j2``, and the model-independent deliveries (this module).

A delivery adds a per-synapse value ``f`` (computed before the run from the synaptic
variables, :mod:`snngen.derive.network`) to the input slot of the postsynaptic neuron, due
``delay`` steps after the presynaptic spike; its reverse sends back, for every presynaptic
neuron, ``sum a_x * f`` to its spike's adjoint, and for each spike adds ``a_x`` to the
synapse's sum ``gf`` (the weight gradients are ``gf * df/dw``, formed afterwards).

How a table is walked depends on its layout (:func:`snngen.train.network_data.layout`):
synapse by synapse in general (:func:`deliver`, :func:`deliver_back`); one ring row per
step when its synapses share a delay; and for a full matrix with one delay, the reverse is
a register-tiled product (:func:`dense_back`) and the weight sums wait for the end of the
segment, where they are made row by row (:func:`dense_grads`). The ``_threads`` forms,
imported by a network built with ``parallel=True``, share rows between threads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import sympy as sp
from numba import njit, prange

from ... import __version__, cache
from ...derive.network import jacobian_bodies, population_bodies
from ..base import LearningKernels
from ..templates import environment
from . import gemm
from .gemm import pad_columns, rows_product
from .printer import NumbaPrinter


def digest() -> str:
    """Hash of this file and of :mod:`.gemm` (the generated module embeds it: Numba's cache
    is keyed on the generated file, which calls the helpers below)."""
    return hashlib.sha256(Path(__file__).read_bytes() + gemm.digest().encode()).hexdigest()[:16]


@njit(cache=True, boundscheck=False, nogil=True)
def deliver(z, pre0, indptr, indices, post0, delays, lay, fval, ring, slot, t):
    """For every spike of z (B, n_pre) at presynaptic row pre0 + i: ring[(t + d_k) % R, b,
    slot, post0 + indices[k]] += fval[k] * z over the row's synapses k (z is 1 for a spike;
    soft spikes, for finite-difference checks, deliver their value). ``lay`` is the table's
    layout (:func:`snngen.train.network_data.layout`): a shared delay picks the ring row
    once per spike, a dense table adds contiguous rows."""
    rows = indptr.shape[0] - 1
    size = ring.shape[0]
    common, dense = lay[0], lay[1] != 0
    for b in range(z.shape[0]):
        for i in range(rows):
            spike = z[b, pre0 + i]  # 1 (or, with soft spikes, any value; 0: no event)
            if spike == 0:
                continue
            lo, hi = indptr[i], indptr[i + 1]
            if common < 0:
                for k in range(lo, hi):
                    ring[(t + delays[k]) % size, b, slot, post0 + indices[k]] += \
                        fval[k] * spike
                continue
            row = ring[(t + common) % size, b, slot]
            if dense:
                out = row[post0:post0 + hi - lo]
                values = fval[lo:hi]
                for k in range(hi - lo):  # slices, not offsets: the loop vectorises
                    out[k] += values[k] * spike
            else:
                for k in range(lo, hi):
                    row[post0 + indices[k]] += fval[k] * spike


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def sums_later(lay, ring, span):
    """Whether the weight sums of a table wait for the end of a segment of ``span`` steps
    (:func:`dense_grads`): a full matrix with a shared delay, and an adjoint ring long
    enough to keep every adjoint the segment's spikes read (the driver makes it so)."""
    return lay[0] >= 0 and lay[1] != 0 and ring.shape[0] >= span + lay[0]


@njit(cache=True, boundscheck=False, nogil=True)
def deliver_back(z, pre0, indptr, indices, post0, delays, lay, fval, ring, slot, t, steps,
                 dz, has_dz, gf):
    """The reverse of :func:`deliver` at step t: ring holds the adjoints of the inputs of
    steps t .. t + R - 1. Each synapse k of row i (due at t + d_k < steps) reads a =
    ring[...]: when has_dz, sum a * fval[k] goes to dz[b, pre0 + i] (the adjoint of the
    spike, whether or not it fired: the surrogate passes gradients to silent neurons too);
    when the neuron fired, a * z adds to gf[k]. Nothing for a full matrix with a shared
    delay: :func:`dense_back` sends its adjoints back."""
    if lay[0] >= 0 and lay[1] != 0:
        return
    rows = indptr.shape[0] - 1
    size = ring.shape[0]
    if lay[0] >= 0:  # one delay: every synapse reads the same ring row
        if t + lay[0] < steps:
            _shared_delay_back(z, pre0, rows, indptr, indices, post0, fval,
                               ring[(t + lay[0]) % size], slot, dz, has_dz, gf)
        return
    for b in range(z.shape[0]):
        for i in range(rows):
            spike = z[b, pre0 + i]
            if spike == 0 and not has_dz:
                continue
            acc = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                due = t + delays[k]
                if due < steps:
                    a = ring[due % size, b, slot, post0 + indices[k]]
                    if spike != 0:
                        gf[k] += a * spike
                    acc += a * fval[k]
            if has_dz:
                dz[b, pre0 + i] += acc


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _shared_delay_back(z, pre0, rows, indptr, indices, post0, fval, due, slot, dz, has_dz,
                       gf):
    """:func:`deliver_back` of a table whose synapses share one delay: the adjoints all in
    ring row ``due`` (B, slots, targets)."""
    for b in range(z.shape[0]):
        adj = due[b, slot, post0:]
        for i in range(rows):
            spike = z[b, pre0 + i]
            lo, hi = indptr[i], indptr[i + 1]
            if spike != 0:
                for k in range(lo, hi):
                    gf[k] += adj[indices[k]] * spike
            if has_dz:
                acc = 0.0
                for k in range(lo, hi):
                    acc += adj[indices[k]] * fval[k]
                dz[b, pre0 + i] += acc


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _dense_due(indptr, lay, fval, ring, t, steps):
    """(rows, n, ring row) of a full matrix with a shared delay d at step t: its rows and
    columns and the row of adjoints due at t + d (B x slots x targets); rows is -1 where
    nothing is due (another kind of table, or t + d past the run)."""
    due = ring[(t + max(lay[0], 0)) % ring.shape[0]]
    rows = indptr.shape[0] - 1
    if lay[0] < 0 or lay[1] == 0 or t + lay[0] >= steps:
        return -1, 0, due
    return rows, (fval.shape[0] // rows if rows else 0), due


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _product_buffers(due, slot, post0, n, rows, batch, like):
    """The product's operands: the adjoints of ring row ``due`` as n x B (the trials
    innermost, padded to the tiles' vector width) and an output of ``rows`` rows."""
    a = np.zeros((n, pad_columns(batch, like)), like.dtype)
    for b in range(batch):
        for k in range(n):
            a[k, b] = due[b, slot, post0 + k]
    return a, np.empty((rows, a.shape[1]), like.dtype)


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _dz_out(c, dz, pre0, rows):
    """dz[b, pre0 + i] += c[i, b] (loops: an array expression here compiles for seconds)."""
    for b in range(dz.shape[0]):
        for i in range(rows):
            dz[b, pre0 + i] += c[i, b]


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _step_sums(z, pre0, rows, post0, n, due, slot, gf, lay, ring, span):
    """gf[i, :] += a[b, :] * z[b, pre0 + i] for the spikes of one step, unless the ring
    keeps the segment's adjoints for :func:`dense_grads`."""
    if sums_later(lay, ring, span):
        return
    for b in range(z.shape[0]):
        adj = due[b, slot, post0:post0 + n]
        for i in range(rows):
            spike = z[b, pre0 + i]
            if spike != 0:
                out = gf[i * n:(i + 1) * n]
                for k in range(n):  # slices, not offsets: the loop vectorises
                    out[k] += adj[k] * spike


@njit(cache=True, boundscheck=False, nogil=True)
def dense_back(z, pre0, indptr, post0, lay, fval, ring, slot, t, steps, dz, has_dz, gf,
               span):
    """:func:`deliver_back` of a full matrix ``fval`` (rows x n, row-major) with a shared
    delay d (else nothing): the adjoints due at t + d (a ring row, B x slots x targets)
    go back as dz[b, pre0 + i] += sum_k fval[i, k] a[b, k], by the register-tiled product
    of :mod:`.gemm`; the weight sums are made here, step by step, only where the ring is
    too short to keep them for :func:`dense_grads`. :func:`dense_back_threads` is the same
    with the product's rows shared between threads."""
    rows, n, due = _dense_due(indptr, lay, fval, ring, t, steps)
    if rows < 0:
        return
    if has_dz:
        a, c = _product_buffers(due, slot, post0, n, rows, z.shape[0], fval)
        rows_product(fval, n, 0, rows, a, c, False)
        _dz_out(c, dz, pre0, rows)
    _step_sums(z, pre0, rows, post0, n, due, slot, gf, lay, ring, span)


BLOCK = 128  # rows of the weight matrix per task of the threaded product and weight sums


@njit(cache=True, boundscheck=False, nogil=True, parallel=True)
def dense_back_threads(z, pre0, indptr, post0, lay, fval, ring, slot, t, steps, dz, has_dz,
                       gf, span):
    """:func:`dense_back` with blocks of rows of the product on threads (each row's sum in
    the order of one thread's: the same numbers)."""
    rows, n, due = _dense_due(indptr, lay, fval, ring, t, steps)
    if rows < 0:
        return
    if has_dz:
        a, c = _product_buffers(due, slot, post0, n, rows, z.shape[0], fval)
        for blk in prange((rows + BLOCK - 1) // BLOCK):
            j0 = blk * BLOCK
            j1 = min(rows, j0 + BLOCK)
            rows_product(fval, n, j0, j1, a, c[j0:j1], False)
        _dz_out(c, dz, pre0, rows)
    _step_sums(z, pre0, rows, post0, n, due, slot, gf, lay, ring, span)


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _row_sums(z, pre0, i, n, post0, d, ring, slot, events, start, gf):
    """gf[i, :] += z * a[t + d, b, :] over the spikes (t, b) of row i (events[start[i]:
    start[i + 1]], t * B + b)."""
    out = gf[i * n:(i + 1) * n]
    size = ring.shape[0]
    batch = z.shape[1]
    for e in range(start[i], start[i + 1]):
        t = events[e] // batch
        b = events[e] - t * batch
        spike = z[t, b, pre0 + i]
        adj = ring[(t + d) % size, b, slot, post0:post0 + n]
        for k in range(n):  # slices, not offsets: the loop vectorises
            out[k] += adj[k] * spike


@njit(cache=True, boundscheck=False, nogil=True)
def _events(z, pre0, rows, t0, t1):
    """The spikes of rows pre0 .. pre0 + rows - 1 in steps t0 .. t1 - 1, grouped by row:
    (events, start), event ``t * B + b``, row i's events[start[i]:start[i + 1]] in time
    order (one pass over z in memory order to count, one to place)."""
    batch = z.shape[1]
    start = np.zeros(rows + 1, np.int64)
    for t in range(t0, t1):
        for b in range(batch):
            for i in range(rows):
                if z[t, b, pre0 + i] != 0:
                    start[i + 1] += 1
    for i in range(rows):
        start[i + 1] += start[i]
    fill = start[:rows].copy()
    events = np.empty(start[rows], np.int64)
    for t in range(t0, t1):
        for b in range(batch):
            for i in range(rows):
                if z[t, b, pre0 + i] != 0:
                    events[fill[i]] = t * batch + b
                    fill[i] += 1
    return events, start


@njit(cache=True, boundscheck=False, nogil=True)
def dense_grads(z, pre0, rows, post0, lay, ring, slot, t0, t1, steps, gf):
    """The weight sums :func:`dense_back` left for the end of the segment t0 .. t1 - 1
    (z: the run's spikes, steps x B x n): row by row over each neuron's spikes, so that a
    row of gf stays in cache while it sums all of them; nothing for a table whose sums were
    made step by step. :func:`dense_grads_threads`: blocks of rows on threads."""
    if not sums_later(lay, ring, t1 - t0) or rows == 0:
        return
    n = gf.shape[0] // rows
    last = min(t1, steps - lay[0])  # spikes whose inputs fall after the run send nothing
    events, start = _events(z, pre0, rows, t0, last)
    for i in range(rows):
        _row_sums(z, pre0, i, n, post0, lay[0], ring, slot, events, start, gf)


@njit(cache=True, boundscheck=False, nogil=True, parallel=True)
def dense_grads_threads(z, pre0, rows, post0, lay, ring, slot, t0, t1, steps, gf):
    """:func:`dense_grads`, blocks of rows on threads (each row's sums in the same order)."""
    if not sums_later(lay, ring, t1 - t0) or rows == 0:
        return
    n = gf.shape[0] // rows
    last = min(t1, steps - lay[0])
    events, start = _events(z, pre0, rows, t0, last)
    for blk in prange((rows + BLOCK - 1) // BLOCK):
        for i in range(blk * BLOCK, min(rows, blk * BLOCK + BLOCK)):
            _row_sums(z, pre0, i, n, post0, lay[0], ring, slot, events, start, gf)


def render(nlm, net, dtype: str, parallel: bool = False, online: bool = False) -> str:
    """The generated module of ``nlm`` (a NetworkLearningModel of ``net``) in ``dtype``;
    ``parallel``: the population kernels share neurons between threads (``prange``), at
    about twice the first compile time (Numba's parallel loops compile slowly); ``online``:
    with each population's Jacobian kernel ``jac_<population>`` (online learning)."""
    from ...derive.surrogate import surrogate_function
    pr = NumbaPrinter(dtype)
    pops = []
    for name, lm in nlm.populations.items():
        pops.append({"name": name, "model": lm.discrete.model.name,
                     "spiking": lm.g is not None,
                     "refractory": lm.discrete.refractory is not None,
                     **population_bodies(lm, pr)})
        if online:
            pops[-1]["jac_body"] = jacobian_bodies(lm, pr)
    surrogates = {lm.surrogate for lm in nlm.populations.values()}
    xg = sp.Symbol("x", real=True)
    sur = pr.doprint(surrogate_function(surrogates.pop()).expression(xg)) if surrogates \
        else "0.0"
    deliveries = []
    for k, d in enumerate(nlm.deliveries):
        proj = net.projections[d.projection]
        deliveries.append({"key": f"d{k}", "proj": d.projection, "pre": d.pre, "post": d.post,
                           "pre_start": proj.pre.start, "post_start": proj.post.start,
                           "slot": d.slot, "pre_is_pop": d.pre in nlm.populations})
    fa, ba = [], []
    for p in pops:
        n = p["name"]
        fa += [f"{a}_{n}" for a in ("s", "P", "Q", "last", "ref", "z", "tr", "ts", "tx", "xr",
                                   "N")]
        ba += [f"{a}_{n}" for a in ("a", "dls", "use_ds", "dlz", "use_dz", "ts", "tx", "tr",
                                   "z", "P", "Q", "ar", "dz", "gP", "gQ", "N")]
    for s in nlm.sources:
        fa.append(f"z_{s}")
        ba += [f"z_{s}", f"dz_{s}"]
    for proj in dict.fromkeys(d.projection for d in nlm.deliveries):
        fa += [f"{a}_{proj}" for a in ("indptr", "indices", "delays", "layout")]
        ba += [f"{a}_{proj}" for a in ("indptr", "indices", "delays", "layout")]
    for d in deliveries:
        fa.append(f"f_{d['key']}")
        ba += [f"f_{d['key']}", f"gf_{d['key']}"]
    return environment().get_template("numba/network.py.j2").render(
        version=__version__, dtype=dtype, pops=pops, deliveries=deliveries, surrogate=sur,
        forward_args=fa, backward_args=ba, helpers_digest=digest(), parallel=parallel)


class NetworkKernels(LearningKernels):
    """The compiled forward and backward passes of a network (generated once, cached)."""

    name = "numba"

    def __init__(self, nlm, net, dtype: str, parallel: bool = False, say=None,
                 online: bool = False):
        self.dtype = np.dtype(dtype)
        self.source = render(nlm, net, dtype, parallel, online)
        self.module, self.source_path = cache.generated_module(self.source, "network")
        # Numba caches the compiled functions beside the source: none there means this run
        # compiles them (at their first call), which takes seconds: say so
        folder = self.source_path.parent / "__pycache__"
        compiled = any(folder.glob(f"{self.source_path.stem}.*.nbi"))
        self._say = None if compiled or say is None else say
        self._what = (f"the {'online' if online else 'BPTT'} kernels of "
                      f"{len(nlm.populations)} population(s) and "
                      f"{len(nlm.deliveries)} synaptic statement(s) (Numba, {dtype}; once, then "
                      "cached)")

    def _compiling(self, part: str, call) -> None:
        """Run ``call``, saying before and after that it compiles ``part`` (first use)."""
        if self._say is None:
            return call()
        import time
        t0 = time.perf_counter()
        self._say(f"snngen: compiling the {part} pass of {self._what}...")
        call()
        self._say(f"snngen: compiled the {part} pass in {time.perf_counter() - t0:.1f} s")
        if part == "backward":
            self._say = None

    @staticmethod
    def online():
        """The eligibility, feedback and outer-product kernels (sg.Online)."""
        from .online_network import OnlineKernels
        return OnlineKernels()

    def jacobian(self, name: str, t: int, dt: float, args: dict, out: list) -> None:
        """Population ``name``'s Jacobians of step t (the tape holds that step alone) into
        ``out`` = [J, JX, JZ, JP, JZP] (float64, the trial last)."""
        getattr(self.module, f"jac_{name}")(
            args[f"ts_{name}"][0], args[f"tx_{name}"][0], args[f"tr_{name}"][0],
            args[f"z_{name}"][t], args[f"P_{name}"], args[f"Q_{name}"], dt, 0.0, t,
            args[f"N_{name}"][t], *out)

    def forward(self, t0: int, t1: int, dt: float, args: dict) -> None:
        """Steps t0 .. t1 - 1, the tape arrays holding those steps."""
        code = self.module.forward.py_func.__code__
        names = code.co_varnames[3:code.co_argcount]
        values = [args[n] for n in names]
        if self._say is not None and not self.module.forward.signatures:
            return self._compiling("forward", lambda: self.module.forward(t0, t1, dt, *values))
        self.module.forward(t0, t1, dt, *values)

    def backward(self, t0: int, t1: int, steps: int, dt: float, cutoff: float,
                 args: dict) -> None:
        """Steps t1 - 1 .. t0 in reverse, of a run of ``steps``."""
        code = self.module.backward.py_func.__code__
        names = code.co_varnames[5:code.co_argcount]
        values = [args[n] for n in names]
        if self._say is not None and not self.module.backward.signatures:
            return self._compiling("backward", lambda: self.module.backward(
                t0, t1, steps, dt, cutoff, *values))
        self.module.backward(t0, t1, steps, dt, cutoff, *values)
