"""Clock-driven synaptic equations and (summed) variables (Brian2's NMDA-like synapses and
gap junctions): each step, summed variables are set from the synaptic state at the start of
the step, then neurons and synapses are updated; checked against a NumPy transcription of
the same step, on Numba and the CUDA kernels; bad declarations refused clearly."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import (
    BackendUnsupported,
    ConnectivityError,
    EquationError,
    MissingParameterError,
    UnitError,
)

DT = 1e-4

NEURON = sg.NeuronModel("""
    dv/dt = (El - v + I_syn / gl) / taum : volt
    I_syn : amp
""", threshold="v > -50*mV", reset="v = -60*mV", name="summed_target")

NMDA = sg.SynapseModel("""
    dg/dt = -g / tau_d + alpha * x * (1 - g) : 1 (clock-driven)
    dx/dt = -x / tau_r : 1 (clock-driven)
    block = 1 + exp(-0.062 * v_post / mV) / 3.57 : 1
    I_syn_post = gmax * w * g * (E - v_post) / block : amp (summed)
    w : 1
""", on_pre="x += 1", name="nmda", method="euler")

PARAMS = {"El": -65e-3, "gl": 10e-9, "taum": 20e-3}
SYN = {"tau_d": 0.1, "tau_r": 2e-3, "alpha": 500.0, "gmax": 8e-9, "E": 0.0}


def _network(backend="numba", batch=2, steps=400):
    rng = np.random.default_rng(0)
    net = sg.Network(dt=DT, seed=1, dtype="float64", batch=batch)
    n_in, n = 12, 5
    times = rng.uniform(0, steps * DT * 0.8, 60)
    idx = rng.integers(0, n_in, 60)
    keep = np.unique(np.stack([np.floor(times / DT + 1e-3), idx], 1), axis=0,
                     return_index=True)[1]
    src = net.spike_source("S", n_in, indices=idx[keep], times=times[keep])
    pop = net.population("P", NEURON, n, params=PARAMS, init={"v": np.linspace(-0.066, -0.06, n)})
    i, j = np.nonzero(rng.random((n_in, n)) < 0.6)
    w = rng.uniform(0.5, 1.5, len(i))
    proj = net.connect(src, pop, NMDA, {"i": i, "j": j}, w=w, params=SYN, name="nmda")
    mon = net.monitor_state(pop, ["v"])
    spikes = net.monitor_spikes(pop)
    sim = net.build(backend)
    sim.run(steps * DT)
    return dict(sim=sim, pop=pop, proj=proj, mon=mon, spikes=spikes, i=i, j=j, w=w, src=src,
                steps=steps, n=n, batch=batch, idx=idx[keep], times=times[keep])


def _reference(r):
    """The same network, step by step in NumPy (Brian2's order: summed variables from the
    synaptic state at the start of the step; neuron update (exact: v relaxes to El + I/gl),
    synapse update (Euler); thresholds; on_pre (delay 0); resets)."""
    i, j, w = r["i"], r["j"], r["w"]
    n, steps, batch = r["n"], r["steps"], r["batch"]
    p, s = PARAMS, SYN
    decay = np.exp(-DT / p["taum"])
    v = np.tile(np.linspace(-0.066, -0.06, n), (batch, 1))
    g = np.zeros((batch, len(i)))
    x = np.zeros((batch, len(i)))
    bins = np.floor((r["times"] + 1e-3 * DT) / DT).astype(int)
    trace = np.empty((batch, steps, n))
    for step in range(steps):
        trace[:, step] = v
        vp = v[:, j]
        contrib = s["gmax"] * w * g * (s["E"] - vp) / (1 + np.exp(-0.062 * vp / 1e-3) / 3.57)
        current = np.zeros((batch, n))
        for b in range(batch):
            np.add.at(current[b], j, contrib[b])
        target = p["El"] + current / p["gl"]
        v = target + (v - target) * decay
        g, x = (g + DT * (s["alpha"] * x * (1 - g) - g / s["tau_d"]),
                x - x * DT / s["tau_r"])
        fired = v > -50e-3
        pre = set(r["idx"][bins == step])
        x = x + np.isin(i, list(pre))[None, :]
        v = np.where(fired, -60e-3, v)
    return trace, g, x


@pytest.fixture(scope="module")
def numba_run():
    return _network()


def test_matches_a_numpy_transcription_of_brian2s_step(numba_run):
    r = numba_run
    trace, g, x = _reference(r)
    got = r["mon"].v
    assert got.shape == trace.shape
    np.testing.assert_allclose(got, trace, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r["sim"].synapses(r["proj"], "g"), g, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r["sim"].synapses(r["proj"], "x"), x, rtol=1e-9, atol=1e-15)
    assert np.ptp(trace[:, -1]) > 1e-4  # the input moved the membranes apart
    assert g.max() > 0.05


def test_summed_value_is_readable_and_a_sum_over_synapses(numba_run):
    r = numba_run
    current = r["sim"].state(r["pop"], "I_syn")  # set at the start of the last step
    assert current.shape == (2, r["n"]) and np.any(current > 0)


def test_cuda_kernels_match(numba_run):
    try:
        emu = _network("cuda-host")
    except BackendUnsupported as err:
        pytest.skip(str(err))
    np.testing.assert_allclose(emu["mon"].v, numba_run["mon"].v, rtol=0, atol=1e-12)
    for var in ("g", "x"):
        np.testing.assert_allclose(emu["sim"].synapses(emu["proj"], var),
                                   numba_run["sim"].synapses(numba_run["proj"], var),
                                   rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(emu["spikes"].i, numba_run["spikes"].i)


def test_gap_junctions_summed_only():
    """A summed variable without events: electrical coupling between non-spiking cells."""
    cell = sg.NeuronModel("dv/dt = (-v + I_gap / g_l) / tau : volt\nI_gap : amp",
                          name="gap_cell")
    gap = sg.SynapseModel("I_gap_post = g_gap * (v_pre - v_post) : amp (summed)", name="gap")
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("C", cell, 2, params={"g_l": 1e-9, "tau": 0.01},
                         init={"v": np.array([0.01, -0.01])})
    net.connect(pop, pop, gap, {"i": [0, 1], "j": [1, 0]}, params={"g_gap": 1e-9})
    sim = net.build("numba")
    sim.run(0.02)
    v = sim.state(pop, "v")[0]
    # v1 = -v0 throughout; the exact step with the summed current held over the step:
    # v0' = v0 e + (1 - e) I / g_l, I = g_gap (v1 - v0) = -2 g_gap v0, e = exp(-dt/tau)
    e = np.exp(-DT / 0.01)
    np.testing.assert_allclose(v, [0.01 * (3 * e - 2) ** 200, -0.01 * (3 * e - 2) ** 200],
                               rtol=1e-9)
    assert v[0] < 0.01 * np.exp(-2) / 10  # far below the uncoupled decay


@pytest.mark.parametrize("make,error,text", [
    (lambda: sg.SynapseModel("dg/dt = -g / tau : 1", on_pre="g += 1"), EquationError,
     "either \\(event-driven\\)"),
    (lambda: sg.SynapseModel("I_post = g : 1 (summed)\ng : 1", on_pre="g += 1")
     .summed and sg.SynapseModel("I = g : 1 (summed)\ng : 1", on_pre="g += 1"),
     EquationError, "not named <variable>_post"),
    (lambda: sg.SynapseModel("g : 1 (summed)", on_pre="g += 1"), EquationError,
     "not a subexpression"),
    (lambda: sg.SynapseModel("dg/dt = -g/tau + xi/sqrt(tau) : 1 (clock-driven)",
                             on_pre="g += 1"), EquationError, "white noise"),
])
def test_bad_declarations(make, error, text):
    with pytest.raises(error, match=text):
        make()


def _target_net(**params):
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 2, indices=[0], times=[1e-3])
    pop = net.population("P", NEURON, 3, params={**PARAMS, **params})
    return net, src, pop


def test_summed_targets_are_checked_when_connected_and_built():
    net, src, pop = _target_net()
    bad = sg.SynapseModel("I_wrong_post = w * 1*pA : amp (summed)\nw : 1", on_pre="w += 0")
    with pytest.raises(ConnectivityError, match="not one"):
        net.connect(src, pop, bad, "all_to_all", w=1.0)
    net.connect(src, pop, NMDA, "all_to_all", w=1.0, params=SYN, name="a")
    with pytest.raises(ConnectivityError, match="already sums into"):
        net.connect(src, pop, NMDA, "all_to_all", w=1.0, params=SYN, name="b")
    net2, src2, pop2 = _target_net(I_syn=0.0)
    with pytest.raises(ConnectivityError, match="leave it out of params"):
        net2.connect(src2, pop2, NMDA, "all_to_all", w=1.0, params=SYN)
    net3, _, _ = _target_net()  # I_syn has no value and nothing sums into it
    with pytest.raises(MissingParameterError, match="I_syn"):
        net3.build("numba")
    net4, src4, pop4 = _target_net()
    volts = sg.SynapseModel("I_syn_post = w * v_post : volt (summed)\nw : 1", on_pre="w += 0")
    with pytest.raises(UnitError):
        net4.connect(src4, pop4, volts, "all_to_all", w=1.0)


def test_exact_is_refused_for_clock_driven_synapses_with_a_reason():
    net, src, pop = _target_net()
    model = sg.SynapseModel("dx/dt = -x / tau_r : 1 (clock-driven)\n"
                            "I_syn_post = x * 1*pA : amp (summed)", on_pre="x += 1",
                            method="exact")
    net.connect(src, pop, model, "all_to_all", params={"tau_r": 1e-3})
    with pytest.raises(BackendUnsupported, match="exact"):
        net.build("numba")


def test_the_program_shows_the_order():
    net, src, pop = _target_net()
    net.connect(src, pop, NMDA, "all_to_all", w=1.0, params=SYN, name="nmda")
    text = sg.show(net, "ir")
    order = [line.split()[0] for line in text.splitlines()[1:] if not line.startswith("      ")]
    assert order.index("Summed") < order.index("NeuronStep") < order.index("SynapseUpdate")
    assert "P__I_syn[post] = sum over synapses of" in text
