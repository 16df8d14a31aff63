"""White noise (``xi``) in neuron equations: statistics of the integrated processes, the
integration methods Brian2 uses, backends, and clear errors for what is refused.

Statistical checks use bounds of five standard errors (sampling noise), computed for the
discrete process each method produces, not for the continuous one."""

from __future__ import annotations

import math

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported, EquationError, IntegrationError, UnitError
from snngen.integrate import discretise
from snngen.train import RecurrentClassifier

OU = "dv/dt = (mu - v) / tau + sigma * sqrt(2 / tau) * xi : volt"
OU_PARAMS = {"mu": "-60*mV", "tau": "2*ms", "sigma": "5*mV"}
DT = 1e-4


def _run(model, n, duration, params, init, backend="numba", seed=3, batch=1, every=1,
         dtype="float64"):
    net = sg.Network(dt=DT, seed=seed, dtype=dtype, batch=batch)
    pop = net.population("P", model, n, params=params, init=init)
    mon = net.monitor_state(pop, list(model.state_names), every=every)
    spikes = net.monitor_spikes(pop) if model.threshold is not None else None
    sim = net.build(backend)
    sim.run(duration)
    return mon, spikes


def test_ornstein_uhlenbeck_mean_variance_and_autocorrelation():
    mon, _ = _run(sg.NeuronModel(OU), 200, 0.5, OU_PARAMS, {"v": "-60*mV"})
    v = mon.v[0, 200:, :]  # after 20 ms (10 tau): stationary
    a = DT / 2e-3
    # Euler-Maruyama: v' = v + a (mu - v) + sigma sqrt(2a) N: an AR(1) process with
    # stationary variance sigma^2 2a / (1 - (1 - a)^2) and autocorrelation (1 - a)^k
    var = 5e-3**2 * 2 * a / (1 - (1 - a) ** 2)
    n_eff = v.shape[1] * v.shape[0] * a / 2  # independent samples: T / (2 tau) per neuron
    assert abs(v.mean() + 60e-3) < 5 * math.sqrt(var / n_eff)
    assert abs(v.var() / var - 1) < 5 * math.sqrt(2 / n_eff)
    x = v - v.mean()
    for k in (1, 10, 40):
        rho = np.mean(x[:-k] * x[k:]) / np.mean(x * x)
        assert abs(rho - (1 - a) ** k) < 5 * math.sqrt(2 / n_eff), k


def test_noise_is_reproducible_and_independent_across_neurons_trials_and_seeds():
    model = sg.NeuronModel("dv/dt = s * xi : 1")
    p, init = {"s": 1.0}, {"v": 0.0}
    a, _ = _run(model, 50, 0.02, p, init, batch=2)
    b, _ = _run(model, 50, 0.02, p, init, batch=2)
    c, _ = _run(model, 50, 0.02, p, init, batch=2, seed=4)
    np.testing.assert_array_equal(a.v, b.v)
    dw = np.diff(a.v, axis=1)  # = s sqrt(dt) N, one draw per neuron, trial and step
    assert abs(dw.std() / math.sqrt(DT) - 1) < 0.05
    flat = dw.reshape(2, -1)
    assert abs(np.corrcoef(flat[0], flat[1])[0, 1]) < 0.05            # trials
    assert abs(np.corrcoef(dw[0, :, 0], dw[0, :, 1])[0, 1]) < 0.2      # neurons
    assert abs(np.corrcoef(dw.ravel(), np.diff(c.v, axis=1).ravel())[0, 1]) < 0.05  # seeds


def test_one_noise_in_two_equations_is_the_same_draw_and_two_noises_are_independent():
    model = sg.NeuronModel("""
        dx/dt = xi : second**0.5
        dy/dt = 2 * xi : second**0.5
        dz/dt = xi_other : second**0.5
    """)
    mon, _ = _run(model, 20, 0.01, {}, {"x": 0.0, "y": 0.0, "z": 0.0})
    dx, dy, dz = (np.diff(getattr(mon, n), axis=1).ravel() for n in "xyz")
    np.testing.assert_allclose(dy, 2 * dx, rtol=1e-12)
    assert abs(np.corrcoef(dx, dz)[0, 1]) < 0.1


@pytest.mark.parametrize("method", ["heun", "milstein"])
def test_multiplicative_noise_gives_the_stratonovich_mean(method):
    # dx = s x o dW (Stratonovich, as Brian2's heun and milstein integrate it):
    # x = x0 exp(s W), E[x(t)] = x0 exp(s^2 t / 2); per step the mean grows by 1 + s^2 dt / 2
    model = sg.NeuronModel("dx/dt = s * x * xi : 1", method=method)
    assert discretise(model).method == method
    mon, _ = _run(model, 400, 0.02, {"s": 5.0}, {"x": 1.0}, batch=2)
    x = mon.x
    end = x[:, -1, :].ravel()
    steps = x.shape[1] - 1
    mean = (1 + 25 * DT / 2) ** steps
    # log x is close to normal with variance s^2 t: the sample mean's standard error
    sd = math.sqrt(math.exp(25 * steps * DT) - 1) * mean
    assert abs(end.mean() - mean) < 5 * sd / math.sqrt(end.size)
    assert end.mean() > 1.0 + 3 * sd / math.sqrt(end.size)  # not the Ito mean (1)


