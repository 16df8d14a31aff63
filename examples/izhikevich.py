"""A custom neuron model: Izhikevich (2003) spiking network, written only as equations.

800 regular-spiking excitatory and 200 fast-spiking inhibitory Izhikevich neurons with
heterogeneous per-neuron parameters a, b, c, d, random recurrent weights and Poisson
"thalamic" drive. No kernel code is specific to this model: snngen derives it (Euler, since
the model is nonlinear) from the equations.

    python examples/izhikevich.py [--duration 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

import snngen as sg

IZHIKEVICH = sg.NeuronModel("""
    dv/dt = (0.04 * v**2 + 5 * v + 140 - u + I) / ms : 1
    du/dt = a * (b * v - u) / ms : 1
    dI/dt = -I / tauI : 1
    a : 1
    b : 1
    c : 1
    d : 1
""", threshold="v >= 30", reset="v = c; u += d", name="izhikevich")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    args = parser.parse_args(argv)
    ne, ni = 800, 200
    rng = np.random.default_rng(0)
    re, ri = rng.random(ne), rng.random(ni)
    params = {
        "a": np.r_[0.02 * np.ones(ne), 0.02 + 0.08 * ri],
        "b": np.r_[0.2 * np.ones(ne), 0.25 - 0.05 * ri],
        "c": np.r_[-65 + 15 * re**2, -65 * np.ones(ni)],
        "d": np.r_[8 - 6 * re**2, 2 * np.ones(ni)],
        "tauI": "1*ms",
    }
    t0 = time.perf_counter()
    net = sg.Network(dt=0.5e-3, seed=1)
    pop = net.population("cortex", IZHIKEVICH, ne + ni, params=params,
                         init={"v": -65.0, "u": params["b"] * -65.0})
    thalamus = net.poisson("thalamus", ne + ni, rates="50*Hz")
    net.connect(thalamus, pop, "I += w", "one_to_one", w=np.r_[5.0 * np.ones(ne),
                                                               2.0 * np.ones(ni)] * 2)
    net.connect(pop[:ne], pop, "I += w", {"p": 0.1}, w=sg.Uniform(0, 0.5 * 10), name="exc")
    net.connect(pop[ne:], pop, "I += w", {"p": 0.1}, w=sg.Uniform(-10, 0), name="inh")
    spikes = net.monitor_spikes(pop)
    sim = net.build(backend=args.backend)
    sim.run(args.duration)
    exc = spikes.i < ne
    summary = {
        "neurons": ne + ni, "duration": args.duration, "spikes": int(len(spikes.i)),
        "rate_exc_hz": round(float(exc.sum() / (ne * args.duration)), 2),
        "rate_inh_hz": round(float((~exc).sum() / (ni * args.duration)), 2),
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    counts, _ = np.histogram(spikes.t, bins=40, range=(0, args.duration))
    print("population activity (spikes per bin):")
    print("  " + "".join(" .:-=+*#%@"[min(9, int(9 * c / max(counts.max(), 1)))] for c in counts))
    print(f"excitatory {summary['rate_exc_hz']} Hz, inhibitory {summary['rate_inh_hz']} Hz")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
