"""One test per failure the property-based fuzz suite (tests/test_fuzz.py, issue 18) found
in the runtime, show and training code: each input raised a non-snngen exception (TypeError,
AttributeError, OverflowError, ...), or hung, before the check it covers existed. Small and
fast: no kernel is compiled."""

from __future__ import annotations

import io
import re
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.errors import ConnectivityError, InvalidValueError, did_you_mean

LIF = sg.NeuronModel("dv/dt = (I - v) / tau : 1 (unless refractory)\ndI/dt = -I / taus : 1",
                     threshold="v > vt", reset="v = vr", refractory="2*ms", name="lif")
PARAMS = {"tau": 0.01, "taus": 0.005, "vt": 1.0, "vr": 0.0}


def network():
    net = sg.Network(dt=1e-4)
    return net, net.population("P", LIF, 3, params=PARAMS)


# -- errors.did_you_mean -----------------------------------------------------------------------

def test_did_you_mean_never_raises_on_names_that_are_not_strings():
    assert did_you_mean(None, ["tau"]) == ""
    assert did_you_mean(1.5, ["tau"]) == ""
    assert did_you_mean("tau", [None, 1.5, ("a",), "tua"]) == " Did you mean 'tua'?"


# -- params: a mapping with string keys ----------------------------------------------------

@pytest.mark.parametrize("params, match", [
    ({**PARAMS, None: 1.0}, "parameter names must be strings, got None"),
    ({**PARAMS, 1.5: 1}, "parameter names must be strings, got 1.5"),
    ({**PARAMS, 1: 1.0, ("a",): 2.0}, "parameter names must be strings, got 1 "),
    ([("tau", 0.01), 1], r"params must be a dict .* got \[\('tau', 0.01\), 1\] \(list\)"),
])
def test_population_params_must_be_a_mapping_with_string_keys(params, match):
    with pytest.raises(InvalidValueError, match=match):
        sg.Network(dt=1e-4).population("P", LIF, 3, params=params)


def test_connect_params_must_have_string_keys():
    net, pop = network()
    with pytest.raises(InvalidValueError, match="projection .*parameter names must be strings"):
        net.connect(pop, pop, "v += w", params={None: 1.0}, w=1.0)


def test_parameter_beyond_float_range_is_refused_with_its_name():
    with pytest.raises(InvalidValueError, match=r"parameter 'vt': cannot use 1000.*\(401 chars"):
        sg.Network(dt=1e-4).population("P", LIF, 3, params={**PARAMS, "vt": 10**400})


def test_initial_value_beyond_float_range_is_refused():
    with pytest.raises(InvalidValueError, match="init of 'v': cannot use .*dtype object"):
        sg.Network(dt=1e-4).population("P", LIF, 3, params=PARAMS, init={"v": 10**400})
    with pytest.raises(InvalidValueError, match="init of 'v': .*dtype complex"):
        sg.Network(dt=1e-4).population("P", LIF, 3, params=PARAMS, init={"v": [1j, 0, 0]})


# -- names, models and targets --------------------------------------------------------------

def test_population_name_must_be_a_string():
    with pytest.raises(InvalidValueError, match="population name 1.5 must be a string"):
        sg.Network(dt=1e-4).population(1.5, LIF, 3, params=PARAMS)


@pytest.mark.parametrize("name", [1.5, "", 0])
def test_projection_name_must_be_a_string_identifier(name):
    net, pop = network()
    with pytest.raises(ConnectivityError, match="projection name .* must be a new Python"):
        net.connect(pop, pop, "v += w", name=name, w=1.0)


def test_connect_model_must_be_a_synapse_model_or_statement():
    net, pop = network()
    with pytest.raises(InvalidValueError, match="model must be a SynapseModel .* got nan"):
        net.connect(pop, pop, float("nan"))


def test_connect_ends_must_be_populations():
    net, pop = network()
    with pytest.raises(InvalidValueError, match=r"connect: pre: .* net.populations\['P'\]"):
        net.connect("P", pop, "v += w", w=1.0)