def test_auto_picks_brian2s_methods():
    assert discretise(sg.NeuronModel(OU)).method == "euler"
    assert discretise(sg.NeuronModel("dx/dt = -x / tau + s * x * xi : 1")).method == "heun"
    det = sg.NeuronModel("dv/dt = -v / tau : 1")
    assert discretise(det).method == "exact"


def test_noise_is_frozen_with_its_variable_while_refractory():
    model = sg.NeuronModel("dv/dt = (1.2 - v) / tau + s * xi / sqrt(tau) : 1 (unless refractory)",
                           threshold="v > 1", reset="v = 0", refractory="5*ms")
    net = sg.Network(dt=DT, seed=1, dtype="float64")
    pop = net.population("P", model, 30, params={"tau": 0.01, "s": 0.05}, init={"v": 0.0})
    mon, spikes = net.monitor_state(pop, ["v"]), net.monitor_spikes(pop)
    net.build("numba").run(0.1)
    assert len(spikes.i) > 0
    for i, step in zip(spikes.i, spikes.step):
        # reset to 0 at the spike's step; then 0 for 5 ms (50 steps: records at the step's
        # start show the value after the previous step)
        window = mon.v[0, step + 1: step + 50, i]
        assert np.all(window == 0.0), (i, step)


def test_float32_noise():
    mon, _ = _run(sg.NeuronModel(OU), 100, 0.05, OU_PARAMS, {"v": "-60*mV"}, dtype="float32")
    assert mon.v.dtype == np.float32
    assert 3e-3 < mon.v[0, 200:].std() < 7e-3


@pytest.mark.parametrize("kwargs,error,text", [
    ({"threshold": "v > xi"}, EquationError, "only appear in differential equations"),
    ({"reset": "v = xi"}, EquationError, "only appear in differential equations"),
    ({"equations": "dv/dt = xi**2 : 1"}, EquationError, "linear in its white noise"),
    ({"equations": "dv/dt = xi * xi_b : 1"}, EquationError, "linear in its white noise"),
    ({"equations": "dv/dt = -v/tau : 1\nxi : 1"}, EquationError, "reserved"),
    ({"equations": "dv/dt = -v/tau : 1\nxi_b = v : 1"}, EquationError, "reserved"),
])
def test_noise_where_brian2_refuses_it(kwargs, error, text):
    args = {"equations": "dv/dt = -v / tau + xi / sqrt(tau) : 1", "threshold": "v > 1"}
    args.update(kwargs)
    if "reset" in kwargs:
        args["threshold"] = "v > 1"
    with pytest.raises(error, match=text):
        sg.NeuronModel(args.pop("equations"), **args)


@pytest.mark.parametrize("method,text", [
    ("exact", "cannot integrate the stochastic"), ("exponential_euler", "cannot integrate"),
    ("rk4", "cannot integrate"),
])
def test_deterministic_methods_refuse_noise(method, text):
    with pytest.raises(IntegrationError, match=text):
        discretise(sg.NeuronModel("dv/dt = -v / tau + xi / sqrt(tau) : 1", method=method))


def test_method_mismatches_are_explained():
    with pytest.raises(IntegrationError, match="additive noise only"):
        discretise(sg.NeuronModel("dv/dt = v * xi / sqrt(tau) : 1", method="euler"))
    with pytest.raises(IntegrationError, match="diagonal noise"):
        discretise(sg.NeuronModel("dv/dt = v * (xi + xi_b) / sqrt(tau) : 1",
                                  method="milstein"))
    with pytest.raises(IntegrationError, match="has none"):
        discretise(sg.NeuronModel("dv/dt = -v / tau : 1", method="heun"))


def test_noise_has_the_unit_of_one_over_the_root_of_time():
    net = sg.Network(dt=DT)
    net.population("A", sg.NeuronModel(OU), 2, params=OU_PARAMS)
    bad = sg.NeuronModel("dv/dt = (mu - v) / tau + sigma * xi : volt")
    with pytest.raises(UnitError, match="cannot add 'sigma\\*xi'"):
        net.population("B", bad, 2, params=OU_PARAMS)


def test_training_a_stochastic_model_is_refused_clearly():
    model = sg.NeuronModel("dv/dt = (I - v) / tau + s * xi / sqrt(tau) : 1",
                           threshold="v > 1", reset="v = 0")
    with pytest.raises(BackendUnsupported, match="white noise"):
        RecurrentClassifier(model, "I", n_in=3, n_hidden=4, n_out=2,
                               params={"tau": 0.01, "s": 0.1})


def test_the_pipeline_prints_the_draws(capsys):
    d = discretise(sg.NeuronModel(OU))
    assert "_N_xi ~ N(0, 1)" in str(d)
    net = sg.Network(dt=DT)
    net.population("P", sg.NeuronModel(OU), 3, params=OU_PARAMS)
    assert "P___N_xi = normal2(stream 0)" in sg.show(net, "ir", file=None)
    assert "_normal2(seed, step, i, b, 0)" in sg.show(net, "source")
    assert "snn_normal2(_seed, step, i, b, 0u" in sg.show(net, "cuda")
