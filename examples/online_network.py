"""Train a network declared with sg.Network online (e-prop and the other rules of sg.Online)
on a 10-class Randman task.

Two hidden populations of different neuron models (a LIF with reset by subtraction,
recurrent with a one-step delay; an adaptive LIF fed by it with a delay of 2 ms), both
projecting into a leaky readout, with a skip projection from the input: every eligibility
trace comes from the declared equations (snngen.derive.online_network). The loss is the
readout's cross-entropy at every step; gradients are formed online, step by step, and
applied once per batch.

    python examples/online_network.py [--rule eprop] [--epochs 10] [--json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import snngen as sg
from snngen.datasets import randman
from snngen.train import spike_raster
from snngen.train.report import report


def build(seed: int, batch: int):
    lif = sg.NeuronModel("""
        dv/dt = (I - v) / tau : 1
        dI/dt = -I / taus : 1
    """, threshold="v > 1", reset="v -= 1", name="lif_sub")
    adaptive = sg.NeuronModel("""
        dv/dt = (J - v - b) / tau : 1
        dJ/dt = -J / taus : 1
        db/dt = -b / taub : 1
    """, threshold="v > 1", reset="v -= 1; b += 0.1", name="adaptive_sub")
    leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="readout")
    net = sg.Network(dt=1e-3, batch=batch, seed=seed)
    x = net.input("x", 100)
    h1 = net.population("h1", lif, 96, params={"tau": 0.02, "taus": 0.005})
    h2 = net.population("h2", adaptive, 48, params={"tau": 0.02, "taus": 0.005,
                                                     "taub": 0.1})
    o = net.population("o", leaky, 10, params={"tau": 0.02})
    net.connect(x, h1, "I += w", w=sg.Trainable(sg.Normal(0.0, 0.35)), name="in")
    net.connect(h1, h1, "I += w", w=sg.Trainable(sg.Normal(0.0, 0.05)), delay="1*ms",
                name="rec")
    net.connect(h1, h2, "J += w", w=sg.Trainable(sg.Normal(0.0, 0.3)), delay="2*ms",
                name="ff")
    net.connect(h1, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.1)), name="out1")
    net.connect(h2, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.1)), name="out2")
    net.connect(x, o, "v += w", w=sg.Trainable(0.0), name="skip")
    return net, o


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="eprop")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--samples-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    steps = 100
    times, _, labels = randman(classes=10, channels=100, duration=0.08, seed=args.seed,
                               samples_per_class=args.samples_per_class)
    x = spike_raster(times, 1e-3, steps)
    split = int(0.8 * len(labels))
    net, o = build(args.seed, batch=32)
    fit = sg.Online(net, loss=sg.losses.cross_entropy(o.v, over="each"), rule=args.rule,
                    optimizer=sg.Adam(args.lr), clip=5.0)
    print(fit.plan)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        e0 = time.perf_counter()
        h = fit.fit({"x": x[:, :split]}, labels[:split], epochs=1)[-1]
        print(f"epoch {epoch}: loss {h['loss']:.3f} ({time.perf_counter() - e0:.1f} s)")
    train_s = time.perf_counter() - t0
    test_acc = float(np.mean(fit.predict({"x": x[:, split:]}) == labels[split:]))
    print(f"test accuracy {test_acc:.3f} after {args.epochs} epochs, {train_s:.1f} s")
    summary = {"rule": args.rule, "test_accuracy": round(test_acc, 4),
               "epochs": args.epochs, "train_s": round(train_s, 2)}
    return report(summary, args.json)


if __name__ == "__main__":
    main()
