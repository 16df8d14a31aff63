"""Generated kernels never index out of bounds (issue 18: compiled kernels must never read or
write outside user data).

The kernels are compiled with ``boundscheck=False`` for speed, so an off-by-one read past an
array's end is silent undefined behaviour that results may not show (a loop bound ``c <= n``
instead of ``c < n`` in the spike-source replay was such a case, found by mutation testing).
``NUMBA_BOUNDSCHECK=1`` overrides the flag for every function: this test runs a network that
exercises every kind of kernel node under it, in a fresh process with fresh caches, and
checks first that the override really turns an out-of-bounds read into an IndexError.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import njit

    @njit(boundscheck=False)
    def past_the_end(a):
        return a[a.shape[0]]

    try:
        past_the_end(np.zeros(3))
    except IndexError:
        pass
    else:
        raise SystemExit("NUMBA_BOUNDSCHECK=1 did not take effect")

    import snngen as sg

    dt = 1e-4
    lif = sg.NeuronModel('''
        dv/dt = (I - v) / tau : 1 (unless refractory)
        dI/dt = -I / taus : 1
    ''', threshold="v > 1", reset="v = 0", refractory="0.3*ms", name="lif")
    stdp = sg.SynapseModel('''
        w : 1
        dA/dt = -A / 0.02 : 1 (event-driven)
        dB/dt = -B / 0.02 : 1 (event-driven)
    ''', on_pre="I += w; A += 0.01; w = clip(w + B, 0, 2)",
        on_post="B -= 0.01; w = clip(w + A, 0, 2)", name="stdp")
    steps = 300
    net = sg.Network(dt=dt, batch=2, seed=5, dtype="float64")
    # events up to the very last step of the run and of the table
    idx = np.r_[np.arange(7), 6, 0]
    times = np.r_[np.arange(7) * 40, steps - 1, steps - 1] * dt
    src = net.spike_source("S", 7, idx, times)
    poi = net.poisson("X", 13, rates=400.0)
    pop = net.population("P", lif, 37, params={"tau": 0.01, "taus": 0.005},
                         init={"v": sg.Uniform(0, 1)})
    net.connect(src, pop[3:30], stdp, {"p": 0.5}, w=0.8, delay="1*ms")
    net.connect(poi, pop, "I += w", {"k_in": 4}, w=0.6, delay="(i + j) * 0.05*ms")
    net.connect(pop, pop[:20], "v += w", {"p": 0.2}, w=0.3)
    net.connect(pop[10:], pop[:27], "I -= w", "one_to_one", w=0.1, delay=0.0)
    net.monitor_spikes(pop)
    net.monitor_rate(src)
    net.monitor_state(pop[5:9], ["v", "I"], every=3)
    sim = net.build()
    sim.run(steps * dt)
    sim.run(17 * dt)  # a second run: rings and cursors carried over

    # connectivity's column regrouping, with buckets wider than one column (its scratch
    # arrays are sized from the bucket width)
    from snngen.connectivity import _regroup
    rng = np.random.default_rng(0)
    for n_cols in (300, 1000, 70_001):
        indptr = np.arange(0, 401, 20, dtype=np.int64)
        indices = rng.integers(0, n_cols, 400).astype(np.int32)
        _regroup(indptr, indices, n_cols, True)
    print("ok")
""")


def test_kernels_stay_in_bounds_under_numba_boundscheck(tmp_path):
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", SNNGEN_CACHE_DIR=str(tmp_path / "cache"),
               NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    env.pop("SNNGEN_TEST_CACHE", None)
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=900, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
