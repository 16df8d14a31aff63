"""Shared pieces of lowering: the argument list, and random draws' call sites and streams."""

from __future__ import annotations

import sympy as sp

from ..errors import BackendUnsupported
from ..symbolic import draws, randn
from .nodes import Arg

#: Elapsed time since a synapse's last event, in the exact decay of event-driven traces.
ELAPSED = sp.Symbol("_elapsed", real=True)
#: The counter's last word of rand() in statements and thresholds: this tag, the site (a
#: population's threshold or reset, a projection's on_pre or on_post) shifted by 10 bits, and
#: the call site; randn() uses normal2 stream RANDN_BASE | site << 10 | call site
STATEMENT_TAG = 0x40000000
RANDN_BASE = 1 << 24
_SITES, _CALLS = 1 << 14, 1 << 10
#: Draw sites per population (threshold, reset, constant-over-dt subexpressions, spare);
#: projections follow all populations, two sites each (on_pre, on_post)
POPULATION_SITES = 4


def add_arg(args: list[Arg], arg: Arg) -> None:
    """Append ``arg`` unless it is there already (several nodes may need one array)."""
    if arg not in args:
        args.append(arg)


def draw_locals(exprs, prefix: str, site: int, where: str):
    """(substitution, draws): a local for every rand()/randn() call site in ``exprs``."""
    sub, out = {}, []
    for d in sorted({d for e in exprs for d in draws(e)}, key=lambda d: int(d.args[0])):
        j = int(d.args[0])
        if j >= _CALLS or site >= _SITES:
            raise BackendUnsupported(f"{where}: too many rand()/randn() calls (at most "
                                     f"{_CALLS} in one block) or populations and projections")
        normal = isinstance(d, randn)
        local = f"{prefix}___{'n' if normal else 'r'}{j}"
        sub[d] = sp.Symbol(local, real=True)
        out.append((local, "normal" if normal else "uniform",
                    (RANDN_BASE if normal else STATEMENT_TAG) | site << 10 | j))
    return sub, tuple(out)
