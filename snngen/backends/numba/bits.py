"""Spike rows for Numba kernels: scans of boolean rows, and bit-packed rows.

At the low rates of spiking networks most 8-byte words of a boolean row are 0 and are
passed over whole, instead of a test and a branch per neuron (:func:`fired`). The compiled
BPTT keeps the spikes of a run bit-packed, one bit per neuron and step (:func:`pack_row`,
:func:`fired_bits`, :func:`unpack`, :func:`bit_events`): bit ``i % 64`` of word ``i // 64``
of a row of ``words(n)`` uint64 words is neuron i, and bits past n are 0. Used by the BPTT
kernels (generated code imports these), their event lists and the event-driven readout.

>>> import numpy as np
>>> z = np.zeros(11, np.bool_); z[[2, 9, 10]] = True
>>> out = np.empty(11, np.int64)
>>> out[:fired(z, out)].tolist()
[2, 9, 10]
>>> row = np.zeros(words(11), np.uint64)
>>> scratch = np.zeros(64 * words(11), np.bool_); scratch[:11] = z
>>> pack_row(scratch, row); hex(int(row[0]))
'0x604'
>>> out[:fired_bits(row, out)].tolist()
[2, 9, 10]
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros


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


def words(n: int) -> int:
    """uint64 words of a bit-packed row of n neurons."""
    return (n + 63) // 64


# bytes b_0 .. b_7 (each 0 or 1) of a little-endian uint64 x: (x * _GATHER) >> 56 has b_k at
# bit k (every partial product lands on its own bit, and none carries into bits 56-63)
_GATHER = np.uint64(0x0102040810204080)


@njit(cache=True, inline="always", boundscheck=False)
def pack_row(z, row):
    """The boolean row ``z`` (64 x len(row) entries, the ones past the neurons False) into
    the uint64 words ``row``: eight booleans at a time, zero words of eight passed over."""
    bytes8 = z.view(np.uint64)
    shift = np.uint64(56)
    for w in range(row.shape[0]):
        word = np.uint64(0)
        for q in range(8):
            x = bytes8[8 * w + q]
            if x != 0:
                word |= ((x * _GATHER) >> shift) << np.uint64(8 * q)
        row[w] = word


@njit(cache=True, inline="always", boundscheck=False)
def fired_bits(row, out):
    """The neurons whose bits are set in the bit-packed ``row``, ascending, into ``out``
    (room for every neuron); returns how many. Zero words cost one test."""
    count = 0
    for w in range(row.shape[0]):
        word = row[w]
        while word != 0:
            out[count] = 64 * w + trailing_zeros(word)
            count += 1
            word &= word - np.uint64(1)
    return count


@njit(cache=True, boundscheck=False, parallel=True)
def unpack(bits, n, out):
    """Bit-packed spikes (T, B, words) -> ``out`` (T, B, n), booleans or 0/1 numbers; out
    need not be cleared first."""
    for t in prange(bits.shape[0]):
        for b in range(bits.shape[1]):
            dst = out[t, b]
            dst[:] = 0
            row = bits[t, b]
            for w in range(row.shape[0]):
                word = row[w]
                while word != 0:
                    dst[64 * w + trailing_zeros(word)] = 1
                    word &= word - np.uint64(1)


@njit(cache=True, boundscheck=False)
def bit_events(bits, n):
    """Bit-packed spikes (T, B, words) -> (neuron of every spike, row pointers ``ptr`` over
    t * B + b), as :func:`snngen.train.bptt.input_events` gives for a boolean array."""
    steps, batch = bits.shape[0], bits.shape[1]
    ptr = np.zeros(steps * batch + 1, np.int64)
    for t in range(steps):
        for b in range(batch):
            count = 0
            for word in bits[t, b]:
                while word != 0:
                    count += 1
                    word &= word - np.uint64(1)
            ptr[t * batch + b + 1] = ptr[t * batch + b] + count
    idx = np.empty(ptr[-1], np.int64)
    for t in range(steps):
        for b in range(batch):
            fired_bits(bits[t, b], idx[ptr[t * batch + b]:])
    return idx, ptr


def digest() -> str:
    """Hash of this file: generated kernels that inline :func:`fired` embed it, so that
    Numba's cache (keyed on the kernel's own file) never serves code built from an older one."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
