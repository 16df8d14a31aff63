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
- standard normal draws (white noise ``xi`` in equations) use the counter (step, neuron,
  batch entry, ``NORMAL_TAG | stream << 6 | attempt``): Marsaglia's polar method, two
  normals per accepted attempt, with a logarithm written with ``+ - * /`` only
  (:func:`normal2`), so both backends give the same bits;
- connectivity is drawn here too (the row kernels below, which
  :func:`snngen.connectivity.build_csr` drives), in this module because Numba's on-disk cache
  does not notice edits to the modules a cached function calls.

>>> [f"{int(x):08x}" for x in philox4x32(0, 0, 0, 0, 0, 0)]
['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
>>> 0.0 <= uniform(seed=7, step=0, i=3, b=0, stream=1) < 1.0
True
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["EXP_COEFFS", "LOG_TERMS", "NORMAL_TAG", "log_positive", "normal2",
           "TAG_IN_DEGREE", "TAG_OUT_DEGREE", "TAG_PROBABILITY", "ZIGGURAT",
           "all_to_all_fill", "bounded",
           "key_words", "philox4x32", "probability_counts", "probability_fill",
           "probability_rate", "sample_rows", "uniform", "uniform24", "uniform53"]

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
    return np.int64((_U(a) << _S21) | (_U(b) >> _S11)) * _EPS53  # exact: below 2**53


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


#: The counter's last word of normal draws has its top bit set: Poisson streams never do.
NORMAL_TAG = 0x80000000
#: Streams of normal draws: below 2**25 (the counter word keeps 6 bits for the attempt).
NORMAL_STREAMS = 1 << 25
_NORMAL_ATTEMPTS = 64   # P(64 rejections in a row) = (1 - pi/4)**64 < 1e-42
#: Terms 1/(2n+1), n < LOG_TERMS, of the series of atanh used by :func:`log_positive`
LOG_TERMS = 13
_LOG_C = np.array([1.0 / (2 * n + 1) for n in range(LOG_TERMS)])
_SQRT_HALF = 0.70710678118654752440


@njit(cache=True, boundscheck=False, fastmath=False)
def log_positive(x):
    """ln(x) for a positive normal double, with ``+ - * /`` and ``frexp`` only (IEEE, never
    fused), so CUDA (``snn_log`` in ``templates/cuda/philox.cu.j2``: the same operations)
    gives the same bits as this function; within 2 ulp of the true value.

    x = m 2**e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(f), f = (m-1)/(m+1), |f| < 0.172,
    summed to 13 terms (the last below 2**-60 of the first).

    >>> import math
    >>> abs(log_positive(0.3) - math.log(0.3)) < 1e-16
    True
    """
    m, e = math.frexp(x)
    if m < _SQRT_HALF:
        m = m * 2.0
        e -= 1
    f = (m - 1.0) / (m + 1.0)
    f2 = f * f
    s = _LOG_C[LOG_TERMS - 1]
    for n in range(LOG_TERMS - 2, -1, -1):
        s = s * f2 + _LOG_C[n]
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * f * s)


# Not inlined, and ``fastmath=False`` said explicitly: otherwise Numba compiles a callee with
# the calling kernel's fastmath flags (contraction into FMAs changes the last bits; seen), and
# caches that version for every later caller.
@njit(cache=True, boundscheck=False, fastmath=False)
def normal2(seed, step, i, b, stream):
    """Two independent standard normal doubles for neuron ``i`` of batch entry ``b`` at
    ``step`` in normal stream ``stream`` (an IR node's noise pair).

    Marsaglia's polar method: attempt ``a`` takes a point (u, v) of the square [-1, 1)**2 from
    Philox counter ``(step, i, b, NORMAL_TAG | stream << 6 | a)`` and is accepted inside the
    unit disc (probability pi/4); then ``u f`` and ``v f`` with ``f = sqrt(-2 ln(s) / s)``,
    ``s = u**2 + v**2``. After 64 rejections in a row (probability below 1e-42) it gives 0, 0.

    >>> z = [normal2(1, s, 0, 0, 0)[0] for s in range(20000)]
    >>> abs(sum(z) / len(z)) < 0.03, abs(sum(x * x for x in z) / len(z) - 1) < 0.05
    (True, True)
    """
    k0, k1 = key_words(seed)
    tag = _U(NORMAL_TAG) | (_U(stream) << _U(6))
    for a in range(_NORMAL_ATTEMPTS):
        x0, x1, x2, x3 = philox4x32(step, i, b, tag | _U(a), k0, k1)
        u = 2.0 * uniform53(x0, x1) - 1.0
        v = 2.0 * uniform53(x2, x3) - 1.0
        s = u * u + v * v
        if 0.0 < s < 1.0:
            f = math.sqrt(-2.0 * log_positive(s) / s)
            return u * f, v * f
    return 0.0, 0.0


