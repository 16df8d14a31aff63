"""Text -> sympy: the equation language.

Equations, conditions and statements are parsed with Python's :mod:`ast` (never ``sympify``), so
every error can point at its column. Names become real ``sympy.Symbol``\\ s; unit names such as
``ms`` or ``mV`` become :data:`UNIT` symbols that :mod:`snngen.model` checks and then replaces by
their SI scale.

>>> eq = parse_equations("dv/dt = (El - v) / tau : volt (unless refractory)")[0]
>>> eq.kind, eq.name, eq.expr, eq.unit, eq.flags
('ode', 'v', (El - v)/tau, 'volt', ('unless refractory',))
>>> [(s.target, s.op, s.expr, s.col) for s in parse_statements("v = Vr; w += b")]
[('v', '=', Vr, 0), ('w', '+=', b, 8)]
"""

from __future__ import annotations

import ast
import math
import numbers
import re
from dataclasses import dataclass

import sympy as sp

from . import units
from .errors import EquationError, InvalidValueError, UnknownNameError, did_you_mean, shown
from .exprcheck import (
    MAX_DEPTH,
    POW_RANGE,
    as_number,
    checked_pow,
    constant_problem,
    is_boolean,
    leading_problem,
)
from .symbolic import ceiling, draws, floor, rand, randn, renumber, sign, trunc


def reserved_message(name: str) -> str:
    """Why a name starting with ``_`` is refused (as in Brian2): the generated code's own
    names (hoisted constants ``_k0``, propagators ``_P0_0``, inputs ``_in_x``, ...) start
    with one, and a model's name must never be mistaken for them."""
    return (f"'{name}': names starting with '_' are reserved for snngen's generated code; "
            f"rename it, e.g. '{name.lstrip('_') or 'x'}'")


# Functions of the equation language and how they become sympy.
_UNARY = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "abs": sp.Abs,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "sinh": sp.sinh, "cosh": sp.cosh,
    "sign": sign, "floor": floor, "ceil": ceiling, "int": trunc,
}


def _clip(x, lo, hi):
    return sp.Min(sp.Max(x, lo), hi)


def _where(cond, a, b):
    return sp.Piecewise((a, cond), (b, True))


_MULTI = {"clip": (3, _clip), "where": (3, _where), "min": (2, sp.Min), "max": (2, sp.Max),
          "pow": (2, sp.Pow)}
#: Random draws (Brian2's): allowed in thresholds, resets and synaptic statements.
RANDOM = {"rand": rand, "randn": randn}
FUNCTIONS = frozenset(_UNARY) | frozenset(_MULTI) | frozenset(RANDOM)
#: Names with a fixed meaning in every model.
SPECIAL_NAMES = frozenset({"t", "dt", "i", "N", "pi"})
_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
_BINOPS = frozenset(_ARITHMETIC) | {ast.Pow}
_CMPOPS = {ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan,
           ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan}


def symbol(name: str) -> sp.Symbol:
    """The one way snngen makes a symbol for a name (always real)."""
    return sp.Symbol(name, real=True)


