"""Losses of a trained network, as values: what they read (a population's state or spikes)
and how they score it. :class:`snngen.train.BPTT` records what a loss reads after every step,
of shape (steps, batch, neurons), and gets the loss and its gradient from it.

>>> import numpy as np
>>> import snngen as sg
>>> net = sg.Network(dt=1e-3)
>>> o = net.population("o", sg.NeuronModel("dv/dt = -v / tau : 1"), 2, params={"tau": 0.01})
>>> loss = sg.losses.cross_entropy(o.v, over="max")
>>> loss
cross_entropy(o.v, over='max')
>>> y = np.zeros((3, 1, 2)); y[1, 0, 0] = 2.0
>>> value, grads = loss({o.v: y}, np.array([0]))
>>> round(value, 4), grads[o.v].shape
(0.1269, (3, 1, 2))
>>> loss.predict({o.v: y}).tolist()
[0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidValueError
from .runtime.network import StateRef
from .train import losses as _numeric


def _ref(ref, what: str) -> StateRef:
    if not isinstance(ref, StateRef):
        raise InvalidValueError(f"{what}: give what the loss reads as a population's state or "
                                f"spikes, e.g. o.v or o.spikes (o = net.population(...)), got "
                                f"{type(ref).__name__}")
    return ref


def _targets(values, kind: str) -> np.ndarray:
    """The targets of an ``mse`` or ``spike_count`` loss as a float64 array of finite
    numbers (their shape is checked against the records by the loss)."""
    try:
        arr = np.asarray(values)
        ok = arr.dtype.kind in "biuf"
        arr = arr.astype(np.float64) if ok else arr
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InvalidValueError(f"{kind}: targets must be an array of numbers, got "
                                f"{type(values).__name__} {str(values)[:40]!r}")
    if not np.all(np.isfinite(arr)):
        raise InvalidValueError(f"{kind}: targets must be finite (no NaN or infinity)")
    return arr


@dataclass(frozen=True)
class Loss:
    """A loss of the records of ``ref``: ``kind`` names the function of
    :mod:`snngen.train.losses` that scores them, ``options`` its keyword arguments."""

    kind: str
    ref: StateRef
    options: dict = field(default_factory=dict)

    @property
    def reads(self) -> tuple[StateRef, ...]:
        return (self.ref,)

    @property
    def label_axis(self) -> int:
        """The axis of the labels that runs over samples (mse targets are (steps, samples,
        neurons); class labels and target counts start with the samples)."""
        return 1 if self.kind == "mse" else 0

    def __call__(self, records: dict, labels) -> tuple[float, dict]:
        """(loss, {ref: dL/d records}) from ``records[ref]`` (steps, batch, neurons)."""
        if self.kind != "cross_entropy":  # targets: finite numbers (class labels are checked
            labels = _targets(labels, self.kind)  # by cross_entropy itself)
        value, grad = getattr(_numeric, self.kind)(records[self.ref], labels, **self.options)
        return value, {self.ref: grad}

    def predict(self, records: dict) -> np.ndarray:
        """The class of each trial (cross-entropy: the arg-max of the reduced readout)."""
        if self.kind != "cross_entropy":
            raise InvalidValueError(f"{self.kind} does not classify: predict needs a "
                                    "cross_entropy loss")
        y = np.asarray(records[self.ref], float)
        over = self.options.get("over", "max")
        if over == "each":  # the most likely class over all steps together
            shifted = y - y.max(axis=-1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            return logp.sum(axis=0).argmax(axis=-1)
        logits = y.max(axis=0) if over == "max" else y.mean(axis=0) if over == "mean" \
            else y[-1]
        return logits.argmax(axis=-1)

    @property
    def per_step(self) -> bool:
        """Whether the loss is a sum of per-step terms (what an online rule can follow)."""
        return self.kind == "mse" or self.options.get("over") in ("each", "last")

    def at_step(self, record, labels, t: int, steps: int) -> tuple[float, np.ndarray]:
        """(this step's term of the loss, its gradient) from ``record`` (batch, neurons), the
        state after step ``t`` of a run of ``steps``: the terms of all steps add up to the
        loss of the whole run (:attr:`per_step` losses only)."""
        record = np.asarray(record, float)
        if self.kind == "mse":
            diff = record - labels[t]
            scale = diff.size * steps
            return float((diff * diff).sum()) / scale, 2 * diff / scale
        over = self.options.get("over")
        if over == "last" and t != steps - 1:
            return 0.0, np.zeros_like(record)
        value, grad = _numeric.cross_entropy(record[None], labels, over="last")
        scale = steps if over == "each" else 1
        return value / scale, grad[0] / scale

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{self.kind}({self.ref!r}{opts})"


def cross_entropy(ref, over: str = "max") -> Loss:
    """Softmax cross-entropy of the readout ``ref`` (e.g. ``o.v``: one neuron per class)
    reduced over time by ``max``, ``mean`` or ``last``, or ``each``: the mean of every
    step's cross-entropy (a per-step loss, what online rules follow); labels are class
    indices."""
    if not isinstance(over, str) or over not in ("max", "mean", "last", "each"):
        raise InvalidValueError(f"cross_entropy: over must be 'max', 'mean', 'last' or 'each', "
                                f"not {over!r}")
    return Loss("cross_entropy", _ref(ref, "cross_entropy"), {"over": over})


def mse(ref) -> Loss:
    """Mean squared error of ``ref``'s records to targets of the same shape (steps, batch,
    neurons), given as the labels."""
    return Loss("mse", _ref(ref, "mse"))


def spike_count(ref) -> Loss:
    """Mean squared difference of spike counts (batch, neurons) of ``ref`` (``pop.spikes``)
    to target counts given as the labels."""
    ref = _ref(ref, "spike_count")
    if ref.name != "spikes":
        raise InvalidValueError(f"spike_count reads spikes: give {ref.population.name}.spikes")
    return Loss("spike_count", ref)
