"""A damaged kernel cache heals itself: every kind of cache file, damaged every way, is
quarantined with one CacheWarning and rebuilt by the next process, with the same results.

Numba loads its on-disk cache once per process, so healing is checked in fresh processes:
one fills a cache, and for each kind of damage a copy of it is damaged (one entry per kind of
file, each in its own network so that the repairs do not overlap) and run again.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from snngen import cache

#: Each workload is its own structure (own index entry, source, Numba files) so that the
#: damage done to one of its files is repaired independently of the others.
WORKLOADS = textwrap.dedent("""
    import json, sys, time, warnings
    sys.dont_write_bytecode = False            # Python's .pyc of generated modules too,
    sys.pycache_prefix = sys.argv[1]           # kept out of the source tree
    import numpy as np
    import snngen as sg
    from snngen import cache

    def network(k, backend="numba"):  # the variable's name makes each kernel's text unique
        model = sg.NeuronModel(f"dv{k}/dt = (El - v{k}) / tau : 1", threshold=f"v{k} > 1",
                               reset=f"v{k} = 0", name="m")
        net = sg.Network(dt=1e-4, seed=1)
        pop = net.population("P", model, 30, params={"tau": 0.01, "El": 1.0 + k})
        net.connect(pop, pop, f"v{k} += w", sg.FixedProbability(0.2), w=0.05)
        mon = net.monitor_spikes(pop)
        sim = net.build(backend=backend)
        sim.run(0.01)
        files = [sim.source_path, *sim.module.__dict__.get("_binary", {}).values()]
        return [np.asarray(mon.i).tolist(), np.asarray(mon.t).tolist()], files

    def bptt():
        from snngen import connectivity as conn
        from snngen.derive import derive
        from snngen.integrate import discretise
        from snngen.train.bptt import CompiledBPTT
        model = sg.NeuronModel("dv/dt = (I - v) / taum : 1\\ndI/dt = -I / taus : 1",
                               threshold="v > 1", reset="v = 0", name="lif")
        lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid")
        rng = np.random.default_rng(0)
        n, n_in, batch, steps = 6, 3, 2, 20
        params = {"taum": np.full(n, 0.02), "taus": np.full(n, 0.005)}
        inputs = (rng.random((steps, batch, n_in)) < 0.3).astype(float)
        in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed=1)
        rec_csr = conn.build_csr(conn.FixedProbability(0.5), n, n, seed=2)
        w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
        w_rec = rng.normal(0, 0.5, rec_csr.n_synapses)

        def loss_fn(states, spikes):
            return 0.5 * np.sum(states[..., 0] ** 2), states * [1, 0], np.zeros(spikes.shape)
        kernel = CompiledBPTT(lm)
        loss, grads = kernel.run(params, np.zeros((batch, n, 2)), inputs, in_csr, w_in, rec_csr,
                                 w_rec, 1e-3, loss_fn)
        return [float(loss), np.asarray(grads["w_rec"]).tolist()], [kernel.source_path]

    def eprop():
        from snngen import connectivity as conn
        from snngen.derive import derive
        from snngen.integrate import discretise
        from snngen.train.online import CompiledEprop
        model = sg.NeuronModel("dv/dt = (I - v) / taum : 1\\ndI/dt = -I / taus : 1",
                               threshold="v > 1", reset="v = 0", name="lif")
        lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid")
        rng = np.random.default_rng(0)
        n, n_in, steps = 5, 3, 20
        params = {"taum": np.full(n, 0.02), "taus": np.full(n, 0.005)}
        in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed=1)
        rec_csr = conn.build_csr(conn.FixedProbability(0.5), n, n, seed=2)
        w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
        w_rec = rng.normal(0, 0.5, rec_csr.n_synapses)
        kernel = CompiledEprop(lm, "float64")
        state = kernel.state(params, 1e-3, 1, n, in_csr, rec_csr, 2)
        loss, grads, _ = kernel.step(state, (rng.random((steps, 1, n_in)) < 0.3).astype(float),
                                     rng.normal(0, 0.5, (steps, 1, 2)), in_csr, w_in, rec_csr,
                                     w_rec, rng.normal(0, 1, (n, 2)), 0.9)
        return [float(loss), np.asarray(grads["w_rec"]).tolist()], [kernel.source_path]

    RUNS = {"index": lambda: network(1), "source": lambda: network(2),
            "nbi": lambda: network(3), "nbc": lambda: network(4), "pyc": lambda: network(5),
            "eprop": eprop, "bptt": bptt, "so": lambda: network(6, "cuda-host")}
    out = {}
    for name in sys.argv[2].split(","):
        run = RUNS[name]
        before, t0 = dict(cache.STATS), time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result, files = run()
        out[name] = {"result": result, "compiled": cache.STATS["compiled"] - before["compiled"],
                     "rendered": cache.STATS["rendered"] - before["rendered"],
                     "seconds": time.perf_counter() - t0,
                     "files": [str(f.relative_to(cache.cache_dir())) for f in files],
                     "warnings": [str(w.message) for w in caught
                                  if issubclass(w.category, cache.CacheWarning)]}
    print(json.dumps(out))
""")


FAST = "index,source,nbi,nbc,pyc,eprop,so"


def _run(root, workloads=FAST):
    """Run ``workloads`` in a fresh process on the cache ``root``."""
    script = root.parent / "workloads.py"
    script.write_text(WORKLOADS)
    env = {**os.environ, "SNNGEN_CACHE_DIR": str(root)}
    out = subprocess.run([sys.executable, str(script), str(_prefix(root)), workloads], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _prefix(root):
    return root.parent / (root.name + "-pyc")


def _pyc(source, root):
    """Where the workload process keeps Python's bytecode of a generated ``source``."""
    saved = sys.pycache_prefix
    sys.pycache_prefix = str(_prefix(root))
    try:
        return Path(importlib.util.cache_from_source(str(source)))
    finally:
        sys.pycache_prefix = saved


