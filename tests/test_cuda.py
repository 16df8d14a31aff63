"""The CUDA backend without a GPU: every generated source compiles for sm_80 and sm_90, and the
same source, run on the CPU through the host shim (backend='cuda-host'), reproduces the Numba
backend: identical spike trains for deterministic input, states within float tolerance.

The networks cover every kernel kind: neuron steps (exact, Euler, per-neuron parameters, time
tables, refractoriness), Poisson and spike-time sources, pre- and postsynaptic delivery
(parallel with atomics, and serial), event-driven traces (STDP), per-projection and
per-synapse delays, spike, state and rate monitors, and batch > 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import snngen as sg
from snngen.backends.cuda import compiler
from snngen.backends.cuda.render import describe, render
from snngen.errors import BackendUnsupported, CudaCompileError
from snngen.ir.lower import lower

pytestmark = pytest.mark.skipif(not compiler.shutil.which(os.environ.get("CXX", "g++")),
                                reason="the host emulation needs g++")

LIF = sg.NeuronModel("""
    dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
    dgi/dt = -gi / taui : volt
""", threshold="v > Vt", reset="v = Vr", refractory="tref", name="lif_cuda_test")
LIF_PARAMS = {"taum": "20*ms", "taue": "5*ms", "taui": "10*ms", "Vt": "-50*mV", "Vr": "-60*mV",
              "El": "-49*mV", "tref": "2*ms"}

IZH = sg.NeuronModel("""
    dv/dt = (0.04*v**2 + 5*v + 140 - u + I) / ms : 1
    du/dt = a*(b*v - u) / ms : 1
    dI/dt = -I / tauI : 1
""", threshold="v >= 30", reset="v = c; u = u + d", name="izh_cuda_test")

STDP = sg.SynapseModel("""
    w : 1
    dApre/dt = -Apre / taupre : 1 (event-driven)
    dApost/dt = -Apost / taupost : 1 (event-driven)
""", on_pre="""
    ge_post += w
    Apre += dApre
    w = clip(w + Apost, 0, gmax)
""", on_post="""
    Apost += dApost
    w = clip(w + Apre, 0, gmax)
