"""LearningModel -> the minimal tape: what a forward pass must keep per neuron and step for
the backward pass of weight gradients, derived from the model (LEARNING.md section 2).
"""

from __future__ import annotations

import sympy as sp

from .bodies import adjoint_step, kernel_renaming
from .step import LearningModel

TAPE_G = sp.Symbol("_tg", real=True)  # the threshold function g of a step, on the tape


def _inverse_bases(exprs) -> set:
    """Everything ``exprs`` divide by (bases of negative powers)."""
    return {node.base for e in exprs for node in sp.preorder_traversal(e)
            if isinstance(node, sp.Pow) and node.exp.is_negative}


def minimal_tape(lm: LearningModel):
    """What the forward pass must keep per neuron and step for a backward pass that forms the
    adjoints and the weight gradients (no parameter gradients), derived from the model:
    (columns, adjoint outputs), or None when nothing smaller than the states and the input
    would do. The backward step reads the states before the step and the synaptic input
    (s, x); it can often be written in fewer quantities, typically the threshold function g
    of the step (the pre-reset membrane: LEARNING.md section 2). For each of s, x that g
    depends on, g = G is solved for it and the solution substituted; the substitution counts
    if that variable is gone afterwards and nothing new is divided by (no division by a
    coefficient that may be zero for some neuron). The columns are then G (``TAPE_G``) and
    whatever of s, x is left; the fewest columns win. The input arrives after the threshold,
    so G does not read it. LIF: (g) instead of (v, I); Izhikevich: (g, v) instead of (v, u,
    I); an adaptive LIF: (g, b); QIF: nothing smaller than (v, I). Adjoint outputs: the
    expressions of ``_as<j>`` and ``_ax`` in the kernel's names, reading the columns.

    >>> import snngen as sg
    >>> from snngen.derive import derive
    >>> from snngen.integrate import discretise
    >>> lif = sg.NeuronModel("dv/dt = (I - v) / tm : 1\\ndI/dt = -I / ts : 1",
    ...                      threshold="v > 1", reset="v = 0")
    >>> minimal_tape(derive(discretise(lif), inputs=["I"]))[0]
    [_tg]
    """
    ren = kernel_renaming(lm)
    outs = [sp.sympify(e).xreplace(ren) for e in adjoint_step(lm, ("states", "inputs"))]
    read = [ren[s] for s in lm.states] + list(lm.inputs)
    g = lm.g.xreplace(ren)
    before = _inverse_bases(outs)
    best = None
    for v in read:
        if not g.has(v):
            continue
        try:
            solved = sp.solve(sp.Eq(TAPE_G, g), v, dict=True)
        except (NotImplementedError, ValueError, TypeError):
            continue
        if len(solved) != 1:
            continue
        new = [sp.expand(e.xreplace({v: solved[0][v]})) for e in outs]
        # divide only by what was divided by before (after the substitution): by G and
        # the symbols of those divisors, never by a newly exposed coefficient
        allowed = {TAPE_G}.union(*(b.xreplace({v: solved[0][v]}).free_symbols
                                   for b in before))
        if any(e.has(v) for e in new) or \
                any(not b.free_symbols <= allowed for b in _inverse_bases(new)):
            continue
        cols = [TAPE_G] * any(e.has(TAPE_G) for e in new) + \
            [w for w in read if any(e.has(w) for e in new)]
        if best is None or len(cols) < len(best[0]):
            best = (cols, new)
    used = [w for w in read if any(e.has(w) for e in outs)]
    return best if best is not None and len(best[0]) < len(used) else None


def describe_tape(lm: LearningModel) -> str:
    """What the compiled BPTT's forward pass keeps per neuron and step (``sg.show(lm,
    "tape")``): the minimal tape of :func:`minimal_tape` when the model has one, and the
    full tape that runs with parameter gradients, a cut-off or a loss on states.

    >>> import snngen as sg
    >>> from snngen.derive import derive
    >>> from snngen.integrate import discretise
    >>> lif = sg.NeuronModel("dv/dt = (I - v) / tm : 1\\ndI/dt = -I / ts : 1",
    ...                      threshold="v > 1", reset="v = 0", name="lif")
    >>> print(describe_tape(derive(discretise(lif), inputs=["I"])))
    Tape of model 'lif' (per neuron and step)
      weight gradients only: 1 column: _tg = g = I*_P0_1 + _P0_0*v - 1
      otherwise: 3 columns: the states before the step (v, I) and the synaptic input
    """
    full = [str(s) for s in lm.states]
    lines = [f"Tape of model '{lm.discrete.model.name}' (per neuron and step)"]
    found = minimal_tape(lm)
    if found is None:
        lines.append("  weight gradients only: no smaller tape than the full one")
    else:
        back = {v: k for k, v in kernel_renaming(lm).items()}
        cols = [f"_tg = g = {lm.g}" if c == TAPE_G else
                f"{back.get(c, c)} (before the step)" if c in back else f"{c}"
                for c in found[0]]
        lines.append(f"  weight gradients only: {len(cols)} column"
                     f"{'s' * (len(cols) > 1)}: " + ", ".join(cols))
    lines.append(f"  otherwise: {len(full) + 1} columns: the states before the step "
                 f"({', '.join(full)}) and the synaptic input")
    return "\n".join(lines)
