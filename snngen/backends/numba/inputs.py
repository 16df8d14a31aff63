"""Model-independent Numba helpers of the compiled BPTT's input path: the input spikes as
events (:func:`input_events`, one index list per step and trial) and the adjoint of the
input layer's synaptic input sent back to the inputs (:func:`input_adjoint`).
"""

from __future__ import annotations

import numba
import numpy as np

from . import bits
from .arrays import kernel_array


def input_adjoint(a_x: np.ndarray, csr, w: np.ndarray, full: bool, out: np.ndarray) -> None:
    """``out[t, b, i] = sum over the synapses i -> j of w * a_x[t, b, j]``: dL/d(input i)
    from the adjoints ``a_x`` (T, B, n) of the synaptic input. All-to-all rows: one matrix
    product; else a gather over each input's synapses, in parallel over (step, trial)."""
    a2 = a_x.reshape(-1, a_x.shape[2])
    o2 = out.reshape(-1, out.shape[2])
    if full:
        np.matmul(a2, w.reshape(csr.n_pre, csr.n_post).T, out=o2)
    else:
        _gather_rows(a2, csr.indptr, csr.indices, w, o2)


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _gather_rows(a, indptr, indices, w, out):
    for r in numba.prange(a.shape[0]):
        row = a[r]
        for i in range(indptr.shape[0] - 1):
            acc = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                acc += w[e] * row[indices[e]]
            out[r, i] = acc


def input_events(inputs):
    """Input spikes (T, B, n_in), any dtype, nonzero = spike -> (channel of every event,
    row pointers over t * B + b): the events of step t, trial b are
    ``idx[ptr[t * B + b]:ptr[t * B + b + 1]]``, channels ascending. Boolean spikes (what
    the trainer and the kernels produce) are read 8 at a time as words, in parallel over
    rows.

    >>> idx, ptr = input_events(np.array([[[0, 1, 1]], [[1, 0, 0]]]))
    >>> idx.tolist(), ptr.tolist()
    ([1, 2, 0], [0, 2, 3])
    >>> input_events(np.array([[[False, True, True]], [[True, False, False]]]))[0].tolist()
    [1, 2, 0]
    """
    inputs = kernel_array(inputs)
    steps, batch, n_in = inputs.shape
    rows = inputs.reshape(steps * batch, n_in)
    counts = np.zeros(steps * batch + 1, np.int64)
    boolean = inputs.dtype == np.bool_
    (_count_bool if boolean else _count_any)(rows, counts[1:])
    ptr = np.cumsum(counts)
    idx = np.empty(ptr[-1], np.int64)
    (_fill_bool if boolean else _fill_any)(rows, ptr, idx)
    return idx, ptr


_ONES = np.uint64(0x0101010101010101)


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _count_bool(rows, out):
    """out[r] = the number of True in row r: the byte sum of each 8-byte word (booleans
    are bytes 0 or 1; times 0x0101..01 the sum lands in the top byte)."""
    w8 = rows.shape[1] // 8
    for r in numba.prange(rows.shape[0]):
        z = rows[r]
        words = z[:8 * w8].view(np.uint64)
        count = 0
        for w in range(w8):
            count += (words[w] * _ONES) >> np.uint64(56)
        for j in range(8 * w8, z.shape[0]):
            count += z[j]
        out[r] = count


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _count_any(rows, out):
    for r in numba.prange(rows.shape[0]):
        count = 0
        for j in range(rows.shape[1]):
            if rows[r, j] != 0:
                count += 1
        out[r] = count


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _fill_bool(rows, ptr, idx):
    for r in numba.prange(rows.shape[0]):
        bits.fired(rows[r], idx[ptr[r]:ptr[r + 1]])


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _fill_any(rows, ptr, idx):
    for r in numba.prange(rows.shape[0]):
        e = ptr[r]
        for j in range(rows.shape[1]):
            if rows[r, j] != 0:
                idx[e] = j
                e += 1
