"""Values given to a network, checked once, where they enter.

Every number a user hands to snngen at run time (time steps, durations, seeds, sizes, rates,
parameter and initial values) passes through one function here before it is stored, so that a
mistake is refused with its name, where it was given and how to fix it, before any work or
allocation. Quantity strings (``"0.1*ms"``) are read here with :func:`snngen.units.parse_quantity`
and their unit checked against the one the value must have.

The checks of parameter values against a model (:func:`check_parameter_values`, in
:mod:`snngen.runtime.model_values`, re-exported here) are derived from the model's equations,
not from names: a parameter that divides must not be zero, a time that divides must be
positive, and a negative divisor that turns a decay into an exponential growth is refused.

>>> read_time("0.1*ms", "dt")
0.0001
>>> read_time("1*mV", "dt")
Traceback (most recent call last):
snngen.errors.InvalidValueError: dt: '1*mV' is in volt, but it must be a time (second), ...
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .. import units as u
from ..connectivity import MAX_NEURONS  # noqa: F401 - neuron indices are int32: sizes' limit
from ..errors import InvalidValueError, ShapeError, UnitError, shown

SECOND = u.parse_unit("second")[1]
HERTZ = u.parse_unit("Hz")[1]
MAX_SEED = 2**64 - 1  # the Philox key is 64 bits


def _unit_name(dim) -> str:
    return "dimensionless" if dim.is_dimensionless else str(dim)


_FLOAT_MAX = float(np.finfo(np.float64).max)  # a Python float: compared with ints exactly


def beyond_float(value) -> bool:
    """True for a real number (an int, a NumPy int, a Fraction) outside float64's range:
    ``float(10**400)`` overflows, so such a number cannot be a value of a network."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    if isinstance(value, numbers.Integral):
        return abs(int(value)) > _FLOAT_MAX
    try:
        float(value)
    except OverflowError:
        return True
    return False


def is_whole(value) -> bool:
    """True for an integral number usable as a count: ints, NumPy ints and whole reals such
    as ``1e6`` or ``Fraction(4, 2)``; not bools, NaN, infinities or non-numbers.

    >>> from fractions import Fraction
    >>> is_whole(8.0), is_whole(Fraction(1, 3)), is_whole(True), is_whole(float("inf"))
    (True, False, False, False)
    """
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    if not isinstance(value, numbers.Real):
        return False
    try:
        return float(value).is_integer()  # False for NaN and infinities
    except OverflowError:  # a Fraction beyond float64: a whole count is given as an int
        return False


def read_value(value, what: str, dimension=None, *, shape: tuple | None = (),
               kind: str = "a value", example: str = "") -> float | np.ndarray:
    """``value`` (a number, an array or a quantity string) in SI units, checked finite.

    Parameters
    ----------
    value : float, int, array or str
        Numbers and arrays are taken as SI; strings are read with their unit.
    what : str
        Names the value in error messages (``"population 'P': parameter 'Vt'"``).
    dimension : Dimension, optional
        The dimension a string's unit must have.
    shape : tuple or None
        ``()`` for a scalar only; None to accept a scalar or any array.
    kind, example : str
        Words for the message when the unit is wrong (``"a time"``, ``"'0.1*ms'"``).

    Raises
    ------
    InvalidValueError
        Wrong type, wrong unit, or a NaN or infinite entry (its index is named).
    UnitError
        A string that does not read as a quantity (with a caret under the problem).
    """
    if isinstance(value, bool):
        raise InvalidValueError(f"{what}: got {value!r}; give a number")
    if beyond_float(value):
        raise InvalidValueError(f"{what}: {shown(value)} is beyond the range of a float "
                                "(about 1.8e308); give a finite number")
    try:
        number, dim = u.parse_quantity(value, where=what)
    except UnitError:
        if isinstance(value, str):
            raise
        raise InvalidValueError(f"{what}: cannot read a number from {value!r} "
                                f"({type(value).__name__}); give a number, an array or a "
                                "quantity string such as '20*ms'") from None
    if dimension is not None and dim is not None and dim != dimension:
        hint = f", such as {example}" if example else ""
        raise InvalidValueError(f"{what}: {value!r} is in {_unit_name(dim)}, but it must be "
                                f"{kind} ({_unit_name(dimension)}){hint}")
    if shape == () and np.ndim(number) != 0:
        raise InvalidValueError(f"{what}: expected one number, got an array of shape "
                                f"{np.shape(number)}")
    check_finite(number, what)
    return number


