"""The kernel IR: lowering output passes the verifier; broken programs are caught."""

import dataclasses

import pytest
import sympy as sp

import snngen as sg
from snngen.ir import nodes
from snngen.ir.lower import lower
from snngen.ir.verify import IRError, verify


def _network(cuba_model):
    from conftest import CUBA_PARAMS
    net = sg.Network(dt=1e-4)
    pop = net.population("P", cuba_model, 20, params=CUBA_PARAMS)
    src = net.poisson("X", 5, rates=10.0)
    net.connect(src, pop, "ge += w", "all_to_all", w=1e-3, delay="0.5*ms")
    net.connect(pop[:10], pop, "gi += w", {"p": 0.5}, w=-1e-3, delay="abs(i - j) * 0.1*ms")
    net.monitor_spikes(pop)
    net.monitor_state(pop, ["v"], every=3)
    net.monitor_rate(pop)
    return net


def test_lowered_program_verifies_and_prints(cuba_model):
    program = lower(_network(cuba_model)).program
    assert verify(program) is program
    kinds = {type(s).__name__ for s in program.steps}
    assert kinds == {"Deliver", "Accumulate", "NeuronStep", "PoissonStep", "SpikeRecord",
                     "StateRecord", "RateRecord", "Reset"}
    text = str(program)
    assert "NeuronStep P" in text and "spike if" in text and "Reset P" in text


def test_program_follows_brian2s_schedule(cuba_model):
    """start (state monitors), groups + thresholds, spike monitors, synapses, resets."""
    program = lower(_network(cuba_model)).program
    order = [type(s).__name__ for s in program.steps]
    phase = {"Regularly": -1, "StateRecord": 0, "Summed": 0.5, "NeuronStep": 1, "PoissonStep": 1,
             "ArrayStep": 1, "SynapseUpdate": 1,
             "SpikeRecord": 2, "RateRecord": 2, "Deliver": 3, "Accumulate": 3, "Reset": 4}
    assert [phase[k] for k in order] == sorted(phase[k] for k in order), order


def test_verifier_wants_a_reset_after_its_neuron_step(cuba_model):
    program = lower(_network(cuba_model)).program
    reset = next(s for s in program.steps if isinstance(s, nodes.Reset))
    others = tuple(s for s in program.steps if s is not reset)
    with pytest.raises(IRError, match="no Reset node"):
        verify(dataclasses.replace(program, steps=others))
    with pytest.raises(IRError, match="comes before"):
        verify(dataclasses.replace(program, steps=(reset,) + others))


def test_verifier_rejects_undefined_names_and_arguments(cuba_model):
    program = lower(_network(cuba_model)).program
    step = next(s for s in program.steps if isinstance(s, nodes.NeuronStep))
    bad_body = step.body + (nodes.Assign("P_extra", sp.Symbol("nowhere") * 2),)
    broken = dataclasses.replace(program, steps=(dataclasses.replace(step, body=bad_body),))
    with pytest.raises(IRError, match="nowhere"):
        verify(broken)
    missing_arg = dataclasses.replace(program, args=tuple(a for a in program.args
                                                           if a.name != "P__v"))
    with pytest.raises(IRError, match="P__v"):
        verify(missing_arg)


def test_numba_backend_renders_every_node_kind(cuba_model):
    from snngen.backends.numba.render import render
    lowered = lower(_network(cuba_model))
    source = render(lowered.program, lowered.constants)
    compile(source, "generated", "exec")  # valid Python
    for marker in ("synaptic events", "per-synapse delays", "Poisson sources",
                   "state update", "monitor m0", "monitor m1", "monitor m2"):
        assert marker in source
    node_types = {c for c in vars(nodes).values() if isinstance(c, type)
                  and dataclasses.is_dataclass(c)} - {nodes.Arg, nodes.Assign, nodes.StateVar,
                                                       nodes.Trace, nodes.Program}
    rendered = {type(s) for s in lowered.program.steps}
    # clock-driven synapses and summed variables: a network of their own
    from test_clock_driven import NEURON, NMDA, PARAMS, SYN
    net = sg.Network(dt=1e-4)
    pop = net.population("N", NEURON, 4, params=PARAMS)
    net.connect(net.poisson("X", 3, rates=10.0), pop, NMDA, "all_to_all", w=1.0, params=SYN)
    net.run_regularly(pop, "v = v + 0.1*mV * rand()", dt="1*ms")
    extra = lower(net)
    compile(render(extra.program, extra.constants), "generated", "exec")
    rendered |= {type(s) for s in extra.program.steps}
    assert node_types - rendered == {nodes.ArrayStep}  # covered by the reference tests
