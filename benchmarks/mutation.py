"""Mutation testing of snngen's core (issue 18, item 7): kill rate per module, survivors listed.

An optional job, never part of ``pytest``: it takes hours on two cores. Usage::

    python benchmarks/mutation.py --modules optim units           # cosmic-ray, full runs
    python benchmarks/mutation.py --modules draw --sample 60      # a seeded random sample
    python benchmarks/mutation.py --modules template --sample 80  # our own template mutator
    python benchmarks/mutation.py --list                          # targets and their tests
    python benchmarks/mutation.py --report                        # summary.md from the JSONs

(``SNNGEN_MUTATION=1`` is accepted as a synonym of running this script; nothing in the test
suite starts it.) Results go to ``--out`` (default ``benchmarks/mutation_runs``): one
``<module>.json`` per target (every mutant: operator, line, outcome) and ``summary.md``.

How it works:

- The checkout is never touched. Mutants are applied in a ``git worktree`` of a commit
  (``--commit``, default HEAD) under ``--worktree`` (default ``/tmp/snngen-mutation-<module>``,
  one per module so that modules can run side by side), with the tests of that commit.
- Python modules are mutated by cosmic-ray (8.x; it mutates files in place, hence the
  worktree) with a reduced, mutmut-like operator set (:data:`OPERATORS`: one replacement per
  site, e.g. ``+`` -> ``-`` but not ``+`` -> ``<<``; decorators are never removed, since
  removing ``@njit`` changes speed, not results).
- ``templates/numba/program.py.j2`` is a Jinja template, which cosmic-ray cannot parse: a small
  line mutator here (:func:`template_mutants`) flips comparison and arithmetic operators,
  ``and``/``or``, ``not``, ``min``/``max`` and small integer constants in the Python text
  outside ``{{ }}`` / ``{% %}``, one site per mutant.
- Each mutant runs a targeted test selection (:data:`TARGETS`: the tests that exercise the
  module, no GPU, no slow tests, ``-x``) with a fresh kernel cache (``SNNGEN_CACHE_DIR``): a
  warm cache would load a kernel compiled from the unmutated code (the structure index, and
  Numba's cache, which does not notice edits to ``snngen/draw.py``) and hide the mutant; and a
  fresh ``NUMBA_CACHE_DIR``, for the same reason, for snngen's own ``cache=True`` functions
  (those of ``connectivity.py`` call ``draw.py``'s).
- Outcomes: killed (a test failed), timeout (counted as killed, listed apart), survived.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# -n 0: one process per mutant's test run (the suite's default -n auto would start workers)
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow and not gpu", "-n", "0"]

#: module -> (path in the repository, pytest arguments that exercise it)
TARGETS = {
    "optim": ("snngen/train/optim.py",
              ["tests/test_train_parts.py", "tests/test_mutants_optim.py",
               "tests/test_doctests.py", "-k",
               "adam or sgd or clip or constrain or optim or mutants"]),
    "units": ("snngen/units.py",
              ["tests/test_units.py", "tests/test_errors.py", "tests/test_mutants_units.py",
               "tests/test_doctests.py", "-k", "(not test_docstring_examples or units) and "
               "not nan and not cuda and not connectivity and not too_large and not "
               "statement and not without_threshold"]),
    "dimensions": ("snngen/dimensions.py",
                   ["tests/test_units.py", "tests/test_errors.py", "tests/test_mutants_units.py",
                    "tests/test_model_errors.py", "tests/test_doctests.py", "-k",
                    "(not test_docstring_examples or dimensions) and not cuda and not nan"]),
    "draw": ("snngen/draw.py",
             ["tests/test_connectivity_draw.py", "tests/test_rules_direct.py",
              "tests/test_connectivity.py", "tests/test_philox.py",
              "tests/test_mutants_draw.py", "-k",
              "not cuda and not host and not gpu and not refractory and not delay"]),
    "parse": ("snngen/parse.py",
              ["tests/test_parse.py", "tests/test_errors.py", "tests/test_units.py",
               "tests/test_integrate.py", "tests/test_mutants_parse.py"]),
    "model": ("snngen/model.py",
              ["tests/test_parse.py", "tests/test_errors.py", "tests/test_units.py",
               "tests/test_integrate.py", "tests/test_exactness.py",
               "tests/test_model_errors.py", "tests/test_mutants_model.py"]),
    "integrate": ("snngen/integrate.py",
                  ["tests/test_integrate.py", "tests/test_exactness.py",
                   "tests/test_rules_direct.py", "tests/test_mutants_integrate.py", "-k",
                   "not poisson and not connectivity and not seed"]),
    "connectivity": ("snngen/connectivity.py",
                     ["tests/test_connectivity.py", "tests/test_connectivity_draw.py",
                      "tests/test_rules_direct.py", "tests/test_mutants_connectivity.py",
                      "tests/test_boundscheck.py", "-k", "not cuda and not refractory"]),
    "derive.step": ("snngen/derive/step.py",
                    ["tests/test_gradients.py", "tests/test_reference.py",
                     "tests/test_mutants_derive.py"]),
    "derive.surrogate": ("snngen/derive/surrogate.py",
                         ["tests/test_gradients.py", "tests/test_reference.py",
                          "tests/test_mutants_derive.py"]),
    "derive.reference": ("snngen/derive/reference.py",
                         ["tests/test_gradients.py", "tests/test_reference.py",
                          "tests/test_mutants_derive.py"]),
    "derive.online": ("snngen/derive/online.py", ["tests/test_online.py"]),
    "template": ("templates/numba/program.py.j2",
                 ["tests/test_exactness.py", "tests/test_rules_direct.py",
                  "tests/test_features.py", "tests/test_integrate.py",
                  "tests/test_mutants_template.py", "tests/test_schedule.py",
                  "tests/test_boundscheck.py", "-k", "not connectivity and not seed"]),
}

#: cosmic-ray operators kept: one replacement per site, as mutmut does.
OPERATORS = {
    "core/NumberReplacer", "core/AddNot", "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd",
    "core/ZeroIterationForLoop", "core/ReplaceContinueWithBreak",
    "core/ReplaceBreakWithContinue", "core/ExceptionReplacer",
    "core/ReplaceUnaryOperator_USub_UAdd", "core/ReplaceUnaryOperator_Delete_Not",
    "core/ReplaceUnaryOperator_Invert_USub",
    "core/ReplaceBinaryOperator_Add_Sub", "core/ReplaceBinaryOperator_Sub_Add",
    "core/ReplaceBinaryOperator_Mul_Div", "core/ReplaceBinaryOperator_Div_Mul",
    "core/ReplaceBinaryOperator_FloorDiv_Div", "core/ReplaceBinaryOperator_Mod_FloorDiv",
    "core/ReplaceBinaryOperator_Pow_Mul", "core/ReplaceBinaryOperator_BitOr_BitAnd",
    "core/ReplaceBinaryOperator_BitAnd_BitOr", "core/ReplaceBinaryOperator_BitXor_BitOr",
    "core/ReplaceBinaryOperator_LShift_RShift", "core/ReplaceBinaryOperator_RShift_LShift",
    "core/ReplaceComparisonOperator_Lt_LtE", "core/ReplaceComparisonOperator_LtE_Lt",
    "core/ReplaceComparisonOperator_Gt_GtE", "core/ReplaceComparisonOperator_GtE_Gt",
    "core/ReplaceComparisonOperator_Eq_NotEq", "core/ReplaceComparisonOperator_NotEq_Eq",
    "core/ReplaceComparisonOperator_Is_IsNot", "core/ReplaceComparisonOperator_IsNot_Is",
    "core/ReplaceComparisonOperator_In_NotIn", "core/ReplaceComparisonOperator_NotIn_In",
}


# -- the test run of one mutant ---------------------------------------------------------------
#: Modules whose compiled functions other modules' cached functions call (connectivity's
#: call draw's): their mutants always get fresh caches, even with ``--warm-cache``.
FRESH_CACHE = {"draw"}


def run_tests(module: str) -> int:
    """Run ``module``'s tests in the current directory (a worktree) with a fresh cache, or
    with the run's shared warm one (``--warm-cache``: ``SNNGEN_MUTATION_CACHE``)."""
    shared = os.environ.get("SNNGEN_MUTATION_CACHE")
    if shared and module not in FRESH_CACHE:
        env = dict(os.environ, SNNGEN_CACHE_DIR=shared, PYTHONPATH=os.getcwd())
        env.pop("SNNGEN_TEST_CACHE", None)
        tests = [t for t in TARGETS[module][1] if not t.startswith("tests/") or Path(t).exists()]
        return subprocess.call([sys.executable, "-m", "pytest", *PYTEST, *tests], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = tempfile.mkdtemp(prefix="snngen-mutant-cache-")
    # Numba's own cache of snngen's compiled functions (connectivity, train, backends) is
    # stamped with each function's file only: a cached function that calls a mutated one in
    # another module (connectivity -> draw) would load code compiled from the unmutated
    # callee. A fresh NUMBA_CACHE_DIR per mutant rules that out too.
    env = dict(os.environ, SNNGEN_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "nb"),
               PYTHONPATH=os.getcwd())
    env.pop("SNNGEN_TEST_CACHE", None)
    tests = [t for t in TARGETS[module][1] if not t.startswith("tests/") or Path(t).exists()]
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *PYTEST, *tests], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


