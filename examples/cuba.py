"""CUBA: the Vogels & Abbott (2005) current-based network, as in Brian2's CUBA example.

N LIF neurons (80 % excitatory, 20 % inhibitory), random connectivity with p = 80/N (fixed
fan-in 80 on average), exponential synaptic currents, refractoriness. About 5.5 Hz.

    python examples/cuba.py                 # N = 4000, 1 s
    python examples/cuba.py --n 64000 --duration 1 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import snngen as sg

LIF = """
    dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
    dgi/dt = -gi / taui : volt
"""
PARAMS = {"taum": "20*ms", "taue": "5*ms", "taui": "10*ms", "Vt": "-50*mV", "Vr": "-60*mV",
          "El": "-49*mV"}


def build(n: int, seed: int = 1, dtype: str = "float32", fan_in: float = 80.0):
    model = sg.NeuronModel(LIF, threshold="v > Vt", reset="v = Vr", refractory="5*ms",
                           name="lif")
    net = sg.Network(dt=0.1e-3, seed=seed, dtype=dtype)
    pop = net.population("P", model, n, params=PARAMS, init={"v": sg.Uniform(-60e-3, -50e-3)})
    n_exc = int(0.8 * n)
    p = min(1.0, fan_in / n)
    net.connect(pop[:n_exc], pop, "ge += w", sg.FixedProbability(p), w="1.62*mV", name="exc")
    net.connect(pop[n_exc:], pop, "gi += w", sg.FixedProbability(p), w="-9*mV", name="inh")
    spikes = net.monitor_spikes(pop)
    return net, pop, spikes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="number of neurons")
    parser.add_argument("--duration", type=float, default=1.0, help="biological seconds")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args(argv)

    compiled_before = sg.cache.STATS["compiled"]
    t0 = time.perf_counter()
    net, pop, spikes = build(args.n, args.seed, args.dtype)
    t_desc = time.perf_counter() - t0
    sim = net.build(backend=args.backend)
    t1 = time.perf_counter()
    sim.run(args.duration)
    run_s = time.perf_counter() - t1
    n_spikes = len(spikes.i)
    rate = n_spikes / (args.n * args.duration) if args.duration > 0 else 0.0
    summary = {
        "n": args.n, "duration": args.duration, "backend": args.backend, "dtype": args.dtype,
        "spikes": n_spikes, "mean_rate_hz": round(rate, 4),
        "build_s": round(t_desc + sim.build_s, 4), "compile_s": round(sim.compile_s, 4),
        "connect_s": round(sim.connect_s, 4),  # of build_s: drawing synapses (cuda: on the GPU)
        "run_s": round(run_s, 4),
        "compiled_kernels": sg.cache.STATS["compiled"] - compiled_before,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    timings = getattr(sim._kernel, "timings", None)  # CUDA backends: where the run time went
    if timings:
        summary["device_timings"] = {k: round(v, 4) for k, v in timings.items()}
    print(f"CUBA, {args.n} neurons, {args.duration} s: {n_spikes} spikes, {rate:.2f} Hz "
          f"(build {summary['build_s']:.2f} s, compile/load {summary['compile_s']:.2f} s, "
          f"run {run_s:.2f} s)")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