# ---------------------------------------------------------------------------------------------
# Connectivity. One algorithm, written twice: here (Numba, parallel over rows) and in
# templates/cuda/connectivity.cu.j2 (one GPU thread per row). Every draw of row r is a Philox
# call with counter (draw index, r, round, tag) and the projection's seed as key, so a
# row's synapses depend only on (rule, sizes, seed): not on threads, order or backend. Only
# integer arithmetic and IEEE additions and multiplications (never fused into FMAs) decide
# which synapses exist, no libm function, so both backends produce the same table bit for bit.

TAG_PROBABILITY = 0x50524F42  # "PROB": the counter's last word, one per rule
TAG_OUT_DEGREE = 0x4B4F5554   # "KOUT"
TAG_IN_DEGREE = 0x4B494E5F    # "KIN_"


def _ziggurat() -> np.ndarray:
    """Layer edges ``X[0..256]`` then heights ``exp(-X)`` of the 256-layer ziggurat of the
    exponential distribution (Marsaglia and Tsang 2000: r = 7.697..., layer area v). Scalar
    ``math`` functions (the C library's), not NumPy's, whose vectorised exp and log differ
    between CPUs by an ulp: the table, and so the synapses, should not."""
    n, r, v = 256, 7.69711747013104972, 3.949659822581572e-3
    x = [v / math.exp(-r), r]  # the base layer's width includes the tail's area
    for i in range(1, n - 1):
        x.append(-math.log(math.exp(-x[i]) + v / x[i]))
    x.append(0.0)
    return np.array(x + [math.exp(-e) for e in x])


#: The ziggurat tables, computed once here and passed to the kernels of both backends.
ZIGGURAT = _ziggurat()
_ZN = 256
#: exp(-r) = 2**-k * sum (-r)**n / n!: the Taylor coefficients (the CUDA template prints
#: these same doubles), ln 2 split so that k * _LN2_HI is exact.
EXP_COEFFS = tuple(1.0 / math.factorial(n) for n in range(14))
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_EXP_C = np.array(EXP_COEFFS)


