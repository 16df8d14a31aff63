"""Hypothesis strategies for fuzzing snngen: valid models from a small grammar, and the
mistakes a user can make with equations, values, shapes and files.

Every strategy that can produce a *valid* input says so by returning it with a flag
(``(value, valid)``): the properties then require success for valid inputs (so the suite
also catches valid models that snngen rejects) and "success or an ``SnngenError``" for the
rest.
"""

from __future__ import annotations

import io
import math
import zipfile
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

# -- the grammar of valid neuron models ------------------------------------------------------
#
# Expressions are typed by dimension so that a generated model is valid with its units:
# "V" (volt) and "1" (dimensionless). States and parameters of each dimension:
VOLT_STATES = ("v", "ge", "w")
VOLT_PARAMS = ("El", "Vt", "Vr", "Vs")
TIME_PARAMS = ("taum", "taue", "tauw")
DIMLESS_PARAMS = ("a", "b")
PARAM_VALUES = {"El": "-49*mV", "Vt": "-50*mV", "Vr": "-60*mV", "Vs": "3*mV",
                "taum": "20*ms", "taue": "5*ms", "tauw": "100*ms", "a": 0.5, "b": 2.0}
UNARY_DIMLESS = ("exp", "tanh", "sin", "cos", "abs", "sign", "floor", "ceil", "sinh", "cosh")


def _dimless(states, depth: int) -> st.SearchStrategy[str]:
    """Dimensionless expressions: numbers, ratios of volts, functions of those."""
    leaves = st.one_of(
        st.sampled_from(DIMLESS_PARAMS),
        st.floats(-10, 10, allow_nan=False).map(lambda x: repr(round(x, 3))),
        st.integers(-5, 5).map(str),
        st.just("t/taum"), st.just("i/N"), st.just("pi"),
    )
    if depth <= 0:
        return leaves
    sub = st.deferred(lambda: _dimless(states, depth - 1))
    volt = st.deferred(lambda: _volt(states, depth - 1))
    return st.one_of(
        leaves,
        volt.map(lambda x: f"({x})/Vs"),
        st.tuples(st.sampled_from(UNARY_DIMLESS), sub).map(lambda p: f"{p[0]}({p[1]})"),
        st.tuples(sub, st.sampled_from("+-*"), sub).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        sub.map(lambda x: f"sqrt(abs({x}))"),
        sub.map(lambda x: f"log(1 + abs({x}))"),
        st.tuples(sub, sub).map(lambda p: f"min({p[0]}, {p[1]})"),
        st.tuples(sub, sub, sub).map(lambda p: f"clip({p[0]}, -1, 1) * ({p[1]}) + {p[2]}"),
    )


def _volt(states, depth: int) -> st.SearchStrategy[str]:
    """Expressions in volts: states, parameters, sums and scaled terms."""
    leaves = st.one_of(st.sampled_from(states + VOLT_PARAMS),
                       st.floats(-80, 80, allow_nan=False).map(lambda x: f"{x:.3g}*mV"))
    if depth <= 0:
        return leaves
    sub = st.deferred(lambda: _volt(states, depth - 1))
    dimless = st.deferred(lambda: _dimless(states, depth - 1))
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from("+-"), sub).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(dimless, sub).map(lambda p: f"({p[0]}) * {p[1]}"),
        sub.map(lambda x: f"-{x}"),
        sub.map(lambda x: f"abs({x})"),
        st.tuples(sub, sub).map(lambda p: f"max({p[0]}, {p[1]})"),
        st.tuples(_condition(states), sub, sub).map(
            lambda p: f"where({p[0]}, {p[1]}, {p[2]})"),
        sub.map(lambda x: f"Vs * exp(({x}) / Vs - 10)"),
    )


def _condition(states) -> st.SearchStrategy[str]:
    """Conditions on volts, optionally combined with and/or/not."""
    # never 'El > El': sympy folds it to False, and El is then unused (snngen says so)
    atom = st.tuples(st.sampled_from(states + VOLT_PARAMS), st.sampled_from(["<", ">", "<=", ">="]),
                     st.sampled_from(VOLT_PARAMS + ("0*mV",))).filter(
        lambda p: p[0] != p[2]).map(" ".join)
    return st.one_of(atom, st.tuples(atom, st.sampled_from(["and", "or"]), atom).map(
        lambda p: f"({p[0]}) {p[1]} ({p[2]})"), atom.map(lambda a: f"not ({a})"))