# -- worktrees -------------------------------------------------------------------------------
def worktree(path: Path, commit: str, extra: list[Path]) -> Path:
    """A clean detached worktree of ``commit`` at ``path`` (made or reset), plus copies of
    ``extra`` files (test files not committed yet) from the checkout."""
    if not (path / ".git").exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path),
                        commit], check=True, capture_output=True)
    else:
        subprocess.run(["git", "-C", str(path), "checkout", "-q", "--detach", "-f", commit],
                       check=True)
        subprocess.run(["git", "-C", str(path), "clean", "-q", "-f", "tests"], check=True)
    for f in extra:
        shutil.copy2(REPO / f, path / f)
    return path


# -- cosmic-ray -------------------------------------------------------------------------------
def run_cosmic_ray(module, wt: Path, out: Path, sample: int | None, seed: int,
                   timeout: float) -> dict:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    path, _ = TARGETS[module]
    config = out / f"{module}.toml"
    db = out / f"{module}.sqlite"
    db.unlink(missing_ok=True)
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{path}"\n'
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{sys.executable} {Path(__file__).resolve()} --run-tests {module}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n')
    cr = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run([*cr, "init", str(config), str(db)], cwd=wt, check=True)
    with use_db(str(db), WorkDB.Mode.open) as work:
        items = list(work.work_items)
        kept = [w for w in items if all(m.operator_name in OPERATORS for m in w.mutations)]
        chosen = kept if sample is None or sample >= len(kept) else \
            random.Random(seed).sample(kept, sample)
        chosen_ids = {w.job_id for w in chosen}
        for w in items:
            if w.job_id not in chosen_ids:
                why = "operator not in the reduced set" if w not in kept else "not sampled"
                work.set_result(w.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                     output=why))
    subprocess.run([*cr, "exec", str(config), str(db)], cwd=wt, check=True)
    return collect(module, wt, out)


