"""Property-based fuzzing of every public entry point (issue 18).

One property per entry point: the call either succeeds or raises an ``SnngenError``
subclass; any other exception, a valid input rejected, or a call longer than 20 s fails it
(see ``tests/fuzz/harness.py``). Inputs come from ``tests/fuzz/strategies.py``.

Profiles: the default (CI) runs a bounded, derandomised number of examples per property;
``SNNGEN_FUZZ=1`` runs many more with random seeds; ``benchmarks/fuzz.py`` runs these
properties in child processes (crashes and hangs are counted there) and sets
``SNNGEN_FUZZ_EXAMPLES`` and ``SNNGEN_FUZZ_LOG``.

Entry points that run compiled kernels use a small fixed set of network structures (values,
sizes and shapes vary, the structure does not), so a warm kernel cache compiles nothing.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from fuzz import strategies as fs
from fuzz.harness import attempt
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import snngen as sg

FUZZ = os.environ.get("SNNGEN_FUZZ") == "1"
_EXAMPLES = os.environ.get("SNNGEN_FUZZ_EXAMPLES")
_base = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck),
             print_blob=True, phases=[p for p in Phase if p.name != "explain"])
settings.register_profile("snngen-ci", derandomize=True, **_base)
settings.register_profile("snngen-fuzz", derandomize=False, **_base)
settings.load_profile("snngen-fuzz" if FUZZ or _EXAMPLES else "snngen-ci")


def examples(ci: int) -> settings:
    """``ci`` examples in CI, 50 times more with ``SNNGEN_FUZZ=1``, or exactly
    ``SNNGEN_FUZZ_EXAMPLES`` (set by benchmarks/fuzz.py)."""
    n = int(_EXAMPLES) if _EXAMPLES else ci * 50 if FUZZ else ci
    return settings(max_examples=n)


@st.composite
def either(draw, valid: st.SearchStrategy, odd: st.SearchStrategy, odds: int = 6):
    """``(value, valid)``: from ``odd`` about once in ``odds`` draws, else from ``valid``
    (shrinking goes towards the valid value, so a minimal failing case keeps only the odd
    values it needs)."""
    if draw(st.integers(0, odds - 1)) == odds - 1:
        return draw(odd), False
    return draw(valid), True


@st.composite
def fields(draw, **strategies) -> tuple[dict, bool]:
    """Draw each ``either(...)`` field: ``(values by name, every field valid)``."""
    out, valid = {}, True
    for name, strategy in strategies.items():
        out[name], ok = draw(strategy)
        valid = valid and ok
    return out, valid


LIF = sg.NeuronModel("dv/dt = (I - v) / tau : 1 (unless refractory)\ndI/dt = -I / taus : 1",
                     threshold="v > vt", reset="v = vr", refractory="2*ms", name="lif")
LIF_PARAMS = {"tau": 0.01, "taus": 0.005, "vt": 1.0, "vr": 0.0}
pos_time = st.floats(1e-3, 0.1)
small_dt = st.sampled_from([1e-4, 5e-4, 1e-3])


# -- models --------------------------------------------------------------------------------

@examples(200)
@given(fs.neuron_model_inputs())
def test_neuron_model(case):
    """NeuronModel, discretise and population (units checked there) with generated models."""
    spec, valid = case

    def call():
        model = sg.NeuronModel(spec["equations"], threshold=spec["threshold"],
                               reset=spec["reset"], refractory=spec["refractory"],
                               method=spec["method"])
        repr(model)
        str(sg.discretise(model))
        net = sg.Network(dt=1e-4)
        net.population("P", model, 3, params=spec["params"])
        sg.show(net, "source", file=open(os.devnull, "w"))  # noqa: SIM115 - printers run

    attempt("NeuronModel", call, spec, valid=valid)


@examples(100)
@given(fs.synapse_model_inputs(), st.sampled_from(["P", "sub"]))
def test_synapse_model(case, post):
    """SynapseModel and connect (names resolved there) with generated synapse models."""
    spec, valid = case

    def call():
        syn = sg.SynapseModel(spec.get("equations", ""), on_pre=spec.get("on_pre"),
                              on_post=spec.get("on_post"))
        repr(syn)
        net = sg.Network(dt=1e-4)
        model = sg.NeuronModel("dv/dt = (ge - v) / taum : volt\ndge/dt = -ge / taue : volt",
                               threshold="v > 10*mV", reset="v = 0*mV")
        pop = net.population("P", model, 4, params={"taum": "10*ms", "taue": "5*ms"})
        params = {"taupre": "10*ms", "taupost": "10*ms"} if "taupre" in str(spec) else {}
        net.connect(pop, pop if post == "P" else pop[1:3], syn, "all_to_all", params=params)
        sg.show(net, "source", file=open(os.devnull, "w"))  # noqa: SIM115

    attempt("SynapseModel", call, spec, valid=valid)


# -- network description -------------------------------------------------------------------

@examples(100)
@given(fields(dt=either(small_dt, fs.odd_values()),
              seed=either(st.integers(0, 2**64 - 1), fs.odd_values()),
              batch=either(st.integers(1, 4), fs.odd_values()),
              dtype=either(st.sampled_from(["float32", "float64"]),
                           st.one_of(fs.odd_values(), st.sampled_from(
                               ["float16", "double", "f4", np.float32, "FLOAT32"])))))
def test_network(case):
    values, valid = case
    attempt("Network", lambda: sg.Network(**values), values, valid=valid)


def _init_values(n):
    return st.one_of(st.floats(-1, 1), st.just(sg.Uniform(-0.5, 0.5)),
                     st.just(sg.Normal(0.0, 0.1)),
                     st.lists(st.floats(-1, 1), min_size=n, max_size=n).map(np.array))


def _odd_init(n):
    return st.one_of(fs.odd_values(), fs.odd_arrays((n,)),
                     fs.later(sg.Uniform, fs.odd_values(), fs.odd_values()),
                     fs.later(sg.Normal, fs.odd_values(), fs.odd_values()))


@st.composite
def population_inputs(draw):
    n, n_ok = draw(either(st.integers(1, 5), fs.odd_values()))
    size = n if n_ok else 3
    params, p_ok = draw(either(st.just(dict(LIF_PARAMS)), fs.odd_params(LIF_PARAMS)))
    if p_ok and draw(st.booleans()):
        params["tau"] = draw(st.one_of(pos_time, st.sampled_from(["10*ms", "0.01 s"]),
                                       st.lists(pos_time, min_size=size,
                                                max_size=size).map(np.array)))
    if p_ok and draw(st.integers(0, 3)) == 0:
        params["taus"] = sg.TimedArray(np.full((3, size), 0.005), 1e-3)
    if draw(st.integers(0, 8)) == 0:
        p_ok = False
        params["taus"] = draw(fs.later(sg.TimedArray, fs.odd_arrays((3, size)),
                                       fs.odd_values()))
    init, i_ok = draw(either(st.fixed_dictionaries({"v": _init_values(size)}),
                             st.fixed_dictionaries({draw(st.sampled_from(["v", "I", "x", ""])):
                                                    _odd_init(size)})))
    name, name_ok = draw(either(st.just("P"), st.one_of(
        st.sampled_from(["", "1P", "my pop", "P-1", "class", "P\u00e9", "P" * 300]),
        fs.odd_values())))
    method, m_ok = draw(either(st.sampled_from([None, "auto", "exact", "euler", "rk4"]),
                               st.sampled_from(["EXACT", "rk5", "", 1, "exact "])))
    return dict(name=name, n=n, params=params, init=init, method=method), \
        n_ok and p_ok and i_ok and name_ok and m_ok


@examples(150)
@given(population_inputs())
def test_population(case):
    kwargs, valid = case

    def call():
        net = sg.Network(dt=1e-4)
        return net.population(model=LIF, **fs.realise(kwargs))

    attempt("Network.population", call, kwargs, valid=valid)


@examples(80)
@given(fields(n=either(st.integers(1, 5), fs.odd_values()),
              rates=either(st.one_of(st.floats(0, 500), st.sampled_from(["5*Hz", "0.1 kHz"])),
                           st.one_of(fs.odd_values(), fs.odd_arrays((3,))))))
def test_poisson(case):
    values, valid = case
    attempt("Network.poisson", lambda: sg.Network(dt=1e-4).poisson("In", **values), values,
            valid=valid)


@st.composite
def spike_source_inputs(draw):
    n = draw(st.integers(1, 5))
    k = draw(st.integers(0, 6))
    indices, i_ok = draw(either(st.lists(st.integers(0, n - 1), min_size=k, max_size=k),
                                st.one_of(fs.odd_arrays((k,)), fs.odd_values())))
    times, t_ok = draw(either(st.lists(st.floats(0, 0.1), min_size=k, max_size=k),
                              st.one_of(fs.odd_arrays((k,)), fs.odd_values())))
    n, n_ok = draw(either(st.just(n), fs.odd_values(), odds=12))
    if i_ok and t_ok:  # a neuron spikes at most once per step (Brian2's bins of dt = 1e-4)
        bins = [math.floor((t + 1e-3 * 1e-4) / 1e-4) for t in times]
        t_ok = len(set(zip(indices, bins))) == len(bins)
    return dict(n=n, indices=indices, times=times), i_ok and t_ok and n_ok


@examples(80)
@given(spike_source_inputs())
def test_spike_source(case):
    values, valid = case
    attempt("Network.spike_source",
            lambda: sg.Network(dt=1e-4).spike_source("S", **values), values, valid=valid)


VALID_RULES = st.one_of(
    st.sampled_from(["all_to_all", sg.AllToAll()]),
    st.floats(0, 1).map(lambda p: {"p": p}), fs.later(sg.FixedProbability, st.floats(0, 1)),
    st.integers(0, 3).map(lambda k: {"k_in": k}), fs.later(sg.FixedInDegree, st.integers(0, 3)),
    fs.later(sg.FixedOutDegree, st.integers(0, 3)),
    st.integers(0, 5).flatmap(lambda m: st.tuples(
        st.lists(st.integers(0, 3), min_size=m, max_size=m),
        st.lists(st.integers(0, 3), min_size=m, max_size=m))).map(
        lambda ij: {"i": ij[0], "j": ij[1]}),
)
ODD_RULES = st.one_of(
    fs.odd_values(), st.sampled_from(["one_to_many", "", "ALL_TO_ALL", "one_to_one"]),
    fs.odd_values().map(lambda p: {"p": p}), fs.odd_values().map(lambda k: {"k_in": k}),
    fs.odd_values().map(lambda k: {"k_out": k}),
    st.builds(lambda a, b: {"i": a, "j": b}, fs.odd_arrays((3,)), fs.odd_arrays((3,))),
    st.sampled_from([{"p": 0.5, "k_in": 2}, {"q": 0.1}, {"i": [0]}, {}]),
    fs.later(sg.FixedProbability, fs.odd_values()), fs.later(sg.FixedInDegree, fs.odd_values()),
    fs.later(sg.FixedOutDegree, fs.odd_values()),
)


@examples(120)
@given(fields(rule=either(VALID_RULES, ODD_RULES),
              w=either(st.one_of(st.floats(-2, 2), st.just(sg.Normal(0, 1)),
                                 st.sampled_from(["1*mV", "0.5"])),
                       st.one_of(fs.odd_values(), fs.odd_arrays((7,)),
                                 fs.later(sg.Normal, fs.odd_values(), fs.odd_values()))),
              delay=either(st.one_of(st.floats(0, 5e-3), st.sampled_from(["1*ms", "0 ms"])),
                           st.one_of(fs.odd_values(), fs.odd_arrays((4,)),
                                     st.sampled_from(["i*ms", "j", "1*mV", "-i*ms"]))),
              model=either(st.sampled_from(["v += w", "ge += w", "v_post += w"]),
                           st.one_of(fs.odd_values(), st.sampled_from(
                               ["v += ", "x += w", "v = w; w += 1", "v += w_pre", "1 += w",
                                "v += w; w = 1/0", "ge_pre += w"]))),
              name=either(st.sampled_from([None, "proj"]),
                          st.one_of(fs.odd_values(), st.sampled_from(["", "a b", "1"])),
                          odds=12)))
def test_connect(case):
    """connect with odd rules, weights, delays, models and names, then the connectivity and
    synaptic values are drawn and the source rendered (nothing compiled)."""
    drawn, valid = case

    def call():
        values = fs.realise(drawn)
        net = sg.Network(dt=1e-4)
        model = sg.NeuronModel("dv/dt = (ge - v) / taum : 1\ndge/dt = -ge / taue : 1",
                               threshold="v > 1", reset="v = 0")
        pop = net.population("P", model, 4, params={"taum": 0.01, "taue": 0.005})
        rule = values["rule"]
        kw = {} if values["name"] is None else {"name": values["name"]}
        proj = net.connect(pop, pop, values["model"], rule, delay=values["delay"],
                           w=values["w"], **kw)
        from snngen import connectivity as conn
        conn.build_csr(proj.rule, 4, 4, seed=0)
        sg.show(net, "source", file=open(os.devnull, "w"))  # noqa: SIM115

    attempt("Network.connect", call, drawn, valid=valid)


@examples(80)
@given(fields(kind=either(st.sampled_from(["spikes", "state", "rate"]), st.just("state")),
              target=either(st.sampled_from(["P", "sub", "In"]),
                            st.sampled_from(["other", "string", "none", "model"])),
              variables=either(st.sampled_from(["v", ["v", "I"], ("I",)]),
                               st.one_of(fs.odd_values(), st.sampled_from(
                                   ["vv", ["v", "v"], [], "tau", "t", ["v", 1]]))),
              indices=either(st.sampled_from([None, [0], [0, 2], np.arange(3)]),
                             st.one_of(fs.odd_values(), fs.odd_arrays((2,)))),
              every=either(st.integers(1, 5), fs.odd_values())))
def test_monitors(case):
    values, valid = case
    if values["kind"] != "state" and values["target"] == "In":
        pass
    elif values["target"] == "In":  # a Poisson group has no state: a user mistake
        valid = False

    def call():
        net = sg.Network(dt=1e-4)
        pop = net.population("P", LIF, 3, params=LIF_PARAMS)
        src = net.poisson("In", 3, 10.0)
        other = sg.Network(dt=1e-4).population("Q", LIF, 3, params=LIF_PARAMS)
        target = {"P": pop, "sub": pop[1:], "In": src, "other": other, "string": "P",
                  "none": None, "model": LIF}[values["target"]]
        if values["kind"] == "spikes":
            return net.monitor_spikes(target)
        if values["kind"] == "rate":
            return net.monitor_rate(target)
        return net.monitor_state(target, values["variables"], values["indices"],
                                 values["every"])

    attempt("Network.monitor_*", call, values, valid=valid)


# -- compiled runs ---------------------------------------------------------------------------

@st.composite
def run_inputs(draw):
    structure = draw(st.sampled_from(["poisson", "source"]))
    n, n_ok = draw(either(st.integers(1, 6), st.sampled_from([0, -1, 2.5, None, "3"])))
    size = n if n_ok else 3
    drawn = draw(fields(
        dt=either(small_dt, fs.odd_values(), odds=15),
        batch=either(st.integers(1, 3), fs.odd_values(), odds=15),
        seed=either(st.integers(0, 2**64 - 1), fs.odd_values(), odds=15),
        tau=either(pos_time, fs.odd_values(), odds=10),
        taus=either(pos_time, fs.odd_values(), odds=10),
        vt=either(st.floats(0.5, 2), fs.odd_values(), odds=10),
        vr=either(st.floats(-1, 0.4), fs.odd_values(), odds=10),
        init=either(_init_values(size), _odd_init(size), odds=10),
        rates=either(st.floats(0, 300), fs.odd_values(), odds=10),
        p=either(st.floats(0, 1), fs.odd_values(), odds=10),
        w=either(st.floats(-2, 2), st.one_of(fs.odd_values(), fs.odd_arrays((5,))), odds=10),
        delay=either(st.floats(0, 3e-3), fs.odd_values(), odds=10),
        duration=either(st.floats(0, 0.02), st.one_of(fs.odd_values(),
                                                       st.sampled_from([1e12, -1e-3])),
                        odds=8),
        read=either(st.sampled_from(["v", "I"]), st.one_of(fs.odd_values(),
                                                           st.sampled_from(["x", "tau"])),
                    odds=10),
        syn=either(st.just("w"), st.one_of(fs.odd_values(), st.sampled_from(["v", "x"])),
                   odds=10),
        max_memory=either(st.none(), st.sampled_from([0, 1, -1, 1.5, "1 GB", 2**70]),
                          odds=12),
    ))
    values, ok = drawn
    values.update(structure=structure, n=n)
    if structure == "source":
        spikes = draw(st.lists(st.tuples(st.integers(0, 2), st.floats(0, 0.02)), max_size=6))
        if ok:  # at most one spike of a neuron per step: keep the first of each (neuron, bin)
            seen, kept = set(), []
            for i, t in spikes:
                key = (i, math.floor((t + 1e-3 * values["dt"]) / values["dt"]))
                if key not in seen:
                    seen.add(key)
                    kept.append((i, t))
            spikes = kept
        values["spikes"] = spikes
    return values, ok and n_ok


def _build_and_run(v):
    """The two network structures of the compiled-run property (float64 with a Poisson input
    and every monitor; float32 with replayed spikes, recurrence and a spike monitor)."""
    dtype = "float64" if v["structure"] == "poisson" else "float32"
    net = sg.Network(dt=v["dt"], seed=v["seed"], batch=v["batch"], dtype=dtype)
    params = {"tau": v["tau"], "taus": v["taus"], "vt": v["vt"], "vr": v["vr"]}
    pop = net.population("P", LIF, v["n"], params=params, init={"v": v["init"]})
    if v["structure"] == "poisson":
        src = net.poisson("In", 3, v["rates"])
        proj = net.connect(src, pop, "I += w", {"p": v["p"]}, w=v["w"], delay=v["delay"])
        monitors = [net.monitor_spikes(pop), net.monitor_state(pop, "v"), net.monitor_rate(pop)]
    else:
        idx = [i for i, _ in v["spikes"]]
        times = [t for _, t in v["spikes"]]
        src = net.spike_source("S", 3, idx, times)
        proj = net.connect(src, pop, "I += w", "all_to_all", w=v["w"], delay=v["delay"])
        net.connect(pop, pop, "v += w", {"p": v["p"]}, w=0.1)
        monitors = [net.monitor_spikes(pop)]
    options = {} if v["max_memory"] is None else {"max_memory": v["max_memory"]}
    sim = net.build(**options)
    sim.run(v["duration"])
    sim.state(pop, v["read"])
    sim.synapses(proj, v["syn"])
    sim.connectivity(proj)
    for mon in monitors:
        for field in mon.data:
            getattr(mon, field)
    return sim


@examples(40)
@given(run_inputs())
def test_build_and_run(case):
    """build, run, state, synapses, connectivity and the monitors' fields."""
    values, valid = case
    warmed("test_build_and_run")
    attempt("build/run", lambda: _build_and_run(fs.realise(values)), values, valid=valid)


