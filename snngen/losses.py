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

    @property
    def needs_labels(self) -> bool:
        """Whether the loss scores the records against labels (a regulariser does not)."""
        return self.kind != "rate_regulariser"

    def __call__(self, records: dict, labels) -> tuple[float, dict]:
        """(loss, {ref: dL/d records}) from ``records[ref]`` (steps, batch, neurons)."""
        if self.kind == "rate_regulariser":  # no labels: the rates against their bounds
            value, grad = _numeric.rate_regulariser(records[self.ref],
                                                    self.ref.population.net.dt, **self.options)
            return value, {self.ref: grad}
        if self.kind != "cross_entropy":  # targets: finite numbers (class labels are checked
            labels = _targets(labels, self.kind)  # by cross_entropy itself)
        value, grad = getattr(_numeric, self.kind)(records[self.ref], labels, **self.options)
        return value, {self.ref: grad}

    def __add__(self, other) -> Sum:
        if not isinstance(other, Loss):
            return NotImplemented
        return Sum.of(self, other)

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


@dataclass(frozen=True)
class Sum(Loss):
    """The sum of losses, ``loss_a + loss_b``: at most one of them takes the labels (a
    cross-entropy, an mse, a spike count); the others are regularisers (:func:`rate`). It
    classifies (:meth:`predict`) as its labelled loss does.

    >>> import numpy as np
    >>> import snngen as sg
    >>> net = sg.Network(dt=1e-3)
    >>> lif = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    >>> h = net.population("h", lif, 3, params={"tau": 0.01})
    >>> o = net.population("o", sg.NeuronModel("dv/dt = -v / tau : 1"), 2,
    ...                    params={"tau": 0.01})
    >>> total = sg.losses.cross_entropy(o.v) + sg.losses.rate(h.spikes, high="20*Hz")
    >>> total
    cross_entropy(o.v, over='max') + rate_regulariser(h.spikes, low=0.0, high=20.0, \
strength=1.0)
    >>> y, z = np.zeros((4, 1, 2)), np.zeros((4, 1, 3))
    >>> z[:, 0, 0] = 1                     # neuron 0 fires at 1000 Hz, 980 Hz too many
    >>> value, grads = total({o.v: y, h.spikes: z}, np.array([0]))
    >>> round(float(value - np.log(2)), 1)  # 980**2 / 3 neurons beside the cross-entropy
    320133.3
    >>> sorted(map(repr, grads))
    ['h.spikes', 'o.v']
    """

    terms: tuple = ()

    @staticmethod
    def of(*losses: Loss) -> Sum:
        terms = tuple(t for loss in losses for t in (loss.terms if isinstance(loss, Sum)
                                                       else (loss,)))
        labelled = [t for t in terms if t.needs_labels]
        if len(labelled) > 1:
            raise InvalidValueError(f"a sum of losses takes one loss scored against labels, "
                                    f"got {len(labelled)} ({' + '.join(map(repr, labelled))}); "
                                    "add regularisers (sg.losses.rate) to one of them")
        main = labelled[0] if labelled else terms[0]
        return Sum(main.kind, main.ref, main.options, terms)

    @property
    def reads(self) -> tuple[StateRef, ...]:
        return tuple(dict.fromkeys(r for t in self.terms for r in t.reads))

    @property
    def _main(self) -> Loss:
        return next((t for t in self.terms if t.needs_labels), self.terms[0])

    @property
    def label_axis(self) -> int:
        return self._main.label_axis

    @property
    def needs_labels(self) -> bool:
        return any(t.needs_labels for t in self.terms)

    @property
    def per_step(self) -> bool:
        return False  # a rate is a mean over the whole run

    def __call__(self, records: dict, labels) -> tuple[float, dict]:
        total, grads = 0.0, {}
        for t in self.terms:
            value, grad = t(records, labels)
            total += value
            for ref, g in grad.items():
                grads[ref] = grads[ref] + g if ref in grads else g
        return total, grads

    def predict(self, records: dict) -> np.ndarray:
        return self._main.predict(records)

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.terms))


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


def rate(ref, low=0.0, high=np.inf, strength: float = 1.0) -> Loss:
    """A regulariser of firing rates: ``strength`` times the mean over trials and neurons of
    the squared distance (Hz) of each neuron's rate over the run from ``[low, high]`` (rates
    in Hz or quantity strings such as ``"20*Hz"``); ``ref`` is ``pop.spikes``. It takes no
    labels: add it to the loss that does (``cross_entropy(o.v) + rate(h.spikes, high=...)``).
    """
    from .runtime import validate
    ref = _ref(ref, "rate")
    if ref.name != "spikes":
        raise InvalidValueError(f"rate reads spikes: give {ref.population.name}.spikes")
    lo = float(validate.read_value(low, "rate: low", validate.HERTZ, shape=()))
    hi = np.inf if isinstance(high, float) and high == np.inf else float(
        validate.read_value(high, "rate: high", validate.HERTZ, shape=()))
    k = float(validate.read_value(strength, "rate: strength", shape=()))
    if not (0 <= lo <= hi and k >= 0):
        raise InvalidValueError(f"rate: need 0 <= low <= high and strength >= 0, got low "
                                f"{lo:g}, high {hi:g}, strength {k:g}")
    return Loss("rate_regulariser", ref, {"low": lo, "high": hi, "strength": k})


def spike_count(ref) -> Loss:
    """Mean squared difference of spike counts (batch, neurons) of ``ref`` (``pop.spikes``)
    to target counts given as the labels."""
    ref = _ref(ref, "spike_count")
    if ref.name != "spikes":
        raise InvalidValueError(f"spike_count reads spikes: give {ref.population.name}.spikes")
    return Loss("spike_count", ref)
