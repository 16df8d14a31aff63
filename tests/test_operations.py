"""run_regularly: statements on every neuron of a population every n steps, at the start of
the step (first in step 0), on Numba and the CUDA kernels; every mistake refused where the
operation is declared."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import BackendUnsupported, InvalidValueError, UnitError, UnknownNameError

DT = 1e-4
LEAK = sg.NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*volt", reset="v = 0*volt",
                      name="operations_leak")


def _run(backend="numba", code="v += 1*mV", dt="1*ms", batch=1, steps=35):
    net = sg.Network(dt=DT, dtype="float64", batch=batch, seed=5)
    pop = net.population("P", LEAK, 4, params={"tau": 1e9})  # no leak to speak of
    net.run_regularly(pop, code, dt=dt)
    mon = net.monitor_state(pop, ["v"])
    sim = net.build(backend)
    sim.run(steps * DT)
    return mon.v


def test_runs_every_n_steps_from_step_zero_before_the_monitors():
    v = _run()[0, :, 0]
    # steps 0, 10, 20, 30 add 1 mV; the monitor records after the operation of its step
    want = 1e-3 * (1 + np.arange(35) // 10)
    np.testing.assert_allclose(v, want, rtol=1e-9)


def test_draws_per_neuron_trial_and_run_and_backends_agree():
    v = _run(code="v = rand() * volt", dt=None, batch=2, steps=5)
    assert len(np.unique(v)) == v.size  # every neuron, trial and step its own number
    try:
        emu = _run("cuda-host", code="v = rand() * volt", dt=None, batch=2, steps=5)
    except BackendUnsupported as err:
        pytest.skip(str(err))
    np.testing.assert_array_equal(emu, v)


@pytest.mark.parametrize("code,dt,error,text", [
    ("w = 1*mV", None, UnknownNameError, "not a state variable"),
    ("v += q", None, UnknownNameError, "unknown name 'q'"),
    ("v += 1*second", None, UnitError, "dimension"),
    ("v += 1*mV", "0.25*ms", InvalidValueError, "whole multiple"),
    ("v += 1*mV", "0.15*ms", InvalidValueError, "whole multiple"),
    ("v += 1*mV", -1e-3, InvalidValueError, "positive"),
    ("v += 1*mV", "1*volt", InvalidValueError, "time"),
])
def test_mistakes_are_refused_where_declared(code, dt, error, text):
    net = sg.Network(dt=0.1e-3)
    pop = net.population("P", LEAK, 2, params={"tau": 0.01})
    with pytest.raises(error, match=text):
        net.run_regularly(pop, code, dt=dt)
    assert net.operations == []


def test_only_neuron_populations():
    net = sg.Network(dt=DT)
    src = net.poisson("X", 3, rates=10.0)
    with pytest.raises(InvalidValueError, match="neuron population"):
        net.run_regularly(src, "v = 0", dt=None)


def test_the_statements_are_part_of_the_kernel_cache_key():
    from snngen.backends import get_backend
    from snngen.runtime.allocate import structure_key
    keys = []
    for code in ("v += 1*mV", "v += 2*mV", "v = rand() * volt"):
        net = sg.Network(dt=DT)
        pop = net.population("P", LEAK, 2, params={"tau": 0.01})
        net.run_regularly(pop, code, dt="1*ms")
        keys.append(structure_key(net, get_backend("numba")))
    assert len(set(keys)) == 3
    np.testing.assert_allclose(_run(code="v += 2*mV")[0, :, 0],
                               2e-3 * (1 + np.arange(35) // 10), rtol=1e-9)
