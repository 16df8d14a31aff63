"""F1 peer: Brian2's CUBA network (Vogels & Abbott 2005, as in Brian2's CUBA example).

Run inside the Brian2 peer env (made by benchmarks/peers/setup_peers.sh):

    benchmarks/.peers/brian2/bin/python benchmarks/peers/brian2_cuba.py --n 4000 --duration 1
    benchmarks/.peers/brian2/bin/python benchmarks/peers/brian2_cuba.py --n 4000 \
        --device cpp_standalone --threads 1

The last stdout line is one JSON object. Timings (seconds, wall clock):
  build_s    Python-side network construction (runtime: includes executing `connect`, whose
             Cython code Brian2 compiles on the spot; cpp_standalone: only records the calls).
  compile_s  runtime: a `run(0 ms)` that generates and compiles (or loads from the Cython
             cache) every code object; cpp_standalone: code generation + `make` (device.build).
  run_s      runtime: wall time of `net.run(duration)` after that warm-up, less its
             `before_run` (re-creating code objects; reported as run_setup_s);
             cpp_standalone: `device._last_run_time`, the C++ Network::run loop's own clock
             (excludes synapse creation and writing results, which binary_s includes).
  total_s    construction to the end (Python imports excluded, reported as import_s).
Connectivity follows Brian2's example: each pair (i, j) with i < 0.8 N (excitatory) or
i >= 0.8 N (inhibitory) is connected with p = 80/N, self-connections included.
peak_rss_mib = max(ru_maxrss(self), ru_maxrss(children)), both also given alone. Not their sum:
a forked child's ru_maxrss starts at the parent's RSS, so the sum double counts (children are
g++ and, for cpp_standalone, the simulation binary).
"""

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time


def rss_mib():
    """Peak RSS of this process and of its largest child so far, in MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--duration", type=float, default=1.0, help="biological time, s")
    ap.add_argument("--device", choices=["runtime", "cpp_standalone"], default="runtime")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="cpp_standalone OpenMP threads (1: serial code, no OpenMP)",
    )
    ap.add_argument("--cache-dir", help="runtime: Cython cache dir (a fresh one = cold compile)")
    args = ap.parse_args()

    t_import = time.perf_counter()
    import brian2 as b2
    from brian2 import ms, mV, second

    import_s = time.perf_counter() - t_import
    standalone = args.device == "cpp_standalone"
    if standalone:
        workdir = tempfile.mkdtemp(prefix="brian2_cuba_")  # fresh per run: no stale builds
        b2.set_device("cpp_standalone", directory=workdir, build_on_run=False)
        # openmp_threads = 0 builds plain serial code; 1 would build OpenMP code run by 1 thread.
        b2.prefs.devices.cpp_standalone.openmp_threads = args.threads if args.threads > 1 else 0
    else:
        # Insist on Cython: a silent fallback to the numpy target would time something else.
        b2.prefs.codegen.target = "cython"
        if args.cache_dir:
            b2.prefs.codegen.runtime.cython.cache_dir = args.cache_dir

    t0 = time.perf_counter()
    b2.seed(args.seed)
    b2.defaultclock.dt = 0.1 * ms
    n = args.n
    n_exc = int(0.8 * n)
    p = 80.0 / n  # fixed mean fan-in of 80 at every N
    namespace = {
        "taum": 20 * ms,
        "taue": 5 * ms,
        "taui": 10 * ms,
        "Vt": -50 * mV,
        "Vr": -60 * mV,
        "El": -49 * mV,
        "we": (60 * 0.27 / 10) * mV,  # 1.62 mV
        "wi": (-20 * 4.5 / 10) * mV,  # -9 mV
        "n_exc": n_exc,
        "p": p,
    }
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = b2.NeuronGroup(
        n,
        eqs,
        threshold="v>Vt",
        reset="v = Vr",
        refractory=5 * ms,
        method="exact",
        namespace=namespace,
    )
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    Ce = b2.Synapses(P, P, on_pre="ge += we", namespace=namespace)
    Ci = b2.Synapses(P, P, on_pre="gi += wi", namespace=namespace)
    Ce.connect("i < n_exc", p=p)
    Ci.connect("i >= n_exc", p=p)
    mon = b2.SpikeMonitor(P)
    net = b2.Network(P, Ce, Ci, mon)
    build_s = time.perf_counter() - t0

    extra = {}
    if standalone:
        net.run(args.duration * second)  # only recorded; runs in the binary
        t1 = time.perf_counter()
        b2.device.build(directory=workdir, compile=True, run=False, with_output=False)
        compile_s = time.perf_counter() - t1
        rss_kids_compile = rss_mib()[1]
        t2 = time.perf_counter()
        b2.device.run(directory=workdir, with_output=False)
        extra["binary_s"] = time.perf_counter() - t2
        run_s = float(b2.device._last_run_time)
        extra["rss_children_compile_mib"] = rss_kids_compile
        extra["openmp_threads"] = args.threads
    else:
        t1 = time.perf_counter()
        net.run(0 * ms)  # generates/compiles all code objects; advances no time step
        compile_s = time.perf_counter() - t1
        # Every run() first re-creates its code objects (before_run: 0.1-0.3 s at N = 4000,
        # with all Cython cached); time that apart so run_s is the time-step loop itself.
        setup = []
        before_run = net.before_run

        def timed_before_run(namespace):
            ts = time.perf_counter()
            before_run(namespace)
            setup.append(time.perf_counter() - ts)

        net.before_run = timed_before_run
        t2 = time.perf_counter()
        net.run(args.duration * second)
        extra["run_setup_s"] = sum(setup)
        run_s = time.perf_counter() - t2 - extra["run_setup_s"]
    spikes = int(mon.num_spikes)
    total_s = time.perf_counter() - t0
    n_syn = int(len(Ce) + len(Ci))
    own, kids = rss_mib()
    rec = {
        "impl": f"brian2-{args.device}",
        "n": n,
        "duration": args.duration,
        "spikes": spikes,
        "mean_rate_hz": spikes / n / args.duration,
        "synapses": n_syn,
        "build_s": build_s,
        "compile_s": compile_s,
        "run_s": run_s,
        "total_s": total_s,
        "import_s": import_s,
        **extra,
        "peak_rss_mib": max(own, kids),
        "rss_self_mib": own,
        "rss_children_mib": kids,
        "seed": args.seed,
        "brian2": b2.__version__,
        "python": sys.version.split()[0],
    }
    print(json.dumps(rec))
    if standalone:  # its objects, binary and spike arrays are large at big N
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
