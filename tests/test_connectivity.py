"""Tests of snngen.connectivity: rules, CSR building, transpose and error messages."""

import math
import time

import numpy as np
import pytest

from snngen.connectivity import (
    CSR,
    AllToAll,
    Explicit,
    FixedInDegree,
    FixedOutDegree,
    FixedProbability,
    OneToOne,
    build_csr,
    expected_synapses,
    parse_rule,
    transpose,
)
from snngen.errors import ConnectivityError, NetworkTooLargeError


def pairs(csr: CSR) -> list[tuple[int, int]]:
    return list(zip(csr.pre_indices().tolist(), csr.indices.tolist(), strict=True))


def check_structure(csr: CSR, distinct: bool = True) -> None:
    """dtypes, shapes, bounds and ascending (strictly when ``distinct``) rows."""
    assert csr.indptr.dtype == np.int64 and csr.indptr.shape == (csr.n_pre + 1,)
    assert csr.indices.dtype == np.int32 and csr.indices.size == csr.n_synapses
    assert csr.indptr[0] == 0 and np.all(np.diff(csr.indptr) >= 0)
    if csr.n_synapses:
        assert csr.indices.min() >= 0 and csr.indices.max() < csr.n_post
    step = np.diff(csr.indices.astype(np.int64))
    inside_row = np.ones(step.size, bool)
    starts = csr.indptr[1:-1]
    inside_row[starts[(starts > 0) & (starts < csr.n_synapses)] - 1] = False
    assert np.all(step[inside_row] > 0) if distinct else np.all(step[inside_row] >= 0)


# --- rules with exact counts -------------------------------------------------------------------

@pytest.mark.parametrize("n_pre,n_post", [(4, 4), (3, 6), (6, 3), (0, 5), (5, 0)])
@pytest.mark.parametrize("allow_self", [True, False])
def test_all_to_all_matches_brute_force(n_pre, n_post, allow_self):
    csr = build_csr(AllToAll(allow_self), n_pre, n_post, seed=0)
    check_structure(csr)
    want = [(a, b) for a in range(n_pre) for b in range(n_post) if allow_self or a != b]
    assert pairs(csr) == want
    assert csr.n_synapses == expected_synapses(AllToAll(allow_self), n_pre, n_post)


def test_one_to_one():
    csr = build_csr("one_to_one", 5, 5, seed=0)
    check_structure(csr)
    assert pairs(csr) == [(a, a) for a in range(5)]
    assert csr.order is None


@pytest.mark.parametrize("n_pre,n_post,k", [(200, 1000, 7), (300, 40, 25), (50, 30, 30),
                                            (40, 60, 1), (1000, 10, 0)])
@pytest.mark.parametrize("allow_self", [True, False])
def test_fixed_out_degree_exact(n_pre, n_post, k, allow_self):
    if not allow_self and k == n_post:
        k -= 1
    csr = build_csr(FixedOutDegree(k, allow_self), n_pre, n_post, seed=3)
    check_structure(csr)
    assert np.all(np.diff(csr.indptr) == k)
    if not allow_self:
        assert not np.any(csr.pre_indices() == csr.indices)


@pytest.mark.parametrize("n_pre,n_post,k", [(1000, 200, 7), (40, 300, 25), (30, 50, 30),
                                            (300, 40, 0)])
@pytest.mark.parametrize("allow_self", [True, False])
def test_fixed_in_degree_exact(n_pre, n_post, k, allow_self):
    if not allow_self and k == n_pre:
        k -= 1
    csr = build_csr(FixedInDegree(k, allow_self), n_pre, n_post, seed=3)
    check_structure(csr)
    assert np.all(np.bincount(csr.indices, minlength=n_post) == k)
    if not allow_self:
        assert not np.any(csr.pre_indices() == csr.indices)


def test_all_degree_equal_to_population_is_all_to_all():
    full = build_csr(AllToAll(False), 6, 6, seed=0)
    for rule in (FixedOutDegree(5, False), FixedInDegree(5, False), FixedProbability(1.0, False)):
        assert pairs(build_csr(rule, 6, 6, seed=1)) == pairs(full)


