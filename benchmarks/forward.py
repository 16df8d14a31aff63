"""F1 (benchmarks in /work/shared/BENCHMARKS.md): CUBA forward simulation, snngen vs its peers.

    python benchmarks/forward.py                                  # N = 4000,16000,64000
    python benchmarks/forward.py --n 4000 --repeats 3 --json benchmarks/out/f1.json
    python benchmarks/forward.py --n 256000,1000000 --peers brian2-cpp_standalone --timeout 3600

Every implementation runs as a subprocess that prints one JSON line (see run_json in common.py):
  snngen      `examples/cuba.py --n N --duration D --backend numba --json` (from the repo root):
              once cold (SNNGEN_CACHE_DIR = a fresh temp dir), then --repeats times warm
              (same dir).
  brian2-runtime         benchmarks/peers/brian2_cuba.py in benchmarks/.peers/brian2: once cold
              (a fresh Cython cache dir), then --repeats times warm (same dir).
  brian2-cpp_standalone  the same script; every run compiles a fresh project, --repeats runs.
  nest                   benchmarks/peers/nest_cuba.py in benchmarks/.peers/nest, --repeats runs;
              its p = 80/N wiring takes O(N^2) to build (12 s at 16k): from 64k on, consider
              --nest-args "--rule indegree" (fixed fan-in 80; rate about 5.2 Hz).
cpp_standalone and NEST runs are "fresh" (no cache): their compile time is listed as cold.
Peers whose env is missing are skipped with the reason (make them with
benchmarks/peers/setup_peers.sh). A failing implementation becomes an error row; the rest go on.
The table gives medians over the warm (and fresh) runs; "x snngen" is a peer's run_s median over
snngen's warm run_s median (> 1: snngen is faster). The last stdout line is a JSON summary.
"""

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from common import fmt, machine, median, run_json, table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = {  # name -> (env python, script, fixed args)
    "brian2-runtime": (
        ".peers/brian2",
        "peers/brian2_cuba.py",
        ["--device", "runtime"],
    ),
    "brian2-cpp_standalone": (
        ".peers/brian2",
        "peers/brian2_cuba.py",
        ["--device", "cpp_standalone"],
    ),
    "nest": (".peers/nest", "peers/nest_cuba.py", []),
}