@examples(40)
@given(st.sampled_from(["model", "discrete", "ir", "source", "cuda", "plan", "tape",
                        "eligibility", "", "SOURCE", None, 3]),
       st.sampled_from(["neuron", "network", "synapse", "string", "none"]))
def test_show(stage, what):
    def call():
        net = sg.Network(dt=1e-4)
        net.population("P", LIF, 2, params=LIF_PARAMS)
        obj = {"neuron": LIF, "network": net, "synapse": sg.SynapseModel("w : 1",
                                                                         on_pre="v += w"),
               "string": "dv/dt = -v : 1", "none": None}[what]
        sg.show(obj, stage, file=open(os.devnull, "w"))  # noqa: SIM115

    attempt("show", call, (stage, what))


# -- training ------------------------------------------------------------------------------

_CLASSIFIER: dict = {}
CLS = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="cls")
CLS_PARAMS = {"taum": 0.01, "taus": 0.005}


def classifier():
    """One small RecurrentClassifier per process (its kernels compile once), with the
    weights it started with so each example starts from them."""
    if not _CLASSIFIER:
        from snngen.train import RecurrentClassifier
        net = RecurrentClassifier(CLS, "I", n_in=3, n_hidden=4, n_out=2, params=CLS_PARAMS)
        _CLASSIFIER.update(net=net, weights=copy.deepcopy(net.weights),
                           params=copy.deepcopy(net.params), csrs=dict(net.csrs))
    c = _CLASSIFIER
    c["net"].weights = copy.deepcopy(c["weights"])
    c["net"].params = copy.deepcopy(c["params"])
    c["net"].csrs = dict(c["csrs"])
    return c["net"]


