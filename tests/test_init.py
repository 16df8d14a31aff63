"""Fluctuation-driven initialisation: the PSP kernel and the membrane statistics it predicts."""

import numpy as np
import pytest

import snngen as sg
from snngen.derive import derive
from snngen.integrate import discretise
from snngen.train.init import fluctuation_driven, psp_kernel

LIF = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="lif")
PARAMS = {"taum": 0.02, "taus": 0.005}


def test_psp_kernel_is_the_models_impulse_response():
    lm = derive(discretise(LIF), inputs=["I"])
    dt = 1e-4
    eps = psp_kernel(lm, PARAMS, dt, 3000)
    t = np.arange(3000) * dt  # the input of step 0 arrives after its update: eps[0] = 0
    tm, ts = PARAMS["taum"], PARAMS["taus"]
    exact = ts / (ts - tm) * (np.exp(-t / ts) - np.exp(-t / tm))
    np.testing.assert_allclose(eps, exact, rtol=1e-5, atol=1e-9)


def test_initialised_membrane_has_the_requested_statistics():
    lm = derive(discretise(LIF), inputs=["I"])
    dt, n_in, rate, mu, sigma = 1e-4, 200, 20.0, 0.2, 0.1
    w_mean, w_std = fluctuation_driven(lm, PARAMS, dt, n_in, rate, mu, sigma)
    free = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1", name="free")
    net = sg.Network(dt=dt, seed=3, dtype="float64", batch=1)
    src = net.poisson("X", n_in, rates=rate)
    pop = net.population("N", free, 400, params=PARAMS)
    net.connect(src, pop, "I += w", "all_to_all", w=sg.Normal(w_mean, w_std))
    mon = net.monitor_state(pop, "v", every=20)
    sim = net.build()
    sim.run(0.2)          # transient
    mon.data = {}
    sim.run(2.0)
    v = mon.v[0, -900:]   # the second run's records
    assert v.mean() == pytest.approx(mu, abs=0.15 * sigma + 0.05 * mu)
    # sigma is the temporal fluctuation of each neuron (Campbell), not the spread of means
    assert np.sqrt(v.var(axis=0).mean()) == pytest.approx(sigma, rel=0.1)


def test_impossible_request_is_explained():
    lm = derive(discretise(LIF), inputs=["I"])
    with pytest.raises(sg.SnngenError, match="lower mu"):
        fluctuation_driven(lm, PARAMS, 1e-4, 10, 5.0, mu=5.0, sigma=0.01)


def test_classifier_uses_fluctuation_driven_input_weights():
    """RecurrentClassifier(fluctuation_init=...): input weights from the model's own PSP
    kernel; its hidden membranes (recurrence off) then sit at mu +- sigma."""
    from snngen.train import RecurrentClassifier
    dt, n_in, n, rate, mu, sigma = 1e-3, 200, 64, 20.0, 0.2, 0.1
    net = RecurrentClassifier(LIF, "I", n_in, n, 2, params=PARAMS, dt=dt, dtype="float64",
                              fluctuation_init={"rate": rate, "mu": mu, "sigma": sigma})
    lm = derive(discretise(LIF), inputs=["I"])
    w_mean, w_std = fluctuation_driven(lm, PARAMS, dt, n_in, rate, mu, sigma)
    w = net.weights["w_in"]
    assert w.mean() == pytest.approx(w_mean, abs=4 * w_std / np.sqrt(w.size))
    assert w.std() == pytest.approx(w_std, rel=0.05)
    rng = np.random.default_rng(0)
    x = (rng.random((2000, 4, n_in)) < rate * dt).astype(float)
    seen = {}

    def record(states, spikes):
        seen["v"] = states[200:, :, :, 0]  # after the transient
        return 0.0, None, np.zeros_like(spikes)
    net.bptt.run(net.params, np.zeros((4, n, 2)), x, net.in_csr, w, net.rec_csr,
                 np.zeros_like(net.weights["w_rec"]), dt, record, wanted=set())
    v = seen["v"]
    assert v.mean() == pytest.approx(mu, abs=0.15 * sigma + 0.05 * mu)
    assert np.sqrt(v.var(axis=0).mean()) == pytest.approx(sigma, rel=0.15)
    with pytest.raises(sg.SnngenError, match="exactly the keys"):
        RecurrentClassifier(LIF, "I", 4, 4, 2, params=PARAMS, fluctuation_init={"rate": 1})


def test_calibrate_layers_sets_the_layers_above_from_measured_rates():
    """A stack whose second layer is silent (a hidden_gain far too small): calibrate_layers
    measures the first layer's rate on the data and redraws the second layer's input
    weights from the model's PSP kernel at that rate, so the second layer fires; a silent
    first layer is refused with a clear error."""
    from snngen.train import RecurrentClassifier
    rng = np.random.default_rng(1)
    x = (rng.random((100, 8, 40)) < 0.05).astype(float)
    net = RecurrentClassifier(LIF, "I", 40, (48, 32), 2, params=PARAMS, input_gain=8.0,
                              hidden_gain=0.2, recurrent_density=0.0, dtype="float64")
    before = net._rates(x)
    assert before[0] > 0 and before[1] == 0
    rates = net.calibrate_layers(x, mu=0.6, sigma=0.4, seed=3)
    assert rates[0] == before[0] and rates[1] > 0
    layer1 = {k: net.params[f"{k}:1"] for k in PARAMS}
    mean, std = fluctuation_driven(net.lm, layer1, net.dt, 48, before[0], 0.6, 0.4)
    w = net.weights["w_in:1"]
    assert abs(w.mean() - mean) < 0.1 * std and abs(w.std() / std - 1) < 0.05
    silent = RecurrentClassifier(LIF, "I", 40, (48, 32), 2, params=PARAMS, input_gain=0.01,
                                 recurrent_density=0.0)
    with pytest.raises(sg.SnngenError, match="hidden layer 0 fires no spike"):
        silent.calibrate_layers(x, mu=0.6, sigma=0.4)
