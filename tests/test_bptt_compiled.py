"""Compiled (Numba) BPTT equals the NumPy reference executor: sparse weights, batch > 1,
several models, float64. (The reference itself is checked against finite differences and
PyTorch in test_gradients*.py.)"""

import functools

import numpy as np
import pytest

import snngen as sg
from snngen import connectivity as conn
from snngen.derive import derive
from snngen.derive.reference import bptt
from snngen.integrate import discretise
from snngen.train.bptt import CompiledBPTT

MODELS = {
    "lif": (sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1 (unless refractory)
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", refractory="2*ms", name="lif_ref"),
        {"El": 0.2, "taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}, "I"),
    "qif": (sg.NeuronModel("""
        dv/dt = (v * v - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="qif"),
        {"taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.0}, "I"),
}


def _dense(csr, values):
    dense = np.zeros((csr.n_pre, csr.n_post))
    np.add.at(dense, (csr.pre_indices(), csr.indices), values)
    return dense


def problem(name, dense=False, seed=5, steps=70):
    """A small recurrent problem: (LearningModel, arguments of CompiledBPTT.run), with a loss
    on states and spikes; sparse (or all-to-all) input and recurrent weights, batch 3."""
    model, base, target = MODELS[name]
    lm = derive(discretise(model), inputs=[target], surrogate="fast_sigmoid")
    rng = np.random.default_rng(seed)
    n, n_in, batch, dt = 12, 5, 3, 1e-3
    params = {k: v * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    s0 = rng.uniform(0, 0.5, (batch, n, 2))
    inputs = (rng.random((steps, batch, n_in)) < 0.2).astype(float)
    in_csr = conn.build_csr(conn.AllToAll() if dense else conn.FixedProbability(0.6), n_in, n,
                            seed=1)
    rec_csr = conn.build_csr(conn.AllToAll() if dense else conn.FixedProbability(0.3), n, n,
                             seed=2)
    w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
    w_rec = rng.normal(0, 0.6, rec_csr.n_synapses)
    coef = rng.uniform(0.5, 1.5, n)

    def loss_fn(states, spikes):
        loss = 0.5 * np.sum(coef * states[..., 0] ** 2) + 0.3 * np.sum(spikes)
        dl_ds = np.zeros_like(states)
        dl_ds[..., 0] = coef * states[..., 0]
        return loss, dl_ds, np.full(spikes.shape, 0.3)
    return lm, (params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn), coef


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_bptt_equals_reference(name, parallel):
    """Both ways of sharing the backward pass between threads (trials; blocks of neurons
    meeting at a barrier each step) against the reference, with sparse input and recurrent
    projections (the blocks' weight gradients and recomputed inputs then look up their run
    of each row) and a loss on states."""
    lm, args, coef = problem(name)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn = args
    base = MODELS[name][1]
    steps, batch, _ = inputs.shape
    n = s0.shape[1]
    compiled = CompiledBPTT(lm)
    loss, grads = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                               parallel=parallel)
    assert compiled.parallel == parallel

    ref_loss, ref = 0.0, {}
    for b in range(batch):
        def loss_grad(t, s, z):
            return (0.5 * np.sum(coef * s[:, 0] ** 2) + 0.3 * np.sum(z),
                    np.column_stack([coef * s[:, 0], np.zeros(n)]), np.full(n, 0.3))
        lb, gb = bptt(lm, params, s0[b], inputs[:, b], _dense(in_csr, w_in),
                      _dense(rec_csr, w_rec), dt, loss_grad)
        ref_loss += lb
        for key, value in gb.items():
            ref[key] = ref.get(key, 0) + (value if key != "s0" else 0)
        ref.setdefault("s0_list", []).append(gb["s0"])
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grads["s0"], np.stack(ref["s0_list"]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["w_in"], ref["w_in"][in_csr.pre_indices(),
                                                          in_csr.indices], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(grads["w_rec"], ref["w_rec"][rec_csr.pre_indices(),
                                                            rec_csr.indices], rtol=1e-9,
                               atol=1e-12)
    for p in base:
        np.testing.assert_allclose(grads[p], ref[p], rtol=1e-9, atol=1e-12, err_msg=p)
    assert np.any(grads["w_rec"] != 0)


def test_float32_kernels_agree_with_float64():
    model, base, target = MODELS["qif"]
    lm = derive(discretise(model), inputs=[target])
    rng = np.random.default_rng(8)
    n, n_in, steps, batch, dt = 16, 6, 60, 4, 1e-3
    params = {k: v * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    s0 = rng.uniform(0, 0.3, (batch, n, 2))
    inputs = (rng.random((steps, batch, n_in)) < 0.2).astype(float)
    in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed=1)
    rec_csr = conn.build_csr(conn.FixedProbability(0.3), n, n, seed=2)
    w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
    w_rec = rng.normal(0, 0.6, rec_csr.n_synapses)

    def loss_fn(states, spikes):
        return float(np.sum(spikes)), None, np.ones(spikes.shape, spikes.dtype)
    out = {}
    for dtype in ("float32", "float64"):
        out[dtype] = CompiledBPTT(lm, dtype).run(params, s0, inputs, in_csr, w_in, rec_csr,
                                                 w_rec, dt, loss_fn)
    assert out["float32"][0] == out["float64"][0] > 0  # same spikes
    for key in ("w_in", "w_rec", "taum"):
        a, b = out["float32"][1][key], out["float64"][1][key]
        assert np.linalg.norm(a - b) <= 1e-3 * np.linalg.norm(b), key


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_dense_blas_path_equals_event_path(name, parallel):
    model, base, target = MODELS[name]
    lm = derive(discretise(model), inputs=[target])
    rng = np.random.default_rng(11)
    n, n_in, steps, batch, dt = 10, 4, 50, 3, 1e-3
    params = {k: v * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    s0 = rng.uniform(0, 0.5, (batch, n, 2))
    inputs = (rng.random((steps, batch, n_in)) < 0.25).astype(float)
    in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed=1)
    rec_csr = conn.build_csr(conn.AllToAll(), n, n, seed=2)
    w_in = rng.uniform(0.5, 2.5, in_csr.n_synapses)
    w_rec = rng.normal(0, 0.4, rec_csr.n_synapses)
    coef = rng.uniform(0.5, 1.5, n)

    def loss_fn(states, spikes):
        dl_ds = np.zeros_like(states)
        dl_ds[..., 0] = coef * states[..., 0]
        return (0.5 * np.sum(coef * states[..., 0] ** 2) + 0.3 * np.sum(spikes), dl_ds,
                np.full(spikes.shape, 0.3))
    compiled = CompiledBPTT(lm)
    dense = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                         parallel=parallel)
    events = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                          dense=False, parallel=parallel)
    assert dense[0] == pytest.approx(events[0], rel=1e-12)
    for key in ("w_in", "w_rec", "s0", *base):
        np.testing.assert_allclose(dense[1][key], events[1][key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)
    assert np.any(dense[1]["w_rec"] != 0)


@pytest.mark.parametrize("cutoff", [0.0, 0.05])
@pytest.mark.parametrize("parallel", ["trials", "neurons"])
def test_parameter_gradients_only_when_wanted(parallel, cutoff):
    """With no parameter wanted the kernels run their loops without the per-neuron
    parameter sums: the weight and initial-state gradients are bit for bit the same and no
    parameter gradient is returned; a wanted one equals the one of a full run."""
    lm, args, _ = problem("lif")
    compiled = CompiledBPTT(lm)
    full_loss, full = compiled.run(*args, parallel=parallel, cutoff=cutoff)
    for wanted in (set(), {"taum"}):
        loss, grads = compiled.run(*args, parallel=parallel, cutoff=cutoff, wanted=wanted)
        assert loss == full_loss
        assert set(grads) == {"w_in", "w_rec", "s0"} | wanted
        for key in ("w_in", "w_rec", "s0"):
            np.testing.assert_array_equal(grads[key], full[key], err_msg=key)
        for key in wanted:
            assert np.any(grads[key] != 0)
            np.testing.assert_array_equal(grads[key], full[key], err_msg=key)


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("density", [0.3, 1.0])  # event path and dense (BLAS) path
def test_sparse_cutoff_skips_work_and_matches_the_truncated_reference(density, parallel):
    model, base, target = MODELS["lif"]
    lm = derive(discretise(model), inputs=[target], surrogate="fast_sigmoid")
    rng = np.random.default_rng(21)
    n, n_in, steps, batch, dt, cutoff = 12, 5, 60, 2, 1e-3, 0.05
    params = {k: v * rng.uniform(0.9, 1.1, n) for k, v in base.items()}
    s0 = rng.uniform(0, 0.3, (batch, n, 2))
    inputs = (rng.random((steps, batch, n_in)) < 0.15).astype(float)
    in_csr = conn.build_csr(conn.AllToAll(), n_in, n, seed=1)
    rec_rule = conn.AllToAll() if density == 1 else conn.FixedProbability(density)
    rec_csr = conn.build_csr(rec_rule, n, n, seed=2)
    w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
    w_rec = rng.normal(0, 0.5, rec_csr.n_synapses)

    def loss_fn(states, spikes):  # the loss reads spikes only
        return float(np.sum(spikes)), None, np.ones(spikes.shape, spikes.dtype)

    compiled = CompiledBPTT(lm)
    loss, grads = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                               cutoff=cutoff, parallel=parallel)
    # a neuron-step is skipped when its surrogate is cut and no adjoint reaches it from the
    # future: here the late steps of neurons that stay far from threshold
    assert compiled.skipped > 0
    skipped = compiled.skipped
    other = {"trials": "neurons", "neurons": "trials"}[parallel]
    compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn, cutoff=cutoff,
                 parallel=other)
    assert compiled.skipped == skipped  # the same neuron-steps, whoever counts them
    _, full = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                           parallel=parallel)
    assert compiled.skipped == 0
    assert not np.allclose(grads["w_in"], full["w_in"])  # the cut-off is an approximation
    g_in = 0
    for b in range(batch):
        def loss_grad(t, s, z):
            return float(np.sum(z)), np.zeros((n, 2)), np.ones(n)
        _, ref = bptt(lm, params, s0[b], inputs[:, b], _dense(in_csr, w_in),
                      _dense(rec_csr, w_rec), dt, loss_grad, cutoff=cutoff)
        np.testing.assert_allclose(grads["s0"][b], ref["s0"], rtol=1e-9, atol=1e-12)
        g_in = g_in + ref["w_in"]
    np.testing.assert_allclose(grads["w_in"], g_in[in_csr.pre_indices(), in_csr.indices],
                               rtol=1e-9, atol=1e-12)



def spike_loss_problem(name="lif", dense=False, steps=40, seed=1):
    """``problem`` with a loss that reads spikes only (a weighted spike count), as
    checkpointing needs: (lm, run arguments ending with the loss)."""
    lm, args, _ = problem(name, dense=dense, steps=steps)
    w_z = np.random.default_rng(seed).uniform(-1, 1, args[1].shape[1])

    def loss_fn(states, spikes):
        return float(np.sum(spikes * w_z)), None, np.broadcast_to(w_z, spikes.shape).copy()
    return lm, args[:-1] + (loss_fn,)

@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("every", [1, 7, 25])
def test_checkpointing_recomputes_the_same_gradients(name, every):
    """Checkpoints every K steps, tape of K steps recomputed in the backward pass: the same
    gradients as the full tape (spike losses), to rounding, and less memory."""
    lm, args = spike_loss_problem(name, steps=60)
    compiled = CompiledBPTT(lm)
    full_loss, full = compiled.run(*args, cutoff=0.0)
    loss, grads = compiled.run(*args, checkpoint_every=every, states_needed=False)
    assert loss == full_loss
    for key in full:
        np.testing.assert_allclose(grads[key], full[key], rtol=1e-12, atol=1e-14, err_msg=key)
    assert np.any(full["w_rec"] != 0)
    if every > 1:  # a checkpoint every step holds as much as the tape it replaces
        assert compiled.memory_bytes(2000, 32, 1000, every) < \
            compiled.memory_bytes(2000, 32, 1000)


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("delay", [1, 3])
def test_checkpointing_with_dense_recurrence(delay, parallel):
    """Dense recurrence (the adjoint through a matrix product) with checkpoints and delays:
    the same gradients as the full tape, which equal the gather through the synapses."""
    lm, args = spike_loss_problem(dense=True, seed=2)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn = args
    compiled = CompiledBPTT(lm)
    run = functools.partial(compiled.run, *args, delay=delay, states_needed=False,
                            parallel=parallel)
    gathered = run(dense=False)
    full = run(dense=True)
    checkpointed = run(dense=True, checkpoint_every=9)
    assert full[0] == checkpointed[0] == gathered[0]
    for key in full[1]:
        np.testing.assert_allclose(checkpointed[1][key], full[1][key], rtol=1e-12,
                                   atol=1e-14, err_msg=key)
        np.testing.assert_allclose(full[1][key], gathered[1][key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)
    assert np.any(full[1]["w_rec"] != 0)
    sparse = conn.build_csr(conn.FixedProbability(0.5), rec_csr.n_pre, rec_csr.n_post, seed=3)
    with pytest.raises(sg.SnngenError, match="all-to-all recurrent"):
        compiled.run(params, s0, inputs, in_csr, w_in, sparse,
                     np.ones(sparse.n_synapses), dt, loss_fn, dense=True)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("every", [None, 7])
def test_deferred_weight_gradients_equal_per_thread_buffers(dense, every):
    """Weight gradients formed after the pass from stored adjoints (threads owning blocks of
    postsynaptic neurons) equal per-thread accumulation, with delays, checkpoints, sparse
    (FixedProbability input and recurrence) and all-to-all projections."""
    lm, args = spike_loss_problem(dense=dense, seed=3)
    compiled = CompiledBPTT(lm)
    out = {}
    for mode in ("per_thread", "deferred"):
        out[mode] = compiled.run(*args, delay=2, checkpoint_every=every,
                                 states_needed=False, weight_grads=mode, parallel="trials")
        assert compiled.deferred == (mode == "deferred")
    # threads owning blocks of neurons: in-pass into one buffer, or deferred likewise
    for mode in ("auto", "deferred"):
        out["neurons", mode] = compiled.run(*args, delay=2, checkpoint_every=every,
                                            states_needed=False, weight_grads=mode,
                                            parallel="neurons")
        assert compiled.deferred == (mode == "deferred")
    assert out["deferred"][0] == out["per_thread"][0]
    for key in out["per_thread"][1]:
        for other in ("deferred", ("neurons", "auto"), ("neurons", "deferred")):
            np.testing.assert_allclose(out[other][1][key], out["per_thread"][1][key],
                                       rtol=1e-11, atol=1e-14, err_msg=f"{key} {other}")
    assert np.any(out["deferred"][1]["w_rec"] != 0) and np.any(out["deferred"][1]["w_in"] != 0)
    with pytest.raises(sg.SnngenError, match="weight_grads must be"):
        compiled.run(*args, weight_grads="shared")


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("every", [None, 9])
def test_taped_synaptic_input_equals_the_recomputed_one(dense, every, parallel):
    """The backward pass reading each step's synaptic input from the tape (the default with
    checkpoints) gets the same gradients, bit for bit, as recomputing it (the same sums in
    the same order), with delays, checkpoints and both recurrent paths; the tape costs
    B x n values per taped step in the memory estimate."""
    lm, args = spike_loss_problem(dense=dense, seed=4)
    compiled = CompiledBPTT(lm)
    out = {mode: compiled.run(*args, delay=2, checkpoint_every=every, states_needed=False,
                              tape_input=mode, parallel=parallel)
           for mode in (False, True)}
    assert out[True][0] == out[False][0]
    for key in out[False][1]:
        np.testing.assert_array_equal(out[True][1][key], out[False][1][key], err_msg=key)
    assert np.any(out[True][1]["w_rec"] != 0)
    item = compiled.dtype.itemsize
    assert compiled.memory_bytes(100, 8, 50, tape_input=True) - \
        compiled.memory_bytes(100, 8, 50, tape_input=False) == 100 * 8 * 50 * item
    assert compiled.memory_bytes(100, 8, 50, 10) - \
        compiled.memory_bytes(100, 8, 50, 10, tape_input=False) == 10 * 8 * 50 * item


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
def test_input_gradient_changes_no_other_gradient(parallel):
    """``input_grad=True`` adds dL/d(inputs) (T, B, n_in) and defers the weight gradients;
    every other gradient stays what it was (to summation order); the estimate counts both."""
    lm, args = spike_loss_problem(dense=False, seed=5)
    compiled = CompiledBPTT(lm, "float64")
    plain = compiled.run(*args, delay=2, states_needed=False, parallel=parallel,
                         weight_grads="per_thread")
    with_in = compiled.run(*args, delay=2, states_needed=False, parallel=parallel,
                           input_grad=True)
    assert compiled.deferred and with_in[0] == plain[0]
    assert set(with_in[1]) == set(plain[1]) | {"inputs"}
    assert with_in[1]["inputs"].shape == args[2].shape and np.any(with_in[1]["inputs"] != 0)
    for key in plain[1]:
        np.testing.assert_allclose(with_in[1][key], plain[1][key], rtol=1e-12, atol=1e-15,
                                   err_msg=key)
    # the estimate: where "auto" defers anyway (large projections), the input gradient
    # adds exactly its T x B x n_in values (elsewhere the forced deferral also trades the
    # per-thread weight copies for the stored adjoints)
    item = compiled.dtype.itemsize
    for every in (None, 10):
        for par in ("trials", "neurons"):
            size = (100, 8, 50, every)
            assert compiled.memory_bytes(*size, n_synapses=10**7, parallel=par, input_grad=20) \
                - compiled.memory_bytes(*size, n_synapses=10**7, parallel=par) \
                == 100 * 8 * 20 * item


def test_weight_gradients_are_deferred_when_per_thread_copies_would_be_large():
    from snngen.train.bptt_plan import defer_weight_grads
    t1_1024 = dict(stored=100 * 32 * 1024, synapses=700 * 1024 + 10_000, item=4)
    assert not defer_weight_grads("auto", 2, **t1_1024)       # 2.9 MB of copies: keep them
    assert defer_weight_grads("auto", 16, **t1_1024)          # 15 copies: 44 MB > 13 MB
    t1_4096_dense = dict(stored=100 * 32 * 4096, synapses=700 * 4096 + 4096**2, item=4)
    assert defer_weight_grads("auto", 2, **t1_4096_dense)     # 79 MB > 52 MB stored
    assert not defer_weight_grads("per_thread", 16, **t1_4096_dense)
    assert defer_weight_grads("deferred", 1, **t1_1024)
    # checkpoints every 20 steps: one segment's adjoints (2.6 MB) < 2.9 MB of copies
    t1_1024_ckpt20 = dict(t1_1024, stored=20 * 32 * 1024)
    assert defer_weight_grads("auto", 2, **t1_1024_ckpt20, checkpointed=True)
    assert not defer_weight_grads("auto", 2, **t1_1024_ckpt20)
    assert not defer_weight_grads("auto", 2, **t1_1024, checkpointed=True)  # 13 MB stored
    # threads owning blocks of neurons: defer when the stored adjoints are at most half the
    # weights (H = 1024, 1 %: a segment of 20 steps, 2 x 0.66M > 0.73M weights: in the pass;
    # of 10 steps: deferred)
    assert not defer_weight_grads("auto", 2, **t1_1024_ckpt20, checkpointed=True,
                                   by_neurons=True)
    t1_1024_ckpt10 = dict(t1_1024, stored=10 * 32 * 1024)
    assert defer_weight_grads("auto", 2, **t1_1024_ckpt10, checkpointed=True, by_neurons=True)
    t1_4096_ckpt10 = dict(t1_4096_dense, stored=10 * 32 * 4096)
    assert defer_weight_grads("auto", 2, **t1_4096_ckpt10, checkpointed=True, by_neurons=True)
    assert not defer_weight_grads("auto", 2, **t1_4096_dense, by_neurons=True)  # whole run
    assert not defer_weight_grads("per_thread", 2, **t1_4096_ckpt10, by_neurons=True)


def test_checkpointing_rejects_a_loss_on_states():
    lm, args, _ = problem("lif", steps=30)
    with pytest.raises(sg.SnngenError, match="spikes only"):
        CompiledBPTT(lm).run(*args, checkpoint_every=10)


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
@pytest.mark.parametrize("delay", [2, 5])
@pytest.mark.parametrize("dense", [False, True], ids=["events", "blas"])
def test_recurrent_delays_equal_reference(delay, dense, parallel):
    """Recurrent spikes arriving ``delay`` steps later: compiled (event and BLAS paths) equal
    the NumPy reference, and checkpointing across segment boundaries shorter than the delay
    keeps them equal."""
    lm, args, _ = problem("lif", dense=dense, steps=50)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, _ = args
    steps, batch, _ = inputs.shape
    w_z = np.random.default_rng(2).uniform(-1, 1, s0.shape[1])

    def loss_fn(states, spikes):
        return float(np.sum(spikes * w_z)), None, np.broadcast_to(w_z, spikes.shape).copy()
    compiled = CompiledBPTT(lm)
    loss, grads = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                               delay=delay, dense=dense, parallel=parallel)
    ref_loss, ref = 0.0, {}
    for b in range(batch):
        lb, gb = bptt(lm, params, s0[b], inputs[:, b], _dense(in_csr, w_in),
                      _dense(rec_csr, w_rec), dt,
                      lambda t, s, z: (float(np.sum(z * w_z)), np.zeros_like(s), w_z),
                      delay=delay)
        ref_loss += lb
        for key, value in gb.items():
            if key != "s0":
                ref[key] = ref.get(key, 0) + value
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grads["w_rec"], ref["w_rec"][rec_csr.pre_indices(),
                                                            rec_csr.indices], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(grads["w_in"], ref["w_in"][in_csr.pre_indices(),
                                                          in_csr.indices], rtol=1e-9,
                               atol=1e-12)
    assert np.any(grads["w_rec"] != 0)
    if not dense:
        _, chk = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                              delay=delay, checkpoint_every=3, states_needed=False)
        for key in grads:
            np.testing.assert_allclose(chk[key], grads[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_neuron_blocks_with_a_low_rank_loss_and_on_one_thread(dense):
    """Threads owning blocks of neurons, with the loss given as a low-rank product (a
    readout: dL/dz = left @ right^T formed in the kernel), equal threads owning trials and
    the same loss with dL/dz given in full; and
    on one thread the same kernel takes all neurons alone (no barrier), with the same
    gradients. The memory estimate drops the per-thread weight-gradient copies."""
    import numba
    lm, args = spike_loss_problem(dense=dense, seed=6)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, _ = args
    steps, batch, _ = inputs.shape
    rng = np.random.default_rng(7)
    right = rng.normal(size=(s0.shape[1], 3))
    left = rng.normal(size=(steps, batch, 3))

    def loss_fn(states, spikes):
        return float(np.einsum("tbn,nr,tbr->", spikes, right, left)), None, (left, right)
    compiled = CompiledBPTT(lm)
    run = functools.partial(compiled.run, *args[:-1], loss_fn, states_needed=False, delay=2,
                            checkpoint_every=11)
    out = {mode: run(parallel=mode) for mode in ("trials", "neurons")}
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        out["alone"] = run(parallel="neurons")
    finally:
        numba.set_num_threads(threads)
    # the same loss with dL/dz given in full: the low-rank product formed in the kernels
    # (one matrix product per step) equals it
    out["full"] = functools.partial(compiled.run, *args[:-1], states_needed=False, delay=2,
                                    checkpoint_every=11)(
        lambda states, spikes: (loss_fn(states, spikes)[0], None,
                                np.einsum("tbr,nr->tbn", left, right)), parallel="trials")
    assert out["trials"][0] == out["neurons"][0] == out["alone"][0] == out["full"][0]
    for key in out["trials"][1]:
        for mode in ("neurons", "alone", "full"):
            np.testing.assert_allclose(out[mode][1][key], out["trials"][1][key], rtol=1e-11,
                                       atol=1e-14, err_msg=f"{key} {mode}")
    assert np.any(out["neurons"][1]["w_rec"] != 0)
    with pytest.raises(sg.SnngenError, match="parallel must be"):
        compiled.run(*args, parallel="synapses")
    if threads > 1:  # per-thread copies of 1e6 weights (trials) against one buffer
        assert compiled.memory_bytes(100, 32, 1000, n_synapses=10**6, parallel="neurons") < \
            compiled.memory_bytes(100, 32, 1000, n_synapses=10**6, parallel="trials")


@pytest.mark.parametrize("delay", [1, 3])
@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_simulate_gives_the_spikes_and_state_of_the_training_forward_pass(name, dense, delay):
    """simulate (forward only: no tape, no backward) gives exactly the spikes the loss of
    run() sees and the state after the last step (refractory LIF and QIF, sparse and
    all-to-all, recurrent delays)."""
    lm, args, _ = problem(name, dense=dense)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, _ = args
    seen = {}

    def loss_fn(states, spikes):
        seen["states"], seen["spikes"] = states.copy(), spikes.copy()
        return 0.0, None, np.zeros(spikes.shape)
    kernels = CompiledBPTT(lm)
    kernels.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn, delay=delay)
    spikes, state = kernels.simulate(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt,
                                     delay=delay)
    assert spikes.dtype == np.bool_ and spikes.shape == seen["spikes"].shape
    assert 0 < spikes.sum() < spikes.size  # a test that spikes could fail
    np.testing.assert_array_equal(spikes, seen["spikes"] > 0.5)
    np.testing.assert_array_equal(state, seen["states"][-1])
    # what the kernels keep of the spikes between the passes: one bit per neuron and step
    steps, batch, n = spikes.shape
    kept = kernels._forward_arrays(s0, inputs, in_csr, w_in, rec_csr, w_rec, dense)[2]
    assert kept.dtype == np.uint64 and kept.shape == (steps, batch, (n + 63) // 64)
    with pytest.raises(sg.SnngenError, match="delay"):
        kernels.simulate(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, delay=0)


MINIMAL = {  # model, parameters, input target, the derived minimal tape
    # (the model of test_gradients_torch.py, so that CI compiles its kernels once)
    "lif": (sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="lif_torch_batched"),
            {"El": 0.2, "taum": 0.02, "taus": 0.005, "Vt": 1.0, "Vr": 0.1}, "I", ["_tg"]),
    "lif_subtract": (sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                                    threshold="v > 1", reset="v = v - 1", name="lif_sub_min"),
                     {"taum": 0.02, "taus": 0.005}, "I", ["_tg"]),
    "alif": (sg.NeuronModel("""
        dv/dt = (I - v) / taum : 1
        dI/dt = -I / taus : 1
        db/dt = -b / taua : 1
    """, threshold="v > 1 + beta * b", reset="v = 0\nb = b + 1", name="alif_min"),
             {"taum": 0.02, "taus": 0.005, "taua": 0.05, "beta": 0.3}, "I", ["_tg", "s_b"]),
    # QIF: (g, v) would replace (v, I) only; no smaller tape, the full one runs
    "qif": (MODELS["qif"][0], MODELS["qif"][1], "I", None),
    "izhikevich": (sg.NeuronModel("""
        dv/dt = (0.04 * v**2 + 5 * v + 140 - u + I) / tv : 1
        du/dt = a * (bu * v - u) / tv : 1
        dI/dt = -I / taus : 1
    """, threshold="v > 30", reset="v = c\nu = u + d", name="izh_min"),
                   {"tv": 0.001, "a": 0.02, "bu": 0.2, "c": -65.0, "d": 8.0, "taus": 0.005},
                   "I", ["_tg", "s_v"]),
}


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_minimal_tape_columns_are_derived_for_every_model(name):
    """The columns each model's minimal tape keeps (symbolic only: no kernel compiled). The
    synaptic input arrives after the threshold (Brian2's order), so g never reads it: LIF
    keeps g alone instead of (v, I), an adaptive LIF (g, b) of three states, Izhikevich
    (g, v) of three; QIF has nothing smaller than its two states."""
    from snngen.derive.tape import minimal_tape
    model, _, target, columns = MINIMAL[name]
    found = minimal_tape(derive(discretise(model), inputs=[target]))
    assert (None if found is None else [str(c) for c in found[0]]) == columns


@pytest.mark.parametrize("name, variant", [
    ("lif", "hard"), ("qif", "hard"),  # (kernels other tests compile too)
    *[pytest.param(name, variant, marks=pytest.mark.slow)  # (a kernel compile each)
      for name, variant in [("alif", "hard"), ("lif_subtract", "hard"),
                            ("izhikevich", "hard"), ("lif", "detach_reset"),
                            ("alif", "detach_reset")]]])
def test_minimal_tape_gradients_equal_the_reference(name, variant):
    """Weight gradients only: the tape keeps the derived minimal columns (LIF: g alone, not
    v, I and the synaptic input), and the weight and initial-state gradients equal the
    reference executor's, with and without checkpoints, both ways of sharing threads, a
    recurrent delay, sparse and all-to-all weights; memory_bytes counts the smaller tape."""
    model, base, target, columns = MINIMAL[name]
    lm = derive(discretise(model), inputs=[target], surrogate="fast_sigmoid",
                detach_reset=variant == "detach_reset")
    compiled = CompiledBPTT(lm)
    if name == "alif" and variant == "detach_reset":
        columns = ["_tg"]  # a detached reset: the threshold's b is not read back
    assert (compiled.tape_columns if columns is None
            else [str(c) for c in compiled.tape_columns]) == columns
    rng = np.random.default_rng(11)
    n, n_in, batch, steps, dt = 12, 5, 3, 50, 1e-3
    k = len(lm.states)
    params = {p: v * rng.uniform(0.9, 1.1, n) for p, v in base.items()}
    rest = {"izhikevich": (-65.0, -13.0), "alif": (0.0, 0.0)}.get(name, (0.0, 0.0))
    s0 = np.zeros((batch, n, k))
    s0[..., 0] = rest[0] + rng.uniform(0, 0.5, (batch, n))
    if name == "izhikevich":
        s0[..., 1] = rest[1]
    inputs = (rng.random((steps, batch, n_in)) < 0.2).astype(float)
    gain = 60.0 if name == "izhikevich" else 3.0
    coef = rng.uniform(0.5, 1.5, n)

    def loss_fn(states, spikes):
        return float(np.sum(coef * spikes)), None, np.broadcast_to(coef, spikes.shape).copy()
    delay = 2
    for dense, parallel, every in [(False, "trials", None), (True, "neurons", 10),
                                   (False, "neurons", 20), (True, "trials", None)]:
        pattern = conn.AllToAll() if dense else conn.FixedProbability(0.5)
        in_csr = conn.build_csr(pattern, n_in, n, seed=1)
        rec_csr = conn.build_csr(pattern, n, n, seed=2)
        w_in = rng.uniform(0.5, 1.5, in_csr.n_synapses) * gain
        w_rec = rng.normal(0, 0.4, rec_csr.n_synapses) * gain
        loss, grads = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt,
                                   loss_fn, wanted=set(), states_needed=False, delay=delay,
                                   parallel=parallel, checkpoint_every=every)
        ref_loss, ref_win, ref_wrec, ref_s0 = 0.0, 0.0, 0.0, []
        for b in range(batch):
            lb, gb = bptt(lm, params, s0[b], inputs[:, b], _dense(in_csr, w_in),
                          _dense(rec_csr, w_rec), dt,
                          lambda t, s, z: (float(np.sum(coef * z)), np.zeros((n, k)), coef),
                          delay=delay)
            ref_loss, ref_win, ref_wrec = ref_loss + lb, ref_win + gb["w_in"], \
                ref_wrec + gb["w_rec"]
            ref_s0.append(gb["s0"])
        case = f"{name} {variant} dense={dense} {parallel} every={every}"
        assert loss == pytest.approx(ref_loss, rel=1e-12), case
        assert 0 < loss  # spikes happened
        np.testing.assert_allclose(grads["w_in"], ref_win[in_csr.pre_indices(),
                                                           in_csr.indices],
                                   rtol=1e-9, atol=1e-12, err_msg=case)
        np.testing.assert_allclose(grads["w_rec"], ref_wrec[rec_csr.pre_indices(),
                                                             rec_csr.indices],
                                   rtol=1e-9, atol=1e-12, err_msg=case)
        np.testing.assert_allclose(grads["s0"], np.stack(ref_s0), rtol=1e-9, atol=1e-12,
                                   err_msg=case)
        assert np.any(grads["w_rec"] != 0), case
        # with dL/d(inputs) (what a layer below needs): the same as with the full tape
        kw = dict(states_needed=False, delay=delay, parallel=parallel,
                  checkpoint_every=every, input_grad=True)
        _, mine = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                               wanted=set(), **kw)
        _, full = compiled.run(params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, loss_fn,
                               wanted=None, **kw)
        assert np.any(full["inputs"] != 0), case
        for key in ("inputs", "w_in", "w_rec", "s0"):
            # the two tapes give the adjoint step's numbers by different float operations:
            # an entry that cancels to near 0 differs by rounding of the array's scale
            # (Izhikevich: 2e-14 on an entry of 3e-3 in an array reaching 45)
            scale = np.abs(full[key]).max()
            np.testing.assert_allclose(mine[key], full[key], rtol=1e-12, atol=1e-14 * scale,
                                       err_msg=f"{case} {key}")
    item = compiled.dtype.itemsize
    assert compiled.memory_bytes(steps, batch, n) - compiled.memory_bytes(
        steps, batch, n, weights_only=True) == steps * batch * n * (
            k - len(columns or [None] * k)) * item  # no minimal tape: the same memory


def test_compiled_bptt_refuses_soft_spikes():
    """Soft spikes (spike = sigmoid) are for the reference executor's finite-difference
    checks; the kernels run hard spikes, so a soft model is refused, not run wrongly."""
    from snngen.train.cuda_bptt import CudaBPTT
    lm = derive(discretise(MODELS["qif"][0]), inputs=["I"], soft_beta=5.0)
    with pytest.raises(sg.SnngenError, match="soft_beta"):
        CompiledBPTT(lm)
    with pytest.raises(sg.SnngenError, match="soft_beta"):  # the CUDA kernels: the same
        CudaBPTT(lm, device="host")


def test_show_prints_the_tape():
    """sg.show(lm, "tape"): the derived minimal tape and the full one, in the model's names."""
    import io
    alif = derive(discretise(MINIMAL["alif"][0]), inputs=["I"])
    text = sg.show(alif, "tape", file=io.StringIO())
    assert "weight gradients only: 2 columns: _tg = g = " in text
    assert "b (before the step)" in text and "4 columns" in text
    text = sg.show(problem("lif")[0], "tape", file=io.StringIO())
    assert "no smaller tape" in text  # refractoriness: the full tape
