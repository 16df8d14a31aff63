"""Snapshots of a simulator: ``store``/``restore`` in memory, ``save``/``load`` to a file.

Brian2's ``net.store()`` / ``net.restore()`` for snngen, exact to the bit on every backend
and across processes. A snapshot holds

- the step counter (``sim.step``; the time is ``step * dt``);
- every kernel argument that carries state from one step to the next, chosen by its role in
  the program's argument spec (:func:`state_names`): neuron states, last spike steps
  (refractoriness), the spike rings and their counts (spikes in flight through delays),
  per-synapse delay buffers (input in flight), synaptic variables (plastic ones, their
  event-driven traces' last-update steps, and fixed ones, which ``sim.synapses`` lets the
  user change), spike-source cursors;
- what the monitors recorded, so that a restore rewinds them as Brian2's does.

Not in a snapshot: what cannot change on a built simulator. That is the connectivity, the
delays, spike-source times and the recorded neurons (compared on :func:`load`: a snapshot of
other connectivity is refused), and the parameters, TimedArray inputs and the constants
derived from them when the simulator was built (``sim.state`` hands out state variables;
there is no way to set a parameter of a built simulator). A snapshot loaded into a simulator
built with other parameter values continues with those values. Poisson inputs need nothing:
their draws are counter-based on (seed, step, neuron, trial), so they repeat after a restore
(the seed must match on load).

:func:`save` (in :mod:`snngen.runtime.snapshot_file`, with :func:`load`) writes an ``.npz``
archive (no pickles) to a temporary file in the destination's folder, flushed to disk, then
renamed over the destination: a crash mid-save leaves any
earlier file intact. Its ``meta`` entry (JSON) records the snngen and Python versions, the
network's structure key, a digest of the kernel arguments (names, kinds, roles), a digest of
the connectivity, delays, spike-source times and recorded neurons, ``dt``, ``batch``,
``dtype``, the seed, the step, and the shape and dtype of every array. :func:`load` reads the
whole file and checks all of it against the simulator before it changes anything: an
unreadable file (truncated, damaged, not a snapshot) or a mismatch raises
:class:`~snngen.errors.CheckpointError` and leaves the simulator exactly as it was.

>>> import os, tempfile
>>> import numpy as np
>>> import snngen as sg
>>> lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\\ndI/dt = -I / tau_s : 1",
...                      threshold="v > 1", reset="v = 0", refractory="2*ms")
>>> net = sg.Network(dt=1e-4, seed=1, dtype="float64")
>>> P = net.population("P", lif, 10, params={"tau": "10*ms", "tau_s": "5*ms"})
>>> drive = net.poisson("drive", 20, rates="200*Hz")
>>> _ = net.connect(drive, P, "I += w", "all_to_all", w=0.5, delay="1*ms")
>>> spikes = net.monitor_spikes(P)
>>> sim = net.build()
>>> _ = sim.run("20*ms")
>>> sim.store()                                 # in memory, as "default"
>>> folder = tempfile.TemporaryDirectory()
>>> path = os.path.join(folder.name, "warm.npz")
>>> sim.save(path)                              # a file, for sim.load in any process
>>> _ = sim.run("30*ms")
>>> first = spikes.step.copy()
>>> sim.restore()                               # step, states, rings, monitors: all back
>>> sim.step, bool(np.all(spikes.step < 200))
(200, True)
>>> _ = sim.run("30*ms")                        # the same 30 ms again
>>> np.array_equal(spikes.step, first)
True
>>> other = net.build()                         # as a fresh process would
>>> other.load(path)
>>> _ = other.run("30*ms")
>>> np.array_equal(spikes.step, first)
True
>>> try:
...     sim.restore("warm")
... except sg.SnngenError as err:
...     print(err)
restore: no snapshot named 'warm' in this simulator; stored: 'default'
>>> folder.cleanup()
"""

from __future__ import annotations

import hashlib
import platform

import numpy as np

from .. import __version__
from ..errors import InvalidValueError, NetworkTooLargeError

FORMAT = 1
KIND = "snngen simulator snapshot"

#: Roles of arguments a snapshot leaves out: fixed when the simulator is built (sizes,
#: connectivity, delays, spike-source tables, parameters, inputs, constants derived from
#: them), or rewritten before they are read in every step (``scratch``: the threshold
#: flags of one step). Every other array argument is stored, new roles included.
CONSTANT_ROLES = frozenset({"batch", "dt", "size", "bound", "index", "delays", "delay",
                            "events", "param", "param_array", "const", "const_array",
                            "refractory_steps", "input", "input_ratio", "syn_param",
                            "scratch"})