@st.composite
def valid_neuron_models(draw, max_depth: int = 2) -> dict:
    """A valid neuron model with units: ``dict(equations, threshold, reset, refractory,
    method, params)`` where ``params`` are quantity strings covering every parameter.

    States are volts, each ODE ``dx/dt = (volt expression) / tau : volt``, optionally with
    ``(unless refractory)``, a subexpression line, a declared ``(shared)`` parameter, blank
    lines and comments: everything the README says one can write.
    """
    n = draw(st.integers(1, len(VOLT_STATES)))
    states = VOLT_STATES[:n]
    lines = []
    isyn = draw(st.booleans())
    for x in states:
        rhs = draw(_volt(states, draw(st.integers(0, max_depth))))
        if isyn and x == states[0]:
            rhs = f"({rhs}) + Isyn"
        tau = draw(st.sampled_from(TIME_PARAMS))
        flag = draw(st.sampled_from(["", " (unless refractory)"]))
        unit = draw(st.sampled_from(["volt", "mV", "mvolt", "V"]))
        lines.append(f"d{x}/dt = ({rhs}) / {tau} : {unit}{flag}")
    if isyn:
        lines.append(f"Isyn = {draw(_volt(states, 1))} * gain : volt")
        lines.append("gain : 1 (shared)")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(
            ["", "   ", "# a comment", "    # indented comment"])))
    indent = draw(st.sampled_from(["", "    ", "\t"]))
    text = "\n".join(indent + ln for ln in lines)
    if draw(st.booleans()):
        text = "\n" + text + "\n"
    threshold = draw(st.one_of(st.none(), _condition(states)))
    reset = refractory = None
    if threshold is not None:
        reset = draw(st.one_of(st.none(), st.sampled_from([
            "v = Vr", "v = Vr; w += 1*mV" if "w" in states else "v = El", "v -= Vt - Vr"])))
        refractory = draw(st.one_of(st.none(), st.sampled_from(
            ["5*ms", "2 ms", "0*ms", "taum / 4", "5*msecond"])))
    # exact and exponential Euler may rightly refuse a nonlinear model: not drawn here
    method = draw(st.sampled_from(["auto", "euler", "rk2", "rk4"]))
    params = {}
    code = "\n".join(line.split("#")[0] for line in text.split("\n"))  # not in comments
    for name in (*VOLT_PARAMS, *TIME_PARAMS, *DIMLESS_PARAMS):
        if re_name(name).search(code + " " + (threshold or "") + " " + (reset or "")
                                + " " + (refractory or "")):
            params[name] = PARAM_VALUES[name]
    if "gain : 1" in text:
        params["gain"] = 1.0
    return dict(equations=text, threshold=threshold, reset=reset, refractory=refractory,
                method=method, params=params)


def re_name(name: str):
    import re
    return re.compile(rf"(?<![\w.]){re.escape(name)}(?![\w])")


# -- mutations: the mistakes made in equation text ------------------------------------------

#: Constants that are not finite real float64 numbers, or not numbers at all.
ODD_CONSTANTS = (
    "0/0", "1/0", "-1/0", "1e309", "-1e309", "10**1000", "10**-1000", "1e-400", "True",
    "False", "(v > 1)", "(-1)**0.5", "(-8)**(1/3)", "1j", "2j*v", "0**-1", "nan", "inf",
    "9**9**9", "2**2**2**2**2", "10.0**400", "(1e308*10)", "0.0/0.0", "None", "'a'", "...",
    "1_000", "0x1F", "0o17", "0b101", "1e-320", "-0.0", "2**-1074", "(1/3)**(10**6)",
    "pow(2, 1e6)", "exp(1000)", "log(0)", "sqrt(-1)", "abs(1/0)", "1/(1-1)", "pi**1e6",
)

#: Unicode and whitespace oddities, inserted as names or around tokens.
ODD_TEXT = (
    "ν", "τ_m", "ｖ", "v\u200b", "\u00a0", "\u202e", "😀", "e\u0301", "Ω", "µs", "μV",
    "\x00", "\r", "\t", "\f", "\\", "`", "$", "?", "@", "'", '"', "#", ";", ":",
)