@examples(60)
@given(fields(
    model=either(st.just(CLS), st.one_of(fs.odd_values(), st.just(LIF))),
    target=either(st.sampled_from(["I", "v"]), st.one_of(fs.odd_values(),
                                                         st.sampled_from(["x", "taum"]))),
    n_in=either(st.integers(1, 4), fs.odd_values()),
    n_hidden=either(st.one_of(st.integers(1, 4), st.just((3, 2))),
                    st.one_of(fs.odd_values(), st.sampled_from([(), (3, 0), [2, -1]]))),
    n_out=either(st.integers(1, 3), fs.odd_values()),
    params=either(st.just(CLS_PARAMS), fs.odd_params(CLS_PARAMS)),
    dt=either(st.just(1e-3), fs.odd_values(), odds=12),
    recurrent_density=either(st.floats(0, 1), fs.odd_values(), odds=12),
    surrogate=either(st.sampled_from(["fast_sigmoid", "sigmoid", "arctan"]),
                     st.one_of(fs.odd_values(), st.just("relu")), odds=12),
    trainable_params=either(st.sampled_from([(), ("taum",)]), st.one_of(
        fs.odd_values(), st.sampled_from([("x",), "taum", ("taum", "taum")])), odds=12),
    over=either(st.sampled_from(["max", "mean", "last"]), fs.odd_values(), odds=12),
    dtype=either(st.sampled_from(["float32", "float64"]), fs.odd_values(), odds=12),
    backend=either(st.just("numba"), st.one_of(fs.odd_values(), st.just("opencl")), odds=12),
    checkpoint_every=either(st.sampled_from([None, 2]), fs.odd_values(), odds=12),
    recurrent_delay=either(st.sampled_from([1, 2]), fs.odd_values(), odds=12),
    readout_tau=either(st.just(0.02), fs.odd_values(), odds=12),
))
def test_classifier(case):
    """RecurrentClassifier's constructor (no kernel runs: construction only)."""
    values, valid = case
    if values["model"] is LIF and values["target"] == "I":
        pass  # LIF has an I too, but needs other parameters: a mistake
    if values["model"] is LIF:
        valid = False

    def call():
        from snngen.train import RecurrentClassifier
        kw = dict(values)
        return RecurrentClassifier(kw.pop("model"), kw.pop("target"), **kw)

    attempt("RecurrentClassifier", call, values, valid=valid)


