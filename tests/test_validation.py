"""Values given to a Network are refused where they enter, with what, where and how to fix
(issue 18, items 3 and 4): each test here failed before the check it covers existed."""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg
from snngen.errors import InvalidValueError, NumericalError, ShapeError
from snngen.runtime.validate import check_parameter_values

LIF = sg.NeuronModel("dv/dt = (El - v) / taum : volt", threshold="v > Vt", reset="v = Vr",
                     refractory="2*ms", name="lif")
PARAMS = {"El": "-49*mV", "taum": "20*ms", "Vt": "-50*mV", "Vr": "-60*mV"}


def population(params=None, init=None, model=LIF, n=3, **net_options):
    net = sg.Network(dt=1e-4, **net_options)
    return net, net.population("P", model, n, params={**PARAMS, **(params or {})}, init=init)


# -- parameters against the model --------------------------------------------------------

def test_zero_divisor_is_refused_at_population_not_in_generated_code():
    with pytest.raises(InvalidValueError, match="'taum' is 0, but the model divides by it"):
        population({"taum": 0})
    with pytest.raises(InvalidValueError, match="'taum' is 0 for neuron 2"):
        population({"taum": np.array([0.02, 0.01, 0.0])})


def test_divisor_in_threshold_and_reset_must_not_be_zero():
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1 / k", reset="v = 1 / q - 1")
    with pytest.raises(InvalidValueError, match="'k' is 0.*threshold"):
        sg.Network(dt=1e-4).population("P", model, 2, params={"tau": 0.01, "k": 0, "q": 1})


def test_negative_time_constant_is_refused_by_unit_and_by_dynamics():
    with pytest.raises(InvalidValueError, match="'taum' is a time .* must be > 0, got -0.02"):
        population({"taum": "-20*ms"})
    # no units: the model says it, a negative divisor turns decay into growth
    plain = sg.NeuronModel("dv/dt = (El - v) / tau : 1")
    net = sg.Network(dt=1e-4)
    with pytest.raises(InvalidValueError, match="'tau' is -0.01 for neuron 1, which makes v "
                                                "grow exponentially.*must be positive"):
        net.population("P", plain, 2, params={"El": 0.0, "tau": np.array([0.01, -0.01])})


def test_growth_written_on_purpose_and_other_negative_values_are_kept():
    grow = sg.NeuronModel("dv/dt = v / tau : 1")
    net = sg.Network(dt=1e-4)
    net.population("G", grow, 2, params={"tau": 0.01})
    net.population("E", LIF, 2, params={**PARAMS, "El": "-70*mV"})  # negative, no divisor
    # a negative divisor that does not touch a self-coefficient is not a time constant
    drive = sg.NeuronModel("dv/dt = (a / b - v) / tau : 1")
    net.population("D", drive, 2, params={"a": 1.0, "b": -2.0, "tau": 0.01})


def test_nonfinite_parameter_names_population_parameter_and_neuron():
    with pytest.raises(InvalidValueError, match="population 'P': parameter 'Vt' is nan"):
        population({"Vt": float("nan")})
    with pytest.raises(InvalidValueError, match="'El' is inf for neuron 1"):
        population({"El": np.array([-0.05, np.inf, -0.05])})


def test_negative_refractory_period_is_refused():
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0",
                           refractory="-2*ms")
    with pytest.raises(InvalidValueError, match="refractory period.*-0.002 s; it must be >= 0"):
        sg.Network(dt=1e-4).population("P", model, 2, params={"tau": 0.01})
    by_param = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0",
                              refractory="tref")
    with pytest.raises(InvalidValueError, match="for neuron 1"):
        sg.Network(dt=1e-4).population("P", by_param, 2,
                                       params={"tau": 0.01, "tref": np.array([0.0, -1e-3])})


def test_check_parameter_values_is_usable_on_its_own():
    check_parameter_values(LIF, {"El": -0.049, "taum": 0.02, "Vt": -0.05, "Vr": -0.06}, "x")
    check_parameter_values(LIF, {"taum": 0.02}, "x")  # missing names skip their checks
    with pytest.raises(InvalidValueError, match="^layer 1: parameter 'taum' is 0"):
        check_parameter_values(LIF, {"taum": np.zeros(4)}, "layer 1")


# -- initial values -----------------------------------------------------------------------

def test_init_in_the_wrong_unit_names_both_units():
    with pytest.raises(InvalidValueError, match="init of 'v': '-60\\*ms' is in second, but "
                                                "the state variable is in volt"):
        population(init={"v": "-60*ms"})
    with pytest.raises(InvalidValueError, match="in second, but the state variable is in volt"):
        population(init={"v": sg.Uniform("-60*ms", "-50*ms")})


