"""L2 cue accumulation (after Bellec et al. 2020, Fig. 3): seven cues, each on the left or the
right, then a delay, then a recall cue; the network must say which side got more cues. Half of
the recurrent neurons adapt their threshold with a 2 s time constant (ALIF, written as
equations below): that adaptation is the memory that bridges the delay. All weights learn
online with e-prop (eligibility traces derived from the model's own Jacobian, compiled with
Numba: snngen.train.online); no history is stored.

    python examples/cue_accumulation.py [--iterations 150] [--seed 0] [--json]
    python examples/cue_accumulation.py --no-adaptation    # the same network without ALIF

The timing is shorter than the paper's so that it trains in minutes on two cores: 2 ms steps,
100 ms cues with 50 ms gaps, a 700 ms delay and a 150 ms recall (1,900 ms, 950 steps; the
paper: 1 ms steps, 2,250 ms), 50 neurons (paper: 100), batches of 32. The last JSON line has
test_accuracy (on 512 new trials), train_s and peak_rss_mib.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import snngen as sg
from snngen import connectivity as conn
from snngen.derive import derive
from snngen.integrate import discretise
from snngen.train.online import CompiledEprop, CudaEprop, OnlineLearner
from snngen.train.optim import Adam
from snngen.train.report import report

# Bellec's ALIF: input enters the membrane, the threshold 1 + beta a rises by beta with
# each spike and decays with taua; the reset subtracts the threshold the neuron crossed.
ALIF = sg.NeuronModel("""
    dv/dt = -v / taum : 1
    da/dt = -a / taua : 1
""", threshold="v > 1 + beta * a", reset="v = v - 1 - beta * a; a = a + 1", name="cue_alif")

N_IN, N_CUES = 40, 7


class Task:
    """Trials of the task at time step ``dt``: 40 Poisson input channels, 10 for left cues,
    10 for right cues, 10 for the recall cue (all 40 Hz when on) and 10 of 10 Hz noise."""

    def __init__(self, dt: float, cue: float = 0.1, gap: float = 0.05, delay: float = 0.7,
                 recall: float = 0.15, rate: float = 40.0, noise: float = 10.0):
        self.dt, self.rate, self.noise = dt, rate, noise
        self.cue, self.gap = round(cue / dt), round(gap / dt)
        self.recall = round(recall / dt)
        self.steps = N_CUES * (self.cue + self.gap) + round(delay / dt) + self.recall

    def trials(self, batch: int, rng):
        """Inputs (T, B, 40) and labels (B,): 1 if the right side got more cues. Each trial
        draws its cues with probability 0.25 or 0.75 for the right (Bellec et al.)."""
        x = np.zeros((self.steps, batch, N_IN))
        labels = np.zeros(batch, np.int64)
        on = self.rate * self.dt
        for b in range(batch):
            right = rng.random(N_CUES) < rng.choice([0.25, 0.75])
            labels[b] = int(right.sum() > N_CUES / 2)
            for c, side in enumerate(right):
                t0 = c * (self.cue + self.gap)
                ch = slice(10, 20) if side else slice(0, 10)
                x[t0:t0 + self.cue, b, ch] = rng.random((self.cue, 10)) < on
        x[self.steps - self.recall:, :, 20:30] = rng.random((self.recall, batch, 10)) < on
        x[:, :, 30:] = rng.random((self.steps, batch, 10)) < self.noise * self.dt
        return x, labels

    def targets(self, labels):
        """One-hot targets during the recall (T, B, 2) and the mask of the steps that count."""
        tgt = np.zeros((self.steps, labels.size, 2))
        tgt[self.steps - self.recall:, np.arange(labels.size), labels] = 1.0
        mask = np.zeros((self.steps, labels.size))
        mask[self.steps - self.recall:] = 1.0
        return tgt, mask

    def decide(self, y):
        """The side whose readout is larger on average over the recall."""
        return y[self.steps - self.recall:].mean(axis=0).argmax(axis=-1)


def build(n: int, seed: int, adaptation: bool = True, backend: str = "numba",
          dt: float = 2e-3, lr: float = 0.01, rule: str = "eprop", loss: str = "mse",
          beta: float = 0.05):
    """The learner: n recurrent neurons (the second half ALIF), all-to-all input and
    recurrence without self-connections, a leaky readout with the membrane's time constant."""
    rng = np.random.default_rng(seed)
    lm = derive(discretise(ALIF), inputs=["v"], surrogate="fast_sigmoid")
    params = {"taum": np.full(n, 0.02), "taua": np.full(n, 2.0),
              "beta": np.r_[np.zeros(n // 2), np.full(n - n // 2, beta if adaptation else 0)]}
    in_csr = conn.build_csr(conn.AllToAll(), N_IN, n, seed)
    rec_csr = conn.build_csr(conn.FixedProbability(1.0, allow_self=False), n, n, seed)
    weights = {"w_in": rng.normal(0, 3.0 / np.sqrt(N_IN), in_csr.n_synapses),
               "w_rec": rng.normal(0, 1.0 / np.sqrt(n), rec_csr.n_synapses),
               "w_out": rng.normal(0, 1.0 / np.sqrt(n), (n, 2))}
    kernel = CompiledEprop(lm, "float32") if backend == "numba" else \
        CudaEprop(lm, "float32", device="gpu" if backend == "cuda" else "host")
    return OnlineLearner(kernel, params, dt, in_csr, rec_csr, weights,
                         float(np.exp(-dt / 0.02)), rule=rule, loss=loss,
                         optimizer=Adam(lr=lr))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--neurons", type=int, default=50, help="half LIF, half ALIF")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--loss", default="mse", choices=("mse", "cross_entropy"))
    parser.add_argument("--rule", default="eprop", help="eprop (default), ostl, rflo, ...")
    parser.add_argument("--no-adaptation", action="store_true",
                        help="beta = 0: every neuron a plain LIF (shows what ALIF adds)")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    parser.add_argument("--test-trials", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    task = Task(2e-3)
    rng = np.random.default_rng(args.seed)
    learner = build(args.neurons, args.seed, not args.no_adaptation, args.backend, task.dt,
                    args.lr, args.rule, args.loss)
    t0, recent = time.perf_counter(), []
    for it in range(args.iterations):
        x, labels = task.trials(args.batch, rng)
        tgt, mask = task.targets(labels)
        learner.reset(args.batch)
        loss, y = learner.feed(x, tgt, mask=mask)
        recent.append(float(np.mean(task.decide(y) == labels)))
        if (it + 1) % 25 == 0:
            print(f"iteration {it + 1}: loss {loss / args.batch:.3f}, training accuracy "
                  f"(last 25 batches) {np.mean(recent[-25:]):.3f}", flush=True)
    train_s = time.perf_counter() - t0
    x, labels = task.trials(args.test_trials, np.random.default_rng(args.seed + 10_000))
    tgt, mask = task.targets(labels)
    learner.reset(args.test_trials)
    _, y = learner.feed(x, tgt, learn=False, mask=mask)
    test_acc = float(np.mean(task.decide(y) == labels))
    print(f"test accuracy {test_acc:.3f} on {args.test_trials} new trials after "
          f"{args.iterations} iterations of {args.batch} ({train_s:.1f} s)")
    summary = {"test_accuracy": round(test_acc, 4), "iterations": args.iterations,
               "batch": args.batch, "neurons": args.neurons, "steps": task.steps,
               "adaptation": not args.no_adaptation, "rule": args.rule, "loss": args.loss,
               "last_loss": round(loss / args.batch, 6), "train_s": round(train_s, 1)}
    return report(summary, args.json)


if __name__ == "__main__":
    main()
