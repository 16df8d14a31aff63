"""Checkpoints of a :class:`~snngen.train.Trainer`: written atomically, verified before loading.

A checkpoint is an ``.npz`` archive of everything a run resumes from (weights, parameters,
the synapse tables, Adam's moments and step, the epoch, the RNG state) and a ``meta`` entry
(JSON): the snngen version, the neuron model (name and structural key), the input target,
the sizes (inputs, every hidden layer, outputs), the precision, the names of the model's
parameters and of the trained ones, and the name, shape and dtype of every array.

:func:`save` writes to a temporary file in the destination's folder, flushes it to disk and
renames it over the destination (``os.replace``): a crash mid-save leaves the previous file
intact. :func:`load` reads and checks the whole archive against the trainer's network before
it changes anything: an unreadable file (truncated, not a zip, an array missing) or a
mismatch (another model, other sizes, another layer count, an array of another shape) raises
:class:`~snngen.errors.CheckpointError` and leaves the trainer exactly as it was. Archives
written before ``meta`` existed load too: every array is still checked against the network.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from .. import connectivity as conn
from ..errors import CheckpointError, InvalidValueError, SnngenError
from ..files import read_npz, write_npz
from .checks import check_csr

FORMAT = 2  # 1: the archives before "meta" (same arrays)


def describe(trainer) -> dict:
    """The ``meta`` record of ``trainer``'s network (without the array list)."""
    net = trainer.net
    model = net.lm.discrete.model
    return {"format": FORMAT, "snngen": __version__, "model": model.name,
            "model_key": model.key(), "input_target": net.input_target, "n_in": net.n_in,
            "hidden": list(net.sizes), "n_out": net.n_out, "layers": len(net.sizes),
            "dtype": str(net.bptt.dtype), "params": list(net._names),
            "trainable": list(net._trainable)}


