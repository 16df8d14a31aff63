"""Store and restore a simulation (issue 19, item 6): ``sim.store``/``sim.restore`` in memory,
``sim.save``/``sim.load`` through a file, exact to the bit, in another process too.

One small network covers every kind of state carried between steps: LIF neurons with
refractoriness and ``(unless refractory)``, a Poisson group, a spike source (its cursor),
STDP with event-driven traces (batched weights, last-update steps), per-synapse delays
(input in flight in the accumulation buffers), a per-projection delay (spikes in flight in
the rings), spike, state and rate monitors, batch 2. The host emulation of the CUDA backend
(``cuda-host``) runs the same tests where g++ is present, as tests/test_cuda.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import snngen as sg
from snngen.backends.cuda import compiler
from snngen.errors import CheckpointError, InvalidValueError, NetworkTooLargeError
from snngen.runtime import snapshot

HERE = Path(__file__).resolve().parent
HOST_CUDA = pytest.param("cuda-host", marks=pytest.mark.skipif(
    not compiler.shutil.which(os.environ.get("CXX", "g++")),
    reason="the host emulation needs g++"))
BACKENDS = ["numba", HOST_CUDA]

LIF = sg.NeuronModel("""
    dv/dt = (ge - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
""", threshold="v > Vt", reset="v = Vr", refractory="3*ms", name="lif_store_test")
# the same variables, another threshold: another network
LIF_OTHER = sg.NeuronModel("""
    dv/dt = (ge - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
""", threshold="v > Vt + 1*mV", reset="v = Vr", refractory="3*ms", name="lif_store_other")
STDP = sg.SynapseModel("""
    w : volt
    dApre/dt = -Apre / taupre : volt (event-driven)
    dApost/dt = -Apost / taupost : volt (event-driven)
""", on_pre="""
    ge_post += w
    Apre += dApre
    w = clip(w + Apost, 0*mV, wmax)
""", on_post="""
    Apost += dApost
    w = clip(w + Apre, 0*mV, wmax)
""", name="stdp_store_test")
PARAMS = {"taum": "10*ms", "taue": "5*ms", "El": "-60*mV", "Vt": "-50*mV", "Vr": "-65*mV"}
N, DT = 60, 1e-4


def network(n=N, dtype="float64", batch=2, dt=DT, seed=7, model=LIF, explicit=None):
    """The test network and its monitors; ``explicit`` replaces the recurrent rule by these
    (pre, post) pairs."""
    net = sg.Network(dt=dt, seed=seed, dtype=dtype, batch=batch)
    pop = net.population("P", model, n, params=PARAMS,
                         init={"v": sg.Uniform(-65e-3, -50e-3)})
    drive = net.poisson("X", 200, rates="150*Hz")
    # 49.8, 49.9, 50.0, ... ms: spikes in flight through 'kick' at 50 ms
    times = np.tile(np.arange(40) * 6.1e-3 + 1e-3, 5) + np.repeat(np.arange(5), 40) * 1e-4
    source = net.spike_source("S", 5, indices=np.repeat(np.arange(5), 40), times=times)
    net.connect(drive, pop, STDP, {"p": 0.2}, w=sg.Uniform(0, 2e-3), name="plastic",
                params={"taupre": "15*ms", "taupost": "20*ms", "wmax": "3*mV",
                        "dApre": "0.1*mV", "dApost": "-0.12*mV"})
    rule = {"p": 0.1} if explicit is None else {"i": explicit[0], "j": explicit[1]}
    net.connect(pop, pop, "ge += w", rule, w="0.5*mV", delay="min(abs(i - j), 30) * 0.1*ms",
                name="rec")
    net.connect(source, pop, "v += w", "all_to_all", w="(i + 1) * 0.5*mV", delay="0.5*ms",
                name="kick")
    mons = {"spikes": net.monitor_spikes(pop), "input": net.monitor_spikes(drive),
            "state": net.monitor_state(pop, ["v", "ge"], indices=[0, 5, n - 1], every=7),
            "rate": net.monitor_rate(pop)}
    return net, pop, mons


def observe(sim, mons) -> dict:
    """Everything a continuation depends on or shows: the step, every stored argument (as the
    kernels see it) and every monitor's data, copied."""
    out = {"step": np.array(sim.step)}
    for name in snapshot.state_names(sim.spec):
        out[f"arg {name}"] = snapshot._read(sim, name)
    for key, mon in mons.items():
        for field, value in mon.data.items():
            out[f"mon {key}.{field}"] = np.array(value, copy=True)
    return out


def assert_same(got: dict, want: dict):
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
        assert np.array_equal(got[key], want[key], equal_nan=True), key


@pytest.fixture(scope="module", params=BACKENDS)
def built(request):
    net, pop, mons = network()
    return request.param, net, mons, net.build(backend=request.param)


def test_state_names_cover_every_mutable_role(built):
    backend, net, mons, sim = built
    roles = {name: role for name, _k, _n, role in sim.spec["args"]}
    stored = set(snapshot.state_names(sim.spec))
    want = {"P__v", "P__ge", "P___last", "P___ring", "P___ringn", "X___ring", "X___ringn",
            "S___ring", "S___ringn", "S__cursor", "plastic__w", "plastic__Apre",
            "plastic__Apost", "plastic__lastupdate", "rec__buf", "rec__w", "kick__w"}
    assert want <= stored, want - stored
    for name, role in roles.items():  # the rest is fixed once built (or per-step scratch)
        assert (name in stored) == (role not in snapshot.CONSTANT_ROLES | {"monitor"}
                                    and np.ndim(sim.arrays[name]) > 0), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_restore_repeats_the_run_step_for_step(backend):
    net, pop, mons = network()
    sim = net.build(backend=backend)
    sim.run(0.05)
    at_store = observe(sim, mons)
    # there is something in flight and something refractory at the store point
    assert np.any(at_store["arg rec__buf"] != 0), "input in flight through per-synapse delays"
    ringn = at_store["arg S___ringn"]  # slots of the last (delay) steps: not delivered yet
    slots = [s % ringn.shape[1] for s in range(sim.step - ringn.shape[1] + 1, sim.step)]
    assert ringn[:, slots].sum() > 0, "spikes in flight through the 0.5 ms delay"
    assert np.any(sim.step - at_store["arg P___last"] < 30), "refractory neurons"
    assert 0 < at_store["arg S__cursor"][0] < 200, "the spike source is half-way through"
    sim.store()
    sim.run(0.1)
    first = observe(sim, mons)
    assert len(first["mon spikes.i"]) > len(at_store["mon spikes.i"]) + 50
    assert not np.array_equal(first["arg plastic__w"], at_store["arg plastic__w"])
    assert len(first["mon input.i"]) > 1024  # the spike buffers grew after the store
    sim.restore()
    assert_same(observe(sim, mons), at_store)  # the monitors are rewound too
    sim.run(0.1)
    assert_same(observe(sim, mons), first)
    sim.restore()  # a snapshot can be restored again
    sim.run(0.04)
    sim.run(0.06)  # in two pieces: the same
    assert_same(observe(sim, mons), first)


@pytest.mark.parametrize("backend", BACKENDS)
def test_restore_puts_back_values_changed_on_the_host(backend):
    """``sim.state`` and ``sim.synapses`` hand out arrays the user may change; a restore
    writes into those same arrays, and the kernels see the restored values."""
    net, pop, mons = network()
    sim = net.build(backend=backend)
    sim.run(0.02)
    v = sim.state(pop, "v")
    w = sim.synapses(net.projections["rec"], "w")
    sim.store("before")
    v0, w0 = v.copy(), w.copy()
    sim.run(0.03)
    want = observe(sim, mons)
    v[...] = -70e-3
    w[...] = 0.0
    sim.restore("before")
    assert np.array_equal(v, v0) and np.array_equal(w, w0)
    assert sim.state(pop, "v") is v
    sim.run(0.03)
    assert_same(observe(sim, mons), want)


def test_named_snapshots_and_unknown_names():
    net, pop, mons = network()
    sim = net.build()
    with pytest.raises(InvalidValueError, match="no snapshot named 'default'.*none is stored"):
        sim.restore()
    sim.run(0.01)
    sim.store("a")
    sim.run(0.01)
    sim.store("b")
    at_b = observe(sim, mons)
    sim.run(0.01)
    sim.store("b")  # replaced
    with pytest.raises(InvalidValueError, match=r"no snapshot named 'c'.*stored: 'a', 'b'"):
        sim.restore("c")
    for bad in ("", 3, None):
        with pytest.raises(InvalidValueError, match="name must be a non-empty string"):
            sim.store(bad)
    sim.restore("a")
    assert sim.step == 100 and mons["spikes"].step.max() < 100
    sim.run(0.01)
    assert_same(observe(sim, mons), at_b)
    sim.restore("b")
    assert sim.step == 300
    # a monitor emptied before a store is empty after the restore, as it was
    all_spikes = mons["spikes"].step.copy()
    mons["spikes"].data = {}
    mons["state"].data = {}
    sim.store("emptied")
    sim.run(0.01)
    assert len(mons["spikes"].step) > len(all_spikes) and mons["state"].v.shape[1] == 15
    sim.restore("emptied")
    assert not mons["spikes"].data and not mons["state"].data
    sim.run(0.01)  # the spike monitor shows every spike again, the state monitor the new ones
    assert np.array_equal(mons["spikes"].step[:len(all_spikes)], all_spikes)
    assert mons["state"].v.shape[1] == 15


def test_snapshots_count_in_held_memory_and_may_be_refused():
    net, pop, mons = network()
    sim = net.build()
    sim.run(0.01)
    before = sim.held_bytes()
    sim.store()
    assert sim.held_bytes() > before
    sim.max_memory = sim.held_bytes() + 100  # a limit the next snapshot passes
    with pytest.raises(NetworkTooLargeError, match="nothing was stored"):
        sim.store("second")
    sim.store()  # replacing a snapshot of the same size needs nothing more
    with pytest.raises(InvalidValueError, match="stored: 'default'"):
        sim.restore("second")


# -- files ----------------------------------------------------------------------------------
def _child(path: str, out: str, backend: str, seconds: float):
    """Run in a fresh process: build the network, load the snapshot, continue, write what it
    observed."""
    net, pop, mons = network()
    sim = net.build(backend=backend)
    sim.load(path)
    sim.run(seconds)
    np.savez(out, **observe(sim, mons))


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_then_load_in_a_fresh_process_continues_identically(backend, tmp_path):
    net, pop, mons = network()
    sim = net.build(backend=backend)
    sim.run(0.05)
    path = tmp_path / "warm.npz"
    sim.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["warm.npz"]  # no temporary file left
    sim.run(0.05)
    want = observe(sim, mons)
    out = tmp_path / "child.npz"
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_store; "
            f"test_store._child({str(path)!r}, {str(out)!r}, {backend!r}, 0.05)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        assert_same({k: data[k] for k in data.files}, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_into_a_simulator_that_ran_elsewhere(backend, tmp_path):
    """A loaded snapshot replaces whatever the simulator did before (here: a longer run, with
    larger spike buffers and more records)."""
    net, pop, mons = network()
    sim = net.build(backend=backend)
    sim.run(0.03)
    sim.save(tmp_path / "s.npz")
    sim.run(0.04)
    want = observe(sim, mons)
    sim.run(0.05)
    sim.load(tmp_path / "s.npz")
    assert sim.step == 300
    sim.run(0.04)
    assert_same(observe(sim, mons), want)


@pytest.mark.skipif(not compiler.shutil.which(os.environ.get("CXX", "g++")),
                    reason="the host emulation needs g++")
def test_a_snapshot_moves_between_backends(tmp_path):
    """A snapshot belongs to the network, not the backend: saved from the Numba backend, it
    continues on the CUDA host emulation with the same spikes (float64; states agree to
    rounding, as between the backends: tests/test_cuda.py)."""
    net, pop, mons = network()
    ref = net.build()
    ref.run(0.05)
    ref.save(tmp_path / "numba.npz")
    ref.run(0.05)
    want = observe(ref, mons)
    net2, pop2, mons2 = network()
    emu = net2.build(backend="cuda-host")
    emu.load(tmp_path / "numba.npz")
    emu.run(0.05)
    got = observe(emu, mons2)
    for key in ("mon spikes.step", "mon spikes.i", "mon spikes.b", "mon input.i"):
        assert np.array_equal(got[key], want[key]), key
    np.testing.assert_allclose(got["arg P__v"], want["arg P__v"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got["arg plastic__w"], want["arg plastic__w"], rtol=1e-9,
                               atol=1e-15)


# -- refusals ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved snapshot of the test network at 30 ms, and the folder it is in."""
    folder = tmp_path_factory.mktemp("snapshots")
    net, pop, mons = network()
    sim = net.build()
    sim.run(0.03)
    sim.save(folder / "good.npz")
    return folder


def _target():
    net, pop, mons = network()
    sim = net.build()
    sim.run(0.02)
    sim.store("mark")
    return sim, mons, observe(sim, mons)


def _refused(sim, mons, before, path, match, error=CheckpointError):
    with pytest.raises(error, match=match):
        sim.load(path)
    assert_same(observe(sim, mons), before)  # nothing changed, monitors included


def _save_of(tmp_path, name, **changes):
    net, pop, mons = network(**changes)
    sim = net.build()
    sim.run(0.01)
    sim.save(tmp_path / name)
    return tmp_path / name


def test_snapshots_of_other_networks_are_refused_and_change_nothing(saved, tmp_path):
    sim, mons, before = _target()
    cases = [
        (dict(dt=2e-4), r"time step \(dt\) is 0.0002, this network's 0.0001"),
        (dict(batch=3), r"its batch is 3, this network's 2; build the network with batch=3"),
        (dict(dtype="float32"), r"precision \(dtype\) is 'float32'"),
        (dict(seed=8), r"its seed is 8, this network's 7"),
        (dict(n=61), r"has shape \(.*\) \(.*\) there, \(.*\) \(.*\) here"),
        (dict(model=LIF_OTHER), "saved from another network"),
    ]
    for k, (changes, match) in enumerate(cases):
        _refused(sim, mons, before, _save_of(tmp_path, f"other{k}.npz", **changes), match)
    # the same sizes and synapse count, other synapses: the connectivity digest tells
    rng = np.random.default_rng(0)
    pairs = [rng.integers(0, N, 300), rng.integers(0, N, 300)]
    a = _save_of(tmp_path, "pairs_a.npz", explicit=pairs)
    net, pop, mons_b = network(explicit=[pairs[0], (pairs[1] + 1) % N])
    sim_b = net.build()
    sim_b.run(0.01)
    before_b = observe(sim_b, mons_b)
    _refused(sim_b, mons_b, before_b, a, "connectivity, delays, spike-source times")
    # and the good file still loads into the first simulator afterwards
    sim.load(saved / "good.npz")
    assert sim.step == 300
    sim.restore("mark")
    assert_same(observe(sim, mons), before)


def test_damaged_files_are_refused_and_change_nothing(saved, tmp_path):
    sim, mons, before = _target()
    good = (saved / "good.npz").read_bytes()
    cases = {}
    cases["truncated"] = good[:len(good) // 2]
    flipped = bytearray(good)
    with zipfile.ZipFile(saved / "good.npz") as zf:  # a byte inside the states' data
        info = zf.getinfo("array/P__v.npy")
    local = good[info.header_offset:info.header_offset + 30]  # the member's local header
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
        int.from_bytes(local[28:30], "little")
    at = start + info.file_size - 5
    flipped[at] ^= 0x40
    cases["flipped"] = bytes(flipped)
    cases["text"] = b"not a snapshot at all\n"
    cases["empty"] = b""
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        _refused(sim, mons, before, tmp_path / name, "cannot be read as a snapshot")
    _refused(sim, mons, before, tmp_path / "missing.npz", "no snapshot at")
    _refused(sim, mons, before, 3, "must be a file name", InvalidValueError)

    def edited(name, edit):
        with np.load(saved / "good.npz") as data:
            arrays = {k: data[k].copy() for k in data.files}
        meta = json.loads(bytes(arrays["meta"]).decode())
        edit(arrays, meta)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    def ring(arrays, meta):
        arrays["array/P___ring"][0, 0, 0] = N
    _refused(sim, mons, before, edited("ring.npz", ring), "'P___ring' holds 60 .* out of range")

    def cursor(arrays, meta):
        arrays["array/S__cursor"][1] = 201
    _refused(sim, mons, before, edited("cursor.npz", cursor), "'S__cursor' holds 201")

    def cursor_behind(arrays, meta):  # in range, but behind the step: events replayed
        arrays["array/S__cursor"][0] -= 1
    _refused(sim, mons, before, edited("behind.npz", cursor_behind),
             "'S__cursor' holds .* not the position of step")

    def kind(arrays, meta):
        meta["kind"] = "trainer checkpoint"
    _refused(sim, mons, before, edited("kind.npz", kind), "not a simulator snapshot")

    def newer(arrays, meta):
        meta["format"] = snapshot.FORMAT + 1
    _refused(sim, mons, before, edited("newer.npz", newer), "reads formats <= 1")

    def dropped(arrays, meta):
        del arrays["array/P__ge"]
    _refused(sim, mons, before, edited("dropped.npz", dropped), "not the ones its description")

    def spikes(arrays, meta):
        arrays["monitor/0/i"][:] = -1
    _refused(sim, mons, before, edited("spikes.npz", spikes), "spikes out of range")

    def step(arrays, meta):
        meta["step"] = 10  # earlier than the spikes it holds
    _refused(sim, mons, before, edited("step.npz", step),
             "spikes out of range|records|not the position of step")


def test_save_refuses_folders_and_leaves_earlier_files(tmp_path, monkeypatch):
    net, pop, mons = network()
    sim = net.build()
    sim.run(0.01)
    with pytest.raises(CheckpointError, match="is a folder"):
        sim.save(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        sim.save(tmp_path / "no" / "s.npz")
    with pytest.raises(InvalidValueError, match="must be a file name"):
        sim.save(None)
    sim.save(tmp_path / "s.npz")
    first = (tmp_path / "s.npz").read_bytes()
    sim.run(0.01)

    def disk_full(fh, **arrays):  # a write that fails half-way
        fh.write(b"PK partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(snapshot.np, "savez", disk_full)
    with pytest.raises(CheckpointError, match="No space left.*previous file"):
        sim.save(tmp_path / "s.npz")
    monkeypatch.undo()
    assert (tmp_path / "s.npz").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # no temporary file left