def collect(module, wt: Path, out: Path) -> dict:
    """The mutants of a cosmic-ray session so far (a run stopped early lists the rest as
    pending)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    path, _ = TARGETS[module]
    lines = subprocess.run(["git", "-C", str(wt), "show", f"HEAD:{path}"], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    mutants, kept = [], 0
    with use_db(str(out / f"{module}.sqlite"), WorkDB.Mode.open) as work:
        results = dict(work.results)
        items = list(work.work_items)
        for w in items:
            r = results.get(w.job_id)
            if r is not None and r.worker_outcome == WorkerOutcome.SKIPPED:
                kept += r.output != "operator not in the reduced set"
                continue
            kept += 1
            m = w.mutations[0]
            if r is None:
                outcome = "pending"
            elif r.test_outcome is None:
                outcome = "error"
            elif r.output == "timeout":
                outcome = "timeout"
            else:
                outcome = r.test_outcome.value
            row = m.start_pos[0]
            mutants.append({"id": w.job_id, "operator": m.operator_name,
                            "occurrence": m.occurrence, "line": row,
                            "col": m.start_pos[1], "end": list(m.end_pos),
                            "function": m.definition_name,
                            "source": lines[row - 1].strip(), "outcome": outcome,
                            "diff": (r.diff or "") if r is not None else ""})
    return {"total_sites": len(items), "in_operator_set": kept, "mutants": mutants}


# -- the template mutator ----------------------------------------------------------------------
_SWAPS = [(r"<=", "<"), (r">=", ">"), (r"(?<![<>=!])<(?![<=])", "<="),
          (r"(?<![<>=!-])>(?![>=])", ">="), (r"==", "!="), (r"!=", "=="),
          (r"(?<![+\-*/=<>!])\+(?![+=])", "-"), (r"(?<![+\-*/=<>!e])-(?![-=>])", "+"),
          (r"\+=", "-="), (r"(?<!\*)\*(?![*=])", "/"), (r"(?<!/)/(?![/=])", "*"),
          (r"//", "/"), (r"%", "//"), (r"\band\b", "or"), (r"\bor\b", "and"),
          (r"\bnot ", ""), (r"\bmin\(", "max("), (r"\bmax\(", "min("),
          (r"\bTrue\b", "False"), (r"\bFalse\b", "True"), (r"\bcontinue\b", "break"),
          (r"(?<![\w.])0(?![\w.])", "1"), (r"(?<![\w.])1(?![\w.])", "2"),
          (r"(?<![\w.])8(?![\w.])", "7"), (r"(?<![\w.])0\.0(?![\w])", "1.0")]
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")


def template_mutants(text: str) -> list[dict]:
    """One mutant per (line, site, swap) in the Python text outside Jinja delimiters and
    outside comments and strings-only lines."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        bare = line.strip()
        if not bare or bare.startswith(("#", "{%", "{#", '"""', "@")) or bare.startswith("import"):
            continue
        masked = _JINJA.sub(lambda m: "\0" * len(m.group()), line)
        code = masked.split("#", 1)[0]  # comments do not count
        for pattern, repl in _SWAPS:
            for m in re.finditer(pattern, code):
                if "\0" in code[m.start():m.end()]:
                    continue
                new = line[:m.start()] + repl + line[m.end():]
                out.append({"line": number, "col": m.start(), "operator": f"{m.group()}->{repl}",
                            "source": bare, "mutated": new.strip()})
    return out


