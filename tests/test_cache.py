"""The kernel cache: warm starts compile nothing, values never recompile, corruption heals."""

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import snngen as sg
from snngen import cache
from snngen.errors import CacheError

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
    # (snngen's own time to the first step on a warm cache, ready_s, is not asserted: tests
    # do not time, and a loaded machine moved it past 1 s in a CI run)


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
    with pytest.warns(cache.CacheWarning, match="generated kernel"):
        assert len(build().i) == 4  # detected by its hash, regenerated, correct again
    assert cache.STATS["rendered"] == before + 1
    index = next((tmp_path / "cache" / "index").glob("*.json"))
    index.write_text("{not json")
    with pytest.warns(cache.CacheWarning, match="index entry"):
        assert len(build().i) == 4
    assert json.loads(index.read_text())["sha256"]
    assert cache.info()["quarantined"] == 2


def test_cli_info_and_clear(tmp_path):
    env = {**os.environ, "SNNGEN_CACHE_DIR": str(tmp_path / "c")}
    (tmp_path / "c" / "numba").mkdir(parents=True)
    (tmp_path / "c" / "numba" / "snngen_x.py").write_text("x = 1\n")
    (tmp_path / "c" / "quarantine" / "1" / "index").mkdir(parents=True)
    (tmp_path / "c" / "quarantine" / "1" / "index" / "k.json").write_text("{")
    run = [sys.executable, "-m", "snngen", "cache"]
    info = json.loads(subprocess.run(run + ["info", "--json"], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert info["kernels"] == 1 and info["path"] == str(tmp_path / "c")
    assert info["quarantined"] == 1
    out = subprocess.run(run + ["clear"], env=env, capture_output=True, text=True, check=True)
    assert "removed 2 file" in out.stdout
    assert not (tmp_path / "c" / "numba").exists()
    assert not (tmp_path / "c" / "quarantine").exists()


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


TINY = "from numba import njit\n\n\n@njit(cache=True)\ndef f(x):\n    return x + 1\n"


@pytest.mark.parametrize("ext", ["nbi", "nbc"])
def test_damaged_numba_files_of_snngen_functions_are_rebuilt(tmp_path, monkeypatch, ext):
    """Numba raises on an index or data file it cannot unpickle (every later run would fail
    alike): for snngen's functions that becomes a miss, with the files quarantined; other
    programs' functions are left to Numba."""
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "numba"
    folder.mkdir(parents=True)
    for stem in ("snngen_tiny_guard", "other_tiny_guard"):
        (folder / f"{stem}.py").write_text(TINY)
        assert cache.import_file(folder / f"{stem}.py", f"{stem}_{ext}_1").f(1) == 2
        for damaged in (folder / "__pycache__").glob(f"{stem}.*.{ext}"):
            damaged.write_bytes(b"\x00garbage")
    # a new module from the same file: a new dispatcher that reads Numba's files again
    with pytest.warns(cache.CacheWarning, match="Numba's compiled code") as caught:
        assert cache.import_file(folder / "snngen_tiny_guard.py", f"snngen_tiny_guard_{ext}_2"
                                 ).f(1) == 2
    assert len([w for w in caught if w.category is cache.CacheWarning]) == 1
    assert len(list((tmp_path / "cache" / "quarantine").rglob(f"*.{ext}"))) == 1
    assert all(f.read_bytes()[:1] != b"\x00" for f in (folder / "__pycache__").glob("snngen*"))
    with pytest.raises(Exception, match="load key"):
        cache.import_file(folder / "other_tiny_guard.py", f"other_tiny_guard_{ext}_2").f(1)


def test_damaged_compiled_binaries_are_quarantined(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    path = cache.store_binary("cuda-host", "snngen_k", ".so", b"\x7fELF" + bytes(100))
    assert cache.find_binary("cuda-host", "snngen_k", ".so") == path
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(cache.CacheWarning, match=path.name):
        assert cache.find_binary("cuda-host", "snngen_k", ".so") is None
    assert not path.exists() and list((tmp_path / "quarantine").rglob(path.name))


@pytest.mark.skipif(not __import__("snngen.backends.cuda.compiler").backends.cuda.compiler
                    .available(), reason="no NVRTC and no nvcc")
def test_damaged_cubin_is_compiled_again(tmp_path, monkeypatch):
    from snngen.backends.cuda import compiler
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    source = 'extern "C" __global__ void k(float* x) { x[0] = 1.0f; }\n'
    path, new = compiler.compile_cubin(source, "sm_80", "float32")
    assert new and compiler.compile_cubin(source, "sm_80", "float32") == (path, False)
    path.write_bytes(b"")
    with pytest.warns(cache.CacheWarning, match="compiled kernel"):
        again, new = compiler.compile_cubin(source, "sm_80", "float32")
    assert new and again.stat().st_size > 100


def test_orphans_of_killed_writers_are_removed_under_the_lock(tmp_path, monkeypatch):
    """Every writer holds the lock, so whoever holds it next may remove .tmp-* files; Numba's
    own temporary files (written without snngen's lock) are left alone."""
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    orphans = [tmp_path / "numba" / ".tmp-abc.py", tmp_path / "index" / ".tmp-x.json",
               tmp_path / "cuda-host" / ".tmp-y.so"]
    numba_tmp = tmp_path / "numba" / "__pycache__" / "snngen_a.run-1.py311.nbi.tmp.0123"
    for f in orphans + [numba_tmp]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("half")
    cache._SWEPT.discard(str(tmp_path.resolve()))
    with cache.lock():
        pass
    assert not any(f.exists() for f in orphans) and numba_tmp.exists()
    with pytest.raises(AssertionError, match="lock"):
        cache.write_atomic(tmp_path / "index" / "k.json", "{}")  # writers hold the lock


def test_lock_is_reentrant(tmp_path, monkeypatch):
    """compile_cubin/build_host take the lock, and their callers may hold it already."""
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    done = []

    def nested():
        with cache.lock(), cache.lock():
            done.append(True)
    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done == [True]


def test_unwritable_cache_is_a_cache_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path / "file" / "cache"))
    with pytest.raises(CacheError, match="SNNGEN_CACHE_DIR"):
        cache.lock()
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    with cache.lock(), pytest.raises(CacheError, match="SNNGEN_CACHE_DIR"):
        cache.write_atomic(tmp_path / "file" / "x.json", "{}")


def _key(dtype="float32", method=None, eqs="dv/dt = (El - v) / tau : 1", threshold="v > 1",
         reset="v = 0", refractory=None, per_neuron=(), synapse="v += w", target="B",
         monitor="spikes", n=10, tau=0.01, seed=0, batch=1, version=None):
    """The structure key of a small two-population network; each argument changes one thing."""
    from snngen.backends import get_backend
    from snngen.runtime.allocate import structure_key
    model = sg.NeuronModel(eqs, threshold=threshold, reset=reset, refractory=refractory,
                           name="m")
    net = sg.Network(dt=1e-4, seed=seed, batch=batch, dtype=dtype)
    a, b = (net.population(name, model, size, method=method, params={
        p: np.full(size, v) if p in per_neuron else v for p, v in (("El", 1.5), ("tau", tau))})
        for name, size in (("A", n), ("B", n + 1)))
    net.connect(a, {"A": a, "B": b}[target], synapse, sg.FixedProbability(0.5), w=0.1)
    if monitor == "spikes":
        net.monitor_spikes(b)
    elif monitor == "rate":
        net.monitor_rate(b)
    else:
        net.monitor_state(b, monitor)
    backend = get_backend("numba")
    if version is not None:  # another Numba or generator: the backend's version key
        backend = type("Backend", (), {"version_key": lambda self: version})()
    return structure_key(net, backend)


STRUCTURAL = {
    "dtype": {"dtype": "float64"},
    "integration method": {"method": "euler"},
    "equations": {"eqs": "dv/dt = (El - 2 * v) / tau : 1"},
    "threshold": {"threshold": "v > 2"},
    "reset": {"reset": "v = 0.5"},
    "refractory": {"refractory": "2*ms", "eqs": "dv/dt = (El - v) / tau : 1 (unless "
                   "refractory)"},
    "per-neuron parameter set": {"per_neuron": ("tau",)},
    "another per-neuron parameter": {"per_neuron": ("El",)},
    "synapse model": {"synapse": "v -= w"},
    "projection endpoints": {"target": "A"},
    "monitor kind": {"monitor": "rate"},
    "monitored variable": {"monitor": "v"},
    "backend version": {"version": "numba 0.0 generator 0"},
}


@pytest.mark.parametrize("change", sorted(STRUCTURAL))
def test_cache_key_changes_with_every_structural_input(change):
    """A kernel is shared only by networks that generate the same code (a key without the
    dtype once loaded the float32 kernel for a float64 network)."""
    assert _key(**STRUCTURAL[change]) != _key()


@pytest.mark.parametrize("change", [{"n": 1000}, {"tau": 0.05}, {"seed": 7}, {"batch": 4}],
                         ids=["size", "parameter value", "seed", "batch"])
def test_cache_key_ignores_values_sizes_seeds_and_batch(change):
    """Values, sizes, seeds and the batch size are kernel arguments (the batch is a loop
    bound: states are (batch, n) arrays), so changing them never recompiles."""
    assert _key(**change) == _key()


def test_the_same_network_has_the_same_key_in_another_process():
    """The key of a structure is stable across processes (no hash randomisation in it)."""
    code = ("import sys; sys.path.insert(0, 'tests'); from test_cache import _key; "
            "print(_key(per_neuron=('tau', 'El'), monitor='v'))")
    keys = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}
                           ).stdout.strip() for seed in ("1", "2")}
    assert len(keys) == 1 and len(keys.pop()) == 32


