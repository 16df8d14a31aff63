"""Where the time of the F1 (CUBA) loop goes: an ablation profile of the generated kernel.

Numba kernels have no cheap internal timers, so this builds the CUBA network, then times the
generated ``run`` and variants of its source with phases removed: without synaptic delivery,
and without any spike handling (neither reset, recording nor delivery). Removing a phase changes
the dynamics (without recurrent input the neurons fire at ~19 Hz instead of ~5.7 Hz), so only
the split "neuron update" against "everything driven by spikes" is exact; the delivery share
is an estimate.

    python benchmarks/profile_forward.py --n 64000 [--steps 500] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import cuba  # noqa: E402


def _variant(source: str, name: str):
    path = Path(tempfile.mkdtemp()) / f"profile_{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"profile_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _time(module, sim, steps, repeats):
    from snngen.backends.numba.fpenv import flush_denormals
    with flush_denormals():  # as Simulator.run does; without input, currents go denormal
        return _time_flushed(module, sim, steps, repeats)


def _time_flushed(module, sim, steps, repeats):
    args = sim._args()
    status = np.zeros(3, np.int64)
    snapshot = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    module.run(5, 0, 1, status, *args)  # compile
    best = float("inf")
    for _ in range(repeats):
        for a, saved in zip(args, snapshot):  # every variant and repeat starts alike
            if saved is not None:
                a[...] = saved
        for k, mon in enumerate(sim.net.monitors):
            if mon.kind == "spikes":
                sim.arrays[f"m{k}__count"][0] = 0
        t0 = time.perf_counter()
        module.run(steps, sim.step, 1, status, *args)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    net, pop, spikes = cuba.build(args.n)
    sim = net.build()
    sim.run(0.05)  # past the initial transient
    source = sim.source_path.read_text()
    no_prop = re.sub(r"for q in range\((\w+)n\[b, (exc|inh)_slot\]\):",
                     r"for q in range(0):", source)
    no_spikes = no_prop.replace("if P_z64[P_w] == 0:", "if True:")
    variants = {"full": source, "no_propagation": no_prop, "neuron_update_only": no_spikes}
    modules = {name: _variant(text, name) for name, text in variants.items()}
    per = {name: float("inf") for name in variants}
    for _ in range(2):  # round robin: the first timed kernel of a process runs slow
        for name, module in modules.items():
            per[name] = min(per[name], _time(module, sim, args.steps, args.repeats))
    ns = {k: v / (args.steps * args.n) * 1e9 for k, v in per.items()}
    share = {
        "neuron_update_ns": round(ns["neuron_update_only"], 3),
        "spike_driven_ns": round(ns["full"] - ns["neuron_update_only"], 3),
        "delivery_estimate_ns": round(ns["full"] - ns["no_propagation"], 3),
        "total_ns": round(ns["full"], 3),
    }
    print(f"CUBA N={args.n}: nanoseconds per neuron-step (minimum of {args.repeats} x "
          f"{args.steps} steps)")
    for k, v in share.items():
        print(f"  {k:28s} {v:7.3f}  ({100 * v / share['total_ns']:.0f} %)")
    if args.json:
        print(json.dumps({"n": args.n, **share}))


if __name__ == "__main__":
    main()
