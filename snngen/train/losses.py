"""Losses of readout traces and spikes, each returning (loss, gradient), batch-averaged.

Readout traces have shape (T, B, C): time, batch, classes (leaky-integrator readouts).

>>> import numpy as np
>>> y = np.zeros((3, 1, 2)); y[1, 0, 0] = 2.0
>>> loss, grad = cross_entropy(y, np.array([0]), over="max")
>>> round(loss, 4), grad.shape
(0.1269, (3, 1, 2))
"""

from __future__ import annotations

import numpy as np

from ..errors import SnngenError
from .checks import as_real, check_labels


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(traces: np.ndarray, labels: np.ndarray, over: str = "max"):
    """Softmax cross-entropy of the readout reduced over time by ``max``, ``mean`` or
    ``last``; the gradient flows to the arg-max step (max), every step (mean) or the last.
    ``each``: the mean over steps of every step's cross-entropy (what online rules train:
    a sum of per-step losses)."""
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 3:
        raise SnngenError(f"cross_entropy: readout traces must be (time, batch, classes), got "
                          f"shape {traces.shape}")
    steps, batch, classes = traces.shape
    if not isinstance(over, str) or over not in ("max", "mean", "last", "each"):
        raise SnngenError(f"cross_entropy: over must be 'max', 'mean', 'last' or 'each', not "
                          f"{over!r}")
    labels = check_labels(labels, batch, classes, "cross_entropy")
    if over == "each":
        p = _softmax(traces)
        rows = np.arange(batch)
        loss = float(-np.mean(np.log(p[:, rows, labels] + 1e-300)))
        p[:, rows, labels] -= 1
        return loss, p / (batch * steps)
    grad = np.zeros_like(traces)
    if over == "max":
        idx = traces.argmax(axis=0)
        logits = np.take_along_axis(traces, idx[None], axis=0)[0]
    elif over == "mean":
        logits = traces.mean(axis=0)
    elif over == "last":
        logits = traces[-1]
    else:
        raise SnngenError(f"cross_entropy: over must be 'max', 'mean' or 'last', not {over!r}")
    p = _softmax(logits)
    rows = np.arange(batch)
    loss = float(-np.mean(np.log(p[rows, labels] + 1e-300)))
    d_logits = p.copy()
    d_logits[rows, labels] -= 1
    d_logits /= batch
    if over == "max":
        np.put_along_axis(grad, idx[None], d_logits[None], axis=0)
    elif over == "mean":
        grad[:] = d_logits / steps
    else:
        grad[-1] = d_logits
    return loss, grad


def mse(traces: np.ndarray, target: np.ndarray):
    """Mean squared error to a target trace of the same shape."""
    traces, target = np.asarray(traces, float), np.asarray(target, float)
    if traces.shape != target.shape:
        raise SnngenError(f"mse: traces {traces.shape} and target {target.shape} differ")
    diff = traces - target
    return float(np.mean(diff ** 2)), 2 * diff / diff.size


def rate_regulariser(spikes: np.ndarray, dt: float, low: float = 0.0, high: float = np.inf,
                     strength: float = 1.0):
    """Quadratic penalty on per-neuron rates (Hz) outside [low, high]; spikes (T, B, N)."""
    dt = as_real(dt, "dt", "rate_regulariser", 0, open_low=True)
    if not low <= high:
        raise SnngenError(f"rate_regulariser: need low <= high, got {low} and {high}")
    spikes = np.asarray(spikes, float)
    steps = spikes.shape[0]
    rate = spikes.sum(axis=0) / (steps * dt)
    below, above = np.minimum(rate - low, 0), np.maximum(rate - high, 0)
    excess = below + above
    loss = float(strength * np.mean(excess ** 2))
    d_rate = strength * 2 * excess / excess.size
    return loss, np.broadcast_to(d_rate / (steps * dt), spikes.shape).copy()


def spike_count(spikes: np.ndarray, target: np.ndarray):
    """Mean squared difference between spike counts (B, N) and ``target`` counts."""
    spikes = np.asarray(spikes, float)
    counts = spikes.sum(axis=0)
    target = np.asarray(target, float)
    if target.shape != counts.shape:
        raise SnngenError(f"spike_count: target counts must have shape {counts.shape}, got "
                          f"{target.shape}")
    diff = counts - target
    return float(np.mean(diff ** 2)), np.broadcast_to(2 * diff / diff.size, spikes.shape).copy()


def van_rossum(spikes: np.ndarray, target: np.ndarray, tau: float, dt: float):
    """Van Rossum distance: squared difference of exponentially filtered spike trains
    (T, B, N), ``sum((f - f_target)**2) * dt / tau``, and its gradient with respect to the
    spikes (a reverse-time filter of the difference)."""
    spikes, target = np.asarray(spikes, float), np.asarray(target, float)
    if spikes.shape != target.shape:
        raise SnngenError(f"van_rossum: spikes {spikes.shape} and target {target.shape} differ")
    tau = as_real(tau, "tau", "van_rossum", 0, open_low=True)
    dt = as_real(dt, "dt", "van_rossum", 0, open_low=True)
    decay = np.exp(-dt / tau)
    diff = np.zeros_like(spikes)
    acc = np.zeros(spikes.shape[1:])
    for t in range(spikes.shape[0]):
        acc = decay * acc + spikes[t] - target[t]
        diff[t] = acc
    scale = dt / tau
    grad = np.zeros_like(spikes)
    back = np.zeros(spikes.shape[1:])
    for t in range(spikes.shape[0] - 1, -1, -1):
        back = decay * back + 2 * scale * diff[t]
        grad[t] = back
    return float(scale * np.sum(diff ** 2)), grad
