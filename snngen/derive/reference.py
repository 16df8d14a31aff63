"""A NumPy reference executor for BPTT through a LearningModel (small networks, float64).

It runs one population driven by input spikes (``W_in``) and its own spikes (``W_rec``, one
step of delay, as in the compiled kernels) into one input target, then runs the derived
backward step in reverse time. It is the yardstick the compiled backward kernels will be
checked against, and it checks the derivation itself against finite differences.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from ..integrate import DT, REFRACTORY, timestep
from ..linalg import expm, propagate, stack
from .step import LearningModel


def _np_exprel(x):
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 1e-6
    safe = np.where(small, 1.0, x)
    return np.where(small, 1.0 + x * (0.5 + x / 6.0), np.expm1(safe) / safe)


def _modules(lm: LearningModel, cutoff: float = 0.0):
    """NumPy meanings of H (the step) and H' (the surrogate, zero below ``cutoff``)."""
    from .surrogate import spike_function, surrogate_function
    g = sp.Symbol("g", real=True)
    formula = sp.lambdify(g, surrogate_function(lm.surrogate).expression(g), "numpy")

    def derivative(x):
        value = np.broadcast_to(np.asarray(formula(x), np.float64), np.shape(x))
        return np.where(value < cutoff, 0.0, value) if cutoff > 0 else value
    table = {spike_function(lm.surrogate).__name__:
             lambda x: (np.asarray(x) > 0).astype(np.float64),
             surrogate_function(lm.surrogate).__name__: derivative, "exprel": _np_exprel}
    return [table, "numpy"]


class _Compiled:
    """Vectorised callables for the step and its Jacobians."""

    def __init__(self, lm: LearningModel, cutoff: float = 0.0):
        self.lm, self.cutoff = lm, cutoff
        self.args = list(lm.states + lm.inputs + lm.params + lm.propagators) + [REFRACTORY,
                                                                                 DT]
        mods = _modules(lm, cutoff)
        self.next = sp.lambdify(self.args, list(lm.next), modules=mods)
        self.spike = sp.lambdify(self.args, lm.spike, modules=mods)
        self.jac = {(of, wrt): sp.lambdify(self.args, lm.jacobian(of, wrt).tolist(),
                                           modules=mods)
                    for of in ("next", "spike")
                    for wrt in ("states", "inputs", "params", "propagators")}

    def matrix(self, key, values, n):
        rows = self.jac[key](*values)
        return np.stack([np.stack([np.broadcast_to(np.asarray(e, float), (n,)) for e in row],
                                  axis=-1) if row else np.zeros((n, 0)) for row in rows], axis=1)


def propagator_values(lm: LearningModel, params: dict, dt: float, n: int) -> dict:
    """Numeric values of the exact integrator's entries (per neuron)."""
    out = {}
    for prop in lm.discrete.propagators:
        a = _matrix_of(prop.a, params, n)
        phi, psi = propagate(a, dt)
        for (i, j), s in prop.phi:
            out[s] = phi[..., i, j]
        for (i, j), s in prop.psi:
            out[s] = psi[..., i, j]
    return out


@functools.lru_cache(maxsize=256)
def _matrix_function(matrix: sp.ImmutableMatrix):
    names = sorted(matrix.free_symbols, key=lambda s: s.name)
    return names, sp.lambdify(names, matrix.tolist(), modules="numpy")


def _matrix_of(matrix, params, n):
    names, f = _matrix_function(sp.ImmutableMatrix(matrix))
    rows = f(*(params[s.name] for s in names))
    return stack(rows, (n,))


def propagator_derivative(prop, params: dict, dt: float, n: int, theta: str):
    """d(Phi)/d(theta) and d(Psi)/d(theta): Frechet derivative of the augmented exponential."""
    k = prop.a.shape[0]
    a = _matrix_of(prop.a, params, n)
    da = _matrix_of(prop.a.diff(sp.Symbol(theta, real=True)), params, n)
    aug = np.zeros((n, 2 * k, 2 * k))
    aug[:, :k, :k] = a * dt
    aug[:, :k, k:] = np.eye(k) * dt
    direction = np.zeros_like(aug)
    direction[:, :k, :k] = da * dt
    big = np.zeros((n, 4 * k, 4 * k))
    big[:, :2 * k, :2 * k] = aug
    big[:, 2 * k:, 2 * k:] = aug
    big[:, :2 * k, 2 * k:] = direction
    d = expm(big)[:, :2 * k, 2 * k:]
    return d[:, :k, :k], d[:, :k, k:]


_COMPILED: dict = {}


def _compiled(lm: LearningModel, cutoff: float = 0.0) -> _Compiled:
    hit = _COMPILED.get((id(lm), cutoff))
    if hit is None or hit.lm is not lm:
        hit = _COMPILED[(id(lm), cutoff)] = _Compiled(lm, cutoff)
    return hit


def chain_propagators(lm: LearningModel, params: dict, dt: float, n: int, grads: dict,
                      gprop: dict, wanted=None) -> None:
    """Add to ``grads[theta]`` what flows through the exact integrator's numeric entries:
    sum over entries of dL/d(entry) * d(entry)/d(theta) (Frechet derivatives); only for the
    parameters in ``wanted`` when given."""
    for prop in lm.discrete.propagators:
        for theta in sorted({s.name for s in prop.a.free_symbols}):
            if wanted is not None and theta not in wanted:
                continue
            dphi, dpsi = propagator_derivative(prop, params, dt, n, theta)
            total = np.zeros(n)
            for (i, j), s in prop.phi:
                total += gprop.get(s, 0.0) * dphi[:, i, j]
            for (i, j), s in prop.psi:
                total += gprop.get(s, 0.0) * dpsi[:, i, j]
            grads[theta] = grads.get(theta, np.zeros(n)) + total


