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
