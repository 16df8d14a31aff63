"""Philox4x32-10: published known answers, Numba and CUDA C giving the same bits, statistics.

The CUDA functions (templates/cuda/philox.cu.j2) are compiled as C++ with the host shim, as
the cuda-host backend does, and called through ctypes; NVRTC (or nvcc) compiles them for the
GPU architectures we support.
"""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np
import pytest
from numba import njit

import snngen as sg
from snngen.backends.cuda import compiler
from snngen.backends.templates import environment
from snngen.draw import bounded, philox4x32, uniform, uniform24, uniform53

# Random123's known-answer vectors (kat_vectors, philox4x32 with 10 rounds)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

HARNESS = """
extern "C" void t_philox(const unsigned int* ctr, const unsigned int* key, unsigned int* out,
                         long long n) {
    for (long long s = 0; s < n; ++s) {
        unsigned int c[4] = {ctr[4 * s], ctr[4 * s + 1], ctr[4 * s + 2], ctr[4 * s + 3]};
        snn_philox(c, key[2 * s], key[2 * s + 1]);
        for (int w = 0; w < 4; ++w) out[4 * s + w] = c[w];
    }
}
extern "C" void t_convert(const unsigned int* words, long long nmax, double* u53, float* u24,
                          unsigned long long* ints, long long n) {
    for (long long s = 0; s < n; ++s) {
        u53[s] = snn_u53(words[2 * s], words[2 * s + 1]);
        u24[s] = snn_u24(words[2 * s]);
        ints[s] = snn_bounded(words[2 * s], words[2 * s + 1], (unsigned long long)(s % nmax) + 1);
    }
}
extern "C" void t_uniform(const unsigned long long* seed, const long long* step,
                          const long long* i, const long long* b, const unsigned int* stream,
                          double* out, long long n) {
    for (long long s = 0; s < n; ++s) out[s] = snn_uniform(seed[s], step[s], i[s], b[s], stream[s]);
}
"""

GPU_HARNESS = """
extern "C" __global__ void t_philox(const unsigned int* ctr, const unsigned int* key,
                                    unsigned int* out, long long n) {
    const long long s = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (s >= n) return;
    unsigned int c[4] = {ctr[4 * s], ctr[4 * s + 1], ctr[4 * s + 2], ctr[4 * s + 3]};
    snn_philox(c, key[2 * s], key[2 * s + 1]);
    for (int w = 0; w < 4; ++w) out[4 * s + w] = c[w];
}
extern "C" __global__ void t_uniform(unsigned long long seed, double* u, float* f, long long n) {
    const long long s = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (s >= n) return;
    u[s] = snn_uniform(seed, s, s >> 3, 1, 2);
    f[s] = snn_u24((unsigned int)s * 2654435761u);
}
"""


def philox_source() -> str:
    return environment().get_template("cuda/philox.cu.j2").render()


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


def host_library(harness: str):
    """The Philox functions plus ``harness`` built as the cuda-host backend builds kernels
    (skips without g++)."""
    if compiler.shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("the host build needs g++")
    path, _ = compiler.build_host(philox_source() + harness, "")
    return ctypes.CDLL(str(path))


@pytest.fixture(scope="module")
def host_lib():
    return host_library(HARNESS)


def host_philox(lib, ctr, key):
    ctr = np.ascontiguousarray(ctr, np.uint32)
    key = np.ascontiguousarray(key, np.uint32)
    out = np.empty_like(ctr)
    lib.t_philox(_ptr(ctr), _ptr(key), _ptr(out), ctypes.c_longlong(len(ctr)))
    return out


@njit
def numba_philox(ctr, key):
    out = np.empty(ctr.shape, np.uint32)
    for s in range(ctr.shape[0]):
        x = philox4x32(ctr[s, 0], ctr[s, 1], ctr[s, 2], ctr[s, 3], key[s, 0], key[s, 1])
        for w in range(4):
            out[s, w] = x[w]
    return out


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_numba_philox_known_answers(ctr, key, want):
    assert tuple(int(x) for x in philox4x32(*ctr, *key)) == want


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_cuda_philox_known_answers(host_lib, ctr, key, want):
    out = host_philox(host_lib, [ctr], [key])
    assert tuple(int(x) for x in out[0]) == want


def test_numba_and_cuda_philox_agree_bit_for_bit(host_lib):
    rng = np.random.default_rng(0)
    ctr = rng.integers(0, 2**32, (20000, 4), dtype=np.uint64).astype(np.uint32)
    key = rng.integers(0, 2**32, (20000, 2), dtype=np.uint64).astype(np.uint32)
    ctr[:100] = np.arange(100)[:, None]  # small counters, as kernels use them
    np.testing.assert_array_equal(host_philox(host_lib, ctr, key), numba_philox(ctr, key))


@njit
def numba_convert(words, nmax):
    n = words.shape[0]
    u53, u24, ints = np.empty(n), np.empty(n, np.float32), np.empty(n, np.uint64)
    for s in range(n):
        u53[s] = uniform53(words[s, 0], words[s, 1])
        u24[s] = uniform24(words[s, 0])
        ints[s] = bounded(words[s, 0], words[s, 1], s % nmax + 1)
    return u53, u24, ints


