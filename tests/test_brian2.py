"""snngen against Brian2, step for step, on small deterministic networks (issue 19).

Each test builds one network twice from the same numbers: in snngen (float64) and as a JSON
spec that ``tests/peers/brian2_run.py`` runs in Brian2 (numpy target, float64, in Brian2's own
virtual environment ``benchmarks/.peers/brian2``, as a subprocess). Everything is explicit
(connectivity as i/j arrays, weights, delays, initial states, input spike times), so both
runs are deterministic, and they must agree exactly: the same spikes in the same steps, and
final states and weights equal to 1e-9.

Brian2's semantics, read from its source (brian2 2.11: ``core/functions.py`` ``timestep``,
``input/spikegeneratorgroup.py``, ``synapses/spikequeue.h``, ``groups/neurongroup.py``,
``synapses/synapses.py``). In step ``n`` (``t = n dt``), in the order of its default schedule:

1. state update, from ``t`` to ``t + dt``; a neuron is refractory while
   ``timestep(t - lastspike) < timestep(refractory)``, with
   ``timestep(x) = int((x + 1e-3 dt) / dt)``; ``(unless refractory)`` variables stay put then;
2. thresholds: neurons spike in step ``n`` (``lastspike = t``); a ``SpikeGeneratorGroup``
   emits the spikes whose ``int((t_spike + 1e-3 dt) / dt)`` is ``n``;
3. synapses: each pathway pushes this step's spikes into its queue with
   ``D = int(delay / dt + 0.5)`` steps (float64; D may be 0) and then runs the events due now,
   those of spikes of step ``n - D``; ``on_pre`` pathways (order -1) before ``on_post`` (+1),
   so a delay of 0 acts in the very step of the spike, before the reset. Synaptic writes to
   a variable flagged ``(unless refractory)`` only happen where ``not_refractory`` holds
   (``set_conditional_write`` in ``groups/neurongroup.py``): input that reaches a refractory
   neuron's clamped variable is dropped;
4. resets (exempt from that condition).

A run of ``k`` steps executes steps ``n .. n + k - 1`` completely, so events due in its last
step are processed before it returns.

If Brian2's environment is missing, a session fixture creates it once with
``bash benchmarks/peers/setup_peers.sh brian2`` (not when ``SNNGEN_NO_PEERS=1``); if that
fails the tests skip and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import snngen as sg

ROOT = Path(__file__).resolve().parents[1]
BRIAN2_PYTHON = ROOT / "benchmarks" / ".peers" / "brian2" / "bin" / "python"
SETUP = ROOT / "benchmarks" / "peers" / "setup_peers.sh"
RUNNER = Path(__file__).resolve().parent / "peers" / "brian2_run.py"

DT = 1e-4        # 0.1 ms
STEPS = 10_000   # 1 s of biological time

_ENV_RESULT: list = []  # the fixture's one attempt, whatever pytest does with its failures


def _brian2_works() -> tuple[bool, str]:
    if not BRIAN2_PYTHON.exists():
        return False, f"{BRIAN2_PYTHON} does not exist"
    try:
        proc = subprocess.run([str(BRIAN2_PYTHON), "-c", "import brian2"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{BRIAN2_PYTHON} -c 'import brian2' failed: {err}"
    if proc.returncode != 0:
        return False, f"import brian2 failed: {proc.stderr.strip()[-500:]}"
    return True, ""


@pytest.fixture(scope="session")
def brian2_python() -> Path:
    """The Brian2 env's interpreter; made once per session if missing, else the tests skip."""
    if not _ENV_RESULT:
        ok, why = _brian2_works()
        if not ok and os.environ.get("SNNGEN_NO_PEERS") == "1":
            why = f"{why}; SNNGEN_NO_PEERS=1, so it is not created"
        elif not ok:
            try:
                proc = subprocess.run(["bash", str(SETUP), "brian2"], capture_output=True,
                                      text=True, timeout=300, cwd=ROOT)
                log = (proc.stdout + proc.stderr).strip()[-800:]
            except (OSError, subprocess.TimeoutExpired) as err:
                log = str(err)
            ok, why2 = _brian2_works()
            why = f"{why}; `bash {SETUP.relative_to(ROOT)} brian2` did not make it work " \
                  f"({why2}): {log}"
        _ENV_RESULT.append((ok, why))
    ok, why = _ENV_RESULT[0]
    if not ok:
        pytest.skip(f"Brian2 peer environment unavailable: {why}")
    return BRIAN2_PYTHON


# ---------------------------------------------------------------------------------------------
# One network, two simulators


def _quantity(value, unit: str):
    """A spec quantity: a number or list, with its unit as Brian2 writes it ("1": none)."""
    value = value.tolist() if isinstance(value, np.ndarray) else value
    return value if unit == "1" else {"value": value, "unit": unit}