# --- statistics --------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.002, 0.05, 0.6])
def test_fixed_probability_mean(p):
    n_pre, n_post = 1500, 2000
    csr = build_csr(FixedProbability(p), n_pre, n_post, seed=11)
    check_structure(csr)
    n = n_pre * n_post
    assert abs(csr.n_synapses - n * p) < 5 * math.sqrt(n * p * (1 - p))
    # targets are uniform: each fifth of the post population gets a fifth of the synapses
    fifths = np.bincount(csr.indices // (n_post // 5), minlength=5)
    assert np.all(np.abs(fifths - csr.n_synapses / 5) < 5 * math.sqrt(csr.n_synapses / 5))


def test_fixed_probability_extremes_and_no_self():
    assert build_csr(FixedProbability(0.0), 50, 50, seed=0).n_synapses == 0
    csr = build_csr(FixedProbability(0.3, allow_self=False), 300, 300, seed=0)
    assert not np.any(csr.pre_indices() == csr.indices)
    assert expected_synapses(FixedProbability(0.3, False), 300, 300) == round(0.3 * 300 * 299)


@pytest.mark.parametrize("k,m", [(3, 20), (4, 9)])  # sparse sampler, then dense one
def test_subsets_are_uniform(k, m):
    rows = 30000
    csr = build_csr(FixedOutDegree(k), rows, m, seed=5)
    check_structure(csr)
    # every value equally often, and every adjacent pair as often as a uniform k-subset says
    sel = np.zeros((rows, m), bool)
    sel[csr.pre_indices(), csr.indices] = True
    p1, p2 = k / m, k * (k - 1) / (m * (m - 1))
    assert np.all(np.abs(sel.mean(0) - p1) < 5 * math.sqrt(p1 * (1 - p1) / rows))
    adjacent = (sel[:, 1:] & sel[:, :-1]).mean(0)
    assert np.all(np.abs(adjacent - p2) < 5 * math.sqrt(p2 * (1 - p2) / rows))


# --- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [FixedProbability(0.1), FixedInDegree(5), FixedOutDegree(5)])
def test_deterministic_per_seed(rule):
    a, b = (build_csr(rule, 100, 120, seed=42) for _ in range(2))
    c = build_csr(rule, 100, 120, seed=43)
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert not (np.array_equal(a.indptr, c.indptr) and np.array_equal(a.indices, c.indices))


# --- explicit ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16])
def test_explicit_order_round_trip_with_multapses(dtype):
    rng = np.random.default_rng(0)
    i = rng.integers(0, 20, 500).astype(dtype)
    j = rng.integers(0, 30, 500).astype(dtype)
    i[:5], j[:5] = 3, 7  # a pair repeated five times
    csr = build_csr(Explicit(i, j), 20, 30, seed=0)
    check_structure(csr, distinct=False)
    assert csr.n_synapses == 500 and csr.order.dtype == np.int64
    assert np.array_equal(np.sort(csr.order), np.arange(500))
    user_values = rng.random(500)
    out = np.empty(500)
    out[csr.order] = user_values
    pre = csr.pre_indices()
    assert np.array_equal(pre[csr.order], i) and np.array_equal(csr.indices[csr.order], j)
    for d in range(500):  # every CSR slot holds the value the user gave for that (i, j)
        hits = np.flatnonzero((i == pre[d]) & (j == csr.indices[d]))
        assert out[d] in user_values[hits]
    # repeated pairs keep the user's order
    assert np.all(np.diff(csr.order[:5]) > 0)


def test_explicit_from_lists_and_empty():
    csr = build_csr({"i": [2, 0, 2, 2], "j": [1, 1, 0, 1]}, 3, 2, seed=0)
    assert pairs(csr) == [(0, 1), (2, 0), (2, 1), (2, 1)]
    assert csr.order.tolist() == [2, 0, 1, 3]
    empty = build_csr(Explicit([], []), 3, 2, seed=0)
    assert empty.n_synapses == 0 and empty.indptr.tolist() == [0, 0, 0, 0]


# --- transpose ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", [FixedProbability(0.1), Explicit(np.arange(40) % 7,
                                                                  np.arange(40) % 5)])
def test_transpose_matches_brute_force(rule):
    csr = build_csr(rule, 60, 70, seed=9)
    t = transpose(csr)
    assert t.indptr.dtype == np.int64 and t.synapse.dtype == np.int64 and t.pre.dtype == np.int32
    pre = csr.pre_indices()
    for post in range(csr.n_post):
        want = [s for s in range(csr.n_synapses) if csr.indices[s] == post]  # ascending pre
        got = t.synapse[t.indptr[post]:t.indptr[post + 1]].tolist()
        assert got == want
        assert t.pre[t.indptr[post]:t.indptr[post + 1]].tolist() == pre[want].tolist()


# --- parse_rule, expected_synapses, CSR helpers ------------------------------------------------

def test_parse_rule_forms():
    rule = FixedInDegree(3)
    assert parse_rule(rule) is rule
    assert parse_rule("all_to_all") == AllToAll()
    assert parse_rule("One-To-One") == OneToOne()
    assert parse_rule({"p": 0.2}) == FixedProbability(0.2)
    assert parse_rule({"k_in": 80, "allow_self": False}) == FixedInDegree(80, False)
    assert parse_rule({"k_out": 8}) == FixedOutDegree(8)
    assert parse_rule(k_out=8) == FixedOutDegree(8)
    assert isinstance(parse_rule({"i": [0], "j": [1]}), Explicit)


def test_expected_synapses():
    assert expected_synapses(AllToAll(), 3, 4) == 12
    assert expected_synapses(OneToOne(), 5, 5) == 5
    assert expected_synapses({"p": 0.25}, 10, 20) == 50
    assert expected_synapses(FixedInDegree(3), 10, 20) == 60
    assert expected_synapses(FixedOutDegree(3), 10, 20) == 30
    assert expected_synapses(Explicit([0, 1], [1, 1]), 2, 2) == 2
    assert expected_synapses(AllToAll(), 10**6, 10**6) == 10**12  # no int overflow