@pytest.mark.parametrize("target", ["P", None, LIF])
@pytest.mark.parametrize("kind", ["spikes", "state", "rate"])
def test_monitor_target_must_be_a_population(kind, target):
    net, _ = network()
    monitor = {"spikes": net.monitor_spikes, "rate": net.monitor_rate,
               "state": lambda t: net.monitor_state(t, "v")}[kind]
    with pytest.raises(InvalidValueError, match="give a population or a slice of one"):
        monitor(target)


@pytest.mark.parametrize("variables", [-1, [], ["v", "v"], ["v", 1], None])
def test_monitor_variables_must_be_distinct_names(variables):
    net, pop = network()
    with pytest.raises(InvalidValueError, match="variables must be a state variable's name"):
        net.monitor_state(pop, variables)


# -- counts, values, delays -------------------------------------------------------------

def test_fraction_counts_are_refused_and_whole_ones_taken():
    with pytest.raises(InvalidValueError, match=r"size must be an integer >= 1, got Fraction"):
        sg.Network(dt=1e-4).population("P", LIF, Fraction(1, 3), params=PARAMS)
    with pytest.raises(InvalidValueError, match="batch must be an integer"):
        sg.Network(dt=1e-4, batch=Fraction(1, 3))
    assert sg.Network(dt=1e-4, batch=Fraction(4, 2)).batch == 2


def test_refractory_period_that_is_nan_for_the_values_given_is_refused():
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0",
                           refractory="sqrt(a)*ms")
    net = sg.Network(dt=1e-4)
    net.population("Q", model, 3, params={"tau": 0.01, "a": 4.0})
    with pytest.raises(InvalidValueError, match=r"refractory period 'sqrt\(a\)\*ms' is not a "
                                                "number .*for neuron 1"):
        net.population("P", model, 3, params={"tau": 0.01, "a": np.array([1.0, -1.0, 2.0])})


@pytest.mark.parametrize("delay, error, match", [
    ([], ConnectivityError, r"one delay or a 1-D array .* got shape \(0,\)"),
    ([[1e-3]], ConnectivityError, r"got shape \(1, 1\)"),
    (1e300, ConnectivityError, "more than the 2147483646 a delay can span"),
])
def test_delays_are_one_or_a_nonempty_vector_within_range(delay, error, match):
    net, pop = network()
    with pytest.raises(error, match=match):
        net.connect(pop, pop, "v += w", w=1.0, delay=delay)


def test_delay_expression_beyond_range_is_refused_at_build():
    net, pop = network()
    net.connect(pop, pop, "v += w", w=1.0, delay="i*1e6*second")
    with pytest.raises(ConnectivityError, match="more than the 2147483646 a delay can span"):
        net.build()


# -- show ----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj, stage, match", [
    (LIF, "SOURCE", r"stage 'SOURCE' of a NeuronModel \(its stages: model, discrete\)"),
    (None, 3, "stage 3 of a NoneType .*it is not a model"),
])
def test_show_refuses_a_stage_with_an_snngen_error_listing_the_stages(obj, stage, match):
    with pytest.raises(InvalidValueError, match=match) as info:
        sg.show(obj, stage)
    assert isinstance(info.value, ValueError)  # callers catching ValueError still do
    assert "Stages: model, discrete (models)" in str(info.value)


def test_show_suggests_the_stage_meant():
    with pytest.raises(InvalidValueError, match="Did you mean 'source'"):
        sg.show(sg.Network(dt=1e-4), "sorce")


# -- time steps, run lengths and build options ------------------------------------------------

@pytest.mark.parametrize("dt, dtype", [(5e-324, "float64"), (1e-40, "float32")])
def test_dt_below_the_smallest_normal_number_is_refused(dt, dtype):
    with pytest.raises(InvalidValueError, match=f"below the smallest normal {dtype}"):
        sg.Network(dt=dt, dtype=dtype)
    sg.Network(dt=1e-300, dtype="float64")  # tiny, but a normal float64


def test_run_of_more_steps_than_a_counter_holds_is_refused():
    from snngen.runtime.validate import read_steps
    assert read_steps("1*ms", 1e-4) == 10
    with pytest.raises(InvalidValueError, match=r"run duration: 1e\+300 s is inf steps"):
        read_steps(1e300, 1e-300)  # the division overflows: round(inf) raised OverflowError
    with pytest.raises(InvalidValueError, match="more than a step counter holds"):
        read_steps(1e10, 1e-10)