#: Roles whose values define what the stored state means (which synapse is which, where a
#: delayed spike goes, which source spike comes next): compared by digest on :func:`load`,
#: with the monitors' recorded neurons (``idx``) and intervals (``every``).
STRUCTURE_ROLES = frozenset({"batch", "size", "bound", "index", "delays", "delay", "events"})

_ROWS = 1 << 22  # rows per piece when a structure array is hashed (bounds host copies)


class _AnyBackend:
    """Stands in for a backend in :func:`~snngen.runtime.allocate.structure_key`: a snapshot
    belongs to a network, not to a backend (the arguments are the same on all of them)."""

    @staticmethod
    def version_key() -> str:
        return "snapshot: any backend"


def state_names(spec: dict) -> list[str]:
    """The arguments of ``spec`` a snapshot holds: every array whose role is not in
    :data:`CONSTANT_ROLES` (monitors are stored apart, from what they recorded).

    >>> spec = {"args": [("P__v", "float", 2, "state"), ("P__tau", "float", 1, "param_array"),
    ...                  ("P___ring", "int32", 3, "ring"), ("m0__i", "int32", 1, "monitor"),
    ...                  ("S__w", "float", 2, "syn"), ("P___n", "int64", 0, "size")]}
    >>> state_names(spec)
    ['P__v', 'P___ring', 'S__w']
    """
    return [name for name, _kind, ndim, role in spec["args"]
            if ndim > 0 and role not in CONSTANT_ROLES and role != "monitor"]


# -- reading and writing a simulator's arrays ---------------------------------------------
def _read(sim, name: str, start=None, stop=None) -> np.ndarray:
    """A host copy of ``sim``'s argument ``name`` (rows ``start:stop``) as the kernels will
    see it at the next run; a device backend's runner fetches it without exposing it."""
    return sim._kernel.read_array(name, start, stop)


def _write(sim, name: str, values: np.ndarray) -> None:
    """Set ``sim``'s argument ``name`` to ``values`` in place (arrays handed out by
    ``sim.state`` or ``sim.synapses`` see the new values)."""
    sim._kernel.write_array(name, values)


def _nbytes(arr) -> int:
    return int(np.prod(arr.shape)) * np.dtype(arr.dtype).itemsize


# -- taking and putting back a snapshot ---------------------------------------------------
def _monitor_parts(sim) -> tuple[list[dict], dict]:
    """(one record per monitor, the arrays of what they recorded), copied."""
    infos, arrays = [], {}
    for k, mon in enumerate(sim.net.monitors):
        data = mon.data  # joins a state or rate monitor's blocks
        info = {"kind": mon.kind, "shown": bool(data)}
        if mon.kind == "spikes":
            count = int(sim.arrays[f"m{k}__count"][0])
            for f in ("i", "step", "b"):
                arrays[f"monitor/{k}/{f}"] = sim.arrays[f"m{k}__{f}"][:count].copy()
        else:
            block = data.get("_all" if mon.kind == "state" else "counts")
            if block is not None:
                arrays[f"monitor/{k}/records"] = np.array(block, copy=True)
            info["shown"] = block is not None
        infos.append(info)
    return infos, arrays


def _snapshot_bytes(sim) -> int:
    """Bytes a snapshot of ``sim`` takes, computed before anything is copied."""
    total = sum(_nbytes(sim.arrays[name]) for name in state_names(sim.spec))
    for k, mon in enumerate(sim.net.monitors):
        if mon.kind == "spikes":
            total += 16 * int(sim.arrays[f"m{k}__count"][0])
        else:
            block = mon.data.get("_all" if mon.kind == "state" else "counts")
            total += 0 if block is None else block.nbytes
    return total


def take(sim) -> tuple[dict, dict]:
    """(meta, arrays): everything :func:`put` needs to bring ``sim`` back to now."""
    arrays = {f"array/{name}": _read(sim, name) for name in state_names(sim.spec)}
    monitors, recorded = _monitor_parts(sim)
    arrays.update(recorded)
    meta = {"format": FORMAT, "kind": KIND, "step": int(sim.step), "monitors": monitors}
    return meta, arrays


