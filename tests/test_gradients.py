"""LEARNING.md section 4, check 1 on the derivation: soft-spike BPTT equals finite differences.

The backward pass is derived symbolically from each model's equations (snngen.derive) and run
by the NumPy reference executor; nothing is specific to a model.
"""

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.derive import derive
from snngen.derive.reference import bptt
from snngen.integrate import discretise

MODELS = {
    "lif": (sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="lif"),
        {"El": 0.2, "taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}, "I"),
    "adaptive_lif": (sg.NeuronModel("""
        dv/dt = (-v + I) / taum : 1
        dI/dt = -I / taus : 1
        da/dt = -a / taua : 1
    """, threshold="v > Vt + beta * a", reset="v = v - Vt - beta * a; a += 1", name="alif"),
        {"taum": 0.02, "taus": 0.005, "taua": 0.2, "Vt": 1.0, "beta": 0.3}, "I"),
    "qif": (sg.NeuronModel("""
        dv/dt = (v * v - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="qif"),
        {"taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}, "I"),
    # defined only here: a conductance-like input with a nonlinear leak
    "test_only": (sg.NeuronModel("""
        dv/dt = (tanh(El - v) + g * (Ee - v)) / taum : 1
        dg/dt = -g / tg : 1
    """, threshold="v > th", reset="v = 0", name="test_only"),
        {"El": 0.3, "Ee": 3.0, "taum": 0.01, "tg": 0.004, "th": 0.8}, "g"),
}


def _setup(name, n=4, n_in=3, steps=60, seed=0):
    model, base, target = MODELS[name]
    lm = derive(discretise(model), inputs=[target], soft_beta=8.0)
    rng = np.random.default_rng(seed)
    params = {k: np.full(n, v) * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    k = len(model.state_names)
    s0 = rng.uniform(0, 0.5, (n, k))
    x_in = (rng.random((steps, n_in)) < 0.15).astype(float)
    w_in = rng.uniform(0.5, 1.5, (n_in, n))
    w_rec = np.abs(rng.normal(0, 0.4, (n, n)))  # excitatory: keeps conductances >= 0
    coef = rng.uniform(0.5, 1.5, n)

    def loss_grad(t, s, z):
        loss = 0.5 * np.sum(coef * s[:, 0] ** 2) + 0.3 * np.sum(z)
        return loss, np.column_stack([coef * s[:, 0]] + [np.zeros(len(s))] * (k - 1)), \
            np.full(len(z), 0.3)
    return lm, params, s0, x_in, w_in, w_rec, loss_grad


def _loss(lm, params, s0, x_in, w_in, w_rec, loss_grad):
    return bptt(lm, params, s0, x_in, w_in, w_rec, 1e-3, loss_grad, forward_only=True)[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_soft_spike_gradients_equal_finite_differences(name):
    lm, params, s0, x_in, w_in, w_rec, loss_grad = _setup(name)
    loss, grads = bptt(lm, params, s0, x_in, w_in, w_rec, 1e-3, loss_grad)
    assert np.isfinite(loss)
    checks = [("w_in", (1, 2)), ("w_in", (0, 0)), ("w_rec", (2, 1)), ("w_rec", (3, 3)),
              ("s0", (1, 0)), ("s0", (2, 1))]
    checks += [(p, (i,)) for p in params for i in (0, 3)]
    for what, idx in checks:
        def f(delta, what=what, idx=idx):
            args = {"params": {k: v.copy() for k, v in params.items()}, "s0": s0.copy(),
                    "w_in": w_in.copy(), "w_rec": w_rec.copy()}
            target = args["params"][what] if what in params else args[what]
            h = delta * max(abs(target[idx]), 0.1)
            target[idx] += h
            return _loss(lm, args["params"], args["s0"], x_in, args["w_in"], args["w_rec"],
                         loss_grad), h
        (up, h), (down, _) = f(1e-6), f(-1e-6)
        numeric = (up - down) / (2 * h)
        derived = grads[what][idx]
        assert derived == pytest.approx(numeric, rel=1e-6, abs=1e-9 * max(1, abs(loss))), \
            (name, what, idx)


def test_surrogate_replaces_the_step_derivative():
    lm = derive(discretise(MODELS["lif"][0]), inputs=["I"], surrogate="triangle")
    jac = lm.jacobian("spike", "states")
    assert "H'(" in str(jac) and "H(" not in str(jac)
    from snngen.derive.surrogate import surrogate_function
    assert "Max" in str(surrogate_function("triangle").expression(sp.Symbol("g")))
    with pytest.raises(sg.SnngenError, match="unknown surrogate"):
        derive(discretise(MODELS["lif"][0]), inputs=["I"], surrogate="sigmoidd")
