"""Known answers for snngen's own random draws: connectivity tables and simulation uniforms.

The tables are a contract: they depend only on (rule, sizes, seed), and the CUDA backend
draws the same bits (tests/test_connectivity_cuda.py checks that where a compiler is
present). These recorded answers pin the algorithm on machines without one, so a change of
any draw (a counter word, a round number, a constant) fails here (it was a surviving mutant
of ``snngen/draw.py``: benchmarks/mutation.py, tests/RELIABILITY.md). If the algorithm is
changed on purpose, change it in both backends and record the new answers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from snngen.connectivity import FixedInDegree, FixedOutDegree, FixedProbability, build_csr
from snngen.draw import uniform

SEED = 2**35 + 11


def _digest(csr) -> str:
    data = np.ascontiguousarray(csr.indptr, np.int64).tobytes() + \
        np.ascontiguousarray(csr.indices, np.int64).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.mark.parametrize("rule, n_syn, digest, first", [
    (FixedProbability(0.1), 198, "35e84794d2c88665", [1, 13, 24, 27, 30, 33]),
    (FixedProbability(0.6, False), 1184, "3a656facb4eb2831", [1, 3, 5, 6, 7, 8]),
    (FixedOutDegree(3), 120, "990c6d56375904f4", [18, 32, 37, 13, 36, 44]),  # sparse rows
    (FixedOutDegree(30, False), 1200, "84edd3ea1dea3b37", [2, 3, 4, 5, 9, 10]),  # dense
    (FixedInDegree(4), 200, "cec6bb8598342f43", [15, 22, 26, 35, 8, 32]),
    (FixedInDegree(25, False), 1250, "65d554a2c341e33d", [1, 2, 4, 5, 6, 7]),
    # just below the switch to selection sampling (4 k < candidates <= 5 k): sparse rows
    (FixedOutDegree(11), 440, "0c8f1a2a4859f3cd", [4, 8, 9, 12, 18, 26]),
    (FixedInDegree(9, False), 450, "ab4d205e0d915aa6", [8, 15, 22, 26, 32, 34]),
])
def test_connectivity_tables_are_the_recorded_ones(rule, n_syn, digest, first):
    csr = build_csr(rule, 40, 50, seed=SEED)
    assert csr.n_synapses == n_syn
    assert csr.indices[:6].tolist() == first
    assert _digest(csr) == digest


def test_simulation_uniforms_are_the_recorded_ones():
    got = [uniform(7, s, i, b, st) for s, i, b, st in
           [(0, 3, 0, 1), (5, 0, 1, 2), (123456, 789, 3, 0)]]
    assert got == [0.014603064112129305, 0.9599812840258347, 0.4919097637948011]
