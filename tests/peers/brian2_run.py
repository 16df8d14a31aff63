"""Run a network described by a JSON spec in Brian2 and write its spikes and final states.

Used by ``tests/test_brian2.py``; it runs in Brian2's own virtual environment (made by
``bash benchmarks/peers/setup_peers.sh brian2``), never in snngen's:

    benchmarks/.peers/brian2/bin/python tests/peers/brian2_run.py SPEC.json OUT.npz \
        [SPEC2.json OUT2.npz ...]

(several pairs: each network is built afresh and run in turn, in one process, which saves
Brian2's import for each.)

Brian2 runs with its ``numpy`` code-generation target in float64, on ``defaultclock.dt``,
with its default schedule (start, groups, thresholds, synapses, resets, end).

The spec (written by the test; every time in seconds):

``dt``
    the time step.
``runs``
    a list of run lengths in whole steps: one ``Network.run`` call each, in order.
``groups``
    name -> ``{"kind": "generator", "N", "indices", "times"}`` (a ``SpikeGeneratorGroup``)
    or ``{"kind": "neurons", "N", "model", "threshold", "reset", "refractory", "method",
    "init"}`` (a ``NeuronGroup``; ``refractory`` is a time, a condition (a string) or null;
    ``init`` maps a state
    variable to a quantity, one value or one per neuron).
``synapses``
    a list of ``{"name", "source", "target", "model", "on_pre", "on_post", "i", "j",
    "values", "delay", "method"}``: one ``Synapses`` object each, connected with the explicit
    ``i``/``j`` arrays (synapse ``s`` goes from ``i[s]`` to ``j[s]``, in that order),
    ``values`` (variable -> quantity) set after connecting, ``delay`` the pre pathway's delay
    (a time or one per synapse; null: none).
``namespace``
    name -> quantity: the constants that the equations use.
``operations``
    a list of ``{"group", "code", "dt"}``: ``group.run_regularly(code, dt=dt)``.
``record``
    ``{"spikes": [group names], "states": {group: [variables]},
    "synapses": {synapses name: [variables]}, "traces": {group: [variables]}}`` (traces:
    a ``StateMonitor`` recording every neuron at every step).

A quantity is a number (dimensionless), or ``{"value": number or list, "unit": "volt"}``
with the unit written as in Brian2. JSON written by Python's ``json`` gives every float64
back bit for bit.

The output (``numpy.savez``): ``spikes/<group>/i`` and ``spikes/<group>/step`` (the step in
which each spike happened, in the order Brian2's ``SpikeMonitor`` recorded them),
``state/<group>/<var>`` and ``syn/<name>/<var>`` (values in SI units, as float64, after the
last run), ``trace/<group>/<var>`` (neurons x steps), ``steps`` (the clock's final time
step), ``brian2_version``, and the delays in steps that Brian2's spike queue used
(``delay_steps/<name>``, computed as its C++ spike queue does: ``int(delay / dt + 0.5)``).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def run_spec(spec_path: str, out_path: str) -> None:
    """Build the network of one spec, run it and write its results."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.prefs.core.default_float_dtype = np.float64
    b2.start_scope()
    with open(spec_path) as f:
        spec = json.load(f)

    units = {k: v for k, v in vars(b2).items() if isinstance(v, (b2.Unit, b2.Quantity))}

    def quantity(q):
        if isinstance(q, dict):
            unit = eval(q["unit"], {"__builtins__": {}}, units)  # noqa: S307 - test input
            return np.asarray(q["value"], dtype=np.float64) * unit
        return np.asarray(q, dtype=np.float64) if isinstance(q, list) else float(q)

    dt = float(spec["dt"])
    b2.defaultclock.dt = dt * b2.second
    namespace = {k: quantity(v) for k, v in spec.get("namespace", {}).items()}

    groups = {}
    for name, g in spec["groups"].items():
        if g["kind"] == "generator":
            groups[name] = b2.SpikeGeneratorGroup(
                g["N"], np.asarray(g["indices"], dtype=np.int64),
                np.asarray(g["times"], dtype=np.float64) * b2.second, name=name)
        elif g["kind"] == "neurons":
            ref = g.get("refractory")
            grp = b2.NeuronGroup(
                g["N"], g["model"], threshold=g.get("threshold"), reset=g.get("reset"),
                refractory=False if ref is None else ref if isinstance(ref, str)
                else float(ref) * b2.second,
                method=g.get("method", "exact"), namespace=namespace, name=name)
            for var, value in g.get("init", {}).items():
                setattr(grp, var, quantity(value))
            groups[name] = grp
        else:
            raise ValueError(f"group {name}: unknown kind {g['kind']!r}")

    synapses = {}
    delay_steps = {}
    for s in spec.get("synapses", []):
        syn = b2.Synapses(groups[s["source"]], groups[s["target"]], model=s.get("model", ""),
                          on_pre=s.get("on_pre"), on_post=s.get("on_post"),
                          method=s.get("method", "exact"), namespace=namespace,
                          name=s["name"])
        syn.connect(i=np.asarray(s["i"], dtype=np.int64), j=np.asarray(s["j"], dtype=np.int64))
        for var, value in s.get("values", {}).items():
            setattr(syn, var, quantity(value))
        if s.get("delay") is not None:
            syn.pre.delay = quantity(s["delay"]) * b2.second
            delays = np.broadcast_to(np.asarray(syn.pre.delay[:] / b2.second, np.float64),
                                     (len(syn),))
            delay_steps[s["name"]] = (delays / dt + 0.5).astype(np.int32)
        synapses[s["name"]] = syn

    for op in spec.get("operations", []):  # run_regularly
        groups[op["group"]].run_regularly(op["code"], dt=float(op["dt"]) * b2.second)

    record = spec.get("record", {})
    spike_mons = {g: b2.SpikeMonitor(groups[g], name=f"spikemon_{g}")
                  for g in record.get("spikes", [])}
    traces = {g: b2.StateMonitor(groups[g], variables, record=True, name=f"statemon_{g}")
              for g, variables in record.get("traces", {}).items()}
    net = b2.Network(*groups.values(), *synapses.values(), *spike_mons.values(),
                     *traces.values())
    total = 0
    for steps in spec["runs"]:
        net.run(int(steps) * dt * b2.second)
        total += int(steps)
    final_step = int(b2.defaultclock.timestep[:])
    if final_step != total:
        raise RuntimeError(f"Brian2 ran {final_step} steps, the spec asked for {total}")

    out = {"steps": np.int64(final_step), "brian2_version": np.array(b2.__version__)}
    for g, mon in spike_mons.items():
        out[f"spikes/{g}/i"] = np.asarray(mon.i[:], dtype=np.int64)
        out[f"spikes/{g}/step"] = np.rint(np.asarray(mon.t_[:]) / dt).astype(np.int64)
    for g, variables in record.get("states", {}).items():
        for var in variables:
            out[f"state/{g}/{var}"] = np.asarray(getattr(groups[g], var + "_")[:], np.float64)
    for name, variables in record.get("synapses", {}).items():
        for var in variables:
            out[f"syn/{name}/{var}"] = np.asarray(getattr(synapses[name], var + "_")[:],
                                                  np.float64)
    for g, variables in record.get("traces", {}).items():
        for var in variables:
            out[f"trace/{g}/{var}"] = np.asarray(getattr(traces[g], var + "_"), np.float64)
    for name, steps in delay_steps.items():
        out[f"delay_steps/{name}"] = steps
    np.savez(out_path, **out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: brian2_run.py SPEC.json OUT.npz [SPEC2.json OUT2.npz ...]")
    for spec_arg, out_arg in zip(args[::2], args[1::2]):
        run_spec(spec_arg, out_arg)