@st.composite
def training_inputs(draw):
    steps, batch = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    x, x_ok = draw(either(fs.spike_arrays((steps, batch, 3)),
                          st.one_of(fs.odd_arrays((steps, batch, 3)), fs.odd_values())))
    labels, l_ok = draw(either(st.lists(st.integers(0, 1), min_size=batch, max_size=batch).map(
        np.array), st.one_of(fs.odd_arrays((batch,), st.sampled_from([0, 1, 2, -1, 0.5,
                                                                       np.nan, 1e9])),
                             fs.odd_values())))
    drawn, ok = draw(fields(
        # 10**30 epochs is a lot of work, not a mistake: huge finite counts are not drawn
        epochs=either(st.integers(0, 2), fs.odd_values().filter(lambda e: not fs.huge(e)),
                      odds=10),
        batch_size=either(st.integers(1, 4), fs.odd_values(), odds=10),
        lr=either(st.floats(1e-4, 1e-1), fs.odd_values(), odds=10),
        clip=either(st.sampled_from([None, 5.0]), fs.odd_values(), odds=10),
        what=either(st.sampled_from(["fit", "predict", "hidden_spikes"]), st.nothing()),
    ))
    drawn.update(x=x, labels=labels)
    return drawn, ok and x_ok and (l_ok or drawn["what"] != "fit")


@examples(50)
@given(training_inputs())
def test_trainer(case):
    """Trainer.fit, predict and hidden_spikes of one small compiled classifier."""
    from snngen.train import Trainer
    v, valid = case

    def call():
        net = classifier()
        if v["what"] == "predict":
            return net.predict(v["x"])
        if v["what"] == "hidden_spikes":
            return net.hidden_spikes(v["x"])
        trainer = Trainer(net, lr=v["lr"], clip=v["clip"], batch_size=v["batch_size"])
        return trainer.fit(v["x"], v["labels"], v["epochs"])

    warmed("test_trainer")
    attempt(f"Trainer.{v['what']}", call, v, valid=valid)


_DECLARED: dict = {}
DECLARED_LEAKY = sg.NeuronModel("dv/dt = -v / tau : 1", name="readout")


def declared():
    """One small declared network for sg.BPTT per process (its kernels compile once):
    inputs x (3 channels) -> LIF h (4) -> readout o (2), a skip x -> o."""
    if not _DECLARED:
        net = sg.Network(dt=1e-3, batch=2, seed=0)
        x = net.input("x", 3)
        h = net.population("h", CLS, 4, params={**CLS_PARAMS,
                                                "taum": sg.Trainable(CLS_PARAMS["taum"])})
        o = net.population("o", DECLARED_LEAKY, 2, params={"tau": 0.02})
        net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(1.0, 0.5)))
        net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)))
        net.connect(x, o, "v += w", w=sg.Trainable(0.0))
        _DECLARED.update(net=net, o=o, h=h)
    return _DECLARED


@st.composite
def declared_run(draw):
    """(spikes, valid, labels, valid) of one run of the declared network (3 inputs, 2
    classes), odd now and then."""
    steps, batch = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    x, x_ok = draw(either(fs.spike_arrays((steps, batch, 3)),
                          st.one_of(fs.odd_arrays((steps, batch, 3)), fs.odd_values(),
                                    st.just({"y": 1}))))
    labels, l_ok = draw(either(st.lists(st.integers(0, 1), min_size=batch, max_size=batch).map(
        np.array), st.one_of(fs.odd_arrays((batch,), st.sampled_from([0, 1, 2, -1, 0.5,
                                                                       np.nan])),
                             fs.odd_values())))
    return x, x_ok, labels, l_ok