def test_csr_helpers_and_int64_indptr():
    csr = build_csr(FixedOutDegree(2), 3, 5, seed=0)
    assert csr.n_synapses == 6 and isinstance(csr.n_synapses, int)
    assert csr.pre_indices().tolist() == [0, 0, 1, 1, 2, 2]
    assert csr.pre_indices().dtype == np.int32
    assert csr.nbytes == 4 * 8 + 6 * 4
    for rule in ("all_to_all", "one_to_one", {"p": 0.5}, {"k_in": 2}, {"k_out": 2},
                 {"i": np.array([0], np.int32), "j": np.array([0], np.int32)}):
        assert build_csr(rule, 3, 3, seed=0).indptr.dtype == np.int64


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1.5, -0.1, float("nan"), "0.1", True])
def test_bad_probability(p):
    with pytest.raises(ConnectivityError, match=r"FixedProbability: p must be a number in \[0,"):
        FixedProbability(p)


@pytest.mark.parametrize("k,match", [(-1, ">= 0, got -1"), (2.5, "integer, got 2.5"),
                                     (True, "integer, got True")])
def test_bad_degree(k, match):
    with pytest.raises(ConnectivityError, match=f"FixedOutDegree: k must be .*{match}"):
        FixedOutDegree(k)
    with pytest.raises(ConnectivityError, match="FixedInDegree: k"):
        FixedInDegree(k)


def test_degree_larger_than_population():
    with pytest.raises(ConnectivityError, match=r"FixedOutDegree: k = 6 .* only 5 .*k_out"):
        build_csr(FixedOutDegree(6), 10, 5, seed=0)
    with pytest.raises(ConnectivityError, match=r"only 4 are available once self-connections"):
        build_csr(FixedOutDegree(5, allow_self=False), 5, 5, seed=0)
    with pytest.raises(ConnectivityError, match=r"FixedInDegree: k = 4 distinct pre .*only 3"):
        build_csr({"k_in": 4}, 3, 8, seed=0)


def test_one_to_one_size_mismatch():
    with pytest.raises(ConnectivityError, match="n_pre = 3 and n_post = 4"):
        build_csr(OneToOne(), 3, 4, seed=0)


def test_explicit_errors():
    with pytest.raises(ConnectivityError, match=r"same length, got len\(i\) = 2 and len\(j\) = 3"):
        Explicit([0, 1], [0, 1, 2])
    with pytest.raises(ConnectivityError, match="j must have an integer dtype, got float64"):
        Explicit([0, 1], [0.0, 1.0])
    with pytest.raises(ConnectivityError, match=r"i must be a 1-D index array, got shape \(1, 2\)"):
        Explicit([[0, 1]], [0, 1])
    with pytest.raises(ConnectivityError, match=r"Explicit: i\[2\] = 5 is out of range for the pre "
                                                r"population of 5 neurons \(valid indices 0..4\)"):
        build_csr(Explicit([0, 4, 5, 7], [0, 0, 0, 0]), 5, 5, seed=0)
    with pytest.raises(ConnectivityError, match=r"Explicit: j\[1\] = -1 is out of range for the "
                                                r"post population"):
        build_csr(Explicit([0, 0], [0, -1]), 5, 5, seed=0)


def test_size_and_seed_errors():
    with pytest.raises(ConnectivityError, match=r"n_pre must be in \[0, 2147483647\], got 2147483"):
        build_csr(FixedProbability(0.0), 2**31, 10, seed=0)
    with pytest.raises(ConnectivityError, match=r"n_post must be in .* got -1"):
        build_csr(AllToAll(), 3, -1, seed=0)
    with pytest.raises(ConnectivityError, match=r"seed must be in \[0, 18446744073709551615\], "
                                                r"got -3"):
        build_csr(AllToAll(), 3, 3, seed=-3)
    with pytest.raises(ConnectivityError, match="got 18446744073709551616"):  # the Philox key
        build_csr(AllToAll(), 3, 3, seed=2**64)


def test_parse_rule_errors():
    with pytest.raises(ConnectivityError, match=r"unknown connection rule 'all_to_al'.*'all_to"):
        parse_rule("all_to_al")
    with pytest.raises(ConnectivityError, match=r"keys \['k', 'p'\] not understood.*'k_in'"):
        parse_rule({"p": 0.1, "k": 3})
    with pytest.raises(ConnectivityError, match=r"connection rule 3 not understood.*Explicit"):
        parse_rule(3)
    with pytest.raises(ConnectivityError, match="not both"):
        parse_rule("all_to_all", p=0.1)


def test_max_bytes_refuses_before_allocating():
    start = time.perf_counter()
    with pytest.raises(NetworkTooLargeError, match=r"50,000,000,000,000 synapses .* GiB") as err:
        build_csr(FixedProbability(0.5), 10**7, 10**7, seed=0, max_bytes=2**30)
    assert time.perf_counter() - start < 1.0
    assert isinstance(err.value, MemoryError)
    assert "1 GiB" in str(err.value)
    small = build_csr(FixedOutDegree(3), 10, 10, seed=0, max_bytes=10**4)
    assert small.n_synapses == 30