""", name="stdp_cuda_test")

SONG = sg.NeuronModel("""
    dv/dt = (ge * (Ee - v) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
""", threshold="v > vt", reset="v = vr", name="song_cuda_test")

# a synapse whose postsynaptic write is not an increment: must run serially
SATURATING = sg.SynapseModel("w : volt", on_pre="ge_post = min(ge_post + w, 5*mV)",
                             name="saturating_cuda_test")


def cuba(dtype="float64", batch=1, delay=0.0):
    net = sg.Network(dt=1e-4, seed=4, dtype=dtype, batch=batch)
    pop = net.population("P", LIF, 400, params=LIF_PARAMS,
                         init={"v": sg.Uniform(-60e-3, -50e-3)})
    net.connect(pop[:320], pop, "ge += w", sg.FixedProbability(0.1), w="1.62*mV", name="exc",
                delay=delay)
    net.connect(pop[320:], pop, SATURATING, sg.FixedProbability(0.1), w="-9*mV", name="inh")
    return net, pop


def izhikevich(dtype="float64", batch=1):
    rng = np.random.default_rng(0)
    n = 200
    r = rng.random(n)
    net = sg.Network(dt=0.5e-3, seed=2, dtype=dtype, batch=batch)
    pop = net.population("cortex", IZH, n, params={
        "a": 0.02 + 0.08 * r, "b": 0.2 + 0.05 * r, "c": -65 + 15 * r**2, "d": 8 - 6 * r**2,
        "tauI": "1*ms"}, init={"v": -65.0, "u": -13.0}, method="euler")
    thal = net.poisson("thalamus", n, rates=np.linspace(20, 80, n))
    net.connect(thal, pop, "I += w", "one_to_one", w=10.0)
    net.connect(pop, pop, "I += w", {"p": 0.1}, w=sg.Uniform(-5, 5), name="rec",
                delay="abs(i - j) * 0.5*ms")
    return net, pop


def stdp(dtype="float64", w0=None):
    net = sg.Network(dt=1e-4, seed=3, dtype=dtype)
    inputs = net.poisson("inputs", 200, rates="20*Hz")
    out = net.population("out", SONG, 2, params={
        "taum": "10*ms", "Ee": "0*mV", "El": "-74*mV", "vt": "-54*mV", "vr": "-60*mV",
        "taue": "5*ms"}, init={"v": "-60*mV"})
    gmax = 0.05
    syn = net.connect(inputs, out, STDP, "all_to_all",
                      w=sg.Uniform(0, gmax) if w0 is None else w0, params={
        "taupre": "20*ms", "taupost": "20*ms", "gmax": gmax, "dApre": 0.01 * gmax,
        "dApost": -0.01 * gmax * 1.05}, name="plastic")
    return net, out, syn


def timed(dtype="float64", batch=2):
    net = sg.Network(dt=1e-4, seed=5, dtype=dtype, batch=batch)
    steps = np.linspace(0, 3e-9, 40)[:, None] * np.linspace(0.5, 1.5, 50)[None, :]
    model = sg.NeuronModel("dv/dt = (R*I - v) / tau : volt", threshold="v > 10*mV",
                           reset="v = vr", refractory="1*ms", name="timed_cuda_test")
    pop = net.population("T", model, 50, params={"vr": "-1*mV",
        "I": sg.TimedArray(steps, 2.5e-3), "R": "10*Mohm", "tau": np.linspace(5e-3, 15e-3, 50)})
    src = net.spike_source("S", 10, indices=np.arange(10).repeat(3),
                           times=np.tile([1e-3, 5e-3, 9e-3], 10) + np.arange(30) * 1e-4)
    net.connect(src, pop, "v += w", "all_to_all", w="2*mV", delay="0.3*ms", name="drive")
    return net, pop


def noisy(dtype="float32", batch=2):
    """White noise: additive (euler) in one population, multiplicative (heun) in another."""
    net = sg.Network(dt=1e-4, seed=6, dtype=dtype, batch=batch)
    ou = sg.NeuronModel("dv/dt = (mu - v) / tau + sigma * sqrt(2 / tau) * xi : 1 "
                        "(unless refractory)", threshold="v > 1", reset="v = 0",
                        refractory=0.002)
    pop = net.population("N", ou, 50, params={"mu": 0.8, "tau": 0.01, "sigma": 0.3})
    gbm = sg.NeuronModel("dx/dt = -x / tau + s * x * xi_a / sqrt(tau) + xi_b / sqrt(tau) : 1")
    net.population("G", gbm, 30, params={"tau": 0.02, "s": 0.2}, init={"x": 1.0})
    return net, pop


def randomised(dtype="float32", batch=2):
    """rand() in a threshold and a reset, randn() in on_pre."""
    net = sg.Network(dt=1e-4, seed=7, dtype=dtype, batch=batch)
    model = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="rand() < r * dt",
                           reset="v = v + rand() - rand()", name="random_cuda_test")
    pop = net.population("R", model, 40, params={"tau": 0.01, "r": 30.0})
    net.connect(pop, pop, sg.SynapseModel("w : 1", on_pre="v += w * randn()"),
                sg.FixedProbability(0.2), w=0.1)
    return net, pop


def nmda(dtype="float32", batch=2):
    """Clock-driven synaptic equations and a summed variable (test_clock_driven.py)."""
    from test_clock_driven import NEURON, NMDA, PARAMS, SYN
    net = sg.Network(dt=1e-4, seed=8, dtype=dtype, batch=batch)
    src = net.poisson("S", 20, rates=50.0)
    pop = net.population("P", NEURON, 10, params=PARAMS, init={"v": -0.065})
    net.connect(src, pop, NMDA, sg.FixedProbability(0.5), w=1.0, params=SYN, name="nmda")
    return net, pop


def conditional(dtype="float32", batch=2):
    """Refractoriness given as a condition, read by a synapse (not_refractory_post)."""
    net = sg.Network(dt=1e-4, seed=9, dtype=dtype, batch=batch)
    model = sg.NeuronModel("dv/dt = (El - v) / taum : volt", threshold="v > -50*mV",
                           reset="v = -45*mV", refractory="v > -52*mV", name="cond_cuda")
    pop = net.population("C", model, 20, params={"El": "-65*mV", "taum": "10*ms"},
                         init={"v": -0.06})
    src = net.poisson("S", 10, rates=100.0)
    net.connect(src, pop, "v += w * not_refractory_post", sg.FixedProbability(0.5),
                w="15*mV")
    return net, pop


def delayed_stdp(dtype="float32", batch=2):
    """STDP with per-synapse delays, delivered when due (test_delays.py)."""
    from test_delays import LIF, STDP
    net = sg.Network(dt=1e-4, seed=10, dtype=dtype, batch=batch)
    src = net.poisson("X", 30, rates=40.0)
    pop = net.population("P", LIF, 5, params={"tau": 0.01})
    net.connect(src, pop, STDP, "all_to_all", w=0.3, params={"tau": 0.02},
                delay=np.random.default_rng(0).uniform(0, 5e-3, 150))
    return net, pop


def adaptive(dtype="float32", batch=2):
    """lastspike and not_refractory in a neuron model; a (constant over dt) draw."""
    from test_spike_variables import ADAPTIVE, ADAPTIVE_PARAMS
    net = sg.Network(dt=1e-4, seed=11, dtype=dtype, batch=batch)
    pop = net.population("A", ADAPTIVE, 10, params={**ADAPTIVE_PARAMS, "I": 3e-9},
                         init={"v": -0.065})
    from test_rand import CONSTANT
    net.population("K", CONSTANT, 10, params={"mu": 0.5, "sigma": 2.0, "tau": 0.01,
                                              "p": 0.01})
    net.run_regularly(pop, "v = v + (1 + i / N) * rand() * mV", dt="1*ms")
    return net, pop


def _run(net_factory, backend, duration, monitors=("spikes",), **kw):
    built = net_factory(**kw)
    net, pop = built[0], built[1]
    mons = {}
    if "spikes" in monitors:
        mons["spikes"] = net.monitor_spikes(pop)
    if "state" in monitors:
        n = pop.population.n
        mons["state"] = net.monitor_state(pop, pop.population.model.state_names[:2],
                                          indices=sorted({0, min(3, n - 1), n - 1}), every=3)
    if "rate" in monitors:
        mons["rate"] = net.monitor_rate(pop)
    sim = net.build(backend=backend)
    sim.run(duration / 2)
    sim.run(duration / 2)  # two calls: state and monitors must carry over
    return sim, built, mons


def _compare(factory, duration, monitors=("spikes",), rtol=1e-9, check_states=True, **kw):
    ref, built_r, mr = _run(factory, "numba", duration, monitors, **kw)
    emu, built_e, me = _run(factory, "cuda-host", duration, monitors, **kw)
    spikes = mr.get("spikes")
    if spikes is not None:
        assert len(spikes.i) > 20, "the test network should spike"
        np.testing.assert_array_equal(me["spikes"].step, spikes.step)
        np.testing.assert_array_equal(me["spikes"].b, spikes.b)
        np.testing.assert_array_equal(me["spikes"].i, spikes.i)
    for name in built_r[1].population.model.state_names if check_states else ():
        np.testing.assert_allclose(emu.state(built_e[1], name), ref.state(built_r[1], name),
                                   rtol=rtol, atol=rtol * 1e-3)
    if "state" in mr:
        for v in built_r[1].population.model.state_names[:2]:
            np.testing.assert_allclose(me["state"].data[v], mr["state"].data[v], rtol=rtol,
                                       atol=rtol * 1e-3)
    if "rate" in mr:
        np.testing.assert_array_equal(me["rate"].data["counts"], mr["rate"].data["counts"])
    return ref, emu, built_r, built_e


def test_cuba_matches_numba_with_serial_and_parallel_delivery():
    _compare(cuba, 0.1, monitors=("spikes", "state", "rate"))


def test_cuba_batch_and_delay_match_numba():
    _compare(cuba, 0.05, batch=3, delay="0.4*ms")


def test_izhikevich_poisson_and_per_synapse_delays_match_numba():
    """Spikes and rates exactly. States: the Numba kernels run with FMA contraction and
    reassociation (FASTMATH in backends/numba/render.py), the emulation without, so float64
    states differ by a few ulps, which the spike upswing of this Euler-integrated quadratic
    amplifies (each 0.5 ms step multiplies a difference by 1 + dt (0.08 v + 5), up to about 4):
    a neuron caught mid-spike when the run ends differs by about 1e-9 relative (seen: 1.2e-9 at
    v = 9.4), every other neuron by less than 1e-11."""
    ref, emu, built_r, built_e = _compare(izhikevich, 0.2, monitors=("spikes", "rate"),
                                          check_states=False, batch=2)
    v = ref.state(built_r[1], "v")
    below = v < -40  # below the upswing: differences are damped
    assert below.mean() > 0.8
    for name in ("v", "u", "I"):
        want, got = ref.state(built_r[1], name), emu.state(built_e[1], name)
        np.testing.assert_allclose(got[below], want[below], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_stdp_traces_pre_and_post_delivery_match_numba():
    ref, emu, built_r, built_e = _compare(stdp, 1.0)
    w_ref = ref.synapses(built_r[2], "w")
    w_emu = emu.synapses(built_e[2], "w")
    assert not np.allclose(w_ref, ref.synapses(built_r[2], "w")[0] * 0)
    np.testing.assert_allclose(w_emu, w_ref, rtol=1e-9, atol=1e-15)


def test_time_tables_spike_sources_and_refractoriness_match_numba():
    _compare(timed, 0.02, monitors=("spikes", "state"))


def test_white_noise_matches_numba():
    """The normal draws are the same bits (tests/test_normal.py); only the updates' rounding
    (FMA contraction in the Numba kernels) differs."""
    _compare(noisy, 0.05, monitors=("spikes", "state"), dtype="float64", rtol=1e-12)


def test_clock_driven_synapses_and_summed_variables_match_numba():
    """Summed over synapses with atomicAdd: the order of the additions may differ."""
    _compare(nmda, 0.1, monitors=("spikes", "state"), dtype="float64", rtol=1e-9)


def test_float32_spike_trains_agree_until_rounding_differs():
    """float32 rounding differs (the order of atomic additions, FMA contraction, libm):
    trains agree until one threshold crossing flips, and stay statistically the same after
    (float64 runs above agree exactly)."""
    ref, _, mr = _run(cuba, "numba", 0.05, dtype="float32")
    emu, _, me = _run(cuba, "cuda-host", 0.05, dtype="float32")
    a, b = mr["spikes"], me["spikes"]
    first = np.nonzero((a.step[:len(b.step)] != b.step[:len(a.step)])
                       | (a.i[:len(b.i)] != b.i[:len(a.i)]))[0]
    agree = first[0] if first.size else min(len(a.i), len(b.i))
    assert agree >= 0.2 * len(a.i), (agree, len(a.i))
    assert abs(len(a.i) - len(b.i)) <= 0.1 * len(a.i), (len(a.i), len(b.i))


def test_host_changes_between_runs_reach_the_device():
    out = {}
    for backend in ("numba", "cuda-host"):
        net, pop = cuba()
        proj = net.projections["exc"]
        sim = net.build(backend=backend)
        sim.run(0.005)
        sim.state(pop, "v")[:] = -0.0505   # set on the host between runs
        sim.synapses(proj, "w")[:] *= 3.0
        sim.run(0.005)
        out[backend] = sim.state(pop, "v").copy(), sim.synapses(proj, "w").copy()
    np.testing.assert_allclose(out["cuda-host"][0], out["numba"][0], rtol=1e-9)
    np.testing.assert_array_equal(out["cuda-host"][1], out["numba"][1])


def changed_after_later_runs(backend):
    """CUBA whose weights and states are handed out before running, then changed on the
    host after two runs; the states after a third run (and the simulator)."""
    net, pop = cuba()
    sim = net.build(backend=backend)
    w, v = sim.synapses(net.projections["exc"], "w"), sim.state(pop, "v")
    sim.run(0.005)
    sim.run(0.002)
    w[:] *= 3.0
    v[:, :50] = -0.0505
    sim.run(0.005)
    return sim.state(pop, "v").copy(), sim


def test_arrays_changed_on_the_host_after_later_runs_reach_the_device():
    """An array handed out once is copied to the device before every later call: changes
    made to it after further runs count too (fixed weights and states alike)."""
    np.testing.assert_allclose(changed_after_later_runs("cuda-host")[0],
                               changed_after_later_runs("numba")[0], rtol=1e-9)


def test_constant_synaptic_values_are_made_on_the_device():
    """A weight given as one value is made on the device (no host array of one entry per
    synapse), read back only when asked for; the run equals Numba's. Plastic weights and
    their last-update steps too; drawn weights are made on the host and uploaded."""
    from snngen.backends.cuda.runner import DeviceArray
    net, pop = cuba()
    sim = net.build(backend="cuda-host")
    fixed = sim.arrays["exc__w"]
    assert isinstance(fixed, DeviceArray) and isinstance(sim.arrays["inh__w"], DeviceArray)
    sim.run(0.01)
    assert not fixed.fetched
    ref, built_r, _ = _run(cuba, "numba", 0.01)
    np.testing.assert_allclose(sim.state(pop, "v"), ref.state(built_r[1], "v"), rtol=1e-9)
    for name in ("exc", "inh"):
        w = sim.synapses(net.projections[name], "w")
        assert isinstance(w, np.ndarray)
        np.testing.assert_array_equal(w, ref.synapses(built_r[0].projections[name], "w"))

    net, out, syn = stdp(w0=0.025)
    sim = net.build(backend="cuda-host")
    assert isinstance(sim.arrays["plastic__w"], DeviceArray)
    assert isinstance(sim.arrays["plastic__lastupdate"], DeviceArray)
    sim.run(0.25)
    sim.run(0.25)
    ref = stdp(w0=0.025)[0].build(backend="numba")
    ref.run(0.5)
    w = sim.synapses(syn, "w")
    assert np.ptp(w) > 0  # learned: no longer one value
    np.testing.assert_allclose(w, ref.synapses(ref.net.projections["plastic"], "w"),
                               rtol=1e-12)

    net, pop = izhikevich()
    sim = net.build(backend="cuda-host")
    assert isinstance(sim.arrays["rec__w"], np.ndarray)  # drawn: made on the host


def test_plan_names_the_delivery_strategy():
    net, _ = cuba()
    _, plan = render(lower(net).program)
    text = describe(plan)
    assert "presynaptic events of exc, parallel" in text
    assert "presynaptic events of inh, serial ('ge_post' is not written as an increment)" in text


# -- every kernel kind compiles for the GPU (NVRTC, or nvcc) -----------------------------------

NETWORKS = {
    "cuba32": lambda: cuba("float32"),
    "cuba64_batch_delay": lambda: cuba(batch=2, delay=3e-4),
    "izhikevich": lambda: izhikevich("float32"),
    "stdp": lambda: stdp("float32"),
    "stdp64": lambda: stdp("float64"),
    "timed": lambda: timed("float64"),
    "noise32": lambda: noisy("float32"),
    "noise64": lambda: noisy("float64"),
    "random32": lambda: randomised("float32"),
    "nmda32": lambda: nmda("float32"),
    "nmda64": lambda: nmda("float64"),
    "conditional32": lambda: conditional("float32"),
    "delayed_stdp32": lambda: delayed_stdp("float32"),
    "adaptive32": lambda: adaptive("float32"),
}


COMPILERS = compiler.compilers()


@pytest.mark.skipif(not COMPILERS, reason="no NVRTC (pip install snngen[cuda]) and no nvcc on "
                    "PATH")
@pytest.mark.parametrize("using", ["nvrtc", "nvcc"])
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_generated_cuda_compiles_for_the_gpu(name, arch, using, tmp_path, monkeypatch):
    if using not in COMPILERS:
        pytest.skip(f"{using} is not installed")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    built = NETWORKS[name]()
    net = built[0]
    net.monitor_spikes(built[1])
    net.monitor_state(built[1], built[1].population.model.state_names[0], every=2)
    net.monitor_rate(built[1])
    program = lower(net).program
    source, plan = render(program)
    path, new = compiler.compile_cubin(source, arch, program.dtype, using)
    assert new and path.stat().st_size > 1000
    assert compiler.compile_cubin(source, arch, program.dtype, using) == (path, False)
    for launch in plan:
        assert f'__global__ void {launch.kernel}(' in source


@pytest.mark.skipif(not compiler.available(), reason="no NVRTC and no nvcc")
def test_compile_errors_name_line_and_kernel():
    net, _ = cuba("float32")
    source, _ = render(lower(net).program)
    broken = source.replace("snn_push(ring_slot", "snn_pusj(ring_slot", 1)
    with pytest.raises(CudaCompileError) as err:
        compiler.compile_cubin(broken, "sm_90", "float32")
    msg = str(err.value)
    kernel = re.search(r"k\d+_neuronstep_P", source).group()  # its place in the schedule
    assert "snn_pusj" in msg and kernel in msg and "generated line" in msg
    # the error names the template line the broken code came from
    from snngen.backends.templates import template_dir
    where = err.value.errors[0][0]
    name, line = where.split(" (template)")[0].split(":")
    template_line = (template_dir() / "cuda" / name).read_text().splitlines()[int(line) - 1]
    assert "snn_push(ring_slot" in template_line
    with pytest.raises(CudaCompileError) as err:
        compiler.build_host(broken, "")
    assert "snn_pusj" in str(err.value) and kernel in str(err.value)
    assert "program.cu.j2:" in str(err.value)


def test_cuda_backend_without_a_gpu_fails_clearly():
    try:
        import cupy
        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present")
    net, _ = cuba()
    with pytest.raises(BackendUnsupported, match="(GPU|CuPy)") as err:
        net.build(backend="cuda")
    assert "backend='numba'" in str(err.value)


ASAN_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_cuda import cuba, stdp, izhikevich
    for factory in (cuba, stdp, izhikevich):
        built = factory()
        built[0].monitor_spikes(built[1])
        built[0].build(backend="cuda-host").run(0.01)
    print("clean")
""")