@st.composite
def bptt_inputs(draw):
    x, x_ok, labels, l_ok = draw(declared_run())
    drawn, ok = draw(fields(
        loss=either(st.sampled_from(["cross_entropy", "spikes", "ce+rate"]),
                    st.one_of(fs.odd_values(), st.just("mse")), odds=10),
        over=either(st.sampled_from(["max", "mean", "last"]), fs.odd_values(), odds=12),
        lr=either(st.floats(1e-4, 1e-1), fs.odd_values(), odds=12),
        backend=either(st.just("numba"), st.one_of(fs.odd_values(), st.just("opencl")),
                       odds=12),
        surrogate=either(st.sampled_from(["fast_sigmoid", "arctan"]),
                         st.one_of(fs.odd_values(), st.just("relu")), odds=12),
        clip=either(st.sampled_from([None, 5.0]), fs.odd_values(), odds=12),
        checkpoint_every=either(st.sampled_from([None, 2]), fs.odd_values(), odds=12),
        soft_beta=either(st.sampled_from([None]), fs.odd_values(), odds=12),
        # parallel=True compiles other kernels (seconds): only its odd values here
        parallel=either(st.just(False), fs.odd_values().filter(
            lambda p: not isinstance(p, (bool, np.bool_))), odds=12),
        epochs=either(st.integers(0, 2), fs.odd_values().filter(lambda e: not fs.huge(e)),
                      odds=10),
        batch_size=either(st.sampled_from([None, 1, 3]), fs.odd_values(), odds=10),
        # odd values include small counts: a run over such a budget is refused
        max_memory=either(st.sampled_from([None, 2**40]), fs.odd_values(), odds=12),
        what=either(st.sampled_from(["fit", "predict", "loss_and_grads"]), st.nothing()),
    ))
    drawn.update(x=x, labels=labels)
    # "spikes": a spike-count loss, whose targets are counts (batch, 4), not class labels
    return drawn, ok and x_ok and (l_ok or drawn["what"] == "predict") and \
        not (isinstance(drawn["loss"], str) and drawn["loss"] == "spikes")


@examples(40)
@given(bptt_inputs())
def test_bptt(case):
    """sg.BPTT's options and its fit, predict and loss_and_grads on one declared network."""
    v, valid = case

    def call():
        d = declared()
        kind = v["loss"] if isinstance(v["loss"], str) else None  # odd values: arrays too
        if kind == "cross_entropy":
            loss = sg.losses.cross_entropy(d["o"].v, over=v["over"])
        elif kind == "spikes":
            loss = sg.losses.spike_count(d["h"].spikes)
        elif kind == "ce+rate":  # a sum: the regulariser takes no labels
            loss = sg.losses.cross_entropy(d["o"].v, over=v["over"]) + sg.losses.rate(
                d["h"].spikes, low="2*Hz", high="300*Hz", strength=1e-4)
        elif kind == "mse":
            loss = sg.losses.mse(d["o"].v)
        else:
            loss = v["loss"]
        fit = sg.BPTT(d["net"], loss=loss, optimizer=sg.Adam(v["lr"]) if isinstance(
            v["lr"], float) else v["lr"], backend=v["backend"], surrogate=v["surrogate"],
            clip=v["clip"], checkpoint_every=v["checkpoint_every"],
            soft_beta=v["soft_beta"], progress=False, parallel=v["parallel"],
            max_memory=v["max_memory"])
        inputs = v["x"] if isinstance(v["x"], dict) else {"x": v["x"]}
        if v["what"] == "predict":
            return fit.predict(inputs, batch_size=v["batch_size"])
        if v["what"] == "loss_and_grads":
            return fit.loss_and_grads(inputs, v["labels"])
        return fit.fit(inputs, v["labels"], v["epochs"], batch_size=v["batch_size"])

    warmed("test_bptt")
    attempt(f"BPTT.{v['what']}", call, v, valid=valid)


TIMED = sg.NeuronModel("dv/dt = (I + I_ext - v) / taum : 1\ndI/dt = -I / taus : 1",
                       threshold="v > 1", reset="v = 0", name="timed")


@examples(60)
@given(statement=either(st.sampled_from([
    "I += w", "I -= w * w", "I += w * (E - v_post)", "I += w * v_post * 2",
    "I_post += w * (1 - v_post)", "v += w", "I += w; v += w"]), st.one_of(
        st.sampled_from(["v += w * v_post", "I += exp(w * v_post)", "I += w * v_pre",
                         "I = w", "taum += w", "w += 1", "I += w * I_post", "I += rand() * w",
                         "I += w * t", "I += w * v_post / (w + v_post)", "I += ", ""]),
        st.text(max_size=12)), odds=3),
       current=either(st.sampled_from([[1.0], [[0.5, 1.0, 1.5, 2.0]] * 3]), st.one_of(
           fs.odd_values(), st.sampled_from([[], [[np.nan] * 4], [[1.0] * 3], np.inf]))),
       method=either(st.sampled_from(["euler", None]), st.sampled_from(["exact", "bogus"])))
def test_trained_statements_and_timed_inputs(statement, current, method):
    """What a trained network's synapses may say and what drives its neurons: on_pre
    statements read postsynaptic states or not (derivable, refused with the statement
    named), TimedArray currents, integration methods; the derivation and its printout
    (derive_network, no compile)."""
    from snngen.derive.network import derive_network
    (text, text_ok), (values, v_ok), (how, m_ok) = statement, current, method

    def call():
        net = sg.Network(dt=1e-3, batch=1, seed=0)
        x = net.input("x", 3)
        h = net.population("h", TIMED, 4, params={**CLS_PARAMS,
                                                  "I_ext": sg.TimedArray(values, 2e-3)},
                           method=how)
        net.connect(x, h, text, params={"E": 2.0}, w=sg.Trainable(0.5))
        return str(derive_network(net))

    attempt("derive_network", call, (text, values, how), valid=text_ok and v_ok and m_ok)


