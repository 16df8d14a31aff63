"""Checks of what users hand to training code: sizes, spike arrays, labels, synapse tables.

Every entry point of :mod:`snngen.train` (fit, predict, run, simulate, feed, load...) checks
its data here before any work or allocation, so that a compiled kernel (which reads its
arrays without bounds checks) never sees an index it could run past, and so that each rule is
written once. Each check raises :class:`~snngen.errors.ShapeError` (shape, length, dtype) or
:class:`~snngen.errors.InvalidValueError` (value out of range, not finite, wrong type) with a
message naming what was wrong, where (``where``: the call that received it) and how to fix it.

>>> import numpy as np
>>> check_spikes(np.zeros((5, 2, 3)), 3, "fit", "n_in=3")
(5, 2)
>>> check_spikes(np.zeros((5, 2, 4)), 3, "fit", "n_in=3")
Traceback (most recent call last):
...
snngen.errors.ShapeError: fit: the input spikes have 4 channels (shape (5, 2, 4): steps, \
samples, channels) but the network reads 3 (n_in=3); pass a (steps, samples, 3) array
"""

from __future__ import annotations

import math
import numbers

import numba
import numpy as np

from ..errors import InvalidValueError, ShapeError


def as_count(value, name: str, where: str, minimum: int = 1,
             maximum: int | None = None) -> int:
    """``value`` as an int >= ``minimum`` (whole floats such as 8.0 pass; bools do not).

    >>> as_count(4.0, "n_out", "RecurrentClassifier")
    4
    >>> as_count(0, "n_out", "RecurrentClassifier")
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: RecurrentClassifier: n_out must be an integer >= 1, got 0
    """
    from ..runtime.validate import is_whole, shown
    if not is_whole(value) or value < minimum:
        raise InvalidValueError(f"{where}: {name} must be an integer >= {minimum}, got "
                                f"{shown(value)}")
    if maximum is not None and value > maximum:
        raise InvalidValueError(f"{where}: {name} must be at most {maximum}, got "
                                f"{shown(value)}")
    return int(value)


def as_real(value, name: str, where: str, low: float | None = None,
            high: float | None = None, open_low: bool = False,
            open_high: bool = False) -> float:
    """``value`` as a finite float within ``[low, high]`` (ends excluded where ``open_*``).

    >>> as_real(0.5, "recurrent_density", "RecurrentClassifier", 0, 1)
    0.5
    >>> as_real(float("nan"), "lr", "Trainer", 0, open_low=True)
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: Trainer: need lr > 0 (a finite number), got nan
    """
    from ..runtime.validate import beyond_float, shown
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and \
        not beyond_float(value)  # float(10**400) overflows
    v = float(value) if ok else float("nan")
    ok = ok and np.isfinite(v) and (low is None or (v > low if open_low else v >= low)) and \
        (high is None or (v < high if open_high else v <= high))
    if not ok:
        lo_op, hi_op = "<" if open_low else "<=", "<" if open_high else "<="
        if low is not None and high is not None:
            cond = f"{low:g} {lo_op} {name} {hi_op} {high:g}"
        elif low is not None:
            cond = f"{name} {'>' if open_low else '>='} {low:g}"
        elif high is not None:
            cond = f"{name} {hi_op} {high:g}"
        else:
            cond = f"{name} finite"
        raise InvalidValueError(f"{where}: need {cond} (a finite number), got {shown(value)}")
    return v


def as_names(value, name: str, where: str, example: str) -> tuple:
    """``value``, a list or tuple of strings (names), as a tuple.

    >>> as_names(["taum"], "trainable_params", "RecurrentClassifier", "('taum',)")
    ('taum',)
    >>> as_names("taum", "trainable_params", "RecurrentClassifier", "('taum',)")
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: RecurrentClassifier: trainable_params must be a list or \
tuple of names, e.g. ('taum',), got 'taum'
    """
    from ..runtime.validate import shown
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidValueError(f"{where}: {name} must be a list or tuple of names, e.g. "
                                f"{example}, got {shown(value)}")
    return tuple(value)