class _ToSympy(ast.NodeVisitor):
    """Convert an ast expression into sympy, remembering where each name appeared.

    Sums, products and runs of signs are flattened without recursion, so a long sum is not a
    deep one; every other level counts against :data:`MAX_DEPTH`.
    """

    def __init__(self, line: str, offset: int, where: str | None):
        self.line, self.offset, self.where = line, offset, where
        self.names: dict[str, int] = {}
        self.depth = 0
        self.draws = 0  # rand()/randn() call sites so far

    def fail(self, node, message, cls=EquationError):
        col = self.offset + getattr(node, "col_offset", 0)
        end = self.offset + (getattr(node, "end_col_offset", None) or (col - self.offset + 1))
        raise cls(message, self.line, col, max(end - col, 1), self.where)

    def visit(self, node):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                self.fail(node, f"expression nested more than {MAX_DEPTH} levels deep; "
                                "split it with subexpressions ('name = expr : unit')")
            value = super().visit(node)
        finally:
            self.depth -= 1
        self.check_constant(node, value, constant_problem(value) or leading_problem(value))
        return value

    def check_constant(self, node, value, problem: str | None) -> None:
        if problem:
            col = self.offset + node.col_offset
            text = self.line[col:self.offset + node.end_col_offset]
            self.fail(node, f"'{text}' {problem}; every constant must be a finite real number")

    def number(self, node):
        """Visit an operand of arithmetic: conditions count as 0 or 1."""
        return as_number(self.visit(node))

    def condition(self, node):
        """Visit an operand of and/or/not, which must be a condition."""
        value = self.visit(node)
        if not is_boolean(value):
            self.fail(node, "and/or/not need conditions such as 'v > 1', not a number; "
                            "compare it, e.g. 'x != 0'")
        return value

    def generic_visit(self, node):
        self.fail(node, f"unsupported syntax '{type(node).__name__}' in an equation "
                        "(use arithmetic, comparisons, and/or/not and the functions "
                        f"{', '.join(sorted(FUNCTIONS))})")

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        if isinstance(node.value, bool):
            return sp.true if node.value else sp.false
        if isinstance(node.value, int):
            return sp.Integer(node.value)
        if isinstance(node.value, float):
            return sp.Float(node.value)
        return self.fail(node, f"unsupported constant {node.value!r}")

    def visit_Name(self, node):
        if node.id.startswith("_"):
            self.fail(node, reserved_message(node.id))
        self.names.setdefault(node.id, self.offset + node.col_offset)
        if node.id == "pi":
            return sp.pi
        if node.id in FUNCTIONS:
            self.fail(node, f"'{node.id}' is a function: call it, e.g. {node.id}(x)")
        return symbol(node.id)

    def visit_BinOp(self, node):
        op = type(node.op)
        if op not in _BINOPS:
            self.fail(node, f"unsupported operator '{op.__name__}'")
        if op is ast.Pow:
            value = checked_pow(self.number(node.left), self.number(node.right))
            if value is None:
                self.fail(node, POW_RANGE)
            return value
        # a + b - c + ... is a left-leaning chain in the ast: walk it in a loop
        group = (ast.Add, ast.Sub) if op in (ast.Add, ast.Sub) else (ast.Mult, ast.Div)
        chain, left = [], node
        while isinstance(left, ast.BinOp) and type(left.op) in group:
            chain.append(left)
            left = left.left
        # left to right, one binary operation at a time, as Python reads it: sympy folds
        # numbers differently in Mul(2, x + y) and Mul(2, x + y, z), and generated code must
        # not change with the way the parser walks the chain
        value = self.number(left)
        for step in reversed(chain):
            right = self.number(step.right)
            if type(step.op) is ast.Div and right.is_zero:
                self.check_constant(step, None, "divides by zero (not a finite number)")
            value = _ARITHMETIC[type(step.op)](value, right)
            # each step is a node of its own: 1/0*ms must not hide zoo inside zoo*ms
            self.check_constant(step, value, leading_problem(value))
        return value

    def visit_UnaryOp(self, node):
        negate, inner = False, node
        while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            negate ^= isinstance(inner.op, ast.USub)
            inner = inner.operand
        if inner is not node:
            value = self.number(inner)
            return -value if negate else value
        if isinstance(node.op, ast.Not):
            flip = False
            while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.Not):
                flip, inner = not flip, inner.operand
            value = self.condition(inner)
            return sp.Not(value) if flip else value
        return self.fail(node, "unsupported unary operator")

    def visit_BoolOp(self, node):
        values = [self.condition(v) for v in node.values]
        return sp.And(*values) if isinstance(node.op, ast.And) else sp.Or(*values)

    def visit_Compare(self, node):
        parts, left = [], self.number(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = self.number(comp)
            if isinstance(op, ast.Eq):
                parts.append(sp.Eq(left, right))
            elif isinstance(op, ast.NotEq):
                parts.append(sp.Ne(left, right))
            elif type(op) in _CMPOPS:
                parts.append(_CMPOPS[type(op)](left, right))
            else:
                self.fail(node, f"unsupported comparison '{type(op).__name__}'")
            left = right
        return parts[0] if len(parts) == 1 else sp.And(*parts)

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only plain function calls such as exp(x) are allowed")
        name = node.func.id
        if node.keywords:
            self.fail(node, f"{name}() takes no keyword arguments")
        if name in RANDOM:
            if node.args:
                self.fail(node, f"{name}() takes no arguments ({len(node.args)} given)")
            self.draws += 1
            return RANDOM[name](sp.Integer(self.draws - 1))
        if name in _UNARY:
            if len(node.args) != 1:
                self.fail(node, f"{name}() takes exactly 1 argument ({len(node.args)} given)")
            return _UNARY[name](self.number(node.args[0]))
        if name in _MULTI:
            nargs, fn = _MULTI[name]
            if len(node.args) != nargs:
                self.fail(node, f"{name}() takes exactly {nargs} arguments "
                                f"({len(node.args)} given)")
            if name == "where":
                return fn(self.condition(node.args[0]), *map(self.number, node.args[1:]))
            args = [self.number(a) for a in node.args]
            if name == "pow":
                value = checked_pow(*args)
                if value is None:
                    self.fail(node, POW_RANGE)
                return value
            return fn(*args)
        return self.fail(node.func, f"unknown function '{name}'."
                         + did_you_mean(name, FUNCTIONS), UnknownNameError)


def _require_text(text, where: str | None, what: str) -> None:
    """Refuse a value that is not a string where model text is expected (``None``, numbers,
    bytes, lists), naming the argument, before any string method touches it."""
    if not isinstance(text, str):
        raise InvalidValueError(f"{where + ': ' if where else ''}expected {what} in a string, "
                                f"got {type(text).__name__} {shown(text)}")


def parse_expression(text: str, *, line: str | None = None, offset: int = 0,
                     where: str | None = None) -> tuple[sp.Expr, dict[str, int]]:
    """Parse one expression; return it with ``{name: column}`` of every name it uses.

    ``line`` and ``offset`` locate ``text`` inside the user's original line for error carets.

    >>> parse_expression("exp(-t/tau) * clip(x, 0, 1)")[0]
    exp(-t/tau)*Min(1, Max(0, x))
    """
    _require_text(text, where, "an expression such as 'exp(-t/tau)'")
    line = text if line is None else line
    stripped = text.strip()
    offset += len(text) - len(text.lstrip())
    if not stripped:
        raise EquationError("empty expression", line, offset, 1, where)
    tree = _parse_python(stripped, "eval", line, offset, where)
    visitor = _ToSympy(line, offset, where)
    return visitor.visit(tree), visitor.names


def _parse_python(text: str, mode: str, line: str, offset: int, where: str | None):
    """``ast.parse``, with its syntax errors and its own depth limits as EquationErrors."""
    try:
        return ast.parse(text, mode=mode)
    except SyntaxError as err:
        col = offset + max((err.offset or 1) - 1, 0)
        what = "invalid syntax" if mode == "eval" else "invalid statement"
        raise EquationError(f"{what} ({err.msg})", line, col, 1, where) from None
    except (RecursionError, MemoryError):
        # Python's parser builds a 2,900-term sum as 2,900 nested nodes and gives up there
        raise EquationError("expression too long or too deeply nested for Python's parser "
                            "(at most about 2,900 terms in one sum or 200 nested parentheses); "
                            "split it with subexpressions ('name = expr : unit')",
                            line, offset, max(len(text), 1), where) from None


@dataclass(frozen=True)
class EquationLine:
    """One parsed line of a model: an ODE, a named subexpression or a parameter declaration."""

    kind: str  # "ode" | "subexpression" | "parameter"
    name: str
    expr: sp.Expr | None
    unit: str | None
    flags: tuple[str, ...]
    line: str
    names: tuple[tuple[str, int], ...] = ()  # (name, column) of names used in expr

    def column_of(self, name: str) -> int | None:
        return dict(self.names).get(name)


_ODE = re.compile(r"^\s*d\s*(?P<name>[A-Za-z_]\w*)\s*/\s*dt\s*=(?P<rhs>.*)$")
_SUB = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*=(?!=)(?P<rhs>.*)$")
_PAR = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*$")
_FLAGS = re.compile(r"\(\s*(?P<flags>[A-Za-z_][\w\s,-]*)\)\s*$")
KNOWN_FLAGS = frozenset({"unless refractory", "shared", "constant", "event-driven", "per-neuron",
                         "per-synapse", "clock-driven", "summed", "constant over dt"})


def _split_unit(body: str, line: str, start: int):
    """Split ``expr : unit (flags)`` at the last top-level colon."""
    depth, colon = 0, -1
    for k, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ":" and depth == 0:
            colon = k
    if colon < 0:
        return body, None, ()
    rest = body[colon + 1:]
    flags: tuple[str, ...] = ()
    match = _FLAGS.search(rest)
    if match:
        flags = tuple(" ".join(f.split()) for f in match.group("flags").split(","))
        for flag in flags:
            if flag not in KNOWN_FLAGS:
                col = start + colon + 1 + rest.index(flag.split()[0])
                raise EquationError(f"unknown flag '{flag}'." + did_you_mean(flag, KNOWN_FLAGS),
                                    line, col, len(flag))
        rest = rest[:match.start()]
    unit = rest.strip() or None
    if unit is None:
        raise EquationError("missing unit after ':' (use 1 for dimensionless)",
                            line, start + colon, 1)
    return body[:colon], unit, flags


def parse_equations(text: str, where: str | None = None) -> tuple[EquationLine, ...]:
    """Parse a multi-line model description into :class:`EquationLine` values.

    Lines are ``dx/dt = expr : unit (flags)``, ``name = expr : unit`` (a subexpression) or
    ``name : unit (flags)`` (a parameter). ``#`` starts a comment; the unit part is optional.
    """
    _require_text(text, where, "equations such as 'dv/dt = -v / tau : volt', one a line,")
    out: list[EquationLine] = []
    seen: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        ode = _ODE.match(line)
        if ode:
            kind, name, body_start = "ode", ode.group("name"), ode.start("rhs")
        else:
            sub = _SUB.match(line)
            if sub:
                kind, name, body_start = "subexpression", sub.group("name"), sub.start("rhs")
            else:
                head = line.split(":", 1)
                if len(head) != 2 or not _PAR.match(head[0]):
                    raise EquationError(
                        "cannot read this line: expected 'dx/dt = expr : unit', "
                        "'name = expr : unit' or 'name : unit'", line,
                        len(line) - len(line.lstrip()), len(line.strip()), where)
                kind, name, body_start = "parameter", head[0].strip(), len(head[0])
        if name in seen:
            raise EquationError(f"'{name}' is defined twice (first as {seen[name]})",
                                line, line.index(name), len(name), where)
        if name in SPECIAL_NAMES:
            raise EquationError(f"'{name}' is a reserved name ({', '.join(sorted(SPECIAL_NAMES))})",
                                line, line.index(name), len(name), where)
        if name.startswith("_"):
            raise EquationError(reserved_message(name), line, line.index(name), len(name), where)
        seen[name] = kind
        body = line[body_start:]
        if kind == "parameter":
            _, unit, flags = _split_unit(body, line, body_start)
            out.append(EquationLine(kind, name, None, unit, flags, line))
            continue
        rhs, unit, flags = _split_unit(body, line, body_start)
        expr, names = parse_expression(rhs, line=line, offset=body_start, where=where)
        out.append(EquationLine(kind, name, as_number(expr), unit, flags, line,
                                tuple(names.items())))
    return tuple(out)


@dataclass(frozen=True)
class Statement:
    """One assignment ``target op expr`` of a reset or synaptic event (op: =, +=, -=, *=, /=)."""

    target: str
    op: str
    expr: sp.Expr
    line: str
    col: int
    names: tuple[tuple[str, int], ...] = ()  # (name, column) of names used in expr

    def value(self, current: sp.Expr) -> sp.Expr:
        """The new value of the target given its ``current`` value."""
        return {"=": lambda: self.expr, "+=": lambda: current + self.expr,
                "-=": lambda: current - self.expr, "*=": lambda: current * self.expr,
                "/=": lambda: current / self.expr}[self.op]()


_AUG = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/="}


def parse_statements(text: str, where: str | None = None) -> tuple[Statement, ...]:
    """Parse statements separated by newlines or ``;``."""
    _require_text(text, where, "statements such as 'v = Vr' or 'ge += w'")
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        tree = _parse_python(line.strip(), "exec", line, indent, where)
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                target, op, value = node.targets[0].id, "=", node.value
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) \
                    and type(node.op) in _AUG:
                target, op, value = node.target.id, _AUG[type(node.op)], node.value
            else:
                raise EquationError("expected an assignment such as 'v = Vr' or 'ge += w'",
                                    line, indent + node.col_offset, 1, where)
            if target.startswith("_"):
                raise EquationError(reserved_message(target), line, indent + node.col_offset,
                                    len(target), where)
            if target in SPECIAL_NAMES:
                raise EquationError(f"'{target}' is a reserved name "
                                    f"({', '.join(sorted(SPECIAL_NAMES))}) and cannot be "
                                    "assigned; assign a state variable", line,
                                    indent + node.col_offset, len(target), where)
            visitor = _ToSympy(line, indent, where)
            # call sites of rand()/randn() are numbered through the whole block
            expr = renumber(visitor.number(value), sum(len(draws(st.expr)) for st in out))
            out.append(Statement(target, op, expr, line,
                                 indent + node.col_offset, tuple(visitor.names.items())))
    if not out:
        raise EquationError("no statement given", text, 0, 1, where)
    return tuple(out)


