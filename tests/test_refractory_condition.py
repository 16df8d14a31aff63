"""Refractoriness given as a condition (Brian2's ``refractory="v > -52*mV"``): after a spike
a neuron is refractory until the condition is false in some step, tested on the state
before each update; Numba and the CUDA kernels agree; synapses read the same flag."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported
from snngen.train import RecurrentClassifier

DT = 1e-4
PARAMS = {"El": "-65*mV", "taum": "10*ms", "Vt": "-50*mV"}


def _model(refractory, eqs="dv/dt = (El - v) / taum : volt"):
    return sg.NeuronModel(eqs, threshold="v > Vt", reset="v = -45*mV",
                          refractory=refractory, name="refractory_condition")


def _run(refractory, backend="numba", eqs="dv/dt = (El - v) / taum : volt", w=None):
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", _model(refractory, eqs), 2, params=PARAMS,
                         init={"v": "-49*mV"})
    proj = None
    if w is not None:
        src = net.spike_source("S", 1, indices=np.zeros(20, int),
                               times=np.arange(20) * 1e-2 + 5e-4)
        proj = net.connect(src, pop, sg.SynapseModel("w : volt\nnr : 1",
                                                     on_pre="v_post += w; nr += "
                                                            "not_refractory_post"),
                           "all_to_all", w=w, nr=0.0)
    spikes = net.monitor_spikes(pop)
    mon = net.monitor_state(pop, ["v"])
    sim = net.build(backend)
    sim.run(0.2)
    return sim, spikes, mon, proj


def test_one_spike_until_the_membrane_falls_below_the_condition():
    # reset above threshold: without refractoriness a spike in every step until v < Vt
    _, free, _, _ = _run(None)
    _, cond, mon, _ = _run("v > -52*mV")
    assert len(free.i) > 20
    assert len(cond.i) == 2 and set(cond.step) == {0}  # v0 = -49 mV > Vt: both at once
    v = mon.v[0, :, 0]
    assert v[1] == -0.045  # the reset, recorded at the start of the next step
    assert v[2] == pytest.approx(-0.045 - 0.020 * (1 - np.exp(-DT / 0.01)), abs=1e-12)
    assert np.all(np.diff(v[1:]) < 0)  # decays from the reset, never fires again


def test_clamped_variables_never_leave_a_condition_on_themselves():
    # (unless refractory) holds v at the reset value, which keeps the condition true: as in
    # Brian2, the neuron stays refractory (and silent) for good
    _, spikes, mon, _ = _run("v > -52*mV", eqs="dv/dt = (El - v) / taum : volt "
                                               "(unless refractory)")
    assert len(spikes.i) == 2
    np.testing.assert_array_equal(mon.v[0, 1:, 0], -0.045)


def test_synapses_read_the_flag_and_backends_agree():
    res = {}
    for backend in ("numba", "cuda-host"):
        try:
            res[backend] = _run("v > -52*mV", backend, w=np.array([0.015, 0.04]))
        except BackendUnsupported as err:
            pytest.skip(str(err))
    (sim_a, sp_a, mon_a, pa), (sim_b, sp_b, mon_b, pb) = res["numba"], res["cuda-host"]
    np.testing.assert_array_equal(sp_a.i, sp_b.i)
    np.testing.assert_array_equal(sp_a.step, sp_b.step)
    np.testing.assert_allclose(mon_a.v, mon_b.v, rtol=0, atol=1e-15)
    counts = sim_a.synapses(pa, "nr")[0]  # events that found the target not refractory
    np.testing.assert_array_equal(counts, sim_b.synapses(pb, "nr")[0])
    # the flag rebuilt from the recorded membrane (the value at the start of each step, the
    # one the condition tests): cleared by a spike, set again by a step with v <= -52 mV
    v = mon_a.v[0]
    for i in range(2):
        fired = set(sp_a.step[sp_a.i == i].tolist())
        flag, want = True, 0
        events = set((np.arange(20) * 100 + 5).tolist())
        for step in range(v.shape[0]):
            flag = flag or not v[step, i] > -0.052
            if step in fired:
                flag = False
            want += step in events and flag
        assert counts[i] == want, i
    # neuron 1 (40 mV per input every 10 ms) stays above -52 mV: refractory for good;
    # neuron 0 (15 mV) falls below it between inputs and fires again
    assert counts[1] == 0 and 0 < counts[0] < 20
    assert np.sum(sp_a.i == 0) > 1 and np.sum(sp_a.i == 1) == 1


def test_training_is_refused_clearly():
    model = sg.NeuronModel("dv/dt = (I - v) / tau : 1", threshold="v > 1", reset="v = 0",
                           refractory="v > 0.5")
    with pytest.raises(BackendUnsupported, match="condition"):
        RecurrentClassifier(model, "I", n_in=3, n_hidden=4, n_out=2, params={"tau": 0.01})
