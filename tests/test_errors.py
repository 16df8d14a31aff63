"""Every class of user mistake: a clear error that says what and where."""

import numpy as np
import pytest

import snngen as sg
from snngen.model import NeuronModel


def test_unit_mismatch_names_both_sides():
    model = NeuronModel("dv/dt = (El - v) / taum + taum : volt", name="bad")
    net = sg.Network(dt=1e-4)
    with pytest.raises(sg.UnitError) as err:
        net.population("P", model, 3, params={"El": "-60*mV", "taum": "10*ms"})
    message = str(err.value)
    assert "volt" in message and "second" in message
    assert "taum" in message and "^" in message


def test_unit_of_ode_must_match_its_variable():
    model = NeuronModel("dv/dt = (El - v) : volt", name="bad")
    with pytest.raises(sg.UnitError, match="dv/dt"):
        sg.Network(dt=1e-4).population("P", model, 3, params={"El": "-60*mV"})


def test_unknown_unit_suggests():
    with pytest.raises(sg.UnitError, match="unknown unit 'vlot'.*Did you mean.*'volt'"):
        NeuronModel("dv/dt = -v / tau : vlot").check_units({})


def test_units_are_optional():
    model = NeuronModel("dv/dt = (El - v) / tau : 1")
    sg.Network(dt=1e-4).population("P", model, 3, params={"El": 1.0, "tau": 0.01})


def test_unknown_parameter_in_params_dict():
    model = NeuronModel("dv/dt = -v / tau : 1")
    with pytest.raises(sg.SnngenError, match="'taux' is not used.*Did you mean 'tau'"):
        sg.Network(dt=1e-4).population("P", model, 3, params={"tau": 0.01, "taux": 1})


def test_network_too_large_is_refused_before_allocation():
    model = NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net = sg.Network(dt=1e-4)
    pop = net.population("P", model, 200_000, params={"tau": 0.01})
    net.connect(pop, pop, "v += w", "all_to_all", w=0.1)  # 4e10 synapses
    with pytest.raises(sg.NetworkTooLargeError) as err:
        net.build()
    message = str(err.value)
    assert "GiB" in message and "nothing was allocated" in message


def test_nan_is_reported_with_step_and_population():
    model = NeuronModel("dv/dt = v * v / tau : 1", name="blowup")
    net = sg.Network(dt=1e-3, dtype="float64")
    net.population("Runaway", model, 3, params={"tau": 0.01}, init={"v": [0.0, 0.0, 5.0]})
    sim = net.build()
    with pytest.raises(sg.NumericalError) as err:
        sim.run(0.2)
    message = str(err.value)
    assert "population 'Runaway'" in message and "'v'" in message
    assert "at step" in message and "neuron 2" in message
    step = int(message.split("at step ")[1].split()[0])
    # the reference: float64 Euler of v' = v^2/tau from 5 overflows at this very step
    v, s = 5.0, 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(v):
            v = v + 1e-3 * v * v / 0.01
            s += 1
    assert step == s - 1


def test_cuda_backend_without_gpu_is_a_clear_error():
    net = sg.Network(dt=1e-4)
    net.population("P", NeuronModel("dv/dt = -v / tau : 1"), 3, params={"tau": 0.01})
    with pytest.raises(sg.BackendUnsupported, match="cuda|CUDA"):
        net.build(backend="cuda")
    with pytest.raises(sg.BackendUnsupported, match="unknown backend 'opencl'"):
        net.build(backend="opencl")


@pytest.mark.parametrize("rule, fragment", [
    ({"p": 1.5}, "p"),
    ({"i": [0, 1], "j": [0, 7]}, "7"),
    ("one_to_many", "one_to_many"),
])
def test_connectivity_errors(rule, fragment):
    model = NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net = sg.Network(dt=1e-4)
    pop = net.population("P", model, 5, params={"tau": 0.01})
    with pytest.raises(sg.ConnectivityError) as err:
        net.connect(pop, pop, "v += w", rule, w=1.0)
        net.build()
    assert fragment in str(err.value)


def test_unknown_name_in_synaptic_statement():
    model = NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net = sg.Network(dt=1e-4)
    pop = net.population("P", model, 5, params={"tau": 0.01})
    net.connect(pop, pop, "v += ww", "all_to_all")
    with pytest.raises(sg.UnknownNameError, match="'ww'.*Did you mean 'w'"):
        net.build()


def test_bad_network_settings():
    with pytest.raises(sg.SnngenError, match="dt must be positive"):
        sg.Network(dt=0)
    net = sg.Network(dt=1e-4)
    with pytest.raises(sg.SnngenError, match="identifier"):
        net.population("my pop", NeuronModel("dv/dt = -v / tau : 1"), 3, params={"tau": 1})
    pop = net.population("P", NeuronModel("dv/dt = -v / tau : 1"), 3, params={"tau": 1})
    with pytest.raises(sg.SnngenError, match="not a state variable.*Did you mean 'v'"):
        net.monitor_state(pop, "vv")


def test_source_without_threshold_is_refused():
    silent = NeuronModel("dv/dt = -v / tau : 1", name="silent")
    target = NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    net = sg.Network(dt=1e-4)
    a = net.population("A", silent, 3, params={"tau": 0.01})
    b = net.population("B", target, 3, params={"tau": 0.01})
    net.connect(a, b, "v += w", "all_to_all", w=1.0)
    with pytest.raises(sg.ConnectivityError, match="'A' has no threshold"):
        net.build()
