"""What :class:`snngen.train.BPTT` reads of a network and of a run: the synapse tables and
trained values' starting points, the input spikes (checked) and the spike sources' spikes.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from .. import connectivity as conn
from ..backends.numba.arrays import kernel_array
from ..errors import InvalidValueError, ShapeError, SnngenError
from ..runtime.allocate import _csr_values, _delays, shared_values
from ..runtime.validate import check_parameter_values


def synapse_tables(net) -> dict:
    """Per projection: CSR tables drawn with the simulator's seeds (the same synapses as
    ``net.build()``), per-synapse delays (steps), the synaptic values (one per synapse, or
    one per shared parameter for a weight-sharing rule), float64, and the table's
    ``layout`` (a shared delay, all to all: :func:`layout`)."""
    rng = np.random.default_rng(net.seed)
    tables = {}
    for index, (name, proj) in enumerate(net.projections.items()):
        seed = int(np.random.default_rng([net.seed, index]).integers(2**31))
        csr = conn.build_csr(proj.rule, proj.pre.n, proj.post.n, seed)
        values = {}
        for v in proj.model.variables:
            what, given = f"projection '{name}', '{v}'", proj.values.get(v, 0.0)
            values[v] = shared_values(proj, csr, given, rng, what) \
                if csr.shared is not None else \
                _csr_values(proj, csr, v, given, rng, (csr.n_synapses,), what)
            values[v] = np.asarray(values[v], np.float64)
        table = {"indptr": csr.indptr.astype(np.int64),
                 "indices": csr.indices.astype(np.int64),
                 "delays": _delays(net, proj, csr).astype(np.int64),
                 "values": values, "csr": csr}
        table["layout"] = layout(table["indptr"], table["indices"], table["delays"],
                                 proj.post.n)
        tables[name] = table
    return tables


def layout(indptr: np.ndarray, indices: np.ndarray, delays: np.ndarray,
           n_post: int) -> np.ndarray:
    """What the deliveries may assume of a synapse table (int64 [delay, dense]): the delay
    every synapse shares (-1 if they differ), and whether the table is the full matrix in
    row-major order (each row's targets 0 .. n_post - 1 in order: all to all), whose
    deliveries are contiguous row additions and whose reverse is one dense product.

    >>> layout(np.array([0, 2, 4]), np.array([0, 1, 0, 1]), np.array([1, 1, 1, 1]), 2).tolist()
    [1, 1]
    >>> layout(np.array([0, 1, 2]), np.array([1, 0]), np.array([1, 2]), 2).tolist()
    [-1, 0]
    """
    rows = len(indptr) - 1
    common = delays.size and bool(np.all(delays == delays[0]))
    dense = n_post > 0 and len(indices) == rows * n_post and bool(
        np.array_equal(indices.reshape(rows, n_post), np.broadcast_to(np.arange(n_post),
                                                                      (rows, n_post))))
    return np.array([int(delays[0]) if common else -1, int(dense)], np.int64)


def check_inputs(net, inputs, where: str, dtype) -> tuple[int, int, dict]:
    """(steps, batch, {name: spikes in ``dtype``}) of the spikes fed to ``net``'s inputs:
    a dict with every ``net.input`` group and no other name, arrays (steps, batch, n) of
    zeros and ones, all of the same steps and batch."""
    sources = {p.name: p for p in net.populations.values() if p.kind == "input"}
    if not hasattr(inputs, "items"):
        raise InvalidValueError(f"{where}: inputs must be a dict of input names to spike "
                                f"arrays (steps, batch, channels), e.g. "
                                f"{{'{next(iter(sources), 'x')}': spikes}}")
    missing = sorted(set(sources) - set(inputs))
    extra = sorted(set(inputs) - set(sources))
    if missing or extra:
        raise InvalidValueError(f"{where}: the network's inputs are {sorted(sources)}; "
                                + (f"'{missing[0]}' is not given" if missing else
                                   f"'{extra[0]}' is not an input of the network"))
    shape, out = None, {}
    for name, arr in inputs.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise InvalidValueError(f"{where}: input '{name}' must hold numbers (0 or 1), "
                                    f"got dtype {arr.dtype}")
        if arr.ndim != 3 or arr.shape[2] != sources[name].n or 0 in arr.shape:
            raise ShapeError(f"{where}: input '{name}' must have shape (steps, batch, "
                             f"{sources[name].n}), got {arr.shape}")
        if shape is not None and arr.shape[:2] != shape:
            raise ShapeError(f"{where}: inputs have different (steps, batch): {shape} and "
                             f"{arr.shape[:2]} ('{name}')")
        shape = arr.shape[:2]
        bad = ~((arr == 0) | (arr == 1))
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidValueError(f"{where}: input '{name}' must hold spikes (0 or 1); "
                                    f"entry {at} is {float(arr[at]):g}; convert "
                                    "rates or counts to spikes first")
        out[name] = kernel_array(arr, dtype)
    if shape is None:
        raise SnngenError(f"{where}: the network has no input (net.input): nothing feeds it")
    return shape[0], shape[1], out


def source_spikes(pop, steps: int, batch: int, dtype) -> np.ndarray:
    """The spikes (steps, batch, n) of a spike source over a run of ``steps``."""
    z = np.zeros((steps, batch, pop.n), dtype)
    keep = pop.steps < steps
    z[pop.steps[keep], :, pop.indices[keep]] = 1
    return z


@functools.lru_cache(maxsize=256)
def _compiled(expr: sp.Expr):
    """(argument symbols, NumPy function) of ``expr``: made once per expression, not once
    per batch (sympy's lambdify takes milliseconds)."""
    args = sorted(expr.free_symbols, key=lambda s: s.name)
    return args, sp.lambdify(args, expr, modules="numpy")


def per_synapse(expr: sp.Expr, env: dict, size: int) -> np.ndarray:
    """``expr`` evaluated per synapse from ``env`` (arrays or numbers by name), float64."""
    args, fn = _compiled(expr)
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(fn(*(env[a.name] for a in args)), np.float64),
                               (size,)).copy()


def timed_values(pop, dt: float, steps: int, batch: int) -> np.ndarray:
    """(steps, batch, inputs, n): the value of each TimedArray input of ``pop`` (by name)
    at every step of a run, as the simulation reads it: row ``min(int(t * dt / ta.dt +
    1e-9), K - 1)`` of step t (the last row held after the end).

    >>> import snngen as sg
    >>> net = sg.Network(dt=1e-3)
    >>> p = net.population("p", sg.NeuronModel("dv/dt = (I_ext - v) / tau : 1"), 2,
    ...                    params={"tau": 0.01, "I_ext": sg.TimedArray([1.0, 2.0], 2e-3)})
    >>> timed_values(p, 1e-3, 5, 1)[:, 0, 0, 0].tolist()
    [1.0, 1.0, 2.0, 2.0, 2.0]
    """
    out = np.empty((steps, batch, len(pop.inputs), pop.n))
    for j, k in enumerate(sorted(pop.inputs)):
        ta = pop.inputs[k]
        rows = np.minimum((np.arange(steps) * (dt / ta.dt) + 1e-9).astype(np.int64),
                          ta.values.shape[0] - 1)
        values = ta.values[rows]  # (steps,) or (steps, n)
        out[:, :, j, :] = values[:, None, None] if values.ndim == 1 else values[:, None, :]
    return out


def initial_params(net, tables: dict) -> dict:
    """The starting values of everything ``net`` trains, by name (float64 copies)."""
    params = {}
    for pop in net.populations.values():
        for k, each in getattr(pop, "trainable", {}).items():
            value = np.asarray(pop.params[k], np.float64)
            params[f"{pop.name}.{k}"] = np.broadcast_to(value, (pop.n,)).copy() if each \
                else value.copy()
        for k, each in getattr(pop, "trainable_init", {}).items():
            value = np.asarray(pop.init[k], np.float64)
            params[f"{pop.name}.{k}0"] = np.broadcast_to(value, (pop.n,)).copy() if each \
                else value.copy()
    for name, proj in net.projections.items():
        for k in proj.trainable:
            params[f"{name}.{k}"] = tables[name]["values"][k].copy()
    return params

def positive_params(net) -> frozenset[str]:
    """Trained neuron parameters that the model needs positive (time constants: the
    model's checks refuse their negative values): optimised as logarithms, so that no
    step can make them negative. The others (weights, thresholds) are optimised as
    they are."""
    out = set()
    for pop in net.populations.values():
        for k in getattr(pop, "trainable", {}):
            value = np.asarray(pop.params[k], np.float64)
            if not np.all(value > 0):
                continue
            probe = {**{q: np.asarray(v, np.float64) for q, v in pop.params.items()},
                     k: -value}
            try:
                check_parameter_values(pop.model, probe, "probe")
            except SnngenError:
                out.add(f"{pop.name}.{k}")
    return frozenset(out)
