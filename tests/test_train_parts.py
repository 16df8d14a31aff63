"""Optimisers, losses and the Randman generator (the parts of training that stand alone)."""

import numpy as np
import pytest

import snngen as sg
from snngen.datasets import randman
from snngen.train import SGD, Adam, clip_by_norm, constrain, cross_entropy, mse, rate_regulariser
from snngen.train.optim import clip_scale, global_norm


@pytest.mark.parametrize("over", ["max", "mean", "last"])
def test_cross_entropy_gradient_is_exact(over):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(7, 4, 3))
    labels = np.array([0, 2, 1, 2])
    loss, grad = cross_entropy(y, labels, over)
    for idx in [(0, 0, 0), (3, 1, 2), (6, 3, 1), (2, 2, 0)]:
        h = 1e-6
        up, down = y.copy(), y.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (cross_entropy(up, labels, over)[0] - cross_entropy(down, labels, over)[0])
        assert grad[idx] == pytest.approx(numeric / (2 * h), abs=1e-8)


def test_mse_and_rate_regulariser_gradients():
    rng = np.random.default_rng(1)
    y, target = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    loss, grad = mse(y, target)
    assert loss == pytest.approx(np.mean((y - target) ** 2))
    np.testing.assert_allclose(grad, 2 * (y - target) / y.size)
    spikes = (rng.random((100, 2, 4)) < 0.05).astype(float)
    loss, grad = rate_regulariser(spikes, 1e-3, low=10, high=30)
    rate = spikes.sum(0) / 0.1
    excess = np.minimum(rate - 10, 0) + np.maximum(rate - 30, 0)
    assert loss == pytest.approx(np.mean(excess ** 2))
    assert grad.shape == spikes.shape


