"""G (benchmarks in /work/shared/BENCHMARKS.md): the GPU benchmarks, for one borrowed H200 run.

    PYTHONPATH=. python benchmarks/gpu.py --out OUT            # the full run, < ~7 minutes
    PYTHONPATH=. python benchmarks/gpu.py --quick --skip-cuda  # dry run without a GPU (numba)
    PYTHONPATH=. python benchmarks/gpu.py --f2-n 500000 --f2-fanin 1000   # a smaller F2

Pieces, in this order, each in its own subprocess (own peak RSS, own timeout; see run_json):
  env   versions, GPU name and memory; compiles snngen's Numba connectivity kernels once so
        that no later build_s includes that compile.
  F1    CUBA (examples/cuba.py --json) at N = 1M, fan-in 80, backend cuda, 1 s: once cold
        (fresh SNNGEN_CACHE_DIR and CUPY_CACHE_DIR), then --f1-repeats times warm (same dirs).
        Then the same network once more in a helper process (this file, --child f1mem) that
        reads the GPU memory (CuPy's default pool, and the device's used memory) after the run.
        Then backend numba at the same N for --numba-duration (0.1 s) of biological time, cold
        then warm, for the ratio cuda / numba per biological second on this machine.
        Synaptic events per second = spikes * 80 / run_s.
  F2    CUBA dynamics at N = --f2-n, fan-in --f2-fanin (FixedProbability(fanin / N)), weights
        scaled by 80 / fanin (1.62 mV and -9 mV times 80/1000 at fan-in 1000), 0.1 s, backend
        cuda (--child f2), with the F1 cuda cache (a warm compile). connect_s: the part of
        build_s spent drawing the synapses (on the GPU with backend cuda; connect_on says
        where). Events are counted exactly: the out-degree of the spiking neuron, summed over
        spikes; events per second = events / run_s.
  T1    snngen's CUDA BPTT (benchmarks/train.py --impl snngen-cuda) and plain PyTorch BPTT
        on the same GPU (--device cuda) at H = --t1-h, dense and 1 % (masked) recurrence.

Every record is one JSON line on stdout (progress goes to stderr); the last line is a summary.
A failing piece becomes a row with "error" and the rest goes on. --budget caps the total wall
time: each piece's timeout is cut to what is left, and pieces that no longer fit are error rows.
--skip-cuda drops the cuda pieces, runs F2 with numba and T1 on the CPU (a dry run); --quick
shrinks every size and duration. The exit status is 1 if any piece is an error row.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, peak_rss_mib, run_json

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CUBA = ROOT / "examples" / "cuba.py"
F1_FAN_IN = 80
MIB = 2**20

# Sizes of the full run and of the --quick dry run; command-line options override them.
PRESETS = {
    "full": dict(f1_n=1_000_000, f1_duration=1.0, f1_repeats=2, numba_duration=0.1,
                 f2_n=1_000_000, f2_fanin=1000, f2_duration=0.1, t1_h=4096, t1_iters=12,
                 budget=400.0),
    "quick": dict(f1_n=20_000, f1_duration=0.1, f1_repeats=1, numba_duration=0.05,
                  f2_n=20_000, f2_fanin=200, f2_duration=0.02, t1_h=128, t1_iters=4,
                  budget=300.0),
}
# Nominal timeouts (s) per piece; each is also cut to the time left in --budget.
TIMEOUTS = {"env": 90, "f1_cold": 150, "f1_warm": 90, "f1mem": 90, "numba_cold": 120,
            "numba_warm": 90, "f2": 240, "t1": 120}


# ---------------------------------------------------------------------------------------------
# children: each prints one JSON line last


def _load_cuba():
    """examples/cuba.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("cuba", CUBA)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _host(x):
    """A NumPy array from a NumPy or CuPy array."""
    import numpy as np
    return x.get() if hasattr(x, "get") else np.asarray(x)


