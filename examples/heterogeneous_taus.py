"""Trained per-neuron membrane time constants against fixed ones, on a temporal task.

Randman spike patterns spread over 150 ms are classified from the readout's value at the
*end* of the trial, so the network must hold information for up to 150 ms. The same network
is trained twice from the same initial weights: once with a fixed, shared membrane time
constant, once with one trainable time constant per neuron (optimised in log space, as in
Perez-Nieves et al. 2021). Prints both test accuracies and the learned distribution.

    python examples/heterogeneous_taus.py [--epochs 6] [--json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import snngen as sg
from snngen.datasets import randman
from snngen.train import RecurrentClassifier, Trainer, spike_raster
from snngen.train.report import report


def train(x, labels, split, trainable, epochs, seed, backend="numba"):
    lif = sg.NeuronModel("""
        dv/dt = (I - v) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > 1", reset="v = 0", name="lif")
    net = RecurrentClassifier(lif, "I", x.shape[2], 64, 10, over="last", readout_tau=0.05,
                              params={"taum": 0.01, "taus": 0.005}, seed=seed,
                              trainable_params=("taum",) if trainable else (),
                              backend=backend)
    trainer = Trainer(net, lr=5e-3, batch_size=32, seed=seed)
    trainer.fit(x[:, :split], labels[:split], epochs)
    accuracy = float(np.mean(net.predict(x[:, split:]) == labels[split:]))
    return accuracy, net.params["taum"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    args = parser.parse_args(argv)
    times, _, labels = randman(classes=10, channels=50, samples_per_class=60, duration=0.15,
                               seed=args.seed)
    x = spike_raster(times, 1e-3, 160)
    split = int(0.8 * len(labels))
    t0 = time.perf_counter()
    fixed, _ = train(x, labels, split, False, args.epochs, args.seed, args.backend)
    learned, taus = train(x, labels, split, True, args.epochs, args.seed, args.backend)
    q = np.percentile(taus * 1e3, [10, 50, 90])
    print(f"fixed tau_m = 10 ms:        test accuracy {fixed:.3f}")
    print(f"trained per-neuron tau_m:   test accuracy {learned:.3f} "
          f"(tau_m 10/50/90 % = {q[0]:.1f} / {q[1]:.1f} / {q[2]:.1f} ms)")
    summary = {"fixed_accuracy": round(fixed, 4), "trained_accuracy": round(learned, 4),
               "tau_ms_p10_p50_p90": [round(float(v), 2) for v in q], "epochs": args.epochs,
               "train_s": round(time.perf_counter() - t0, 1)}
    return report(summary, args.json)


if __name__ == "__main__":
    main()