def runs_for(impl, n, args, tmp):
    """The runs of impl at size n: a list of (kind, cmd, env); kind is cold, warm or fresh."""
    common_args = ["--n", str(n), "--duration", str(args.duration)]
    if impl == "snngen":
        cmd = [
            args.python,
            "examples/cuba.py",
            *common_args,
            "--backend",
            "numba",
            "--json",
            *shlex.split(args.snngen_args),
        ]
        # examples/cuba.py must import the snngen of this checkout, installed or not.
        env = {
            "SNNGEN_CACHE_DIR": tempfile.mkdtemp(prefix=f"snngen_{n}_", dir=tmp),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        kinds = ["cold"] + ["warm"] * args.repeats
        return [(k, cmd, env) for k in kinds]
    venv, script, fixed = PEERS[impl]
    cmd = [
        str(BENCH / venv / "bin" / "python"),
        str(BENCH / script),
        *common_args,
        *fixed,
        "--seed",
        str(args.seed),
    ]
    if impl == "brian2-runtime":
        cache = tempfile.mkdtemp(prefix=f"brian2_{n}_", dir=tmp)
        cmd += ["--cache-dir", cache]
        return [(k, cmd, None) for k in ["cold"] + ["warm"] * args.repeats]
    cmd += ["--threads", str(args.threads)]
    if impl == "nest":
        cmd += shlex.split(args.nest_args)
    # No cache: every cpp_standalone run compiles from scratch, NEST compiles nothing.
    return [("fresh", cmd, None)] * args.repeats


def summarise(impl, n, recs, snngen_run):
    """One table row from the records of impl at size n."""
    ok = [r for r in recs if "error" not in r]
    # Timed runs: warm ones, and "fresh" ones of peers that have no cache to warm.
    warm = [r for r in ok if r["kind"] in ("warm", "fresh")]
    # A fresh run compiles from scratch, so its compile time counts as cold.
    cold = [r for r in ok if r["kind"] in ("cold", "fresh")]
    warm_compile = [r for r in ok if r["kind"] == "warm"]
    row = {
        "N": n,
        "impl": impl,
        "runs": f"{len(ok)}/{len(recs)}",
        "run_s": median(r.get("run_s") for r in warm),
        "run_min": min((r["run_s"] for r in warm if r.get("run_s") is not None), default=None),
        "build_s": median(r.get("build_s") for r in warm),
        "compile_cold": median(r.get("compile_s") for r in cold),
        "compile_warm": median(r.get("compile_s") for r in warm_compile),
        # Time to the first step from cold: Brian2 runtime compiles part of it in build_s.
        "setup_cold": median(
            r["build_s"] + r["compile_s"] for r in cold if r.get("build_s") is not None
        ),
        "spikes": median(r.get("spikes") for r in warm),
        "rate_hz": median(r.get("mean_rate_hz") for r in warm),
        "rss_mib": max((r["peak_rss_mib"] for r in ok if r.get("peak_rss_mib")), default=None),
        "ext_rss_mib": max((r["ext_rss_mib"] for r in ok), default=None),
    }
    kernels = [median(r.get("compiled_kernels") for r in rs) for rs in (cold, warm_compile)]
    if any(k is not None for k in kernels):  # snngen: kernels compiled, cold/warm
        row["kernels"] = "/".join(fmt(k) for k in kernels)
    if row["spikes"] is not None:
        row["spikes"] = int(row["spikes"])
    if row["run_s"] is not None and snngen_run:
        row["x snngen"] = row["run_s"] / snngen_run
    errors = [r["error"] for r in recs if "error" in r]
    if errors:
        row["error"] = errors[0]
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="4000,16000,64000", help="comma-separated sizes")
    ap.add_argument("--duration", type=float, default=1.0, help="biological time, s")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per implementation")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated; '' for none")
    ap.add_argument("--threads", type=int, default=1, help="cpp_standalone and NEST threads")
    ap.add_argument("--seed", type=int, default=1, help="peers' seed")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--python", default=sys.executable, help="interpreter for snngen")
    ap.add_argument("--snngen-args", default="", help="extra arguments for examples/cuba.py")
    ap.add_argument(
        "--nest-args", default="", help="extra arguments for nest_cuba.py, e.g. '--rule indegree'"
    )
    ap.add_argument("--no-snngen", action="store_true", help="only the peers")
    ap.add_argument("--json", help="write every run's record and the summary here")
    args = ap.parse_args()

    sizes = [int(x) for x in args.n.split(",") if x]
    impls = [] if args.no_snngen else ["snngen"]
    for p in filter(None, args.peers.split(",")):
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
        py = BENCH / PEERS[p][0] / "bin" / "python"
        if py.exists():
            impls.append(p)
        else:
            print(
                f"skip {p}: {py} missing (run benchmarks/peers/setup_peers.sh)",
                flush=True,
            )
    if not args.no_snngen and not (ROOT / "examples" / "cuba.py").exists():
        print(
            "note: examples/cuba.py does not exist; snngen will be an error row",
            flush=True,
        )

    info = machine()
    print(
        f"# F1 CUBA, duration {args.duration} s, {info['date']}, {info['cpu']}, "
        f"{info['cores']} cores, load {info['loadavg']}",
        flush=True,
    )
    records, rows = [], []
    with tempfile.TemporaryDirectory(prefix="f1_") as tmp:
        for n in sizes:
            snngen_run = None
            for impl in impls:
                recs = []
                for kind, cmd, env in runs_for(impl, n, args, tmp):
                    # Other jobs on the machine skew timings: keep the load seen at the start.
                    load = os.getloadavg()[0]
                    if not (ROOT / "examples" / "cuba.py").exists() and impl == "snngen":
                        rec = {
                            "cmd": " ".join(cmd),
                            "error": "examples/cuba.py not found",
                        }
                    else:
                        rec = run_json(cmd, timeout=args.timeout, env=env, cwd=ROOT)
                    rec.update(impl=impl, n=n, kind=kind, loadavg_before=load)
                    recs.append(rec)
                    print(
                        f"  N={n} {impl} {kind}: "
                        + (
                            f"ERROR {rec['error'][:300]}"
                            if "error" in rec
                            else f"run {rec.get('run_s', float('nan')):.3f} s, "
                            f"{rec.get('spikes')} spikes, wall {rec['wall_s']:.1f} s"
                        ),
                        flush=True,
                    )
                    if impl == "snngen" and "error" in rec:
                        break  # no point repeating a broken snngen run
                row = summarise(impl, n, recs, snngen_run)
                if impl == "snngen":
                    snngen_run = row["run_s"]
                records += recs
                rows.append(row)

    cols = [
        "N",
        "impl",
        "runs",
        "run_s",
        "run_min",
        "x snngen",
        "build_s",
        "compile_cold",
        "compile_warm",
        "setup_cold",
        "spikes",
        "rate_hz",
        "rss_mib",
        "ext_rss_mib",
        "kernels",
    ]
    print()
    print(table(rows, cols))
    for r in rows:
        if "error" in r:
            print(f"error N={r['N']} {r['impl']}: {r['error'][:500]}")
    summary = {
        "benchmark": "F1",
        "machine": info,
        "duration": args.duration,
        "repeats": args.repeats,
        "threads": args.threads,
        "results": rows,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**summary, "runs": records}, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