def test_run_reads_its_steps_through_the_counter_check():
    net, _ = network()
    sim = net.build()
    with pytest.raises(InvalidValueError, match="more than a step counter holds"):
        sim.run(1e16)
    assert sim.step == 0


@pytest.mark.parametrize("options, match", [
    (dict(max_memory="1 GB"), "max_memory .* must be an integer >= 1, got '1 GB'"),
    (dict(max_memory=float("nan")), "max_memory .* got nan"),
    (dict(max_memory=-1), "max_memory .* got -1"),
    (dict(progress="no"), "progress must be True or False or None, got 'no'"),
    (dict(flush_denormals=None), "flush_denormals must be True or False, got None"),
])
def test_build_options_are_checked_before_compiling(options, match):
    net, _ = network()
    with pytest.raises(InvalidValueError, match=match):
        net.build(**options)



def test_synaptic_value_in_a_unit_other_than_the_declared_one_is_refused():
    syn = sg.SynapseModel("w : volt", on_pre="v += w")
    model = sg.NeuronModel("dv/dt = -v / tau : volt", threshold="v > 1*mV", reset="v = 0*mV")
    net = sg.Network(dt=1e-4)
    pop = net.population("P", model, 3, params={"tau": 0.01})
    with pytest.raises(ConnectivityError, match="'5\\*Hz' is in hertz, but the synapse model "
                                                "declares it in volt"):
        net.connect(pop, pop, syn, w="5*Hz")
    net.connect(pop, pop, syn, w="1*mV")
    net.connect(pop, pop, syn, w="j*mV")  # an expression: its unit is not read here
    # the shortcut declares w : 1 and takes the target's unit
    net.connect(pop, pop, "v += w", w="1*mV")


# -- training ------------------------------------------------------------------------------

CLS = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="cls")
CLS_PARAMS = {"taum": 0.01, "taus": 0.005}


def classifier(**kw):
    from snngen.train import RecurrentClassifier
    args = dict(n_in=3, n_hidden=4, n_out=2, params=CLS_PARAMS)
    return RecurrentClassifier(CLS, "I", **{**args, **kw})


@pytest.mark.parametrize("sizes, table", [
    (dict(n_in=865944795), "in_csr 865944795 x 4: 3,463,779,180 synapses"),  # drew for hours
    (dict(n_out=2**31 - 1), "w_out 4 x 2147483647"),  # 2**63 hit NumPy's maximum dimension
    (dict(n_hidden=(4, 2**30)), "rec_csr:1 1073741824 x 1073741824"),
])
def test_classifier_too_large_for_memory_is_refused_before_drawing(sizes, table):
    from snngen.errors import NetworkTooLargeError
    with pytest.raises(NetworkTooLargeError, match="RecurrentClassifier: the synapse tables "
                                                   "and weights .*" + re.escape(table)):
        classifier(**sizes)


def test_build_csr_refuses_tables_beyond_memory_by_default():
    from snngen import connectivity as conn
    from snngen.errors import NetworkTooLargeError
    with pytest.raises(NetworkTooLargeError, match="FixedProbability between 2147483647 pre"):
        conn.build_csr(conn.FixedProbability(0.5), 2**31 - 1, 2**31 - 1, seed=0)


@pytest.mark.parametrize("trainable", [None, 1, 1.5, "taum", {"taum": 1}])
def test_trainable_params_must_be_a_list_of_names(trainable):
    with pytest.raises(InvalidValueError, match="trainable_params must be a list or tuple of "
                                                "names"):
        classifier(trainable_params=trainable)


def test_counts_and_reals_of_training_refuse_fractions_and_huge_ints():
    from snngen.train.checks import as_count, as_real
    with pytest.raises(InvalidValueError, match=r"epochs must be an integer >= 0, got Fraction"):
        as_count(Fraction(1, 3), "epochs", "Trainer.fit", 0)
    assert as_count(Fraction(4, 2), "epochs", "Trainer.fit", 0) == 2
    assert as_count(10**30, "epochs", "Trainer.fit", 0) == 10**30  # work, not a mistake
    with pytest.raises(InvalidValueError, match=r"need lr > 0 .*got 1000.*\(401 chars\)"):
        as_real(10**400, "lr", "Trainer", 0, open_low=True)
    with pytest.raises(InvalidValueError, match="need lr > 0"):
        as_real(Fraction(10**400, 3), "lr", "Trainer", 0, open_low=True)


