"""Train a recurrent LIF network by surrogate-gradient BPTT on a 10-class Randman task.

The backward pass is derived symbolically from the LIF equations and compiled with Numba;
100 input channels (one spike each), 128 recurrent LIF neurons, a leaky readout, Adam.

    python examples/train_randman.py [--epochs 6] [--hidden 128 | --hidden 128,64] [--json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import snngen as sg
from snngen.datasets import randman
from snngen.train import RecurrentClassifier, Trainer, spike_raster
from snngen.train.report import report


def _widths(text: str):
    """'128' -> 128, '128,64' -> (128, 64): one hidden layer, or several stacked."""
    widths = tuple(int(v) for v in text.split(","))
    return widths[0] if len(widths) == 1 else widths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hidden", type=_widths, default=128,
                        help="recurrent neurons; several layers as widths, e.g. 128,64")
    parser.add_argument("--samples-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--backend", default="numba",
                        help="numba (CPU), cuda (GPU) or cuda-host (CUDA kernels on the CPU)")
    args = parser.parse_args(argv)

    dt, steps = 1e-3, 100
    times, _, labels = randman(classes=10, channels=100, duration=0.08, seed=args.seed,
                               samples_per_class=args.samples_per_class)
    x = spike_raster(times, dt, steps)
    split = int(0.8 * len(labels))
    lif = sg.NeuronModel("""
        dv/dt = (I - v) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > 1", reset="v = 0", name="lif")
    net = RecurrentClassifier(lif, "I", 100, args.hidden, 10,
                              params={"taum": 0.01, "taus": 0.005}, dt=dt, seed=args.seed,
                              backend=args.backend)
    trainer = Trainer(net, lr=5e-3, batch_size=32, seed=args.seed)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        h = trainer.fit(x[:, :split], labels[:split], 1)[-1]
        print(f"epoch {h['epoch']}: loss {h['loss']:.3f}, train accuracy {h['accuracy']:.3f} "
              f"({h['seconds']:.1f} s)")
    train_s = time.perf_counter() - t0
    test_acc = float(np.mean(net.predict(x[:, split:]) == labels[split:]))
    print(f"test accuracy {test_acc:.3f} after {args.epochs} epochs, {train_s:.1f} s")
    summary = {"test_accuracy": round(test_acc, 4), "epochs": args.epochs,
               "train_s": round(train_s, 2), "hidden": args.hidden}
    return report(summary, args.json)


if __name__ == "__main__":
    main()