def check_finite(values, what: str, unit: str = "neuron") -> None:
    """Refuse NaN or infinite entries, naming the first one's index."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        if not np.isfinite(arr):
            raise InvalidValueError(f"{what} is {float(arr)}; give a finite number")
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(k) for k in np.argwhere(bad)[0])
        at = first[0] if len(first) == 1 else first
        raise InvalidValueError(f"{what} is {arr[first]} for {unit} {at} ({int(bad.sum())} "
                                "non-finite value(s) in all); give finite numbers")


def read_dt(value, dtype: str) -> float:
    """The time step: a positive time that is a normal number in the network's precision
    (below that, float32 kernels would step by 0 and step counts overflow)."""
    dt = read_time(value, "dt", strict=True)
    tiny = float(np.finfo(dtype).tiny)
    if dt < tiny:
        raise InvalidValueError(f"dt = {dt:g} s is below the smallest normal {dtype} number "
                                f"({tiny:.3g}); give a time step such as '0.1*ms'")
    return dt


#: Step counters are int64 in the kernels; time is step * dt.
MAX_RUN_STEPS = 2**62


def read_steps(duration, dt: float, what: str = "run duration") -> int:
    """``duration`` (seconds or a time string, >= 0) as a whole number of steps of ``dt``,
    refused when the count is beyond what a step counter holds (:data:`MAX_RUN_STEPS`).

    >>> read_steps("1*ms", 1e-4)
    10
    """
    seconds = read_time(duration, what)
    steps = seconds / dt  # inf when it overflows
    if not steps <= MAX_RUN_STEPS:
        raise InvalidValueError(f"{what}: {seconds:g} s is {steps:.3g} steps of dt = {dt:g} s, "
                                f"more than a step counter holds (2**62); run a shorter time "
                                "or use a larger dt")
    return int(round(steps))


def read_time(value, what: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A duration in seconds (number or time string), finite and >= ``minimum`` (> if
    ``strict``)."""
    seconds = float(read_value(value, what, SECOND, kind="a time", example="'0.1*ms' or 1e-4"))
    if seconds < minimum or (strict and seconds == minimum):
        bound = "positive" if strict and minimum == 0 else \
            f"{'>' if strict else '>='} {minimum:g} s"
        raise InvalidValueError(f"{what} must be {bound}, got {value!r}")
    return seconds


