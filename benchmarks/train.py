"""T1 (BENCHMARKS.md): one surrogate-gradient BPTT training iteration of a recurrent LIF
network, snngen (compiled BPTT, Numba) side by side with a plain PyTorch implementation.

700 inputs (p = 0.02 per step), H recurrent LIF neurons with exponential synaptic current
(dt 1 ms, tau_syn 5 ms, tau_mem 10 ms, threshold 1, reset to zero), 20 leaky readouts,
T = 100, batch 32, cross-entropy over the max of the readout, fast sigmoid (beta 10), Adam.
Each implementation runs in its own process; one JSON line per run. Both sides train in
float32.

    python benchmarks/train.py --impl snngen,torch --H 256,1024 --density 1,0.01 [--json F]
    python benchmarks/train.py --impl snngen-T2 --H 100000 --iters 3      # T2
    python benchmarks/train.py --impl snngen-ckpt10,torch --H 4096        # checkpoints every 10
    python benchmarks/train.py --impl snngen-cuda,torch --H 4096 --device cuda   # on a GPU
    python benchmarks/train.py --impl snngen-ckpt20 --H 1024 --density 1 --profile
    python benchmarks/train.py --impl snngen-ckpt10,torch,snntorch,norse --H 1024 --density 1 \
        --rounds 6
    python benchmarks/train.py --impl snngen-ckpt10,torch,torch-csr,torch-edges --H 1024 \
        --density 0.01

``snngen-network`` (``-par``: with ``parallel=True``) trains the same network declared with
``sg.Network`` through ``sg.BPTT`` instead of the built-in ``RecurrentClassifier``.

Peers: ``torch`` (plain PyTorch; at density < 1 a dense matrix times a fixed mask),
``torch-csr`` and ``torch-edges`` (plain PyTorch with sparse recurrent weights, density < 1
only: a CSR matrix rebuilt every iteration from the trained values, or an edge list with
``index_add``), ``snntorch`` (``RSynaptic``) and ``norse`` (``LIFRecurrent``), both dense only.

--profile (Numba snngen rows): the row gains "profile", the median seconds per measured
iteration spent in each compiled BPTT kernel (forward, backward, weight_grads), in the whole
BPTT run (kernels plus loss, readout and allocations: "run") and in the optimiser ("step").

--rounds R repeats the whole list R times, interleaved, each row tagged with its round, and
ends with one "summary" line per snngen row: per round, the fastest peer's seconds over
snngen's (speed-up) and snngen's training memory over the smallest peer's, with medians. On a
noisy machine this compares each snngen run with peers measured minutes apart.

--device (default cpu) applies to the plain PyTorch implementation only: parameters are drawn
on the CPU as before and moved, iterations are timed after a synchronisation, and the row
gains "device" and "gpu_max_allocated_mib".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

# measure the checkout this script lives in, not whatever snngen is installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N_IN, N_OUT, T, BATCH, DT = 700, 20, 100, 32, 1e-3
PROFILE = None  # --profile: {name: [seconds of each iteration]}, filled by _profiled


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((T, BATCH, N_IN)) < 0.02).astype(np.float64)
    return x, rng.integers(0, N_OUT, BATCH)


def run_snngen(h, density, iters, fan_in=None, batch=BATCH, backend="numba",
               checkpoint_every=None):
    import snngen as sg
    from snngen.train import RecurrentClassifier, Trainer
    lif = sg.NeuronModel("dv/dt = (I - v) / tmem : 1\ndI/dt = -I / tsyn : 1",
                         threshold="v > 1", reset="v = 0", name="t1_lif")
    x, y = _data()
    x, y = x[:, :batch], y[:batch]
    net = RecurrentClassifier(lif, "I", N_IN, h, N_OUT, params={"tmem": 0.01, "tsyn": 0.005},
                              dt=DT, recurrent_density=density, seed=0, input_fan_in=fan_in,
                              recurrent_fan_in=fan_in, backend=backend,
                              checkpoint_every=checkpoint_every)
    trainer = Trainer(net, lr=1e-3, batch_size=batch)
    if PROFILE is not None and backend == "numba":
        _profiled(net, trainer)
    return _timed(lambda: trainer.fit(x, y, 1), iters)


def run_network(h, density, iters, parallel=False):
    """T1's network declared with ``sg.Network`` and trained by ``sg.BPTT`` (the learning
    pipeline of any declared network), instead of the built-in RecurrentClassifier: the
    same sizes, model, initial weight scales, loss and optimiser."""
    import snngen as sg
    lif = sg.NeuronModel("dv/dt = (I - v) / tmem : 1\ndI/dt = -I / tsyn : 1",
                         threshold="v > 1", reset="v = 0", name="t1_lif")
    leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="t1_leaky")
    x, y = _data()
    net = sg.Network(dt=DT, batch=BATCH, dtype="float32")
    inputs = net.input("x", N_IN)
    hidden = net.population("h", lif, h, params={"tmem": 0.01, "tsyn": 0.005})
    out = net.population("o", leaky, N_OUT, params={"tau": 0.02})
    rec = "all_to_all" if density >= 1 else sg.FixedProbability(density, allow_self=False)
    net.connect(inputs, hidden, "I += w", w=sg.Trainable(sg.Normal(0, 3 / np.sqrt(N_IN))))
    net.connect(hidden, hidden, "I += w", rec,
                w=sg.Trainable(sg.Normal(0, 0.5 / np.sqrt(max(density * h, 1)))))
    net.connect(hidden, out, "v += w", w=sg.Trainable(sg.Normal(0, 1 / np.sqrt(h))))
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(out.v, over="max"),
                  optimizer=sg.Adam(1e-3), parallel=parallel, progress=False)
    return _timed(lambda: fit.fit({"x": x}, y, epochs=1), iters)


def _profiled(net, trainer):
    """Wrap the compiled BPTT kernels, the BPTT run and the optimiser step in timers that
    add to PROFILE[name][-1] (one entry per iteration, opened by _timed)."""
    def timed(name, fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                PROFILE.setdefault(name, [0.0] * len(PROFILE["iteration"]))
                PROFILE[name][-1] += time.perf_counter() - t0
        return call
    for name in ("forward", "backward", "backward_blocks", "weight_grads"):
        setattr(net.bptt.module, name, timed(name, getattr(net.bptt.module, name)))
    net.bptt.run = timed("run", net.bptt.run)
    trainer._step = timed("step", trainer._step)


def run_torch(h, density, iters, device="cpu", sparse=None):
    """Plain PyTorch. At density < 1 the recurrent weights are, by ``sparse``: None, a dense
    matrix times a fixed mask; "csr", a trained vector of the nonzero values from which a
    CSR matrix (of W^T, rows = postsynaptic) is rebuilt every iteration (torch.sparse
    cannot train a sparse leaf: Adam rejects the layout); "edges", the same vector used as
    an edge list, ``index_add`` of the presynaptic spikes times the weights."""
    import torch
    global DTYPE
    DTYPE = torch.float32  # the same precision as snngen's training kernels
    torch.manual_seed(0)
    x_np, y_np = _data()
    # drawn on the CPU (the same numbers on every device), then moved; a no-op on the CPU
    x, y = torch.tensor(x_np, dtype=DTYPE).to(device), torch.tensor(y_np).to(device)
    w_in = torch.nn.Parameter((torch.randn(N_IN, h, dtype=DTYPE) * 3 / N_IN**0.5).to(device))
    mask = (torch.rand(h, h) < density).to(DTYPE).to(device) if density < 1 else None
    w_rec = torch.nn.Parameter((torch.randn(h, h, dtype=DTYPE) * 0.5
                                / max(density * h, 1) ** 0.5).to(device))
    if sparse:  # the nonzero values of the masked matrix, sorted by (post, pre)
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        post, pre = (mask.T != 0).nonzero(as_tuple=True)
        w_rec = torch.nn.Parameter(w_rec.detach().T[post, pre].contiguous())
        crow = torch.zeros(h + 1, dtype=torch.int64, device=device)
        crow[1:] = torch.bincount(post, minlength=h).cumsum(0)
    w_out = torch.nn.Parameter((torch.randn(h, N_OUT, dtype=DTYPE) / h**0.5).to(device))
    opt = torch.optim.Adam([w_in, w_rec, w_out], lr=1e-3)
    a_mem, a_syn, a_out = np.exp(-DT / 0.01), np.exp(-DT / 0.005), np.exp(-DT / 0.02)

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, g):
            ctx.save_for_backward(g)
            return (g > 0).to(DTYPE)

        @staticmethod
        def backward(ctx, grad):
            (g,) = ctx.saved_tensors
            return grad / (10 * g.abs() + 1) ** 2

    def step():
        if sparse == "csr":  # W^T as CSR, rebuilt from the trained values
            wt = torch.sparse_csr_tensor(crow, pre, w_rec, (h, h), check_invariants=False)

            def recurrent(z):
                return torch.sparse.mm(wt, z.T).T
        elif sparse == "edges":
            def recurrent(z):
                return torch.zeros_like(z).index_add(1, post, z[:, pre] * w_rec)
        else:
            wr = w_rec * mask if mask is not None else w_rec

            def recurrent(z):
                return z @ wr
        v = torch.zeros(BATCH, h, dtype=DTYPE, device=device)
        cur = torch.zeros_like(v)
        z = torch.zeros_like(v)
        out = torch.zeros(BATCH, N_OUT, dtype=DTYPE, device=device)
        ys = []
        for xt in x.unbind(0):
            cur = a_syn * (cur + xt @ w_in + recurrent(z))
            v = a_mem * v + (1 - a_mem) * cur
            z = Spike.apply(v - 1)
            v = v * (1 - z)
            out = a_out * out + z @ w_out
            ys.append(out)
        logits = torch.stack(ys).max(0).values
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None
    return _timed(step, iters, sync)


def _peer_loop(module_step, params, h):
    """Shared by the snnTorch and Norse runs: readout, loss, Adam, timing."""
    import torch
    x_np, y_np = _data()
    x, y = torch.tensor(x_np, dtype=torch.float32), torch.tensor(y_np)
    w_out = torch.nn.Parameter(torch.randn(h, N_OUT) / h**0.5)
    opt = torch.optim.Adam(list(params) + [w_out], lr=1e-3)
    a_out = float(np.exp(-DT / 0.02))

    def step():
        spikes = module_step(x)                     # (T, B, H)
        out, ys = torch.zeros(BATCH, N_OUT), []
        for zt in spikes.unbind(0):
            out = a_out * out + zt @ w_out
            ys.append(out)
        loss = torch.nn.functional.cross_entropy(torch.stack(ys).max(0).values, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def run_snntorch(h, density, iters):
    import snntorch as snn
    import torch
    from snntorch import surrogate
    torch.manual_seed(0)
    fc = torch.nn.Linear(N_IN, h, bias=False)
    rsyn = snn.RSynaptic(alpha=float(np.exp(-DT / 0.005)), beta=float(np.exp(-DT / 0.01)),
                         linear_features=h, reset_mechanism="zero",
                         spike_grad=surrogate.fast_sigmoid(slope=10))

    def forward(x):
        spk, syn, mem = rsyn.init_rsynaptic()
        out = []
        for xt in x.unbind(0):
            spk, syn, mem = rsyn(fc(xt), spk, syn, mem)
            out.append(spk)
        return torch.stack(out)
    step = _peer_loop(forward, list(fc.parameters()) + list(rsyn.parameters()), h)
    return _timed(step, iters)


def run_norse(h, density, iters):
    import norse.torch as nt
    import torch
    torch.manual_seed(0)
    lif = nt.LIFRecurrent(N_IN, h, p=nt.LIFParameters(
        tau_syn_inv=torch.tensor(200.0), tau_mem_inv=torch.tensor(100.0),
        alpha=torch.tensor(10.0)), dt=DT)

    def forward(x):
        return lif(x)[0]
    step = _peer_loop(forward, list(lif.parameters()), h)
    return _timed(step, iters)


def _timed(step, iters, sync=None):
    """Seconds of each of iters calls of step; sync() (a GPU's) ends each timed call."""
    base = _rss()
    times = []
    for _ in range(iters):
        if PROFILE is not None:  # a new iteration: every timer starts at 0
            PROFILE.setdefault("iteration", [])
            for v in PROFILE.values():
                v.append(0.0)
        if sync:
            sync()
        t0 = time.perf_counter()
        step()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return times, base


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(impl, h, density, iters, device="cpu"):
    if device != "cpu" and impl not in ("torch", "torch-csr", "torch-edges", "snngen-cuda"):
        print(f"{impl}: runs on the CPU only (--device applies to torch); skipping",
              file=sys.stderr)
        return
    extra = {}
    if impl == "snngen-T2":  # T2: fan-in 100 for inputs and recurrence, batch 8
        times, base = run_snngen(h, density, iters, fan_in=100, batch=8)
    elif impl == "snngen-cuda":  # the CUDA backend's BPTT kernels (a GPU, CuPy)
        import cupy
        cupy.cuda.Device().synchronize()
        times, base = run_snngen(h, density, iters, backend="cuda")
        extra = {"device": "cuda", "gpu_pool_total_mib": round(
            cupy.get_default_memory_pool().total_bytes() / 2**20, 1)}
    elif impl.startswith("snngen-ckpt"):  # snngen-ckpt<K>: BPTT with checkpoints every K
        every = int(impl[len("snngen-ckpt"):] or 10)
        times, base = run_snngen(h, density, iters, checkpoint_every=every)
        extra = {"checkpoint_every": every}
    elif impl in ("snngen-network", "snngen-network-par"):  # declared with sg.Network
        times, base = run_network(h, density, iters, parallel=impl.endswith("-par"))
        extra = {"parallel": impl.endswith("-par")}
    elif impl in ("torch-csr", "torch-edges"):  # sparse PyTorch: at density < 1 only
        if density >= 1:
            print(f"{impl}: sparse recurrence only; skipping density {density}",
                  file=sys.stderr)
            return
        times, base = run_torch(h, density, iters, device, sparse=impl[len("torch-"):])
    else:
        fn = {"snngen": run_snngen, "torch": run_torch, "snntorch": run_snntorch,
              "norse": run_norse}[impl]
        if impl in ("snntorch", "norse") and density < 1:
            print(f"{impl}: dense recurrence only; skipping density {density}",
                  file=sys.stderr)
            return
        try:
            if impl == "torch" and device != "cpu":
                import torch
                times, base = fn(h, density, iters, device)
                extra = {"device": device}
                if torch.device(device).type == "cuda":
                    extra["gpu_max_allocated_mib"] = round(
                        torch.cuda.max_memory_allocated() / 2**20, 1)
            else:
                times, base = fn(h, density, iters)
        except ImportError as err:
            print(f"{impl}: not installed ({err}); skipping", file=sys.stderr)
            return
    warm = times[2:] if len(times) > 2 else times
    if PROFILE and len(PROFILE) > 1:  # timers ran (snngen on Numba), not just iterations
        skip = len(times) - len(warm)
        extra["profile"] = {k: round(statistics.median(v[skip:]), 4)
                            for k, v in PROFILE.items() if k != "iteration"}
    name = impl if impl != "torch" else "torch-dense" + ("-masked" if density < 1 else "")
    print(json.dumps({"impl": name, "H": h, "density": density,
                      "iter_s": round(statistics.median(warm), 4),
                      "iter_min_s": round(min(warm), 4), "iters": len(warm),
                      "peak_rss_mib": round(_rss(), 1),
                      "train_mem_mib": round(_rss() - base, 1), **extra}))


def _emit(line: str, path) -> None:
    """Print a JSON line, and append it to ``path`` (--json) if given."""
    print(line, flush=True)
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


PEERS = ("torch", "snntorch", "norse")  # impl names start with these (torch-dense, ...)


def round_ratios(rows) -> list:
    """--rounds: for each snngen row's (impl, H, density), the fastest peer of the same round
    over it (speed-up) and its training memory over the smallest peer's, round by round
    (both sides measured minutes apart, not hours), with the medians: JSON lines."""
    out = []
    keys = sorted({(r["impl"], r["H"], r["density"]) for r in rows
                   if not r["impl"].startswith(PEERS)}, key=str)
    for impl, h, density in keys:
        speed, memory = [], []
        for rnd in sorted({r["round"] for r in rows}):
            same = [r for r in rows if r["round"] == rnd and r["H"] == h
                    and r["density"] == density]
            mine = [r for r in same if r["impl"] == impl]
            peers = [r for r in same if r["impl"].startswith(PEERS)]
            if mine and peers:
                speed.append(round(min(p["iter_s"] for p in peers) / mine[0]["iter_s"], 2))
                memory.append(round(mine[0]["train_mem_mib"]
                                    / min(p["train_mem_mib"] for p in peers), 3))
        if speed:
            out.append(json.dumps({"summary": impl, "H": h, "density": density,
                                   "rounds": len(speed), "speedup": speed,
                                   "speedup_median": round(statistics.median(speed), 2),
                                   "memory_ratio": memory,
                                   "memory_ratio_median": round(statistics.median(memory), 3)}))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="snngen,torch,snntorch,norse")
    parser.add_argument("--H", default="256,1024")
    parser.add_argument("--density", default="1,0.01")
    parser.add_argument("--iters", type=int, default=12, help="2 warm-ups + measured")
    parser.add_argument("--json", help="append the JSON lines to this file")
    parser.add_argument("--device", default="cpu",
                        help="torch device for the plain PyTorch implementation, e.g. cuda")
    parser.add_argument("--profile", action="store_true",
                        help="snngen (Numba) rows: seconds per iteration in each kernel")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the whole list this many times, interleaved (snngen, "
                             "peers, snngen, peers, ...), then print per-round ratios")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        global PROFILE
        PROFILE = {} if args.profile else None
        child(args.child[0], int(args.child[1]), float(args.child[2]), args.iters,
              args.device)
        return
    rows = []
    densities = [float(v) for v in args.density.split(",")]
    cases = [(rnd, h, density, impl) for rnd in range(args.rounds)
             for h in (int(v) for v in args.H.split(",")) for density in densities
             for impl in args.impl.split(",")]
    for rnd, h, density, impl in cases:
        if impl == "snngen-T2" and density != densities[0]:
            continue  # T2 has its own connectivity (fan-in 100): one run
        out = subprocess.run([sys.executable, __file__, "--iters", str(args.iters),
                              "--device", args.device, "--child", impl, str(h),
                              str(density)] + ["--profile"] * args.profile,
                             capture_output=True, text=True, env={**os.environ})
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if "skipping" in out.stderr and not line.startswith("{"):
            print(out.stderr.strip().splitlines()[-1])
            continue
        if out.returncode or not line.startswith("{"):
            print(f"{impl} H={h} density={density}: failed\n{out.stderr[-2000:]}")
            continue
        row = json.loads(line)
        if args.rounds > 1:
            row["round"] = rnd
            line = json.dumps(row)
        rows.append(row)
        _emit(line, args.json)
    if args.rounds > 1:
        for line in round_ratios(rows):
            _emit(line, args.json)
    return rows


if __name__ == "__main__":
    main()