@st.composite
def online_graph_inputs(draw):
    x, x_ok, labels, l_ok = draw(declared_run())
    drawn, ok = draw(fields(
        # h's time constant is trained: the rules without parameter eligibility refuse it
        rule=either(st.sampled_from(["eprop", "ostl", "d_rtrl", "es_d_rtrl"]), st.one_of(
            fs.odd_values(), st.sampled_from(["rflo", "superspike", "ottt", "bptt"])),
            odds=8),
        feedback=either(st.just("symmetric"), st.one_of(fs.odd_values(), st.just("both")),
                        odds=12),
        over=either(st.sampled_from(["each", "last"]), st.one_of(
            fs.odd_values(), st.sampled_from(["max", "mean"])), odds=10),
        detach_reset=either(st.sampled_from([None, True, False]), fs.odd_values(), odds=12),
        surrogate=either(st.sampled_from([None, "fast_sigmoid"]),
                         st.one_of(fs.odd_values(), st.just("relu")), odds=12),
        lr=either(st.floats(1e-4, 1e-1), fs.odd_values(), odds=12),
        clip=either(st.sampled_from([None, 5.0]), fs.odd_values(), odds=12),
        backend=either(st.just("numba"), st.one_of(fs.odd_values(), st.just("cuda")),
                       odds=12),
        update_every=either(st.sampled_from([None, 1, 2]), fs.odd_values(), odds=12),
        epochs=either(st.integers(0, 2), fs.odd_values().filter(lambda e: not fs.huge(e)),
                      odds=10),
        batch_size=either(st.sampled_from([None, 1, 3]), fs.odd_values(), odds=10),
        # odd values include small counts: a run over such a budget is refused
        max_memory=either(st.sampled_from([None, 2**40]), fs.odd_values(), odds=12),
        what=either(st.sampled_from(["fit", "predict", "loss_and_grads"]), st.nothing()),
    ))
    drawn.update(x=x, labels=labels)
    return drawn, ok and x_ok and (l_ok or drawn["what"] == "predict")


@examples(40)
@given(online_graph_inputs())
def test_online_network(case):
    """sg.Online's options and its fit, predict and loss_and_grads on one declared network."""
    v, valid = case

    def call():
        d = declared()
        loss = sg.losses.cross_entropy(d["o"].v, over=v["over"])
        fit = sg.Online(d["net"], loss=loss, rule=v["rule"], feedback=v["feedback"],
                        optimizer=sg.Adam(v["lr"]) if isinstance(v["lr"], float) else v["lr"],
                        surrogate=v["surrogate"], detach_reset=v["detach_reset"],
                        clip=v["clip"], backend=v["backend"], progress=False,
                        update_every=v["update_every"])
        inputs = v["x"] if isinstance(v["x"], dict) else {"x": v["x"]}
        if v["what"] == "predict":
            return fit.predict(inputs, batch_size=v["batch_size"])
        if v["what"] == "loss_and_grads":
            return fit.loss_and_grads(inputs, v["labels"])
        return fit.fit(inputs, v["labels"], v["epochs"], batch_size=v["batch_size"])

    warmed("test_online_network")
    attempt(f"Online.{v['what']}", call, v, valid=valid)


@examples(60)
@given(fields(value=either(st.floats(-1, 1), fs.odd_values()),
              per_neuron=either(st.booleans(), fs.odd_values(), odds=8),
              where=either(st.sampled_from(["param", "init", "synapse"]), st.nothing()),
              in_shape=either(st.just((1, 4, 4)), st.one_of(fs.odd_values(), st.sampled_from(
                  [(4, 4), (0, 4, 4), (1, -4, 4), (1, 4, 4, 1), "1,4,4"]))),
              out_channels=either(st.integers(1, 3), fs.odd_values(), odds=8),
              kernel=either(st.sampled_from([1, 3, (2, 3)]), st.one_of(
                  fs.odd_values(), st.sampled_from([(3,), (0, 3), 9, (3, 3, 3)])), odds=8),
              stride=either(st.sampled_from([1, 2]), fs.odd_values(), odds=8),
              padding=either(st.sampled_from([0, 1]), fs.odd_values(), odds=8),
              pool=either(st.sampled_from([1, 2]), st.one_of(fs.odd_values(),
                                                             st.just(5)), odds=8)))
