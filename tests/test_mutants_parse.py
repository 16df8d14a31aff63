"""Direct tests of snngen.parse written from its mutation run (issue 18, item 7).

Each test pins one rule that a surviving mutant broke without any test noticing: the
meaning of ``*=`` and ``/=``, ``and``/``or``/``not`` in conditions, the arity of ``min`` and
``max``, the nesting limit across sibling terms, comments after statements, a line that is
neither an equation nor a parameter, and the columns that error messages point at.
"""

from __future__ import annotations

import pytest
import sympy as sp

from snngen.errors import EquationError
from snngen.parse import (
    MAX_DEPTH,
    parse_condition,
    parse_equations,
    parse_expression,
    parse_statements,
    symbol,
)

v, w = symbol("v"), symbol("w")


@pytest.mark.parametrize("text, value", [
    ("v *= 3", 3 * v), ("v /= 4", v / 4), ("v += 2", v + 2), ("v -= 5", v - 5), ("v = 7", 7),
])
def test_augmented_statements_mean_what_python_means(text, value):
    (stmt,) = parse_statements(text)
    assert sp.simplify(stmt.value(v) - value) == 0


def test_a_comment_after_a_statement_is_ignored():
    (stmt,) = parse_statements("v = 0  # back to rest")
    assert stmt.target == "v" and stmt.expr == 0


def test_multiplying_by_zero_is_not_a_division_by_zero():
    expr, _ = parse_expression("v * 0")
    assert expr == 0
    with pytest.raises(EquationError, match="divides by zero"):
        parse_expression("v / 0")


def test_and_or_and_double_not_in_conditions():
    both, _ = parse_condition("v > 1 and w > 2")
    either, _ = parse_condition("v > 1 or w > 2")
    assert both == sp.And(v > 1, w > 2)
    assert either == sp.Or(v > 1, w > 2)
    twice, _ = parse_condition("not not (v > 1)")
    assert twice == (v > 1)
    once, _ = parse_condition("not (v > 1)")
    assert once == sp.Not(v > 1)


@pytest.mark.parametrize("name", ["min", "max"])
def test_min_and_max_take_two_arguments(name):
    expr, _ = parse_expression(f"{name}(v, 1)")
    assert expr == (sp.Min if name == "min" else sp.Max)(v, 1)
    with pytest.raises(EquationError, match=name):
        parse_expression(f"{name}(v, 1, 2)")


def test_nesting_limit_is_not_loosened_by_sibling_terms():
    """The depth counter goes back down by exactly one per node left: ten terms before a
    deep call chain do not buy the chain ten more levels."""
    deep = "abs(" * (MAX_DEPTH + 1) + "v" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(EquationError, match="nested more than"):
        parse_expression("v + " * 10 + deep)
    ok = "abs(" * (MAX_DEPTH - 5) + "v" + ")" * (MAX_DEPTH - 5)
    parse_expression("v + " * 10 + ok)


def test_a_line_without_a_colon_is_not_a_parameter():
    with pytest.raises(EquationError, match="cannot read this line"):
        parse_equations("tau")
    (line,) = parse_equations("tau : second")
    assert line.kind == "parameter" and line.name == "tau"


def test_syntax_error_at_the_end_points_at_the_start_when_python_gives_no_column():
    """Python reports 'v +' with offset 0: the caret goes under the first character of the
    expression, never one column further."""
    with pytest.raises(EquationError) as err:
        parse_expression("v +", line="dv/dt = v + : 1", offset=8)
    assert err.value.col == 8


def test_a_threshold_that_is_not_a_condition_points_at_its_start():
    with pytest.raises(EquationError, match="must be a condition") as err:
        parse_condition("v + 1")
    assert err.value.col == 0
