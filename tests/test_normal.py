"""Standard normal draws (white noise ``xi``): the logarithm and the polar method, the same
bits from Numba (snngen.draw) and CUDA C (templates/cuda/philox.cu.j2, compiled for the host
as the cuda-host backend does), and their statistics."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
from numba import njit
from test_philox import _ptr, host_library

from snngen.draw import NORMAL_TAG, log_positive, normal2, philox4x32

HARNESS = """
extern "C" void t_log(const double* x, double* out, long long n) {
    for (long long s = 0; s < n; ++s) out[s] = snn_log(x[s]);
}
extern "C" void t_normal2(const unsigned long long* seed, const long long* step,
                          const long long* i, const long long* b, const unsigned int* stream,
                          double* z, long long n) {
    for (long long s = 0; s < n; ++s)
        snn_normal2(seed[s], step[s], i[s], b[s], stream[s], &z[2 * s], &z[2 * s + 1]);
}
"""

GPU_HARNESS = """
extern "C" __global__ void t_normal2(unsigned long long seed, double* z, long long n) {
    const long long s = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (s >= n) return;
    snn_normal2(seed, s, s >> 3, 1, (unsigned int)(s & 7), &z[2 * s], &z[2 * s + 1]);
}
"""


@pytest.fixture(scope="module")
def host_lib():
    return host_library(HARNESS)


@njit
def numba_logs(x):
    out = np.empty_like(x)
    for s in range(x.shape[0]):
        out[s] = log_positive(x[s])
    return out


@njit
def numba_normals(seed, step, i, b, stream):
    out = np.empty((step.shape[0], 2))
    for s in range(step.shape[0]):
        out[s, 0], out[s, 1] = normal2(seed[s], step[s], i[s], b[s], stream[s])
    return out


@njit(fastmath=True)
def fastmath_caller(x, seed):
    """As a generated kernel calls the draws: with fastmath flags, which Numba would pass on
    to a callee that does not refuse them."""
    out = np.empty((x.shape[0], 3))
    for s in range(x.shape[0]):
        out[s, 0] = log_positive(x[s])
        out[s, 1], out[s, 2] = normal2(seed, s, 0, 0, 1)
    return out


def _inputs(n, rng):
    x = np.exp(rng.uniform(-745.0, 0.0, n))  # log-uniform over (0, 1], subnormals included
    x[:4] = [1.0, 0.5, 0.7071067811865476, 0.7071067811865475]
    return x[x > 0]


def test_log_is_within_two_ulp():
    x = _inputs(100000, np.random.default_rng(0))
    got = numba_logs(x)
    want = np.log(x)
    ulp = np.spacing(np.abs(want))
    assert got[0] == 0.0
    assert np.max(np.abs(got - want) / ulp) <= 2.0


def test_log_and_normals_agree_bit_for_bit_with_cuda(host_lib):
    rng = np.random.default_rng(1)
    x = _inputs(50000, rng)
    out = np.empty_like(x)
    host_lib.t_log(_ptr(x), _ptr(out), ctypes.c_longlong(len(x)))
    np.testing.assert_array_equal(out, numba_logs(x))
    n = 20000
    seed = rng.integers(0, 2**63, n, dtype=np.uint64)
    step, i = rng.integers(0, 2**31, n), rng.integers(0, 2**31, n)
    b, stream = rng.integers(0, 64, n), rng.integers(0, 2**25, n).astype(np.uint32)
    z = np.empty((n, 2))
    host_lib.t_normal2(*(_ptr(a) for a in (seed, step, i, b, stream, z)), ctypes.c_longlong(n))
    np.testing.assert_array_equal(z, numba_normals(seed.astype(np.int64), step, i, b,
                                                   stream.astype(np.int64)))


def test_fastmath_callers_get_the_same_bits(host_lib):
    x = np.random.default_rng(4).random(200000)
    got = fastmath_caller(x, 9)
    want = np.empty_like(x)
    host_lib.t_log(_ptr(x), _ptr(want), ctypes.c_longlong(len(x)))
    np.testing.assert_array_equal(got[:, 0], want)
    n = len(x)
    z = np.empty((n, 2))
    args = (np.full(n, 9, np.uint64), np.arange(n), np.zeros(n, np.int64),
            np.zeros(n, np.int64), np.ones(n, np.uint32), z)  # referenced during the call
    host_lib.t_normal2(*(_ptr(a) for a in args), ctypes.c_longlong(n))
    np.testing.assert_array_equal(got[:, 1:], z)


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_normals_have_the_moments_and_distribution_of_n01():
    n = 200000
    step = np.arange(n) // 100
    i = np.arange(n) % 100
    z = numba_normals(np.full(n, 11, np.int64), step, i, np.zeros(n, np.int64),
                      np.full(n, 3, np.int64))
    se = 1.0 / math.sqrt(2 * n)
    a = z.ravel()
    assert abs(a.mean()) < 5 * se
    assert abs(a.var() - 1.0) < 5 * math.sqrt(2.0) * se
    assert abs(np.mean(a**3)) < 5 * math.sqrt(15.0) * se       # skewness 0
    assert abs(np.mean(a**4) - 3.0) < 5 * math.sqrt(96.0) * se  # kurtosis 3
    # Kolmogorov-Smirnov against Phi: the 0.1 % critical value is 1.95 / sqrt(n)
    s = np.sort(a)
    cdf = _normal_cdf(s)
    k = np.arange(1, len(s) + 1) / len(s)
    assert max(np.max(k - cdf), np.max(cdf - (k - 1.0 / len(s)))) < 1.95 / math.sqrt(len(s))
    # the pair is uncorrelated, and so are neighbouring neurons and steps
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 5 / math.sqrt(n)
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < 5 / math.sqrt(n)
    assert abs(np.corrcoef(z[:-100, 0], z[100:, 0])[0, 1]) < 5 / math.sqrt(n)


def test_streams_batch_entries_and_seeds_are_independent():
    n = 50000
    step, i = np.arange(n), np.zeros(n, np.int64)

    def draw(seed=5, b=0, stream=0):
        return numba_normals(np.full(n, seed, np.int64), step, i, np.full(n, b, np.int64),
                             np.full(n, stream, np.int64))[:, 0]
    base = draw()
    np.testing.assert_array_equal(base, draw())  # a pure function of its counter
    for other in (draw(seed=6), draw(b=1), draw(stream=1)):
        assert abs(np.corrcoef(base, other)[0, 1]) < 5 / math.sqrt(n)


def test_normal_counters_never_meet_poisson_counters():
    # Poisson draws use (step, i, b, stream) with a small stream; normal draws set the top bit
    k0, k1 = 7, 0
    a = philox4x32(3, 4, 0, 1, k0, k1)
    b = philox4x32(3, 4, 0, NORMAL_TAG | (1 << 6), k0, k1)
    assert a != b and NORMAL_TAG == 1 << 31
