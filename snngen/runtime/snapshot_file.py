"""Snapshots on disk: :func:`save` and :func:`load` of :mod:`snngen.runtime.snapshot`.

:func:`save` writes an ``.npz`` archive (no pickles) to a temporary file in the destination's
folder, flushed to disk, then renamed over the destination; :func:`load` reads the whole file
and checks all of it against the simulator before it changes anything (the module doc of
:mod:`snngen.runtime.snapshot` says what is checked).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CheckpointError, InvalidValueError
from ..files import read_npz, write_npz
from .snapshot import FORMAT, KIND, describe, put, state_names, take


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
    write_npz(path, arrays, "save")


def read(path) -> dict:
    """Every array of the archive at ``path``, all read now (a truncated or damaged member
    fails here: the zip's CRC-32 of each member is checked as it is read)."""
    return read_npz(_path(path, "load"), "load", "snapshot", "sim.save")


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