def parse_condition(text: str, where: str | None = None) -> tuple[sp.Basic, dict[str, int]]:
    """Parse a boolean condition such as ``v > v_th``; refuse anything that is not a condition."""
    _require_text(text, where, "a condition such as 'v > Vt'")
    expr, names = parse_expression(text, where=where)
    if not isinstance(expr, (sp.core.relational.Relational, sp.logic.boolalg.Boolean)):
        raise EquationError("a threshold must be a condition such as 'v > Vt'",
                            text, 0, len(text), where)
    return expr, names


def parse_refractory(value, where: str) -> tuple[sp.Expr, dict[str, int], str]:
    """A refractory period: ``(expression, {name: column}, the text it was read from)``.

    A number is seconds; a string is a quantity (``"5*ms"``, also ``"5 ms"`` as everywhere
    a quantity is read) or an expression of parameters (``"tref"``).

    >>> parse_refractory(0.005, "refractory")[0], parse_refractory("2 ms", "refractory")[0]
    (0.005*second, 2*ms)
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float64
            seconds = math.inf
        if not 0 <= seconds < math.inf:
            raise InvalidValueError(f"{where}: refractory={shown(value)} must be a finite "
                                    "duration >= 0 (seconds, or a string such as '5*ms')")
        return sp.Float(seconds) * symbol("second"), {}, repr(seconds)
    _require_text(value, where, "a duration in seconds (0.005), or a quantity or expression "
                  "such as '5*ms' or 'tref',")
    split = units.split_number(value)
    if split is None:
        return (*parse_expression(value, where=where), value)
    number, start, end = split
    unit, names = parse_expression(value[end:], line=value, offset=end, where=where)
    if not all(units.is_unit_name(n) for n in names):
        name = next(n for n in names if not units.is_unit_name(n))
        raise EquationError(f"a number followed by '{name}', which is not a unit: write "
                            f"'{number}*{value[end:].strip()}'", value, start, end - start,
                            where)
    return parse_expression(number, line=value, offset=start)[0] * unit, names, value
