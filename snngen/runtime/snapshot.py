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

:func:`save` writes an ``.npz`` archive (no pickles) to a temporary file in the destination's
folder, flushed to disk, then renamed over the destination: a crash mid-save leaves any
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
import json
import os
import platform
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CheckpointError, InvalidValueError, NetworkTooLargeError

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
    read = getattr(sim._kernel, "read_array", None)
    if read is not None:
        return read(name, start, stop)
    return np.array(np.asarray(sim.arrays[name])[start:stop], copy=True)


def _write(sim, name: str, values: np.ndarray) -> None:
    """Set ``sim``'s argument ``name`` to ``values`` in place (arrays handed out by
    ``sim.state`` or ``sim.synapses`` see the new values)."""
    write = getattr(sim._kernel, "write_array", None)
    if write is not None:
        write(name, values)
    else:
        sim.arrays[name][...] = values


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
    rewound = getattr(sim._kernel, "rewound", None)
    if rewound is not None:
        rewound(counts)


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
            "python": platform.python_version(), "backend": getattr(sim.backend, "name", "?"),
            "network_key": network_key(sim), "spec_digest": spec_digest(sim.spec),
            "structure_digest": structure_digest(sim), "dt": float(net.dt),
            "batch": int(net.batch), "dtype": str(net.dtype), "seed": int(net.seed)}


