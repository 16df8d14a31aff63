"""Direct tests of the learning step's derivation (snngen.derive.step), written from its
mutation run (issue 18, item 7): the detached reset, refractory neurons that cannot spike,
the soft spike, the Jacobians' shapes and input targets, and the printed model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.derive import derive
from snngen.derive.step import DETACHED
from snngen.errors import SnngenError
from snngen.integrate import REFRACTORY, discretise
from snngen.parse import symbol

LIF = "dv/dt = (I - v) / tm : 1\ndI/dt = -I / ts : 1"


def _lm(**kw):
    refractory = kw.pop("refractory", None)
    model = sg.NeuronModel(LIF, threshold="v > 1", reset="v = 0", refractory=refractory,
                           name="lif")
    return derive(discretise(model), inputs=["I"], **kw)


def test_detached_reset_is_the_reset_with_the_spike_held_constant():
    lm = _lm(detach_reset=True)
    z = sp.Symbol("zc", real=True)
    # next = u + z (R(u) - u) with R(v) = 0: v_next = (1 - z) u_v; I is not reset
    u_v = lm.detached_next[0].xreplace({DETACHED: 0})
    assert sp.simplify(lm.detached_next[0].xreplace({DETACHED: z}) - (1 - z) * u_v) == 0
    assert lm.detached_next[1] == lm.detached_next[1].xreplace({DETACHED: z})
    jac = lm.jacobian("next", "states")
    assert sp.simplify(jac[0, 0] - (1 - lm.spike) * sp.diff(u_v, symbol("v"))) == 0
    # the spike's own Jacobian is the same with or without the detached reset
    plain = _lm()
    assert sp.simplify(lm.jacobian("spike", "states") - plain.jacobian("spike", "states")) \
        == sp.zeros(1, 2)
    assert lm.jacobian("next", "states") != plain.jacobian("next", "states")


def test_refractory_neurons_do_not_spike():
    lm = _lm(refractory="2*ms")
    assert lm.spike.xreplace({REFRACTORY: sp.true}) == 0
    assert lm.spike.xreplace({REFRACTORY: sp.false}) == _lm().spike
    assert REFRACTORY not in _lm().spike.free_symbols


def test_soft_spike_is_a_sigmoid_of_beta_g():
    lm = _lm(soft_beta=4.0)
    g = sp.Symbol("g", real=True)
    assert sp.simplify(lm.spike - 1 / (1 + sp.exp(-4.0 * lm.g))) == 0
    assert sp.Rational(1, 2) == (1 / (1 + sp.exp(-4.0 * g))).subs(g, 0)
    assert lm.spike.xreplace({s: 0 for s in lm.spike.free_symbols}).is_number
    assert "soft, sigmoid(beta g) with beta=4.0" in str(lm)
    assert "hard, surrogate 'fast_sigmoid'" in str(_lm())


def test_jacobian_with_respect_to_nothing_has_no_columns():
    lm = _lm()
    assert lm.propagators  # exact LIF: propagator entries
    model = sg.NeuronModel("dv/dt = -v / tm : 1", threshold="v > 1", reset="v = 0")
    bare = derive(discretise(model))
    assert bare.inputs == ()
    assert bare.jacobian("next", "inputs").shape == (1, 0)
    assert bare.jacobian("spike", "inputs").shape == (1, 0)


def test_input_targets_must_be_states():
    with pytest.raises(SnngenError, match="'nope' is not a state"):
        _lm_inputs(["nope"])
    assert [str(x) for x in _lm().inputs] == ["_in_I"]


def _lm_inputs(inputs):
    model = sg.NeuronModel(LIF, threshold="v > 1", reset="v = 0")
    return derive(discretise(model), inputs=inputs)


# -- surrogates (snngen.derive.surrogate) --------------------------------------------------
_G = [-2.0, -0.6, -0.4, -0.1, 0.0, 0.1, 0.3, 0.45, 1.0, 2.5]


def _numbers(name, **params):
    from snngen.derive.surrogate import surrogate
    g = sp.Symbol("g", real=True)
    f = sp.lambdify(g, surrogate(name, g, **params), "math")
    return [float(f(x)) for x in _G]


@pytest.mark.parametrize("name, params, formula, area", [
    ("fast_sigmoid", {}, lambda g: 1 / (10 * abs(g) + 1) ** 2, 2 / 10),
    ("fast_sigmoid", {"beta": 3}, lambda g: 1 / (3 * abs(g) + 1) ** 2, 2 / 3),
    ("sigmoid", {}, lambda g: 5 * _sig(5 * g) * (1 - _sig(5 * g)), 1.0),
    ("arctan", {}, lambda g: 1 / (1 + (math.pi * g) ** 2), 1.0),
    ("triangle", {}, lambda g: max(0.0, 1 - abs(g)), 1.0),
    ("triangle", {"gamma": 0.3}, lambda g: 0.3 * max(0.0, 1 - abs(g)), 0.3),
    ("exponential", {}, lambda g: math.exp(-abs(g)), 2.0),
    ("exponential", {"alpha": 2, "beta": 4}, lambda g: 2 * math.exp(-4 * abs(g)), 1.0),
    ("gaussian", {}, lambda g: math.exp(-2 * g * g) / (math.sqrt(2 * math.pi) * 0.5), 1.0),
    ("boxcar", {}, lambda g: 1.0 if abs(g) < 0.5 else 0.0, 1.0),
    ("boxcar", {"width": 0.2}, lambda g: 5.0 if abs(g) < 0.1 else 0.0, 1.0),
    ("straight_through", {}, lambda g: 1.0, None),
])
def test_surrogates_have_their_published_formulas_and_areas(name, params, formula, area):
    got = _numbers(name, **params)
    assert got == pytest.approx([formula(x) for x in _G], rel=1e-12, abs=1e-15)
    if area is not None:  # the area under H'(g): 1 for the normalised ones
        from scipy.integrate import quad

        from snngen.derive.surrogate import surrogate
        g = sp.Symbol("g", real=True)
        f = sp.lambdify(g, surrogate(name, g, **params), "numpy")
        with np.errstate(over="ignore"):
            total = sum(quad(f, a, b, limit=200)[0] for a, b in ((-math.inf, -1), (-1, 0),
                                                                  (0, 1), (1, math.inf)))
        assert total == pytest.approx(area, rel=1e-6)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_unknown_surrogate_parameters_name_the_first_in_order():
    from snngen.derive.surrogate import surrogate
    with pytest.raises(SnngenError, match="no parameter 'alpha'"):
        surrogate("fast_sigmoid", sp.Symbol("g"), zeta=1, alpha=2)


def test_the_surrogates_derivative_is_the_derivative_of_its_formula():
    """Also through a composite argument (the chain rule): this once differentiated with
    respect to the argument expression itself, which sympy refuses."""
    from snngen.derive.surrogate import surrogate, surrogate_function
    g = sp.Symbol("g", real=True)
    for name in ("sigmoid", "gaussian", "arctan"):
        d = sp.diff(surrogate_function(name)(g), g)
        assert sp.simplify(d - sp.diff(surrogate(name, g), g)) == 0
        h = sp.Symbol("h", real=True)
        assert float(sp.diff(surrogate_function(name)(2 * h), h).subs(h, 0.1)) == pytest.approx(
            float(2 * sp.diff(surrogate(name, g), g).subs(g, 0.2)))


# -- the NumPy reference executor (snngen.derive.reference) --------------------------------
# It is the yardstick of the compiled trainers, and its refractory steps and propagator
# chain are used by the online trainer: its own rules are checked here, independently.

from snngen.derive.reference import bptt, chain_propagators, refractory_steps  # noqa: E402


def _zero_loss(n, k):
    return lambda t, s, z: (0.0, np.zeros((n, k)), np.zeros(n))


def _spike_steps(clamp, r, steps=14, dt=1e-3):
    """Spike steps of neurons with refractory periods ``r`` driven by 10 per step into v (the
    threshold is 1), by the reference executor."""
    n = len(r)
    model = sg.NeuronModel(f"dv/dt = -v / tau : 1{' (unless refractory)' if clamp else ''}",
                           threshold="v > 1", reset="v = 0", refractory="r", name="ref")
    lm = derive(discretise(model), inputs=["v"])
    params = {"tau": np.full(n, 0.02), "r": np.asarray(r) * dt}
    seen = []

    def record(t, s, z):
        seen.append(z.copy())
        return 0.0, np.zeros((n, 1)), np.zeros(n)

    x_in = np.full((steps, 1), 10.0)  # T != n_in: the run lasts T steps
    bptt(lm, params, np.zeros((n, 1)), x_in, np.ones((1, n)), None, dt, record,
         forward_only=True)
    z = np.array(seen)
    assert z.shape == (steps, n)
    return refractory_steps(lm, params, dt, n), [np.flatnonzero(z[:, c]) for c in range(n)]


def test_reference_refractory_period_is_whole_steps_after_the_spike():
    """Driven far above threshold every step, a neuron is refractory in the timestep(r) - 1
    steps after its spike, timestep(r) = int((r + 1e-3 dt) / dt) (Brian2's rounding, as the
    simulation kernels), down to r = dt (never refractory); it fires every timestep(r) steps,
    but at most every other step: input arrives after the threshold (so the first spike is at
    step 1) and the reset v = 0 wipes the input of its own step."""
    refsteps, spikes = _spike_steps(False, [1, 2, 2.55, 3, 5])
    np.testing.assert_array_equal(refsteps, [0, 1, 1, 2, 4])
    for got, period in zip(spikes, [2, 2, 2, 3, 5]):
        np.testing.assert_array_equal(got, np.arange(1, 14, period), err_msg=f"{period}")


def test_reference_drops_input_to_an_unless_refractory_state_while_refractory():
    """Into a ``(unless refractory)`` state, input is dropped while the neuron is refractory
    and in the step it spikes (Brian2's conditional write): the neuron needs one step more
    after its refractory period to reach threshold again."""
    _, spikes = _spike_steps(True, [1, 2, 5])
    for got, period in zip(spikes, [1, 2, 5]):
        np.testing.assert_array_equal(got, np.arange(1, 14, period + 1), err_msg=f"{period}")


def test_reference_without_refractoriness_has_no_refractory_steps():
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    lm = derive(discretise(model), inputs=["v"])
    np.testing.assert_array_equal(refractory_steps(lm, {"tau": 0.02}, 1e-3, 3), [-1, -1, -1])


def test_reference_exponential_euler_uses_exprel_series_for_tiny_rates():
    """exp. Euler's v <- v + dt f exprel(a dt) is v exp(a dt) for f = a v; for |a dt| < 1e-6
    the reference takes exprel's series 1 + x/2 + x^2/6, which must agree to rounding."""
    model = sg.NeuronModel("dv/dt = -g * v / tau : 1\ndg/dt = -g / tg : 1",
                           threshold="v > 10", reset="v = 0", name="expeuler")
    d = discretise(model)
    assert d.method == "exponential_euler"
    lm = derive(d, inputs=["g"])
    dt, tau, tg = 1e-3, 1e-3, 1e9
    g = np.array([9e-7, 5e-7, -9e-7])  # a dt = -g dt / tau: series branch, both signs
    seen = []

    def record(t, s, z):
        seen.append(s.copy())
        return 0.0, np.zeros_like(s), np.zeros(len(z))

    s0 = np.column_stack([np.ones(3), g])
    bptt(lm, {"tau": np.full(3, tau), "tg": np.full(3, tg)}, s0, np.zeros((1, 1)),
         np.zeros((1, 3)), None, dt, record, forward_only=True)
    np.testing.assert_allclose(seen[0][:, 0], np.exp(-g * dt / tau), rtol=2e-16, atol=0)


def test_reference_cutoff_zeroes_small_surrogate_values():
    """cutoff > 0: surrogate values below it count as zero, so with a cutoff above the
    surrogate's largest value (fast_sigmoid: 1) nothing flows through a spike; a cutoff below
    every value changes nothing."""
    model = sg.NeuronModel(LIF, threshold="v > vt", reset="v = 0", name="lif")
    lm = derive(discretise(model), inputs=["I"])
    rng = np.random.default_rng(0)
    n, steps, dt = 3, 40, 1e-3
    params = {"tm": np.full(n, 0.01), "ts": np.full(n, 0.005), "vt": np.full(n, 0.5)}
    x_in = (rng.random((steps, 2)) < 0.3).astype(float)
    w_in, w_rec = rng.uniform(1, 3, (2, n)), rng.normal(0, 1, (n, n))

    def loss_grad(t, s, z):
        return float(np.sum(s[:, 0] ** 2)), np.column_stack([2 * s[:, 0], np.zeros(n)]), \
            np.full(n, 0.5)

    args = (lm, params, np.zeros((n, 2)), x_in, w_in, w_rec, dt, loss_grad)
    _, plain = bptt(*args)
    _, none_flows = bptt(*args, cutoff=2.0)
    _, tiny = bptt(*args, cutoff=1e-300)
    assert np.any(plain["vt"] != 0)
    np.testing.assert_array_equal(none_flows["vt"], 0.0)
    for name in plain:
        np.testing.assert_allclose(tiny[name], plain[name], rtol=1e-12, atol=0, err_msg=name)


def test_chain_propagators_for_wanted_parameters_only():
    """``wanted`` picks parameters (the online trainer's frozen ones are left out): each
    gradient asked for equals the full one, whatever the order of the names."""
    model = sg.NeuronModel(LIF, threshold="v > 1", reset="v = 0", name="lif")
    lm = derive(discretise(model), inputs=["I"])
    n, dt = 2, 1e-3
    params = {"tm": np.array([0.01, 0.02]), "ts": np.array([0.004, 0.005])}
    gprop = {p: np.array([0.3, -0.7]) * (j + 1) for j, p in enumerate(lm.propagators)}
    full = {}
    chain_propagators(lm, params, dt, n, full, gprop)
    assert set(full) == {"tm", "ts"} and all(np.all(v != 0) for v in full.values())
    for wanted in ({"tm"}, {"ts"}):
        part = {}
        chain_propagators(lm, params, dt, n, part, gprop, wanted)
        assert set(part) == wanted
        for name in wanted:
            np.testing.assert_allclose(part[name], full[name], rtol=1e-14)