def test_spike_raster_with_huge_or_tiny_numbers():
    from snngen.errors import NetworkTooLargeError
    from snngen.train import spike_raster
    times = np.array([[0.0, 0.01]])
    with pytest.raises(InvalidValueError, match="spike_raster: need dt > 0"):
        spike_raster(times, dt=10**400, steps=5)
    with pytest.raises(NetworkTooLargeError, match=r"\(401 chars\) steps .*about 2\*\*"):
        spike_raster(times, dt=1e-3, steps=10**400)
    # times / dt overflowing int64 landed at index -2**63 (IndexError): past the end, they
    # land in the last step, as the docstring says
    assert spike_raster(times, dt=5e-324, steps=5)[:, 0, 1].tolist() == [0, 0, 0, 0, 1]
    assert spike_raster(np.array([[1e300]]), dt=1e-3, steps=3)[:, 0, 0].tolist() == [0, 0, 1]


def test_timed_array_refuses_complex_and_huge_values():
    """Complex values lost their imaginary part with only a ComplexWarning; a list holding an
    int beyond float64 raised OverflowError."""
    with pytest.raises(sg.InvalidValueError, match="real numbers"):
        sg.TimedArray(np.array([1.0, 2.0 + 1j]), "1*ms")
    with pytest.raises(sg.InvalidValueError, match="real numbers"):
        sg.TimedArray([1.0, 10**400], "1*ms")


def test_messages_show_lists_holding_huge_ints():
    """One `shown` for every error message: an int of over 4,300 digits has no repr, also
    inside a list (validate.shown called bit_length on the list)."""
    from snngen.errors import shown
    assert shown(10**5000) == "an integer of 16610 bits"
    assert "over 4300 digits" in shown([1, 10**5000])
    with pytest.raises(sg.InvalidValueError, match="over 4300 digits"):
        sg.Network(dt=1e-4).population([10**5000], sg.NeuronModel("dv/dt = -v/tau : 1"), 2)


@pytest.mark.parametrize("size", [1e308, 10**400, 2**31])
def test_neuron_counts_beyond_int32_are_refused(size):
    """The long fuzz run (20,078 cases) found n_hidden=1e308 overflowing a float product in
    the classifier's table estimate; neuron indices are int32, so no population may be larger."""
    from snngen.train import RecurrentClassifier
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0")
    with pytest.raises(InvalidValueError, match="n_hidden must be at most 2147483647"):
        RecurrentClassifier(lif, "I", n_in=2, n_hidden=size, n_out=2,
                            params={"taum": 0.01, "taus": 0.005})
    with pytest.raises(InvalidValueError, match="size must be at most 2147483647"):
        sg.Network(dt=1e-4).population("P", lif, size, params={"taum": 0.01, "taus": 0.005})


@pytest.mark.parametrize("method", [np.array([]), None, 3, "rk5"])
def test_integration_methods_are_checked_where_given(method):
    """method=np.array([]) reached discretisation and raised NumPy's truth-value ValueError."""
    with pytest.raises(sg.IntegrationError, match="unknown integration method"):
        sg.NeuronModel("dv/dt = -v / tau : 1", method=method)
    model = sg.NeuronModel("dv/dt = -v / tau : 1")
    if method is not None:  # None: the model's own method
        with pytest.raises(sg.IntegrationError, match="population 'P': unknown integration"):
            sg.Network(dt=1e-4).population("P", model, 2, params={"tau": 0.01}, method=method)


def test_float16_inputs_are_refused_before_the_kernels():
    """Second long fuzz run (seed 7): float16 input spikes reached the Numba event lists
    (NotImplementedError: float16)."""
    from snngen.train import RecurrentClassifier, Trainer
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0")
    net = RecurrentClassifier(lif, "I", n_in=3, n_hidden=4, n_out=2,
                              params={"taum": 0.01, "taus": 0.005})
    x = np.ones((5, 2, 3), np.float16)
    with pytest.raises(sg.ShapeError, match="float16.*astype"):
        net.predict(x)
    with pytest.raises(sg.ShapeError, match="float16"):
        Trainer(net).fit(x, np.array([0, 1]), epochs=1)


