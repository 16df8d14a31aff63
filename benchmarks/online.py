"""Online rules against BPTT on the same network at growing sequence length T: time per step
and peak memory (issue 4's benchmark). Methods: eprop, rflo, bptt (snngen's NumPy
references: snngen.derive.online, snngen.derive.reference) and RULE-compiled, bptt-compiled
(the Numba kernels: snngen.train.online.CompiledEprop for RULE in eprop, ostl, rflo,
superspike, decolle; snngen.train.bptt.CompiledBPTT, event path, loss on spikes).
RULE-compiled-per_synapse forces the per-synapse eligibility layout where the compiler would
factorise (decolle on this LIF). Compare references with references and kernels with kernels.

    python benchmarks/online.py                       # T = 100, 1000, 10000; n = 20
    python benchmarks/online.py --methods eprop-compiled,bptt-compiled --n 200 --T 100,10000
    python benchmarks/online.py --methods decolle-compiled,decolle-compiled-per_synapse \
        --n 800 --T 1000                              # check 5: eligibility O(n) vs O(n^2)

    python benchmarks/online.py --peer braintrace --graph one,two --T 1000   # sg.Online
        # against braintrace's e-prop (benchmarks/peers/braintrace_eprop.py, in its own env
        # benchmarks/.peers/braintrace): seconds per sequence, interleaved, medians

Each (method, T) runs in its own process; memory is the peak RSS minus the RSS after set-up
(data and model), so what grows is what the method keeps. One JSON line per run.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

# measure the checkout this script lives in, not whatever snngen is installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import run_json


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, steps: int, n: int, n_in: int):
    import snngen as sg
    from snngen.derive import derive
    from snngen.derive.online import eprop, rtrl
    from snngen.derive.reference import bptt
    from snngen.integrate import discretise
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = v - 1", name="online_bench_lif")
    lm = derive(discretise(lif), inputs=["I"], surrogate="fast_sigmoid")
    rng = np.random.default_rng(0)
    params = {"taum": np.full(n, 0.02), "taus": np.full(n, 0.005)}
    x = (rng.random((steps, n_in)) < 0.05).astype(float)
    w_in = rng.normal(0, 2 / np.sqrt(n_in), (n_in, n))
    w_rec = rng.normal(0, 0.5 / np.sqrt(n), (n, n))
    w_out = rng.normal(0, 1 / np.sqrt(n), (n, 1))
    target = np.sin(np.arange(steps) * 2e-3 * np.pi)[:, None]
    kappa, s0, dt = float(np.exp(-1 / 20)), np.zeros((n, 2)), 1e-3
    if "-compiled" in method:
        return _compiled(method, lm, params, x, w_in, w_rec, w_out, target, kappa, dt, steps,
                         n, n_in)
    # warm the lambdified step on a short run, then measure
    eprop(lm, params, s0, x[:5], w_in, w_rec, dt, w_out, kappa, target[:5])
    base = _rss_mib()
    t0 = time.perf_counter()
    if method in ("eprop", "ostl", "rflo", "superspike", "decolle"):
        eprop(lm, params, s0, x, w_in, w_rec, dt, w_out, kappa, target, rule=method)
    elif method not in ("bptt", "rtrl"):
        raise SystemExit(f"unknown method {method!r}")
    else:
        def readout_grad(t, s, z):  # the readout error at t alone: enough to time BPTT
            return 0.0, np.zeros_like(s), np.zeros_like(z)
        (bptt if method == "bptt" else rtrl)(lm, params, s0, x, w_in, w_rec, dt, readout_grad)
    wall = time.perf_counter() - t0
    print(json.dumps({"method": method, "T": steps, "n": n, "n_in": n_in,
                      "s_per_step": round(wall / steps, 6), "compute_s": round(wall, 3),
                      "mem_mib": round(_rss_mib() - base, 2),
                      "peak_rss_mib": round(_rss_mib(), 1)}))


def _compiled(method, lm, params, x, w_in, w_rec, w_out, target, kappa, dt, steps, n, n_in):
    from snngen import connectivity as conn
    from snngen.train.bptt import CompiledBPTT
    from snngen.train.online import CompiledEprop
    in_csr = conn.build_csr(conn.AllToAll(), n_in, n, 0)
    rec_csr = conn.build_csr(conn.AllToAll(), n, n, 1)
    w_in_c, w_rec_c = w_in.reshape(-1), w_rec.reshape(-1)  # all-to-all: row-major order
    xb, tb = x[:, None, :], target[:, None, :]
    extra = {}
    if method != "bptt-compiled":
        rule, _, layout = method.partition("-compiled")
        kernel = CompiledEprop(lm, "float64")

        def go(xs, ts):
            st = kernel.state(params, dt, 1, n, in_csr, rec_csr, 1, rule=rule,
                              layout=layout.lstrip("-") or "auto")
            kernel.step(st, xs, ts, in_csr, w_in_c, rec_csr, w_rec_c, w_out, kappa)
            extra.update(layout=st.layout,
                         eligibility_mib=round(st.eligibility_bytes() / 2**20, 3))
    else:
        kernel = CompiledBPTT(lm, "float64")

        def go(xs, ts):
            def loss_fn(states, spikes):
                return 0.0, None, np.zeros_like(spikes)
            kernel.run(params, np.zeros((1, n, 2)), xs, in_csr, w_in_c, rec_csr, w_rec_c, dt,
                       loss_fn, dense=False, states_needed=False)
    go(xb[:5], tb[:5])  # compile (or load) first
    base = _rss_mib()
    t0 = time.perf_counter()
    go(xb, tb)
    wall = time.perf_counter() - t0
    print(json.dumps({"method": method, "T": steps, "n": n, "n_in": n_in,
                      "s_per_step": round(wall / steps, 7), "compute_s": round(wall, 4),
                      "mem_mib": round(_rss_mib() - base, 2),
                      "peak_rss_mib": round(_rss_mib(), 1), **extra}))


def network(graph: str, steps: int, repeats: int):
    """sg.Online (e-prop, its defaults) on a declared network, the peer comparison's task:
    100 Poisson inputs (5 %), current-based LIF (taum 20 ms, taus 5 ms, reset by
    subtraction), a leaky readout fitting sin(2 pi t) with the per-step MSE, batch 16,
    float32, Adam (1e-3) once per sequence. ``one``: x -> h (256, recurrent, one step of
    delay) -> o; ``two``: x -> h1 (128, recurrent) -> h2 (128, recurrent), h1 and h2 -> o.
    Weights N(0, 1) into the hidden populations (the peer runs with --w-in 1.0: every
    population fires, at 40-60 Hz), N(0, 0.03) recurrent, N(0, 0.06) into the readout."""
    import snngen as sg
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v -= 1", name="online_peer_lif")
    leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="online_peer_readout")
    net = sg.Network(dt=1e-3, batch=16, dtype="float32", seed=0)
    x = net.input("x", 100)
    o = net.population("o", leaky, 1, params={"tau": 0.02})
    sizes = [256] if graph == "one" else [128, 128]
    pre = x
    for k, n in enumerate(sizes):
        h = net.population(f"h{k}", lif, n, params={"taum": 0.02, "taus": 0.005})
        net.connect(pre, h, "I += w", w=sg.Trainable(sg.Normal(0, 1.0)))
        net.connect(h, h, "I += w", w=sg.Trainable(sg.Normal(0, 0.03)), delay="1*ms")
        net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0, 0.06)))
        pre = h
    fit = sg.Online(net, sg.losses.mse(o.v), rule="eprop", optimizer=sg.Adam(1e-3),
                    progress=False)
    rng = np.random.default_rng(0)
    data = {"x": (rng.random((steps, 16, 100)) < 0.05).astype(np.float32)}
    target = np.broadcast_to(np.sin(2 * np.pi * np.arange(steps) * 1e-3)[:, None, None],
                             (steps, 16, 1)).copy()

    def sequence():
        loss, grads = fit.loss_and_grads(data, target)
        fit.step(grads)
        return loss
    sequence()  # compile (or load from the cache) and warm up
    base = _rss_mib()
    times, losses = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        losses.append(round(float(sequence()), 6))
        times.append(round(time.perf_counter() - t0, 4))
    print(json.dumps({"peer": "snngen", "algorithm": "sg.Online eprop", "graph": graph,
                      "T": steps, "batch": 16, "n_hidden": sum(sizes),
                      "median_s_per_sequence": float(np.median(times)), "times": times,
                      "losses": losses, "layout": fit.layout(),
                      "mem_mib": round(_rss_mib() - base, 2)}))


def peers(args):
    """snngen and the peer on each graph, interleaved, each run in its own process."""
    here = os.path.dirname(os.path.abspath(__file__))
    peer_py = os.path.join(here, ".peers", "braintrace", "bin", "python")
    rows = []
    for graph in args.graph.split(","):
        for steps in (int(v) for v in args.T.split(",")):
            for _ in range(args.rounds):
                for who, cmd in (
                        ("snngen", [sys.executable, __file__, "--network", graph, str(steps),
                                    "--repeats", str(args.repeats)]),
                        ("braintrace", [peer_py, os.path.join(here, "peers",
                                                              "braintrace_eprop.py"),
                                        "--graph", graph, "--T", str(steps), "--repeats",
                                        str(args.repeats), "--w-in", "1.0"])):
                    _keep(run_json(cmd), f"{who} {graph} T={steps}", rows, args.json)
    return rows


def _keep(rec: dict, label: str, rows: list, path: str | None) -> None:
    """Print one run's JSON line (or why it failed), keep it in ``rows`` and ``path``."""
    if "error" in rec:
        print(f"{label}: failed: {rec['error']}")
        return
    line = json.dumps(rec)
    print(line, flush=True)
    rows.append(rec)
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", default="100,1000,10000")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--n-in", type=int, default=20)
    ap.add_argument("--methods", default="eprop,rflo,bptt")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--peer", choices=["braintrace"], help="compare sg.Online with a peer")
    ap.add_argument("--graph", default="one,two", help="with --peer: one, two or both")
    ap.add_argument("--repeats", type=int, default=3, help="timed sequences per process")
    ap.add_argument("--rounds", type=int, default=2, help="with --peer: interleaved rounds")
    ap.add_argument("--network", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.network:
        return network(args.network[0], int(args.network[1]), args.repeats)
    if args.peer:
        return peers(args)
    if args.child:
        return child(args.child[0], int(args.child[1]), args.n, args.n_in)
    rows = []
    for steps in (int(v) for v in args.T.split(",")):
        for method in args.methods.split(","):
            _keep(run_json([sys.executable, __file__, "--n", str(args.n), "--n-in",
                             str(args.n_in), "--child", method, str(steps)]),
                  f"{method} T={steps}", rows, args.json)
    return rows


if __name__ == "__main__":
    main()
