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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", default="100,1000,10000")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--n-in", type=int, default=20)
    ap.add_argument("--methods", default="eprop,rflo,bptt")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]), args.n, args.n_in)
    rows = []
    for steps in (int(v) for v in args.T.split(",")):
        for method in args.methods.split(","):
            rec = run_json([sys.executable, __file__, "--n", str(args.n), "--n-in",
                            str(args.n_in), "--child", method, str(steps)])
            if "error" in rec:
                print(f"{method} T={steps}: failed: {rec['error']}")
                continue
            line = json.dumps(rec)
            print(line, flush=True)
            rows.append(rec)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(line + "\n")
    return rows


if __name__ == "__main__":
    main()