def test_trainable_and_sharing_rules(case):
    """sg.Trainable where it marks values, and the Conv2D / Pool2D rules (construction and
    the synapse table)."""
    v, valid = case
    from snngen import connectivity as conn

    def call():
        net = sg.Network(dt=1e-3, batch=2)
        src = net.input("x", 16)
        mark = sg.Trainable(v["value"], per_neuron=v["per_neuron"])
        if v["where"] == "param":
            net.population("h", DECLARED_LEAKY, 3, params={"tau": mark})
        elif v["where"] == "init":
            net.population("h", DECLARED_LEAKY, 3, params={"tau": 0.02}, init={"v": mark})
        else:
            h = net.population("h", DECLARED_LEAKY, 3, params={"tau": 0.02})
            net.connect(src, h, "v += w", w=mark)
        rule = sg.Conv2D(v["in_shape"], v["out_channels"], v["kernel"], stride=v["stride"],
                         padding=v["padding"])
        csr = conn.build_csr(rule, rule.n_pre, rule.n_post, seed=0)
        pool = sg.Pool2D(rule.out_shape, v["pool"])
        return csr, conn.build_csr(pool, pool.n_pre, pool.n_post, seed=0)

    # a per-neuron trained value given as one number, a parameter "tau" trained negative,
    # and kernels or pools larger than the image are mistakes the generator may combine
    if valid and v["where"] == "param" and not v["value"] > 0:
        valid = False
    if valid:  # a pooling window larger than the convolution's output is a mistake too
        kh, kw = (v["kernel"], v["kernel"]) if isinstance(v["kernel"], int) else v["kernel"]
        out = [(4 + 2 * v["padding"] - k) // v["stride"] + 1 for k in (kh, kw)]
        valid = v["pool"] <= min(out)
    attempt("Trainable/Conv2D", call, v, valid=valid)


@examples(60)
@given(fields(times=either(st.integers(1, 3).flatmap(lambda s: st.lists(
    st.lists(st.floats(0, 0.05), min_size=2, max_size=2), min_size=s, max_size=s)).map(
    np.array), st.one_of(fs.odd_arrays((2, 2)), fs.odd_values())),
    dt=either(st.sampled_from([1e-3, 5e-4]), fs.odd_values()),
    steps=either(st.integers(1, 60), fs.odd_values())))
def test_spike_raster(case):
    from snngen.train import spike_raster
    values, valid = case
    attempt("spike_raster", lambda: spike_raster(**values), values, valid=valid)


def _checkpoint_bytes(kind: str) -> bytes:
    """A valid checkpoint of the shared classifier ("same"), or of a differently sized one
    ("other"), as bytes (made once per process)."""
    key = f"ckpt-{kind}"
    if key not in _CLASSIFIER:
        from snngen.train import RecurrentClassifier, Trainer
        net = classifier() if kind == "same" else RecurrentClassifier(
            CLS, "I", n_in=3, n_hidden=5, n_out=2, params=CLS_PARAMS)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "c.npz"
            Trainer(net).save(path)
            _CLASSIFIER[key] = path.read_bytes()
    return _CLASSIFIER[key]


@examples(80)
@given(st.data())
def test_checkpoint_load(data):
    """Trainer.load of damaged checkpoints: a CheckpointError (or another SnngenError) that
    changes nothing, or a load after which the classifier still predicts."""
    from snngen.train import Trainer
    kind = data.draw(st.sampled_from(["same", "same", "same", "other", "path"]))
    if kind == "path":
        damaged, how = b"", data.draw(st.sampled_from(["missing", "dir", "int", "none",
                                                        "empty-name"]))
    elif kind == "other":
        damaged, how = _checkpoint_bytes("other"), "other network"
    else:
        damaged, how = data.draw(fs.damaged_files(_checkpoint_bytes("same")))
    x = np.ones((3, 2, 3))

    def call():
        net = classifier()
        trainer = Trainer(net)
        before = {k: np.array(w, copy=True) for k, w in net.weights.items()}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "c.npz"
            path.write_bytes(damaged)
            target = {"missing": Path(tmp) / "nope.npz", "dir": Path(tmp), "int": 3,
                      "none": None, "empty-name": ""}.get(how, path)
            try:
                trainer.load(target)
            except sg.SnngenError:
                same = all(np.array_equal(before[k], net.weights[k], equal_nan=True)
                           for k in before) and set(before) == set(net.weights)
                assert same, "a refused checkpoint changed the weights"
                raise
        net.predict(x)

    warmed("test_checkpoint_load")
    attempt("Trainer.load", call, {"how": how, "bytes": len(damaged)})


@examples(30)
@given(st.sampled_from(["plain", "dir", "missing-dir", "int", "none", "unicode", "no-ext",
                        "readonly-dir"]))
def test_checkpoint_save(where):
    from snngen.train import Trainer

    def call():
        trainer = Trainer(classifier())
        with tempfile.TemporaryDirectory() as tmp:
            ro = Path(tmp) / "ro"
            ro.mkdir()
            ro.chmod(0o500)
            path = {"plain": Path(tmp) / "c.npz", "dir": Path(tmp),
                    "missing-dir": Path(tmp) / "a" / "b.npz", "int": 7, "none": None,
                    "unicode": Path(tmp) / "κ ü 😀.npz", "no-ext": Path(tmp) / "ckpt",
                    "readonly-dir": ro / "c.npz"}[where]
            try:
                trainer.save(path)
            finally:
                ro.chmod(0o700)

    warmed("test_checkpoint_save")
    attempt("Trainer.save", call, where, valid=where in ("plain", "unicode", "no-ext"))


# -- online learning -----------------------------------------------------------------------

_ONLINE: dict = {}


def online_kernel():
    if not _ONLINE:
        from snngen.derive import derive
        from snngen.train.online import CompiledEprop
        lif = sg.NeuronModel("dv/dt = -v / taum : 1", threshold="v > 1", reset="v = v - 1")
        _ONLINE["kernel"] = CompiledEprop(derive(sg.discretise(lif), inputs=["v"]))
    return _ONLINE["kernel"]


@st.composite
def online_inputs(draw):
    steps, batch = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    x, x_ok = draw(either(fs.spike_arrays((steps, batch, 3)),
                          st.one_of(fs.odd_arrays((steps, batch, 3)), fs.odd_values())))
    targets, t_ok = draw(either(st.just(np.zeros((steps, batch, 2))),
                                st.one_of(fs.odd_arrays((steps, batch, 2)), fs.odd_values())))
    drawn, ok = draw(fields(
        taum=either(st.floats(5e-3, 0.05), fs.odd_values(), odds=10),
        dt=either(st.just(1e-3), fs.odd_values(), odds=10),
        kappa=either(st.floats(0, 1), fs.odd_values(), odds=10),
        rule=either(st.sampled_from(["eprop", "rflo", "superspike", "decolle"]),
                    st.one_of(fs.odd_values(), st.just("bptt")), odds=10),
        loss=either(st.sampled_from(["mse", "cross_entropy"]), fs.odd_values(), odds=10),
        update_every=either(st.sampled_from([None, 1, 2]), fs.odd_values(), odds=10),
        w_out=either(st.just((4, 2)), st.sampled_from([(4, 3), (3, 2), (4,), (2, 4)]),
                     odds=10),
        mask=either(st.sampled_from([None, "ones"]), st.one_of(
            fs.odd_arrays((steps, batch)), fs.odd_values()), odds=10),
        learn=either(st.booleans(), fs.odd_values(), odds=15),
    ))
    drawn.update(x=x, targets=targets)
    return drawn, ok and x_ok and t_ok


@examples(50)
@given(online_inputs())
def test_online(case):
    """OnlineLearner(...) and feed with odd parameters, rules, shapes and values."""
    from snngen import connectivity as conn
    from snngen.train.online import OnlineLearner
    v, valid = case

    def call():
        in_csr = conn.build_csr(conn.AllToAll(), 3, 4, seed=0)
        rec_csr = conn.build_csr(conn.FixedProbability(0.5), 4, 4, seed=1)
        rng = np.random.default_rng(0)
        weights = {"w_in": rng.normal(0, 1, in_csr.n_synapses),
                   "w_rec": rng.normal(0, 0.3, rec_csr.n_synapses),
                   "w_out": rng.normal(0, 0.3, v["w_out"])}
        learner = OnlineLearner(online_kernel(), {"taum": v["taum"]}, v["dt"], in_csr,
                                rec_csr, weights, kappa=v["kappa"], rule=v["rule"],
                                loss=v["loss"], update_every=v["update_every"])
        mask = np.ones(np.shape(v["x"])[:2]) if isinstance(v["mask"], str) else v["mask"]
        return learner.feed(v["x"], v["targets"], learn=v["learn"], mask=mask)

    warmed("test_online")
    attempt("OnlineLearner.feed", call, v, valid=valid)


# -- cache -----------------------------------------------------------------------------------

@examples(40)
@given(st.lists(st.one_of(st.sampled_from(["cache", "info", "clear", "--json", "--version",
                                           "-h", "", "cache info", "--", "-x"]),
                          st.text(max_size=6)), max_size=4),
       st.sampled_from(["tmp", "missing", "file", "garbage", "readonly"]))
def test_cache_cli(argv, where):
    """``snngen cache info|clear`` (cli.main) with odd arguments, and the cache folder
    (SNNGEN_CACHE_DIR) missing, a file, full of garbage or read-only. argparse's own exit
    (SystemExit with its usage message) is how a command line refuses bad arguments."""
    from snngen import cli

    def call():
        old = os.environ.get("SNNGEN_CACHE_DIR")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "cache"
            if where == "file":
                root.write_text("not a folder")
            elif where == "garbage":
                for sub in ("numba", "index", "cuda"):
                    (root / sub).mkdir(parents=True)
                (root / "index" / "x.json").write_text("{garbage")
                (root / "numba" / "snngen_x.py").write_bytes(b"\x00\xff")
                (root / "lock").mkdir()
            elif where == "readonly":
                (root / "index").mkdir(parents=True)
                root.chmod(0o500)
            elif where == "tmp":
                root.mkdir()
            os.environ["SNNGEN_CACHE_DIR"] = str(root)
            try:
                with open(os.devnull, "w") as null:
                    stdout, stderr = sys.stdout, sys.stderr
                    sys.stdout = sys.stderr = null
                    try:
                        return cli.main(list(argv))
                    except SystemExit as exc:  # argparse: usage, --help, --version
                        if exc.code not in (0, 2):
                            raise
                    finally:
                        sys.stdout, sys.stderr = stdout, stderr
            finally:
                if root.exists() and not root.is_symlink():
                    root.chmod(0o700)
                if old is None:
                    del os.environ["SNNGEN_CACHE_DIR"]
                else:
                    os.environ["SNNGEN_CACHE_DIR"] = old

    valid = where in ("tmp", "missing") and list(argv) in (["cache", "info"],
                                                           ["cache", "clear"])
    attempt("snngen cache", call, (argv, where), valid=valid)


_CHILD = r"""
import sys, snngen as sg
lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="cachefuzz")
net = sg.Network(dt=1e-3)
P = net.population("P", lif, 3, params={"tau": 0.01, "taus": 0.005}, init={"v": 0.5})
net.connect(P, P, "I += w", "all_to_all", w=0.5)
try:
    net.build().run(0.01)
except sg.SnngenError as exc:
    print("SNNGEN", type(exc).__name__, exc)
"""


_PRIVATE_CACHE: dict = {}


def private_cache() -> Path:
    """A kernel cache of its own (once per process) holding the one network of
    :data:`_CHILD`, built by a child process: its files are what gets damaged."""
    if "root" not in _PRIVATE_CACHE:
        import atexit
        import shutil
        root = Path(tempfile.mkdtemp(prefix="snngen-fuzz-cache-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        env = dict(os.environ, SNNGEN_CACHE_DIR=str(root))
        warm = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                              text=True, timeout=900)
        assert warm.returncode == 0 and "SNNGEN" not in warm.stdout, warm.stderr[-2000:]
        _PRIVATE_CACHE["root"] = root
    return _PRIVATE_CACHE["root"]


@examples(4)
@given(st.data())
def test_cache_damaged_entry(data):
    """A damaged cache entry (index, generated source, Numba's cached code, the lock) is
    detected and rebuilt, never loaded, or refused with a CacheError: a fresh process builds
    and runs the network (a crash or a non-snngen traceback fails the property)."""
    warmed("test_cache_damaged_entry")
    root = private_cache()
    env = dict(os.environ, SNNGEN_CACHE_DIR=str(root))
    candidates = {"index": sorted((root / "index").glob("*.json")),
                  "source": sorted((root / "numba").glob("snngen_*.py")),
                  "numba-cache": sorted((root / "numba" / "__pycache__").glob("*.nb*")),
                  "lock": [root / "lock"]}
    which = data.draw(st.sampled_from(sorted(k for k, v in candidates.items() if v)))
    path = data.draw(st.sampled_from(candidates[which]))
    original = path.read_bytes() if path.is_file() else None
    damaged, how = data.draw(st.one_of(
        st.tuples(st.binary(max_size=64), st.just("garbage")),
        st.tuples(st.integers(0, max(len(original or b"") - 1, 0)).map(
            lambda k: (original or b"")[:k]), st.just("truncated"))))

    def call():
        try:
            path.write_bytes(damaged)
            run = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                                 text=True, timeout=300)
        finally:
            if original is not None and path.exists():
                path.write_bytes(original)
        if run.returncode < 0:
            raise RuntimeError(f"the process died of signal {-run.returncode}")
        if run.returncode != 0:
            last = run.stderr.strip().splitlines()[-1:] or ["?"]
            raise RuntimeError(f"non-snngen exception: {last[0]}\n{run.stderr[-1500:]}")
        if "SNNGEN" in run.stdout and "CacheError" not in run.stdout:
            raise RuntimeError(f"a damaged cache entry was refused: {run.stdout[-500:]}")

    attempt("cache entry", call, (which, path.name, how, len(damaged)), valid=True)


_WARM: set = set()


def warmed(name: str) -> None:
    """Run :func:`warm_up` once per process, before the first case and outside its
    watchdog: a cold kernel compile is not a hang (a failure there shows in the cases)."""
    if name not in _WARM:
        _WARM.add(name)
        try:
            warm_up(name)
        except Exception:  # noqa: BLE001, S110 - the property reports it, case by case
            pass


def warm_up(name: str) -> None:
    """Compile (or load from the cache) what property ``name`` runs, once, with valid values:
    benchmarks/fuzz.py calls it before the first case, outside the per-case watchdog."""
    if name == "test_build_and_run":
        for structure in ("poisson", "source"):
            _build_and_run(dict(structure=structure, n=3, dt=1e-3, batch=1, seed=0, tau=0.01,
                                taus=0.005, vt=1.0, vr=0.0, init=0.5, rates=50.0, p=0.5, w=0.5,
                                delay=0.0, duration=0.005, read="v", syn="w", max_memory=None,
                                spikes=[(0, 0.001)]))
    elif name in ("test_trainer", "test_checkpoint_load", "test_checkpoint_save"):
        from snngen.train import Trainer
        x = np.ones((3, 2, 3))
        Trainer(classifier(), batch_size=2).fit(x, np.array([0, 1]), 1)
        classifier().predict(x)
    elif name == "test_bptt":
        d = declared()
        sg.BPTT(d["net"], loss=sg.losses.cross_entropy(d["o"].v), progress=False).fit(
            {"x": np.ones((3, 2, 3))}, np.array([0, 1]), 1)
    elif name == "test_online_network":
        d = declared()
        sg.Online(d["net"], loss=sg.losses.cross_entropy(d["o"].v, over="each"),
                  progress=False).fit({"x": np.ones((3, 2, 3))}, np.array([0, 1]), 1)
    elif name == "test_cache_damaged_entry":
        private_cache()
    elif name == "test_online":
        from snngen import connectivity as conn
        from snngen.train.online import OnlineLearner
        in_csr = conn.build_csr(conn.AllToAll(), 3, 4, seed=0)
        rec_csr = conn.build_csr(conn.FixedProbability(0.5), 4, 4, seed=1)
        weights = {"w_in": np.ones(in_csr.n_synapses), "w_rec": np.ones(rec_csr.n_synapses),
                   "w_out": np.ones((4, 2))}
        for rule in ("eprop", "ostl", "rflo", "superspike", "decolle"):  # every kernel
            for loss in ("mse", "cross_entropy"):  # variant compiles here, not in a case
                OnlineLearner(online_kernel(), {"taum": 0.02}, 1e-3, in_csr, rec_csr,
                              weights, kappa=0.9, rule=rule, loss=loss).feed(
                    np.ones((2, 1, 3)), np.tile([[1.0, 0.0]], (2, 1, 1)))
