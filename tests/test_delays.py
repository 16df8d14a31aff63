"""Per-synapse delays with any statements: events delivered when due (each synapse's own
delay after its source spiked), the same as the fast accumulate path where both apply, across
runs, and on the CUDA kernels."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported
from snngen.ir.lower import lower
from snngen.ir.nodes import Accumulate, Deliver

DT = 1e-4
LIF = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0",
                     refractory="1*ms", name="delays_lif")
STDP = sg.SynapseModel("""
    w : 1
    dapre/dt = -apre / tau : 1 (event-driven)
    dapost/dt = -apost / tau : 1 (event-driven)
""", on_pre="v_post += w; apre += 0.01; w = clip(w + apost, 0, 1)",
    on_post="apost -= 0.012; w = clip(w + apre, 0, 1)", name="delays_stdp")


def _network(model, backend="numba", runs=(0.3,), batch=1, **kw):
    net = sg.Network(dt=DT, dtype="float64", seed=2, batch=batch)
    src = net.poisson("X", 30, rates=40.0)
    pop = net.population("P", LIF, 5, params={"tau": 0.01})
    delays = np.random.default_rng(0).uniform(0, 5e-3, 150)
    proj = net.connect(src, pop, model, "all_to_all", w=0.3, delay=delays, **kw)
    spikes = net.monitor_spikes(pop)
    sim = net.build(backend)
    for r in runs:
        sim.run(r)
    return net, sim, pop, proj, spikes


def test_the_fast_path_and_delivery_when_due_agree():
    plain = sg.SynapseModel("w : 1", on_pre="v_post += w")
    due = sg.SynapseModel("w : 1", on_pre="v_post += w; w = w")  # not the fast path
    net_a, sim_a, pop_a, _, sa = _network(plain)
    net_b, sim_b, pop_b, _, sb = _network(due)
    kinds_a = {type(n) for n in lower(net_a).program.steps}
    kinds_b = {type(n) for n in lower(net_b).program.steps}
    assert Accumulate in kinds_a and Accumulate not in kinds_b and Deliver in kinds_b
    assert len(sa.i) > 50
    np.testing.assert_array_equal(sa.i, sb.i)
    np.testing.assert_array_equal(sa.step, sb.step)
    np.testing.assert_allclose(sim_a.state(pop_a, "v"), sim_b.state(pop_b, "v"), rtol=1e-12)


def test_events_in_flight_cross_runs():
    _, one, pop1, proj1, s1 = _network(STDP, params={"tau": 0.02}, runs=(0.3,))
    _, split, pop2, proj2, s2 = _network(STDP, params={"tau": 0.02},
                                         runs=(0.1003, 0.0501, 0.1496))
    np.testing.assert_array_equal(s1.step, s2.step)
    np.testing.assert_array_equal(one.synapses(proj1, "w"), split.synapses(proj2, "w"))


def test_cuda_kernels_deliver_when_due_too():
    _, ref, pop_r, proj_r, sr = _network(STDP, params={"tau": 0.02}, batch=2)
    try:
        _, emu, pop_e, proj_e, se = _network(STDP, "cuda-host", params={"tau": 0.02}, batch=2)
    except BackendUnsupported as err:
        pytest.skip(str(err))
    assert len(sr.i) > 50
    np.testing.assert_array_equal(se.step, sr.step)
    np.testing.assert_array_equal(se.i, sr.i)
    np.testing.assert_allclose(emu.synapses(proj_e, "w"), ref.synapses(proj_r, "w"),
                               rtol=1e-12, atol=1e-15)
    assert not np.allclose(ref.synapses(proj_r, "w"), 0.3)  # plasticity happened


def test_the_spike_history_reaches_back_to_the_longest_delay():
    net, sim, pop, proj, _ = _network(STDP, params={"tau": 0.02})
    ring = sim.arrays["X___ring"]
    assert ring.shape[1] == int(sim.arrays[f"{proj.name}__maxdelay"]) + 1 == 50 + 1


def test_store_and_restore_carry_the_new_state():
    """Events in flight through per-synapse delays delivered when due, clock-driven synaptic
    state, summed inputs and not-refractory flags (a refractory condition) come back with
    restore(): the continued run repeats step for step."""
    from test_clock_driven import NEURON, NMDA, PARAMS, SYN
    net = sg.Network(dt=DT, dtype="float64", seed=3)
    src = net.poisson("X", 30, rates=60.0)
    pop = net.population("P", LIF, 5, params={"tau": 0.01})
    proj = net.connect(src, pop, STDP, "all_to_all", w=0.3, params={"tau": 0.02},
                       delay=np.random.default_rng(0).uniform(0, 5e-3, 150))
    cond = sg.NeuronModel("dv/dt = (El - v) / taum : volt", threshold="v > -50*mV",
                          reset="v = -45*mV", refractory="v > -52*mV", name="store_cond")
    c = net.population("C", cond, 5, params={"El": "-65*mV", "taum": "10*ms"},
                       init={"v": -0.06})
    net.connect(src, c, "v += w", "all_to_all", w="0.8*mV")
    n = net.population("N", NEURON, 4, params=PARAMS)
    nmda = net.connect(src, n, NMDA, "all_to_all", w=1.0, params=SYN)
    spikes = [net.monitor_spikes(p) for p in (pop, c)]
    sim = net.build("numba")
    sim.run(0.05)
    sim.store()
    sim.run(0.1)
    first = ([s.step.copy() for s in spikes], sim.synapses(proj, "w").copy(),
             sim.synapses(nmda, "g").copy(), sim.state(n, "v").copy(), sim.state(c, "v").copy())
    sim.restore()
    sim.run(0.1)
    again = ([s.step.copy() for s in spikes], sim.synapses(proj, "w"), sim.synapses(nmda, "g"),
             sim.state(n, "v"), sim.state(c, "v"))
    for a, b in zip(first[0], again[0]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first[1:], again[1:]):
        np.testing.assert_array_equal(a, b)
    assert len(first[0][0]) > 20 and len(first[0][1]) > 5