def test_init_values_are_checked_for_finiteness_and_shape():
    with pytest.raises(InvalidValueError, match="init of 'v' is nan for neuron 1"):
        population(init={"v": np.array([-0.06, np.nan, -0.06])})
    with pytest.raises(ShapeError, match=r"init of 'v': got shape \(4,\)"):
        population(init={"v": np.zeros(4)})
    with pytest.raises(InvalidValueError, match="Uniform: low .* must not exceed high"):
        sg.Uniform(0.1, 0.0)
    with pytest.raises(InvalidValueError, match="Normal: std must be >= 0"):
        sg.Normal(0.0, -1.0)


def test_init_accepts_quantity_strings_and_distributions_in_units():
    net, pop = population(init={"v": sg.Uniform("-60*mV", "-50*mV")}, batch=2)
    sim = net.build()
    v = sim.state(pop, "v")
    assert v.shape == (2, 3) and np.all((v >= -0.06) & (v < -0.05))


# -- network settings ---------------------------------------------------------------------

def test_dt_accepts_a_time_string_and_refuses_other_units_and_nonsense():
    assert sg.Network(dt="0.1*ms").dt == pytest.approx(1e-4)
    with pytest.raises(InvalidValueError, match="dt: '0.1\\*mV' is in volt.*a time"):
        sg.Network(dt="0.1*mV")
    for bad in (0, -1e-4, float("nan"), float("inf"), None):
        with pytest.raises(InvalidValueError, match="dt"):
            sg.Network(dt=bad)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True, "1", None])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(InvalidValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        sg.Network(dt=1e-4, seed=seed)


def test_largest_seeds_reach_the_kernel_and_differ():
    spikes = []
    for seed in (2**64 - 1, np.uint64(2**63 + 5), 5):
        net = sg.Network(dt=1e-4, seed=seed)
        mon = net.monitor_spikes(net.poisson("X", 10, "500*Hz"))
        net.build().run("5*ms")
        spikes.append(tuple(mon.i))
    assert len(set(spikes)) == 3


@pytest.mark.parametrize("option,value", [("batch", 0), ("batch", 1.5), ("batch", True),
                                          ("dtype", "float16")])
def test_bad_batch_and_dtype_are_refused(option, value):
    with pytest.raises(InvalidValueError, match=option):
        sg.Network(dt=1e-4, **{option: value})


def test_population_sizes_must_be_positive_integers():
    net = sg.Network(dt=1e-4)
    for n in (0, 1.5, "3", True):
        with pytest.raises(InvalidValueError, match="size must be an integer >= 1"):
            net.population("P", LIF, n, params=PARAMS)
    assert net.population("P", LIF, 1e1, params=PARAMS).n == 10  # integral floats are fine


# -- inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rates,error,match", [
    (float("nan"), InvalidValueError, "rates is nan"),
    (np.array([1.0, np.nan, 2.0]), InvalidValueError, "rates is nan for neuron 1"),
    (-5.0, InvalidValueError, "rates must be >= 0 Hz"),
    (np.array([1.0, -2.0, 3.0]), InvalidValueError, "for neuron 1"),
    ("5*mV", InvalidValueError, "in volt, but it must be a rate"),
    (np.ones(4), ShapeError, "one per neuron"),
])
def test_bad_poisson_rates_are_refused(rates, error, match):
    with pytest.raises(error, match=match):
        sg.Network(dt=1e-4).poisson("X", 3, rates)


def test_poisson_rate_strings_in_hertz_are_read():
    assert sg.Network(dt=1e-4).poisson("X", 3, "5*kHz").rates == 5000.0


def test_timed_array_values_and_dt_are_checked():
    with pytest.raises(InvalidValueError, match="TimedArray values is nan for entry 2"):
        sg.TimedArray([0.0, 1.0, np.nan], dt=1e-3)
    with pytest.raises(InvalidValueError, match="TimedArray dt"):
        sg.TimedArray([0.0, 1.0], dt="1*mV")
    assert sg.TimedArray([0.0, 1.0], dt="1*ms").dt == pytest.approx(1e-3)


def test_spike_source_times_and_indices_are_checked():
    net = sg.Network(dt=1e-4)
    with pytest.raises(InvalidValueError, match="times.*in volt"):
        net.spike_source("S", 2, [0], "1*mV")
    with pytest.raises(InvalidValueError, match="indices must be integers"):
        net.spike_source("S", 2, [0.5], [0.001])
    with pytest.raises(InvalidValueError, match="times is nan"):
        net.spike_source("S", 2, [0], [np.nan])


