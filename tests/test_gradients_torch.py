"""LEARNING.md section 4, check 2 (reference-executor level): hard-spike surrogate gradients
of the symbolically derived step equal an independent PyTorch autodiff implementation.

The PyTorch side is written here from the equations: matrix_exp propagators (differentiable
in the time constants), a custom autograd spike with the fast-sigmoid surrogate, the same step
order (Brian2's: update, threshold, synaptic input, reset). Skipped when torch is missing
(.ci/run installs torch==2.13.0, CPU).
"""

import numpy as np
import pytest

import snngen as sg
from snngen.derive import derive
from snngen.derive.reference import bptt
from snngen.integrate import discretise

torch = pytest.importorskip("torch", reason="torch==2.13.0 (CPU) is the autodiff reference")

BETA = 10.0


class FastSigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g):
        ctx.save_for_backward(g)
        return (g > 0).to(g.dtype)

    @staticmethod
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return grad / (BETA * g.abs() + 1.0) ** 2


def _propagators(taum, taus, el, dt):
    """Exact propagator Phi and the constant drive Psi b of the LIF below (differentiable)."""
    a = torch.stack([torch.stack([-1 / taum, 1 / taum]),
                     torch.stack([torch.zeros_like(taum), -1 / taus])]).permute(2, 0, 1)
    k = 2
    aug = torch.zeros(a.shape[0], 2 * k, 2 * k, dtype=torch.float64)
    aug[:, :k, :k] = a * dt
    aug[:, :k, k:] = torch.eye(k, dtype=torch.float64) * dt
    e = torch.linalg.matrix_exp(aug)
    phi, psi = e[:, :k, :k], e[:, :k, k:]
    b = torch.stack([el / taum, torch.zeros_like(el)], dim=1)
    return phi, torch.einsum("nij,nj->ni", psi, b)


def _torch_loss(taum, taus, vt, vr, el, s0, x_in, w_in, w_rec, coef, dt, detach=False):
    phi, offset = _propagators(taum, taus, el, dt)
    s, z_prev, loss = s0, torch.zeros(s0.shape[0], dtype=torch.float64), 0.0
    for t in range(x_in.shape[0]):
        x = x_in[t] @ w_in + z_prev @ w_rec
        u = torch.einsum("nij,nj->ni", phi, s) + offset  # update, threshold, input, reset
        z = FastSigmoidSpike.apply(u[:, 0] - vt)
        v = u[:, 0] + (z.detach() if detach else z) * (vr - u[:, 0])
        s = torch.stack([v, u[:, 1] + x], dim=1)
        loss = loss + 0.5 * torch.sum(coef * s[:, 0] ** 2) + 0.3 * torch.sum(z)
        z_prev = z
    return loss


