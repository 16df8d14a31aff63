"""rand() and randn() in thresholds, resets and synaptic statements (Brian2's functions):
one counter-based draw per neuron (or synapse), trial, step and call site, the same on the
Numba and CUDA kernels; refused where a draw has no meaning."""

from __future__ import annotations

import math

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported, EquationError
from snngen.parse import parse_statements
from snngen.symbolic import draws, rand, randn
from snngen.train import RecurrentClassifier

DT = 1e-4
POISSON = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="rand() < r * dt",
                         reset="v = rand() - rand()", name="poisson_like")
SINK = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1e9", name="sink")


def _network(backend="numba", seed=3, batch=2, duration=0.5):
    net = sg.Network(dt=DT, seed=seed, dtype="float64", batch=batch)
    src = net.population("P", POISSON, 200, params={"tau": 1e9, "r": 40.0})
    sink = net.population("S", SINK, 20, params={"tau": 1e9})
    net.connect(src, sink, sg.SynapseModel("w : 1", on_pre="v += w * randn()"), "all_to_all",
                w=0.5, name="noisy")
    spikes = net.monitor_spikes(src)
    sim = net.build(backend)
    sim.run(duration)
    return sim, src, sink, spikes


@pytest.fixture(scope="module")
def numba_run():
    return _network()


def test_a_random_threshold_fires_at_its_rate(numba_run):
    _, _, _, spikes = numba_run
    n = 200 * 2 * 0.5 * 40.0  # neurons x trials x seconds x rate
    assert abs(len(spikes.i) - n) < 5 * math.sqrt(n)
    assert set(np.unique(spikes.b)) == {0, 1}


def test_each_call_site_is_its_own_draw(numba_run):
    sim, src, _, spikes = numba_run
    v = sim.state(src, "v")  # rand() - rand() at the last spike: triangular on (-1, 1)
    fired = np.zeros(v.shape, bool)
    fired[spikes.b, spikes.i] = True
    x = v[fired]
    assert np.all(np.abs(x) < 1) and np.any(x != 0)
    assert abs(x.var() - 1 / 6) < 5 * math.sqrt(2 / x.size) / 6 * 2


def test_synaptic_draws_per_synapse_and_event(numba_run):
    sim, _, sink, spikes = numba_run
    v = sim.state(sink, "v")  # sum over every presynaptic spike of 0.5 * N(0, 1)
    events = np.bincount(spikes.b, minlength=2)  # all to all: each spike reaches all 20
    z = v / (0.5 * np.sqrt(events[:, None]))
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
    assert len(np.unique(v)) == v.size  # every target and trial its own sum


def test_seeded_reproducible_and_equal_on_the_cuda_kernels(numba_run):
    sim, src, sink, spikes = numba_run
    again = _network()
    np.testing.assert_array_equal(again[3].i, spikes.i)
    np.testing.assert_array_equal(again[0].state(again[2], "v"), sim.state(sink, "v"))
    other = _network(seed=4)
    assert not np.array_equal(other[0].state(other[2], "v"), sim.state(sink, "v"))
    try:
        emu = _network("cuda-host")
    except BackendUnsupported as err:
        pytest.skip(str(err))
    np.testing.assert_array_equal(emu[3].i, spikes.i)
    np.testing.assert_array_equal(emu[3].step, spikes.step)
    np.testing.assert_allclose(emu[0].state(emu[1], "v"), sim.state(src, "v"), rtol=0,
                               atol=1e-15)
    np.testing.assert_allclose(emu[0].state(emu[2], "v"), sim.state(sink, "v"), rtol=1e-12)


def test_call_sites_are_numbered_through_a_block():
    a, b = parse_statements("v = rand() + rand(); w += randn() * rand()")
    assert a.expr == rand(0) + rand(1)  # two draws, not 2*rand()
    assert b.expr == randn(2) * rand(3) or b.expr == randn(3) * rand(2)
    assert [str(d) for d in draws(a.expr) + draws(b.expr)] != []


@pytest.mark.parametrize("make,text", [
    (lambda: sg.NeuronModel("dv/dt = rand() / tau : 1"), "for noise in equations use"),
    (lambda: sg.NeuronModel("dv/dt = -v / tau : 1\nx = randn() : 1"), "use white noise"),
    (lambda: sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0",
                            refractory="rand() * 5*ms"), "cannot set a refractory"),
    (lambda: sg.NeuronModel("dv/dt = -v / tau : 1", threshold="rand(2) < 1"),
     "takes no arguments"),
    (lambda: sg.SynapseModel("dx/dt = rand() / tau : 1 (event-driven)", on_pre="v += x"),
     "for noise in equations"),
])
def test_draws_where_they_have_no_meaning_are_refused(make, text):
    with pytest.raises(EquationError, match=text):
        make()