def refractory_steps(lm: LearningModel, params: dict, dt: float, n: int) -> np.ndarray:
    """Per-neuron refractory period in steps minus one (-1: none), as the kernels use it:
    Brian2's ``timestep(r) = int((r + 1e-3 dt) / dt)`` steps, as the simulation kernels."""
    if lm.discrete.refractory is None:
        return np.full(n, -1, np.int64)
    names = sorted(lm.discrete.refractory.free_symbols, key=lambda x: x.name)
    env = {**params, DT.name: dt}
    secs = sp.lambdify(names, lm.discrete.refractory)(*(env[x.name] for x in names))
    return np.broadcast_to(np.maximum(timestep(secs, dt) - 1, 0), (n,)).copy()


def bptt(lm: LearningModel, params: dict, s0: np.ndarray, x_in: np.ndarray,
         w_in: np.ndarray, w_rec: np.ndarray | None, dt: float, loss_grad,
         forward_only: bool = False, cutoff: float = 0.0, delay: int = 1):
    """Forward and backward pass; returns (loss, gradients).

    ``params`` maps parameter names to per-neuron arrays; ``s0`` is (n, k); ``x_in`` (T,
    n_in) input spikes; ``loss_grad(t, s, z)`` returns ``(loss_t, dL/ds_t, dL/dz_t)``.
    Gradients: ``w_in``, ``w_rec``, each parameter (per neuron), ``s0``; with
    ``forward_only`` the gradients are None. ``cutoff`` > 0 treats surrogate values below it
    as exactly zero (the sparse backward pass of Perez-Nieves & Goodman 2021). Recurrent
    spikes arrive ``delay`` (>= 1) steps after they are emitted.
    """
    n, k = s0.shape
    steps = x_in.shape[0]
    comp = _compiled(lm, cutoff)
    props = propagator_values(lm, params, dt, n)
    pvals = [params[p.name] for p in lm.params] + [props[p] for p in lm.propagators]
    ref_steps = refractory_steps(lm, params, dt, n)
    last = np.full(n, -10**9)
    s = s0.astype(np.float64).copy()
    zs = []  # spikes of every step (the delayed recurrent input reads them)
    tape, loss = [], 0.0
    for t in range(steps):
        z_prev = zs[t - delay] if t >= delay else np.zeros(n)
        x = x_in[t] @ w_in + (z_prev @ w_rec if w_rec is not None else 0.0)
        refr = (t - last) <= ref_steps
        values = [*s.T, x, *pvals, refr, dt]
        z = np.broadcast_to(np.asarray(comp.spike(*values), float), (n,)).copy()
        s_next = np.stack([np.broadcast_to(np.asarray(e, float), (n,))
                           for e in comp.next(*values)], axis=1)
        tape.append((values, z_prev))
        last = np.where(z > 0.5, t, last)
        s = s_next
        zs.append(z)
        lt, _, _ = loss_grad(t, s, z)
        loss += lt
    if forward_only:
        return loss, None
    grads = {"w_in": np.zeros_like(w_in), "s0": None,
             **{p.name: np.zeros(n) for p in lm.params}}
    gprop = {p: np.zeros(n) for p in lm.propagators}
    if w_rec is not None:
        grads["w_rec"] = np.zeros_like(w_rec)
    a_s = np.zeros((n, k))
    pending = np.zeros((steps + delay, n))  # adjoint of z_t sent back from step t + delay
    states = [None] * steps
    s = s0.astype(np.float64)
    for t in range(steps):  # states after each step, for loss gradients
        values = tape[t][0]
        s = np.stack([np.broadcast_to(np.asarray(e, float), (n,))
                      for e in comp.next(*values)], axis=1)
        states[t] = (s, np.broadcast_to(np.asarray(comp.spike(*values), float), (n,)))
    for t in reversed(range(steps)):
        values, z_prev = tape[t]
        _, dl_ds, dl_dz = loss_grad(t, *states[t])
        a_st = a_s + dl_ds
        a_zt = dl_dz + pending[t]
        m = {key: comp.matrix(key, values, n) for key in comp.jac}
        a_s = np.einsum("ni,nij->nj", a_st, m["next", "states"]) \
            + a_zt[:, None] * m["spike", "states"][:, 0, :]
        a_x = (np.einsum("ni,nij->nj", a_st, m["next", "inputs"])
               + a_zt[:, None] * m["spike", "inputs"][:, 0, :])[:, 0]
        a_p = np.einsum("ni,nij->nj", a_st, m["next", "params"]) \
            + a_zt[:, None] * m["spike", "params"][:, 0, :]
        a_q = np.einsum("ni,nij->nj", a_st, m["next", "propagators"]) \
            + a_zt[:, None] * m["spike", "propagators"][:, 0, :]
        for j, p in enumerate(lm.params):
            grads[p.name] += a_p[:, j]
        for j, p in enumerate(lm.propagators):
            gprop[p] += a_q[:, j]
        grads["w_in"] += np.outer(x_in[t], a_x)
        if w_rec is not None:
            grads["w_rec"] += np.outer(z_prev, a_x)
            if t >= delay:
                pending[t - delay] = w_rec @ a_x
    grads["s0"] = a_s
    chain_propagators(lm, params, dt, n, grads, gprop)
    return loss, grads
