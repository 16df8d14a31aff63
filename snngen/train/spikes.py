"""Input spike arrays for training: rasters from spike times, and batches of trials.

Both check what they are given (:mod:`snngen.train.checks`): a raster refuses negative and
missing times (which would wrap to the last step or raise inside NumPy), a batch refuses
sample numbers past the data (its gather kernel reads without bounds checks).
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import InvalidValueError, ShapeError
from ..runtime.validate import shown
from .checks import as_count, as_real, check_array_fits, check_finite, check_spikes


def spike_batch(inputs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The trials ``idx`` of (T, N, n_in) input spikes as booleans (nonzero = spike, as the
    kernels read them), gathered one step at a time: no float copy of the whole batch.

    >>> spike_batch(np.array([[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]]), np.array([1, 0]))[0]
    array([[ True, False],
           [False,  True]])
    """
    channels = np.shape(inputs)[-1] if np.ndim(inputs) == 3 else -1
    _, samples = check_spikes(inputs, channels, "spike_batch", "any number")
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ShapeError(f"spike_batch: idx must be a 1-D array of sample numbers, got shape "
                         f"{idx.shape} and dtype {idx.dtype}")
    bad = np.flatnonzero((idx < 0) | (idx >= samples))
    if bad.size:
        raise InvalidValueError(f"spike_batch: idx[{bad[0]}] = {idx[bad[0]]} is not a sample "
                                f"of the inputs (0 .. {samples - 1})")
    return _gather(inputs, idx)


def _gather(inputs, idx):
    """:func:`spike_batch` of checked inputs and sample numbers."""
    if inputs.dtype == np.bool_:
        return inputs[:, idx]
    out = np.empty((inputs.shape[0], len(idx), inputs.shape[2]), np.bool_)
    _gather_spikes(inputs, np.asarray(idx, np.int64), out)
    return out


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _gather_spikes(inputs, idx, out):
    """out[t, k] = inputs[t, idx[k]] != 0, in parallel over steps (one pass, no copies)."""
    for t in numba.prange(inputs.shape[0]):
        for k in range(idx.shape[0]):
            src = inputs[t, idx[k]]
            dst = out[t, k]
            for j in range(src.shape[0]):
                dst[j] = src[j] != 0


def spike_raster(times: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """(samples x channels) spike times -> (steps x samples x channels) binary raster; one
    spike per sample and channel, at a time >= 0 (times past the last step land in it).
    Silent channels (NaN times): :func:`snngen.datasets.latency_raster`."""
    times = np.asarray(times)
    dt, steps = as_real(dt, "dt", "spike_raster", 0, open_low=True), \
        as_count(steps, "steps", "spike_raster")
    if times.ndim != 2 or times.dtype.kind not in "iuf":
        raise ShapeError(f"spike_raster: times must be a (samples, channels) array of "
                         f"numbers, got shape {times.shape} and dtype {times.dtype}")
    check_finite(times, "times (NaN: a silent channel? use "
                 "snngen.datasets.latency_raster)", "spike_raster")
    if times.size and times.min() < 0:
        first = np.unravel_index(times.argmin(), times.shape)
        raise InvalidValueError(f"spike_raster: spike times must be >= 0, found "
                                f"{times.min()} at (sample, channel) {first}")
    # Python ints: steps=10**400 must not overflow a float; and an empty raster of 10**30
    # steps is refused too (NumPy cannot create it)
    check_array_fits((steps,) + times.shape, np.float64, f"a raster of {shown(steps)} steps x "
                     f"{times.shape}", "spike_raster")
    with np.errstate(over="ignore"):  # a time / a tiny dt is inf: it lands in the last step
        idx = np.minimum(np.asarray(times, np.float64) / dt, steps - 1).astype(np.int64)
    raster = np.zeros((steps,) + idx.shape, np.float64)
    samples, channels = np.indices(idx.shape)
    raster[idx, samples, channels] = 1.0
    return raster