def test_delays_and_weights_are_checked_where_given():
    net, pop = population()
    with pytest.raises(sg.ConnectivityError, match="delay: '1\\*mV' is in volt"):
        net.connect(pop, pop, "v += w", "all_to_all", w=1.0, delay="1*mV")
    with pytest.raises(sg.ConnectivityError, match="'w' is nan"):
        net.connect(pop, pop, "v += w", "all_to_all", w=float("nan"))
    with pytest.raises(sg.ConnectivityError, match="'w' is inf for synapse 1"):
        net.connect(pop, pop, "v += w", {"i": [0, 1], "j": [1, 2]}, w=np.array([1.0, np.inf]))
    net.connect(pop, pop, "v += w", "all_to_all", w="0.1*mV", delay="1*ms")


def test_state_monitor_every_and_indices_are_checked():
    net, pop = population()
    for every in (0, 1.5, True):
        with pytest.raises(InvalidValueError, match="every must be an integer >= 1"):
            net.monitor_state(pop, "v", every=every)
    with pytest.raises(InvalidValueError, match="indices must be integers"):
        net.monitor_state(pop, "v", indices=[0.5])
    with pytest.raises(InvalidValueError, match="within 0..2, got 3"):
        net.monitor_state(pop, "v", indices=[0, 3])


# -- runs ---------------------------------------------------------------------------------

def test_run_reads_time_strings_and_rounds_to_whole_steps():
    net, _ = population()
    sim = net.build()
    sim.run("1*ms")
    assert sim.step == 10
    sim.run(0.00012)  # 1.2 steps: rounded, as before
    assert sim.step == 11


@pytest.mark.parametrize("duration,match", [
    (float("nan"), "run duration is nan"), (float("inf"), "run duration is inf"),
    ("1*mV", "run duration: '1\\*mV' is in volt"), (-1e-3, "run duration must be >= 0"),
    (None, "run duration: cannot read a number"),
])
def test_bad_run_durations_are_refused_and_change_nothing(duration, match):
    net, _ = population()
    sim = net.build()
    sim.run(1e-3)
    with pytest.raises(InvalidValueError, match=match):
        sim.run(duration)
    assert sim.step == 10
    sim.run(1e-3)  # still usable
    assert sim.step == 20


def test_runs_past_int32_steps_are_refused_before_running():
    net, _ = population()
    sim = net.build(progress=False)
    with pytest.raises(InvalidValueError, match="2\\*\\*31 - 1"):
        sim.run(1e10 * 1e-4)
    assert sim.step == 0


# -- NaN reports -------------------------------------------------------------------------

GROW = sg.NeuronModel("dv/dt = v / tau : 1", name="grow")


def blow_up(init, batch):
    net = sg.Network(dt=1e-4, batch=batch)
    net.population("P", GROW, 4, params={"tau": 1e-4}, init={"v": init})
    with pytest.raises(NumericalError) as err:
        net.build().run(0.05)
    return str(err.value)


def test_nan_report_counts_neurons_and_trials_apart():
    assert "in neuron 2 of all 4 trials" in blow_up(np.array([0, 0, 1.0, 0]), 4)
    init = np.zeros((4, 4))
    init[0, 1] = init[0, 3] = init[2, 1] = 1.0
    assert "in 2 neurons (first 1) across 2 of 4 trials (first trial 0)" in blow_up(init, 4)
    assert "in neuron 2." in blow_up(np.array([0, 0, 1.0, 0]), 1)


TRACE = sg.SynapseModel("""
    w : 1
    dApre/dt = -Apre / taupre : 1 (event-driven)
""", on_pre="v_post += w; Apre += 0.01; w = w + Apre", name="trace")


def test_synaptic_parameters_are_checked_against_the_synapse_model():
    net, pop = population()
    for taupre, match in ((0.0, "'taupre' is 0, but the model divides by it"),
                          (-0.01, "'taupre' is -0.01, which makes Apre grow"),
                          ("-10*ms", "'taupre' is a time .* must be > 0"),
                          (float("nan"), "'taupre' is nan")):
        with pytest.raises((InvalidValueError, sg.ConnectivityError), match=match):
            net.connect(pop, pop, TRACE, "all_to_all", w=0.1, params={"taupre": taupre})
    net.connect(pop, pop, TRACE, "all_to_all", w=0.1, params={"taupre": "10*ms"})
