"""The counter-based connectivity draws (snngen.draw): distributions, structure, and that the
table depends on (rule, sizes, seed) only.

Structure and exact-count checks of every rule are in test_connectivity.py; the CUDA kernels
that draw the same tables are checked against these in test_connectivity_cuda.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from snngen import draw
from snngen.connectivity import (
    FixedInDegree,
    FixedOutDegree,
    FixedProbability,
    build_csr,
)


@njit
def exponentials(n, seed):
    buf = np.empty((4, 16), np.uint64)
    out = np.empty(n)
    a, base = 0, -32
    for q in range(n):
        out[q], a, base = draw._exponential(a, 7, 0, 123, seed, 0, draw.ZIGGURAT, buf, base)
    return out, a


def test_ziggurat_gives_exponential_variates():
    n = 2_000_000
    e, attempts = exponentials(n, 11)
    assert attempts / n < 1.02  # about 1.1 % of attempts are rejected
    assert abs(e.mean() - 1) < 5 / math.sqrt(n) and abs(e.var() - 1) < 5 * math.sqrt(8 / n)
    # chi-square against the exact CDF on 60 bins of equal probability, the last one the
    # tail beyond 4.1; and the far tail beyond the ziggurat's base (r = 7.697), drawn
    # separately (r + a fresh variate)
    edges = -np.log1p(-np.linspace(0, 1, 61)[:-1])
    counts = np.bincount(np.searchsorted(edges, e, side="right") - 1, minlength=60)
    chi2 = float(((counts - n / 60) ** 2 / (n / 60)).sum())
    assert chi2 < 110  # 59 degrees of freedom: P(chi2 > 110) < 1e-4
    far = int((e > 7.69711747013104972).sum())
    expect = n * math.exp(-7.69711747013104972)
    assert abs(far - expect) < 5 * math.sqrt(expect)


def test_exp_neg_is_accurate():
    x = np.linspace(0, 8, 100_001)
    got = np.array([draw._exp_neg(v) for v in x[::97]])
    np.testing.assert_allclose(got, np.exp(-x[::97]), rtol=5e-16, atol=0)


@pytest.mark.parametrize("p", [0.003, 0.1, 0.5, 0.95])
def test_fixed_probability_gaps_are_geometric_and_rows_binomial(p):
    n_pre, n_post = 400 if p > 0.05 else 3000, 2000
    csr = build_csr(FixedProbability(p), n_pre, n_post, seed=17)
    # first synapse of each row: its column is geometric (failures before a success)
    counts = np.diff(csr.indptr)
    first = csr.indices[csr.indptr[:-1][counts > 0]].astype(np.int64)
    k = np.arange(min(40, int(5 / p)))
    pk = (1 - p) ** k * p
    obs = np.bincount(np.minimum(first, k[-1] + 1), minlength=k.size + 1)
    expect = np.append(pk, 1 - pk.sum()) * first.size
    keep = expect > 5
    chi2 = float(((obs[keep] - expect[keep]) ** 2 / expect[keep]).sum())
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, (chi2, dof)
    # row lengths: binomial(n_post, p)
    mean, var = n_post * p, n_post * p * (1 - p)
    assert abs(counts.mean() - mean) < 5 * math.sqrt(var / n_pre)
    assert abs(counts.var() / var - 1) < 6 * math.sqrt(2 / n_pre)


def test_fixed_probability_one_and_tiny():
    full = build_csr(FixedProbability(1.0, allow_self=False), 30, 20, seed=1)
    assert full.n_synapses == 30 * 20 - 20
    tiny = build_csr(FixedProbability(1e-9), 2000, 3000, seed=1)
    assert tiny.n_synapses <= 3


@pytest.mark.parametrize("k,m", [(24, 100), (60, 241)])  # sparse, several rounds per row
def test_repeated_rounds_keep_subsets_uniform(k, m):
    rows = 20000
    csr = build_csr(FixedOutDegree(k), rows, m, seed=8)
    assert np.all(np.diff(csr.indptr) == k)
    sel = np.zeros((rows, m), bool)
    sel[csr.pre_indices(), csr.indices] = True
    assert sel.sum() == rows * k  # distinct within rows
    p1, p2 = k / m, k * (k - 1) / (m * (m - 1))
    assert np.all(np.abs(sel.mean(0) - p1) < 5 * math.sqrt(p1 * (1 - p1) / rows))
    pair = (sel[:, :-1] & sel[:, 1:]).mean(0)
    assert np.all(np.abs(pair - p2) < 5 * math.sqrt(p2 * (1 - p2) / rows))
    wide = (sel[:, :-7] & sel[:, 7:]).mean(0)
    assert np.all(np.abs(wide - p2) < 5 * math.sqrt(p2 * (1 - p2) / rows))


@pytest.mark.parametrize("rule", [FixedProbability(0.05, False), FixedInDegree(9, False),
                                  FixedOutDegree(9, False)])
def test_rows_depend_only_on_rule_sizes_and_seed(rule):
    """A row's synapses are a function of (seed, row): FixedProbability and FixedOutDegree
    rows are the same in a smaller table; changing the seed changes them."""
    big = build_csr(rule, 300, 250, seed=2**40 + 5)
    again = build_csr(rule, 300, 250, seed=2**40 + 5)
    assert np.array_equal(big.indptr, again.indptr)
    assert np.array_equal(big.indices, again.indices)
    assert not np.any(big.pre_indices() == big.indices)
    other = build_csr(rule, 300, 250, seed=5)
    assert not np.array_equal(big.indices[:200], other.indices[:200])
    if not isinstance(rule, FixedInDegree):  # in-degree rows mix every column's draws
        small = build_csr(rule, 120, 250, seed=2**40 + 5)
        n = small.n_synapses
        assert np.array_equal(small.indptr, big.indptr[:121])
        assert np.array_equal(small.indices, big.indices[:n])


def test_seeds_split_into_two_key_words():
    a = build_csr(FixedProbability(0.1), 50, 60, seed=3)
    b = build_csr(FixedProbability(0.1), 50, 60, seed=3 + 2**32)  # same low word
    assert not np.array_equal(a.indices[:50], b.indices[:50])
