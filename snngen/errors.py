"""Error classes of snngen.

Every user mistake raises a subclass of :class:`SnngenError`. Each class's docstring says when it
is raised; each message says *what* went wrong, *where* (equation line and column, population,
step) and *how to fix it*.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SnngenError(Exception):
    """Base class of every error snngen raises on purpose."""


class EquationError(SnngenError, ValueError):
    """An equation, condition or statement string is malformed.

    The message repeats the offending line with a caret under the bad column.
    """

    def __init__(self, message: str, line: str | None = None, col: int | None = None,
                 width: int = 1, where: str | None = None):
        self.line, self.col, self.where = line, col, where
        text = message
        if where:
            text = f"{where}: {text}"
        if line is not None:
            text += "\n" + format_caret(line, col, width)
        super().__init__(text)


class UnknownNameError(EquationError, NameError):
    """A name used in an equation is neither a variable, a parameter, a constant nor a function.

    The message suggests the closest known names ("did you mean ...?").
    """


class UnitError(EquationError):
    """Two sides of an equation or sum have inconsistent physical dimensions.

    The message names both sides and their dimensions.
    """


class MissingParameterError(SnngenError, KeyError):
    """A model uses a parameter for which no value was given.

    The message lists the missing names and where to give them.
    """

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class IntegrationError(SnngenError):
    """The requested integration method cannot be applied to these equations."""


class ConnectivityError(SnngenError, ValueError):
    """A connection rule, weight, delay or index array is invalid."""


class NetworkTooLargeError(SnngenError, MemoryError):
    """The network, or a run's monitor records, would not fit in memory; refused before any
    allocation (a network at build, monitors at each ``run``; a spike monitor that cannot grow
    stops the run with the spikes recorded so far kept).

    The message gives the estimate, the memory available and the biggest contributors.
    """


class NumericalError(SnngenError, FloatingPointError):
    """A state variable became NaN or infinite; the message names step, population, variable."""


class BackendUnsupported(SnngenError, NotImplementedError):  # noqa: N818 - DESIGN.md's name
    """The chosen backend cannot do what was asked; the message names the feature."""


class InvalidValueError(SnngenError, ValueError):
    """A value given to snngen is out of range, not finite, of the wrong type or of the wrong
    unit: a parameter, an initial state, a duration, a time step, a rate or a seed.

    The message names the value, where it was given and the range or unit it must have.
    """


class ShapeError(SnngenError, ValueError):
    """Data handed to a run (inputs, labels, targets, arrays of per-neuron or per-synapse
    values) have the wrong shape, dtype or length for the network they are given to.

    The message gives the shape received, the shape expected and where that size comes from.
    """


class CheckpointError(SnngenError):
    """A saved checkpoint cannot be read (truncated, not a checkpoint) or does not match the
    network it is loaded into (other sizes, names or models), or a checkpoint cannot be written;
    nothing is changed then (a failed save leaves any earlier file at that path intact)."""


class CacheError(SnngenError):
    """The kernel cache could not be read or written (permissions, disk full)."""


class CudaCompileError(SnngenError):
    """Generated CUDA C failed to compile (NVRTC, nvcc, or g++ for the host emulation).

    This is a bug in snngen, not in the user's model: the message names the compiler, the
    generated line, the kernel it belongs to and the compiler's message; ``errors`` holds
    ``(where, message, code, kernel)`` tuples (where: the template file and line, and the
    generated line) and ``log`` the full compiler output.
    """

    def __init__(self, compiler: str, errors: list, log: str):
        self.compiler, self.errors, self.log = compiler, errors, log
        parts = [f"{compiler} could not compile the generated CUDA source (a bug in snngen; "
                 "please report it with this message):"]
        for line, msg, code, kernel in errors[:5]:
            parts.append(f"  {line}: {msg}\n      {code}\n      in {kernel or '?'}")
        if not errors:
            parts.append(log.strip()[-2000:])
        super().__init__("\n".join(parts))


def shown(value, limit: int = 80) -> str:
    """``repr(value)`` for an error message: its first line, cut to ``limit`` characters. An
    int of over 4,300 digits has no repr in Python >= 3.11 (also inside a list): its size is
    given instead.

    >>> shown(10**400)
    '1000000000000000000000000000000000000000000000000000000000000000000000000000... (401 chars)'
    >>> shown(10**5000)
    'an integer of 16610 bits'
    """
    try:
        text = repr(value)
    except ValueError:  # the int -> str conversion limit (sys.set_int_max_str_digits)
        if isinstance(value, int):
            return f"an integer of {value.bit_length()} bits"
        return f"a {type(value).__name__} holding an integer of over 4300 digits"
    text = text.split("\n")[0]  # a model's repr runs over lines
    return text if len(text) <= limit else f"{text[:limit - 4]}... ({len(text)} chars)"


def format_caret(line: str, col: int | None, width: int = 1) -> str:
    """Return ``line`` with a caret marker under column ``col`` (0-based).

    >>> print(format_caret("dv/dt = -v/tau_m", 11, 5))
        dv/dt = -v/tau_m
                   ^^^^^
    """
    out = "    " + line
    if col is not None:
        out += "\n    " + " " * max(col, 0) + "^" * max(width, 1)
    return out


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a ' Did you mean ...?' hint for ``name`` among ``candidates`` (or '').

    >>> did_you_mean("tua", ["tau", "v", "El"])
    " Did you mean 'tau'?"

    It builds a hint inside an error message, so it never raises itself: a name that is not
    a string (a mistake refused by the caller) has no hint, and candidates that are not
    strings are skipped.

    >>> did_you_mean(None, ["tau"]), did_you_mean("tau", [1.5, None, "tua"])
    ('', " Did you mean 'tua'?")
    """
    if not isinstance(name, str):
        return ""
    known = sorted({c for c in candidates if isinstance(c, str)})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean '{close[0]}'?"
    return " Did you mean one of " + ", ".join(repr(c) for c in close) + "?"