def _one_step(d, params, state, dt):
    """The discretised step ``d`` evaluated numerically at ``state``."""
    from snngen.integrate import DT
    values = {sp.Symbol(k, real=True): v for k, v in {**params, **state}.items()}
    values[DT] = dt
    for s, e in d.constants:
        values[s] = float(e.xreplace(values))
    return {str(x): float(e.xreplace(values)) for x, e in d.updates}


def _rk_reference(f, y, dt, order):
    """One classical RK2 (midpoint) or RK4 step of ``y' = f(y)`` (``y`` a dict)."""
    add = lambda y, k, h: {n: y[n] + h * k[n] for n in y}  # noqa: E731
    k1 = f(y)
    if order == 2:
        return add(y, f(add(y, k1, dt / 2)), dt)
    k2 = f(add(y, k1, dt / 2))
    k3 = f(add(y, k2, dt / 2))
    k4 = f(add(y, k3, dt))
    return {n: y[n] + dt / 6 * (k1[n] + 2 * k2[n] + 2 * k3[n] + k4[n]) for n in y}


@pytest.mark.parametrize("method, order", [("rk2", 2), ("rk4", 4)])
def test_rk_stages_of_where_and_max_build_and_step_correctly(method, order):
    """Second long fuzz run: rk4 of a max() over a where() made sympy raise 'The argument
    nan is not comparable' while re-evaluating a stage; stages are now substituted without
    re-evaluating Piecewise nodes (snngen.symbolic), so the model builds, and its step is
    the textbook one, on both sides of the where()."""
    eqs = """dge/dt = where((ge >= 0*mV) or (w > Vr), -33.7*mV, Vs) / taue : volt
             dw/dt = max(ge, w) / taum : volt"""
    d = sg.discretise(sg.NeuronModel(eqs, method=method))
    params = {"Vr": -0.06, "Vs": 0.002, "taue": 0.005, "taum": 0.02}

    def f(y):
        drive = -0.0337 if (y["ge"] >= 0 or y["w"] > params["Vr"]) else params["Vs"]
        return {"ge": drive / params["taue"], "w": max(y["ge"], y["w"]) / params["taum"]}

    for state in ({"ge": 0.001, "w": -0.05}, {"ge": -0.001, "w": -0.07},
                  {"ge": -1e-6, "w": -0.0601}):  # the last crosses branches between stages
        got = _one_step(d, params, state, 1e-3)
        want = _rk_reference(f, state, 1e-3, order)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_rk_step_of_a_where_inside_its_own_condition_builds_fast():
    """Third fuzz hang (CI, stop 23): rk4 of a where() whose condition reads the state put a
    Piecewise inside each later stage's condition; sympy folded and simplified each one as it
    was rebuilt (over 80 s, the fuzz watchdog's 'Hang'). The step is now built as written."""
    eqs = ("dv/dt = ((-where((v < El) and (v < Vs), v, Vt)) + Isyn) / taum : volt\n"
           "Isyn = v * gain : volt\ngain : 1 (shared)")
    model = sg.NeuronModel(eqs, threshold="v < El", method="rk4")
    d = sg.discretise(model)
    params = {"El": -0.049, "Vs": 0.003, "Vt": -0.05, "taum": 0.02, "gain": 1.0}

    def f(y):
        v = y["v"]
        lead = v if (v < params["El"] and v < params["Vs"]) else params["Vt"]
        return {"v": (-lead + v * params["gain"]) / params["taum"]}

    for v in (-0.06, -0.0489, -0.04):
        got = _one_step(d, params, {"v": v}, 1e-3)
        assert got == pytest.approx(_rk_reference(f, {"v": v}, 1e-3, 4), rel=1e-12, abs=1e-15)
    net = sg.Network(dt=1e-4)
    net.population("P", model, 3, params=params)
    sg.show(net, "source", file=io.StringIO())  # lowering (cse, printing) is fast too