@njit(cache=True, inline="always", boundscheck=False)
def _exp_neg(x):
    """exp(-x) for 0 <= x <= 8 with + - * only, so CUDA (the same operations, never fused)
    gives the same bits; within 2 ulp of the true value."""
    k = np.int64(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= 0.35
    s = _EXP_C[13]
    for n in range(12, -1, -1):
        s = s * -r + _EXP_C[n]
    for _ in range(k):
        s = s * 0.5
    return s


@njit(cache=True, inline="always", boundscheck=False)
def _words(buf, base, c, r, sub, tag, k0, k1):
    """The Philox words of counter ``(c, r, sub, tag)``, and the new ``base``: ``buf`` holds
    the words of counters ``base .. base + _B - 1`` (same r, sub, tag) and is refilled from
    ``c`` on when ``c`` is outside. The refill loop has independent iterations, which the
    compiler turns into SIMD code: several times faster than one Philox call after another."""
    if c < base or c >= base + _B:
        base = c
        for q in range(_B):
            x0, x1, x2, x3 = philox4x32(c + q, r, sub, tag, k0, k1)
            buf[0, q], buf[1, q], buf[2, q], buf[3, q] = x0, x1, x2, x3
    q = c - base
    return buf[0, q], buf[1, q], buf[2, q], buf[3, q], base


_B = 16          # Philox counters per refill of a row's word buffer
_EMPTY = -2 * _B  # a base no counter matches: the next read refills
_ROWS = 64        # rows per parallel chunk (one word buffer each)


@njit(cache=True, inline="always", boundscheck=False)
def _exponential(a, r, sub, tag, k0, k1, table, buf, base):
    """An Exp(1) variate for row ``r`` from attempts ``a, a+1, ...`` (counters ``(a, r, sub,
    tag)``): (value, next attempt, buffer base).

    Ziggurat: one Philox call per attempt (53 bits for the position in the layer, 8 for the
    layer, 32 for the wedge test); 98.9 % of attempts are accepted after one multiplication
    and one comparison. The tail beyond r is r plus a fresh variate (memoryless).
    """
    offset = 0.0
    while True:
        x0, x1, x2, x3, base = _words(buf, base, a, r, sub, tag, k0, k1)
        a += 1
        i = np.int64(x2 >> _U(24))
        x = uniform53(x0, x1) * table[i]
        if x < table[i + 1]:
            return offset + x, a, base
        if i == 0:
            offset += table[1]
            continue
        low, high = table[_ZN + 1 + i], table[_ZN + 2 + i]
        if low + (x3 * (1.0 / 4294967296.0)) * (high - low) < _exp_neg(x):
            return offset + x, a, base


@njit(cache=True, inline="always", boundscheck=False)
def _probability_row(r, m, self_col, inv_rate, table, k0, k1, buf, out, start, write):
    """Synapses of row ``r`` (candidates ``0..m-1``, then stepped over ``self_col``): their
    number, and with ``write`` their columns in ``out[start:]`` (ascending).

    Geometric skips: the candidates passed over before the next synapse number
    ``floor(E * inv_rate)`` for E ~ Exp(1) and ``inv_rate = -1 / log(1 - p)``, so that each
    candidate is taken independently with probability p.
    """
    pos, n, a, base = -1, 0, 0, _EMPTY
    while True:
        e, a, base = _exponential(a, r, 0, TAG_PROBABILITY, k0, k1, table, buf, base)
        skip = e * inv_rate
        if skip >= m - pos - 1:  # floor(skip) >= m - pos - 1: m - pos - 1 is an integer
            return n
        pos += np.int64(skip) + 1
        if write:
            out[start + n] = pos + (pos >= self_col)
        n += 1


def probability_rate(p: float) -> float:
    """``-1 / log(1 - p)``: skips are ``floor(E * this)`` for E ~ Exp(1) (0 for p = 1).

    >>> probability_rate(1.0), round(probability_rate(0.5), 6)
    (0.0, 1.442695)
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p = {p}: no skips to draw (p = 0 has no synapses)")
    return -1.0 / math.log1p(-p) if p < 1.0 else 0.0


@njit(cache=True, inline="always", boundscheck=False)
def _row_candidates(r, n_cols, allow_self):
    """(candidates, column to step over) of row ``r``; no self-connection is column ``r``."""
    if allow_self or r >= n_cols:
        return n_cols, n_cols + 1
    return n_cols - 1, r


@njit(cache=True, parallel=True, boundscheck=False)
def probability_counts(n_rows, n_cols, allow_self, inv_rate, table, k0, k1, counts):
    """FixedProbability, first pass: ``counts[r]`` = synapses of row ``r``."""
    for chunk in prange((n_rows + _ROWS - 1) // _ROWS):
        buf = np.empty((4, _B), np.uint64)
        for r in range(chunk * _ROWS, min(n_rows, (chunk + 1) * _ROWS)):
            m, self_col = _row_candidates(r, n_cols, allow_self)
            counts[r] = _probability_row(r, m, self_col, inv_rate, table, k0, k1, buf, counts,
                                         0, False)


@njit(cache=True, parallel=True, boundscheck=False)
def probability_fill(n_rows, n_cols, allow_self, inv_rate, table, k0, k1, indptr, out):
    """FixedProbability, second pass: the same draws again, written at ``indptr[r]``."""
    for chunk in prange((n_rows + _ROWS - 1) // _ROWS):
        buf = np.empty((4, _B), np.uint64)
        for r in range(chunk * _ROWS, min(n_rows, (chunk + 1) * _ROWS)):
            m, self_col = _row_candidates(r, n_cols, allow_self)
            _probability_row(r, m, self_col, inv_rate, table, k0, k1, buf, out, indptr[r],
                             True)


@njit(cache=True, inline="always", boundscheck=False)
def _sample_row(r, m, k, self_col, k0, k1, tag, table, buf, spacing, row):
    """``k`` distinct columns of ``0..m-1``, ascending, into ``row`` (then stepped over
    ``self_col``); every k-subset equally likely.

    Dense rows (``4 k >= m``) visit each candidate once and take it with probability
    needed / remaining (selection sampling); draw ``t`` uses words 2 (t % 2) and
    2 (t % 2) + 1 of counter ``(t // 2, r, 0, tag)``. Sparse rows draw the ``k - have``
    missing columns as sorted uniform integers (normalised partial sums of ``k - have + 1``
    exponential variates, counters ``(attempt, r, round, tag)``), keep the distinct ones and
    draw the shortfall again in the next round; the procedure treats every column alike, so
    every subset is equally likely. ``spacing`` is scratch for ``k + 1`` partial sums.
    """
    base = _EMPTY
    if k == m:
        for q in range(k):
            row[q] = q
    elif 4 * k >= m:
        need, pos, t = k, 0, 0
        while need > 0:
            x0, x1, x2, x3, base = _words(buf, base, t >> 1, r, 0, tag, k0, k1)
            v = bounded(x0, x1, m - t) if t & 1 == 0 else bounded(x2, x3, m - t)
            if v < need:
                row[pos] = t
                pos += 1
                need -= 1
            t += 1
    else:
        have, rnd = 0, 0
        while have < k:
            need, a, base, total = k - have, 0, _EMPTY, 0.0
            for q in range(need + 1):
                e, a, base = _exponential(a, r, rnd, tag, k0, k1, table, buf, base)
                total += e
                spacing[q] = total
            scale = m / total
            for q in range(need):  # ascending; min() guards against rounding up to m
                row[have + q] = min(np.int64(spacing[q] * scale), m - 1)
            if have:  # a later round: merge with the columns kept so far
                row.sort()
            have = 1
            for q in range(1, k):
                if row[q] != row[have - 1]:
                    row[have] = row[q]
                    have += 1
            rnd += 1
    for q in range(k):
        row[q] += row[q] >= self_col


@njit(cache=True, parallel=True, boundscheck=False)
def sample_rows(n_rows, n_cols, k, allow_self, table, k0, k1, tag, out):
    """FixedOutDegree rows (or FixedInDegree columns): ``k`` distinct sorted columns of
    ``0..n_cols-1`` per row, row ``r`` at ``out[r * k:(r + 1) * k]``."""
    for chunk in prange((n_rows + _ROWS - 1) // _ROWS):
        buf = np.empty((4, _B), np.uint64)
        spacing = np.empty(k + 1, np.float64)
        for r in range(chunk * _ROWS, min(n_rows, (chunk + 1) * _ROWS)):
            m, self_col = _row_candidates(r, n_cols, allow_self)
            _sample_row(r, m, k, self_col, k0, k1, tag, table, buf, spacing,
                        out[r * k:(r + 1) * k])


@njit(cache=True, parallel=True, boundscheck=False)
def all_to_all_fill(n_rows, n_cols, allow_self, indptr, out):
    """AllToAll: every column of every row, but column ``r`` of row ``r`` without self."""
    for r in prange(n_rows):
        a, n = indptr[r], 0
        for c in range(n_cols):
            if allow_self or c != r:
                out[a + n] = c
                n += 1
