"""Event-driven readout products for boolean spike trains (Numba, parallel over trials).

A leaky readout reads ``spikes (T, B, n) @ w (n, o)`` and its gradient is
``spikes^T @ d (T*B, o)``. With boolean spikes a matrix product first copies them to floats
(T x B x n numbers, as large as the BPTT tape's membrane record); here only the neurons that
fired are visited and nothing of that size is allocated.

>>> import numpy as np
>>> z = np.zeros((2, 1, 3), bool); z[0, 0, 1] = z[1, 0, 2] = True
>>> w = np.arange(6.0).reshape(3, 2)
>>> readout_drive(z, w)[:, 0]
array([[2., 3.],
       [4., 5.]])
>>> readout_grad(z, np.ones((2, 1, 2)))
array([[0., 0.],
       [1., 1.],
       [1., 1.]])
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..backends.numba.arrays import kernel_array
from ..backends.numba.bits import fired as _fired


@njit(cache=True, parallel=True, boundscheck=False)
def _drive(spikes, w, out):
    steps, batch, n = spikes.shape
    n_out = w.shape[1]
    for b in prange(batch):
        fired = np.empty(n, np.int64)
        for t in range(steps):
            row = out[t, b]
            for e in range(_fired(spikes[t, b], fired)):
                wi = w[fired[e]]
                for o in range(n_out):
                    row[o] += wi[o]


@njit(cache=True, parallel=True, boundscheck=False)
def _grad(spikes, d, out):
    steps, batch, n = spikes.shape
    chunks = out.shape[0]
    n_out = d.shape[2]
    for c in prange(chunks):
        g = out[c]
        fired = np.empty(n, np.int64)
        for b in range(c * batch // chunks, (c + 1) * batch // chunks):
            for t in range(steps):
                dt = d[t, b]
                for e in range(_fired(spikes[t, b], fired)):
                    gi = g[fired[e]]
                    for o in range(n_out):
                        gi[o] += dt[o]


def readout_drive(spikes: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``spikes @ w`` for boolean spikes (T, B, n) and weights (n, o): (T, B, o), float64."""
    out = np.zeros(spikes.shape[:2] + (w.shape[1],))
    spikes = kernel_array(spikes, np.bool_)
    _drive(spikes, kernel_array(w, np.float64), out)
    return out


def readout_grad(spikes: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``sum over (t, b) of outer(spikes[t, b], d[t, b])``: (n, o), float64."""
    chunks = max(1, min(spikes.shape[1], numba.get_num_threads()))
    out = np.zeros((chunks, spikes.shape[2], d.shape[2]))
    spikes = kernel_array(spikes, np.bool_)
    _grad(spikes, kernel_array(d, np.float64), out)
    return out.sum(axis=0)


__all__ = ["readout_drive", "readout_grad"]