def first_nonfinite(a) -> tuple | None:
    """The index of the first NaN or infinite entry of a float array (NumPy or a device
    array), or None. One summing pass when everything is finite (no temporary of the array's
    size); the entry is searched for only when the sum is not finite.

    >>> first_nonfinite(np.array([[0.0, 1.0], [np.inf, 0.0]]))
    (1, 0)
    """
    if a.dtype.kind not in "fc" or a.size == 0 or bool(np.isfinite(a.sum(dtype=np.float64))):
        return None
    flat = a.reshape(a.shape[0], -1) if a.ndim else a.reshape(1, 1)
    for r in range(flat.shape[0]):  # row by row: temporaries of one row
        bad = ~np.isfinite(flat[r])
        if bool(bad.any()):
            return tuple(int(i) for i in np.unravel_index(r * flat.shape[1] +
                                                          int(bad.argmax()), a.shape))
    return None  # the sum overflowed on finite values


def check_finite(a, name: str, where: str) -> None:
    """Refuse NaN or infinite entries of ``a``, naming the first one."""
    bad = first_nonfinite(a)
    if bad is not None:
        raise InvalidValueError(f"{where}: {name} holds {a[bad]} at index {bad}; every entry "
                                "must be finite (NaN is no spike and no value: replace it, "
                                "e.g. np.nan_to_num)")


