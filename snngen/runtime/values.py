"""Values a network description holds: distributions of initial and synaptic values
(:class:`Uniform`, :class:`Normal`), time-varying inputs (:class:`TimedArray`), the marks of
trained values (:class:`Trainable`) and references to a population's state (:class:`StateRef`).
Re-exported by :mod:`snngen.runtime.network`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidValueError, ShapeError
from ..model import Quantities
from . import validate


def _bounds(obj, names: tuple[str, str]) -> None:
    """Read a distribution's two numbers (floats or quantity strings of one unit), finite;
    the unit, if given, is kept as ``obj.dimension`` to be checked against the state's."""
    what = type(obj).__name__
    dims = set()
    for name in names:
        value = validate.read_value(getattr(obj, name), f"{what}: {name}")
        if isinstance(getattr(obj, name), str):
            dims.add(Quantities.parse({name: getattr(obj, name)}).dims[name])
        object.__setattr__(obj, name, float(value))
    known = dims
    if len(known) > 1:
        raise InvalidValueError(f"{what}: {names[0]} and {names[1]} have different units")
    object.__setattr__(obj, "dimension", known.pop() if known else None)


@dataclass(frozen=True)
class Uniform:
    """Values drawn uniformly from [low, high) (seeded by the network's seed); numbers (SI)
    or quantity strings such as ``Uniform("-60*mV", "-50*mV")``."""

    low: float
    high: float

    def __post_init__(self):
        _bounds(self, ("low", "high"))
        if self.low > self.high:
            raise InvalidValueError(f"Uniform: low ({self.low:g}) must not exceed high "
                                    f"({self.high:g})")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)


@dataclass(frozen=True)
class Normal:
    """Values drawn from a normal distribution."""

    mean: float
    std: float

    def __post_init__(self):
        _bounds(self, ("mean", "std"))
        if self.std < 0:
            raise InvalidValueError(f"Normal: std must be >= 0, got {self.std:g}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.normal(self.mean, self.std, size)


@dataclass(frozen=True)
class TimedArray:
    """A time-varying input: ``values[k]`` (shape (K,) or (K, n)) holds during [k*dt, (k+1)*dt).

    After the last entry the last value holds. ``dt`` may be a time string (``"1*ms"``).
    """

    values: np.ndarray
    dt: float

    def __post_init__(self):
        try:
            if np.iscomplexobj(self.values):  # float64 would drop the imaginary part
                raise TypeError
            v = np.asarray(self.values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise InvalidValueError("TimedArray values must be real numbers, got "
                                    f"{validate.shown(self.values)}") from None
        if v.ndim not in (1, 2) or v.shape[0] == 0:
            raise ShapeError(f"TimedArray values must have shape (K,) or (K, n) with K >= 1, "
                             f"got {v.shape}")
        validate.check_finite(v, "TimedArray values", "entry")
        dt = validate.read_time(self.dt, "TimedArray dt", strict=True)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "dt", dt)


@dataclass(frozen=True)
class Trainable:
    """Marks a value as trained by :class:`snngen.train.BPTT`: a neuron parameter
    (``params={"tau": sg.Trainable(0.02)}``; ``per_neuron=True`` trains one value per neuron,
    otherwise one shared value), an initial state (``init={"v": sg.Trainable(0.0)}``, the
    same in every trial) or a synaptic variable (``w=sg.Trainable(sg.Normal(0, 0.1))``: one
    value per synapse). Simulation uses the value as if it were not marked.

    >>> Trainable(0.02, per_neuron=True)
    Trainable(value=0.02, per_neuron=True)
    """

    value: object
    per_neuron: bool = False

    def __post_init__(self):
        if isinstance(self.value, Trainable):
            raise InvalidValueError("Trainable(Trainable(...)): mark a value once")
        validate.read_flag(self.per_neuron, "Trainable: per_neuron")


def _unwrap_trainable(values, where: str) -> tuple[dict, dict]:
    """``values`` without their :class:`Trainable` marks, and {name: per_neuron} of the
    marked ones."""
    if values is None or not hasattr(values, "items"):
        return values, {}
    plain, marked = {}, {}
    for k, v in values.items():
        if isinstance(v, Trainable):
            plain[k], marked[k] = v.value, bool(v.per_neuron)
        else:
            plain[k] = v
    return plain, marked


@dataclass(frozen=True)
class StateRef:
    """A state variable (or the spikes, ``name == "spikes"``) of a population, as losses
    name it: ``o.v`` for state ``v`` of population ``o``."""

    population: object
    name: str

    def __repr__(self) -> str:
        return f"{self.population.name}.{self.name}"