def _path(path, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidValueError(f"{where}: the snapshot path must be a file name (str or "
                                f"pathlib.Path), got {path!r}")
    return Path(os.fspath(path))


def save(sim, path) -> None:
    """Write a snapshot of ``sim`` now to ``path`` atomically (see the module docstring)."""
    path = _path(path, "save")
    if path.is_dir():
        raise CheckpointError(f"save: {path} is a folder; give a file name such as "
                              f"{path / 'snapshot.npz'}")
    if not path.parent.is_dir():
        raise CheckpointError(f"save: the folder {path.parent} does not exist; create it "
                              "first")
    meta, arrays = take(sim)
    meta.update(describe(sim))
    meta["arrays"] = {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fd = None  # the file object owns it now
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _sync_folder(path.parent)
    except OSError as exc:
        raise CheckpointError(f"save: cannot write {path}: {exc}; the previous file (if any) "
                              "is unchanged") from exc
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:  # a failed save leaves no temporary file behind
            Path(tmp).unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: fsync the folder); a no-op where that fails."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path) -> dict:
    """Every array of the archive at ``path``, all read now (a truncated or damaged member
    fails here: the zip's CRC-32 of each member is checked as it is read)."""
    path = _path(path, "load")
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"load: no snapshot at {path}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise CheckpointError(f"load: {path} cannot be read as a snapshot (truncated, damaged, "
                              f"or not a file written by sim.save): {type(exc).__name__}: "
                              f"{exc}; nothing was loaded") from None


def load(sim, path) -> None:
    """Bring ``sim`` to the snapshot saved at ``path``, after checking all of it."""
    data = read(path)

    def fail(why: str):
        raise CheckpointError(f"load: the snapshot {path} does not fit this simulator: {why}; "
                              "nothing was loaded")
    meta = _meta(data, fail)
    _check(sim, meta, data, fail)
    put(sim, meta, data)


def _meta(data: dict, fail) -> dict:
    """The ``meta`` record, with every array it lists present as recorded."""
    if "meta" not in data:
        fail("it has no 'meta' entry (not a file written by sim.save)")
    try:
        meta = json.loads(bytes(data["meta"]).decode())
        recorded = meta["arrays"]
        kind, version = meta.get("kind"), meta.get("format")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        fail(f"its description ('meta') cannot be read ({type(exc).__name__}: {exc})")
    if kind != KIND:
        fail(f"it is not a simulator snapshot (kind {kind!r}; a Trainer checkpoint is loaded "
             "with Trainer.load)")
    if not isinstance(version, int) or version > FORMAT:
        fail(f"it was written in format {version!r} by snngen {meta.get('snngen', '?')}; this "
             f"snngen ({__version__}) reads formats <= {FORMAT}")
    if not isinstance(recorded, dict) or set(recorded) != set(data) - {"meta"}:
        fail("its arrays are not the ones its description lists (the file is damaged)")
    for key, entry in recorded.items():
        if not (isinstance(entry, list) and len(entry) == 2) or \
                list(data[key].shape) != list(entry[0]) or str(data[key].dtype) != entry[1]:
            fail(f"the array '{key}' has shape {data[key].shape} ({data[key].dtype}), its "
                 f"record says {entry!r} (the file is damaged)")
    return meta


def _check(sim, meta: dict, data: dict, fail) -> None:
    """Everything in the snapshot against ``sim``; ``fail(why)`` on the first mismatch."""
    mine = describe(sim)
    versions = "" if (meta.get("snngen"), meta.get("python")) == (__version__,
                                                                  mine["python"]) else \
        (f" (written by snngen {meta.get('snngen')} under Python {meta.get('python')}; this "
         f"is snngen {__version__} under Python {mine['python']}, and the structure key "
         "includes both)")
    for field, what in (("dtype", "precision (dtype)"), ("batch", "batch"),
                        ("dt", "time step (dt)"), ("seed", "seed")):
        if meta.get(field) != mine[field]:
            fail(f"its {what} is {meta.get(field)!r}, this network's {mine[field]!r}; build "
                 f"the network with {field}={meta.get(field)!r}"
                 + (" (Poisson inputs and connectivity follow the seed)"
                    if field == "seed" else ""))
    if meta.get("network_key") != mine["network_key"]:
        fail(f"it was saved from another network (structure key {meta.get('network_key')}, "
             f"this one's {mine['network_key']}: other models, populations, projections or "
             f"monitors){versions}")
    if meta.get("spec_digest") != mine["spec_digest"]:
        fail(f"its kernel arguments differ from this simulator's{versions}")
    expected = {f"array/{name}": sim.arrays[name] for name in state_names(sim.spec)}
    have = {k for k in data if k.startswith("array/")}
    if have != set(expected):
        extra, missing = sorted(have - set(expected)), sorted(set(expected) - have)
        fail("its arrays differ from this simulator's"
             + (f" (extra: {extra})" if extra else "")
             + (f" (missing: {missing})" if missing else ""))
    for key, arr in expected.items():
        got = data[key]
        if tuple(got.shape) != tuple(arr.shape) or got.dtype != np.dtype(arr.dtype):
            fail(f"the array '{key[6:]}' has shape {tuple(got.shape)} ({got.dtype}) there, "
                 f"{tuple(arr.shape)} ({np.dtype(arr.dtype)}) here (other population sizes "
                 "or connectivity?)")
    if meta.get("structure_digest") != mine["structure_digest"]:
        fail("its connectivity, delays, spike-source times or recorded neurons differ from "
             "this network's (another connection rule, explicit table, delay, input or "
             "monitor)")
    step = meta.get("step")
    from .simulator import MAX_STEPS
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= MAX_STEPS:
        fail(f"its step {step!r} is not a whole number in [0, 2**31 - 1]")
    _check_values(sim, data, step, fail)
    _check_monitors(sim, meta, data, step, fail)


def _check_values(sim, data: dict, step: int, fail) -> None:
    """Entries the kernels use as indices are in range (a damaged or edited file must not
    make a kernel read out of bounds), and spike-source cursors stand where the kernels
    leave them at ``step``: after every event of an earlier step (the kernels only look
    forward from the cursor)."""
    roles = {name: role for name, _kind, _ndim, role in sim.spec["args"]}
    for name in state_names(sim.spec):
        got, role = data[f"array/{name}"], roles[name]
        why = "out of range"
        if role == "ring":  # batch x slots x neurons: neuron indices
            bad = (got < 0) | (got >= got.shape[2])
        elif role == "ringn":  # spikes per slot
            n = sim.arrays[name[:-1]].shape[2]
            bad = (got < 0) | (got > n)
        elif role == "cursor":  # position in the spike-source table
            events = sim.arrays[f"{name.rpartition('__')[0]}__ev_step"]
            bad = got != np.searchsorted(events, step, side="left")
            why = f"not the position of step {step} in the spike-source table"
        else:
            continue
        if np.any(bad):
            fail(f"the array '{name}' holds {got.flat[int(np.flatnonzero(bad)[0])]} at "
                 f"position {int(np.flatnonzero(bad)[0])}, {why} (the file is damaged)")


def _check_monitors(sim, meta: dict, data: dict, step: int, fail) -> None:
    from .allocate import records
    net = sim.net
    infos = meta.get("monitors")
    if not isinstance(infos, list) or len(infos) != len(net.monitors):
        fail("its monitors differ from this network's")
    dtype = np.dtype(net.dtype)
    for k, (mon, info) in enumerate(zip(net.monitors, infos)):
        what = f"monitor {k} ({mon.kind} of '{mon.pop.name}')"
        if not isinstance(info, dict) or info.get("kind") != mon.kind or \
                not isinstance(info.get("shown"), bool):
            fail(f"{what}: its record there is {info!r}")
        keys = {key for key in data if key.startswith(f"monitor/{k}/")}
        if mon.kind == "spikes":
            want = {f"monitor/{k}/{f}": t for f, t in (("i", np.int32), ("step", np.int64),
                                                      ("b", np.int32))}
            if keys != set(want) or any(data[key].dtype != t or data[key].ndim != 1
                                        for key, t in want.items()):
                fail(f"{what}: its spikes there are not three 1-D arrays i, step, b")
            i, st, b = (data[f"monitor/{k}/{f}"] for f in ("i", "step", "b"))
            if not len(i) == len(st) == len(b):
                fail(f"{what}: its arrays i, step and b differ in length")
            if np.any((i < 0) | (i >= mon.pop.n)) or np.any((b < 0) | (b >= net.batch)) or \
                    np.any((st < 0) | (st >= step)):
                fail(f"{what}: it holds spikes out of range (the file is damaged)")
            continue
        key = f"monitor/{k}/records"
        if keys - {key} or (info["shown"] != (key in keys)):
            fail(f"{what}: its recorded arrays there are {sorted(keys)}")
        if key not in keys:
            continue
        got = data[key]
        if mon.kind == "state":
            width = mon.pop.n if mon.indices is None else len(mon.indices)
            ok = got.ndim == 4 and got.shape[0] == net.batch and \
                got.shape[2:] == (len(mon.variables), width) and got.dtype == dtype and \
                got.shape[1] <= records(0, step, mon.every)
        else:
            ok = got.ndim == 2 and got.shape[0] == net.batch and got.shape[1] <= step and \
                got.dtype == np.int32
        if not ok:
            fail(f"{what}: its records there have shape {got.shape} ({got.dtype}), which "
                 f"does not fit {step} steps of this monitor")
