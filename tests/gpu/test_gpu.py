"""On a real GPU (marked ``gpu``; skipped without one): backend='cuda' against the Numba backend
and the host emulation, on the networks of ``tests/test_cuda.py``.

Float atomics on the GPU add synaptic input in whatever order threads run, so float64 spike
trains are expected to agree exactly on these short runs, or at worst until a late threshold
crossing flips; random sources (counter-based, same bits on every backend) agree exactly.

    PYTHONPATH=. python -m pytest -m gpu tests/gpu
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import snngen as sg

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from test_cuda import (  # noqa: E402
    _run,
    cuba,
    izhikevich,
    nmda,
    noisy,
    poisson_only,
    randomised,
    stdp,
    timed,
)


def _has_gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device
        return False


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _has_gpu(), reason="no CUDA GPU (or no CuPy)")]


def _agree(a, b):
    """How many spikes two monitors agree on, in order, before the first difference."""
    n = min(len(a.i), len(b.i))
    diff = np.nonzero((a.i[:n] != b.i[:n]) | (a.step[:n] != b.step[:n]) | (a.b[:n] != b.b[:n]))[0]
    return int(diff[0]) if diff.size else n


@pytest.mark.parametrize("factory,duration,kw", [
    (cuba, 0.1, {}), (cuba, 0.05, {"batch": 3, "delay": "0.4*ms"}),
    (izhikevich, 0.2, {"batch": 2}), (stdp, 1.0, {}), (timed, 0.02, {}),
    (noisy, 0.05, {"dtype": "float64"}), (randomised, 0.05, {"dtype": "float64"}),
    (nmda, 0.1, {"dtype": "float64"})],
    ids=["cuba", "cuba_batch_delay", "izhikevich_delays", "stdp", "timed_sources", "noise",
         "rand", "nmda"])
def test_gpu_matches_numba_float64(factory, duration, kw):
    monitors = ("spikes", "state", "rate")
    ref, built_r, mr = _run(factory, "numba", duration, monitors, **kw)
    gpu, built_g, mg = _run(factory, "cuda", duration, monitors, **kw)
    for name, proj in built_g[0].projections.items():  # drawn on the GPU, equal to Numba's
        csr_g, csr_r = gpu.connectivity(proj), ref.connectivity(built_r[0].projections[name])
        assert csr_g.device is not None or isinstance(proj.rule, sg.Explicit)
        np.testing.assert_array_equal(csr_g.indptr, csr_r.indptr)
        np.testing.assert_array_equal(csr_g.indices, csr_r.indices)
    a, b = mr["spikes"], mg["spikes"]
    agree = _agree(a, b)
    print(f"{factory.__name__}: {len(a.i)} spikes (numba), {len(b.i)} (GPU), {agree} agree")
    assert agree >= 0.9 * len(a.i)
    assert abs(len(a.i) - len(b.i)) <= 0.02 * len(a.i) + 1
    if agree == len(a.i) == len(b.i):
        for name in built_r[1].population.model.state_names:
            np.testing.assert_allclose(gpu.state(built_g[1], name), ref.state(built_r[1], name),
                                       rtol=1e-7, atol=1e-12)
        np.testing.assert_array_equal(mg["rate"].data["counts"], mr["rate"].data["counts"])
        v = built_r[1].population.model.state_names[0]
        np.testing.assert_allclose(mg["state"].data[v], mr["state"].data[v], rtol=1e-7,
                                   atol=1e-12)
    if factory is stdp and agree == len(a.i) == len(b.i):
        np.testing.assert_allclose(gpu.synapses(built_g[2], "w"), ref.synapses(built_r[2], "w"),
                                   rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("graph_steps", ["0", "50"])
def test_gpu_random_sources_equal_numba_exactly(graph_steps, monkeypatch):
    monkeypatch.setenv("SNNGEN_CUDA_GRAPH_STEPS", graph_steps)
    out = {}
    for backend in ("numba", "cuda"):
        net, src = poisson_only()
        spikes, rate = net.monitor_spikes(src), net.monitor_rate(src)
        sim = net.build(backend=backend)
        sim.run(0.25)
        sim.run(0.25)
        out[backend] = spikes, rate, sim
    a, b = out["numba"][0], out["cuda"][0]
    assert len(a.i) > 10 * 1024
    for f in ("i", "step", "b"):
        np.testing.assert_array_equal(getattr(b, f), getattr(a, f))
    np.testing.assert_array_equal(out["cuda"][1].data["counts"], out["numba"][1].data["counts"])
    assert out["cuda"][2]._kernel.device.used_graphs == (graph_steps != "0")


def test_gpu_float32_cuba_rate_matches_numba():
    rates = {}
    for backend in ("numba", "cuda"):
        net, pop = cuba("float32")
        mon = net.monitor_spikes(pop)
        net.build(backend=backend).run(0.2)
        rates[backend] = len(mon.i)
    assert abs(rates["cuda"] - rates["numba"]) <= 0.1 * rates["numba"], rates


def test_gpu_warm_build_compiles_nothing():
    net, pop = cuba("float32")
    net.monitor_spikes(pop)
    net.build(backend="cuda")
    net2, pop2 = cuba("float32")
    net2.monitor_spikes(pop2)
    sim = net2.build(backend="cuda")
    assert sim.compiled_kernels == 0


def test_gpu_device_made_weights_and_host_changes():
    """Constant weights (fixed, and plastic with their last-update steps) are made on the GPU
    and equal Numba's after a run; arrays handed out once carry host changes made after
    later runs to the device."""
    from test_cuda import changed_after_later_runs, stdp

    from snngen.backends.cuda.runner import DeviceArray
    out = {}
    for backend in ("numba", "cuda"):
        v, sim = changed_after_later_runs(backend)
        assert sim.backend.name == backend
        net2, _, syn = stdp(w0=0.025)
        sim2 = net2.build(backend=backend)
        assert isinstance(sim2.arrays["plastic__w"], DeviceArray) == (backend == "cuda")
        sim2.run(0.5)
        out[backend] = v, sim2.synapses(syn, "w").copy()
    np.testing.assert_allclose(out["cuda"][0], out["numba"][0], rtol=1e-7, atol=1e-12)
    assert np.ptp(out["cuda"][1]) > 0
    np.testing.assert_allclose(out["cuda"][1], out["numba"][1], rtol=1e-7, atol=1e-12)


def test_gpu_nonfinite_state_is_reported():
    from snngen.errors import NumericalError
    net, pop = cuba("float64")
    sim = net.build(backend="cuda")
    sim.state(pop, "v")[0, 5] = np.inf
    with pytest.raises(NumericalError, match="'v'"):
        sim.run(0.01)


# -- BPTT kernels on the GPU ----------------------------------------------------------------

@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_gpu_bptt_equals_numba_float64(dense):
    from test_cuda_bptt import _problem

    from snngen.train.bptt import CompiledBPTT
    from snngen.train.cuda_bptt import CudaBPTT
    for name in ("lif", "qif"):
        lm, args = _problem(name, dense)
        ref_loss, ref = CompiledBPTT(lm, "float64").run(*args, dense=False)
        loss, grads = CudaBPTT(lm, "float64", device="gpu").run(*args)
        assert loss == pytest.approx(ref_loss, rel=1e-10)
        for key in ref:
            np.testing.assert_allclose(grads[key], ref[key], rtol=1e-7, atol=1e-10,
                                       err_msg=f"{name} {key}")


def _classifier(backend, dtype="float64", hidden=40):
    import snngen as sg
    from snngen.train import RecurrentClassifier
    lif = sg.NeuronModel("dv/dt = (I - v) / tmem : 1\ndI/dt = -I / tsyn : 1",
                         threshold="v > 1", reset="v = 0", name="gpu_t1_lif")
    return RecurrentClassifier(lif, "I", 30, hidden, 3, params={"tmem": 0.01, "tsyn": 0.005},
                               recurrent_density=0.2, seed=1, dtype=dtype, input_gain=6.0,
                               trainable_params=("tmem",), backend=backend)


def test_gpu_two_layer_classifier_equals_numba():
    """A stack of two recurrent layers on the GPU (the upper layer's inputs are the lower
    one's spikes on the device, its input gradient flows back down): loss, every gradient
    and the predictions equal Numba's in float64."""
    rng = np.random.default_rng(5)
    x = (rng.random((40, 6, 30)) < 0.1).astype(float)
    y = rng.integers(0, 3, 6)
    out = {}
    for backend in ("numba", "cuda"):
        net = _classifier(backend, hidden=(40, 24))
        out[backend] = net.loss_and_grads(x, y) + (net.predict(x),)
    (l1, g1, a1, p1), (l2, g2, a2, p2) = out["numba"], out["cuda"]
    assert l2 == pytest.approx(l1, rel=1e-10) and a1 == a2
    np.testing.assert_array_equal(p1, p2)
    assert set(g1) == {"w_in", "w_rec", "w_in:1", "w_rec:1", "w_out", "tmem", "tmem:1"}
    for key in g1:
        got = g2[key].get() if hasattr(g2[key], "get") else g2[key]
        assert np.any(g1[key] != 0), key
        np.testing.assert_allclose(got, g1[key], rtol=1e-7, atol=1e-10, err_msg=key)


def test_gpu_classifier_and_trainer_resume(tmp_path):
    from snngen.train import Trainer
    rng = np.random.default_rng(3)
    x = (rng.random((40, 16, 30)) < 0.1).astype(float)
    y = rng.integers(0, 3, 16)
    (l1, g1, a1), (l2, g2, a2) = (_classifier(b).loss_and_grads(x[:, :4], y[:4])
                                  for b in ("numba", "cuda"))
    assert l2 == pytest.approx(l1, rel=1e-10) and a1 == a2
    for key in g1:
        got = g2[key].get() if hasattr(g2[key], "get") else g2[key]
        np.testing.assert_allclose(got, g1[key], rtol=1e-7, atol=1e-10, err_msg=key)
    # exact resume from a checkpoint, weights and Adam state on the device
    a = Trainer(_classifier("cuda"), batch_size=8)
    a.fit(x, y, 1)
    a.save(tmp_path / "ck.npz")
    a.fit(x, y, 1)
    b = Trainer(_classifier("cuda"), batch_size=8)
    b.load(tmp_path / "ck.npz")
    b.fit(x, y, 1)
    for key in a.net.weights:
        wa, wb = a.net.weights[key], b.net.weights[key]
        np.testing.assert_array_equal(wa.get() if hasattr(wa, "get") else wa,
                                      wb.get() if hasattr(wb, "get") else wb)


@pytest.mark.parametrize("rule,loss", [("eprop", "mse"), ("superspike", "mse"),
                                       ("decolle", "mse"), ("eprop", "cross_entropy")])
def test_gpu_online_kernels_equal_numba(rule, loss):
    """Every online rule, both losses and the factorised layout (DECOLLE on homogeneous
    parameters) on the device against the Numba kernel."""
    import test_online as to

    from snngen.train.online import CompiledEprop, CudaEprop
    lm, params, s0, x_in, w_in, w_rec, dt = to._setup("alif", recurrent=True, steps=30)
    n = s0.shape[0]
    if rule == "decolle":
        params = {k: np.full(n, v) for k, v in to.MODELS["alif"][1].items()}
    in_csr, w_in_c = to._csr_of(w_in)
    rec_csr, w_rec_c = to._csr_of(w_rec * (np.abs(w_rec) > 0.3))
    w_out = np.random.default_rng(0).normal(0, 1, (n, 2))
    xb = x_in[:, None]
    tb = np.ones((30, 1, 2)) if loss == "mse" else np.eye(2)[np.zeros((30, 1), int)]
    res, layouts = [], set()
    for kernel in (CompiledEprop(lm, "float64"), CudaEprop(lm, "float64", device="gpu")):
        st = kernel.state(params, dt, 1, n, in_csr, rec_csr, 2, rule=rule)
        layouts.add(st.layout)
        res.append(kernel.step(st, xb, tb, in_csr, w_in_c, rec_csr, w_rec_c, w_out, 0.9,
                               loss=loss))
    assert len(layouts) == 1 and (rule != "decolle" or layouts == {"factorised"})
    assert res[1][0] == pytest.approx(res[0][0], rel=1e-9)
    for key in res[0][1]:
        np.testing.assert_allclose(res[1][1][key], res[0][1][key], rtol=1e-7, atol=1e-10)


def test_gpu_philox_known_answers_and_numba_bits():
    """Philox4x32-10 on the device: Random123's known answers, and the simulation uniforms
    and float32 conversion bit-identical to the Numba functions."""
    import cupy
    from test_philox import GPU_HARNESS, KAT, philox_source

    from snngen.backends.cuda import compiler
    from snngen.backends.cuda.gpu import arch
    from snngen.draw import uniform, uniform24
    path, _ = compiler.compile_cubin(philox_source() + GPU_HARNESS, arch(), "float64")
    module = cupy.RawModule(path=str(path))
    ctr = cupy.asarray(np.array([c for c, _, _ in KAT], np.uint32))
    key = cupy.asarray(np.array([k for _, k, _ in KAT], np.uint32))
    out = cupy.zeros_like(ctr)
    module.get_function("t_philox")((1,), (32,), (ctr, key, out, np.int64(len(KAT))))
    assert [tuple(int(x) for x in row) for row in out.get()] == [w for _, _, w in KAT]
    n, seed = 4096, 2**40 + 17
    u, f = cupy.zeros(n, cupy.float64), cupy.zeros(n, cupy.float32)
    module.get_function("t_uniform")((n // 256,), (256,), (np.uint64(seed), u, f, np.int64(n)))
    want = np.array([uniform(seed, s, s >> 3, 1, 2) for s in range(n)])
    want_f = np.array([uniform24((s * 2654435761) % 2**32) for s in range(n)], np.float32)
    np.testing.assert_array_equal(u.get(), want)
    np.testing.assert_array_equal(f.get(), want_f)


def test_gpu_normal_draws_equal_numba_bits():
    """White noise's standard normal pairs on the device: the same bits as snngen.draw."""
    import cupy
    from test_normal import GPU_HARNESS
    from test_philox import philox_source

    from snngen.backends.cuda import compiler
    from snngen.backends.cuda.gpu import arch
    from snngen.draw import normal2
    path, _ = compiler.compile_cubin(philox_source() + GPU_HARNESS, arch(), "float64")
    module = cupy.RawModule(path=str(path))
    n, seed = 8192, 2**41 + 5
    z = cupy.zeros(2 * n, cupy.float64)
    module.get_function("t_normal2")((n // 256,), (256,), (np.uint64(seed), z, np.int64(n)))
    want = np.array([normal2(seed, s, s >> 3, 1, s & 7) for s in range(n)]).ravel()
    np.testing.assert_array_equal(z.get(), want)


def test_gpu_draws_1e8_synapses_like_numba():
    """F2-sized connectivity drawn on the GPU (N = 1e6, fan-in 100: 1e8 synapses; fixed
    degrees at 1e7; a dense table) equals the Numba draw: every row pointer, 2000 random rows
    read straight from the device, then the whole table. Prints both draw times (run.sh keeps
    them in pytest_gpu.txt)."""
    import time

    from snngen import connectivity as conn
    from snngen.backends.cuda.connect import connector
    dev = connector("gpu")
    rng = np.random.default_rng(0)
    seed = 2**35 + 3
    print(f"connectivity kernels compiled or loaded in {dev.timings['compile_s']:.3f} s")
    for rule, n_pre, n_post in [(conn.FixedProbability(1e-4), 10**6, 10**6),
                                (conn.FixedInDegree(100, allow_self=False), 10**5, 10**5),
                                (conn.FixedOutDegree(100, allow_self=False), 10**5, 10**5),
                                (conn.FixedProbability(0.5, allow_self=False), 3000, 3000)]:
        # first launches (CuPy's scan compiles on first use), and Numba's kernels loaded
        # from its cache; large enough for degree 100 without self-connections
        dev.build(rule, 300, 400, seed)
        conn.build_csr(rule, 300, 400, seed)
        t0 = time.perf_counter()
        got = dev.build(rule, n_pre, n_post, seed)
        t_gpu = time.perf_counter() - t0
        t0 = time.perf_counter()
        want = conn.build_csr(rule, n_pre, n_post, seed)
        t_numba = time.perf_counter() - t0
        print(f"{rule}: {want.n_synapses:.3g} synapses; GPU {t_gpu:.3f} s, Numba "
              f"({os.cpu_count()} cores) {t_numba:.3f} s")
        assert not got.device["indices"].fetched
        np.testing.assert_array_equal(got.indptr, want.indptr)
        on_device = got.device["indices"].dev
        for r in rng.choice(n_pre, 2000):
            a, b = want.indptr[r], want.indptr[r + 1]
            np.testing.assert_array_equal(on_device[a:b].get(), want.indices[a:b])
        np.testing.assert_array_equal(got.indices, want.indices)
    assert want.n_synapses > 0.45 * 3000 * 2999


def test_gpu_network_bptt_equals_numba():
    """sg.BPTT of a declared network (two populations of different models, recurrent and
    delayed projections, a skip projection, trained per-neuron parameters) on the GPU:
    loss and every gradient equal Numba's in float64 (atomic sums in another order)."""
    from test_network_bptt import two_population_net
    net, o = two_population_net()
    data = (np.random.default_rng(1).random((40, 3, 6)) < 0.3).astype(float)
    out = {}
    for backend in ("numba", "cuda"):
        fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
        out[backend] = fit.loss_and_grads({"x": data}, np.array([0, 2, 1]))
    (l1, g1), (l2, g2) = out["numba"], out["cuda"]
    assert l2 == pytest.approx(l1, rel=1e-10)
    for key in g1:
        assert np.any(g1[key] != 0), key
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-7, atol=1e-10, err_msg=key)


@pytest.mark.parametrize("rule", ["eprop", "ostl", "es_d_rtrl", "decolle"])
def test_gpu_network_online_equals_numba(rule):
    """sg.Online of the two-population test graph (recurrence with a delay, a skip
    projection into the readout) on the GPU: loss and every gradient equal Numba's in
    float64 (the same sums; the delivery's atomics add in another order)."""
    from test_online_network import graph, inputs
    x, labels = inputs(), np.array([0, 2, 1])
    out = {}
    for backend in ("numba", "cuda"):
        net, o = graph()
        fit = sg.Online(net, sg.losses.cross_entropy(o.v, over="each"), rule=rule,
                        backend=backend, progress=False)
        out[backend] = fit.loss_and_grads({"x": x}, labels)
    (l1, g1), (l2, g2) = out["numba"], out["cuda"]
    assert l2 == pytest.approx(l1, rel=1e-10)
    for key in g1:
        assert np.any(g1[key] != 0), key
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-7, atol=1e-10, err_msg=key)