def test_a_stage_sympy_cannot_build_is_an_integration_error(monkeypatch):
    """Should sympy still refuse a stage, the error names the method and a way out."""
    import snngen.integrate as integrate

    def refuse(rhs, varying):
        raise TypeError("The argument nan is not comparable")

    monkeypatch.setitem(integrate._STEPPERS, "rk4", refuse)
    with pytest.raises(sg.IntegrationError, match="method 'rk4' cannot build its steps"):
        sg.discretise(sg.NeuronModel("dv/dt = -v**2 / tau : 1", method="rk4"))


# -- choices given as arrays (long fuzz run of 2026-12-07, seed 13) -------------------------

@pytest.mark.parametrize("key", ["over", "surrogate", "backend", "dtype"])
@pytest.mark.parametrize("value", [np.array([]), np.array(["max", "mean"]), ["max"]])
def test_a_choice_given_as_an_array_is_an_snngen_error(key, value):
    """``over=np.array([])`` reached ``over not in ("max", ...)``, where NumPy refuses the
    truth value of an empty array (ValueError); every choice among names is now checked to
    be a string first."""
    from snngen.train import RecurrentClassifier
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0", name="choice")
    with pytest.raises(sg.SnngenError, match=key):
        RecurrentClassifier(lif, "I", 2, 3, 2, params={"taum": 0.01, "taus": 0.005},
                            **{key: value})


def test_the_loss_refuses_an_array_as_its_reduction():
    from snngen.train.losses import cross_entropy
    with pytest.raises(sg.SnngenError, match="over must be"):
        cross_entropy(np.zeros((3, 2, 2)), np.array([0, 1]), over=np.array([]))


# -- a folder where the cache's lock file goes (long fuzz run of 2026-12-07, seed 17) -------

def test_a_folder_named_lock_in_the_cache_is_moved_aside(tmp_path, monkeypatch):
    """``snngen cache clear`` on a damaged cache whose ``lock`` was a folder raised
    IsADirectoryError from filelock; the folder is now quarantined with a warning, and the
    cache works."""
    from snngen import cache
    from snngen.cache import CacheWarning
    root = tmp_path / "cache"
    (root / "lock" / "inner").mkdir(parents=True)
    (root / "index").mkdir()
    (root / "index" / "x.json").write_text("{}")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(root))
    with pytest.warns(CacheWarning, match="lock file .* was not a file; moved it to"):
        assert cache.clear() == 1
    assert not (root / "lock").is_dir()
    with cache.lock():  # and the lock works from now on
        assert (root / "lock").is_file()


# -- an unhashable online rule, an empty raster of 10**30 steps (long fuzz run, seed 23) -----

def _online_learner(**options):
    """An OnlineLearner of 3 inputs, 4 neurons and 2 readouts; every check below is made by
    the constructor, before the kernel (None here: nothing is compiled) is used."""
    from snngen import connectivity as conn
    from snngen.train.online import OnlineLearner
    in_csr = conn.build_csr(conn.AllToAll(), 3, 4, seed=0)
    rec_csr = conn.build_csr(conn.FixedProbability(0.5), 4, 4, seed=1)
    weights = {"w_in": np.ones(in_csr.n_synapses), "w_rec": np.ones(rec_csr.n_synapses),
               "w_out": np.ones((4, 2))}
    return OnlineLearner(None, {"taum": 0.02}, 1e-3, in_csr, rec_csr, weights, kappa=0.9,
                         **options)


@pytest.mark.parametrize("rule", [{"a": 1}, {}, [], set(), [1.0], np.array([]), None, 1j,
                                  "bptt"])
def test_an_online_rule_that_is_not_a_name_is_refused_by_the_constructor(rule):
    """``OnlineLearner(..., rule={'a': 1})`` was accepted and kept; the first ``feed`` then
    reached ``rule not in table`` in ``online_rule``: TypeError (unhashable type: 'dict').
    ``rule=np.array([])`` raised NumPy's ValueError at ``rule == "decolle"``. The rule (and
    its filters) is now checked where it is given."""
    from snngen.derive.online import online_rule
    with pytest.raises(InvalidValueError, match="OnlineLearner: unknown online rule .*choose "
                                                "one of eprop, ostl"):
        _online_learner(rule=rule)
    with pytest.raises(InvalidValueError, match="online_rule: unknown online rule"):
        online_rule(rule)


