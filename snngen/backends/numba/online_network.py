"""Numba kernels of online learning on a network's graph: the model-independent half (the
model's Jacobians come from the generated ``jac_<population>`` kernels, see
:func:`snngen.derive.network.jacobian_bodies`). The rules and their maths:
:mod:`snngen.derive.online_network`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Layout: the trial b is the last, contiguous axis of every array the kernels read per
# neuron or synapse (eps[s, a, b], J[i, a, c, b], sig[i, q, b]...), so that the innermost
# loops run over trials with unit stride (SIMD). Rows (presynaptic neurons) are shared
# between threads: every synapse belongs to one row, so no two threads write one value.


@njit(cache=True, boundscheck=False, nogil=True, inline="always", fastmath=True)
def _spikes(z_hist, due, col, out):
    """out[b] = z_hist[due, b, col] (0 before the run)."""
    for b in range(out.shape[0]):
        out[b] = z_hist[due, b, col] if due >= 0 else 0.0


@njit(cache=True, boundscheck=False, nogil=True, inline="always", fastmath=True)
def _signal(trace, s, A, bvec, e, sig, i):  # noqa: N803
    """trace[s] = A trace[s] + bvec e (per trial); returns sum over trials of
    sig[i] . trace[s]."""
    g, batch = trace.shape[1], trace.shape[2]
    out = 0.0
    if g == 1:
        a00, b0 = A[0, 0], bvec[0]
        for b in range(batch):
            v = a00 * trace[s, 0, b] + b0 * e[b]
            trace[s, 0, b] = v
            out += sig[i, 0, b] * v
        return out
    carried = np.empty((g, batch))
    for q in range(g):
        for b in range(batch):
            carried[q, b] = bvec[q] * e[b]
        for c in range(g):
            for b in range(batch):
                carried[q, b] += A[q, c] * trace[s, c, b]
    for q in range(g):
        for b in range(batch):
            trace[s, q, b] = carried[q, b]
            out += sig[i, q, b] * carried[q, b]
    return out


@njit(cache=True, boundscheck=False, nogil=True, inline="always", fastmath=True)
def _meet(JZ, vec, row, new, e, trace, s, A, bvec, sig, i, hidden, ebuf, t, lag):  # noqa: N803
    """What synapse s adds to its gradient this step: a hidden synapse's trace ``e = JZ[i] .
    vec[row]`` (its eligibility vector before the step) carried by the filter against the
    signal; a readout synapse's new eligibility vector ``new`` against the signal. With a
    delay ``lag`` into the readout, the filter takes the trace of ``lag`` steps ago (ring
    ``ebuf[s, t % lag]``)."""
    k, batch = new.shape[0], new.shape[1]
    if hidden:
        e[:] = 0.0
        for c in range(k):
            for b in range(batch):
                e[b] += JZ[i, c, b] * vec[row, c, b]
        if lag > 0:
            slot = t % lag
            for b in range(batch):
                old = ebuf[s, slot, b]
                ebuf[s, slot, b] = e[b]
                e[b] = old
        return _signal(trace, s, A, bvec, e, sig, i)
    acc = 0.0
    for a in range(k):
        for b in range(batch):
            acc += sig[i, a, b] * new[a, b]
    return acc


@njit(cache=True, boundscheck=False, nogil=True, parallel=True, fastmath=True)
def eligibility(z_hist, t, pre0, indptr, indices, post0, delays, slot, J, JX, JZ, eps, trace,  # noqa: N803
                A, bvec, sig, grad, hidden, ebuf, lag):  # noqa: N803
    """One step t of the eligibility of a projection's synapses (CSR rows: presynaptic),
    each synapse with its own eligibility vector ``eps[s, :, b]``.

    For every synapse s from presynaptic row r (neuron ``pre0 + r`` of ``z_hist`` (steps,
    B, n_pre): the spikes so far) to neuron i = ``post0 + indices[s]``, per trial::

        e      = JZ[i] . eps[s]                              (hidden only: dz_i/df_s)
        eps[s] = J[i] eps[s] + JX[i, :, slot] z_pre(t - delays[s])
        hidden:  trace[s] = A trace[s] + bvec e;  grad[s] += sig[i] . trace[s]
        readout: grad[s] += sig[i] . eps[s]

    (hidden, with a delay ``lag`` into the readout: e of ``lag`` steps ago, see _meet).
    """
    k, batch = eps.shape[1], eps.shape[2]
    rows = indptr.shape[0] - 1
    for r in prange(rows):
        new = np.empty((k, batch))
        zp = np.empty(batch)
        e = np.zeros(batch)
        for s in range(indptr[r], indptr[r + 1]):
            i = post0 + indices[s]
            _spikes(z_hist, t - delays[s], pre0 + r, zp)
            for a in range(k):
                for b in range(batch):
                    new[a, b] = JX[i, a, slot, b] * zp[b]
                for c in range(k):
                    for b in range(batch):
                        new[a, b] += J[i, a, c, b] * eps[s, c, b]
            grad[s] += _meet(JZ, eps, s, new, e, trace, s, A, bvec, sig, i, hidden, ebuf, t,
                             lag)
            for a in range(k):
                for b in range(batch):
                    eps[s, a, b] = new[a, b]


@njit(cache=True, boundscheck=False, nogil=True, parallel=True, fastmath=True)
def eligibility_pre(z_hist, t, pre0, indptr, indices, post0, delay, slot, J0, JX0, JZ, pre,  # noqa: N803
                    trace, A, bvec, sig, grad, hidden, ebuf, lag):  # noqa: N803
    """:func:`eligibility` where every synapse of a row has the same eligibility vector:
    the postsynaptic Jacobians are one constant pair (J0, JX0) and the projection has one
    delay, so the vector is a presynaptic trace ``pre[r, :, b]``. Per synapse only the
    hidden trace's filter is kept."""
    k, batch = pre.shape[1], pre.shape[2]
    rows = indptr.shape[0] - 1
    for r in prange(rows):
        new = np.empty((k, batch))
        zp = np.empty(batch)
        e = np.zeros(batch)
        _spikes(z_hist, t - delay, pre0 + r, zp)
        for a in range(k):
            for b in range(batch):
                new[a, b] = JX0[a, slot] * zp[b]
            for c in range(k):
                for b in range(batch):
                    new[a, b] += J0[a, c] * pre[r, c, b]
        for s in range(indptr[r], indptr[r + 1]):
            i = post0 + indices[s]
            grad[s] += _meet(JZ, pre, r, new, e, trace, s, A, bvec, sig, i, hidden, ebuf, t,
                             lag)
        for a in range(k):
            for b in range(batch):
                pre[r, a, b] = new[a, b]


