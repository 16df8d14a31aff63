"""The README demo: a balanced network of 4000 LIF neurons written as equations, on the CPU.

Prints the discretised model snngen derived, a spike raster in text, and timings.

    python examples/demo.py [--n 4000] [--duration 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import snngen as sg


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    args = parser.parse_args(argv)

    lif = sg.NeuronModel("""
        dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : volt
        dgi/dt = -gi / taui : volt
    """, threshold="v > Vt", reset="v = Vr", refractory="5*ms", name="lif")
    print(sg.discretise(lif), end="\n\n")

    t0 = time.perf_counter()
    net = sg.Network(dt=0.1e-3, seed=1)
    pop = net.population("P", lif, args.n, params={
        "taum": "20*ms", "taue": "5*ms", "taui": "10*ms",
        "Vt": "-50*mV", "Vr": "-60*mV", "El": "-49*mV"},
        init={"v": sg.Uniform(-60e-3, -50e-3)})
    n_exc = int(0.8 * args.n)
    p = min(1.0, 80 / args.n)
    net.connect(pop[:n_exc], pop, "ge += w", sg.FixedProbability(p), w="1.62*mV")
    net.connect(pop[n_exc:], pop, "gi += w", sg.FixedProbability(p), w="-9*mV")
    spikes = net.monitor_spikes(pop)
    sim = net.build(backend=args.backend)   # generated, compiled and cached (warm: loaded)
    t1 = time.perf_counter()
    sim.run(args.duration)
    t2 = time.perf_counter()

    rows, cols = 20, 72
    raster = np.zeros((rows, cols), bool)
    shown = spikes.i < rows
    c = np.minimum((spikes.t[shown] / args.duration * cols).astype(int), cols - 1)
    raster[spikes.i[shown], c] = True
    print(f"spikes of the first {rows} of {args.n} neurons over {args.duration} s:")
    for row in raster:
        print("  |" + "".join("|" if x else " " for x in row) + "|")
    rate = len(spikes.i) / (args.n * args.duration)
    summary = {"n": args.n, "spikes": int(len(spikes.i)), "mean_rate_hz": round(rate, 3),
               "build_s": round(t1 - t0, 3), "run_s": round(t2 - t1, 3),
               "compiled_kernels": sim.compiled_kernels}
    print(f"\n{len(spikes.i)} spikes, mean rate {rate:.2f} Hz; build {t1 - t0:.2f} s "
          f"({'compiled' if sim.compiled_kernels else 'loaded from the cache'}), "
          f"run {t2 - t1:.2f} s")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
