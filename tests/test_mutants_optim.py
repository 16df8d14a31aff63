"""The optimisers against their textbook formulas, written out here in NumPy.

Written to kill mutants of ``snngen/train/optim.py`` that the other tests let through
(benchmarks/mutation.py, tests/RELIABILITY.md): defaults, AdamW without and with weight decay
on both code paths, SGD with plain, heavy-ball and Nesterov momentum, the clipping factor at
its boundaries, the argument checks, and constraints with one bound.
"""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.train import SGD, Adam, constrain
from snngen.train.optim import clip_by_norm, clip_scale, global_norm


def adamw_reference(w, grads, lr, b1, b2, eps, wd, scales):
    """Loshchilov & Hutter's AdamW (PyTorch's ``AdamW`` update order), in float64."""
    w = w.astype(np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (g, s) in enumerate(zip(grads, scales), 1):
        g = g * s
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * wd * w
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


def sgd_reference(w, grads, lr, momentum, nesterov, scales):
    """PyTorch's SGD (dampening 0): buf = momentum buf + g; step along g + momentum buf
    (Nesterov) or buf."""
    w, buf = w.copy(), None
    for g, s in zip(grads, scales):
        g = g * s
        buf = g.copy() if buf is None else momentum * buf + g
        d = (g + momentum * buf if nesterov else buf) if momentum else g
        w = w - lr * d
    return w


def test_defaults_are_the_usual_ones():
    a, s = Adam(), SGD()
    assert (a.lr, a.betas, a.eps, a.weight_decay, a.t) == (1e-3, (0.9, 0.999), 1e-8, 0.0, 0)
    assert (s.lr, s.momentum, s.nesterov) == (1e-2, 0.0, False)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_equals_the_textbook_update(fused, wd):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(4, 5))
    grads = [rng.normal(size=w0.shape) * 10.0 ** rng.integers(-3, 2) for _ in range(7)]
    scales = [1.0, 0.5, 1.0, 2.0, 0.1, 1.0, 0.7]
    kw = dict(lr=0.03, betas=(0.8, 0.99), eps=1e-3, weight_decay=wd)
    opt, w = Adam(**kw), {"w": w0.copy()}
    for g, s in zip(grads, scales):
        opt.step(w, {"w": g if fused else np.asfortranarray(g)}, scale=s)
    assert opt.t == 7
    want = adamw_reference(w0, grads, 0.03, 0.8, 0.99, 1e-3, wd, scales)
    np.testing.assert_allclose(w["w"], want, rtol=1e-13, atol=1e-15)


def test_adam_moments_are_kept_per_parameter():
    opt = Adam(lr=0.1)
    p = {"a": np.array([1.0]), "b": np.array([1.0, 2.0])}
    opt.step(p, {"a": np.array([2.0]), "b": np.array([0.0, -1.0])})
    np.testing.assert_allclose(opt.m["a"], [0.2])
    np.testing.assert_allclose(opt.v["b"], [0.0, 0.001])
    # the first step of Adam moves every coordinate with a gradient by lr (sign of g)
    np.testing.assert_allclose(p["a"], [0.9])
    np.testing.assert_allclose(p["b"], [1.0, 2.1])
    with pytest.raises(sg.SnngenError, match="shape"):
        opt.step(p, {"a": np.zeros(2)})


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                                (0.5, True)])
def test_sgd_equals_the_textbook_update(momentum, nesterov):
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]
    scales = [1.0, 0.25, 2.0, 3.0, 1.0]
    opt, w = SGD(lr=0.1, momentum=momentum, nesterov=nesterov), {"w": w0.copy()}
    for g, s in zip(grads, scales):
        opt.step(w, {"w": g}, scale=s)
    want = sgd_reference(w0, grads, 0.1, momentum, nesterov, scales)
    np.testing.assert_allclose(w["w"], want, rtol=1e-14, atol=1e-15)


def test_sgd_momentum_buffer_has_the_parameter_dtype():
    w = {"w": np.ones(3, np.float32)}
    opt = SGD(lr=0.5, momentum=0.9)
    opt.step(w, {"w": np.array([1.0, 2.0, 3.0])})
    assert opt.buf["w"].dtype == np.float32
    np.testing.assert_allclose(w["w"], [0.5, 0.0, -0.5])


def test_clip_scale_boundaries():
    assert clip_scale(4.0, 2.0) == 0.5
    assert clip_scale(2.0, 2.0) == 1.0
    assert clip_scale(1.0, 2.0) == 1.0
    assert clip_scale(3.0, 0.0) == 1.0  # a zero limit never zeroes the gradients
    g = {"w": np.array([0.6, 0.8])}
    assert clip_by_norm(g, 1.0) == pytest.approx(1.0)
    np.testing.assert_array_equal(g["w"], [0.6, 0.8])  # at the limit: untouched
    assert global_norm({"w": np.array([1, 2, 2])}) == 3.0  # not fusable (integers)