def put(sim, meta: dict, arrays: dict) -> None:
    """Bring ``sim`` back to the snapshot ``(meta, arrays)`` (checked by the caller); the
    snapshot's arrays are copied, never taken over."""
    for name in state_names(sim.spec):
        _write(sim, name, arrays[f"array/{name}"])
    net, counts = sim.net, {}
    for k, mon in enumerate(net.monitors):
        info, m = meta["monitors"][k], f"m{k}"
        mon.data = {}
        if mon.kind == "spikes":
            fields = {f: arrays[f"monitor/{k}/{f}"] for f in ("i", "step", "b")}
            count = len(fields["i"])
            capacity = max(sim.arrays[f"{m}__i"].shape[0], count)
            for f, values in fields.items():  # new arrays: a device backend uploads them
                buf = np.zeros(capacity, values.dtype)
                buf[:count] = values
                sim.arrays[f"{m}__{f}"] = buf
            sim.arrays[f"{m}__count"][0] = count
            counts[m] = count
            if info["shown"]:
                step = fields["step"].copy()
                mon.data = {"i": fields["i"].copy(), "step": step, "t": step * net.dt,
                            "b": fields["b"].copy()}
        elif f"monitor/{k}/records" in arrays:
            mon._append(np.array(arrays[f"monitor/{k}/records"], copy=True))
    sim.step = int(meta["step"])
    sim._kernel.rewound(counts)


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidValueError(f"{what}: the snapshot name must be a non-empty string, got "
                                f"{name!r}")
    return name


def store(sim, name: str = "default") -> None:
    """Keep a snapshot of ``sim`` in memory as ``name`` (replacing one of that name)."""
    _check_name(name, "store")
    need = _snapshot_bytes(sim) - held_bytes(sim, name)
    if need > 0 and not sim._fits(need):
        raise NetworkTooLargeError(
            f"store: a snapshot of this simulator takes {_size(need)}, {sim._over(need)}; "
            "nothing was stored. Save it to a file instead (sim.save(path)), or empty the "
            "monitors first (mon.data = {}).")
    sim._snapshots[name] = take(sim)


def restore(sim, name: str = "default") -> None:
    """Put back the snapshot stored as ``name``."""
    _check_name(name, "restore")
    if name not in sim._snapshots:
        have = ", ".join(repr(n) for n in sim._snapshots)
        raise InvalidValueError(
            f"restore: no snapshot named {name!r} in this simulator; "
            + (f"stored: {have}" if have else "none is stored yet (sim.store(name) first)"))
    put(sim, *sim._snapshots[name])


def held_bytes(sim, name: str | None = None) -> int:
    """Bytes held by ``sim``'s stored snapshots (only ``name``'s if given)."""
    snaps = sim.__dict__.get("_snapshots", {})
    chosen = list(snaps.values()) if name is None else [snaps[name]] if name in snaps else []
    return sum(arr.nbytes for _meta, arrays in chosen for arr in arrays.values())


def _size(n: int) -> str:
    from .simulator import size_text
    return size_text(n)


# -- the file -----------------------------------------------------------------------------
def network_key(sim) -> str:
    """The structure key of ``sim``'s network, the same on every backend."""
    from .allocate import structure_key
    return structure_key(sim.net, _AnyBackend())


def spec_digest(spec: dict) -> str:
    """A digest of the kernel arguments: names, kinds, dimensions and roles, in order."""
    text = "\n".join(f"{name} {kind} {ndim} {role}" for name, kind, ndim, role in spec["args"])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def structure_digest(sim) -> str:
    """A digest of what gives the stored state its meaning (:data:`STRUCTURE_ROLES`: sizes,
    connectivity, delays, spike-source tables; the monitors' recorded neurons and
    intervals), hashed piece by piece (a device backend's tables are copied a piece at a
    time)."""
    h = hashlib.sha256()
    for name, _kind, ndim, role in sim.spec["args"]:
        field = name.rpartition("__")[2]
        if role not in STRUCTURE_ROLES and not (role == "monitor" and field in ("idx", "every")):
            continue
        arr = sim.arrays[name]
        if ndim == 0:
            h.update(f"{name}={np.asarray(arr).item()!r};".encode())
            continue
        h.update(f"{name} {tuple(arr.shape)} {np.dtype(arr.dtype)};".encode())
        for start in range(0, arr.shape[0], _ROWS):
            h.update(np.ascontiguousarray(_read(sim, name, start, start + _ROWS)).tobytes())
    return h.hexdigest()[:32]


def describe(sim) -> dict:
    """What :func:`load` checks a snapshot against (the ``meta`` record, less the step,
    monitors and arrays)."""
    net = sim.net
    return {"format": FORMAT, "kind": KIND, "snngen": __version__,
            "python": platform.python_version(), "backend": sim.backend.name,
            "network_key": network_key(sim), "spec_digest": spec_digest(sim.spec),
            "structure_digest": structure_digest(sim), "dt": float(net.dt),
            "batch": int(net.batch), "dtype": str(net.dtype), "seed": int(net.seed)}


from .snapshot_file import load, read, save  # noqa: E402, F401 - the file half