def _path(path, where: str) -> Path:
    """A checkpoint's path: a str or os.PathLike naming a file."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InvalidValueError(f"{where}: the checkpoint path must be a file name (str or "
                                f"pathlib.Path), got {path!r}")
    return Path(os.fspath(path))


def save(trainer, path, host) -> None:
    """Write ``trainer``'s state to ``path`` atomically (see the module docstring);
    ``host`` copies a device array to NumPy."""
    path = _path(path, "Trainer.save")
    net = trainer.net
    state = {f"weight/{k}": host(v) for k, v in net.weights.items()}
    state.update({f"param/{k}": v for k, v in net.params.items()})
    opt = trainer.opt.state_dict()
    state.update({f"adam_m/{k}": host(v) for k, v in opt["m"].items()})
    state.update({f"adam_v/{k}": host(v) for k, v in opt["v"].items()})
    state["adam_t"] = np.array(opt["t"])
    state["epoch"] = np.array(trainer.epoch)
    for name, csr in net.csrs.items():  # weights mean nothing without their synapses
        state[f"{name}/indptr"], state[f"{name}/indices"] = csr.indptr, csr.indices
        state[f"{name}/shape"] = np.array([csr.n_pre, csr.n_post])
    state["rng"] = np.frombuffer(repr(trainer.rng.bit_generator.state).encode(), np.uint8)
    meta = describe(trainer)
    meta["arrays"] = {k: [list(np.shape(v)), str(np.asarray(v).dtype)] for k, v in state.items()}
    state["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    if path.is_dir():
        raise CheckpointError(f"Trainer.save: {path} is a folder; give a file name such as "
                              f"{path / 'checkpoint.npz'}")
    if not path.parent.is_dir():
        raise CheckpointError(f"Trainer.save: the folder {path.parent} does not exist; "
                              "create it first")
    write_npz(path, state, "Trainer.save")


def read(path) -> dict:
    """Every array of the archive at ``path`` (all read now: a truncated member fails here,
    not halfway through loading)."""
    return read_npz(_path(path, "Trainer.load"), "Trainer.load", "checkpoint", "Trainer.save")


def load(trainer, path) -> None:
    """Replace ``trainer``'s state with the checkpoint at ``path``, after checking all of it
    (see the module docstring)."""
    data = read(path)
    net = trainer.net
    fail = _failer(path)
    if "meta" in data:
        _check_meta(trainer, data, fail)
    csrs = {}
    for name, old in net.csrs.items():
        for part in ("indptr", "indices", "shape"):
            _need(data, f"{name}/{part}", fail)
        shape = tuple(int(v) for v in np.ravel(data[f"{name}/shape"]))
        if shape != (old.n_pre, old.n_post):
            fail(f"the synapses '{name}' connect {shape[0]} -> {shape[-1]} neurons there, "
                 f"{old.n_pre} -> {old.n_post} in this network")
        csr = conn.CSR(old.n_pre, old.n_post, data[f"{name}/indptr"].copy(),
                       data[f"{name}/indices"].copy(), None)
        try:
            check_csr(csr, old.n_pre, old.n_post, f"'{name}'", "Trainer.load")
        except SnngenError as exc:
            fail(str(exc))
        csrs[name] = csr
    expected = {k: (csrs[_table_of(k)].n_synapses,) for k in net.weights if k != "w_out"}
    expected["w_out"] = tuple(np.shape(net.weights["w_out"]))
    _same_keys("weight", set(expected), data, fail)
    weights = {k: _array(data, f"weight/{k}", shape, net.bptt.dtype, fail)
               for k, shape in expected.items()}
    _same_keys("param", set(net.params), data, fail)
    params = {k: _array(data, f"param/{k}", v.shape, v.dtype, fail)
              for k, v in net.params.items()}
    for k in net.trainable:  # trained in log space
        if not np.all(params[k] > 0):
            fail(f"the trained parameter '{k}' holds values <= 0 there")
    from ..runtime.validate import check_parameter_values
    for layer in range(len(net.sizes)):
        values = {p: params[p if layer == 0 else f"{p}:{layer}"] for p in net._names}
        try:
            check_parameter_values(net.lm.discrete.model, values, f"hidden layer {layer}")
        except SnngenError as exc:
            fail(str(exc))
    logs = {f"log_{p}": params[p].shape for p in net.trainable}
    moments = {}
    for part in ("adam_m", "adam_v"):
        keys = {k.partition("/")[2] for k in data if k.startswith(part + "/")}
        unknown = keys - set(expected) - set(logs)
        if unknown:
            fail(f"Adam's state there has moments of {sorted(unknown)}, which this network "
                 "does not train")
        moments[part] = {k: _array(data, f"{part}/{k}", expected.get(k) or logs[k],
                                   net.bptt.dtype if k in expected else None, fail)
                         for k in sorted(keys)}
    if set(moments["adam_m"]) != set(moments["adam_v"]):
        fail("Adam's first and second moments name different arrays")
    counters = {k: _counter(data, k, fail) for k in ("adam_t", "epoch")}
    rng_state = _rng_state(trainer, data, fail)
    # everything checked: only now is the trainer changed
    xp = net.xp

    def where(value):  # weights, and Adam's state, live on the backend's device
        return value if xp is np else xp.asarray(value)
    net.csrs.update(csrs)
    net.weights.update({k: where(v) for k, v in weights.items()})
    for k, v in params.items():
        net.params[k] = v
    trainer.opt.load_state_dict({"t": counters["adam_t"], "m": moments["adam_m"],
                                 "v": moments["adam_v"]})
    trainer.opt.m = {k: where(v) if k in expected else v for k, v in trainer.opt.m.items()}
    trainer.opt.v = {k: where(v) if k in expected else v for k, v in trainer.opt.v.items()}
    trainer.epoch = counters["epoch"]
    trainer.rng.bit_generator.state = rng_state


def _table_of(weight: str) -> str:
    """The synapse table of a weight array: w_in -> in_csr, w_rec:1 -> rec_csr:1."""
    base, colon, layer = weight.partition(":")
    return f"{base[2:]}_csr{colon}{layer}"


def _failer(path):
    def fail(why: str):
        raise CheckpointError(f"Trainer.load: the checkpoint {path} does not fit this "
                              f"trainer: {why}; nothing was loaded")
    return fail


def _need(data: dict, key: str, fail) -> None:
    if key not in data:
        fail(f"the array '{key}' is missing (a damaged file, or one from another network)")


def _check_meta(trainer, data: dict, fail) -> None:
    """The recorded description against the trainer's network, and every recorded array."""
    try:
        meta = json.loads(bytes(data["meta"]).decode())
        arrays = meta["arrays"]
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"its description ('meta') cannot be read ({exc})")
    if not isinstance(meta.get("format"), int) or meta["format"] > FORMAT:
        fail(f"it was written in format {meta.get('format')!r} by snngen "
             f"{meta.get('snngen', '?')}; this snngen ({__version__}) reads formats <= {FORMAT}")
    for key, (shape, dtype) in arrays.items():
        if key not in data:
            fail(f"the array '{key}' is missing (the file is damaged)")
        if list(data[key].shape) != list(shape) or str(data[key].dtype) != dtype:
            fail(f"the array '{key}' has shape {data[key].shape} ({data[key].dtype}), its "
                 f"record says {tuple(shape)} ({dtype}) (the file is damaged)")
    mine = describe(trainer)
    versions = "" if meta.get("snngen") == __version__ else \
        f" (written by snngen {meta.get('snngen')}, this is {__version__})"
    if (meta.get("model"), meta.get("model_key")) != (mine["model"], mine["model_key"]):
        fail(f"it holds a network of neuron model '{meta.get('model')}' (key "
             f"{meta.get('model_key')}), this one is '{mine['model']}' (key "
             f"{mine['model_key']}){versions}; build the network from the same model")
    for field, what in (("input_target", "input target"), ("n_in", "inputs (n_in)"),
                        ("layers", "hidden layers"), ("hidden", "hidden sizes (n_hidden)"),
                        ("n_out", "outputs (n_out)"), ("dtype", "precision (dtype)"),
                        ("params", "model parameters"), ("trainable", "trained parameters")):
        if meta.get(field) != mine[field]:
            fail(f"its {what} {meta.get(field)!r} differ from this network's {mine[field]!r}; "
                 f"build the network with {field}={meta.get(field)!r}")


