"""Numerical matrix exponentials for the exact integrator (stacks of small matrices).

Propagators are computed once per run, in float64, from the parameter values, so equal time
constants (``tau_m == tau_syn``) and other singular cases of the closed-form solution need no
special handling: the matrix exponential is always well defined.

>>> import numpy as np
>>> phi, psi = propagate(np.array([[-1.0 / 0.02]]), 1e-4)
>>> bool(np.isclose(phi[0, 0], np.exp(-1e-4 / 0.02), rtol=1e-15))
True
"""

from __future__ import annotations

import numpy as np

_TAYLOR_TERMS = 20  # with the norm scaled below 0.5 the truncation error is below 1e-22


def balance(m: np.ndarray, sweeps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``(D^-1 M D, d)`` with ``D = diag(d)`` of powers of two (exact) that bring the norms of
    each row and column together (Parlett and Reinsch 1969, LAPACK's gebal).

    In SI units a model mixes entries such as 1 and 1/tau**2 = 2.5e5: the norm then asks for
    many squarings, each doubling the rounding error, while the balanced matrix, with the
    same exponential up to ``D``, needs none.

    >>> b, d = balance(np.array([[0.0, 1.0], [-2.5e5, 0.0]]))
    >>> b.tolist(), d.tolist()
    ([[0.0, 512.0], [-488.28125, 0.0]], [0.001953125, 1.0])
    """
    m = np.array(m, dtype=np.float64)
    d = np.ones(m.shape[:-1])
    for _ in range(sweeps):
        for i in range(m.shape[-1]):
            size = np.abs(m)
            col = size[..., :, i].sum(axis=-1) - size[..., i, i]
            row = size[..., i, :].sum(axis=-1) - size[..., i, i]
            ok = (col > 0) & (row > 0) & np.isfinite(col) & np.isfinite(row)
            ratio = np.where(ok, row, 1.0) / np.where(ok, col, 1.0)
            f = np.exp2(np.clip(np.round(np.log2(ratio) / 2), -64, 64))  # no overflow
            m[..., :, i] *= f[..., None]
            m[..., i, :] /= f[..., None]
            d[..., i] *= f
    return m, d


def expm(m: np.ndarray) -> np.ndarray:
    """exp of every square matrix in a stack ``(..., k, k)``: balancing, scaling, Taylor,
    squaring."""
    m, d = balance(m)
    return _expm_balanced(m) * d[..., :, None] / d[..., None, :]


def _expm_balanced(m: np.ndarray) -> np.ndarray:
    norm = np.abs(m).sum(axis=-2).max(axis=-1) if m.size else np.zeros(m.shape[:-2])
    finite = np.isfinite(norm)
    norm = np.where(finite, norm, 0.0)
    squarings = np.maximum(0, np.ceil(np.log2(np.maximum(norm, 1e-300) / 0.5))).astype(int)
    s_max = int(squarings.max()) if squarings.size else 0
    scaled = m / (2.0 ** squarings)[..., None, None]
    eye = np.broadcast_to(np.eye(m.shape[-1]), m.shape)
    result, term = eye.copy(), eye.copy()
    for k in range(1, _TAYLOR_TERMS):
        term = term @ scaled / k
        result = result + term
    for level in range(s_max):
        square = result @ result
        result = np.where((squarings > level)[..., None, None], square, result)
    return np.where(finite[..., None, None], result, np.nan)


def propagate(a: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """For ``dx/dt = A x + b``: ``Phi = exp(A dt)`` and ``Psi`` with ``x(dt) = Phi x + Psi b``.

    Both come from one exponential of the augmented matrix ``[[A, I], [0, 0]] * dt``; ``Psi``
    is the integral of ``exp(A s)`` over ``[0, dt]`` and stays finite when ``A`` is singular.
    """
    a = np.asarray(a, dtype=np.float64)
    k = a.shape[-1]
    aug = np.zeros(a.shape[:-2] + (2 * k, 2 * k))
    aug[..., :k, :k] = a * dt
    aug[..., :k, k:] = np.eye(k) * dt
    e = expm(aug)
    return e[..., :k, :k], e[..., :k, k:]


def stack(rows, shape_hint=()) -> np.ndarray:
    """Build a ``(..., k, k)`` array from nested rows of scalars or equally long arrays."""
    entries = [np.asarray(x, dtype=np.float64) for row in rows for x in row]
    shape = np.broadcast_shapes(*(e.shape for e in entries), tuple(shape_hint))
    k = len(rows)
    out = np.empty(shape + (k, k))
    for r, row in enumerate(rows):
        for c, x in enumerate(row):
            out[..., r, c] = x
    return out
