"""Brian2's ``lastspike`` and ``not_refractory`` in synaptic statements: the values at the
synaptic stage of a step (after thresholds: a neuron that spikes now has lastspike = t and
is refractory), checked by hand on a small network, on Numba and the CUDA kernels."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported, UnknownNameError

DT = 1e-4
LIF = sg.NeuronModel("dv/dt = (2 - v) / tau : 1 (unless refractory)", threshold="v > 1",
                     reset="v = 0", refractory="3*ms", name="spike_variables")
RECORD = sg.SynapseModel("w : 1\nd : second\nnr : 1",
                         on_pre="d = t - lastspike_post; nr = not_refractory_post; w += 1")


def _run(backend="numba"):
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 2, indices=[0, 1, 0, 1], times=[0.005, 0.012, 0.0303, 0.05])
    pop = net.population("P", LIF, 3, params={"tau": np.array([0.01, 0.02, 0.03])})
    proj = net.connect(src, pop, RECORD, "all_to_all", w=0.0, d=0.0, nr=-1.0)
    spikes = net.monitor_spikes(pop)
    sim = net.build(backend)
    sim.run(0.06)
    return sim, proj, spikes


@pytest.mark.parametrize("backend", ["numba", "cuda-host"])
def test_values_at_the_synaptic_stage(backend):
    try:
        sim, proj, spikes = _run(backend)
    except BackendUnsupported as err:
        pytest.skip(str(err))
    last = {}
    for i, step in zip(spikes.i, spikes.step):
        last.setdefault(int(i), []).append(int(step))
    want_d, want_nr = [], []
    for pre_step in (303, 500):  # the last spike of each source, in CSR order (all to all)
        for post in range(3):
            before = max(s for s in last[post] if s <= pre_step)
            want_d.append((pre_step - before) * DT)
            want_nr.append(float(pre_step - before >= 30))  # 3 ms = 30 steps
    np.testing.assert_allclose(sim.synapses(proj, "d")[0], want_d, rtol=1e-12)
    np.testing.assert_array_equal(sim.synapses(proj, "nr")[0], want_nr)
    assert 0.0 in want_nr and 1.0 in want_nr  # both cases happen
    np.testing.assert_array_equal(sim.synapses(proj, "w")[0], 2.0)


def test_before_the_first_spike_lastspike_is_brian2s():
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 1, indices=[0], times=[0.001])
    pop = net.population("P", LIF, 1, params={"tau": 10.0})  # never spikes this early
    proj = net.connect(src, pop, RECORD, "all_to_all", w=0.0, d=0.0, nr=-1.0)
    sim = net.build("numba")
    sim.run(0.002)
    assert sim.synapses(proj, "d")[0, 0] == pytest.approx(0.001 + 1e4)
    assert sim.synapses(proj, "nr")[0, 0] == 1.0


def _network(post_model, **kw):
    net = sg.Network(dt=DT)
    src = net.spike_source("S", 2, indices=[0], times=[0.001])
    pop = net.population("P", post_model, 2, params={"tau": 0.01})
    return net, src, pop


def test_refused_without_a_refractory_period_and_when_written():
    plain = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net, src, pop = _network(plain)
    net.connect(src, pop, sg.SynapseModel("d : second", on_pre="d = t - lastspike_post"),
                "all_to_all")
    with pytest.raises(UnknownNameError, match="needs a refractory period"):
        net.build("numba")
    net, src, pop = _network(LIF)
    net.connect(src, pop, sg.SynapseModel("w : 1", on_pre="not_refractory_post = 0"),
                "all_to_all")
    with pytest.raises(UnknownNameError, match="read-only"):
        net.build("numba")


def test_read_when_due_with_per_synapse_delays():
    """With per-synapse delays the statement runs when the event is due, and reads the
    target's refractoriness then (Brian2's spike queue)."""
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 1, indices=[0], times=[0.0051])
    pop = net.population("P", LIF, 2, params={"tau": 0.01})  # spikes at steps 69, 168, ...
    proj = net.connect(src, pop, RECORD, "all_to_all", w=0.0, d=0.0, nr=-1.0,
                       delay=np.array([1.9e-3, 3.5e-3]))  # due at steps 51 + 19, 51 + 35
    sim = net.build("numba")
    sim.run(0.01)
    # due at 70: one step after the spike at 69, refractory (30 steps); at 86: 17 steps
    np.testing.assert_allclose(sim.synapses(proj, "d")[0], [1e-4, 17e-4], rtol=1e-9)
    np.testing.assert_array_equal(sim.synapses(proj, "nr")[0], [0.0, 0.0])


ADAPTIVE = sg.NeuronModel("""
    dv/dt = (El - v) / taum + I * not_refractory / C : volt
    theta = Vt + A * exp(-(t - lastspike) / tau_a) : volt