@njit(cache=True, boundscheck=False, nogil=True)
def feedback(delta, pre0, indptr, indices, post0, fval, out):
    """The symmetric learning signal of a projection into the readout: for every presynaptic
    row r, ``out[pre0 + r] += sum over its synapses s of fval[s] * delta[post0 +
    indices[s]]`` (delta (n_out, k, B): the loss's gradient of the readout's states; out
    (n_pre, k, B))."""
    rows = indptr.shape[0] - 1
    k, batch = delta.shape[1], delta.shape[2]
    for r in range(rows):
        for s in range(indptr[r], indptr[r + 1]):
            o = post0 + indices[s]
            for a in range(k):
                for b in range(batch):
                    out[pre0 + r, a, b] += fval[s] * delta[o, a, b]


@njit(cache=True, boundscheck=False, nogil=True, parallel=True, fastmath=True)
def outer(indptr, indices, post0, pre, post, grad):
    """grad[s] += sum over trials b of post[post0 + indices[s], b] * pre[r, b] for every
    synapse s of row r: the gradient of a projection whose eligibility is a product of a
    postsynaptic and a presynaptic trace (ES-D-RTRL)."""
    rows = indptr.shape[0] - 1
    batch = pre.shape[1]
    for r in prange(rows):
        for s in range(indptr[r], indptr[r + 1]):
            i = post0 + indices[s]
            acc = 0.0
            for b in range(batch):
                acc += post[i, b] * pre[r, b]
            grad[s] += acc


class OnlineKernels:
    """These kernels behind the interface of the CUDA ones
    (:class:`snngen.backends.cuda.online_network.OnlineKernels`): what the driver calls."""

    xp = np
    eligibility = staticmethod(eligibility)
    eligibility_pre = staticmethod(eligibility_pre)
    feedback = staticmethod(feedback)
    outer = staticmethod(outer)

    @staticmethod
    def check(k: int, g: int, where: str) -> None:
        """Nothing to refuse: the Numba kernels hold any number of states."""
