"""LearningModel -> printed kernel bodies: the derived step, its adjoint and its Jacobians as
(name, code) lines for any backend's printer (what every learning template is made of).

The model's symbols are renamed to kernel locals (:func:`kernel_renaming`), common
subexpressions are shared (:func:`cse_lines`); nothing here knows a backend.
"""

from __future__ import annotations

import sympy as sp

from ..integrate import DT
from ..parse import symbol
from .step import LearningModel


def kernel_renaming(lm: LearningModel) -> dict:
    """The model's symbols -> kernel locals (``s_<state>``, ``p_<param>``, ``q<entry>``; the
    model's time ``t`` is the step number times ``dt``; ``N`` the population size ``n``)."""
    ren = {s: sp.Symbol(f"s_{s.name}", real=True) for s in lm.states}
    ren.update({p: sp.Symbol(f"p_{p.name}", real=True) for p in lm.params})
    ren.update({q: sp.Symbol(f"q{q.name}", real=True) for q in lm.propagators})
    ren.update({symbol("t"): sp.Symbol("t", real=True) * DT, symbol("N"):
                sp.Symbol("n", real=True)})
    return ren


def cse_lines(ren: dict, exprs, names, printer, prefix: str) -> list:
    """(name, code) lines computing ``exprs`` into ``names``, common subexpressions first."""
    exprs = [sp.sympify(e).xreplace(ren) for e in exprs]
    temps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix, real=True))
    return [(s.name, printer.doprint(e)) for s, e in temps] + \
        [(n, printer.doprint(e)) for n, e in zip(names, reduced)]


def adjoint_step(lm: LearningModel, wrts) -> list:
    """The adjoint step: for each ``wrt`` in turn (states, inputs, params, propagators),
    the vector-Jacobian products ``sum_r _a<r> d next_r / d wrt + _az d z / d wrt``, in the
    model's symbols (``_a<r>``: the adjoint of state r after the step, ``_az``: of the
    spike)."""
    k = len(lm.states)
    a = [sp.Symbol(f"_a{j}", real=True) for j in range(k)]
    az = sp.Symbol("_az", real=True)
    outs = []
    for wrt in wrts:
        jn, jz = lm.jacobian("next", wrt), lm.jacobian("spike", wrt)
        outs += [sum((a[r] * jn[r, c] for r in range(k)), sp.Integer(0)) + az * jz[0, c]
                 for c in range(jn.cols)]
    return outs


def derived_bodies(lm: LearningModel, printer, tape_g: bool = False):
    """The model's forward step (``_z``, ``_next<j>``) and its adjoint step (``_as<j>``,
    ``_ax``, ``_gp<j>``, ``_gq<j>``) as (name, code) lines, common subexpressions first,
    printed by ``printer`` (Numba or C): what every backend's BPTT kernels are made of.
    ``tape_g``: the forward step also forms ``_tg``, the threshold function g, with the
    same operations as the spike test (what the minimal tape keeps).
    Returns (renaming of the model's symbols to kernel locals, forward, backward)."""
    ren = kernel_renaming(lm)
    k = len(lm.states)
    extra = [lm.g] if tape_g else []
    forward = cse_lines(ren, [lm.spike, *lm.next, *extra],
                        ["_z"] + [f"_next{j}" for j in range(k)] + ["_tg"] * bool(tape_g),
                        printer, "_f")
    outs = adjoint_step(lm, ("states", "inputs", "params", "propagators"))
    names = ([f"_as{j}" for j in range(k)] + ["_ax"]
             + [f"_gp{j}" for j in range(len(lm.params))]
             + [f"_gq{j}" for j in range(len(lm.propagators))])
    return ren, forward, cse_lines(ren, outs, names, printer, "_b")
