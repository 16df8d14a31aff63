"""Units of synaptic statements and event-driven equations are checked when a projection is
made (issue 19: "unit checking of synaptic statements"), as neuron models are."""

from __future__ import annotations

import pytest

import snngen as sg
from snngen.errors import UnitError

COBA = sg.NeuronModel("""
    dv/dt = (ge * (Ee - v) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
""", threshold="v > -50*mV", reset="v = -60*mV", name="coba")
CUBA = sg.NeuronModel("dv/dt = (El - v + I) / taum : volt\ndI/dt = -I / taus : volt",
                      threshold="v > -50*mV", reset="v = -60*mV", name="cuba")
P = {"Ee": "0*mV", "El": "-60*mV", "taum": "20*ms", "taue": "5*ms", "taus": "5*ms"}


def _net(model=CUBA):
    net = sg.Network(dt=1e-4)
    src = net.spike_source("S", 2, [0], [0.0])
    params = {k: v for k, v in P.items() if k in model.parameter_names}
    pop = net.population("P", model, 2, params=params)
    return net, src, pop


def test_a_weight_in_the_wrong_unit_is_refused_at_connect():
    net, src, pop = _net()
    with pytest.raises(UnitError, match=r"projection 'bad', on_pre: 'I' has dimension volt "
                                        r"but 'w' has dimension second") as err:
        net.connect(src, pop, sg.SynapseModel("w : second", on_pre="I += w"), name="bad")
    assert "    I += w" in str(err.value)
    net.connect(src, pop, sg.SynapseModel("w : volt", on_pre="I += w"), w="0.5*mV")
    net.connect(src, pop, "I += w", w=0.5e-3)  # the shortcut's w takes the target's unit


def test_pre_and_post_variables_and_parameters_are_checked():
    net, _, pop = _net()
    ok = sg.SynapseModel("w : volt", on_pre="I_post += w", on_post="w = clip(w + v_pre, "
                                                                    "0*mV, wmax)")
    net.connect(pop, pop, ok, params={"wmax": "2*mV"})
    with pytest.raises(UnitError, match="on_post"):
        net.connect(pop, pop, ok, params={"wmax": "2*ms"})
    mixed = sg.SynapseModel("w : volt", on_pre="I += w", on_post="w += t")
    with pytest.raises(UnitError, match="'w' has dimension volt but 't' has dimension second"):
        net.connect(pop, pop, mixed)


def test_event_driven_equations_are_checked():
    net, src, pop = _net()
    good = sg.SynapseModel("w : volt\ndA/dt = -A / tau : volt (event-driven)",
                           on_pre="A += w; I += A")
    net.connect(src, pop, good, params={"tau": "10*ms"})
    bad = sg.SynapseModel("w : volt\ndA/dt = -A : volt (event-driven)", on_pre="I += w")
    with pytest.raises(UnitError, match="dA/dt"):
        net.connect(src, pop, bad)


def test_multiplying_statements_need_a_dimensionless_factor():
    net, src, pop = _net()
    with pytest.raises(UnitError, match="needs a dimensionless factor"):
        net.connect(src, pop, sg.SynapseModel("w : volt", on_pre="I *= w"))
    net.connect(src, pop, sg.SynapseModel("a : 1", on_pre="I *= 0.5 + a"))


def test_conductance_synapses_into_a_dimensionless_conductance():
    net, src, pop = _net(COBA)
    net.connect(src, pop, "ge += w", w=0.1)
    with pytest.raises(UnitError):
        net.connect(src, pop, sg.SynapseModel("w : volt", on_pre="ge += w"))
