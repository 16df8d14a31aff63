"""L4 pattern generation: a recurrent LIF network learns to draw a sum of sinusoids from frozen
Poisson input, trained online by e-prop and by RFLO (eligibility traces derived from the
model's own Jacobian, compiled with Numba: snngen.train.online).

    python examples/pattern_generation.py [--iterations 300] [--seed 0] [--json]

Reports the normalised MSE (MSE / variance of the target) of each rule after training; the
target of BENCHMARKS.md is below 0.1.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

import snngen as sg
from snngen import connectivity as conn
from snngen.derive import derive
from snngen.integrate import discretise
from snngen.train.online import CompiledEprop, CudaEprop, OnlineLearner
from snngen.train.optim import Adam

LIF = sg.NeuronModel("""
    dv/dt = (I - v) / taum : 1
    dI/dt = -I / taus : 1
""", threshold="v > 1", reset="v = v - 1", name="pattern_lif")


def task(steps: int, n_in: int, seed: int):
    """Frozen Poisson input (the same every iteration) and a sum of three sinusoids."""
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, n_in)) < 0.02).astype(float)   # about 20 Hz at dt = 1 ms
    t = np.arange(steps) * 1e-3
    freqs, phases = (1.0, 2.0, 3.0), rng.uniform(0, 2 * np.pi, 3)
    amps = rng.uniform(0.5, 2.0, 3)
    y = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in zip(amps, freqs, phases))
    return x, (y / np.abs(y).max())[:, None]


def train(rule: str, iterations: int, n: int, n_in: int, steps: int, seed: int,
          lr: float = 0.02, readout_only: bool = False, update_every: int | None = None,
          backend: str = "numba"):
    """Returns the normalised MSE after training (the readout of one more pass)."""
    lm = derive(discretise(LIF), inputs=["I"], surrogate="fast_sigmoid")
    x, target = task(steps, n_in, seed)
    rng = np.random.default_rng(seed + 1)
    in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed)
    rec_csr = conn.build_csr(conn.FixedProbability(1.0, allow_self=False), n, n, seed)
    weights = {"w_in": rng.normal(0, 3.0 / np.sqrt(n_in), in_csr.n_synapses),
               "w_rec": rng.normal(0, 0.5 / np.sqrt(n), rec_csr.n_synapses),
               "w_out": rng.normal(0, 1.0 / np.sqrt(n), (n, 1))}
    feedback = rng.normal(0, 1.0 / np.sqrt(n), (n, 1)) if rule == "rflo" else None
    kernel = CompiledEprop(lm, "float64") if backend == "numba" else \
        CudaEprop(lm, "float64", device="gpu" if backend == "cuda" else "host")
    learner = OnlineLearner(kernel,
                            {"taum": np.full(n, 0.02), "taus": np.full(n, 0.005)}, 1e-3,
                            in_csr, rec_csr, weights, float(np.exp(-1e-3 / 0.02)), rule=rule,
                            feedback=feedback, update_every=update_every,
                            optimizer=Adam(lr=lr),
                            trainable=("w_out",) if readout_only else ("w_in", "w_rec",
                                                                        "w_out"))
    xb, tb = x[:, None, :], target[:, None, :]
    for _ in range(iterations):
        learner.reset(1)   # each pass starts from rest; weights keep what they learnt
        learner.feed(xb, tb)
    learner.reset(1)
    _, y = learner.feed(xb, tb, learn=False)
    return float(np.mean((y[:, 0] - target) ** 2) / np.var(target))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--neurons", type=int, default=60)
    parser.add_argument("--inputs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=300, help="1 ms steps per pattern")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    parser.add_argument("--update-every", type=int, default=None,
                        help="weight updates every K steps (default: once per pass)")
    parser.add_argument("--baseline", action="store_true",
                        help="also train the readout alone (what the rules add to it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    summary = {"iterations": args.iterations, "neurons": args.neurons, "steps": args.steps}
    t0 = time.perf_counter()
    for rule in ("eprop", "rflo"):
        t1 = time.perf_counter()
        final = train(rule, args.iterations, args.neurons, args.inputs, args.steps,
                      args.seed, update_every=args.update_every, backend=args.backend)
        summary[f"{rule}_nmse"] = round(final, 4)
        summary[f"{rule}_train_s"] = round(time.perf_counter() - t1, 1)
        print(f"{rule}: normalised MSE {final:.4f} after {args.iterations} iterations "
              f"({summary[f'{rule}_train_s']} s)")
    if args.baseline:
        final = train("eprop", args.iterations, args.neurons, args.inputs, args.steps,
                      args.seed, readout_only=True)
        summary["readout_only_nmse"] = round(final, 4)
        print(f"readout alone (hidden weights fixed): normalised MSE {final:.4f}")
    summary["train_s"] = round(time.perf_counter() - t0, 1)
    summary["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                    1)
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
