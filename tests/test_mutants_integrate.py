"""Integration corner cases that mutants of ``snngen/integrate.py`` slipped through.

(benchmarks/mutation.py, tests/RELIABILITY.md): an input term that is exactly 1, a linear
coefficient that is exactly 1, the printed form of a model with nothing to hoist, and a
right-hand side that is a bare state variable (a product bug: strict xfail).
"""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.integrate import discretise

DT = 1e-4


def _run(eqs, params, init, steps, method=None, variables=("v",)):
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", sg.NeuronModel(eqs, name="corner"), 1, params=params,
                         init=init, method=method)
    mon = net.monitor_state(pop, list(variables))
    net.build().run(steps * DT)
    return {v: getattr(mon, v)[0, :, 0] for v in variables}, (np.arange(steps) + 1) * DT


def test_exact_with_an_input_term_of_one():
    """dv/dt = 1 - v/tau: the constant input is the number 1 itself."""
    assert discretise(sg.NeuronModel("dv/dt = 1 - v/tau")).method == "exact"
    out, t = _run("dv/dt = 1 - v/tau", {"tau": 0.01}, {"v": 0.5}, 200)
    np.testing.assert_allclose(out["v"], 0.01 + (0.5 - 0.01) * np.exp(-t / 0.01), rtol=1e-12)


def test_exponential_euler_with_a_coefficient_of_one():
    """dv/dt = v (a = 1 exactly): exponential Euler is the exact growth v0 e^t."""
    out, t = _run("dv/dt = v", {}, {"v": 2.0}, 200, method="exponential_euler")
    np.testing.assert_allclose(out["v"], 2.0 * np.exp(t), rtol=1e-13)


def test_printed_model_says_nothing_is_hoisted_only_when_nothing_is():
    assert "(nothing)" in str(discretise(sg.NeuronModel("dv/dt = v"), "euler"))
    assert "(nothing)" not in str(discretise(sg.NeuronModel("dv/dt = v"),
                                             "exponential_euler"))
    assert "(nothing)" not in str(discretise(sg.NeuronModel("dv/dt = -v / tau")))


@pytest.mark.xfail(raises=AttributeError, strict=True,
                   reason="product bug found 2026-12-07: a right-hand side that is a bare "
                          "state variable (dx/dt = y) makes _linear_system call "
                          "free_symbols on a Python int")
def test_exact_harmonic_oscillator_with_a_bare_variable_on_the_right():
    eqs = "dx/dt = y\ndy/dt = -x / tau**2"
    assert discretise(sg.NeuronModel(eqs)).method == "exact"
    out, t = _run(eqs, {"tau": 0.002}, {"x": 1.0, "y": 0.0}, 300, variables=("x", "y"))
    np.testing.assert_allclose(out["x"], np.cos(t / 0.002), rtol=0, atol=1e-12)
