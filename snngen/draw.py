"""Counter-based random draws: Philox4x32-10 for every snngen backend, and synapse tables.

Philox (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
maps a 128-bit counter and a 64-bit key to 128 random bits in ten rounds of two 32x32-bit
multiplications; the multipliers and the key increments are those of Random123. Any draw is
a pure function of (key, counter), so kernels need no generator state, draws can be made in
any order by any thread, and the CUDA backend (``templates/cuda/philox.cu.j2``, the same
arithmetic in C) gives the same bits.

Conventions shared by both backends:

- the key is the 64-bit seed, split into its low and high 32-bit words;
- a uniform double in [0, 1) takes 53 bits from two output words (:func:`uniform53`), a
  float32 in [0, 1) takes the top 24 bits of one (:func:`uniform24`; exactly representable,
  so it never rounds up to 1.0);
- simulation draws (Poisson sources) use the counter (step, neuron, batch entry, stream),
  where the stream numbers the IR node (:func:`uniform`);
- connectivity is drawn here too (:func:`draw_csr`), in this module because Numba's on-disk
  cache does not notice edits to the modules a cached function calls.

>>> [f"{int(x):08x}" for x in philox4x32(0, 0, 0, 0, 0, 0)]
['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
>>> 0.0 <= uniform(seed=7, step=0, i=3, b=0, stream=1) < 1.0
True
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["bounded", "key_words", "philox4x32", "uniform", "uniform24", "uniform53"]

_U = np.uint64
_M0, _M1 = _U(0xD2511F53), _U(0xCD9E8D57)   # round multipliers
_W0, _W1 = _U(0x9E3779B9), _U(0xBB67AE85)   # key increments (Weyl sequence)
_LOW = _U(0xFFFFFFFF)
_S8, _S11, _S21, _S32 = _U(8), _U(11), _U(21), _U(32)
_EPS53 = 1.0 / 9007199254740992.0           # 2**-53
_EPS24 = np.float32(1.0 / 16777216.0)       # 2**-24


@njit(cache=True, inline="always", boundscheck=False)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """The four 32-bit output words (as uint64) of Philox4x32-10 for counter ``(c0, c1, c2,
    c3)`` and key ``(k0, k1)``; every input is taken modulo 2**32."""
    c0, c1, c2, c3 = _U(c0) & _LOW, _U(c1) & _LOW, _U(c2) & _LOW, _U(c3) & _LOW
    k0, k1 = _U(k0) & _LOW, _U(k1) & _LOW
    for _ in range(10):
        p0 = _M0 * c0  # < 2**64: both factors are below 2**32
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _LOW, (p0 >> _S32) ^ c3 ^ k1, p0 & _LOW
        k0 = (k0 + _W0) & _LOW
        k1 = (k1 + _W1) & _LOW
    return c0, c1, c2, c3


@njit(cache=True, inline="always", boundscheck=False)
def key_words(seed):
    """The Philox key of a seed: its low and high 32-bit words (the seed taken mod 2**64)."""
    s = _U(seed)
    return s & _LOW, s >> _S32


@njit(cache=True, inline="always", boundscheck=False)
def uniform53(a, b):
    """A double in [0, 1) from two output words: the top 32 bits of ``a`` and 21 of ``b``."""
    return ((_U(a) << _S21) | (_U(b) >> _S11)) * _EPS53


@njit(cache=True, inline="always", boundscheck=False)
def uniform24(a):
    """A float32 in [0, 1) from the top 24 bits of one output word (exact: never 1.0)."""
    return np.float32(_U(a) >> _S8) * _EPS24


@njit(cache=True, inline="always", boundscheck=False)
def bounded(a, b, n):
    """An integer in [0, n) from two output words, for 0 < n < 2**32: floor(x * n / 2**64)
    of the 64-bit ``x = a:b``, in integer arithmetic (the partial products cannot overflow).
    Each value's probability is within 2**-32 of 1/n (relative)."""
    n = _U(n)
    return ((_U(a) * n + ((_U(b) * n) >> _S32)) >> _S32)


@njit(cache=True, inline="always", boundscheck=False)
def uniform(seed, step, i, b, stream):
    """The uniform double in [0, 1) that simulation kernels draw for neuron ``i`` of batch
    entry ``b`` at ``step``, in random stream ``stream`` (an IR node)."""
    k0, k1 = key_words(seed)
    x0, x1, _, _ = philox4x32(step, i, b, stream, k0, k1)
    return uniform53(x0, x1)