@pytest.mark.parametrize("rule", ["eprop", "ostl", "rflo", "superspike", "decolle",
                                  np.str_("rflo")])
def test_every_online_rule_name_is_taken(rule):
    from snngen.derive.online import online_rule
    assert _online_learner(rule=rule).rule == rule
    assert _online_learner(rule=online_rule(rule)).trainable == ("w_in", "w_rec", "w_out")
    assert _online_learner(rule="decolle").trainable == ("w_in", "w_rec")


@pytest.mark.parametrize(("option", "value", "match"), [
    ("filters", 3, "trace filter decays must be a list of numbers in"),
    ("filters", ["a"], "trace filter decays"),
    ("filters", [1.0], "trace filter decays"),
    ("filters", (float("nan"),), "trace filter decays"),
    ("filters", [10**400], "trace filter decays"),
    ("layout", np.array([]), "layout must be 'auto'"),
    ("trainable", 3, "trainable must be a list of weight names"),
    ("adaptive_feedback", np.array([]), "adaptive_feedback must be True or False"),
    ("feedback", {"a": 1}, r"feedback .* must have shape \(4, 2\)"),
    ("feedback", "abc", r"feedback .* must have shape \(4, 2\)"),
    ("optimizer", 3, "optimizer must be an optimiser with a step method"),
])
def test_online_learner_options_are_checked_where_given(option, value, match):
    """The other options the constructor kept unchecked until feed (or the first update)
    raised TypeError or ValueError from NumPy or Python there."""
    with pytest.raises(sg.SnngenError, match=f"OnlineLearner: {match}"):
        _online_learner(**{option: value})


def test_valid_online_learner_options_are_taken():
    learner = _online_learner(filters=np.array([0.2, 0.3]), layout="per_synapse",
                              trainable={"w_out"}, feedback=np.ones((4, 2)),
                              adaptive_feedback=True)
    assert learner.trainable == ("w_out",) and learner.feedback.shape == (4, 2)
    assert _online_learner(filters=()).filters == ()


@pytest.mark.parametrize("steps", [10**30, 2**63, 2**62, 576460752303423488])
@pytest.mark.parametrize("shape", [(2, 0), (0, 2)])
def test_an_empty_raster_of_more_steps_than_numpy_can_index_is_refused(shape, steps):
    """``spike_raster(np.zeros((2, 0)), dt, steps=10**30)`` passed the memory check (it holds
    nothing) and reached ``np.zeros((10**30, 2, 0))``: ValueError "Maximum allowed dimension
    exceeded" (2**62 steps: "array is too big"). NumPy refuses a shape whose non-empty axes
    take over 2**63 - 1 bytes, empty or not; latency_raster and events_raster had the same
    check."""
    from snngen.datasets.digits import latency_raster
    from snngen.datasets.shd import events_raster
    from snngen.train import spike_raster
    with pytest.raises(InvalidValueError, match=r"spike_raster: a raster of \d+ steps x "
                                                r"\(\d, \d\) holds nothing, but NumPy cannot "
                                                r"create it .*at most \d+ along its first axis"):
        spike_raster(np.zeros(shape, np.float32), 5e-4, steps)
    with pytest.raises(InvalidValueError, match="latency_raster: .* NumPy cannot create it"):
        latency_raster(np.zeros(shape), 5e-4, 2 * steps)  # float32: twice the steps fit
    with pytest.raises(InvalidValueError, match="events_raster: .* NumPy cannot create it"):
        events_raster([], [], 3, 5e-4, 2 * steps)  # float32, 3 channels


def test_an_empty_raster_of_as_many_steps_as_numpy_can_index_is_made():
    from snngen.train import spike_raster
    most = (2**63 - 1) // 16  # float64, 2 samples
    assert spike_raster(np.zeros((2, 0)), 1e-3, most).shape == (most, 2, 0)
    assert spike_raster(np.zeros((0, 0)), 1e-3, 2 * most).shape == (2 * most, 0, 0)
