"""LEARNING.md section 4, check 2 (reference-executor level): hard-spike surrogate gradients
of the symbolically derived step equal an independent PyTorch autodiff implementation.

The PyTorch side is written here from the equations: matrix_exp propagators (differentiable
in the time constants), a custom autograd spike with the fast-sigmoid surrogate, the same step
order. Skipped when torch is missing (.ci/run installs torch==2.13.0, CPU).
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
        s_in = torch.stack([s[:, 0], s[:, 1] + x], dim=1)
        u = torch.einsum("nij,nj->ni", phi, s_in) + offset
        z = FastSigmoidSpike.apply(u[:, 0] - vt)
        v = u[:, 0] + (z.detach() if detach else z) * (vr - u[:, 0])
        s = torch.stack([v, u[:, 1]], dim=1)
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
        s_in = torch.stack([s[..., 0], s[..., 1] + x], dim=-1)
        u = torch.einsum("nij,bnj->bni", phi, s_in) + offset
        z = FastSigmoidSpike.apply(u[..., 0] - vt)
        v = u[..., 0] + z * (vr - u[..., 0])
        s = torch.stack([v, u[..., 1]], dim=-1)
        loss = loss + 0.5 * torch.sum(coef * s[..., 0] ** 2) + 0.3 * torch.sum(z)
        zs.append(z)
    return loss


@pytest.mark.parametrize("parallel", ["trials", "neurons"])
def test_compiled_kernels_match_torch_with_delays_sparse_batch(parallel):
    """Check 2 on the compiled (Numba) kernels: sparse input and recurrent connectivity,
    batch 3, recurrent delay of 3 steps, loss on states and spikes; 1e-9 against autodiff."""
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
    in_csr = conn.build_csr(conn.FixedProbability(0.6), n_in, n, seed=1)
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
                                                  parallel=parallel)

    def dense(csr, values):
        out = np.zeros((csr.n_pre, csr.n_post))
        np.add.at(out, (csr.pre_indices(), csr.indices), values)
        return out
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in {**params, "s0": s0, "w_in": dense(in_csr, w_in),
                           "w_rec": dense(rec_csr, w_rec)}.items()}
    t_loss = _torch_batched(leaves["taum"], leaves["taus"], leaves["Vt"], leaves["Vr"],
                            leaves["El"], leaves["s0"], torch.tensor(x_in), leaves["w_in"],
                            leaves["w_rec"], torch.tensor(coef), dt, delay)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12) and loss > 0
    expect = {k: leaves[k].grad.numpy() for k in leaves}
    expect["w_in"] = expect["w_in"][in_csr.pre_indices(), in_csr.indices]
    expect["w_rec"] = expect["w_rec"][rec_csr.pre_indices(), rec_csr.indices]
    for name, value in expect.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-9, atol=1e-12, err_msg=name)
    assert np.any(grads["w_rec"] != 0) and np.any(grads["Vt"] != 0)