def _fill(tmp_path_factory, workloads):
    root = tmp_path_factory.mktemp("filled") / "cache"
    return root, _run(root, workloads)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache filled by one process: (its folder, what that process computed)."""
    return _fill(tmp_path_factory, FAST)


def _copy(filled_root, root):
    """A copy of the filled cache (Numba's and Python's caches stay valid: same text, times)."""
    shutil.copytree(filled_root, root)
    for source in filled_root.glob("*/snngen_*.py"):
        pyc = _pyc(source, filled_root)
        if pyc.exists():
            copy = _pyc(root / source.relative_to(filled_root), root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(pyc, copy)


def targets(root, pristine):
    """The one file of each kind that is damaged: {kind: (workload that reads it, path)}."""
    def used(workload, k=0):
        return root / pristine[workload]["files"][k]

    def numba_file(workload, pattern):
        return sorted((root / "numba/__pycache__").glob(f"{used(workload).stem}.{pattern}"))[0]
    found = {}
    if "index" in pristine:
        found["index"] = ("index", next(
            p for p in (root / "index").glob("*.json")
            if json.loads(p.read_text())["source"] == pristine["index"]["files"][0]))
    for kind in ("source", "nbi", "nbc", "pyc", "so", "eprop", "bptt"):
        if kind not in pristine:
            continue
        if kind == "source":
            found[kind] = (kind, used(kind))
        elif kind in ("nbi", "nbc"):
            found[kind] = (kind, numba_file(kind, f"*.{kind}"))
        elif kind == "pyc":
            found[kind] = (kind, _pyc(used(kind), root))
        elif kind == "so":
            found["cuda-host so"] = (kind, used(kind, 1))
        else:  # a kernel keyed by its text alone, and the Numba index of its entry point
            found[f"{kind} source"] = (kind, used(kind))
            entry = "run*" if kind == "eprop" else "forward-*"
            found[f"{kind} nbi"] = (kind, numba_file(kind, f"{entry}.nbi"))
    return found


GARBAGE = b"\x00garbage\xff\x80"


def damage(path, how):
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
    else:
        path.write_bytes({"truncate": data[:len(data) // 2], "empty": b"",
                          "garbage": (GARBAGE * len(data))[:len(data)],
                          "non-utf8": b"\xff\xfe\xfa\xfb" + data[4:]}[how])


def expected_warnings(kind, how):
    """Damage is warned about once; a missing file is a plain miss (no warning), except a
    source that its index entry names; Python recompiles a .pyc whose header it rejects."""
    if kind == "pyc":
        return int(how == "truncate")
    if how == "delete":
        return int(kind == "source")
    return 1


def check_healed(filled, how, root, workloads, monkeypatch):
    """Damage one file of each kind in a copy of the filled cache, run again, and check the
    warnings, the quarantine and the results; returns what the healing process computed."""
    filled_root, pristine = filled
    _copy(filled_root, root)
    damaged = targets(root, pristine)
    for _, path in damaged.values():
        damage(path, how)
    healed = _run(root, workloads)
    for workload, got in healed.items():
        assert got["result"] == pristine[workload]["result"], workload
        mine = [(kind, p) for kind, (w, p) in damaged.items() if w == workload]
        want = sum(expected_warnings(kind, how) for kind, _ in mine)
        assert len(got["warnings"]) == want, (workload, got["warnings"])
        for kind, path in mine:
            named = [m for m in got["warnings"] if path.name in m]
            assert len(named) == expected_warnings(kind, how), (kind, got["warnings"])
            for message in named:  # the damaged file, or the entry naming a deleted one
                folder = Path(re.search(r" to (\S+) and rebuilt", message).group(1))
                assert folder.parent == root / "quarantine", message
                moved = [f.name for f in folder.rglob("*") if f.is_file()]
                assert path.name in moved or how == "delete" and moved, (kind, moved)
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(root))
    assert cache.info()["quarantined"] >= sum(expected_warnings(k, how) for k in damaged)
    return healed


@pytest.mark.parametrize("how", ["truncate", "empty", "garbage", "non-utf8", "delete"])
def test_damaged_entries_are_quarantined_and_rebuilt(filled, how, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    healed = check_healed(filled, how, root, FAST, monkeypatch)
    for kind in ("nbi", "nbc"):  # the damaged entry was compiled again (a rewritten source
        assert healed[kind]["compiled"] == 1, kind  # is the same text: Numba's cache holds)
    assert healed["index"]["rendered"] == 1 and healed["source"]["rendered"] == 1
    for kind in ("index", "source", "pyc"):  # nothing else was compiled again
        assert healed[kind]["compiled"] == 0, kind
    if how == "garbage":  # healed for good: the next process loads everything
        again = _run(root)
        assert all(not got["warnings"] and got["compiled"] == 0 for got in again.values())
        assert all(got["result"] == filled[1][w]["result"] for w, got in again.items())


@pytest.fixture(scope="module")
def filled_bptt(tmp_path_factory):
    return _fill(tmp_path_factory, "bptt")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncate", "garbage", "delete"])
def test_damaged_bptt_kernel_is_rebuilt(filled_bptt, how, tmp_path, monkeypatch):
    """The BPTT kernel, keyed by its text like e-prop's above (minutes to compile)."""
    check_healed(filled_bptt, how, tmp_path / "cache", "bptt", monkeypatch)
