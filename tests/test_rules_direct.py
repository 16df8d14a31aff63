"""Direct tests of three timing and randomness rules, each checked step by step.

- Refractoriness: after a spike at step ``s`` a neuron cannot spike before ``s + max(R, 1)``
  and variables flagged ``(unless refractory)`` stay frozen in steps ``s + 1 .. s + R - 1``,
  where ``R`` is :func:`refractory_steps` (durations given as numbers, quantity strings and
  expressions, shared or per neuron).
- Delays: a spike emitted at step ``s`` through a synapse with delay ``d`` arrives at step
  ``s + delay_steps(d)`` (numbers, quantity strings, arrays and expressions of ``i``, ``j``
  and parameters).
- Philox draws: every row (Poisson neuron, batch entry, connectivity row) has its own
  counter, so rows are never copies of each other and are uncorrelated, and changing one
  row's inputs changes that row only.

The two rounding rules live in one place each (:func:`refractory_steps`,
:func:`delay_steps`): a change of the rounding convention changes those helpers only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import snngen as sg
from snngen.connectivity import FixedInDegree, FixedOutDegree, FixedProbability, build_csr

DT = 1e-4


def refractory_steps(duration: float, dt: float = DT) -> int:
    """``R``: the documented rounding of a refractory period to steps, Brian2's
    ``timestep(d) = int((d + 1e-3 dt) / dt)`` (the floor: 2.6 steps are 2); spikes are then
    at least ``max(R, 1)`` steps apart."""
    return int((duration + 1e-3 * dt) / dt)


def delay_steps(delay: float, dt: float = DT) -> int:
    """Steps from a spike to its delivery, Brian2's ``int(d / dt + 0.5)``: a delay of 0 is
    delivered in the step of the spike (after the threshold, before the reset), half steps
    round up (README, "Order within a step")."""
    return int(delay / dt + 0.5)


# -- refractoriness ----------------------------------------------------------------------------
#: v climbs by exactly 1 per free step (c dt = 1) and spikes above 2.5: three free steps.
RAMP = "dv/dt = c : 1{flag}"
FREE_STEPS = 3


def _expected_spikes(r: int, clamped: bool, steps: int) -> list[int]:
    """Spike steps of a neuron starting at v = 0 that needs FREE_STEPS updates to spike."""
    out, s = [], FREE_STEPS - 1
    while s < steps:
        out.append(s)
        if clamped:  # frozen in s+1 .. s+R-1, then FREE_STEPS free updates
            s += max(r - 1, 0) + FREE_STEPS
        else:  # v climbs meanwhile; the threshold is blocked up to s+R-1
            s += max(FREE_STEPS, r, 1)
    return out


DURATIONS = [0.0, 1e-4, 2e-4, 3e-4, 2.4e-4, 2.6e-4, 5e-4, 7.6e-4, 1e-3, 2e-3]


@pytest.mark.parametrize("clamped", [True, False])
@pytest.mark.parametrize("form", [
    # "number": seconds as a float, as NeuronModel's docstring documents (it was once
    # checked as dimensionless against second and refused with a UnitError)
    "per_neuron_expression", "quantity", "number",
])
def test_refractory_period_in_exact_steps(clamped, form):
    steps = 120
    flag = " (unless refractory)" if clamped else ""
    if form == "per_neuron_expression":
        model = sg.NeuronModel(RAMP.format(flag=flag),
                               threshold="v > 2.5", reset="v = 0", refractory="tref")
        durations, params = DURATIONS, {"tref": np.array(DURATIONS)}
    else:
        # one shared period per network: the longest and a non-whole one
        durations = [1e-3, 2.6e-4]
        params = {}
    results = []
    for k, duration in enumerate(durations if form != "per_neuron_expression" else [None]):
        if form != "per_neuron_expression":
            ref = duration if form == "number" else f"{duration * 1e3!r}*ms"
            model = sg.NeuronModel(RAMP.format(flag=flag), threshold="v > 2.5",
                                   reset="v = 0", refractory=ref, name=f"ramp{k}")
        net = sg.Network(dt=DT, dtype="float64")
        n = len(durations) if form == "per_neuron_expression" else 1
        pop = net.population("P", model, n, params={"c": 1.0 / DT, **params})
        spikes = net.monitor_spikes(pop)
        state = net.monitor_state(pop, "v")
        net.build().run(steps * DT)
        results.append((spikes, state, durations if n > 1 else [duration]))
    for spikes, state, durs in results:
        for idx, duration in enumerate(durs):
            r = refractory_steps(duration)
            got = spikes.step[spikes.i == idx].tolist()
            assert got == _expected_spikes(r, clamped, steps), (duration, r)
            if clamped:  # frozen at the reset value while refractory, and only then
                v = state.v[0, :, idx]
                for s in got:
                    # record k is the state at the start of step k, after step k - 1
                    frozen = v[s + 1:s + max(r - 1, 0) + 2]
                    assert np.all(frozen == 0.0), (duration, s)
                    if s + max(r - 1, 0) + 2 < steps:
                        assert v[s + max(r - 1, 0) + 2] > 0.5, (duration, s)


def test_refractory_expression_of_shared_parameters():
    """``refractory="2 * tref0 + 0.1*ms"``: an expression, not a value, gives R = 2 k + 1."""
    model = sg.NeuronModel("dv/dt = c : 1 (unless refractory)",
                           threshold="v > 0.5", reset="v = 0",
                           refractory="2 * tref0 + 0.1*ms")
    for k in (2, 5):
        net = sg.Network(dt=DT, dtype="float64")
        pop = net.population("P", model, 2, params={"c": 1.0 / DT, "tref0": k * DT})
        spikes = net.monitor_spikes(pop)
        net.build().run(60 * DT)
        r = refractory_steps(2 * k * DT + 1e-4)
        assert r == 2 * k + 1
        got = spikes.step[spikes.i == 0]
        assert got[0] == 0
        np.testing.assert_array_equal(np.diff(got), r)


# -- delays --------------------------------------------------------------------------------
#: A target that only adds its inputs: v stays an exact sum of the weights that arrived.
SUM = sg.NeuronModel("dv/dt = r : 1", threshold="v > 1e300", reset="v = 0", name="sum")
SPIKE_STEPS = [0, 3, 11, 5]


def _arrivals(delay, params=None, n_post=3):
    """{(i, j): step at which synapse i -> j delivered} for 4 sources spiking once each."""
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 4, [0, 1, 2, 3], [s * DT for s in SPIKE_STEPS])
    pop = net.population("P", SUM, n_post, params={"r": 0.0})
    # one bit per synapse: v_j = sum of 2**(i + 4 j) over the synapses that have arrived
    net.connect(src, pop, "v += w", "all_to_all", w="2.0**(i + 4*j)", delay=delay,
                params=params or {})
    state = net.monitor_state(pop, "v")
    net.build().run(60 * DT)
    v = state.v[0]  # record k: the state at the start of step k, after step k - 1
    out = {}
    for j in range(n_post):
        bits = v[:, j].astype(np.int64) >> (4 * j)
        assert np.all(v[:, j] == np.floor(v[:, j]))
        for i in range(4):
            arrived = np.nonzero(bits & (1 << i))[0]
            out[i, j] = int(arrived[0]) - 1 if arrived.size else None  # delivered in step
    return out


@pytest.mark.parametrize("delay, seconds", [
    (0.0, 0.0), (1e-4, 1e-4), (3e-4, 3e-4), (2.4e-4, 2.4e-4), (2.6e-4, 2.6e-4),
    ("0.7*ms", 7e-4), ("1.2*ms", 1.2e-3), ("260*us", 2.6e-4),
])
def test_homogeneous_delay_arrives_at_the_documented_step(delay, seconds):
    got = _arrivals(delay)
    for (i, _), step in got.items():
        assert step == SPIKE_STEPS[i] + delay_steps(seconds), (delay, i)


def test_per_synapse_delays_from_arrays_and_expressions():
    i = np.repeat(np.arange(4), 3)  # all_to_all order: row by row
    j = np.tile(np.arange(3), 4)
    seconds = (i + 2 * j) * 1e-4 + 0.26e-3
    cases = {
        "array": (seconds, None),
        "expression with a quantity": ("(i + 2*j) * 0.1*ms + 0.26*ms", None),
        "expression with a parameter": ("(i + 2*j) * step + d0", {"step": 1e-4,
                                                                  "d0": 0.26e-3}),
    }
    for name, (delay, params) in cases.items():
        got = _arrivals(delay, params)
        for k in range(12):
            want = SPIKE_STEPS[i[k]] + delay_steps(seconds[k])
            assert got[i[k], j[k]] == want, (name, i[k], j[k])


# -- Philox rows ---------------------------------------------------------------------------
def _poisson_trains(n, rates, steps, batch=1, seed=11):
    net = sg.Network(dt=1e-3, seed=seed, batch=batch)
    src = net.poisson("S", n, rates=rates)
    spikes = net.monitor_spikes(src)
    net.build().run(steps * 1e-3)
    trains = np.zeros((batch, n, steps), np.uint8)
    trains[spikes.b, spikes.i, spikes.step] = 1
    return trains


def _assert_rows_independent(rows: np.ndarray, sigmas: float = 6.0):
    """No two rows equal, and every pairwise correlation within ``sigmas`` standard
    errors (1/sqrt(columns)) of 0."""
    rows = rows.astype(np.float64)
    assert len({r.tobytes() for r in rows}) == len(rows), "two rows are identical"
    c = np.corrcoef(rows)
    off = c[~np.eye(len(rows), dtype=bool)]
    assert np.all(np.abs(off) < sigmas / math.sqrt(rows.shape[1])), np.abs(off).max()
    assert abs(off.mean()) < 3 / math.sqrt(rows.shape[1] * len(off) / 2)


def test_poisson_neurons_and_batch_entries_draw_independently():
    trains = _poisson_trains(24, 300.0, 2000, batch=3)
    assert 0.25 < trains.mean() < 0.35
    _assert_rows_independent(trains.reshape(-1, trains.shape[-1]))  # (neuron, entry) rows


def test_changing_one_poisson_row_changes_that_row_only():
    rates = np.full(16, 200.0)
    base = _poisson_trains(16, rates, 500)
    rates[5] = 400.0
    changed = _poisson_trains(16, rates, 500)
    assert not np.array_equal(base[0, 5], changed[0, 5])
    keep = np.arange(16) != 5
    np.testing.assert_array_equal(base[0, keep], changed[0, keep])
    # a larger source draws the same trains for its first rows; another seed does not
    bigger = _poisson_trains(20, 200.0, 500)
    np.testing.assert_array_equal(bigger[0, :16][keep], base[0, keep])
    other = _poisson_trains(16, 200.0, 500, seed=12)
    assert all(not np.array_equal(other[0, k], base[0, k]) for k in range(16))


def _dense(csr):
    m = np.zeros((csr.n_pre, csr.n_post), np.uint8)
    m[csr.pre_indices(), csr.indices] = 1
    return m


@pytest.mark.parametrize("rule", [
    FixedProbability(0.3), FixedProbability(0.05),
    FixedOutDegree(90), FixedInDegree(60),  # 4 k >= candidates: selection sampling
    FixedOutDegree(20), FixedInDegree(12),  # sparse rows: sorted exponential spacings
])
def test_connectivity_rows_are_distinct_and_uncorrelated(rule):
    m = _dense(build_csr(rule, 150, 300, seed=2**33 + 7))
    if isinstance(rule, FixedInDegree):  # its draws are per column (post neuron)
        m = m.T
    # sparse binary rows have skewed correlations (6.2 standard errors here for p = 0.05):
    # the bound is loose, a copied or shifted row still gives 1
    _assert_rows_independent(m, sigmas=8.0)


@pytest.mark.parametrize("rule", [FixedProbability(0.3), FixedOutDegree(40),
                                  FixedInDegree(40), FixedOutDegree(8), FixedInDegree(8)])
def test_changing_the_seed_changes_every_row(rule):
    a = _dense(build_csr(rule, 100, 120, seed=21))
    b = _dense(build_csr(rule, 100, 120, seed=22))
    if isinstance(rule, FixedInDegree):
        a, b = a.T, b.T
    assert all(not np.array_equal(x, y) for x, y in zip(a, b))
