"""STDP written as equations: Song, Miller & Abbott (2000), one neuron, 1000 Poisson inputs.

Competitive spike-timing-dependent plasticity drives the weights towards the bounds (a bimodal
distribution) while the output rate settles. Traces are event-driven synaptic equations.

    python examples/stdp.py [--duration 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

import snngen as sg

NEURON = sg.NeuronModel("""
    dv/dt = (ge * (Ee - v) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
""", threshold="v > vt", reset="v = vr", name="song_lif")

STDP = sg.SynapseModel("""
    w : 1
    dApre/dt = -Apre / taupre : 1 (event-driven)
    dApost/dt = -Apost / taupost : 1 (event-driven)
""", on_pre="""
    ge_post += w
    Apre += dApre
    w = clip(w + Apost, 0, gmax)
""", on_post="""
    Apost += dApost
    w = clip(w + Apre, 0, gmax)
""", name="stdp")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="biological seconds")
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    args = parser.parse_args(argv)
    gmax, n = 0.01, args.inputs
    t0 = time.perf_counter()
    net = sg.Network(dt=1e-4, seed=3, dtype="float64")
    inputs = net.poisson("inputs", n, rates="15*Hz")
    neuron = net.population("out", NEURON, 1, params={
        "taum": "10*ms", "Ee": "0*mV", "El": "-74*mV", "vt": "-54*mV", "vr": "-60*mV",
        "taue": "5*ms"}, init={"v": "-60*mV"})
    syn = net.connect(inputs, neuron, STDP, "all_to_all", w=sg.Uniform(0, gmax), params={
        "taupre": "20*ms", "taupost": "20*ms", "gmax": gmax, "dApre": 0.01 * gmax,
        "dApost": -0.01 * gmax * 1.05})
    out = net.monitor_spikes(neuron)
    sim = net.build(backend=args.backend)
    w0 = sim.synapses(syn, "w")[0].copy()
    sim.run(args.duration)
    w = sim.synapses(syn, "w")[0]
    late = out.t > args.duration - 5.0
    summary = {
        "inputs": n, "duration": args.duration, "output_spikes": int(len(out.i)),
        "late_rate_hz": round(float(late.sum() / min(5.0, args.duration)), 2),
        "w_mean_before": round(float(w0.mean() / gmax), 3),
        "w_mean_after": round(float(w.mean() / gmax), 3),
        "fraction_near_bounds": round(float(((w < 0.1 * gmax) | (w > 0.9 * gmax)).mean()), 3),
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    hist, _ = np.histogram(w / gmax, bins=10, range=(0, 1))
    print("final weights / gmax, histogram over 10 bins:")
    for k, count in enumerate(hist):
        print(f"  {k / 10:.1f}-{(k + 1) / 10:.1f} {'#' * int(60 * count / max(hist.max(), 1))}")
    print(f"output rate over the last 5 s: {summary['late_rate_hz']} Hz; "
          f"{100 * summary['fraction_near_bounds']:.0f} % of weights near a bound")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