def run_template(module, wt: Path, sample: int | None, seed: int, timeout: float) -> dict:
    path = wt / TARGETS[module][0]
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    every = template_mutants(original)
    chosen = every if sample is None or sample >= len(every) else \
        sorted(random.Random(seed).sample(every, sample), key=lambda m: (m["line"], m["col"]))
    mutants = []
    try:
        for m in chosen:
            new = list(lines)
            new[m["line"] - 1] = _apply(lines[m["line"] - 1], m)
            path.write_text("".join(new))
            t0 = time.time()
            try:
                rc = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                     "--run-tests", module], cwd=wt, timeout=timeout).returncode
                outcome = "killed" if rc != 0 else "survived"
            except subprocess.TimeoutExpired:
                outcome = "timeout"
            mutants.append({**m, "outcome": outcome, "seconds": round(time.time() - t0, 1)})
            print(f"template:{m['line']} {m['operator']}: {outcome}", flush=True)
    finally:
        path.write_text(original)
    return {"total_sites": len(every), "in_operator_set": len(every), "mutants": mutants}


def _apply(line: str, m: dict) -> str:
    old, repl = m["operator"].split("->")
    return line[:m["col"]] + repl + line[m["col"] + len(old):]


def rerun_survivors(module, wt: Path, out: Path) -> dict:
    """Run the survivors of ``module``'s record again with the tests as they are now (new test
    files copied with ``--extra``): each gets ``"rerun": killed | survived``."""
    record = json.loads((out / f"{module}.json").read_text())
    path = TARGETS[module][0]
    for m in record["mutants"]:
        if m["outcome"] != "survived":
            continue
        subprocess.run(["git", "-C", str(wt), "checkout", "-q", "-f", "--", path], check=True)
        if module == "template":
            target = wt / path
            lines = target.read_text().splitlines(keepends=True)
            lines[m["line"] - 1] = _apply(lines[m["line"] - 1], m)
            target.write_text("".join(lines))
        else:
            subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "apply", path,
                            m["operator"], str(m["occurrence"])], cwd=wt, check=True,
                           capture_output=True)
        rc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run-tests",
                             module], cwd=wt).returncode
        m["rerun"] = "killed" if rc else "survived"
        print(f"{module}:{m['line']} {m['operator']}: {m['rerun']}", flush=True)
    subprocess.run(["git", "-C", str(wt), "checkout", "-q", "-f", "--", path], check=True)
    record["rerun_tests"] = TARGETS[module][1]
    record["summary"] = summarise(record)
    (out / f"{module}.json").write_text(json.dumps(record, indent=1))
    return record


# -- records ---------------------------------------------------------------------------------
def summarise(result: dict) -> dict:
    ms = result["mutants"]
    count = {k: sum(1 for m in ms if m["outcome"] == k)
             for k in ("killed", "timeout", "survived", "incompetent", "error", "pending")}
    run = count["killed"] + count["timeout"] + count["survived"]
    rate = (count["killed"] + count["timeout"]) / run if run else None
    later = sum(1 for m in ms if m.get("rerun") == "killed")
    after = (count["killed"] + count["timeout"] + later) / run if run else None
    return {**count, "run": run, "rate": rate, "killed_by_new_tests": later,
            "rate_with_new_tests": after}


