"""The long fuzz run of issue 18: the properties of ``tests/test_fuzz.py`` in child processes.

Each batch runs one property for ``--batch`` hypothesis examples with a fresh seed in a child
process, which writes one JSON line before and one after every case (``tests/fuzz/harness.py``,
``SNNGEN_FUZZ_LOG``). This process reads those lines and counts:

- cases: examples actually executed (an ``end`` line), plus cases that hung or crashed;
- non-snngen exceptions (and valid inputs rejected), by type and entry point, deduplicated by
  (entry point, type, innermost snngen frame) with one example input each;
- hangs: a case that started more than ``--hang`` seconds (20) ago without ending: the child is
  killed (its whole process group) and the next batch starts a new one;
- crashes: a child that died (a signal: segfault, abort; or an exit) in the middle of a case.

Usage::

    SNNGEN_TEST_CACHE=/tmp/cache python benchmarks/fuzz.py --cases 20000 --json fuzz.json

Before its first case each child warms up (builds the fixed structures once, so a cold cache
compiles outside the watchdog). ``--max-seconds`` stops starting batches after that time: the
summary is then of the cases that ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
#: Relative share of the cases per property (default 1): the slow ones get fewer.
WEIGHTS = {"test_build_and_run": 0.6, "test_trainer": 0.5, "test_bptt": 0.5,
           "test_checkpoint_load": 0.5,
           "test_online": 0.5, "test_cache_cli": 0.3, "test_checkpoint_save": 0.05,
           "test_show": 0.1, "test_cache_damaged_entry": 0.003}


def properties() -> list[str]:
    text = (TESTS / "test_fuzz.py").read_text()
    return re.findall(r"^def (test_\w+)\(", text, flags=re.M)


# -- child ----------------------------------------------------------------------------------

def child(name: str, seed: int) -> int:
    sys.path.insert(0, str(TESTS))
    if "SNNGEN_TEST_CACHE" in os.environ:
        os.environ["SNNGEN_CACHE_DIR"] = os.environ["SNNGEN_TEST_CACHE"]
    import hypothesis
    import test_fuzz
    from fuzz import harness
    test_fuzz.warm_up(name)
    harness._write({"ev": "ready", "t": time.time()})
    test = hypothesis.seed(seed)(getattr(test_fuzz, name))
    try:
        test()
    except BaseException as exc:  # a skip, or an error outside attempt(): the parent reports
        if type(exc).__name__ != "Skipped":
            raise
    harness._write({"ev": "done", "t": time.time()})
    return 0


# -- parent ---------------------------------------------------------------------------------

class Tally:
    """Everything counted so far."""

    def __init__(self):
        self.cases = 0
        self.by_entry = defaultdict(Counter)
        self.failures: dict[tuple, dict] = {}
        self.hangs: list[dict] = []
        self.crashes: list[dict] = []
        self.child_errors: list[dict] = []
        self.batches = 0

    def end(self, ev: dict):
        self.cases += 1
        self.by_entry[ev["entry"]]["cases"] += 1
        self.by_entry[ev["entry"]][ev["outcome"]] += 1
        if ev["outcome"] in ("other", "rejected", "hang"):
            key = (ev["entry"], ev["outcome"], ev["type"], ev["where"])
            if key in self.failures:
                self.failures[key]["count"] += 1
            else:
                self.failures[key] = {"entry": ev["entry"], "outcome": ev["outcome"],
                                      "type": ev["type"], "where": ev["where"],
                                      "message": ev["message"], "input": ev["input"],
                                      "count": 1}
            if ev["outcome"] == "hang":
                self.hangs.append({"entry": ev["entry"], "input": ev["input"],
                                   "how": "in-process alarm"})

    def summary(self, seconds: float, target: int) -> dict:
        other = [f for f in self.failures.values() if f["outcome"] == "other"]
        by_type, by_entry = Counter(), Counter()
        for f in other:
            by_type[f["type"]] += f["count"]
            by_entry[f["entry"]] += f["count"]
        rejected = sum(f["count"] for f in self.failures.values() if f["outcome"] == "rejected")
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True).stdout.strip() or os.environ.get(
                "SNNGEN_FUZZ_COMMIT", "unknown (not a git checkout)")
        except OSError:
            commit = "?"
        return {
            "commit": commit, "target_cases": target, "cases": self.cases,
            "seconds": round(seconds, 1), "batches": self.batches,
            "non_snngen_exceptions": sum(by_type.values()),
            "non_snngen_by_type": dict(by_type.most_common()),
            "non_snngen_by_entry": dict(by_entry.most_common()),
            "valid_inputs_rejected": rejected,
            "hangs": len(self.hangs), "crashes": len(self.crashes),
            "child_errors": len(self.child_errors),
            "by_entry": {k: dict(v) for k, v in sorted(self.by_entry.items())},
            "distinct_failures": sorted(self.failures.values(),
                                        key=lambda f: (f["entry"], -f["count"])),
            "hang_cases": self.hangs, "crash_cases": self.crashes,
            "child_error_details": self.child_errors,
        }


def run_batch(name: str, n: int, seed: int, tally: Tally, hang_s: float,
              env: dict) -> tuple[int, bool]:
    """One child process: ``n`` examples of property ``name``. Returns the cases it ran and
    whether the child finished its batch."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        log = Path(fh.name)
    err = tempfile.TemporaryFile("w+")
    cenv = dict(env, SNNGEN_FUZZ_LOG=str(log), SNNGEN_FUZZ_EXAMPLES=str(n))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", name,
                             "--seed", str(seed)], env=cenv, stdout=subprocess.DEVNULL,
                            stderr=err, start_new_session=True)
    pos, buf, open_case, ready, done, ran = 0, "", None, False, False, 0
    t_start = time.time()
    killed = None

    def read_events():
        nonlocal pos, buf
        with open(log) as f:
            f.seek(pos)
            chunk = f.read()
            pos = f.tell()
        buf += chunk
        *lines, buf = buf.split("\n")
        return [json.loads(line) for line in lines if line.strip()]

    while True:
        exited = proc.poll() is not None
        for ev in read_events():
            if ev["ev"] == "start":
                open_case = ev
            elif ev["ev"] == "end":
                open_case = None
                tally.end(ev)
                ran += 1
            elif ev["ev"] == "ready":
                ready = True
            elif ev["ev"] == "done":
                done = True
        if exited:
            break
        now = time.time()
        if open_case and now - open_case["t"] > hang_s + 5:  # the in-process alarm had 5 s
            killed = open_case
        elif not ready and now - t_start > 900:
            killed = {"entry": name, "input": "warm-up", "t": t_start}
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            tally.cases += 1
            tally.by_entry[killed["entry"]]["cases"] += 1
            tally.by_entry[killed["entry"]]["hang"] += 1
            tally.hangs.append({"entry": killed["entry"], "input": killed["input"],
                                "how": f"killed after {now - killed['t']:.0f} s"})
            ran += 1
            break
        time.sleep(0.1)
    err.seek(0)
    stderr = err.read()[-3000:]
    err.close()
    log.unlink(missing_ok=True)
    if killed is None and open_case is not None:  # died in the middle of a case
        tally.cases += 1
        tally.by_entry[open_case["entry"]]["cases"] += 1
        tally.by_entry[open_case["entry"]]["crash"] += 1
        sig = -proc.returncode if proc.returncode < 0 else None
        tally.crashes.append({"entry": open_case["entry"], "input": open_case["input"],
                              "returncode": proc.returncode,
                              "signal": signal.Signals(sig).name if sig else None,
                              "stderr": stderr[-1500:]})
        ran += 1
    elif killed is None and not done:
        tally.child_errors.append({"property": name, "seed": seed,
                                   "returncode": proc.returncode, "stderr": stderr[-1500:]})
    tally.batches += 1
    return ran, done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=250, help="examples per child process")
    parser.add_argument("--hang", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--only", default="", help="comma-separated property names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--json", default=None, help="write the summary there too")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.seed)
    names = [n for n in properties() if not args.only or n in args.only.split(",")]
    weights = {n: WEIGHTS.get(n, 1.0) for n in names}
    total = sum(weights.values())
    target = {n: max(1, round(args.cases * w / total)) for n, w in weights.items()}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    tally = Tally()
    done = Counter()
    t0 = time.time()
    seed = args.seed
    exhausted = set()
    while tally.cases < args.cases and time.time() - t0 < args.max_seconds:
        todo = [n for n in names if done[n] < target[n] and n not in exhausted]
        if not todo:  # every property reached its share: top up the ones that can
            todo = [n for n in names if n not in exhausted]
            if not todo:
                break
            for n in todo:
                target[n] += args.batch
        for name in todo:
            if tally.cases >= args.cases or time.time() - t0 >= args.max_seconds:
                break
            seed += 1
            n = min(args.batch, target[name] - done[name])
            ran, finished = run_batch(name, n, seed, tally, args.hang, env)
            done[name] += ran
            if finished and ran < n // 2:
                exhausted.add(name)  # hypothesis ran out of distinct examples
            print(f"[{time.time() - t0:7.0f} s] {name}: {ran} cases (total {tally.cases}; "
                  f"non-snngen {sum(f['count'] for f in tally.failures.values())}, "
                  f"hangs {len(tally.hangs)}, crashes {len(tally.crashes)})", flush=True)
    summary = tally.summary(time.time() - t0, args.cases)
    text = json.dumps(summary, indent=1, default=str)
    if args.json:
        tmp = Path(args.json + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.json)
    brief = {k: summary[k] for k in ("cases", "seconds", "non_snngen_exceptions",
                                     "non_snngen_by_type", "non_snngen_by_entry",
                                     "valid_inputs_rejected", "hangs", "crashes",
                                     "child_errors")}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