@pytest.mark.parametrize("detach", [False, True])
def test_hard_spike_gradients_match_torch_autodiff(detach):
    """Also with ``detach_reset``: the reset's spike is a constant for the gradient (torch:
    ``z.detach()`` in the reset)."""
    model = sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="lif")
    lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid",
                detach_reset=detach)
    rng = np.random.default_rng(1)
    n, n_in, steps, dt = 6, 4, 80, 1e-3
    params = {"taum": rng.uniform(0.01, 0.03, n), "taus": rng.uniform(0.003, 0.008, n),
              "Vt": rng.uniform(0.8, 1.2, n), "Vr": rng.uniform(-0.1, 0.1, n),
              "El": rng.uniform(0.0, 0.5, n)}
    s0 = rng.uniform(0, 0.5, (n, 2))
    x_in = (rng.random((steps, n_in)) < 0.2).astype(float)
    w_in = rng.uniform(0.5, 3.0, (n_in, n))
    w_rec = rng.normal(0, 0.5, (n, n))
    coef = rng.uniform(0.5, 1.5, n)

    def loss_grad(t, s, z):
        return (0.5 * np.sum(coef * s[:, 0] ** 2) + 0.3 * np.sum(z),
                np.column_stack([coef * s[:, 0], np.zeros(n)]), np.full(n, 0.3))

    loss, grads = bptt(lm, params, s0, x_in, w_in, w_rec, dt, loss_grad)
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in {**params, "s0": s0, "w_in": w_in, "w_rec": w_rec}.items()}
    t_loss = _torch_loss(leaves["taum"], leaves["taus"], leaves["Vt"], leaves["Vr"],
                         leaves["El"], leaves["s0"], torch.tensor(x_in), leaves["w_in"],
                         leaves["w_rec"], torch.tensor(coef), dt, detach)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    assert x_in.sum() > 0 and loss > 0
    spikes_seen = False
    for name, leaf in leaves.items():
        np.testing.assert_allclose(grads[name], leaf.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        spikes_seen |= name == "Vt" and np.any(leaf.grad.numpy() != 0)
    assert spikes_seen  # the threshold gradient flows only through the surrogate


def _torch_batched(taum, taus, vt, vr, el, s0, x_in, w_in, w_rec, coef, dt, delay):
    """The same LIF as above, batch-first, recurrent spikes delayed by ``delay`` steps."""
    phi, offset = _propagators(taum, taus, el, dt)
    s, zs, loss = s0, [], 0.0
    for t in range(x_in.shape[0]):
        x = x_in[t] @ w_in
        if t >= delay:
            x = x + zs[t - delay] @ w_rec
        u = torch.einsum("nij,bnj->bni", phi, s) + offset
        z = FastSigmoidSpike.apply(u[..., 0] - vt)
        v = u[..., 0] + z * (vr - u[..., 0])
        s = torch.stack([v, u[..., 1] + x], dim=-1)
        loss = loss + 0.5 * torch.sum(coef * s[..., 0] ** 2) + 0.3 * torch.sum(z)
        zs.append(z)
    return loss


@pytest.mark.parametrize("parallel,dense_in", [("trials", False), ("neurons", False),
                                               ("trials", True)])
def test_compiled_kernels_match_torch_with_delays_sparse_batch(parallel, dense_in):
    """Check 2 on the compiled (Numba) kernels: sparse (or all-to-all) input and sparse
    recurrent connectivity, batch 3, recurrent delay of 3 steps, loss on states and spikes;
    1e-9 against autodiff, for the gradient w.r.t. the inputs too (``input_grad``)."""
    from snngen import connectivity as conn
    from snngen.train.bptt import CompiledBPTT
    model = sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="lif_torch_batched")
    lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid")
    rng = np.random.default_rng(4)
    n, n_in, steps, batch, dt, delay = 8, 5, 70, 3, 1e-3, 3
    params = {"taum": rng.uniform(0.01, 0.03, n), "taus": rng.uniform(0.003, 0.008, n),
              "Vt": rng.uniform(0.8, 1.2, n), "Vr": rng.uniform(-0.1, 0.1, n),
              "El": rng.uniform(0.0, 0.5, n)}
    s0 = rng.uniform(0, 0.5, (batch, n, 2))
    x_in = (rng.random((steps, batch, n_in)) < 0.2).astype(float)
    in_csr = conn.build_csr(conn.AllToAll() if dense_in else conn.FixedProbability(0.6),
                            n_in, n, seed=1)
    rec_csr = conn.build_csr(conn.FixedProbability(0.4, allow_self=False), n, n, seed=2)
    w_in = rng.uniform(0.5, 3.0, in_csr.n_synapses)
    w_rec = rng.normal(0, 0.8, rec_csr.n_synapses)
    coef = rng.uniform(0.5, 1.5, n)

    def loss_fn(states, spikes):
        dl_ds = np.zeros_like(states)
        dl_ds[..., 0] = coef * states[..., 0]
        return (0.5 * np.sum(coef * states[..., 0] ** 2) + 0.3 * np.sum(spikes), dl_ds,
                np.full(spikes.shape, 0.3))
    loss, grads = CompiledBPTT(lm, "float64").run(params, s0, x_in, in_csr, w_in, rec_csr,
                                                  w_rec, dt, loss_fn, delay=delay,
                                                  parallel=parallel, input_grad=True)

    def dense(csr, values):
        out = np.zeros((csr.n_pre, csr.n_post))
        np.add.at(out, (csr.pre_indices(), csr.indices), values)
        return out
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in {**params, "s0": s0, "w_in": dense(in_csr, w_in),
                           "w_rec": dense(rec_csr, w_rec), "inputs": x_in}.items()}
    t_loss = _torch_batched(leaves["taum"], leaves["taus"], leaves["Vt"], leaves["Vr"],
                            leaves["El"], leaves["s0"], leaves["inputs"], leaves["w_in"],
                            leaves["w_rec"], torch.tensor(coef), dt, delay)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12) and loss > 0
    expect = {k: leaves[k].grad.numpy() for k in leaves}
    expect["w_in"] = expect["w_in"][in_csr.pre_indices(), in_csr.indices]
    expect["w_rec"] = expect["w_rec"][rec_csr.pre_indices(), rec_csr.indices]
    for name, value in expect.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-9, atol=1e-12, err_msg=name)
    assert np.any(grads["w_rec"] != 0) and np.any(grads["Vt"] != 0)
    assert np.any(grads["inputs"] != 0)