def test_adam_matches_torch():
    torch = pytest.importorskip("torch", reason="torch is the reference optimiser")
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(3, 4))
    ours = {"w": w0.copy()}
    theirs = torch.tensor(w0, requires_grad=True)
    opt, ref = Adam(lr=0.01, weight_decay=0.1), torch.optim.AdamW([theirs], lr=0.01,
                                                                   weight_decay=0.1)
    for _ in range(20):
        g = rng.normal(size=(3, 4))
        opt.step(ours, {"w": g.copy()})
        ref.zero_grad()
        theirs.grad = torch.tensor(g)
        ref.step()
    np.testing.assert_allclose(ours["w"], theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_adam_equals_the_array_version(dtype):
    """NumPy arrays take the compiled in-place update; anything else (a non-contiguous
    gradient here, CuPy arrays on the CUDA backends) the array version: both the same."""
    rng = np.random.default_rng(4)
    fused, plain = (rng.normal(size=(30, 7)).astype(dtype) for _ in range(2))
    plain[:] = fused
    a, b = Adam(lr=0.01, weight_decay=0.1), Adam(lr=0.01, weight_decay=0.1)
    for step in range(6):
        g = rng.normal(size=fused.shape).astype(dtype)
        scale = 1.0 if step % 2 else 0.3  # clipping's factor, applied as the gradient is read
        a.step({"w": fused}, {"w": g}, scale=scale)
        b.step({"w": plain}, {"w": np.asfortranarray(g)}, scale=scale)
    assert a.m["w"].dtype == dtype and a.m["w"].shape == fused.shape
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(fused, plain, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.v["w"], b.v["w"], rtol=tol, atol=1e-30)


def test_sgd_momentum_and_checkpointable_adam_state():
    w = {"w": np.array([1.0])}
    opt = SGD(lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.step(w, {"w": np.array([1.0])})
    # v1 = 1, v2 = 1.9, v3 = 2.71 -> w = 1 - 0.1 * 5.61
    assert w["w"][0] == pytest.approx(1 - 0.561)
    a = Adam(lr=0.1)
    p = {"w": np.array([1.0, 2.0])}
    a.step(p, {"w": np.array([1.0, -1.0])})
    b = Adam(lr=0.1)
    b.load_state_dict(a.state_dict())
    q = {"w": p["w"].copy()}
    a.step(p, {"w": np.array([0.5, 0.5])})
    b.step(q, {"w": np.array([0.5, 0.5])})
    np.testing.assert_array_equal(p["w"], q["w"])  # resumes exactly
    with pytest.raises(sg.SnngenError, match="lr > 0"):
        Adam(lr=0)


def test_clipping_and_constraints():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert clip_by_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(np.sum(grads["a"] ** 2) + np.sum(grads["b"] ** 2)) == pytest.approx(1.0)
    big = np.full((3, 1000), 0.1, np.float32)  # the compiled norm: float64 sums of squares
    assert clip_by_norm({"w": big}, 100.0) == pytest.approx(np.sqrt(30.0), rel=1e-6)
    rng = np.random.default_rng(8)  # a parallel reduction over 1e6 values, and a strided one
    many = {"w": rng.normal(size=1_000_000).astype(np.float32), "v": rng.normal(size=(9, 4)).T}
    assert global_norm(many) == pytest.approx(
        np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in many.values())), rel=1e-9)
    assert clip_scale(5.0, 1.0) == 0.2 and clip_scale(0.5, 1.0) == 1.0
    # clipping as the optimiser's factor equals scaling the gradients first
    for opt in (lambda: Adam(lr=0.1), lambda: SGD(lr=0.1, momentum=0.9)):
        p1, p2 = {"w": np.array([1.0, 2.0])}, {"w": np.array([1.0, 2.0])}
        o1, o2 = opt(), opt()
        for g in ([3.0, -4.0], [0.3, 0.4]):
            g1, g2 = {"w": np.array(g)}, {"w": np.array(g)}
            o1.step(p1, g1, scale=clip_scale(global_norm(g1), 1.0))
            clip_by_norm(g2, 1.0)
            o2.step(p2, g2)
        np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-15)
    w = np.array([[0.5, -0.2], [-0.3, 0.4], [2.0, -3.0]])
    constrain(w, sign=np.array([[1], [-1], [0]]), lo=-1, hi=1)
    np.testing.assert_array_equal(w, [[0.5, 0.0], [-0.3, 0.0], [1.0, -1.0]])


def test_randman_is_reproducible_and_learnable():
    t1, u1, l1 = randman(classes=5, channels=20, samples_per_class=40, seed=3)
    t2, _, l2 = randman(classes=5, channels=20, samples_per_class=40, seed=3)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(l1, l2)
    assert t1.min() >= 0 and t1.max() <= 0.1 and np.bincount(l1).tolist() == [40] * 5
    t3, _, _ = randman(classes=5, channels=20, samples_per_class=40, seed=4)
    assert not np.array_equal(t1, t3)
    # samples lie on one smooth curve per class: 1-nearest-neighbour on held-out samples
    train, test = slice(0, 100), slice(100, 200)
    dist = ((t1[test][:, None] - t1[train][None]) ** 2).sum(-1)
    pred = l1[train][dist.argmin(axis=1)]
    assert (pred == l1[test]).mean() > 0.8  # chance is 0.2
    with pytest.raises(sg.SnngenError, match="classes"):
        randman(classes=0)


@pytest.mark.parametrize("which", ["spike_count", "van_rossum"])
def test_spike_losses_have_exact_gradients(which):
    from snngen.train import spike_count, van_rossum
    rng = np.random.default_rng(4)
    z = rng.random((30, 2, 3))  # the gradient is that of a smooth function of z
    target = (rng.random((30, 2, 3)) < 0.2).astype(float)

    def f(s):
        if which == "spike_count":
            return spike_count(s, target.sum(0))
        return van_rossum(s, target, tau=0.01, dt=1e-3)
    loss, grad = f(z)
    for idx in [(0, 0, 0), (12, 1, 2), (29, 0, 1)]:
        up, down = z.copy(), z.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        assert grad[idx] == pytest.approx((f(up)[0] - f(down)[0]) / 2e-6, rel=1e-6, abs=1e-9)
    assert van_rossum(target, target, 0.01, 1e-3)[0] == 0.0