@pytest.mark.parametrize("make, match", [
    (lambda: Adam(betas=(0.9,)), "pair"),
    (lambda: Adam(betas=(0.9, 0.99, 0.1)), "pair"),
    (lambda: Adam(betas=(1.0, 0.99)), "betas"),
    (lambda: Adam(betas=(0.9, -0.1)), "betas"),
    (lambda: Adam(eps=0.0), "eps"),
    (lambda: Adam(weight_decay=-1e-3), "weight_decay"),
    (lambda: SGD(lr=0.0), "lr"),
    (lambda: SGD(momentum=1.0), "momentum"),
    (lambda: SGD(momentum=-0.5), "momentum"),
    (lambda: clip_by_norm({"w": np.ones(2)}, 0.0), "max_norm"),
    (lambda: constrain(np.zeros(2), lo=1.0, hi=0.0), "lo <= hi"),
])
def test_bad_arguments(make, match):
    with pytest.raises(sg.InvalidValueError, match=match):
        make()


def test_edge_values_that_are_allowed():
    Adam(betas=(0.0, 0.0), weight_decay=0.0)
    SGD(momentum=0.0)
    w = np.array([-2.0, 0.5, 3.0])
    constrain(w, lo=1.0, hi=1.0)  # lo == hi is allowed
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0])


def test_constraints_with_one_bound_or_sign_only():
    w = np.array([-2.0, 0.5, 3.0])
    constrain(w, lo=0.0)
    np.testing.assert_array_equal(w, [0.0, 0.5, 3.0])
    w = np.array([-2.0, 0.5, 3.0])
    constrain(w, hi=1.0)
    np.testing.assert_array_equal(w, [-2.0, 0.5, 1.0])
    w = np.array([[-2.0, 0.5], [-0.5, 3.0], [-1.0, 1.0]])
    constrain(w, sign=np.array([[1], [-1], [0]]))
    np.testing.assert_array_equal(w, [[0.0, 0.5], [-0.5, 0.0], [-1.0, 1.0]])


def test_adam_state_of_a_fresh_optimiser_loads():
    a = Adam(lr=0.1)
    b = Adam(lr=0.1)
    b.load_state_dict(a.state_dict())
    assert b.t == 0
    state = a.state_dict()
    p = {"w": np.array([1.0, 2.0])}
    a.step(p, {"w": np.array([1.0, -1.0])})
    assert state["t"] == 0 and not state["m"]  # a copy, not a view of the optimiser
    saved = a.state_dict()
    a.step(p, {"w": np.array([1.0, -1.0])})
    np.testing.assert_allclose(saved["m"]["w"], [0.1, -0.1])


def test_a_negative_step_count_is_refused_on_load():
    state = Adam().state_dict()
    state["t"] = -1
    with pytest.raises(sg.InvalidValueError, match="t \\(steps taken\\)"):
        Adam().load_state_dict(state)


@pytest.mark.parametrize("layout", ["fortran", "strided view"])
def test_adam_updates_non_contiguous_parameters_in_place(layout):
    """Only C-contiguous float arrays take the compiled pass (it updates a flat view);
    others must still be updated in place, e.g. a view into a larger array."""
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=(4, 6))
    grads = [rng.normal(size=w0.shape) for _ in range(3)]
    if layout == "fortran":
        owner = np.asfortranarray(w0)
        p = owner
    else:
        owner = np.zeros((4, 12))
        owner[:, ::2] = w0
        p = owner[:, ::2]
    opt = Adam(lr=0.05, weight_decay=0.01)
    for g in grads:
        opt.step({"w": p}, {"w": g})
    want = adamw_reference(w0, grads, 0.05, 0.9, 0.999, 1e-8, 0.01, [1.0] * 3)
    np.testing.assert_allclose(p, want, rtol=1e-13, atol=1e-15)
    if layout != "fortran":
        np.testing.assert_allclose(owner[:, ::2], want, rtol=1e-13, atol=1e-15)
        assert not owner[:, 1::2].any()


def test_a_zero_scale_is_a_zero_gradient_on_both_paths():
    rng = np.random.default_rng(6)
    w0, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for fused in (True, False):
        opt, w = Adam(lr=0.1), {"w": w0.copy()}
        opt.step(w, {"w": g}, scale=1.0)
        opt.step(w, {"w": g if fused else np.asfortranarray(g)}, scale=0.0)
        want = adamw_reference(w0, [g, g], 0.1, 0.9, 0.999, 1e-8, 0.0, [1.0, 0.0])
        np.testing.assert_allclose(w["w"], want, rtol=1e-13, atol=1e-15)
    sgd, w = SGD(lr=0.1), {"w": w0.copy()}
    sgd.step(w, {"w": g}, scale=0.0)
    np.testing.assert_array_equal(w["w"], w0)