#: Whole lines that are wrong in themselves.
BAD_LINES = (
    "dv/dt = : volt", "dv/dt : volt", "dv/dt = v", "dv/dx = -v / taum : volt",
    "d/dt = -v : volt", "dv/dt == -v / taum : volt", "dv/dt += 1 : volt",
    "dv/dt = -v / taum : volt : volt", "v = v : volt", "dt/dt = 1 : second",
    "dv/dt = -v / taum : volt (unless refractory", "dv/dt = -v / taum : volt ()",
    "dv/dt = -v / taum : volt (foo)", "dv/dt = -v / taum : volt (shared, event-driven)",
    "dv/dt = -v / taum : volt (unless_refractory)", "dv/dt = lambda x: x : volt",
    "dv/dt = v[0] : volt", "dv/dt = v.real : volt", "dv/dt = exp(x=v) : volt",
    "dv/dt = __import__('os') : volt", "dv/dt = (x := 1) : volt", "dv/dt = f'{v}' : volt",
    "dv/dt = [v] : volt", "dv/dt = {v} : volt", "dv/dt = v if v else 0 : volt",
    "dv/dt = *v : volt", "import os", "dv/dt = -v / taum : 1/0", "dv/dt = -v/taum : volt**v",
    "dv/dt = -v / taum : 2**1000*volt", "dv/dt = -v / taum : volt**0.5",
    "dv/dt = -v / taum : metre**(1/3)", "t : second", "dv/dt = exp() : volt",
    "dv/dt = exp(v, v) : volt", "dv/dt = clip(v) : volt", "dv/dt = where(v, v) : volt",
    "dv/dt = pow(v) : volt", "dv/dt = min() : volt", "dv/dt = exp : volt", "N = 3 : 1",
    "dv/dt = -v / taum : volt\ndv/dt = -v / taum : volt", "x = y : 1\ny = x : 1",
    "x = x : 1", "dv/dt = v < 1 < 2 : 1", "dv/dt = v == 1 : 1", "dv/dt = v != 1 : 1",
    "dv/dt = v and 1 : 1", "dv/dt = not v : 1", "dv/dt = ~v : 1", "dv/dt = v % 2 : 1",
    "dv/dt = v // 2 : 1", "dv/dt = v ^ 2 : 1", "dv/dt = v @ v : 1", "dv/dt = v << 1 : 1",
)

UNIT_TYPOS = ("vlot", "mv", "Volt", "mvolts", "msec", "mss", "sec", "hz", "ohms", "1/", "*",
              "volt/", "volt*", "kvolt/ms**", "volt second", "", " ", "1.0", "0", "-1", "volt+1",
              "volt - second", "volt**2**100", "(volt", "volt)", "V/s/s/s", "nA*Mohm",
              "µV", "uV", "μV")


