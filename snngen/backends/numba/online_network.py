"""Numba kernels of online learning on a network's graph: the model-independent half (the
model's Jacobians come from the generated ``jac_<population>`` kernels, see
:func:`snngen.derive.network.jacobian_bodies`). The rules and their maths:
:mod:`snngen.derive.online_network`.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, boundscheck=False, nogil=True)
def eligibility(z_hist, t, pre0, indptr, indices, post0, delays, slot, J, JX, JZ, eps, trace,  # noqa: N803
                A, bvec, sig, grad, hidden):  # noqa: N803
    """One step t of the eligibility of a projection's synapses (CSR rows: presynaptic).

    For every trial b and synapse s from presynaptic row r (neuron ``pre0 + r`` of
    ``z_hist`` (steps, B, n_pre): the spikes so far) to neuron i = ``post0 + indices[s]``::

        e      = JZ[b, i] . eps[b, s]                        (hidden only: dz_i/df_s)
        eps    = J[b, i] eps[b, s] + JX[b, i, :, slot] z_pre(t - delays[s])
        hidden:  trace[b, s] = A trace[b, s] + bvec e;  grad[s] += sig[b, i] . trace[b, s]
        readout: grad[s] += sig[b, i] . eps[b, s]
    """
    batch, k = eps.shape[0], eps.shape[2]
    g = trace.shape[2]
    rows = indptr.shape[0] - 1
    new = np.empty(k)
    carried = np.empty(g)
    for b in range(batch):
        for r in range(rows):
            for s in range(indptr[r], indptr[r + 1]):
                i = post0 + indices[s]
                due = t - delays[s]
                zp = z_hist[due, b, pre0 + r] if due >= 0 else 0.0
                e = 0.0
                if hidden:
                    for c in range(k):
                        e += JZ[b, i, c] * eps[b, s, c]
                for a in range(k):
                    acc = JX[b, i, a, slot] * zp
                    for c in range(k):
                        acc += J[b, i, a, c] * eps[b, s, c]
                    new[a] = acc
                acc = 0.0
                for a in range(k):
                    eps[b, s, a] = new[a]
                if hidden:
                    for q in range(g):
                        v = bvec[q] * e
                        for c in range(g):
                            v += A[q, c] * trace[b, s, c]
                        carried[q] = v
                    for q in range(g):
                        trace[b, s, q] = carried[q]
                        acc += sig[b, i, q] * carried[q]
                else:
                    for a in range(k):
                        acc += sig[b, i, a] * new[a]
                grad[s] += acc


@njit(cache=True, boundscheck=False, nogil=True)
def feedback(delta, pre0, indptr, indices, post0, fval, out):
    """The symmetric learning signal of a projection into the readout: for every trial b and
    presynaptic row r, ``out[b, pre0 + r] += sum over its synapses s of fval[s] *
    delta[b, post0 + indices[s]]`` (delta (B, n_out, k): the loss's gradient of the readout's
    states; out (B, n_pre, k))."""
    rows = indptr.shape[0] - 1
    k = delta.shape[2]
    for b in range(delta.shape[0]):
        for r in range(rows):
            for s in range(indptr[r], indptr[r + 1]):
                o = post0 + indices[s]
                for a in range(k):
                    out[b, pre0 + r, a] += fval[s] * delta[b, o, a]
