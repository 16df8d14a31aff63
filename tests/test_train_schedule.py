"""The step the trainers differentiate is the step a simulation runs (issue 19: the learning
derivation follows Brian2's schedule). A RecurrentClassifier's hidden layer, run by its
training kernels, spikes step for step as the same layer declared as an ``sg.Network`` and
simulated: input arriving after the threshold, resets seeing it, input dropped into an
``(unless refractory)`` variable while refractory and in the spike's step, recurrent delays,
and Brian2's rounding of a refractory period that is not a whole number of steps."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.train import RecurrentClassifier

DT = 1e-3
MODELS = {
    # input into a current; the membrane is clamped while refractory (2.5 steps -> 2)
    "current": (sg.NeuronModel("dv/dt = (I - v) / taum : 1 (unless refractory)\n"
                               "dI/dt = -I / taus : 1", threshold="v > 1", reset="v = 0",
                               refractory="2.5*ms", name="sched_current"),
                "I", {"taum": 0.01, "taus": 0.005}),
    # input straight into the clamped membrane, with a reset that keeps what it resets
    # (v -= 1): an input of the spike's own step must be dropped, not kept
    "membrane": (sg.NeuronModel("dv/dt = -v / taum : 1 (unless refractory)", threshold="v > 1",
                                reset="v -= 1", refractory="3*ms", name="sched_membrane"),
                 "v", {"taum": 0.02}),
}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_trainer_forward_spikes_as_the_simulated_network(case):
    model, target, params = MODELS[case]
    rng = np.random.default_rng(3)
    steps, n_in, n, delay = 150, 12, 16, 2
    clf = RecurrentClassifier(model, target, n_in, n, 2, params=params, dt=DT, dtype="float64",
                              recurrent_density=0.4, recurrent_delay=delay, input_gain=4.0,
                              seed=1)
    x = (rng.random((steps, 1, n_in)) < 0.15).astype(np.float64)
    trained = np.asarray(clf.hidden_spikes(x)[0])[:, 0, :].astype(bool)

    net = sg.Network(dt=DT, seed=0, dtype="float64")
    t_in, i_in = np.nonzero(x[:, 0, :])
    src = net.spike_source("x", n_in, i_in, t_in * DT)
    layer = {k: np.broadcast_to(v, (n,)) for k, v in clf._layer_params(0).items()
             if k in params}
    h = net.population("h", model, n, params=layer)
    for key, pre, lag in (("in", src, 0.0), ("rec", h, delay * DT)):
        csr = clf.csrs[f"{key}_csr"]
        net.connect(pre, h, f"{target} += w", {"i": csr.pre_indices(), "j": csr.indices},
                    w=clf.weights[f"w_{key}"], delay=lag)
    mon = net.monitor_spikes(h)
    net.build().run(steps * DT)
    simulated = np.zeros((steps, n), bool)
    simulated[mon.step, mon.i] = True

    assert trained.sum() > 20, "the layer must spike for the comparison to mean anything"
    assert 0 < trained.mean() < 0.5
    first = np.flatnonzero((trained != simulated).any(axis=1))
    assert first.size == 0, f"first difference at step {first[0]}"
