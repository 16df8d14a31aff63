"""The equation language (issue 19, missing language): Brian2's ``int()``, the integer
part toward zero of a dimensionless number or a condition, on every backend, with a zero
derivative for the learning derivation; names reserved for generated code (a leading '_'),
and model names that the generated arguments used to take."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.derive import derive
from snngen.integrate import discretise
from snngen.parse import parse_expression, trunc

BACKENDS = ["numba", pytest.param("cuda-host", marks=pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX", "g++")), reason="no C++ compiler for cuda-host"))]


def test_int_truncates_toward_zero_and_folds_constants():
    expr, _ = parse_expression("int(x)")
    assert isinstance(expr, trunc)
    for text, value in [("int(-2.5)", -2), ("int(2.5)", 2), ("int(-0.5)", 0), ("int(7/2)", 3)]:
        assert parse_expression(text)[0] == value, text
    cond, _ = parse_expression("int(v > 1)")  # a condition counts as 0 or 1
    assert cond.xreplace({sp.Symbol("v", real=True): 2}) == 1
    assert cond.xreplace({sp.Symbol("v", real=True): 0}) == 0


def test_int_of_a_quantity_with_a_dimension_is_refused():
    net = sg.Network(dt=1e-4)
    bad = sg.NeuronModel("dv/dt = int(v) / tau : volt")
    with pytest.raises(sg.UnitError, match=r"int\(\) needs a dimensionless argument"):
        net.population("P", bad, 2, params={"tau": "10*ms"})
    good = sg.NeuronModel("dv/dt = int(v / mV) * mV / tau : volt")  # dimensionless: fine
    net.population("Q", good, 2, params={"tau": "10*ms"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_int_in_a_model_runs_on_every_backend(backend):
    """dn/dt = int(x) / tau grows at trunc(x) / tau: checked at the end of a run, for x on
    both sides of 0, whole and not."""
    model = sg.NeuronModel("dn/dt = int(x) / tau : 1\nx : 1", method="euler", name="trunc_demo")
    x = np.array([-2.7, -1.0, -0.5, 0.0, 0.5, 1.0, 2.7, 3.999])
    net = sg.Network(dt=1e-3, seed=0, dtype="float64")
    pop = net.population("P", model, len(x), params={"x": x, "tau": 0.1})
    sim = net.build(backend=backend)
    sim.run(0.05)
    np.testing.assert_allclose(sim.state(pop, "n")[0], 50 * 1e-3 * np.trunc(x) / 0.1,
                               rtol=1e-12, atol=1e-15)


def test_int_has_a_zero_derivative_in_the_learning_step():
    model = sg.NeuronModel("dv/dt = (int(c) + I - v) / tau : 1\ndI/dt = -I / taus : 1",
                           threshold="v > 1", reset="v = 0", method="euler", name="trunc_lif")
    lm = derive(discretise(model), inputs=["I"])
    col = [p.name for p in lm.params].index("c")
    assert all(e == 0 for e in lm.jacobian("next", "params").col(col))
    assert lm.jacobian("next", "states")[0, 0] != 0


def test_names_starting_with_an_underscore_are_reserved():
    """As in Brian2: generated code's own names start with '_' (hoisted constants _k0,
    propagators _P0_0, inputs _in_x), so a model may not use such a name."""
    for eqs in ("d_x/dt = -_x / tau : 1", "dx/dt = -x / _tau : 1", "_k0 : 1\ndx/dt = -x : 1"):
        with pytest.raises(sg.EquationError, match="names starting with '_' are reserved"):
            sg.NeuronModel(eqs)
    with pytest.raises(sg.EquationError, match="'_x': names starting with '_' are reserved"):
        sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="_x = 0")


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_variables_named_like_internal_arrays_build_and_run(backend):
    """A Hodgkin-Huxley gate called n (and states called last, ring, ringn, refsteps) used to
    clash with the generated size, last-spike and spike-ring arguments of a population."""
    eqs = "\n".join(f"d{x}/dt = -{x} / tau : 1" for x in ("n", "last", "ring", "ringn",
                                                            "refsteps"))
    model = sg.NeuronModel(eqs + "\ndv/dt = (1 - v) / tau : 1", threshold="v > 0.5",
                           reset="v = 0", refractory="2*ms", name="clash")
    net = sg.Network(dt=1e-3, seed=0, dtype="float64")
    pop = net.population("P", model, 3, params={"tau": 0.01},
                         init={x: 1.0 for x in ("n", "last", "ring", "ringn", "refsteps")})
    mon = net.monitor_spikes(pop)
    sim = net.build(backend=backend)
    sim.run(0.02)
    np.testing.assert_allclose(sim.state(pop, "n")[0], np.exp(-2.0), rtol=1e-12)
    assert len(mon.i) > 0


@pytest.mark.parametrize("fn", ["floor", "ceil", "sign", "int"])
def test_step_functions_have_a_zero_derivative(fn):
    """floor, ceil, sign and int are flat wherever they have a derivative: the learning
    derivation gets 0, not an unevaluated Derivative or a DiracDelta (which no kernel could
    print: training such a model used to fail with sympy's PrintMethodNotImplementedError)."""
    model = sg.NeuronModel(f"dv/dt = ({fn}(c) + {fn}(v) + I - v) / tau : 1\n"
                           "dI/dt = -I / taus : 1", threshold="v > 1", reset="v = 0",
                           method="euler", name=f"flat_{fn}")
    lm = derive(discretise(model), inputs=["I"])
    col = [p.name for p in lm.params].index("c")
    assert all(e == 0 for e in lm.jacobian("next", "params").col(col))
    assert not lm.jacobian("next", "states").atoms(sp.Derivative, sp.DiracDelta)


def test_a_function_without_a_derivative_is_a_clear_error():
    """The safety net: should a function of the language lose its derivative (here sympy's
    own floor put back in), training refuses it by name instead of failing in a printer."""
    import dataclasses

    from snngen.errors import SnngenError
    model = sg.NeuronModel("dv/dt = (floor(v) + I - v) / tau : 1\ndI/dt = -I / taus : 1",
                           threshold="v > 1", reset="v = 0", method="euler", name="raw")
    d = discretise(model)
    raw = tuple((x, e.xreplace({f: sp.floor(*f.args) for f in e.atoms(sp.floor)}))
                for x, e in d.updates)
    lm = derive(dataclasses.replace(d, updates=raw), inputs=["I"])
    with pytest.raises(SnngenError, match=r"cannot differentiate Derivative\(floor\(v\), v\)"):
        lm.jacobian("next", "states")


def test_a_classifier_with_floor_in_its_model_trains():
    """The case that failed: gradients of a RecurrentClassifier whose model uses floor()."""
    from snngen.train import RecurrentClassifier
    model = sg.NeuronModel("dv/dt = (floor(c) + I - v) / tau : 1\ndI/dt = -I / taus : 1",
                           threshold="v > 1", reset="v = 0", method="euler", name="fl_clf")
    net = RecurrentClassifier(model, "I", 3, 4, 2, params={"c": 0.5, "tau": 0.01,
                                                           "taus": 0.005},
                              trainable_params=("c", "tau"))
    x = (np.random.default_rng(0).random((20, 2, 3)) < 0.3).astype(float)
    loss, grads, _ = net.loss_and_grads(x, np.array([0, 1]))
    assert np.isfinite(loss)
    np.testing.assert_array_equal(grads["c"], 0.0)
    assert np.all(np.isfinite(grads["tau"]))