@st.composite
def mutated_text(draw, text: str) -> str:
    """``text`` with one to three mistakes: a name replaced by an unknown or odd one, an odd
    constant, a unit typo, a bad line, unicode, a character inserted, deleted or swapped,
    or a truncation."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["name", "constant", "unit", "line", "unicode", "char",
                                     "truncate", "deep", "long", "flag"]))
        text = _mutate(draw, text, kind)
    return text


def _mutate(draw, text: str, kind: str) -> str:
    import re
    names = re.findall(r"[A-Za-z_]\w*", text) or ["v"]
    if kind == "name":
        name = draw(st.sampled_from(names))
        new = draw(st.sampled_from([name[:-1] or "x", name + name[-1], name.upper(),
                                    name + "_pre", "undefined", "xi", "rand", "np", "os",
                                    "lambda", "def", "None", "print", "int", "dt_", "__class__"]))
        return text.replace(name, new, 1)
    if kind == "constant":
        const = draw(st.sampled_from(ODD_CONSTANTS))
        name = draw(st.sampled_from(names))
        return re.sub(rf"\b{re.escape(name)}\b", f"({const})", text, count=1)
    if kind == "unit":
        return re.sub(r":\s*[^:(\n]*", f": {draw(st.sampled_from(UNIT_TYPOS))} ", text, count=1)
    if kind == "line":
        lines = text.split("\n")
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(BAD_LINES)))
        return "\n".join(lines)
    if kind == "unicode":
        pos = draw(st.integers(0, len(text)))
        return text[:pos] + draw(st.sampled_from(ODD_TEXT)) + text[pos:]
    if kind == "char":
        if not text:
            return draw(st.sampled_from(ODD_TEXT))
        pos = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete", "insert", "swap"]))
        if op == "delete":
            return text[:pos] + text[pos + 1:]
        if op == "insert":
            return text[:pos] + draw(st.sampled_from("()[]{}=:+-*/.,;<>!~%&|^ \n")) + text[pos:]
        return text[:pos] + text[pos + 1:pos + 2] + text[pos:pos + 1] + text[pos + 2:]
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if kind == "deep":
        depth = draw(st.sampled_from([30, 99, 100, 101, 200, 1000, 5000]))
        wrap = draw(st.sampled_from(["(", "exp(", "-(", "abs(", "sin("]))
        inner = draw(st.sampled_from(names))
        return re.sub(rf"\b{re.escape(inner)}\b", wrap * depth + inner + ")" * depth, text,
                      count=1)
    if kind == "long":
        terms = draw(st.sampled_from([100, 1000, 10000]))
        inner = draw(st.sampled_from(names))
        op = draw(st.sampled_from([" + ", " * ", " - ", " / "]))
        return re.sub(rf"\b{re.escape(inner)}\b", "(" + op.join([inner] * terms) + ")", text,
                      count=1)
    # flag
    flag = draw(st.sampled_from(["(unless refractory)", "(shared)", "(constant)",
                                 "(event-driven)", "(per-neuron)", "(foo)", "(UNLESS REFRACTORY)",
                                 "(unless refractory, unless refractory)", "(shared)(shared)",
                                 "(", ")", "(,)", "(unless refractory) # c"]))
    lines = text.split("\n")
    k = draw(st.integers(0, len(lines) - 1))
    lines[k] = lines[k] + " " + flag
    return "\n".join(lines)


@st.composite
def neuron_model_inputs(draw) -> tuple[dict, bool]:
    """``(kwargs of NeuronModel plus 'params', valid)``: a valid model, or one with mistakes
    in its equations, threshold, reset, refractory or method."""
    spec = draw(valid_neuron_models())
    if draw(st.integers(0, 3)) == 0:
        return spec, True
    target = draw(st.sampled_from(["equations", "equations", "equations", "threshold",
                                   "reset", "refractory", "method", "params"]))
    if target == "method":
        spec["method"] = draw(st.one_of(st.sampled_from(
            ["EXACT", "", "rk5", "exact ", "heun", "milstein", "exact; euler"]), odd_values()))
    elif target == "refractory":
        spec["threshold"] = spec["threshold"] or "v > Vt"
        spec["refractory"] = draw(st.one_of(odd_values(), st.sampled_from(
            ["-5*ms", "5*mV", "v > Vt", "5", "nan*ms", "inf*ms", "1e400*ms", "taum*taum",
             "5*ms; 1", "", "5 ms ms", "(1/0)*ms", "v"])))
    elif target == "params":
        spec["params"] = draw(odd_params(spec["params"]))
    elif target in ("threshold", "reset") and spec[target] is None:
        spec[target] = draw(st.sampled_from(
            ["v > Vt", "", " ", "v", "1", "v = Vt", "v > Vt > El", "v > 1*second",
             "v = Vr; v", "x = 1", "Vt = 0*mV", "v == Vt", "v > Vt;", ";", "v =", "v +=",
             "v *= 2", "v /= 0", "v = Vr\n\nv = El", "i = 0", "t = 0", "dt = 1"]))
    else:
        spec[target] = draw(mutated_text(spec[target] or "v > Vt"))
    return spec, False


# -- synapse models ---------------------------------------------------------------------------

VALID_SYNAPSES = (
    dict(equations="w : 1", on_pre="ge += w*mV"),
    dict(equations="w : volt", on_pre="v += w"),
    dict(equations="""
        w : 1
        dApre/dt = -Apre / taupre : 1 (event-driven)
        dApost/dt = -Apost / taupost : 1 (event-driven)
    """, on_pre="ge += w*mV; Apre += 0.01; w = clip(w + Apost, 0, 1)",
        on_post="Apost -= 0.01; w = clip(w + Apre, 0, 1)"),
    dict(equations="", on_pre="v_post += 1*mV"),
    dict(equations="w : 1\nd : second", on_pre="ge += w * mV"),
)


@st.composite
def synapse_model_inputs(draw) -> tuple[dict, bool]:
    """``(kwargs of SynapseModel, valid)``: one of the README's synapse forms, or one with a
    mutated equation, on_pre or on_post text (or an odd type in their place)."""
    spec = dict(draw(st.sampled_from(VALID_SYNAPSES)))
    if draw(st.integers(0, 3)) == 0:
        return spec, True
    target = draw(st.sampled_from(["equations", "on_pre", "on_post"]))
    if draw(st.integers(0, 5)) == 0:
        spec[target] = draw(odd_values())
    else:
        spec[target] = draw(mutated_text(spec.get(target) or "Apost += 1"))
    return spec, False


# -- odd values -------------------------------------------------------------------------------

ODD_FLOATS = (math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e308, -1e308, 5e-324, 1e-300,
              1e30, -1e-12, 2.0**63, 2.0**64)
ODD_INTS = (0, -1, -(2**31), 2**31, 2**32, 2**63, 2**64, -(2**64), 10**30, 10**400)
QUANTITY_STRINGS = (
    "20*ms", "20 ms", "-49*mV", "5*Hz", "1.62*mV", "0.5", "20*mV", "20*second", "abc", "",
    " ", "nan*ms", "inf*ms", "1e400*ms", "20*mss", "20ms", "5*ms*ms", "(1/0)*ms", "ms", "mV/ms",
    "20*ms + 1*mV", "20*ms + 1", "1e-400*ms", "10**400*ms", "-0*ms", "20*Ms", "20 * ms;",
    "import os", "__import__('os')", "20*ms if 1 else 2", "[20*ms]", "2**0.5*ms", "ms**0.5",
    "(-1)**0.5*ms", "1_000*ms", "20*m\u200bs", "２０*ms", "20*µs", "20*us", "20*nan",
    "20*ms**9999", "9**9**9*ms", "20e", "20e*ms", "20.*ms", ".5*ms", "+20*ms", "--20*ms",
)


def huge(value) -> bool:
    """True for a finite number so large that a count of it is work, not a mistake."""
    try:
        return isinstance(value, (int, float, np.integer, np.floating)) and \
            math.isfinite(float(value)) and abs(float(value)) > 1e6
    except OverflowError:
        return True


def odd_values() -> st.SearchStrategy:
    """Scalars a user might pass where a number is wanted: NaN, infinities, zero, negatives,
    huge and tiny numbers, huge ints, bools, None, complex numbers, quantity strings with
    wrong or unknown units, and objects of the wrong type."""
    return st.one_of(
        st.sampled_from(ODD_FLOATS),
        st.sampled_from(ODD_INTS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(2**70), 2**70),
        st.sampled_from(QUANTITY_STRINGS),
        st.sampled_from([True, False, None, 1j, complex(math.nan, 1), Fraction(1, 3), b"1",
                         bytearray(b"\x00"), object(), [], {}, (), [1.0], {"a": 1}, set(),
                         np.float32(np.nan), np.float16(1e4), np.int8(-1), np.uint64(2**63),
                         np.bool_(True), np.datetime64(1, "s"), np.array(1.0),
                         np.array([]), np.array([[1.0]]), np.array("1"), np.str_("1*ms"),
                         np.longdouble(1e300), slice(1), range(3), Ellipsis,
                         float, np.float64, math]),
        st.text(max_size=12),
    )


def odd_params(valid: dict) -> st.SearchStrategy[dict]:
    """``valid`` parameter values with one to three entries damaged: an odd value, a missing
    or extra (misspelt) name, a quantity with the wrong unit, an array of the wrong length."""
    @st.composite
    def damaged(draw):
        params = dict(valid)
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["value", "value", "missing", "extra", "array", "key"]))
            keys = sorted(params, key=repr) or ["x"]
            k = draw(st.sampled_from(keys))
            if op == "value":
                params[k] = draw(odd_values())
            elif op == "missing":
                params.pop(k, None)
            elif op == "extra":
                k = str(k)
                params[draw(st.sampled_from([k + "x", k[:-1] or "z", "tau", "V_t", "",
                                             "1a", "v", "t", "dt", "i"]))] = 1.0
            elif op == "array":
                params[k] = draw(odd_arrays())
            else:
                params[draw(st.sampled_from([1, None, ("a",), 1.5, b"tau"]))] = 1.0
        return params
    return damaged()


# -- odd shapes and dtypes ----------------------------------------------------------------

ODD_DTYPES = (np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_,
              np.complex128, object, "U3", "M8[s]")


@st.composite
def odd_arrays(draw, shape: tuple | None = None, elements=None) -> np.ndarray:
    """An array near ``shape`` (or of a random small shape): the right shape, one axis off by
    one, an axis dropped or added, a zero-length axis, transposed; of an odd dtype; holding
    odd values (NaN, inf, negatives, huge)."""
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    op = draw(st.sampled_from(["same", "same", "off", "drop", "add", "zero", "flip"]))
    shape = list(shape)
    if op == "off" and shape:
        k = draw(st.integers(0, len(shape) - 1))
        shape[k] = max(shape[k] + draw(st.sampled_from([-1, 1])), 0)
    elif op == "drop" and shape:
        shape.pop(draw(st.integers(0, len(shape) - 1)))
    elif op == "add":
        shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(1, 2)))
    elif op == "zero" and shape:
        shape[draw(st.integers(0, len(shape) - 1))] = 0
    elif op == "flip":
        shape = shape[::-1]
    dtype = draw(st.sampled_from(ODD_DTYPES))
    size = int(np.prod(shape)) if shape else 1
    if elements is None:
        elements = st.one_of(st.sampled_from(ODD_FLOATS), st.floats(-3, 3))
    values = draw(st.lists(elements, min_size=size, max_size=size))
    arr = np.array(values, dtype=np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        try:
            return arr.astype(dtype)
        except (ValueError, OverflowError, TypeError):
            return arr


def spike_arrays(shape: tuple, p: float = 0.3):
    """Valid 0/1 float spike arrays of ``shape`` (a raster), for inputs that must work."""
    n = int(np.prod(shape))
    return st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda bits: np.array(bits, np.float64).reshape(shape))


# -- damaged files -----------------------------------------------------------------------------

@st.composite
def damaged_files(draw, valid: bytes) -> tuple[bytes, str]:
    """``(bytes, how)``: a damaged copy of a valid file (a checkpoint ``.npz``): truncated,
    bytes flipped, garbage, empty, another format, or an archive with entries missing,
    renamed, of other shapes or dtypes, or holding pickled objects."""
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "empty", "text", "drop",
                                "rename", "reshape", "retype", "pickle", "nan", "extra"]))
    if how == "truncate":
        return valid[:draw(st.integers(0, max(len(valid) - 1, 0)))], how
    if how == "flip":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 8))):
            k = draw(st.integers(0, len(data) - 1))
            data[k] ^= draw(st.integers(1, 255))
        return bytes(data), how
    if how == "garbage":
        return draw(st.binary(min_size=1, max_size=2000)), how
    if how == "empty":
        return b"", how
    if how == "text":
        return draw(st.sampled_from([b"not a checkpoint", b"PK\x03\x04", b"\x93NUMPY",
                                     b'{"weights": []}', b"\x80\x04K\x01."])), how
    with np.load(io.BytesIO(valid)) as data:
        arrays = {k: data[k] for k in data.files}
    keys = sorted(arrays)
    k = draw(st.sampled_from(keys))
    if how == "drop":
        arrays.pop(k)
    elif how == "rename":
        arrays[k + "_x"] = arrays.pop(k)
    elif how == "reshape":
        arrays[k] = draw(odd_arrays(arrays[k].shape))
    elif how == "retype":
        arrays[k] = arrays[k].astype(draw(st.sampled_from(
            [np.float16, np.int8, np.complex64, np.bool_, "U5"])))
    elif how == "nan":
        a = np.array(arrays[k], dtype=np.float64)
        a.flat[:] = draw(st.sampled_from([math.nan, math.inf, -1.0, 1e300]))
        arrays[k] = a
    elif how == "pickle":
        arrays[k] = np.array([{"a": 1}, None], dtype=object)
    else:
        arrays[draw(st.sampled_from(["weight/w_zz", "param/q", "x", "adam_m/w_zz"]))] = \
            np.zeros(3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # np.savez's format, written by hand: no pickle
        for name, arr in arrays.items():
            out = io.BytesIO()
            np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=True)
            zf.writestr(name + ".npy", out.getvalue())
    return buf.getvalue(), how


# -- calls made inside the property -------------------------------------------------------

class Later:
    """A constructor call drawn by a strategy but made inside the property: constructors
    such as ``TimedArray``, ``Uniform`` or ``FixedProbability`` check their arguments, and
    those checks (their errors, their hangs) are part of what is tested."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __repr__(self) -> str:
        return f"{getattr(self.fn, '__name__', self.fn)}({', '.join(map(repr, self.args))})"


def later(fn, *strategies) -> st.SearchStrategy[Later]:
    """A strategy of ``Later(fn, *drawn arguments)``."""
    return st.tuples(*strategies).map(lambda args: Later(fn, *args))


def realise(value):
    """``value`` with every :class:`Later` in it (also inside dicts and lists) called."""
    if isinstance(value, Later):
        return value.fn(*(realise(a) for a in value.args))
    if isinstance(value, dict):
        return {k: realise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [realise(v) for v in value]
    return value