def gpu_memory(prefix="gpu_"):
    """GPU memory of this process: CuPy's default pool (used and held) and the device's used
    memory (all processes; the machine is ours alone). Empty if CuPy has no device."""
    try:
        import cupy
        cupy.cuda.Device().synchronize()
        pool = cupy.get_default_memory_pool()
        free, total = cupy.cuda.runtime.memGetInfo()
    except Exception as err:  # no CuPy, no device, no driver
        return {f"{prefix}mem_error": f"{type(err).__name__}: {err}"[:200]}
    return {f"{prefix}pool_used_mib": round(pool.used_bytes() / MIB, 1),
            f"{prefix}pool_total_mib": round(pool.total_bytes() / MIB, 1),
            f"{prefix}device_used_mib": round((total - free) / MIB, 1),
            f"{prefix}device_total_mib": round(total / MIB, 1)}


def child_env():
    info = {**machine()}
    for pkg in ("cupy", "cupy-cuda13x", "cupy-cuda12x", "torch", "sympy", "jinja2"):
        try:
            info[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import cupy
        rt = cupy.cuda.runtime
        props = rt.getDeviceProperties(0)
        name = props["name"]
        info.update(gpu=name.decode() if isinstance(name, bytes) else str(name),
                    gpu_count=rt.getDeviceCount(),
                    gpu_mem_gib=round(props["totalGlobalMem"] / 2**30, 1),
                    cuda_runtime=rt.runtimeGetVersion(), cuda_driver=rt.driverGetVersion())
    except Exception as err:
        info["gpu_error"] = f"{type(err).__name__}: {err}"[:300]
    t0 = time.perf_counter()
    from snngen import connectivity as conn
    conn.build_csr(conn.FixedProbability(0.05), 300, 300, seed=0)
    info["prewarm_connectivity_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(info))


def child_f1mem(args):
    """CUBA of examples/cuba.py, run in this process so the GPU memory can be read after."""
    cuba = _load_cuba()
    t0 = time.perf_counter()
    net, pop, spikes = cuba.build(args.n)
    t_desc = time.perf_counter() - t0
    sim = net.build(backend=args.backend)
    built = gpu_memory("gpu_built_") if args.backend == "cuda" else {}
    t1 = time.perf_counter()
    sim.run(args.duration)
    run_s = time.perf_counter() - t1
    n_spikes = len(spikes.i)
    rec = {"n": args.n, "duration": args.duration, "backend": args.backend,
           "spikes": n_spikes, "mean_rate_hz": round(n_spikes / (args.n * args.duration), 4),
           "build_s": round(t_desc + sim.build_s, 4), "compile_s": round(sim.compile_s, 4),
           "run_s": round(run_s, 4), "compiled_kernels": sim.compiled_kernels,
           "peak_rss_mib": round(peak_rss_mib(), 1), **built}
    if args.backend == "cuda":
        rec.update(gpu_memory())
    print(json.dumps(rec))


def _connect_on(backend):
    """Where the connectivity was drawn, and the device kernels' one-time compile (or load)."""
    if backend not in ("cuda", "cuda-host"):
        return "host (numba)"
    from snngen.backends.cuda.connect import connector
    mode = "gpu" if backend == "cuda" else "host"
    return (f"{'gpu' if mode == 'gpu' else 'host emulation'}; its kernels compiled or loaded in "
            f"{connector(mode).timings['compile_s']:.3f} s")


def child_f2(args):
    """F2: CUBA dynamics at fan-in args.fanin with weights scaled by 80 / fanin."""
    import numpy as np

    import snngen as sg
    cuba = _load_cuba()
    n, k = args.n, args.fanin
    scale = F1_FAN_IN / k
    t0 = time.perf_counter()
    model = sg.NeuronModel(cuba.LIF, threshold="v > Vt", reset="v = Vr", refractory="5*ms",
                           name="lif")
    net = sg.Network(dt=0.1e-3, seed=args.seed, dtype="float32")
    pop = net.population("P", model, n, params=cuba.PARAMS,
                         init={"v": sg.Uniform(-60e-3, -50e-3)})
    n_exc = int(0.8 * n)
    p = min(1.0, k / n)
    # the names and structure of cuba.build, so the F1 kernel cache is reused
    exc = net.connect(pop[:n_exc], pop, "ge += w", sg.FixedProbability(p),
                      w=1.62e-3 * scale, name="exc")
    inh = net.connect(pop[n_exc:], pop, "gi += w", sg.FixedProbability(p),
                      w=-9e-3 * scale, name="inh")
    spikes = net.monitor_spikes(pop)
    t_desc = time.perf_counter() - t0
    sim = net.build(backend=args.backend)
    built = gpu_memory("gpu_built_") if args.backend == "cuda" else {}
    rss_built = peak_rss_mib()
    t1 = time.perf_counter()
    sim.run(args.duration)
    run_s = time.perf_counter() - t1
    timings = getattr(sim._kernel, "timings", None)
    idx = _host(spikes.i).astype(np.int64)
    n_spikes = int(idx.size)
    # exact events: each spike reaches every synapse of its neuron's row
    events, n_syn, how = 0, 0, "exact (out-degrees of the spiking neurons)"
    try:
        for proj, lo, hi in ((exc, 0, n_exc), (inh, n_exc, n)):
            out_deg = np.diff(_host(sim.connectivity(proj).indptr))
            n_syn += int(out_deg.sum())
            mine = idx[(idx >= lo) & (idx < hi)] - lo
            events += int(out_deg[mine].sum())
    except Exception as err:  # no host CSR from this backend: the expected fan-out
        n_syn = round(p * n * n)
        events = round(n_spikes * n_syn / n)
        how = f"estimate: spikes * p * N ({type(err).__name__}: {err})"[:200]
    rec = {"n": n, "fan_in": k, "p": p, "w_exc_mV": 1.62 * scale, "w_inh_mV": -9 * scale,
           "duration": args.duration, "backend": args.backend, "synapses": n_syn,
           "mean_fan_out": round(n_syn / n, 2), "spikes": n_spikes,
           "mean_rate_hz": round(n_spikes / (n * args.duration), 4),
           "events": events, "events_counted": how,
           "events_per_s": round(events / run_s) if run_s > 0 else None,
           "desc_s": round(t_desc, 4), "build_s": round(sim.build_s, 4),
           "connect_s": round(sim.connect_s, 4), "connect_on": _connect_on(args.backend),
           "compile_s": round(sim.compile_s, 4), "run_s": round(run_s, 4),
           "s_per_bio_s": round(run_s / args.duration, 4),
           "compiled_kernels": sim.compiled_kernels,
           "rss_after_build_mib": round(rss_built, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
           **built}
    if timings:  # CUDA: where the run time went; events per second of kernel time alone
        rec["device_timings"] = {k_: round(v, 4) for k_, v in timings.items()}
        if timings.get("steps_s"):
            rec["events_per_kernel_s"] = round(events / timings["steps_s"])
    if args.backend == "cuda":
        rec.update(gpu_memory())
    print(json.dumps(rec))


# ---------------------------------------------------------------------------------------------
# the driver


class Runner:
    """Runs pieces under one time budget and emits every record."""

    def __init__(self, args):
        self.args = args
        self.t_start = time.perf_counter()
        self.deadline = self.t_start + args.budget
        self.records = []
        self.out = None
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            self.out = Path(args.out) / "gpu_results.jsonl"
            self.out.write_text("")

    def emit(self, rec):
        line = json.dumps(rec)
        print(line, flush=True)
        if self.out:
            with open(self.out, "a") as fh:
                fh.write(line + "\n")
        self.records.append(rec)
        return rec

    def run(self, tags, cmd, timeout_key, env=None):
        """One subprocess piece: its JSON record with tags, or an error row."""
        left = self.deadline - time.perf_counter()
        timeout = min(TIMEOUTS[timeout_key] * self.args.timeout_scale, left)
        label = " ".join(f"{k}={v}" for k, v in tags.items() if k != "label")
        if timeout < 10:
            return self.emit({**tags, "error": f"skipped: {left:.0f} s left of --budget "
                              f"{self.args.budget:.0f} s"})
        log(f"{label}: running (timeout {timeout:.0f} s)")
        full_env = {"PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **(env or {})}
        rec = run_json(cmd, timeout=timeout, env=full_env, cwd=ROOT)
        rec = {**tags, **rec}
        if "error" in rec:
            tail = rec["error"]
            lines = [ln for ln in tail.splitlines() if ln.strip()]
            rec["error"] = (lines[-1] if lines else tail)[:400]
            rec["stderr_tail"] = tail
            log(f"{label}: ERROR {rec['error']}")
        else:
            took = rec.get("run_s", rec.get("iter_s"))
            log(f"{label}: " + (f"run {took} s, " if took is not None else "")
                + f"wall {rec['wall_s']:.1f} s")
        return self.emit(rec)


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def f1_extras(rec):
    """Derived F1 fields: seconds per biological second and synaptic events per second."""
    if "error" not in rec and rec.get("run_s"):
        rec["s_per_bio_s"] = round(rec["run_s"] / rec["duration"], 4)
        rec["events_per_s"] = round(rec["spikes"] * F1_FAN_IN / rec["run_s"])
    return rec


def cuba_runs(r, backend, n, duration, repeats, tmp, cold_key, warm_key):
    """examples/cuba.py once cold and `repeats` times warm; returns (records, cache env)."""
    env = {"SNNGEN_CACHE_DIR": tempfile.mkdtemp(prefix=f"snngen_{backend}_", dir=tmp),
           "CUPY_CACHE_DIR": tempfile.mkdtemp(prefix=f"cupy_{backend}_", dir=tmp)}
    cmd = [r.args.python, str(CUBA), "--n", str(n), "--duration", str(duration),
           "--backend", backend, "--json"]
    recs = []
    for kind in ["cold"] + ["warm"] * repeats:
        tags = {"piece": "F1", "impl": f"snngen-{backend}", "kind": kind}
        if recs and "error" in recs[0]:
            recs.append(r.emit({**tags, "error": "skipped: the cold run failed"}))
            continue
        rec = r.run(tags, cmd, cold_key if kind == "cold" else warm_key, env)
        recs.append(f1_extras(rec))
    return recs, env


def f1_summary(recs):
    ok = [x for x in recs if "error" not in x]
    warm = [x for x in ok if x.get("kind") == "warm"] or ok  # a cold run if nothing else
    cold = [x for x in ok if x.get("kind") == "cold"]
    row = {"runs": f"{len(ok)}/{len(recs)}",
           "run_s": median(x.get("run_s") for x in warm),
           "run_min_s": min((x["run_s"] for x in warm if x.get("run_s")), default=None),
           "s_per_bio_s": median(x.get("s_per_bio_s") for x in warm),
           "compile_cold_s": median(x.get("compile_s") for x in cold),
           "compile_warm_s": median(x.get("compile_s") for x in ok if x.get("kind") == "warm"),
           "build_s": median(x.get("build_s") for x in warm),
           "connect_s": median(x.get("connect_s") for x in warm),
           "spikes": median(x.get("spikes") for x in warm),
           "rate_hz": median(x.get("mean_rate_hz") for x in warm),
           "events_per_s": median(x.get("events_per_s") for x in warm),
           "peak_rss_mib": max((x["peak_rss_mib"] for x in ok if x.get("peak_rss_mib")),
                               default=None),
           "ext_rss_mib": max((x["ext_rss_mib"] for x in ok if x.get("ext_rss_mib")),
                              default=None)}
    errors = [x["error"] for x in recs if "error" in x]
    if errors:
        row["error"] = errors[0]
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write every JSON line to OUT/gpu_results.jsonl")
    ap.add_argument("--quick", action="store_true", help="small sizes: a dry run")
    ap.add_argument("--skip-cuda", action="store_true",
                    help="no cuda pieces: F2 runs with numba, T1 on the CPU")
    ap.add_argument("--cuda-backend", default="cuda",
                    help="backend of the cuda pieces; cuda-host dry-runs them on the CPU")
    ap.add_argument("--skip-numba", action="store_true", help="no F1 numba reference")
    ap.add_argument("--skip-f2", action="store_true")
    ap.add_argument("--skip-t1", action="store_true")
    ap.add_argument("--f1-n", type=int)
    ap.add_argument("--f1-duration", type=float, help="biological seconds, cuda")
    ap.add_argument("--f1-repeats", type=int, help="warm runs after the cold one")
    ap.add_argument("--numba-duration", type=float, help="biological seconds, numba")
    ap.add_argument("--f2-n", type=int)
    ap.add_argument("--f2-fanin", type=int)
    ap.add_argument("--f2-duration", type=float)
    ap.add_argument("--t1-h", type=int)
    ap.add_argument("--t1-big-h", type=int, default=0,
                    help="also snngen's CUDA BPTT at this H with 1 %% recurrence (e.g. 65536), "
                         "3 iterations, last")
    ap.add_argument("--t1-iters", type=int, help="2 warm-ups + measured")
    ap.add_argument("--budget", type=float, help="total wall seconds for all pieces")
    ap.add_argument("--timeout-scale", type=float, default=1.0,
                    help="multiply every piece's nominal timeout")
    ap.add_argument("--python", default=sys.executable)
    # child mode (internal): --child env|f1mem|f2 with --backend/--n/--fanin/--duration
    ap.add_argument("--child", choices=["env", "f1mem", "f2"], help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fanin", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        {"env": lambda a: child_env(), "f1mem": child_f1mem, "f2": child_f2}[args.child](args)
        return
    for key, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    r = Runner(args)
    me = [args.python, str(Path(__file__).resolve())]
    cuda = not args.skip_cuda
    gpu = args.cuda_backend
    f2_backend = gpu if cuda else "numba"
    t1_device = "cuda" if cuda and gpu == "cuda" else "cpu"
    config = {k: getattr(args, k) for k in PRESETS["full"]}
    config.update(quick=args.quick, skip_cuda=args.skip_cuda, cuda_backend=gpu,
                  f2_backend=f2_backend, t1_device=t1_device)
    log(f"G benchmarks: {json.dumps(config)}")
    log(f"F2 as run: N = {args.f2_n}, fan-in {args.f2_fanin} "
        f"(~{args.f2_n * args.f2_fanin:.3g} synapses), {args.f2_duration} s, {f2_backend}")
    env_rec = r.run({"piece": "env"}, [*me, "--child", "env"], "env")

    f1_cuda, f1_numba, mem = [], [], None
    f2, numba_env = None, None
    t1 = []
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        cuda_env = None
        if cuda:
            f1_cuda, cuda_env = cuba_runs(r, gpu, args.f1_n, args.f1_duration,
                                          args.f1_repeats, tmp, "f1_cold", "f1_warm")
            tags = {"piece": "F1", "impl": f"snngen-{gpu}", "kind": "gpu-memory"}
            if f1_cuda and "error" in f1_cuda[0]:
                mem = r.emit({**tags, "error": "skipped: the cold run failed"})
            else:
                mem = f1_extras(r.run(tags, [*me, "--child", "f1mem", "--backend", gpu,
                                             "--n", str(args.f1_n),
                                             "--duration", str(args.f1_duration)],
                                      "f1mem", cuda_env))
        if not args.skip_numba:
            f1_numba, numba_env = cuba_runs(r, "numba", args.f1_n, args.numba_duration, 1,
                                            tmp, "numba_cold", "numba_warm")
        if not args.skip_f2:
            # the F1 cache of the same backend: same structure, so a warm compile
            env = cuda_env if cuda else numba_env
            if env is None:
                env = {"SNNGEN_CACHE_DIR": tempfile.mkdtemp(prefix="snngen_f2_", dir=tmp),
                       "CUPY_CACHE_DIR": tempfile.mkdtemp(prefix="cupy_f2_", dir=tmp)}
            f2 = r.run({"piece": "F2", "impl": f"snngen-{f2_backend}"},
                       [*me, "--child", "f2", "--backend", f2_backend, "--n", str(args.f2_n),
                        "--fanin", str(args.f2_fanin), "--duration", str(args.f2_duration)],
                       "f2", env)
        if not args.skip_t1:
            impls = ["snngen-cuda", "torch"] if t1_device == "cuda" else ["snngen", "torch"]
            for density in (1.0, 0.01):
                for impl in impls:
                    tags = {"piece": "T1", "impl": f"{impl}-{t1_device}", "H": args.t1_h,
                            "density": density}
                    t1.append(r.run(tags, [args.python, str(BENCH / "train.py"), "--iters",
                                           str(args.t1_iters), "--device", t1_device,
                                           "--child", impl, str(args.t1_h), str(density)],
                                    "t1"))
            if args.t1_big_h and t1_device == "cuda":
                tags = {"piece": "T1", "impl": "snngen-cuda-cuda", "H": args.t1_big_h,
                        "density": 0.01}
                t1.append(r.run(tags, [args.python, str(BENCH / "train.py"), "--iters", "3",
                                       "--device", "cuda", "--child", "snngen-cuda",
                                       str(args.t1_big_h), "0.01"], "t1"))

    summary = {"summary": "G", "machine": {k: v for k, v in env_rec.items()
                                          if k not in ("cmd", "wall_s", "rc", "piece")},
               "config": config, "wall_s": round(time.perf_counter() - r.t_start, 1),
               "errors": sum("error" in x for x in r.records)}
    if "error" in env_rec:
        summary["machine"] = {**machine(), "env_error": env_rec["error"]}
    if f1_cuda:
        row = f1_summary(f1_cuda)
        if mem is not None:
            row.update({k: v for k, v in mem.items() if k.startswith("gpu_")})
        summary["F1_cuda"] = {"n": args.f1_n, "duration": args.f1_duration, **row}
    if f1_numba:
        summary["F1_numba"] = {"n": args.f1_n, "duration": args.numba_duration,
                               **f1_summary(f1_numba)}
    c = summary.get("F1_cuda", {}).get("s_per_bio_s")
    nb = summary.get("F1_numba", {}).get("s_per_bio_s")
    if c and nb:
        summary["F1_ratio"] = {"cuda_over_numba_per_bio_s": round(c / nb, 5),
                               "speedup_cuda_vs_numba": round(nb / c, 3)}
    if f2 is not None:
        keys = ("n", "fan_in", "synapses", "mean_fan_out", "backend", "duration", "run_s",
                "s_per_bio_s", "events", "events_per_s", "spikes", "mean_rate_hz", "build_s",
                "connect_s", "connect_on", "compile_s", "peak_rss_mib", "ext_rss_mib",
                "gpu_pool_total_mib", "gpu_device_used_mib", "error")
        summary["F2"] = {k: f2[k] for k in keys if k in f2}
        summary["F2"].setdefault("n", args.f2_n)
        summary["F2"].setdefault("fan_in", args.f2_fanin)
    if t1:
        summary["T1"] = [
            {k: x[k] for k in ("impl", "H", "density", "iter_s", "iter_min_s", "peak_rss_mib",
                               "gpu_max_allocated_mib", "gpu_pool_total_mib", "error")
             if k in x} for x in t1]
    r.emit(summary)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