def test_draws_with_per_synapse_delays_are_drawn_when_due():
    """Delivered when due (the generic per-synapse path): the draw's counter is the step the
    event is delivered in, so a statement reads the same number as an undelayed one would
    in that step."""
    def run(delay):
        net = sg.Network(dt=DT, dtype="float64")
        src = net.spike_source("S", 2, indices=[0, 1], times=[1e-3, 1e-3])
        sink = net.population("T", SINK, 2, params={"tau": 1e9})
        kw = {"delay": delay} if delay is not None else {}
        proj = net.connect(src, sink, sg.SynapseModel("w : 1\nu : 1", on_pre="u = rand()"),
                           "all_to_all", w=0.0, u=-1.0, **kw)
        sim = net.build("numba")
        sim.run(0.01)
        return sim.synapses(proj, "u")[0]
    delayed = run(np.array([2e-3, 2e-3, 2e-3, 2e-3]))  # per synapse, all 20 steps
    assert np.all((delayed >= 0) & (delayed < 1)) and len(set(delayed)) == 4
    assert not np.array_equal(delayed, run(None))  # drawn 20 steps later: other numbers
    np.testing.assert_array_equal(delayed, run(2e-3))  # = one delay for the projection


def test_training_through_draws_is_refused_clearly():
    model = sg.NeuronModel("dv/dt = (I - v) / tau : 1", threshold="v > rand()", reset="v = 0")
    with pytest.raises(BackendUnsupported, match="rand"):
        RecurrentClassifier(model, "I", n_in=3, n_hidden=4, n_out=2, params={"tau": 0.01})


CONSTANT = sg.NeuronModel("""
    dv/dt = (mu - v + sigma * kick) / tau : 1
    kick = randn() : 1 (constant over dt)
    coin = rand() : 1 (constant over dt)
""", threshold="coin < p", reset="v = 0", name="constant_over_dt")


def _constant_run(backend="numba"):
    net = sg.Network(dt=DT, dtype="float64", seed=4, batch=2)
    pop = net.population("P", CONSTANT, 100,
                         params={"mu": 0.5, "sigma": 2.0, "tau": 0.01, "p": 0.0})
    mon = net.monitor_state(pop, ["v"])
    sim = net.build(backend)
    sim.run(0.2)
    return mon.v


def test_constant_over_dt_draws_once_per_step():
    """``kick`` is drawn once per neuron, trial and step and held over the step (Brian2's
    rule for subexpressions that call rand()): with the exact integrator the membrane is the
    AR(1) process v' - mu = e (v - mu) + (1 - e) sigma N, e = exp(-dt/tau), of stationary
    variance (1 - e) sigma^2 / (1 + e) and lag-k autocorrelation e^k."""
    v = _constant_run()[:, 500:, :]  # 5 tau: stationary
    e = math.exp(-DT / 0.01)
    var = (1 - e) * 4.0 / (1 + e)
    n_eff = v.shape[0] * v.shape[2] * v.shape[1] * (1 - e) / 2
    x = v - 0.5
    assert abs(x.mean()) < 5 * math.sqrt(var / n_eff)
    assert abs(np.mean(x * x) / var - 1) < 5 * math.sqrt(2 / n_eff)
    rho = np.mean(x[:, :-20] * x[:, 20:]) / np.mean(x * x)
    assert abs(rho - e ** 20) < 5 * math.sqrt(2 / n_eff)


def test_constant_over_dt_threshold_and_backends():
    net = sg.Network(dt=DT, dtype="float64", seed=4)
    pop = net.population("P", CONSTANT, 200,
                         params={"mu": 0.0, "sigma": 0.0, "tau": 0.01, "p": 0.3})
    spikes = net.monitor_spikes(pop)
    net.build("numba").run(0.05)  # coin < 0.3: each neuron fires in about 30 % of steps
    n = 200 * 500
    assert abs(len(spikes.i) - 0.3 * n) < 5 * math.sqrt(0.21 * n)
    try:
        emu = _constant_run("cuda-host")
    except BackendUnsupported as err:
        pytest.skip(str(err))
    np.testing.assert_allclose(emu, _constant_run(), rtol=0, atol=1e-13)


@pytest.mark.parametrize("make,text", [
    (lambda: sg.NeuronModel("dv/dt = -v / tau + k / tau : 1\nk = rand() : 1 (constant over dt)",
                            threshold="v > 1", reset="v = k"), "reset reads 'k'"),
    (lambda: sg.SynapseModel("k = rand() : 1 (constant over dt)", on_pre="v += k"),
     "synapse models are not built yet"),
])
def test_constant_over_dt_not_built_yet(make, text):
    with pytest.raises(EquationError, match=text):
        make()


def test_training_through_constant_over_dt_is_refused():
    model = sg.NeuronModel("dv/dt = (I - v + k) / tau : 1\nk = rand() : 1 (constant over dt)",
                           threshold="v > 1", reset="v = 0")
    with pytest.raises(BackendUnsupported, match="constant over dt"):
        RecurrentClassifier(model, "I", n_in=3, n_hidden=4, n_out=2, params={"tau": 0.01})


def test_two_constant_subexpressions_draw_independently():
    model = sg.NeuronModel("""
        dx/dt = (a - b) / tau : 1
        a = rand() : 1 (constant over dt)
        b = rand() : 1 (constant over dt)
    """, name="two_constants")
    net = sg.Network(dt=DT, dtype="float64", seed=1)
    pop = net.population("P", model, 50, params={"tau": 0.01})
    sim = net.build("numba")
    sim.run(0.02)
    x = sim.state(pop, "x")[0]
    assert np.all(x != 0) and x.std() > 0.01  # a - b: the difference of two draws