def _same_keys(kind: str, wanted: set, data: dict, fail) -> None:
    have = {k.partition("/")[2] for k in data if k.startswith(kind + "/")}
    if have != wanted:
        extra, missing = sorted(have - wanted), sorted(wanted - have)
        fail(f"its {kind}s are {sorted(have)}, this network's {sorted(wanted)}"
             + (f" (extra: {extra})" if extra else "") + (f" (missing: {missing})"
                                                         if missing else "")
             + "; another number of hidden layers or other parameters?")


def _array(data: dict, key: str, shape: tuple, dtype, fail) -> np.ndarray:
    """A copy of ``data[key]``, of ``shape`` (and ``dtype`` unless None), finite."""
    _need(data, key, fail)
    value = data[key]
    if tuple(value.shape) != tuple(shape):
        fail(f"the array '{key}' has shape {value.shape} there, this network's has "
             f"{tuple(shape)}")
    if value.dtype.kind != "f" or (dtype is not None and value.dtype != np.dtype(dtype)):
        fail(f"the array '{key}' is {value.dtype} there, this network's is "
             f"{np.dtype(dtype) if dtype is not None else 'a float'}; build the network with "
             f"dtype='{value.dtype}'")
    if not np.all(np.isfinite(value)):
        fail(f"the array '{key}' holds NaN or infinite values")
    return value.copy()


def _counter(data: dict, key: str, fail) -> int:
    _need(data, key, fail)
    value = data[key]
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
        fail(f"'{key}' must be a whole number >= 0, got {value!r}")
    return int(value)


def _rng_state(trainer, data: dict, fail) -> dict:
    """The saved state of the trainer's random generator, tried on a scratch generator."""
    _need(data, "rng", fail)
    try:
        state = ast.literal_eval(bytes(data["rng"]).decode())
        type(trainer.rng.bit_generator)().state = state
    except (ValueError, TypeError, SyntaxError, UnicodeDecodeError, KeyError,
            MemoryError, RecursionError) as exc:
        fail(f"the random generator's state cannot be restored ({type(exc).__name__}: {exc})")
    return state