@pytest.mark.parametrize("n", [64, 61], ids=["words", "bytes"])
@pytest.mark.parametrize("rate", [0.0, 0.03, 1.0])
def test_event_readout_equals_the_dense_products(n, rate):
    """The event-driven readout products over boolean spikes (read 8 at a time when the row
    length allows, byte by byte otherwise) equal the float products, silent to saturated."""
    from snngen.train.readout import readout_drive, readout_grad
    rng = np.random.default_rng(5)
    z = rng.random((7, 5, n)) < rate
    z[3, 2, n - 1] = True   # the last neuron of a row (in the byte tail when n % 8 != 0)
    w, d = rng.normal(size=(n, 3)), rng.normal(size=(7, 5, 3))
    np.testing.assert_allclose(readout_drive(z, w), np.einsum("tbn,no->tbo", z, w),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(readout_grad(z, d), np.einsum("tbn,tbo->no", z, d),
                               rtol=1e-13, atol=1e-13)
    part = z[2:5]  # a slice of the run, as a checkpointed segment is
    np.testing.assert_allclose(readout_drive(part, w), np.einsum("tbn,no->tbo", part, w),
                               rtol=1e-13, atol=1e-13)


def test_fused_adam_allocates_nothing_after_its_first_step():
    """The moments are made once; later steps update them and the weights in place (at
    T1 H = 4096, 2 x 79 MB allocated and zeroed per step would cost 40 ms and memory)."""
    import tracemalloc
    w, g = np.zeros(500_000, np.float32), np.ones(500_000, np.float32)
    opt = Adam(lr=0.01)
    opt.step({"w": w}, {"w": g})
    tracemalloc.start()
    try:
        opt.step({"w": w}, {"w": g}, scale=0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.nbytes // 10


@pytest.mark.parametrize("n_in", [0, 5, 8, 700, 1027])
@pytest.mark.parametrize("rate", [0.0, 0.003, 0.2, 1.0])
def test_input_events_equal_nonzero(n_in, rate):
    """The event lists of the BPTT kernels: booleans read as 8-byte words (row widths that
    are and are not multiples of 8, so words straddle rows), other dtypes element by
    element; both against np.nonzero."""
    from snngen.train.bptt import input_events
    rng = np.random.default_rng(n_in)
    spikes = rng.random((6, 5, n_in)) < rate
    want_idx, want_ptr = [], [0]
    for row in spikes.reshape(30, n_in):
        hit = np.nonzero(row)[0]
        want_idx.extend(hit)
        want_ptr.append(want_ptr[-1] + len(hit))
    for x in (spikes, spikes.astype(np.float32), spikes.astype(np.int64) * 3):
        idx, ptr = input_events(x)
        assert idx.tolist() == want_idx and ptr.tolist() == want_ptr


def test_spike_batch_gathers_trials_as_booleans():
    from snngen.train.trainer import spike_batch
    rng = np.random.default_rng(3)
    x = (rng.random((9, 7, 13)) < 0.3) * rng.uniform(0.5, 2.0, (9, 7, 13))
    idx = np.array([6, 0, 3, 3])
    want = x[:, idx] != 0
    for data in (x, x.astype(np.float32), (x != 0).astype(np.uint8), x != 0,
                 np.asfortranarray(x)):
        got = spike_batch(data, idx)
        assert got.dtype == np.bool_ and np.array_equal(got, want)
    with pytest.raises(sg.SnngenError, match=r"\(steps, samples, channels\)"):
        spike_batch(x[0], idx)
    with pytest.raises(sg.SnngenError, match="dtype"):
        spike_batch(x.astype(complex), idx)
