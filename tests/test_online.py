"""Online learning references (LEARNING.md checks 3-5): exact RTRL equals BPTT, e-prop with
the full local Jacobian equals BPTT without recurrent weights (and is reported against it
with them), and the eligibility layout is proven from the symbolic Jacobian."""

import numpy as np
import pytest

import snngen as sg
from snngen.derive import derive
from snngen.derive.online import eligibility_layout, eprop, rtrl
from snngen.derive.reference import bptt
from snngen.integrate import discretise

MODELS = {
    "lif": (sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1 (unless refractory)
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", refractory="2*ms", name="lif_online"),
        {"El": 0.2, "taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}),
    "qif": (sg.NeuronModel("""
        dv/dt = (v * v - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="qif_online"),
        {"taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}),
    # adaptive LIF (Bellec): threshold rises with each spike
    "alif": (sg.NeuronModel("""
        dv/dt = (I - v) / taum : 1
        dI/dt = -I / taus : 1
        da/dt = -a / taua : 1
    """, threshold="v > 1 + beta * a", reset="v = v - 1; a = a + 1", name="alif_online"),
        {"taum": 0.02, "taus": 0.005, "taua": 0.2, "beta": 0.3}),
}


def _setup(name, recurrent, seed=3, n=7, n_in=4, steps=50):
    model, base = MODELS[name]
    lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid")
    rng = np.random.default_rng(seed)
    params = {k: v * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    k = len(lm.states)
    s0 = rng.uniform(0, 0.3, (n, k))
    x_in = (rng.random((steps, n_in)) < 0.25).astype(float)
    w_in = rng.uniform(0.5, 3.0, (n_in, n))
    w_rec = rng.normal(0, 0.8, (n, n)) if recurrent else None
    return lm, params, s0, x_in, w_in, w_rec, 1e-3


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rtrl_equals_bptt(name):
    """Check 3: exact RTRL, forward in time, equals BPTT on a small recurrent network."""
    lm, params, s0, x_in, w_in, w_rec, dt = _setup(name, recurrent=True)
    n = s0.shape[0]
    coef = np.random.default_rng(0).uniform(0.5, 1.5, n)

    def loss_grad(t, s, z):
        dl_ds = np.zeros_like(s)
        dl_ds[:, 0] = coef * s[:, 0]
        return 0.5 * np.sum(coef * s[:, 0] ** 2) + 0.3 * z.sum(), dl_ds, np.full(n, 0.3)
    ref_loss, ref = bptt(lm, params, s0, x_in, w_in, w_rec, dt, loss_grad)
    loss, grads = rtrl(lm, params, s0, x_in, w_in, w_rec, dt, loss_grad)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for key in ("w_in", "w_rec", *MODELS[name][1]):
        np.testing.assert_allclose(grads[key], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.any(ref["w_rec"] != 0)


def _readout_bptt(lm, params, s0, x_in, w_in, w_rec, dt, w_out, kappa, targets):
    """BPTT on the readout loss: dL/dz_t = sum_t' kappa^(t'-t) w_out (y_t' - y*_t')."""
    zs = []
    bptt(lm, params, s0, x_in, w_in, w_rec, dt,
         lambda t, s, z: (zs.append(z.copy()), (0.0, np.zeros_like(s), np.zeros_like(z)))[1],
         forward_only=True)
    zs = np.array(zs)
    y = np.zeros(w_out.shape[1])
    errs = []
    for t in range(len(zs)):
        y = kappa * y + zs[t] @ w_out
        errs.append(y - targets[t])
    errs = np.array(errs)
    d_drive = np.zeros_like(errs)
    acc = np.zeros(errs.shape[1])
    for t in range(len(errs) - 1, -1, -1):
        acc = kappa * acc + errs[t]
        d_drive[t] = acc
    dl_dz = d_drive @ w_out.T
    loss = 0.5 * float(np.sum(errs ** 2))
    _, grads = bptt(lm, params, s0, x_in, w_in, w_rec, dt,
                    lambda t, s, z: (0.0, np.zeros_like(s), dl_dz[t]))
    return loss, grads


@pytest.mark.parametrize("name", sorted(MODELS))
def test_eprop_equals_bptt_without_recurrence(name):
    """Check 4: symmetric e-prop, full local Jacobian, readout-filtered traces, per-step MSE:
    exact when there are no recurrent weights."""
    lm, params, s0, x_in, w_in, _, dt = _setup(name, recurrent=False)
    rng = np.random.default_rng(9)
    n = s0.shape[0]
    w_out, kappa = rng.normal(0, 1, (n, 3)), 0.9
    targets = rng.normal(0, 0.5, (x_in.shape[0], 3))
    ref_loss, ref = _readout_bptt(lm, params, s0, x_in, w_in, None, dt, w_out, kappa, targets)
    loss, grads = eprop(lm, params, s0, x_in, w_in, None, dt, w_out, kappa, targets)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for key in ("w_in", *MODELS[name][1]):
        np.testing.assert_allclose(grads[key], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.any(grads["w_in"] != 0)


def test_eprop_with_recurrence_is_an_approximation(capsys):
    """With recurrent weights e-prop drops the non-local terms: report how close it is."""
    lm, params, s0, x_in, w_in, w_rec, dt = _setup("lif", recurrent=True, steps=80)
    rng = np.random.default_rng(9)
    n = s0.shape[0]
    w_out, kappa = rng.normal(0, 1, (n, 3)), 0.9
    targets = rng.normal(0, 0.5, (x_in.shape[0], 3))
    _, ref = _readout_bptt(lm, params, s0, x_in, w_in, w_rec, dt, w_out, kappa, targets)
    _, grads = eprop(lm, params, s0, x_in, w_in, w_rec, dt, w_out, kappa, targets)
    cos = {}
    for key in ("w_in", "w_rec"):
        a, b = grads[key].ravel(), ref[key].ravel()
        cos[key] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    print("e-prop vs BPTT cosine similarity with recurrence:", cos)
    assert all(np.isfinite(v) for v in cos.values())


def test_eligibility_layout_is_proven_from_the_jacobian():
    """Check 5 (the decision; memory): LIF's synaptic current is a presynaptic trace, the
    membrane (reset through the surrogate) is per synapse; heterogeneous time constants
    make the current per synapse too."""
    lif = derive(discretise(MODELS["lif"][0]), inputs=["I"], surrogate="fast_sigmoid")
    layout = eligibility_layout(lif)
    assert layout.shared == ("I",) and layout.per_synapse == ("v",)
    hetero = eligibility_layout(lif, per_neuron=("taus",))
    assert hetero.shared == () and set(hetero.per_synapse) == {"v", "I"}
    # a current-based LIF whose input enters the membrane, reset by subtraction, detached:
    plain = derive(discretise(sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1",
                                             reset="v = v - 1", name="plain_lif")),
                   inputs=["v"], surrogate="fast_sigmoid", detach_reset=True)
    assert eligibility_layout(plain).shared == ("v",)
    n_pre, n_post, syn, batch = 1000, 1000, 100_000, 8
    assert layout.bytes(n_pre, n_post, syn, batch) == 8 * batch * (n_pre + syn)
    assert layout.bytes(n_pre, n_post, syn, batch, force="per_synapse") == 8 * batch * 2 * syn
    assert "presynaptic trace" in str(layout)


def test_rflo_and_batches():
    """RFLO (leak-only eligibility, random feedback) gives gradients aligned with BPTT's on
    the input weights without recurrence; trials of a batch add up."""
    lm, params, s0, x_in, w_in, _, dt = _setup("lif", recurrent=False, steps=60)
    rng = np.random.default_rng(5)
    n = s0.shape[0]
    w_out, kappa = rng.normal(0, 1, (n, 2)), 0.9
    targets = rng.normal(0, 0.5, (x_in.shape[0], 2))
    _, ref = _readout_bptt(lm, params, s0, x_in, w_in, None, dt, w_out, kappa, targets)
    _, rflo = eprop(lm, params, s0, x_in, w_in, None, dt, w_out, kappa, targets, rule="rflo")
    a, b = rflo["w_in"].ravel(), ref["w_in"].ravel()
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.5
    xb = np.stack([x_in, x_in[::-1]], axis=1)
    tb = np.stack([targets, -targets], axis=1)
    lb, gb, yb = eprop(lm, params, s0, xb, w_in, None, dt, w_out, kappa, tb,
                       return_outputs=True)
    l0, g0 = eprop(lm, params, s0, x_in, w_in, None, dt, w_out, kappa, targets)
    l1, g1 = eprop(lm, params, s0, x_in[::-1], w_in, None, dt, w_out, kappa, -targets)
    assert lb == pytest.approx(l0 + l1) and yb.shape == tb.shape
    np.testing.assert_allclose(gb["w_in"], g0["w_in"] + g1["w_in"], rtol=1e-12)


def test_online_memory_does_not_grow_with_sequence_length():
    """e-prop keeps eligibility state only: its peak memory is the same at T = 30 and
    T = 200 (BPTT's tape grows with T). Measured with tracemalloc (slow, hence short runs;
    benchmarks/online.py measures T = 100 and 10,000 without it)."""
    import tracemalloc
    lm, params, s0, _, w_in, w_rec, dt = _setup("lif", recurrent=True, n=4, n_in=3)
    rng = np.random.default_rng(1)
    w_out = rng.normal(0, 1, (4, 1))
    peaks = {}
    for steps in (30, 200):
        x_in = (rng.random((steps, 3)) < 0.2).astype(float)
        targets = np.zeros((steps, 1))
        def zero(t, s, z):
            return 0.0, np.zeros_like(s), np.zeros_like(z)
        for name, run in (("eprop", lambda x=x_in, y=targets: eprop(lm, params, s0, x, w_in,
                                                                   w_rec, dt, w_out, 0.9, y)),
                          ("bptt", lambda x=x_in: bptt(lm, params, s0, x, w_in, w_rec, dt,
                                                       zero))):
            tracemalloc.start()
            run()
            peaks[name, steps] = tracemalloc.get_traced_memory()[1] - x_in.nbytes
            tracemalloc.stop()
    assert peaks["eprop", 200] < 1.2 * peaks["eprop", 30]
    assert peaks["bptt", 200] > 3 * peaks["bptt", 30]


def _csr_of(dense_w):
    from snngen import connectivity as conn
    pre, post = np.nonzero(dense_w)
    csr = conn.build_csr({"i": pre, "j": post}, dense_w.shape[0], dense_w.shape[1], seed=0)
    return csr, dense_w[csr.pre_indices(), csr.indices]


@pytest.mark.parametrize("rule", ["eprop", "rflo"])
@pytest.mark.parametrize("name", ["lif", "alif"])
def test_compiled_online_kernel_equals_reference(name, rule):
    """The Numba e-prop/RFLO kernel equals the NumPy reference (float64), batch 2, sparse
    recurrent weights, and the same when the input streams in chunks."""
    from snngen.train.online import CompiledEprop
    lm, params, s0, x_in, w_in, w_rec, dt = _setup(name, recurrent=True, steps=40)
    rng = np.random.default_rng(6)
    n = s0.shape[0]
    w_rec = w_rec * (rng.random(w_rec.shape) < 0.5)
    np.fill_diagonal(w_rec, 0.0)
    w_out, kappa = rng.normal(0, 1, (n, 2)), 0.9
    xb = np.stack([x_in, (rng.random(x_in.shape) < 0.25).astype(float)], axis=1)
    tb = rng.normal(0, 0.5, (x_in.shape[0], 2, 2))
    ref_loss, ref, ref_y = eprop(lm, params, np.zeros_like(s0), xb, w_in, w_rec, dt, w_out,
                                 kappa, tb, rule=rule, return_outputs=True)
    in_csr, w_in_c = _csr_of(w_in)
    rec_csr, w_rec_c = _csr_of(w_rec)
    kernel = CompiledEprop(lm, "float64")
    for chunks in ((40,), (7, 33)):
        st = kernel.state(params, dt, 2, n, in_csr, rec_csr, 2, rule=rule)
        total, grads, ys, lo = 0.0, {}, [], 0
        for size in chunks:
            loss, g, y = kernel.step(st, xb[lo:lo + size], tb[lo:lo + size], in_csr, w_in_c,
                                     rec_csr, w_rec_c, w_out, kappa)
            total += loss
            ys.append(y)
            for key, value in g.items():
                grads[key] = grads.get(key, 0) + value
            lo += size
        assert total == pytest.approx(ref_loss, rel=1e-10)
        np.testing.assert_allclose(np.concatenate(ys), ref_y, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads["w_in"], ref["w_in"][in_csr.pre_indices(),
                                                              in_csr.indices], rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(grads["w_rec"], ref["w_rec"][rec_csr.pre_indices(),
                                                                rec_csr.indices], rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(grads["w_out"], ref["w_out"], rtol=1e-9, atol=1e-12)
        for p in MODELS[name][1] if rule == "eprop" else ():
            np.testing.assert_allclose(grads[p], ref[p], rtol=1e-9, atol=1e-12, err_msg=p)


def test_error_mask_selects_the_steps_that_count():
    from snngen.train.online import CompiledEprop
    lm, params, s0, x_in, w_in, w_rec, dt = _setup("lif", recurrent=True, steps=30)
    n = s0.shape[0]
    in_csr, w_in_c = _csr_of(w_in)
    rec_csr, w_rec_c = _csr_of(w_rec)
    kernel = CompiledEprop(lm, "float64")
    w_out = np.random.default_rng(0).normal(0, 1, (n, 1))
    xb, tb = x_in[:, None], np.ones((30, 1, 1))
    runs = {}
    for name, mask in (("none", None), ("ones", np.ones((30, 1))), ("zeros", np.zeros((30, 1))),
                       ("late", np.r_[np.zeros(20), np.ones(10)][:, None])):
        st = kernel.state(params, dt, 1, n, in_csr, rec_csr, 1)
        runs[name] = kernel.step(st, xb, tb, in_csr, w_in_c, rec_csr, w_rec_c, w_out, 0.9,
                                 mask=mask)
    assert runs["none"][0] == runs["ones"][0] > runs["late"][0] > runs["zeros"][0] == 0.0
    np.testing.assert_array_equal(runs["none"][1]["w_in"], runs["ones"][1]["w_in"])
    assert not np.any(runs["zeros"][1]["w_in"]) and np.any(runs["late"][1]["w_in"])


@pytest.mark.parametrize("rule", ["eprop", "rflo"])
def test_cuda_online_kernels_equal_numba(rule):
    """The CUDA e-prop/RFLO kernels, run through the host emulation, equal the Numba kernel
    (ALIF, batch 2, sparse recurrence, a masked error, input in two chunks)."""
    from snngen.backends.cuda import compiler
    if not compiler.shutil.which("g++"):
        pytest.skip("needs g++")
    from snngen.train.online import CompiledEprop, CudaEprop
    lm, params, s0, x_in, w_in, w_rec, dt = _setup("alif", recurrent=True, steps=30)
    rng = np.random.default_rng(8)
    n = s0.shape[0]
    w_rec = w_rec * (rng.random(w_rec.shape) < 0.5)
    np.fill_diagonal(w_rec, 0.0)
    in_csr, w_in_c = _csr_of(w_in)
    rec_csr, w_rec_c = _csr_of(w_rec)
    w_out = rng.normal(0, 1, (n, 2))
    xb = np.stack([x_in, (rng.random(x_in.shape) < 0.25).astype(float)], axis=1)
    tb = rng.normal(0, 0.5, (30, 2, 2))
    mask = (rng.random((30, 2)) < 0.7).astype(float)
    out = {}
    for name, kernel in (("numba", CompiledEprop(lm, "float64")),
                         ("cuda", CudaEprop(lm, "float64", device="host"))):
        st = kernel.state(params, dt, 2, n, in_csr, rec_csr, 2, rule=rule)
        total, grads, ys = 0.0, {}, []
        for lo, hi in ((0, 12), (12, 30)):
            loss, g, y = kernel.step(st, xb[lo:hi], tb[lo:hi], in_csr, w_in_c, rec_csr,
                                     w_rec_c, w_out, 0.9, mask=mask[lo:hi])
            total += loss
            ys.append(y)
            for key, value in g.items():
                grads[key] = grads.get(key, 0) + value
        out[name] = total, grads, np.concatenate(ys)
    (l1, g1, y1), (l2, g2, y2) = out["numba"], out["cuda"]
    assert l2 == pytest.approx(l1, rel=1e-10)
    np.testing.assert_allclose(y2, y1, rtol=1e-10, atol=1e-12)
    assert set(g1) == set(g2)
    for key in g1:
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_cuda_online_source_compiles_for_the_gpu(tmp_path, monkeypatch):
    from snngen.backends.cuda import compiler
    if not compiler.available():
        pytest.skip("no NVRTC and no nvcc")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    from snngen.train.online import CudaEprop
    lm = _setup("alif", recurrent=True)[0]
    src = CudaEprop(lm, "float32", device="host").source
    for arch in ("sm_80", "sm_90"):
        path, new = compiler.compile_cubin(src, arch, "float32")
        assert new and path.stat().st_size > 1000