class Twin:
    """Builds one network in snngen (float64) and, from the same numbers, the spec of
    ``tests/peers/brian2_run.py``; runs both and returns their spikes and final values.

    Constants are given as ``{name: (value in SI, unit)}``; equations are written once, in
    the syntax both simulators read. Every group's spikes are recorded in both.
    """

    def __init__(self, dt: float = DT):
        self.dt = dt
        self.net = sg.Network(dt=dt, seed=0, dtype="float64")
        self.spec = {"dt": dt, "groups": {}, "synapses": [], "namespace": {},
                     "record": {"spikes": [], "states": {}, "synapses": {}}}
        self.groups, self.projections, self.monitors = {}, {}, {}
        self.pairs, self.traces = {}, {}

    def _constants(self, params: dict) -> dict:
        namespace = self.spec["namespace"]
        for name, (value, unit) in params.items():
            q = _quantity(float(value), unit)
            assert namespace.get(name, q) == q, f"constant {name} given twice, differently"
            namespace[name] = q
        return {name: float(value) for name, (value, _) in params.items()}

    def _monitor(self, name: str):
        self.monitors[name] = self.net.monitor_spikes(self.groups[name])
        self.spec["record"]["spikes"].append(name)

    def spike_source(self, name: str, n: int, indices, times):
        indices = np.asarray(indices, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        self.groups[name] = self.net.spike_source(name, n, indices, times)
        self.spec["groups"][name] = {"kind": "generator", "N": n, "indices": indices.tolist(),
                                     "times": times.tolist()}
        self._monitor(name)
        return self.groups[name]

    def population(self, name: str, n: int, equations: str, *, threshold: str | None,
                   reset: str | None, refractory: float | None = None, params: dict,
                   init: dict, method: str = "exact"):
        """A NeuronGroup; snngen picks its own method for "exact" (the same when the model
        is linear), any other is given to both."""
        model = sg.NeuronModel(equations, threshold=threshold, reset=reset,
                               refractory=refractory, name=name.lower(),
                               method="auto" if method == "exact" else method)
        values = self._constants(params)
        self.groups[name] = self.net.population(
            name, model, n, params=values,
            init={var: np.asarray(v, np.float64) for var, (v, _) in init.items()})
        self.spec["groups"][name] = {
            "kind": "neurons", "N": n, "model": equations, "threshold": threshold,
            "reset": reset, "refractory": refractory, "method": method,
            "init": {var: _quantity(np.asarray(v, np.float64), unit)
                     for var, (v, unit) in init.items()}}
        self.spec["record"]["states"][name] = sorted(init)
        if threshold is not None:
            self._monitor(name)
        return self.groups[name]

    def run_regularly(self, name: str, code: str, dt: float) -> None:
        """Statements on group ``name`` every ``dt`` (Brian2's run_regularly)."""
        self.net.run_regularly(self.groups[name], code, dt=dt)
        self.spec.setdefault("operations", []).append({"group": name, "code": code,
                                                       "dt": dt})

    def trace(self, name: str, variables: list[str]) -> None:
        """Record ``variables`` of group ``name`` at every step (at its start, as both do)."""
        self.traces[name] = (variables, self.net.monitor_state(self.groups[name], variables))
        self.spec["record"]["traces"] = {**self.spec["record"].get("traces", {}),
                                         name: variables}

    def connect(self, name: str, pre: str, post: str, i, j, *, model: str = "",
                on_pre: str | None, on_post: str | None = None, values: dict, delay=None,
                params: dict | None = None, method: str = "exact"):
        """Synapses ``i[s] -> j[s]``; the pairs must be sorted by (i, j), the order in which
        snngen keeps explicit synapses, so that per-synapse arrays line up in both."""
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        assert np.all(np.lexsort((j, i)) == np.arange(len(i))), "pairs must be sorted"
        synapse_model = sg.SynapseModel(model, on_pre=on_pre, on_post=on_post,
                                        name=name.lower(),
                                        method="auto" if method == "exact" else method)
        consts = self._constants(params or {})
        kwargs = {var: np.asarray(v, np.float64) for var, (v, _) in values.items()}
        if delay is not None:
            kwargs["delay"] = delay if np.ndim(delay) == 0 else np.asarray(delay, np.float64)
        self.projections[name] = self.net.connect(
            self.groups[pre], self.groups[post], synapse_model, {"i": i, "j": j}, name=name,
            params=consts or None, **kwargs)
        self.pairs[name] = (i, j)
        self.spec["synapses"].append({
            "name": name, "source": pre, "target": post, "model": model, "on_pre": on_pre,
            "on_post": on_post, "i": i.tolist(), "j": j.tolist(), "method": method,
            "values": {var: _quantity(np.asarray(v, np.float64), unit)
                       for var, (v, unit) in values.items()},
            "delay": None if delay is None else np.asarray(delay, np.float64).tolist()})
        self.spec["record"]["synapses"][name] = sorted(values)
        return self.projections[name]

    # -- running ------------------------------------------------------------------------------

    def run_snngen(self, runs: list[int]) -> dict:
        sim = self.net.build()
        for steps in runs:
            sim.run(steps * self.dt)
        assert sim.step == sum(runs)
        out = {}
        for name, mon in self.monitors.items():
            out[f"spikes/{name}"] = _pairs(mon.step, mon.i)
        for name, variables in self.spec["record"]["states"].items():
            for var in variables:
                out[f"state/{name}/{var}"] = np.asarray(sim.state(self.groups[name], var)[0])
        for name, (variables, mon) in self.traces.items():
            for var in variables:
                out[f"trace/{name}/{var}"] = np.asarray(mon.data[var][0]).T  # (n, steps)
        for name, variables in self.spec["record"]["synapses"].items():
            csr = sim.connectivity(self.projections[name])
            i, j = self.pairs[name]
            assert np.array_equal(csr.pre_indices(), i) and np.array_equal(csr.indices, j), \
                f"snngen keeps the synapses of {name} in another order than given"
            for var in variables:
                out[f"syn/{name}/{var}"] = np.asarray(sim.synapses(self.projections[name],
                                                                   var)[0])
        return out

    def run_brian2(self, python: Path, tmp_path: Path, *schedules: list[int]) -> list | dict:
        """Brian2's results for each schedule of run lengths (in steps), all in one runner
        process: a dict for one schedule, a list of them for several."""
        args, outs = [], []
        for runs in schedules:
            tag = "_".join(map(str, runs))
            spec_path, out_path = tmp_path / f"spec_{tag}.json", tmp_path / f"brian2_{tag}.npz"
            spec_path.write_text(json.dumps(dict(self.spec, runs=[int(r) for r in runs])))
            args += [str(spec_path), str(out_path)]
            outs.append(out_path)
        proc = subprocess.run([str(python), str(RUNNER), *args], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"the Brian2 runner failed:\n{proc.stderr[-3000:]}"
        results = []
        for runs, out_path in zip(schedules, outs):
            with np.load(out_path) as data:
                raw = {k: data[k] for k in data.files}
            assert int(raw["steps"]) == sum(runs)
            out = {k: v for k, v in raw.items()
                   if k.startswith(("state/", "syn/", "delay_", "trace/"))}
            for name in self.monitors:
                out[f"spikes/{name}"] = _pairs(raw[f"spikes/{name}/step"],
                                               raw[f"spikes/{name}/i"])
            results.append(out)
        return results[0] if len(results) == 1 else results


def _pairs(steps, neurons) -> np.ndarray:
    """Spikes as an (n, 2) array of (step, neuron), sorted."""
    a = np.stack([np.asarray(steps, np.int64), np.asarray(neurons, np.int64)], axis=1)
    return a[np.lexsort((a[:, 1], a[:, 0]))] if len(a) else a.reshape(0, 2)


def spike_difference(got: np.ndarray, ref: np.ndarray, names=("snngen", "Brian2")) -> str:
    """'' for equal spike trains, else where they first differ."""
    if np.array_equal(got, ref):
        return ""
    for s in np.union1d(got[:, 0], ref[:, 0]):
        a, b = got[got[:, 0] == s, 1], ref[ref[:, 0] == s, 1]
        if not np.array_equal(a, b):
            return (f"differ first at step {s} (t = {s * DT:.4f} s): {names[0]} fired "
                    f"{a.tolist()}, {names[1]} fired {b.tolist()}; {len(got)} against "
                    f"{len(ref)} spikes in all")
    raise AssertionError("unreachable: unequal trains with the same spikes in every step")


def assert_same_results(got: dict, ref: dict, names=("snngen", "Brian2")) -> None:
    """Every spike train equal (input trains listed first: a difference there explains the
    others), and every final state and synaptic variable equal to 1e-9; one failure lists
    every difference."""
    problems = []
    spike_keys = sorted(k for k in ref if k.startswith("spikes/"))
    assert spike_keys == sorted(k for k in got if k.startswith("spikes/"))
    for key in sorted(spike_keys, key=lambda k: k not in ("spikes/X", "spikes/T")):
        why = spike_difference(got[key], ref[key], names)
        if why:
            problems.append(f"{key}: {why}")
    for key in sorted(k for k in ref if k.startswith(("state/", "syn/"))):
        a, b = np.asarray(got[key]), np.asarray(ref[key])
        assert a.shape == b.shape, f"{key}: shapes {a.shape} and {b.shape}"
        bad = ~np.isclose(a, b, rtol=1e-9, atol=1e-12)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            problems.append(f"{key}: {int(bad.sum())} of {a.size} differ (beyond 1e-9), "
                            f"max |diff| {np.abs(a - b).max():.3g}; first at index {k}: "
                            f"{names[0]} {float(a[k])!r}, {names[1]} {float(b[k])!r}")
    if problems:
        pytest.fail(f"{names[0]} against {names[1]}:\n  " + "\n  ".join(problems),
                    pytrace=False)


# ---------------------------------------------------------------------------------------------
# Networks

LIF = """
    dv/dt = (El - v) / taum : volt (unless refractory)
"""
LIF_PARAMS = {"taum": (0.010, "second"), "El": (-0.060, "volt"), "Vt": (-0.050, "volt"),
              "Vr": (-0.065, "volt")}


def _input_spikes(rng, n_sources: int, rate: float, steps: int, dt: float = DT):
    """Poisson-like spike steps on the grid (at most one per source and step)."""
    grid = rng.random((steps, n_sources)) < rate * dt
    step, idx = np.nonzero(grid)
    return idx, step * dt


def _sorted_pairs(i, j):
    order = np.lexsort((j, i))
    return np.asarray(i)[order], np.asarray(j)[order]


def lif_network(rng, delays, *, n: int = 50, n_in: int = 20, refractory=0.002,
                in_idx=None, in_times=None, input_delay=None) -> Twin:
    """``n`` LIF neurons (volt units, ``v += w`` on_pre, reset, refractory) driven by ``n_in``
    input spike sources (40 Hz on the grid unless ``in_idx``/``in_times`` are given), each
    reaching 8 neurons through a projection with delay ``input_delay``, and 10 % recurrent
    connectivity (excitatory and inhibitory weights) with per-synapse delays
    ``delays(rng, n_synapses)``."""
    twin = Twin()
    if in_idx is None:
        in_idx, in_times = _input_spikes(rng, n_in, 40.0, STEPS)
    twin.spike_source("X", n_in, in_idx, in_times)
    twin.population("P", n, LIF, threshold="v > Vt", reset="v = Vr", refractory=refractory,
                    params=LIF_PARAMS, init={"v": (rng.uniform(-0.065, -0.050, n), "volt")})
    i_in = np.repeat(np.arange(n_in), 8)
    j_in = np.concatenate([rng.choice(n, 8, replace=False) for _ in range(n_in)])
    i_in, j_in = _sorted_pairs(i_in, j_in)
    twin.connect("input", "X", "P", i_in, j_in, model="w : volt", on_pre="v_post += w",
                 values={"w": (rng.uniform(0.004, 0.008, len(i_in)), "volt")},
                 delay=input_delay)
    pairs = np.array([(a, b) for a in range(n) for b in range(n)
                      if a != b and rng.random() < 0.1])
    i_rec, j_rec = _sorted_pairs(pairs[:, 0], pairs[:, 1])
    w_rec = np.where(rng.random(len(i_rec)) < 0.8, rng.uniform(0.0005, 0.003, len(i_rec)),
                     rng.uniform(-0.006, -0.002, len(i_rec)))
    twin.connect("rec", "P", "P", i_rec, j_rec, model="w : volt", on_pre="v_post += w",
                 values={"w": (w_rec, "volt")}, delay=delays(rng, len(i_rec)))
    return twin


STDP_NEURON = """
    dv/dt = -v / taum : 1
"""
STDP_MODEL = """
    w : 1
    dapre/dt = -apre / taupre : 1 (event-driven)
    dapost/dt = -apost / taupost : 1 (event-driven)
"""
STDP_ON_PRE = """
    v_post += w
    apre += Apre
    w = clip(w + apost, 0, wmax)
"""
STDP_ON_POST = """
    apost += Apost
    w = clip(w + apre, 0, wmax)
"""
STDP_PARAMS = {"taupre": (0.020, "second"), "taupost": (0.020, "second"),
               "Apre": (0.01, "1"), "Apost": (-0.0105, "1"), "wmax": (0.3, "1")}


def stdp_network(rng, steps: int = STEPS, n_in: int = 20, n: int = 3, delay=None) -> Twin:
    """``n_in`` input sources reach ``n`` neurons through all-to-all STDP synapses (pre/post
    event-driven traces, clipped weights); a teacher source with strong static synapses makes
    the neurons fire at chosen steps. The last steps hold, on purpose: pre spikes in the last
    step (their on_pre must run before run() returns), a teacher spike two steps before the
    end (neuron 0 fires in the last step: its on_post must run too), and pre spikes in the
    very step a post neuron fires (on_pre runs before on_post in that step)."""
    twin = Twin()
    idx, times = _input_spikes(rng, n_in, 15.0, steps - 2)
    last = steps - 1
    tail_idx = [0, 3, 7, 1, 2, 5]            # pre spikes in the last two steps
    tail_steps = [last, last, last, last - 1, last - 1, last - 1]
    idx = np.concatenate([idx, tail_idx])
    times = np.concatenate([times, np.asarray(tail_steps) * DT])
    twin.spike_source("X", n_in, idx, times)
    teacher_steps = np.arange(200, steps - 400, 397)
    t_idx = np.arange(len(teacher_steps)) % n
    t_idx = np.concatenate([t_idx, [0]])
    t_steps = np.concatenate([teacher_steps, [steps - 2]])
    twin.spike_source("T", n, t_idx, t_steps * DT)
    twin.population("P", n, STDP_NEURON, threshold="v > 1", reset="v = 0",
                    params={"taum": (0.010, "second")},
                    init={"v": (rng.uniform(0, 0.5, n), "1")})
    i, j = _sorted_pairs(np.repeat(np.arange(n_in), n), np.tile(np.arange(n), n_in))
    twin.connect("stdp", "X", "P", i, j, model=STDP_MODEL, on_pre=STDP_ON_PRE,
                 on_post=STDP_ON_POST, params=STDP_PARAMS,
                 values={"w": (rng.uniform(0.05, 0.25, len(i)), "1")},
                 delay=None if delay is None else delay(rng, len(i)))
    twin.connect("teach", "T", "P", np.arange(n), np.arange(n), model="w : 1",
                 on_pre="v_post += w", values={"w": (np.full(n, 5.0), "1")})
    return twin


# ---------------------------------------------------------------------------------------------
# Tests


def test_lif_recurrent_per_synapse_delays(brian2_python, tmp_path):
    """50 LIF neurons, 1 s: input spikes, recurrent synapses with per-synapse delays of 0 to
    3 ms in whole steps (delay 0 included: it acts in the step of the spike, before the
    reset), ``v += w`` on_pre, reset and a 2 ms refractory period. Every spike in the same
    step, and the final v to 1e-9."""
    rng = np.random.default_rng(19)
    twin = lif_network(rng, lambda rng, k: rng.integers(0, 31, k) * DT)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(ref["spikes/P"]) > 500, "too few spikes for the comparison to mean much"
    assert np.any(ref["delay_steps/rec"] == 0)
    assert_same_results(got, ref)


def test_stdp_final_weights(brian2_python, tmp_path):
    """STDP with pre/post event-driven traces and clipped weights, 1 s, with spikes in the
    last step of the run (pre and post) and coincident pre and post spikes: the output
    spikes, every final weight and v must equal Brian2's after run()."""
    rng = np.random.default_rng(7)
    twin = stdp_network(rng)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    post = ref["spikes/P"]
    assert len(post) > 20
    assert np.any(post[:, 0] == STEPS - 1), "neuron 0 should fire in the last step"
    w0 = np.asarray(twin.spec["synapses"][0]["values"]["w"])
    assert np.abs(ref["syn/stdp/w"] - w0).max() > 1e-3, "the weights should have learned"
    assert_same_results(got, ref)


def test_off_grid_times_delays_and_refractoriness(brian2_python, tmp_path):
    """Times that are not whole steps, where rounding conventions differ. Input spikes at
    k, k + 0.37, k + 0.5, k + 0.99, k + 0.998 and k + 0.999 steps: Brian2 bins them with
    ``int((t + 1e-3 dt) / dt)``, so all but the last go to step k (rounding would put
    k + 0.5 .. k + 0.998 in k + 1), and k + 0.999 sits on the edge, in step k + 1 for about
    60 % of the k here and in step k for the rest: only the same float64 arithmetic bins
    them alike. An input projection delay of 2.5 steps (``int(2.5 + 0.5)`` = 3 steps;
    round-half-even gives 2), recurrent per-synapse delays of k + 0.3, k + 0.5 and k + 0.7
    steps, and a refractory period of 2.55 ms (``timestep`` gives 25 steps; rounding 26).
    The input trains, the output trains and the final v must equal Brian2's. (Checked when
    this test was written: in Brian2, each of those alternatives -- 26 refractory steps, a
    2-step input delay, inputs rounded to the nearest step, recurrent delays rounded half to
    even -- changes the output spike train.)"""
    rng = np.random.default_rng(3)
    n_in = 20
    idx, times = _input_spikes(rng, n_in, 40.0, STEPS - 1)
    steps = np.rint(times / DT).astype(np.int64)
    frac = np.array([0.0, 0.37, 0.5, 0.99, 0.998, 0.999])[rng.integers(0, 6, len(steps))]
    times = (steps + frac) * DT
    # at most one spike per source and step after binning (Brian2 refuses more)
    bins = ((times + 1e-3 * DT) / DT).astype(np.int64)
    _, first = np.unique(np.stack([bins, idx], 1), axis=0, return_index=True)
    keep = np.sort(first)
    idx, times = idx[keep], times[keep]
    twin = lif_network(rng, lambda rng, k: (rng.integers(0, 20, k)
                                            + rng.choice([0.3, 0.5, 0.7], k)) * DT,
                       n_in=n_in, in_idx=idx, in_times=times, refractory=0.00255,
                       input_delay=2.5 * DT)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert np.all(ref["delay_steps/input"] == 3)
    assert len(ref["spikes/P"]) > 500
    assert_same_results(got, ref)


def test_split_run_equals_one_run(brian2_python, tmp_path):
    """A run split into two run() calls (3337 + 6663 steps) equals one run of 10,000 steps,
    in Brian2 and in snngen, on a network that carries state over the split: in-flight
    delayed spikes (per-synapse delays, refractory neurons) and STDP traces and weights.
    Each simulator is compared with itself first, then snngen with Brian2."""
    rng = np.random.default_rng(5)
    twin = lif_network(rng, lambda rng, k: rng.integers(0, 31, k) * DT, n=30)
    # STDP synapses from the inputs onto the same population: traces cross the split too
    i, j = _sorted_pairs(np.repeat(np.arange(20), 3), rng.integers(0, 30, 60))
    i, j = np.unique(np.stack([i, j], 1), axis=0).T
    # in volts (Brian2 wants clip's bounds in the unit of its argument: wmin, not 0)
    twin.connect("stdp", "X", "P", i, j, model=STDP_MODEL.replace(": 1", ": volt"),
                 on_pre=STDP_ON_PRE.replace("0, wmax", "wmin, wmax"),
                 on_post=STDP_ON_POST.replace("0, wmax", "wmin, wmax"),
                 params={**STDP_PARAMS, "Apre": (1e-4, "volt"), "Apost": (-1.05e-4, "volt"),
                         "wmin": (0.0, "volt"), "wmax": (0.004, "volt")},
                 values={"w": (rng.uniform(0.0, 0.003, len(i)), "volt")})
    split = [3337, STEPS - 3337]
    b_one, b_split = twin.run_brian2(brian2_python, tmp_path, [STEPS], split)
    assert len(b_one["spikes/P"]) > 200
    assert_same_results(b_split, b_one, names=("Brian2 split", "Brian2 one run"))
    s_one = twin.run_snngen([STEPS])
    s_split = twin.run_snngen(split)
    assert_same_results(s_split, s_one, names=("snngen split", "snngen one run"))
    assert_same_results(s_split, b_split, names=("snngen split", "Brian2 split"))


def _hand_network() -> Twin:
    """Two neurons, ``dv/dt = -v / taum : 1 (unless refractory)``, threshold 1, reset 0,
    refractory 2 steps; sources 0, 1, 2 fire in steps 10, 12, 13 with w = 1.5, 0.5, 0.25,
    each to neuron 0 with delay 0 and to neuron 1 with a delay of 3 steps."""
    twin = Twin()
    twin.spike_source("X", 3, [0, 1, 2], [10 * DT, 12 * DT, 13 * DT])
    twin.population("P", 2, "dv/dt = -v / taum : 1 (unless refractory)", threshold="v > 1",
                    reset="v = 0", refractory=2 * DT, params={"taum": (0.010, "second")},
                    init={"v": (np.zeros(2), "1")})
    i, j = np.repeat([0, 1, 2], 2), np.tile([0, 1], 3)
    twin.connect("in", "X", "P", i, j, model="w : 1", on_pre="v_post += w",
                 values={"w": (np.repeat([1.5, 0.5, 0.25], 2), "1")},
                 delay=np.tile([0.0, 3 * DT], 3))
    return twin


def test_brian2_runner_hand_check(brian2_python, tmp_path):
    """The Brian2 side alone, against numbers worked out by hand from its schedule (module
    docstring) on :func:`_hand_network`, so that the reference of the other tests is known
    to be run right.

    Neuron 0: the 1.5 lands in step 10 after the thresholds, so v = 1.5 exp(-dt/taum) > 1
    crosses in step 11; reset to 0. In step 12 it is refractory (12 - 11 < 2 steps: no
    update, no threshold) and Brian2 also drops the 0.5 that arrives then: a variable flagged
    ``(unless refractory)`` is written by synapses only where ``not_refractory`` holds
    (``Variable.set_conditional_write`` in ``groups/neurongroup.py``; resets are exempt). In
    step 13 it is free again and the 0.25 lands; 16 updates (steps 14..29) decay it:
    v = 0.25 exp(-dt/taum)**16. Neuron 1, three steps later: 1.5 in step 13, spike in step
    14, the 0.5 of step 15 dropped, the 0.25 of step 16 kept, v = 0.25 exp(-dt/taum)**13."""
    ref = _hand_network().run_brian2(brian2_python, tmp_path, [30])
    decay = np.exp(-DT / 0.010)  # 1.5 * decay > 1: neuron 0 crosses in step 11
    np.testing.assert_array_equal(ref["spikes/X"], [[10, 0], [12, 1], [13, 2]])
    np.testing.assert_array_equal(ref["spikes/P"], [[11, 0], [14, 1]])
    np.testing.assert_array_equal(ref["delay_steps/in"], [0, 3] * 3)
    np.testing.assert_allclose(ref["state/P/v"], [0.25 * decay**16, 0.25 * decay**13],
                               rtol=1e-12)


def test_two_neurons_inputs_while_refractory(brian2_python, tmp_path):
    """snngen on :func:`_hand_network` (see the test above): delay 0 and 3 steps, spikes in
    the next step, and inputs that arrive while the target is refractory dropped for a
    variable flagged ``(unless refractory)``, kept once it is free."""
    twin = _hand_network()
    ref = twin.run_brian2(brian2_python, tmp_path, [30])
    assert_same_results(twin.run_snngen([30]), ref)


# ---------------------------------------------------------------------------------------------
# Stochastic equations: the same statistics (the random numbers differ: snngen's are
# counter-based Philox draws, Brian2's come from numpy's generator)

def _driven_lif(rng, n_in: int, n: int, rate: float, **population):
    """Input spike sources ``X`` (``rate`` Hz on the grid) and ``n`` LIF neurons ``P`` (volt,
    no clamping, threshold Vt, reset Vr); returns the twin and 30 % random input pairs."""
    twin = Twin()
    idx, times = _input_spikes(rng, n_in, rate, STEPS)
    twin.spike_source("X", n_in, idx, times)
    twin.population("P", n, "dv/dt = (El - v) / taum : volt", threshold="v > Vt",
                    reset="v = Vr", init={"v": (rng.uniform(-0.065, -0.050, n), "volt")},
                    **population)
    return (twin, *_sorted_pairs(*np.nonzero(rng.random((n_in, n)) < 0.3)))


def _ou_statistics(v: np.ndarray, lags) -> tuple[float, float, list[float]]:
    """Mean, variance and autocorrelation at ``lags`` (in steps) of traces (neurons, steps)."""
    x = v - v.mean()
    var = float(np.mean(x * x))
    return float(v.mean()), var, [float(np.mean(x[:, :-k] * x[:, k:]) / var) for k in lags]


def test_ornstein_uhlenbeck_membrane_and_noisy_lif_statistics(brian2_python, tmp_path):
    """An Ornstein-Uhlenbeck membrane (``dv/dt = (mu - v)/tau + sigma sqrt(2/tau) xi``,
    Euler-Maruyama in both: Brian2's default for additive noise, as snngen's) for 1 s: the
    mean, variance and autocorrelation at 1, 10 and 50 steps agree with each other and with
    the discrete process (an AR(1) process: variance ``sigma^2 2a / (1 - (1 - a)^2)``,
    autocorrelation ``(1 - a)^k``, ``a = dt / tau``) within five standard errors; and a
    noise-driven LIF neuron (threshold, reset, refractoriness) fires at the same rate."""
    n, tau, sigma, mu = 200, 5e-3, 5e-3, -0.060
    twin = Twin()
    params = {"tau": (tau, "second"), "sigma": (sigma, "volt"), "mu": (mu, "volt")}
    ou = "dv/dt = (mu - v) / tau + sigma * sqrt(2 / tau) * xi : volt"
    twin.population("O", n, ou, threshold=None, reset=None, params=params,
                    init={"v": (np.full(n, mu), "volt")}, method="euler")
    twin.trace("O", ["v"])
    lif = ("dv/dt = (mu_l - v) / taum + sig_l * sqrt(2 / taum) * xi : volt "
           "(unless refractory)")
    twin.population("L", n, lif, threshold="v > Vt", reset="v = Vr", refractory=0.002,
                    params={"taum": (0.010, "second"), "sig_l": (0.004, "volt"),
                            "mu_l": (-0.055, "volt"), "Vt": (-0.050, "volt"),
                            "Vr": (-0.060, "volt")},
                    init={"v": (np.full(n, -0.055), "volt")}, method="euler")
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    a = DT / tau
    lags = (1, 10, 50)
    want_var = sigma**2 * 2 * a / (1 - (1 - a) ** 2)
    start = int(10 * tau / DT)  # from stationarity on (the start is at the mean)
    n_eff = n * (STEPS - start) * a / 2  # independent samples: T / (2 tau) per neuron
    se_mean, se_var = np.sqrt(want_var / n_eff), np.sqrt(2 / n_eff)
    stats = {}
    for who, res in (("snngen", got), ("Brian2", ref)):
        trace = res["trace/O/v"]
        assert trace.shape == (n, STEPS), trace.shape
        np.testing.assert_array_equal(trace[:, 0], mu)  # the first record: the initial state
        stats[who] = _ou_statistics(trace[:, start:], lags)
        mean, var, rho = stats[who]
        assert abs(mean - mu) < 5 * se_mean, (who, mean)
        assert abs(var / want_var - 1) < 5 * se_var, (who, var / want_var)
        for k, r in zip(lags, rho):
            assert abs(r - (1 - a) ** k) < 5 * se_var, (who, k, r)
    (m1, v1, r1), (m2, v2, r2) = stats["snngen"], stats["Brian2"]
    both = np.sqrt(2)  # the difference of two independent estimates
    assert abs(m1 - m2) < 5 * both * se_mean
    assert abs(v1 / v2 - 1) < 5 * both * se_var
    assert all(abs(x - y) < 5 * both * se_var for x, y in zip(r1, r2))
    # spike counts: over 2000 spikes each, Poisson-like (the ISIs are long against tau)
    c1, c2 = len(got["spikes/L"]), len(ref["spikes/L"])
    assert c1 > 2000 and c2 > 2000
    assert abs(c1 - c2) < 5 * np.sqrt(c1 + c2), (c1, c2)


def test_random_threshold_and_synaptic_draws_statistics(brian2_python, tmp_path):
    """``rand()`` in a threshold (Brian2's idiom for Poisson neurons) and ``rand()`` in
    ``on_pre``: spike counts agree within five standard errors, and so does the mean input
    a target receives (``v += w * rand()``: w/2 per event on average)."""
    n, rate, w = 100, 30.0, 0.5
    twin = Twin()
    twin.population("P", n, "dv/dt = -v / taup : 1", threshold="rand() < rate * dt",
                     reset="v = 0", params={"taup": (1.0, "second"), "rate": (rate, "Hz")},
                     init={"v": (np.zeros(n), "1")})
    twin.population("S", 1, "dv/dt = -v / taus : 1", threshold="v > 1e9", reset="v = 0",
                    params={"taus": (1e6, "second")}, init={"v": (np.zeros(1), "1")})
    i, j = np.arange(n), np.zeros(n, np.int64)
    twin.connect("drive", "P", "S", i, j, model="w : 1", on_pre="v_post += w * rand()",
                 values={"w": (np.full(n, w), "1")})
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    c1, c2 = len(got["spikes/P"]), len(ref["spikes/P"])
    want = n * rate * STEPS * DT
    for c in (c1, c2):
        assert abs(c - want) < 5 * np.sqrt(want), (c, want)
    assert abs(c1 - c2) < 5 * np.sqrt(c1 + c2)
    # the target's v: sum of w * U(0, 1) over every event (decay negligible: tau = 1e6 s)
    for res, c in ((got, c1), (ref, c2)):
        v = float(res["state/S/v"][0])
        assert abs(v - c * w / 2) < 5 * w * np.sqrt(c / 12), (v, c)


def test_nmda_synapse_with_a_summed_variable(brian2_python, tmp_path):
    """An NMDA-like synapse: clock-driven rise and saturating decay per synapse (Euler in
    both), a magnesium block in a (summed) current into each neuron's declared parameter,
    spike-driven rise (``x += 1``); LIF neurons with refractoriness. Deterministic: the spike
    trains equal Brian2's step for step for 1 s, final v, g and x to 1e-9."""
    rng = np.random.default_rng(11)
    n_in, n = 20, 10
    idx, times = _input_spikes(rng, n_in, 15.0, STEPS - 1)
    twin = Twin()
    twin.spike_source("X", n_in, idx, times)
    neuron = """
        dv/dt = (El - v + I_nmda / gl) / taum : volt (unless refractory)
        I_nmda : amp
    """
    twin.population("P", n, neuron, threshold="v > Vt", reset="v = Vr", refractory=0.002,
                    params={"El": (-0.065, "volt"), "gl": (10e-9, "siemens"),
                            "taum": (0.020, "second"), "Vt": (-0.050, "volt"),
                            "Vr": (-0.060, "volt")},
                    init={"v": (rng.uniform(-0.065, -0.055, n), "volt")})
    i, j = _sorted_pairs(*np.nonzero(rng.random((n_in, n)) < 0.5))
    model = """
        dg/dt = -g / tau_d + alpha * x * (1 - g) : 1 (clock-driven)
        dx/dt = -x / tau_r : 1 (clock-driven)
        block = 1 + exp(-0.062 * v_post / mV) / 3.57 : 1
        I_nmda_post = gmax * w * g * (E_nmda - v_post) / block : amp (summed)
        w : 1
    """
    twin.connect("nmda", "X", "P", i, j, model=model, on_pre="x += 1",
                 values={"w": (rng.uniform(0.5, 1.5, len(i)), "1"),
                         "g": (np.zeros(len(i)), "1"), "x": (np.zeros(len(i)), "1")},
                 params={"tau_d": (0.100, "second"), "tau_r": (0.002, "second"),
                         "alpha": (500.0, "Hz"), "gmax": (4e-9, "siemens"),
                         "E_nmda": (0.0, "volt")}, method="euler")
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(ref["spikes/P"]) > 100, (len(ref["spikes/P"]), len(got["spikes/P"]))
    assert ref["syn/nmda/g"].max() > 0.1
    assert_same_results(got, ref)


def test_lastspike_and_not_refractory_in_synaptic_statements(brian2_python, tmp_path):
    """Nearest-spike plasticity written with Brian2's ``lastspike`` and ``not_refractory``:
    inputs depress by the time since the target's last spike and are gated by its
    refractoriness (``v_post += w * int(not_refractory_post)``, into a variable without
    ``(unless refractory)``); recurrent synapses (delay 1 ms) potentiate on the target's
    spike by the time since the source's last spike. Spike trains equal step for step for
    1 s; final v and both weights to 1e-9."""
    rng = np.random.default_rng(21)
    n_in, n = 20, 30
    twin, i, j = _driven_lif(rng, n_in, n, 40.0, refractory=0.002, params=LIF_PARAMS)
    plastic = {"taus": (0.015, "second"), "A": (0.0004, "volt"), "wmax": (0.009, "volt")}
    w_in = rng.uniform(0.004, 0.008, len(i))
    twin.connect("inp", "X", "P", i, j, model="w : volt",
                 on_pre="v_post += w * int(not_refractory_post)\n"
                        "w = clip(w - A * exp(-(t - lastspike_post) / taus), 0*volt, wmax)",
                 values={"w": (w_in, "volt")}, params=plastic)
    pairs = np.array([(a, b) for a in range(n) for b in range(n)
                      if a != b and rng.random() < 0.1])
    ir, jr = _sorted_pairs(pairs[:, 0], pairs[:, 1])
    w_rec = rng.uniform(0.0, 0.002, len(ir))
    twin.connect("rec", "P", "P", ir, jr, model="wr : volt", on_pre="v_post += wr",
                 on_post="wr = clip(wr + A * exp(-(t - lastspike_pre) / taus), 0*volt, wmax)",
                 values={"wr": (w_rec, "volt")}, params=plastic, delay=0.001)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(ref["spikes/P"]) > 500
    assert np.mean(ref["syn/inp/w"] < w_in) > 0.5 and np.mean(ref["syn/rec/wr"] > w_rec) > 0.5
    assert_same_results(got, ref)


def test_refractoriness_given_as_a_condition(brian2_python, tmp_path):
    """``refractory="v > -52*mV"`` with a reset above threshold (``v = Vr = -45*mV``, threshold
    -50 mV): after each spike a neuron stays refractory until its membrane has fallen below
    -52 mV once (Brian2: ``not_refractory = not_refractory or not (v > -52*mV)`` before each
    update); without the rule it would spike in every step. Spike trains equal for 1 s,
    final v to 1e-9."""
    rng = np.random.default_rng(5)
    # not "(unless refractory)": the membrane must fall while refractory to leave it
    twin, i, j = _driven_lif(rng, 20, 30, 60.0, refractory="v > -52*mV",
                             params={**LIF_PARAMS, "Vr": (-0.045, "volt")})
    twin.connect("input", "X", "P", i, j, model="w : volt", on_pre="v_post += w",
                 values={"w": (rng.uniform(0.003, 0.008, len(i)), "volt")})
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    steps = ref["spikes/P"]
    assert len(steps) > 300
    assert_same_results(got, ref)


def test_stdp_with_per_synapse_delays(brian2_python, tmp_path):
    """STDP (pre/post traces, clipped weights, on_pre that also drives v) with per-synapse
    delays of k, k + 0.3, k + 0.5 and k + 0.7 steps (0 to 40 steps): each synapse's on_pre
    runs when its own delay has passed, reading the traces then, and on_post runs undelayed,
    as Brian2's spike queue does. Spikes equal for 1 s, final weights and v to 1e-9."""
    rng = np.random.default_rng(23)
    twin = stdp_network(rng, n_in=30, n=4, delay=lambda rng, k: (
        rng.integers(0, 40, k) + rng.choice([0.0, 0.3, 0.5, 0.7], k)) * DT)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(set(ref["delay_steps/stdp"].tolist())) > 30
    assert len(ref["spikes/P"]) > 20
    assert_same_results(got, ref)


def test_lastspike_and_not_refractory_in_neuron_equations(brian2_python, tmp_path):
    """An adaptive threshold from the time since the last spike (a subexpression with
    ``lastspike``, read by the threshold) and an input current gated by ``not_refractory``
    in the membrane equation (Euler in both), with input spikes: spike trains equal for
    1 s, final v to 1e-9."""
    rng = np.random.default_rng(31)
    n_in, n = 20, 20
    twin = Twin()
    idx, times = _input_spikes(rng, n_in, 40.0, STEPS)
    twin.spike_source("X", n_in, idx, times)
    model = """
        dv/dt = (El - v) / taum + I * not_refractory / C : volt
        theta = Vt + A * exp(-(t - lastspike) / tau_a) : volt
    """
    twin.population("P", n, model, threshold="v > theta", reset="v = Vr", refractory=0.002,
                    params={**LIF_PARAMS, "C": (200e-12, "farad"), "A": (0.01, "volt"),
                            "tau_a": (0.02, "second"),
                            "I": (0.25e-9, "amp")},
                    init={"v": (rng.uniform(-0.065, -0.055, n), "volt")}, method="euler")
    i, j = _sorted_pairs(*np.nonzero(rng.random((n_in, n)) < 0.3))
    twin.connect("input", "X", "P", i, j, model="w : volt", on_pre="v_post += w",
                 values={"w": (rng.uniform(0.002, 0.006, len(i)), "volt")})
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(ref["spikes/P"]) > 300
    assert_same_results(got, ref)


def test_run_regularly(brian2_python, tmp_path):
    """Operations every 5 ms and every 0.7 ms (not a divisor of 5 ms) on LIF neurons with
    input: a kick to v and a leak of a second state, at the start of those steps (Brian2's
    ``run_regularly``, first in step 0). Spike trains equal for 1 s, final states to 1e-9."""
    rng = np.random.default_rng(41)
    twin, i, j = _driven_lif(rng, 20, 20, 30.0, refractory=0.002, params=LIF_PARAMS)
    twin.connect("input", "X", "P", i, j, model="w : volt", on_pre="v_post += w",
                 values={"w": (rng.uniform(0.002, 0.006, len(i)), "volt")})
    twin.run_regularly("P", "v += 4*mV * (1 + i / N)", 0.005)
    twin.run_regularly("P", "v = El + (v - El) * 0.97", 0.0007)
    got = twin.run_snngen([STEPS])
    ref = twin.run_brian2(brian2_python, tmp_path, [STEPS])
    assert len(ref["spikes/P"]) > 300
    assert_same_results(got, ref)
