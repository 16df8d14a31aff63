"""Scans of boolean spike rows, 8 booleans at a time, for Numba kernels.

At the low rates of spiking networks most 8-byte words of a boolean row are 0 and are
passed over whole, instead of a test and a branch per neuron. Used by the BPTT kernels
(generated code imports :func:`fired`), their event lists and the event-driven readout.

>>> import numpy as np
>>> z = np.zeros(11, np.bool_); z[[2, 9, 10]] = True
>>> out = np.empty(11, np.int64)
>>> out[:fired(z, out)].tolist()
[2, 9, 10]
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit


@njit(cache=True, inline="always", boundscheck=False)
def fired(z, out):
    """The indices of the True entries of the 1-D boolean row ``z``, ascending, into
    ``out``; returns how many. Any length: the whole words first, then the tail."""
    n = z.shape[0]
    w8 = n // 8
    words = z[:8 * w8].view(np.uint64)
    count = 0
    for w in range(w8):
        if words[w] != 0:
            for j in range(8 * w, 8 * w + 8):
                if z[j]:
                    out[count] = j
                    count += 1
    for j in range(8 * w8, n):
        if z[j]:
            out[count] = j
            count += 1
    return count


def digest() -> str:
    """Hash of this file: generated kernels that inline :func:`fired` embed it, so that
    Numba's cache (keyed on the kernel's own file) never serves code built from an older one."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
