"""Operations run on a population every so many steps: Brian2's ``run_regularly``.

>>> import snngen as sg
>>> net = sg.Network(dt=1e-4)
>>> lif = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
>>> pop = net.population("P", lif, 10, params={"tau": 0.01})
>>> op = net.run_regularly(pop, "v = v + 0.5 * rand()", dt="10*ms")
>>> op.every, [s.target for s in op.statements]
(100, ['v'])
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidValueError, UnknownNameError, did_you_mean
from ..model import SPIKE_VARIABLES
from ..parse import SPECIAL_NAMES, Statement, parse_statements
from ..units import is_unit_name
from . import validate


@dataclass(frozen=True)
class Operation:
    """Statements run on every neuron of ``pop`` in the steps that are multiples of ``every``
    (at the start of the step, before state monitors record and before the update)."""

    pop: object          # a NeuronGroup
    statements: tuple[Statement, ...]
    every: int           # steps
    name: str


def make_operation(net, pop, code, dt, name) -> Operation:
    """Check everything about an operation where it is declared (before any work)."""
    from .network import NeuronGroup, _group

    pop = _group(pop, "run_regularly")
    where = f"run_regularly on '{pop.name}'"
    if not isinstance(pop, NeuronGroup):
        raise InvalidValueError(f"{where}: the target must be a neuron population, not a "
                                f"{type(pop).__name__}")
    statements = parse_statements(code, where)
    model = pop.model
    for s in statements:
        if s.target not in model.state_names:
            raise UnknownNameError(f"'{s.target}' is not a state variable of model "
                                   f"'{model.name}'." + did_you_mean(s.target, model.state_names),
                                   s.line, s.col, len(s.target), where)
    known = set(model.state_names) | set(model.parameter_names) | set(model.eqs.subexpressions) \
        | SPECIAL_NAMES | set(model.spike_variables if model.refractory is not None else ())
    for s in statements:
        for x in s.expr.free_symbols:
            if is_unit_name(x.name):
                continue
            if x.name in pop.inputs:
                raise InvalidValueError(f"{where}: reads '{x.name}', a time table: not built "
                                        "yet in operations")
            if x.name not in known and not (x.name in SPIKE_VARIABLES and model.refractory):
                raise UnknownNameError(f"unknown name '{x.name}' (operations read the "
                                       "model's variables and parameters, and numbers with "
                                       "units)." + did_you_mean(x.name, sorted(known)),
                                       s.line, max(s.line.find(x.name), 0), len(x.name), where)
    model.check_statements(statements, pop.param_dims, where)
    every = 1
    if dt is not None:
        seconds = validate.read_time(dt, f"{where}: dt", strict=True)
        every = round(seconds / net.dt)
        if every < 1 or abs(every * net.dt - seconds) > 1e-9 * seconds:
            raise InvalidValueError(f"{where}: dt = {seconds:g} s must be a whole multiple of "
                                    f"the network's dt ({net.dt:g} s)")
    if name is None:
        name = f"{pop.name}_run_regularly_{len(net.operations)}"
    return Operation(pop, statements, int(every), name)