def check_spikes(x, n_in: int, where: str, n_in_from: str) -> tuple:
    """Input spikes: a (steps, samples, channels) array of booleans or numbers (nonzero =
    spike) with ``channels == n_in`` (``n_in_from`` says where that number was set), at least
    one step and one sample, every entry finite. Returns (steps, samples)."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise ShapeError(f"{where}: the input spikes must be an array (steps, samples, "
                         f"channels), got {type(x).__name__}; convert with np.asarray")
    if dtype.kind not in "biuf":
        raise ShapeError(f"{where}: the input spikes must be booleans or numbers, got dtype "
                         f"{dtype}; convert with .astype(np.float32)")
    if dtype.kind == "f" and dtype.itemsize not in (4, 8):  # the kernels have no float16
        raise ShapeError(f"{where}: the input spikes are {dtype}, which the compiled kernels "
                         "do not read; convert with .astype(np.float32)")
    if len(shape) != 3:
        raise ShapeError(f"{where}: the input spikes must have 3 axes (steps, samples, "
                         f"channels), got shape {tuple(shape)}; a single sample is "
                         "x[:, None, :]")
    if shape[2] != n_in:
        raise ShapeError(f"{where}: the input spikes have {shape[2]} channels (shape "
                         f"{tuple(shape)}: steps, samples, channels) but the network reads "
                         f"{n_in} ({n_in_from}); pass a (steps, samples, {n_in}) array")
    if shape[0] < 1 or shape[1] < 1:
        raise ShapeError(f"{where}: the input spikes have shape {tuple(shape)} (steps, "
                         "samples, channels): at least one step and one sample are needed")
    check_finite(x, "the input spikes", where)
    return int(shape[0]), int(shape[1])


def check_labels(labels, n_samples: int, n_classes: int, where: str) -> np.ndarray:
    """Class labels: ``n_samples`` integers (one per sample, in the samples' order) in
    ``0 .. n_classes - 1``. Returns them as an int64 array.

    >>> check_labels([0, 2, 1], 3, 3, "fit").tolist()
    [0, 2, 1]
    >>> check_labels([0, 3], 2, 3, "fit")
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: fit: label 3 of sample 1 is not a class of this network \
(n_out=3 classes: 0 .. 2); relabel the data or build the network with more outputs
    """
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise ShapeError(f"{where}: labels must be integers, got dtype {arr.dtype}; convert "
                         "whole-number labels with .astype(int)")
    if arr.shape != (n_samples,):
        raise ShapeError(f"{where}: there are {n_samples} samples (axis 1 of the inputs) but "
                         f"the labels have shape {arr.shape}; give one label per sample, in "
                         "the same order")
    bad = np.flatnonzero((arr < 0) | (arr >= n_classes))
    if bad.size:
        raise InvalidValueError(f"{where}: label {arr[bad[0]]} of sample {bad[0]} is not a "
                                f"class of this network (n_out={n_classes} classes: 0 .. "
                                f"{n_classes - 1}); relabel the data or build the network "
                                "with more outputs")
    return arr.astype(np.int64, copy=False)


def check_shape(a, shape: tuple, name: str, where: str, finite: bool = True) -> None:
    """``a`` is an array of numbers of exactly ``shape`` (and finite, unless told not)."""
    got = getattr(a, "shape", None)
    if got is None:
        a = np.asarray(a)
        got = a.shape
    if tuple(got) != tuple(shape):
        raise ShapeError(f"{where}: {name} must have shape {tuple(shape)}, got {tuple(got)}")
    if getattr(a, "dtype", np.dtype(float)).kind not in "biuf":
        raise ShapeError(f"{where}: {name} must hold numbers, got dtype {a.dtype}")
    if finite:
        check_finite(a, name, where)


def check_fits(n_bytes: float, what: str, where: str,
               fix: str = "use fewer steps, samples or channels") -> None:
    """Refuse, before allocating it, an array of ``n_bytes`` that memory cannot hold."""
    from ..errors import NetworkTooLargeError
    from ..runtime.simulator import available_bytes, size_text
    available = available_bytes()
    if n_bytes > available:
        raise NetworkTooLargeError(f"{where}: {what} would take {size_text(n_bytes)}, more "
                                   f"than the {size_text(available)} of memory available; "
                                   f"{fix}")


def check_array_fits(shape: tuple, dtype, what: str, where: str,
                     fix: str = "use fewer steps, samples or channels") -> None:
    """Refuse, before allocating it, an array of ``shape`` (Python ints: no overflow) and
    ``dtype`` that memory cannot hold (:func:`check_fits`), or that NumPy cannot create even
    though it holds nothing: NumPy multiplies the axes that are not empty and refuses more
    than 2**63 - 1 bytes ("Maximum allowed dimension exceeded", "array is too big"), so a
    raster of 10**30 steps for zero samples is a ValueError from ``np.zeros``.

    >>> check_array_fits((2**70, 2, 0), np.float64, "a raster of 2**70 steps x (2, 0)",
    ...                  "spike_raster")
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: spike_raster: a raster of 2**70 steps x (2, 0) holds \
nothing, but NumPy cannot create it (its non-empty axes would take over 2**63 - 1 bytes): at \
most 576460752303423487 along its first axis; use fewer steps, samples or channels
    """
    itemsize = np.dtype(dtype).itemsize
    check_fits(itemsize * math.prod(shape), what, where, fix)
    limit = int(np.iinfo(np.intp).max)
    if itemsize * math.prod(d for d in shape if d) > limit:
        rest = itemsize * math.prod(d for d in shape[1:] if d)
        raise InvalidValueError(f"{where}: {what} holds nothing, but NumPy cannot create it "
                                f"(its non-empty axes would take over 2**63 - 1 bytes): at "
                                f"most {limit // rest} along its first axis; {fix}")


def check_tables_fit(tables: dict, extra: dict, where: str) -> None:
    """Refuse, before any synapse is drawn, synapse tables (``name: (rule, n_pre, n_post,
    seed)``) whose expected synapses, with their float64 weights and the ``extra`` arrays
    (``description: bytes``), memory cannot hold (drawing 1e15 synapses would otherwise run
    for hours first)."""
    from .. import connectivity as conn
    per = conn.BYTES_PER_SYNAPSE + 8  # index and drawn weight, and the kernels' weight copy
    total, sizes = sum(extra.values()), list(extra)
    for name, (rule, n_pre, n_post, _) in tables.items():
        n_syn = conn.expected_synapses(rule, n_pre, n_post)
        total += per * n_syn + 8 * (n_pre + 1)
        sizes.append(f"{name} {n_pre} x {n_post}: {n_syn:,} synapses")
    check_fits(total, f"the synapse tables and weights ({'; '.join(sizes)})", where,
               "use fewer neurons, inputs or outputs, or sparser connections (input_fan_in=, "
               "recurrent_fan_in=, recurrent_density=)")


def check_broadcast(a, shape: tuple, name: str, where: str) -> None:
    """``a`` is finite numbers that broadcast to exactly ``shape`` (a mask, an initial state).

    >>> check_broadcast(np.ones(3), (2, 4), "mask", "feed")
    Traceback (most recent call last):
    ...
    snngen.errors.ShapeError: feed: mask must broadcast to (2, 4), got shape (3,)
    """
    got = np.shape(a)
    try:
        ok = len(got) <= len(shape) and np.broadcast_shapes(got, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"{where}: {name} must broadcast to {tuple(shape)}, got shape {got}")
    check_shape(a, got, name, where)


def check_csr(csr, n_pre: int, n_post: int, name: str, where: str) -> None:
    """A synapse table the kernels may index without bounds checks: ``n_pre`` rows of post
    neurons in ``0 .. n_post - 1``, row pointers from 0, non-decreasing, ending at the number
    of synapses, post neurons ascending within each row; an all-to-all count
    (``n_pre * n_post`` synapses, which the kernels read as whole rows) has each post neuron
    once per row."""
    if not all(hasattr(csr, a) for a in ("n_pre", "n_post", "indptr", "indices")):
        raise ShapeError(f"{where}: {name} must be a synapse table (snngen.connectivity.CSR, "
                         f"e.g. from build_csr), got {type(csr).__name__}")
    if (csr.n_pre, csr.n_post) != (n_pre, n_post):
        raise ShapeError(f"{where}: {name} connects {csr.n_pre} -> {csr.n_post} neurons, "
                         f"expected {n_pre} -> {n_post}; build it with build_csr(rule, "
                         f"{n_pre}, {n_post}, seed)")
    ptr, idx = np.asarray(csr.indptr), np.asarray(csr.indices)
    why = None
    if ptr.shape != (n_pre + 1,) or ptr.dtype.kind not in "iu" or idx.ndim != 1 or \
            idx.dtype.kind not in "iu":
        why = (f"row pointers of shape {ptr.shape} ({ptr.dtype}) and post neurons of shape "
               f"{idx.shape} ({idx.dtype}); expected integer arrays ({n_pre + 1},) and "
               "(synapses,)")
    else:
        full = idx.size == n_pre * n_post
        fault = _table_fault(ptr, idx, n_post, full)
        if fault == 1:
            why = (f"row pointers must rise from 0 to the number of synapses ({idx.size}); "
                   f"they run from {ptr[0]} to {ptr[-1]}")
        elif fault == 2:
            why = (f"post neurons must lie in 0 .. {n_post - 1}; found {idx.min()} .. "
                   f"{idx.max()}")
        elif fault == 3:
            why = "post neurons must ascend within each row" + \
                " (each once: the table has the all-to-all count)" * full
    if why:
        raise ShapeError(f"{where}: {name} is not a valid synapse table: {why}")


@numba.njit(cache=True)
def _table_fault(indptr, indices, n_post, full):
    """0 for a valid table, else what is wrong first: 1 row pointers, 2 a post neuron out of
    range, 3 the order within a row. One pass, nothing allocated (tables of millions of
    synapses are checked before every training run)."""
    n_pre = indptr.shape[0] - 1
    if indptr[0] != 0 or indptr[n_pre] != indices.shape[0]:
        return 1
    for i in range(n_pre):  # rising pointers first: the pass below then stays in bounds
        if indptr[i + 1] < indptr[i]:
            return 1
    for i in range(n_pre):
        prev = -1
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j < 0 or j >= n_post:
                return 2
            if j < prev or (full and j == prev):
                return 3
            prev = j
    return 0


def check_weights(w, csr, name: str, where: str) -> None:
    """Per-synapse weights: one finite number per synapse of ``csr``, in CSR order."""
    check_shape(w, (csr.n_synapses,), f"{name} (one weight per synapse)", where)


def check_csr_once(seen: dict, csr, n_pre: int, n_post: int, name: str, where: str) -> None:
    """:func:`check_csr`, once per table and sizes: ``seen`` (kept by the caller, e.g. a
    kernels object) remembers the tables that passed (tables are read-only; training runs
    the same ones every step, and a check reads every synapse)."""
    entry = seen.get(id(csr))
    if entry is not None and entry[0] is csr and entry[1:] == (n_pre, n_post):
        return
    check_csr(csr, n_pre, n_post, name, where)
    if len(seen) >= 32:  # a bounded memory (it holds the tables alive)
        seen.clear()
    seen[id(csr)] = (csr, n_pre, n_post)


def model_parameter_names(lm) -> set:
    """The names a LearningModel's kernels need values for: its parameters and those its
    propagators (time constants of the exact integrator) are made of."""
    return {p.name for p in lm.params} | {s.name for p in lm.discrete.propagators
                                          for s in p.a.free_symbols}


def check_model_params(lm, params, where: str, per_neuron: int | bool = False) -> None:
    """A value for every parameter ``lm``'s kernels read (:func:`model_parameter_names`),
    no unknown name (a misspelt name would be ignored), each a finite number, or with
    ``per_neuron=n`` a number or one per neuron (shape (n,))."""
    from ..errors import MissingParameterError, did_you_mean
    if not isinstance(params, dict):
        raise InvalidValueError(f"{where}: params must be a dict of parameter values, got "
                                f"{type(params).__name__}")
    names = model_parameter_names(lm)
    model = lm.discrete.model.name
    missing = names - set(params)
    if missing:
        raise MissingParameterError(f"{where}: no value for parameter(s) {sorted(missing)} of "
                                    f"model '{model}'; add them to params")
    for key in params:
        if key not in names:
            raise InvalidValueError(f"{where}: '{key}' is not a parameter of model '{model}' "
                                    f"(its parameters: {sorted(names)})."
                                    + did_you_mean(str(key), names))
    shapes = ((),) if per_neuron is False else ((), (1,), (int(per_neuron),))
    for key, value in params.items():
        v = np.asarray(value)
        if v.dtype.kind not in "biuf" or v.shape not in shapes:
            one = "a number" if per_neuron is False else \
                f"a number or one per neuron (shape ({int(per_neuron)},))"
            raise InvalidValueError(f"{where}: parameter '{key}' must be {one}, got "
                                    f"{value!r}")
        check_finite(v, f"parameter '{key}'", where)


def check_run(kernels, params: dict, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt,
              where: str) -> tuple:
    """Everything a forward (and backward) pass of the BPTT kernels ``kernels`` (``lm``)
    reads: ``inputs`` (T, B, n_in) with n_in = the rows of ``w_in_csr``; ``s0`` (B, n, k)
    with n the population of ``w_rec_csr`` (n x n) and of ``w_in_csr``'s columns and k the
    model's states; one weight per synapse; a value (scalar or one per neuron) for every
    parameter of the model; dt > 0. Returns (steps, batch, n)."""
    seen = kernels.__dict__.setdefault("_checked_tables", {})
    n = getattr(w_rec_csr, "n_pre", None)  # the table check refuses anything else
    check_csr_once(seen, w_rec_csr, n, n, "w_rec_csr (recurrent synapses)", where)
    n_in = getattr(w_in_csr, "n_pre", None)
    check_csr_once(seen, w_in_csr, n_in, n, "w_in_csr (input synapses)", where)
    steps, batch = check_spikes(inputs, n_in, where, f"w_in_csr has {n_in} rows")
    k = len(kernels.lm.states)
    check_shape(s0, (batch, n, k), f"s0 (initial state: samples, neurons, the model's {k} "
                f"state(s) {[s.name for s in kernels.lm.states]})", where)
    check_weights(w_in, w_in_csr, "w_in", where)
    check_weights(w_rec, w_rec_csr, "w_rec", where)
    as_real(dt, "dt", where, 0, open_low=True)
    check_model_params(kernels.lm, params, where, per_neuron=n)
    return steps, batch, n


__all__ = ["as_count", "as_names", "as_real", "check_array_fits", "check_broadcast",
           "check_csr", "check_csr_once", "check_finite", "check_fits", "check_labels",
           "check_model_params", "check_run", "check_shape", "check_spikes", "check_tables_fit",
           "check_weights", "first_nonfinite", "model_parameter_names"]


def check_loss_grads(dl_ds, dl_dz, steps: int, batch: int, n: int, k: int,
                     where: str) -> None:
    """What a loss function returned for the backward kernels, which read it without bounds
    checks: dL/ds (T, B, n, k) or None, and dL/dz (T, B, n) or a low-rank pair ``(left (T, B,
    r), right (n, r))`` (shapes only: a pass over them each step for finiteness would cost
    more than it saves; non-finite values cannot make a kernel index out of bounds)."""
    what = f"{where}: the loss function's"
    if dl_ds is not None:
        check_shape(dl_ds, (steps, batch, n, k), "dL/ds (steps, samples, neurons, states)",
                    what, False)
    if isinstance(dl_dz, tuple):
        if len(dl_dz) != 2:
            raise ShapeError(f"{what} low-rank dL/dz must be a pair (left, right), got "
                             f"{len(dl_dz)} arrays")
        r = np.shape(dl_dz[1])[-1] if np.ndim(dl_dz[1]) == 2 else 1
        check_shape(dl_dz[1], (n, r), "dL/dz right factor (neurons, rank)", what, False)
        check_shape(dl_dz[0], (steps, batch, r), "dL/dz left factor (steps, samples, rank)",
                    what, False)
    else:
        check_shape(dl_dz, (steps, batch, n), "dL/dz (steps, samples, neurons)", what, False)
