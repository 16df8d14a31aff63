"""Optimisers on NumPy arrays (in place), gradient clipping and weight constraints.

>>> import numpy as np
>>> w = {"w": np.array([1.0, -2.0])}
>>> opt = Adam(lr=0.1)
>>> opt.step(w, {"w": np.array([0.5, -0.5])})
>>> w["w"]
array([ 0.9, -1.9])
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import InvalidValueError, SnngenError
from .checks import as_count, as_real


def _fusable(*arrays) -> bool:
    return all(type(a) is np.ndarray and a.dtype.kind == "f" and a.flags.c_contiguous
               for a in arrays)


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _adam(p, g, m, v, lr, b1, b2, eps, weight_decay, c1, c2, scale):
    """Adam's update of one flat array in place, in float64 arithmetic per element (the
    same steps as the array version below, without its full-size temporaries; elements are
    independent, so they are updated in parallel). The gradient is read times ``scale``
    (gradient clipping without a pass of its own over the gradients)."""
    for i in numba.prange(p.size):
        gi = float(g[i]) * scale
        mi = b1 * m[i] + (1 - b1) * gi
        vi = b2 * v[i] + (1 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        pi = float(p[i])
        if weight_decay:
            pi -= lr * weight_decay * pi
        p[i] = pi - lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


@numba.njit(cache=True, boundscheck=False, parallel=True)
def _sum_squares(g):
    total = 0.0
    for i in numba.prange(g.size):  # a parallel reduction
        total += float(g[i]) * float(g[i])
    return total


class Adam:
    """Adam (Kingma & Ba 2015), with optional decoupled weight decay (AdamW)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        lr = as_real(lr, "lr", "Adam", 0, open_low=True)
        if np.ndim(betas) != 1 or len(betas) != 2:
            raise InvalidValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        betas = tuple(as_real(b, f"betas[{i}]", "Adam", 0, 1, open_high=True)
                      for i, b in enumerate(betas))
        eps = as_real(eps, "eps", "Adam", 0, open_low=True)
        weight_decay = as_real(weight_decay, "weight_decay", "Adam", 0)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t, self.m, self.v = 0, {}, {}

    def step(self, params: dict, grads: dict, scale: float = 1.0) -> None:
        """One update of every ``params[name]`` (in place) from ``grads[name] * scale``."""
        self.t += 1
        b1, b2 = self.betas
        for name, g in grads.items():
            p = params[name]
            if p.shape != np.shape(g):
                raise SnngenError(f"Adam: gradient of '{name}' has shape {np.shape(g)}, "
                                  f"parameter {p.shape}")
            if name not in self.m:  # (not setdefault: that would allocate them every step)
                self.m[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
            m, v = self.m[name], self.v[name]
            if _fusable(p, g, m, v):  # one compiled pass, in place, no temporaries
                _adam(p.reshape(-1), np.asarray(g).reshape(-1), m.reshape(-1), v.reshape(-1),
                      self.lr, b1, b2, self.eps, self.weight_decay, 1 - b1 ** self.t,
                      1 - b2 ** self.t, float(scale))
                continue
            if scale != 1:
                g = g * scale
            m *= b1  # any array module (CuPy on the CUDA backends)
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * np.square(g)
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            if self.weight_decay:
                p -= self.lr * self.weight_decay * p
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self) -> dict:
        return {"t": self.t, "m": {k: v.copy() for k, v in self.m.items()},
                "v": {k: v.copy() for k, v in self.v.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.t = as_count(state["t"], "t (steps taken)", "Adam.load_state_dict", 0)
        self.m = {k: np.array(v) for k, v in state["m"].items()}
        self.v = {k: np.array(v) for k, v in state["v"].items()}


class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum."""

    def __init__(self, lr=1e-2, momentum=0.0, nesterov=False):
        lr = as_real(lr, "lr", "SGD", 0, open_low=True)
        momentum = as_real(momentum, "momentum", "SGD", 0, 1, open_high=True)
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buf: dict = {}

    def step(self, params: dict, grads: dict, scale: float = 1.0) -> None:
        """One update of every ``params[name]`` (in place) from ``grads[name] * scale``."""
        for name, g in grads.items():
            p = params[name]
            if scale != 1:
                g = g * scale
            if self.momentum:
                b = self.buf.get(name)
                b = np.array(g, dtype=p.dtype) if b is None else self.momentum * b + g
                self.buf[name] = b
                g = g + self.momentum * b if self.nesterov else b
            p -= self.lr * g


def global_norm(grads: dict) -> float:
    """The L2 norm of all gradients together.

    >>> global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])})
    5.0
    """
    return float(np.sqrt(sum(_sum_squares(g.reshape(-1)) if _fusable(g)
                             else float(np.sum(np.square(g))) for g in grads.values())))


def clip_scale(norm: float, max_norm: float) -> float:
    """The factor that brings a global gradient norm down to ``max_norm`` (1 when it is
    already there): pass it to an optimiser's ``step(..., scale=)`` to clip in the same
    pass as the update."""
    return max_norm / norm if norm > max_norm > 0 else 1.0


def clip_by_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients together (in place) so their global L2 norm is at most
    ``max_norm``; returns the norm before clipping."""
    max_norm = as_real(max_norm, "max_norm", "clip_by_norm", 0, open_low=True)
    total = global_norm(grads)
    scale = clip_scale(total, max_norm)
    if scale != 1.0:
        for g in grads.values():
            g *= scale
    return total


def constrain(w: np.ndarray, sign: np.ndarray | None = None, lo=None, hi=None) -> None:
    """In place: keep ``w`` within [lo, hi] and, where ``sign`` is +1/-1 (Dale's law, one
    sign per presynaptic neuron broadcast over rows), on that side of zero."""
    if lo is not None and hi is not None and not lo <= hi:
        raise InvalidValueError(f"constrain: need lo <= hi, got {lo} and {hi}")
    if sign is not None:
        sign = np.asarray(sign)
        np.copyto(w, np.where(sign > 0, np.maximum(w, 0), np.where(sign < 0,
                                                                    np.minimum(w, 0), w)))
    if lo is not None or hi is not None:
        np.clip(w, lo, hi, out=w)