def report(out: Path) -> str:
    rows = ["| module | mutants (operator set) | run | killed | timeouts | survived | "
            "not run yet | kill rate | killed by new tests | rate with them |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(out.glob("*.json")):
        data = json.loads(f.read_text())
        if "summary" not in data:
            continue
        s = data["summary"]
        rate = f"{100 * s['rate']:.1f} %" if s["rate"] is not None else "-"
        after = f"{100 * s['rate_with_new_tests']:.1f} %" \
            if s.get("rate_with_new_tests") is not None else "-"
        sample = f" (sample of {data['in_operator_set']})" if data.get("sample") else ""
        rows.append(f"| {data['module']} | {data['in_operator_set']} | {s['run']}{sample} | "
                    f"{s['killed']} | {s['timeout']} | {s['survived']} | {s['pending']} | "
                    f"{rate} | {s.get('killed_by_new_tests', 0)} | {after} |")
    text = "\n".join(rows) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", nargs="*", default=[])
    ap.add_argument("--sample", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--worktree", default=None)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "mutation_runs"))
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--extra", nargs="*", default=[],
                    help="uncommitted test files to copy into the worktree")
    ap.add_argument("--run-tests", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rerun-survivors", action="store_true",
                    help="run the recorded survivors again with today's tests (in a worktree "
                         "<worktree>-rerun, so that a running session is not disturbed)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--collect", action="store_true",
                    help="write the JSON of cosmic-ray sessions as they stand (runs stopped "
                         "early: the rest is listed as pending)")
    ap.add_argument("--warm-cache", action="store_true",
                    help="one kernel cache for all mutants of a module (not draw): much faster; "
                         "correct because the structure key follows every generator source "
                         "(units.py included) and kernel texts carry the digests of the "
                         "modules they call, so a mutant that changes a kernel gets a new file "
                         "(not yet validated against fresh-cache outcomes on a sample)")
    args = ap.parse_args(argv)
    if args.warm_cache and not os.environ.get("SNNGEN_MUTATION_CACHE"):
        os.environ["SNNGEN_MUTATION_CACHE"] = tempfile.mkdtemp(prefix="snngen-mutation-warm-")
    if args.run_tests:
        return run_tests(args.run_tests)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.list:
        for name, (path, tests) in TARGETS.items():
            print(f"{name:18} {path:34} {' '.join(tests)}")
        return 0
    if args.report:
        print(report(out))
        return 0
    if args.collect:
        for module in args.modules:
            wt = Path(args.worktree or f"/tmp/snngen-mutation-{module}")
            old = json.loads((out / f"{module}.json").read_text()) \
                if (out / f"{module}.json").exists() else {"module": module}
            record = {**old, **collect(module, wt, out)}
            record["summary"] = summarise(record)
            (out / f"{module}.json").write_text(json.dumps(record, indent=1))
        print(report(out))
        return 0
    if args.rerun_survivors:
        for module in args.modules:
            record = json.loads((out / f"{module}.json").read_text())
            wt = worktree(Path((args.worktree or f"/tmp/snngen-mutation-{module}") + "-rerun"),
                          record["commit"], [Path(e) for e in args.extra])
            rerun_survivors(module, wt, out)
        print(report(out))
        return 0
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.commit], check=True,
                            capture_output=True, text=True).stdout.strip()
    import importlib.metadata as md
    for module in args.modules:
        wt = worktree(Path(args.worktree or f"/tmp/snngen-mutation-{module}"), commit,
                      [Path(e) for e in args.extra])
        t0 = time.time()
        baseline = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                   "--run-tests", module], cwd=wt).returncode
        if baseline != 0:
            print(f"{module}: the tests fail without mutants (rc {baseline}); skipped")
            continue
        base_s = time.time() - t0
        timeout = max(args.timeout, 5 * base_s)
        meta = {"module": module, "path": TARGETS[module][0], "commit": commit,
                "tests": TARGETS[module][1], "pytest": PYTEST, "sample": args.sample,
                "seed": args.seed, "baseline_seconds": round(base_s, 1), "timeout": timeout,
                "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        (out / f"{module}.json").write_text(json.dumps(meta, indent=1))
        if module == "template":
            result = run_template(module, wt, args.sample, args.seed, timeout)
            tool = "snngen template mutator (benchmarks/mutation.py)"
        else:
            result = run_cosmic_ray(module, wt, out, args.sample, args.seed, timeout)
            tool = f"cosmic-ray {md.version('cosmic-ray')}"
        record = {**meta, "tool": tool, "seconds": round(time.time() - t0), **result}
        record["summary"] = summarise(result)
        (out / f"{module}.json").write_text(json.dumps(record, indent=1))
        print(module, record["summary"], flush=True)
    print(report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
