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


def _torch_loss(taum, taus, vt, vr, el, s0, x_in, w_in, w_rec, coef, dt):
    a = torch.stack([torch.stack([-1 / taum, 1 / taum]),
                     torch.stack([torch.zeros_like(taum), -1 / taus])]).permute(2, 0, 1)
    k = 2
    aug = torch.zeros(a.shape[0], 2 * k, 2 * k, dtype=torch.float64)
    aug[:, :k, :k] = a * dt
    aug[:, :k, k:] = torch.eye(k, dtype=torch.float64) * dt
    e = torch.linalg.matrix_exp(aug)
    phi, psi = e[:, :k, :k], e[:, :k, k:]
    b = torch.stack([el / taum, torch.zeros_like(el)], dim=1)
    offset = torch.einsum("nij,nj->ni", psi, b)
    s, z_prev, loss = s0, torch.zeros(s0.shape[0], dtype=torch.float64), 0.0
    for t in range(x_in.shape[0]):
        x = x_in[t] @ w_in + z_prev @ w_rec
        s_in = torch.stack([s[:, 0], s[:, 1] + x], dim=1)
        u = torch.einsum("nij,nj->ni", phi, s_in) + offset
        z = FastSigmoidSpike.apply(u[:, 0] - vt)
        v = u[:, 0] + z * (vr - u[:, 0])
        s = torch.stack([v, u[:, 1]], dim=1)
        loss = loss + 0.5 * torch.sum(coef * s[:, 0] ** 2) + 0.3 * torch.sum(z)
        z_prev = z
    return loss


def test_hard_spike_gradients_match_torch_autodiff():
    model = sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", name="lif")
    lm = derive(discretise(model), inputs=["I"], surrogate="fast_sigmoid")
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
                         leaves["w_rec"], torch.tensor(coef), dt)
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    assert x_in.sum() > 0 and loss > 0
    spikes_seen = False
    for name, leaf in leaves.items():
        np.testing.assert_allclose(grads[name], leaf.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        spikes_seen |= name == "Vt" and np.any(leaf.grad.numpy() != 0)
    assert spikes_seen  # the threshold gradient flows only through the surrogate