def read_count(value, what: str, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number >= ``minimum`` (ints, NumPy ints and integral floats such as ``1e6``),
    and <= ``maximum`` where one is given (neuron counts: :data:`MAX_NEURONS`)."""
    if not is_whole(value) or value < minimum:
        raise InvalidValueError(f"{what} must be an integer >= {minimum}, got {shown(value)}")
    if maximum is not None and value > maximum:
        raise InvalidValueError(f"{what} must be at most {maximum}, got {shown(value)}")
    return int(value)



def read_flag(value, what: str, none: bool = False) -> None:
    """Refuse anything but True or False (or None where ``none``): a string such as
    ``"no"`` would read as true."""
    if not (isinstance(value, (bool, np.bool_)) or (none and value is None)):
        raise InvalidValueError(f"{what} must be True or False{' or None' if none else ''}, "
                                f"got {shown(value)}")


def read_seed(seed) -> int:
    """A seed: an integer in [0, 2**64) (the Philox key); NumPy integers are fine, floats
    and booleans are refused (1.5 would be truncated, True is surely a mistake)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= int(seed) <= MAX_SEED:
        raise InvalidValueError(f"seed must be an integer in [0, 2**64), got {seed!r}; "
                                "e.g. seed=1")
    return int(seed)


def read_rates(rates, what: str, n: int) -> np.ndarray:
    """Poisson rates in Hz (scalar or one per neuron; numbers or ``"5*Hz"``): finite and >= 0."""
    arr = np.asarray(read_value(rates, f"{what}: rates", HERTZ, shape=None, kind="a rate",
                                example="'5*Hz' or 5.0"), dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ShapeError(f"{what}: rates must be one number or one per neuron ({n}), got "
                         f"shape {arr.shape}")
    if np.any(arr < 0):
        first = int(np.flatnonzero(np.atleast_1d(arr) < 0)[0])
        raise InvalidValueError(f"{what}: rates must be >= 0 Hz, got {np.atleast_1d(arr)[first]}"
                                + (f" for neuron {first}" if arr.ndim else ""))
    return arr


MAX_DELAY_STEPS = 2**31 - 2  # ring buffer positions are int32


def read_delay_steps(delay, what: str, dt: float) -> np.ndarray:
    """Synaptic delays (seconds: one number, one per synapse, or time strings) as whole
    steps of ``dt``, rounded as Brian2 rounds them (:func:`delay_steps`): finite, >= 0, a
    non-empty 1-D array if an array, and at most :data:`MAX_DELAY_STEPS`.

    >>> int(read_delay_steps("1*ms", "delay", 1e-4))
    10
    """
    seconds = np.asarray(read_value(delay, what, SECOND, shape=None, kind="a time",
                                    example="'1*ms' or 1e-3"), dtype=np.float64)
    if seconds.ndim > 1 or seconds.size == 0:
        raise ShapeError(f"{what}: give one delay or a 1-D array of one per synapse, got shape "
                         f"{seconds.shape}")
    return delay_steps(seconds, what, dt)


def delay_steps(seconds: np.ndarray, what: str, dt: float) -> np.ndarray:
    """Finite delays in seconds as whole steps, checked >= 0 and within
    :data:`MAX_DELAY_STEPS` (also for delays given by an expression of i and j).

    Brian2's rule: ``int(delay / dt + 0.5)`` in float64, so half steps round up and a delay
    of 0 acts in the step of the spike (after the threshold, before the reset). The float
    division is kept as Brian2 does it: 0.15 ms at dt = 0.1 ms is 1.4999999999999998 steps,
    hence 1.

    >>> delay_steps(np.array([0.0, 0.25e-3, 0.15e-3, 0.35e-3]), "delay", 1e-4).tolist()
    [0, 3, 1, 4]
    """
    if np.any(seconds < 0):
        raise InvalidValueError(f"{what}: delays must be >= 0, got "
                                f"{seconds[seconds < 0].flat[0]:g} s")
    steps = np.floor(seconds / dt + 0.5)
    if np.any(steps > MAX_DELAY_STEPS):
        raise InvalidValueError(f"{what}: {np.max(seconds):g} s is {np.max(steps):.4g} steps of "
                                f"dt = {dt:g} s, more than the {MAX_DELAY_STEPS} a delay can "
                                "span; give a shorter delay")
    return steps.astype(np.int64)


def read_params(params, where: str, keep: tuple = ()) -> tuple[dict, dict]:
    """Parameter values given as ``params={name: value}``: None or a mapping with string keys,
    each value a number, an array or a quantity string (instances of ``keep``, such as a
    ``TimedArray``, are passed on as they are). Returns (values in SI units, dimensions:
    None for numbers and arrays).

    >>> read_params({"tau": "10*ms", "El": -0.07}, "population 'P'")
    ({'tau': 0.01, 'El': -0.07}, {'tau': Dimension('second'), 'El': None})
    >>> read_params({None: 1.0}, "population 'P'")
    Traceback (most recent call last):
    snngen.errors.InvalidValueError: population 'P': parameter names must be strings, got None \
(NoneType); e.g. params={'tau': '10*ms'}
    """
    if params is None:
        return {}, {}
    if not isinstance(params, Mapping):
        raise InvalidValueError(f"{where}: params must be a dict of parameter names to values, "
                                f"e.g. params={{'tau': '10*ms'}}, got {shown(params)} "
                                f"({type(params).__name__})")
    for key in params:
        if not isinstance(key, str):
            raise InvalidValueError(f"{where}: parameter names must be strings, got "
                                    f"{shown(key)} ({type(key).__name__}); e.g. "
                                    "params={'tau': '10*ms'}")
    values, dims = {}, {}
    for key, value in params.items():
        what = f"{where}: parameter '{key}'"
        if keep and isinstance(value, keep):
            values[key] = value
        elif isinstance(value, (bool, np.bool_)) or beyond_float(value):
            raise InvalidValueError(f"{what}: cannot use {shown(value)}; give a finite number, "
                                    "an array or a quantity string such as '20*ms'")
        else:
            values[key], dims[key] = u.parse_quantity(value, where=what)
    return values, dims


def per_neuron(values, what: str, n: int, batch: int | None = None) -> np.ndarray:
    """``values`` as float64, a scalar or one per neuron (or batch x neurons if ``batch``)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":  # object (10**400, mixed types), complex, str, bool
        raise InvalidValueError(f"{what}: cannot use {shown(values)} (dtype {arr.dtype}); give "
                                "real numbers (float64 range)")
    arr = arr.astype(np.float64)
    ok = arr.ndim == 0 or arr.shape == (n,) or (batch is not None and arr.shape == (batch, n))
    if not ok:
        also = f" or ({batch}, {n}) (batch x neurons)" if batch is not None else ""
        raise ShapeError(f"{what}: got shape {arr.shape}; give one number or one value per "
                         f"neuron, shape ({n},){also}")
    check_finite(arr, what)
    return arr


# the checks of values against a model live in their own module (re-exported here)
from .model_values import (  # noqa: E402, F401 - the public names of the checks against a model
    check_declared_unit,
    check_parameter_values,
    divisors,
    read_initial,
    state_dimension,
)