def test_conversions_agree_and_stay_below_one(host_lib):
    rng = np.random.default_rng(1)
    words = rng.integers(0, 2**32, (50000, 2), dtype=np.uint64).astype(np.uint32)
    words[0] = 0xFFFFFFFF  # the largest words: must stay below 1.0 in both precisions
    words[1] = 0
    nmax = 2**31 + 12345
    u53, u24, ints = (np.empty(len(words)), np.empty(len(words), np.float32),
                      np.empty(len(words), np.uint64))
    host_lib.t_convert(_ptr(words), ctypes.c_longlong(nmax), _ptr(u53), _ptr(u24), _ptr(ints),
                       ctypes.c_longlong(len(words)))
    want53, want24, want_ints = numba_convert(words, nmax)
    np.testing.assert_array_equal(u53, want53)
    np.testing.assert_array_equal(u24, want24)
    np.testing.assert_array_equal(ints, want_ints)
    assert u53[0] == 1.0 - 2.0**-53 and u24[0] == np.float32(1.0 - 2.0**-24)
    assert u53[1] == 0.0 and u24[1] == 0.0
    assert u24.dtype == np.float32 and np.all(u24 < 1) and np.all(u53 < 1)
    n = np.arange(len(words)) % nmax + 1
    assert np.all(ints < n)
    # the exact value: floor(x * n / 2**64) for the 64-bit x = a:b
    x = (words[:, 0].astype(object) << 32) | words[:, 1].astype(object)
    assert all(int(ints[s]) == (int(x[s]) * int(n[s])) >> 64 for s in range(0, len(words), 97))


@njit
def numba_uniforms(seed, step, i, b, stream):
    out = np.empty(step.shape[0])
    for s in range(step.shape[0]):
        out[s] = uniform(seed[s], step[s], i[s], b[s], stream[s])
    return out


def test_simulation_uniforms_agree(host_lib):
    rng = np.random.default_rng(2)
    n = 20000
    seed = rng.integers(0, 2**63, n, dtype=np.uint64)
    seed[:10] = np.arange(10)
    step, i = rng.integers(0, 2**31, n), rng.integers(0, 2**31, n)
    b, stream = rng.integers(0, 64, n), rng.integers(1, 40, n).astype(np.uint32)
    out = np.empty(n)
    host_lib.t_uniform(*(_ptr(a) for a in (seed, step, i, b, stream, out)), ctypes.c_longlong(n))
    np.testing.assert_array_equal(out, numba_uniforms(seed.astype(np.int64), step, i, b,
                                                      stream.astype(np.int64)))


@njit
def uniform_moments(seed, n):
    s1 = s2 = 0.0
    s1f = s2f = 0.0
    lag = 0.0
    prev = 0.5
    bins = np.zeros(16, np.int64)
    k0 = np.uint64(seed) & np.uint64(0xFFFFFFFF)
    for j in range(n):
        x = philox4x32(j, 0, 0, 0, k0, 0)
        u = uniform53(x[0], x[1])
        f = np.float64(uniform24(x[2]))
        s1 += u
        s2 += u * u
        s1f += f
        s2f += f * f
        lag += (u - 0.5) * (prev - 0.5)
        prev = u
        bins[int(u * 16)] += 1
    return s1 / n, s2 / n - (s1 / n) ** 2, s1f / n, s2f / n - (s1f / n) ** 2, lag / n, bins


def test_uniform_statistics():
    n = 1_000_000
    mean, var, mean_f, var_f, lag, bins = uniform_moments(5, n)
    # standard errors: mean 1/sqrt(12 n), variance sqrt(1/180 n), lag-1 covariance 1/(12 sqrt n)
    for m, v in ((mean, var), (mean_f, var_f)):
        assert abs(m - 0.5) < 5 / math.sqrt(12 * n)
        assert abs(v - 1 / 12) < 5 * math.sqrt(1 / (180 * n))
    assert abs(lag) < 5 / (12 * math.sqrt(n))
    chi2 = float(((bins - n / 16) ** 2 / (n / 16)).sum())
    assert chi2 < 40  # 15 degrees of freedom: P(chi2 > 40) < 0.001


def test_poisson_source_rate_and_independence():
    """Spike counts of Poisson sources: mean rate * T per neuron, Poisson variance, and no
    correlation between neurons, batch entries or two sources (separate streams)."""
    rate, dt, steps, n = 50.0, 1e-3, 4000, 200
    net = sg.Network(dt=dt, seed=123, batch=2)
    a = net.poisson("a", n, rates=rate)
    b = net.poisson("b", n, rates=rate)
    ma, mb = net.monitor_rate(a), net.monitor_rate(b)
    sa = net.monitor_spikes(a)
    net.build().run(steps * dt)
    total = sa.i.size
    expect = 2 * n * steps * rate * dt
    assert abs(total - expect) < 5 * math.sqrt(expect)
    per_neuron = np.bincount(sa.i[sa.b == 0], minlength=n)
    mean = rate * dt * steps
    assert abs(per_neuron.var() / mean - 1) < 0.35  # Poisson: variance = mean (200 neurons)
    ca, cb = ma.data["counts"].astype(float), mb.data["counts"].astype(float)
    for x, y in ((ca[0], ca[1]), (ca[0], cb[0])):
        assert abs(np.corrcoef(x, y)[0, 1]) < 5 / math.sqrt(steps)


COMPILERS = compiler.compilers()


@pytest.mark.skipif(not COMPILERS, reason="no NVRTC and no nvcc")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_philox_compiles_for_the_gpu(arch, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    path, new = compiler.compile_cubin(philox_source() + GPU_HARNESS, arch, "float64")
    assert new and path.stat().st_size > 1000
