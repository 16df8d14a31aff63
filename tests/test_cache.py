"""The kernel cache: warm starts compile nothing, values never recompile, corruption heals."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import snngen as sg
from snngen import cache

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import snngen as sg
    t_import = time.perf_counter() - t0
    model = sg.NeuronModel("dv/dt = (El - v) / tau : 1", threshold="v > 1", reset="v = 0",
                           name="warm")
    t1 = time.perf_counter()
    net = sg.Network(dt=1e-4, seed=1)
    pop = net.population("P", model, int(sys.argv[1]), params={"El": float(sys.argv[2]),
                                                               "tau": 0.01})
    net.connect(pop, pop, "v += w", sg.FixedProbability(0.1), w=0.01)
    mon = net.monitor_spikes(pop)
    sim = net.build()
    t_ready = time.perf_counter() - t1
    sim.run(0.05)
    print(json.dumps({"compiled": sim.compiled_kernels, "stats": sg.cache.STATS,
                      "spikes": len(mon.i), "ready_s": t_ready, "import_s": t_import}))
""")


def _run(tmp_path, *args):
    script = tmp_path / "warm.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                         text=True, env={**os.environ}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path / "cache"))
    first = _run(tmp_path, 200, 1.5)
    assert first["compiled"] == 1 and first["stats"]["rendered"] == 1
    # another process, other sizes and parameter values: the same structure
    second = _run(tmp_path, 300, 2.0)
    assert second["compiled"] == 0
    assert second["stats"]["rendered"] == 0 and second["stats"]["index_hits"] == 1
    assert second["spikes"] > 0
    # snngen's own time to the first step on a warm cache (imports excluded)
    assert second["ready_s"] < 1.0


def test_parameter_change_does_not_recompile_in_process(cuba_model):
    from conftest import CUBA_PARAMS
    before = dict(cache.STATS)
    for taum in ("20*ms", "25*ms"):
        net = sg.Network(dt=1e-4, seed=2)
        net.population("P", cuba_model, 50, params={**CUBA_PARAMS, "taum": taum})
        net.build()
    assert cache.STATS["rendered"] - before["rendered"] <= 1
    assert cache.STATS["compiled"] - before["compiled"] <= 1


def test_corrupt_entries_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path / "cache"))
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")

    def build():
        net = sg.Network(dt=1e-4)
        net.population("P", model, 4, params={"tau": 0.01}, init={"v": 2.0})
        mon = net.monitor_spikes(net.populations["P"])
        net.build().run(0.001)
        return mon

    assert len(build().i) == 4
    sources = list((tmp_path / "cache" / "numba").glob("snngen_*.py"))
    assert len(sources) == 1
    sources[0].write_text(sources[0].read_text()[:100])  # a half-written file
    before = cache.STATS["rendered"]
    assert len(build().i) == 4  # detected by its hash, regenerated, correct again
    assert cache.STATS["rendered"] == before + 1
    index = next((tmp_path / "cache" / "index").glob("*.json"))
    index.write_text("{not json")
    assert len(build().i) == 4
    assert json.loads(index.read_text())["sha256"]


def test_cli_info_and_clear(tmp_path):
    env = {**os.environ, "SNNGEN_CACHE_DIR": str(tmp_path / "c")}
    (tmp_path / "c" / "numba").mkdir(parents=True)
    (tmp_path / "c" / "numba" / "snngen_x.py").write_text("x = 1\n")
    run = [sys.executable, "-m", "snngen", "cache"]
    info = json.loads(subprocess.run(run + ["info", "--json"], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert info["kernels"] == 1 and info["path"] == str(tmp_path / "c")
    out = subprocess.run(run + ["clear"], env=env, capture_output=True, text=True, check=True)
    assert "removed 1 file" in out.stdout
    assert not (tmp_path / "c" / "numba").exists()


def test_cache_key_ignores_values_and_sizes(cuba_model):
    from conftest import CUBA_PARAMS

    from snngen.backends import get_backend
    from snngen.runtime.allocate import structure_key
    keys = set()
    for n, tau in ((10, "20*ms"), (1000, "30*ms")):
        net = sg.Network(dt=1e-4)
        net.population("P", cuba_model, n, params={**CUBA_PARAMS, "taum": tau})
        keys.add(structure_key(net, get_backend("numba")))
    assert len(keys) == 1
    net = sg.Network(dt=1e-4)
    net.population("P", cuba_model, 10, params={**CUBA_PARAMS, "taum": np.full(10, 0.02)})
    assert structure_key(net, get_backend("numba")) not in keys  # per-neuron is structure


def test_concurrent_processes_share_one_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path / "cache"))
    script = tmp_path / "warm.py"
    script.write_text(SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), "100", "1.5"],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0]["spikes"] == outs[1]["spikes"] > 0
    assert len(list((tmp_path / "cache" / "numba").glob("snngen_*.py"))) == 1
    assert len(list((tmp_path / "cache" / "index").glob("*.json"))) == 1
    # the lock serialises compilation: the later process loads what the first compiled
    assert sum(o["compiled"] for o in outs) >= 1
    third = _run(tmp_path, 50, 1.2)
    assert third["compiled"] == 0