@pytest.mark.parametrize("density", [0.5, 0.0], ids=["recurrent", "feedforward"])
def test_two_layer_classifier_gradients_match_torch(density):
    """Check 2 through a stack of layers: a classifier with two recurrent LIF layers (sparse
    recurrence, recurrent delay 2, heterogeneous time constants; or no recurrence at all),
    its leaky readout and cross-entropy, against autodiff of the same network written here
    in PyTorch: every weight of both layers and of the readout, and both layers' time
    constants, to 1e-9."""
    from snngen.train import RecurrentClassifier
    model = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                           threshold="v > 1", reset="v = 0", name="lif_torch_two_layers")
    rng = np.random.default_rng(7)
    steps, batch, n_in, delay, dt = 60, 4, 6, 2, 1e-3
    net = RecurrentClassifier(model, "I", n_in, (9, 7), 3, params={"taum": 0.01, "taus": 0.005},
                              dt=dt, dtype="float64", recurrent_density=density,
                              recurrent_delay=delay,
                              trainable_params=("taum", "taus"), input_gain=12.0, over="mean",
                              seed=2)
    for key, (lo, hi) in {"taum": (0.005, 0.02), "taus": (0.002, 0.008)}.items():
        for layer_key in (key, f"{key}:1"):
            net.params[layer_key][:] = rng.uniform(lo, hi, net.params[layer_key].shape)
    x = (rng.random((steps, batch, n_in)) < 0.3).astype(float)
    y = rng.integers(0, 3, batch)
    loss, grads, _ = net.loss_and_grads(x, y)

    def dense(csr, values):
        out = np.zeros((csr.n_pre, csr.n_post))
        out[csr.pre_indices(), csr.indices] = values
        return out
    csr_of = {"w_in": "in_csr", "w_rec": "rec_csr", "w_in:1": "in_csr:1",
              "w_rec:1": "rec_csr:1"}
    leaves = {k: torch.tensor(dense(net.csrs[c], net.weights[k]), requires_grad=True)
              for k, c in csr_of.items()}
    leaves["w_out"] = torch.tensor(net.weights["w_out"], requires_grad=True)
    leaves.update({k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()})

    def layer(inputs, suffix):
        w_in, w_rec = leaves["w_in" + suffix], leaves["w_rec" + suffix]
        phi, _ = _propagators(leaves["taum" + suffix], leaves["taus" + suffix],
                              torch.zeros(w_in.shape[1], dtype=torch.float64), dt)
        s = torch.zeros(batch, w_in.shape[1], 2, dtype=torch.float64)
        zs = []
        for t in range(steps):
            drive = inputs[t] @ w_in + (zs[t - delay] @ w_rec if t >= delay else 0.0)
            u = torch.einsum("nij,bnj->bni", phi, s)
            z = FastSigmoidSpike.apply(u[..., 0] - 1.0)
            s = torch.stack([u[..., 0] * (1 - z), u[..., 1] + drive], dim=-1)
            zs.append(z)
        return torch.stack(zs)
    z2 = layer(layer(torch.tensor(x), ""), ":1")
    out, ys = torch.zeros(batch, 3, dtype=torch.float64), []
    for t in range(steps):
        out = net.alpha * out + z2[t] @ leaves["w_out"]
        ys.append(out)
    t_loss = torch.nn.functional.cross_entropy(torch.stack(ys).mean(0), torch.tensor(y))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    assert z2.sum() > 0
    for key, leaf in leaves.items():
        want = leaf.grad.numpy()
        if key in csr_of:
            csr = net.csrs[csr_of[key]]
            want = want[csr.pre_indices(), csr.indices]
        assert want.size == 0 or np.any(want != 0), key  # no recurrent synapses: empty
        np.testing.assert_allclose(grads[key], want, rtol=1e-9, atol=1e-13, err_msg=key)