""", threshold="v > theta", reset="v = Vr", refractory="2*ms", name="adaptive")
ADAPTIVE_PARAMS = {"El": "-65*mV", "taum": "10*ms", "C": "200*pF", "Vt": "-50*mV",
                   "A": "10*mV", "tau_a": "20*ms", "Vr": "-60*mV"}


def _adaptive(backend="numba"):
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", ADAPTIVE, 3, params={**ADAPTIVE_PARAMS,
                                                   "I": np.array([2e-9, 3e-9, 4e-9])},
                         init={"v": "-65*mV"})
    spikes = net.monitor_spikes(pop)
    mon = net.monitor_state(pop, ["v"])
    sim = net.build(backend)
    sim.run(0.1)
    return spikes, mon


def test_lastspike_and_not_refractory_in_neuron_equations():
    spikes, mon = _adaptive()
    v = mon.v[0]
    for i in range(3):
        steps = spikes.step[spikes.i == i]
        assert len(steps) > 3
        for a, b in zip(steps[:-1], steps[1:]):
            # refractory in steps a + 1 .. a + 19 (2 ms = 20 steps): no drive, v relaxes
            # from the reset toward El (v[k] is the value at the start of step k)
            assert np.all(np.diff(v[a + 1: a + 21, i]) < 0)
            # from step a + 20 on it fires in the first step whose updated v exceeds the
            # threshold decaying since the spike
            theta = -0.05 + 0.01 * np.exp(-(np.arange(a + 20, b + 1) - a) * DT / 0.02)
            assert np.all(v[a + 21: b + 1, i] <= theta[:-1])  # no crossing before b
            # in step b: the exact update (drive on) crosses (v[b + 1] is the reset)
            rest = -0.065 + [2e-9, 3e-9, 4e-9][i] * 0.01 / 200e-12
            assert rest + (v[b, i] - rest) * np.exp(-DT / 0.01) > theta[-1]


def test_neuron_spike_variables_agree_on_the_cuda_kernels():
    a_spikes, a_mon = _adaptive()
    try:
        b_spikes, b_mon = _adaptive("cuda-host")
    except BackendUnsupported as err:
        pytest.skip(str(err))
    np.testing.assert_array_equal(a_spikes.step, b_spikes.step)
    np.testing.assert_allclose(a_mon.v, b_mon.v, rtol=0, atol=1e-12)


def test_neuron_spike_variables_need_a_refractory_period():
    from snngen.errors import EquationError
    with pytest.raises(EquationError, match="needs a refractory period"):
        sg.NeuronModel("dv/dt = -v / tau * not_refractory : 1", threshold="v > 1")
    with pytest.raises(EquationError, match="another name"):
        sg.NeuronModel("dv/dt = -v / tau : 1\nlastspike : second", threshold="v > 1",
                       refractory="1*ms")
    with pytest.raises(BackendUnsupported, match="lastspike"):
        from snngen.train import RecurrentClassifier
        RecurrentClassifier(sg.NeuronModel(
            "dv/dt = (I - v) / tau : 1", threshold="v > 1 + exp(-(t - lastspike) / tau)",
            reset="v = 0", refractory=0.0), "I", n_in=3, n_hidden=4, n_out=2,
            params={"tau": 0.01})