def test_address_sanitizer_finds_nothing_in_the_kernels(tmp_path):
    lib = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True,
                         text=True).stdout.strip()
    if not lib or not os.path.isabs(lib):
        pytest.skip("no libasan for g++")
    env = {**os.environ, "SNNGEN_CACHE_DIR": str(tmp_path),
           "SNNGEN_CUDA_HOST_CXXFLAGS": "-O1 -g -fsanitize=address,undefined "
                                        "-fno-omit-frame-pointer -fno-sanitize-recover=all",
           "LD_PRELOAD": lib, "ASAN_OPTIONS": "detect_leaks=0"}
    script = ASAN_SCRIPT.format(tests=os.path.dirname(__file__))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "clean" in r.stdout, r.stderr[-3000:]


def poisson_only(dtype="float64", batch=2):
    net = sg.Network(dt=1e-4, seed=9, dtype=dtype, batch=batch)
    src = net.poisson("src", 50, rates=np.linspace(200, 1800, 50))
    return net, src


def test_poisson_sources_and_spike_buffer_growth_match_numba_exactly():
    """Same counter-based random numbers on both backends: identical spikes, and the spike
    monitor's buffers (1024 entries at first) grow several times on the way."""
    out = {}
    for backend in ("numba", "cuda-host"):
        net, src = poisson_only()
        spikes, rate = net.monitor_spikes(src), net.monitor_rate(src)
        sim = net.build(backend=backend)
        sim.run(0.25)
        sim.run(0.25)
        out[backend] = spikes, rate
    a, b = out["numba"][0], out["cuda-host"][0]
    assert len(a.i) > 10 * 1024
    for f in ("i", "step", "b"):
        np.testing.assert_array_equal(getattr(b, f), getattr(a, f))
    np.testing.assert_array_equal(out["cuda-host"][1].data["counts"],
                                  out["numba"][1].data["counts"])


def test_nonfinite_state_is_reported_from_the_kernels():
    from snngen.errors import NumericalError
    net, pop = cuba("float64")
    sim = net.build(backend="cuda-host")
    sim.run(0.001)
    sim.state(pop, "v")[0, 5] = np.inf
    with pytest.raises(NumericalError, match="'v'.*neuron 5"):
        sim.run(0.01)


def test_states_stay_on_the_device_until_asked_for():
    """Unread states are not copied back after each run; reading one fetches it, and from
    then on it is kept up to date both ways."""
    ref, built_r, _ = _run(cuba, "numba", 0.02)
    net, pop = cuba()
    net.monitor_spikes(pop)
    sim = net.build(backend="cuda-host")
    sim.run(0.01)
    sim.run(0.01)
    runner = sim._kernel
    assert "P__v" in runner.stale and "P__v" not in runner.exposed
    np.testing.assert_allclose(sim.state(pop, "v"), ref.state(built_r[1], "v"), rtol=1e-9)
    assert "P__v" not in runner.stale and "P__v" in runner.exposed
    sim.run(0.001)
    assert "P__v" not in runner.stale and "P__ge" in runner.stale