def test_generated_kernels_name_the_compiled_modules_they_call(tmp_path, monkeypatch):
    """Numba's cache checks the generated file, not snngen.draw/linalg that its kernels call:
    their digest is in the text, so an edited draw.py gives a new file (a plant in draw.py
    went unseen with a warm cache before)."""
    import snngen as sg
    from snngen.backends.numba import _callee_digest

    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    pkg = Path(sg.__file__).parent
    want = cache.digest("".join((pkg / f).read_text() for f in ("draw.py", "linalg.py")))[:16]
    assert _callee_digest() == want
    net = sg.Network(dt=1e-4)
    net.population("P", sg.NeuronModel("dv/dt = -v / tau : 1"), 2, params={"tau": 0.01})
    sim = net.build()
    assert want in Path(sim.source_path).read_text().splitlines()[0]


def test_the_structure_key_follows_every_module_that_shapes_the_kernel_text(monkeypatch):
    """Unit scales of constants in equations ("mV") are folded into the generated text, so
    units.py is part of the generator: its edits must reach the structure key (it was not in
    the digest, so an edited units.py met kernels rendered by the old one)."""
    from snngen.backends import templates
    from snngen.backends.cuda import _generator_digest as cuda_digest
    from snngen.backends.numba import _generator_digest as numba_digest
    folded = str(sg.discretise(sg.NeuronModel("dv/dt = (3*mV - v) / tau : volt")))
    assert "0.003" in folded and "mV" not in folded  # the scale is in the text
    numba_files = [templates.template_dir() / "numba" / "program.py.j2"]
    cuda_files = sorted((templates.template_dir() / "cuda").iterdir())
    assert numba_digest() == templates.generator_digest(numba_files, extra=("draw.py",))
    assert cuda_digest() == templates.generator_digest(cuda_files)
    with_units = templates.generator_digest(numba_files)
    monkeypatch.setattr(templates, "GENERATOR_SOURCES",
                        tuple(f for f in templates.GENERATOR_SOURCES if f != "units.py"))
    assert templates.generator_digest(numba_files) != with_units  # units.py is read
