"""The user-facing network description: populations, projections, inputs and monitors.

A :class:`Network` only *describes*; :meth:`Network.build` compiles it into a
:class:`~snngen.runtime.simulator.Simulator` that owns the arrays and runs the fused loop.

>>> import snngen as sg
>>> net = sg.Network(dt=1e-4, seed=0)
>>> lif = sg.NeuronModel("dv/dt = (El - v) / tau : 1", threshold="v > 1", reset="v = 0")
>>> pop = net.population("P", lif, 10, params={"El": 1.5, "tau": 0.01})
>>> pop.n, pop[:4].stop
(10, 4)
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from .. import connectivity as conn
from ..errors import ConnectivityError, InvalidValueError, ShapeError, SnngenError
from ..integrate import timestep
from ..model import NeuronModel, SynapseModel, check_method, is_quantity, on_pre_model
from . import validate
from .monitor import Monitor
from .values import (  # noqa: F401 - re-exported: the network's values
    Normal,
    StateRef,
    TimedArray,
    Trainable,
    Uniform,
    _unwrap_trainable,
)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Population:
    """A group of neurons of one model (or an input source); slice it for subgroups."""

    kind = "neuron"

    def __init__(self, net: Network, name: str, n: int):
        if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
            raise InvalidValueError(f"population name {validate.shown(name)} must be a string "
                                    "that is a Python identifier (letters, digits, "
                                    "underscores; starting with a letter), e.g. 'exc'")
        if name in net.populations:
            raise SnngenError(f"a population named '{name}' already exists")
        n = validate.read_count(n, f"population '{name}': size",
                                maximum=validate.MAX_NEURONS)
        if n >= 2**31:
            raise SnngenError(f"population '{name}': {n} neurons exceeds the 2**31-1 limit")
        self.net, self.name, self.n = net, name, int(n)
        self.start, self.stop = 0, self.n

    @property
    def population(self) -> Population:
        return self

    def __getitem__(self, item) -> Subgroup:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise SnngenError(f"population '{self.name}': only contiguous slices such as "
                              "pop[:3200] make subgroups")
        start, stop, _ = item.indices(self.n)
        if stop <= start:
            raise SnngenError(f"population '{self.name}': empty subgroup [{start}:{stop}]")
        return Subgroup(self, start, stop)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.name}', n={self.n})"


@dataclass(frozen=True)
class Subgroup:
    """Neurons ``start:stop`` of a population."""

    population: Population
    start: int
    stop: int

    @property
    def n(self) -> int:
        return self.stop - self.start


class NeuronGroup(Population):
    """Neurons of a :class:`~snngen.model.NeuronModel` with their parameter values."""

    def __init__(self, net, name, model: NeuronModel, n, params=None, init=None, method=None):
        super().__init__(net, name, n)
        if not isinstance(model, NeuronModel):
            raise SnngenError(f"population '{name}': model must be a NeuronModel, "
                              f"got {type(model).__name__}")
        where = f"population '{name}'"
        self.model = model
        self.method = None if method is None else check_method(method, where)
        params, self.trainable = _unwrap_trainable(params, where)
        self.params, dims = validate.read_params(params, where, keep=(TimedArray,))
        self.inputs = {k: v for k, v in self.params.items() if isinstance(v, TimedArray)}
        for k in self.inputs:
            self.params[k] = 0.0
        # a declared per-neuron parameter may be set by a synapse's (summed) variable,
        # connected later: whether it has a value is checked when the network is built
        self.pending = frozenset(model.summable - set(self.params))
        model.check_parameters({**self.params, **dict.fromkeys(self.pending, 0.0)},
                               f"population '{name}'")
        unknown = set(self.params) - set(model.parameter_names)
        if unknown:
            from ..errors import did_you_mean
            first = sorted(unknown)[0]
            raise SnngenError(f"population '{name}': parameter '{first}' is not used by model "
                              f"'{model.name}'.{did_you_mean(first, model.parameter_names)}")
        model.check_units(dims)
        self.param_dims = dims  # for the units of later statements (run_regularly)
        for k, each in self.trainable.items():
            if k in self.inputs or k not in self.params:
                raise InvalidValueError(f"{where}: Trainable '{k}' must be a parameter with a "
                                        "value (a number or one per neuron), not an input")
            if np.ndim(self.params[k]) == 1 and not each:
                raise InvalidValueError(f"{where}: Trainable '{k}' has one value per neuron: "
                                        "mark it Trainable(..., per_neuron=True)")
        for k, v in self.params.items():
            if k not in self.inputs:
                validate.per_neuron(v, f"{where}: parameter '{k}'", self.n)
        for k, ta in self.inputs.items():
            if ta.values.ndim == 2 and ta.values.shape[1] != self.n:
                raise ShapeError(f"{where}: input '{k}' has {ta.values.shape[1]} "
                                 f"columns for {self.n} neurons")
        validate.check_parameter_values(
            model, {k: v for k, v in self.params.items() if k not in self.inputs}, where, dims)
        self.init = {}
        init, self.trainable_init = _unwrap_trainable(init, where)
        for k, v in dict(init or {}).items():
            if k not in model.state_names:
                from ..errors import did_you_mean
                raise SnngenError(f"{where}: init names '{k}', which is not a "
                                  f"state variable.{did_you_mean(k, model.state_names)}")
            self.init[k] = validate.read_initial(model, k, v, where, self.n, net.batch)
            if k in self.trainable_init and (hasattr(self.init[k], "sample")
                                             or np.ndim(self.init[k]) > 1):
                raise InvalidValueError(f"{where}: a trained initial value of '{k}' is the same "
                                        "in every trial: give a number or one per neuron "
                                        "(not a distribution or a (batch, n) array)")
            if k in self.trainable_init and np.ndim(self.init[k]) == 1 and \
                    not self.trainable_init[k]:
                raise InvalidValueError(f"{where}: Trainable init '{k}' has one value per "
                                        "neuron: mark it Trainable(..., per_neuron=True)")

    def __getattr__(self, name: str) -> StateRef:
        """``pop.v``: a reference to state ``v`` (``pop.spikes``: to the spikes), for losses."""
        model = self.__dict__.get("model")
        if model is not None and (name in model.state_names or name == "spikes"):
            return StateRef(self, name)
        raise AttributeError(f"population '{self.__dict__.get('name')}' has no attribute or "
                             f"state variable '{name}'")

    def per_neuron(self) -> frozenset[str]:
        declared = {n for n, e in self.model.eqs.declared.items() if "shared" not in e.flags}
        arrays = {k for k, v in self.params.items() if np.ndim(v) == 1}
        return frozenset(declared | arrays)


class InputGroup(Population):
    """Input channels fed per run with spikes of shape (steps, batch, n), by the trainers
    (:class:`snngen.train.BPTT`): ``net.input("x", 700)``."""

    kind = "input"

    @property
    def spikes(self) -> StateRef:
        return StateRef(self, "spikes")


class PoissonGroup(Population):
    """Independent Poisson spike sources with a rate (Hz), shared or one per neuron."""

    kind = "poisson"

    def __init__(self, net, name, n, rates):
        super().__init__(net, name, n)
        self.rates = validate.read_rates(rates, f"Poisson group '{name}'", self.n)


class SpikeSource(Population):
    """Replays given spikes: ``indices[k]`` fires at ``times[k]`` seconds (in every trial)."""

    kind = "array"

    def __init__(self, net, name, n, indices, times):
        super().__init__(net, name, n)
        what = f"spike source '{name}'"
        idx = np.asarray(indices)
        t = np.asarray(validate.read_value(times, f"{what}: times", validate.SECOND,
                                           shape=None, kind="times"), dtype=np.float64)
        if idx.shape != t.shape or idx.ndim != 1:
            raise ShapeError(f"{what}: indices and times must be 1-D arrays of "
                             f"the same length, got {idx.shape} and {t.shape}")
        if idx.size and (idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer)):
            raise InvalidValueError(f"{what}: indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            bad = int(np.flatnonzero((idx < 0) | (idx >= self.n))[0])
            raise InvalidValueError(f"{what}: index {idx[bad]} at position {bad} is "
                                    f"outside 0..{self.n - 1}")
        if t.size and np.any(t < 0):
            raise InvalidValueError(f"{what}: times must be >= 0, got {t[t < 0][0]:g} at "
                                    f"position {int(np.flatnonzero(t < 0)[0])}")
        steps = timestep(t, net.dt)  # Brian2's bins: the step each spike falls in
        order = np.lexsort((idx, steps))
        steps, idx = steps[order], idx[order]
        twice = np.flatnonzero((np.diff(steps) == 0) & (np.diff(idx) == 0))
        if twice.size:
            k = int(twice[0])
            raise InvalidValueError(
                f"{what}: neuron {idx[k]} spikes more than once in step {steps[k]} (t = "
                f"{steps[k] * net.dt:g} s, dt = {net.dt:g} s); a neuron spikes at most once "
                "per step: merge the spikes or use a smaller dt")
        self.steps, self.indices = steps, idx.astype(np.int32)


class Projection:
    """Synapses from ``pre`` to ``post`` with a :class:`~snngen.model.SynapseModel`."""

    def __init__(self, net, name, pre, post, model, rule, values, delay, params):
        self.net, self.name = net, name
        self.pre, self.post = pre, post
        self.model = model
        self.rule = conn.parse_rule(rule)
        values, self.trainable = _unwrap_trainable(dict(values), f"projection '{name}'")
        self.values = dict(values)
        self.params, dims = validate.read_params(params, f"projection '{name}'")
        if not isinstance(post.population, NeuronGroup):
            raise ConnectivityError(f"projection '{name}': the target "
                                    f"'{post.population.name}' must be a neuron population")
        for k, v in self.values.items():
            if k not in model.variables:
                from ..errors import did_you_mean
                raise ConnectivityError(f"projection '{name}': '{k}' is not a synaptic "
                                        f"variable.{did_you_mean(k, model.variables)}")
            _check_synaptic_value(v, f"projection '{name}': '{k}'", model, k)
        for k, v in self.params.items():
            _check_synaptic_value(v, f"projection '{name}': parameter '{k}'")
        validate.check_parameter_values(model, self.params, f"projection '{name}'", dims)
        pre_model = getattr(pre.population, "model", None)
        model.check_units(pre_model.state_dims() if pre_model is not None else {},
                          post.population.model.variable_dims(), dims, f"projection '{name}'")
        self._check_summed()
        self.delay_expr = None
        if isinstance(delay, str):
            if not is_quantity(delay):  # an expression of i, j: evaluated per synapse
                self.delay_expr, self.delay_steps, self.heterogeneous = delay, None, True
                return
        try:
            self.delay_steps = validate.read_delay_steps(delay, f"projection '{name}': delay",
                                                         net.dt)
        except (InvalidValueError, ShapeError) as err:
            raise ConnectivityError(str(err)) from None
        self.heterogeneous = self.delay_steps.ndim > 0

    def _check_summed(self) -> None:
        """A (summed) variable sets a declared per-neuron parameter of the target that has
        no value of its own and no other summed variable writing it."""
        target = self.post.population
        for s in self.model.summed:
            where = f"projection '{self.name}': (summed) '{s.target}_post'"
            if s.target not in target.model.summable:
                raise ConnectivityError(
                    f"{where} must set a declared per-neuron parameter of model "
                    f"'{target.model.name}' (a line such as '{s.target} : amp'); "
                    f"'{s.target}' is not one")
            if s.target in target.params:
                raise ConnectivityError(
                    f"{where}: population '{target.name}' gives '{s.target}' a value, but "
                    "the synapses set it every step; leave it out of params")
            for other in self.net.projections.values():
                if other.post.population is target and any(
                        o.target == s.target for o in other.model.summed):
                    raise ConnectivityError(
                        f"{where}: projection '{other.name}' already sums into "
                        f"'{target.name}.{s.target}'; sum both into different parameters "
                        "and add them in the neuron's equations")

    def __repr__(self) -> str:
        return f"Projection('{self.name}': {self.pre.population.name} -> " \
               f"{self.post.population.name})"


def _check_synaptic_value(value, what: str, model=None, name: str = "") -> None:
    """Synaptic values given as numbers or arrays must be finite, and quantities of variable
    ``name`` of ``model`` have its declared unit (distributions check themselves,
    expressions are checked per synapse when evaluated)."""
    if isinstance(value, (Uniform, Normal)) or (isinstance(value, str)
                                                and not is_quantity(value)):
        return
    try:
        validate.read_value(value, what, shape=None)
        if model is not None:
            validate.check_declared_unit(model, name, value, what)
    except InvalidValueError as err:
        raise ConnectivityError(str(err).replace(" for neuron ", " for synapse ")) from None


def _group(obj, what: str) -> Population:
    """The population of ``obj``, a population or a subgroup (a slice of one); anything else
    (a name, None, a model) is refused."""
    if isinstance(obj, (Population, Subgroup)):
        return obj.population
    hint = f" (for the population named {obj!r}: net.populations[{obj!r}])" \
        if isinstance(obj, str) else ""
    raise InvalidValueError(f"{what}: give a population or a slice of one, as returned by "
                            "net.population, net.poisson or net.spike_source; got "
                            f"{validate.shown(obj)} ({type(obj).__name__}){hint}")


class Network:
    """A spiking network: populations, projections, monitors, and run settings.

    Parameters
    ----------
    dt : float or str
        Time step in seconds, or a time string such as ``"0.1*ms"``.
    seed : int
        An integer in [0, 2**64). Seeds connectivity, initial values and the counter-based
        RNG (Philox4x32-10, the same bits on every backend) of Poisson inputs.
    batch : int
        Number of independent trials run together (shared connectivity).
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    """

    def __init__(self, dt: float, seed: int = 0, batch: int = 1, dtype: str = "float32"):
        if isinstance(dtype, np.dtype):
            dtype = dtype.name
        if not isinstance(dtype, str) or dtype not in ("float32", "float64"):
            raise InvalidValueError(f"dtype must be 'float32' or 'float64', got "
                                    f"{validate.shown(dtype)}")
        dt = validate.read_dt(dt, dtype)
        batch = validate.read_count(batch, "batch")
        self.dt, self.seed, self.batch, self.dtype = dt, validate.read_seed(seed), batch, dtype
        self.populations: dict[str, Population] = {}
        self.projections: dict[str, Projection] = {}
        self.monitors: list[Monitor] = []
        self.operations: list = []  # run_regularly (snngen.runtime.operations)

    def _add(self, pop):
        self.populations[pop.name] = pop
        return pop

    def population(self, name, model, n, params=None, init=None, method=None) -> NeuronGroup:
        """Add ``n`` neurons of ``model``; ``params`` values may be floats (SI), quantity
        strings (``"20*ms"``), per-neuron arrays or :class:`TimedArray` inputs; ``init`` gives
        initial state (scalars, arrays, :class:`Uniform`/:class:`Normal`)."""
        return self._add(NeuronGroup(self, name, model, n, params, init, method))

    def input(self, name, n) -> InputGroup:
        """Add ``n`` input channels whose spikes are given per run, shape (steps, batch, n),
        e.g. ``BPTT.fit(inputs={"x": spikes}, ...)``."""
        return self._add(InputGroup(self, name, n))

    def poisson(self, name, n, rates) -> PoissonGroup:
        """Add ``n`` Poisson sources with ``rates`` in Hz (scalar or per neuron)."""
        return self._add(PoissonGroup(self, name, n, rates))

    def spike_source(self, name, n, indices, times) -> SpikeSource:
        """Add ``n`` sources replaying ``indices`` firing at ``times`` (seconds).

        A spike at time ``t`` fires in step ``floor((t + 1e-3 dt) / dt)``, as in Brian2's
        ``SpikeGeneratorGroup``; a neuron may spike at most once per step."""
        return self._add(SpikeSource(self, name, n, indices, times))

    def connect(self, pre, post, model: SynapseModel | str, rule="all_to_all", *,
                name=None, delay=0.0, params=None, **values) -> Projection:
        """Connect ``pre`` to ``post`` (populations or subgroups).

        ``model`` is a :class:`SynapseModel` or a shortcut statement such as ``"ge += w"``
        (a weight-only synapse). ``rule`` is a connection rule (see :mod:`snngen.connectivity`).
        Keyword values initialise synaptic variables (``w=1.62e-3``, ``w=sg.Normal(...)``, an
        array in the order of the synapses or, for explicit rules, of the given pairs).
        ``delay`` is in seconds (scalar, or one per synapse), rounded to whole steps as
        Brian2 does (``int(delay / dt + 0.5)``); 0 acts in the step of the spike, after the
        threshold and before the reset (see "Order within a step" in the README).
        """
        if isinstance(model, str):
            model = on_pre_model(model)
        elif not isinstance(model, SynapseModel):
            raise InvalidValueError(f"connect: model must be a SynapseModel or a statement "
                                    f"such as 'ge += w', got {validate.shown(model)} "
                                    f"({type(model).__name__})")
        for side, end in ((pre, "pre"), (post, "post")):
            if _group(side, f"connect: {end}").net is not self:
                raise ConnectivityError("both ends of a projection must belong to this network")
        if name is None:
            name = f"{pre.population.name}_to_{post.population.name}_{len(self.projections)}"
        if not isinstance(name, str) or not _NAME.match(name) or name in self.projections:
            raise ConnectivityError(f"projection name {validate.shown(name)} must be a new "
                                    "Python identifier (a string such as 'exc_to_inh')")
        proj = Projection(self, name, pre, post, model, rule, values, delay, params)
        self.projections[name] = proj
        return proj

    def monitor_spikes(self, pop) -> Monitor:
        """Record every spike of ``pop``: fields ``i``, ``t`` (seconds), ``step``, ``b``."""
        return self._monitor(Monitor("spikes", _group(pop, "monitor_spikes")))

    def monitor_state(self, pop, variables, indices=None, every=1) -> Monitor:
        """Record ``variables`` of neurons ``indices`` (default all) every ``every`` steps:
        field per variable of shape (batch, records, neurons), and ``t``."""
        pop = _group(pop, "monitor_state")
        if not isinstance(pop, NeuronGroup):
            raise SnngenError(f"'{pop.name}' has no state to record")
        variables = [variables] if isinstance(variables, str) else variables
        if not isinstance(variables, (list, tuple)) or not variables or \
                not all(isinstance(v, str) for v in variables) or \
                len(set(variables)) != len(variables):
            raise InvalidValueError(f"monitor_state of '{pop.name}': variables must be a state "
                                    "variable's name or a list of distinct names, e.g. 'v' or "
                                    f"['v', 'I'], got {validate.shown(variables)}")
        for v in variables:
            if v not in pop.model.state_names:
                from ..errors import did_you_mean
                raise SnngenError(f"cannot record '{v}' of '{pop.name}': not a state variable."
                                  + did_you_mean(v, pop.model.state_names))
        what = f"state monitor of '{pop.name}'"
        if indices is not None:
            idx = np.asarray(indices)
            if idx.ndim != 1 or idx.size == 0:
                raise ShapeError(f"{what}: indices must be a non-empty 1-D array, got shape "
                                 f"{idx.shape}")
            if idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer):
                raise InvalidValueError(f"{what}: indices must be integers, got dtype "
                                        f"{idx.dtype}")
            if idx.min() < 0 or idx.max() >= pop.n:
                raise InvalidValueError(f"{what}: indices must be within 0..{pop.n - 1}, got "
                                        f"{idx[(idx < 0) | (idx >= pop.n)][0]}")
        every = validate.read_count(every, f"{what}: every")
        return self._monitor(Monitor("state", pop, variables, indices, every))

    def monitor_rate(self, pop) -> Monitor:
        """Record the population rate (Hz) of every step: field ``rate`` (batch, steps)."""
        return self._monitor(Monitor("rate", _group(pop, "monitor_rate")))

    def run_regularly(self, pop, code: str, dt=None, name: str | None = None):
        """Run statements ``code`` on every neuron of ``pop`` every ``dt`` (seconds or a time
        string, a whole multiple of the network's ``dt``; default every step), at the start
        of the step, before state monitors record: Brian2's ``run_regularly``. Statements
        assign state variables and may read parameters, ``t``, ``i`` and ``rand()``/
        ``randn()``; the first run is in step 0. Returns the
        :class:`~snngen.runtime.operations.Operation`."""
        from .operations import make_operation
        op = make_operation(self, pop, code, dt, name)
        self.operations.append(op)
        return op

    def _monitor(self, mon):
        if mon.pop.net is not self:
            raise SnngenError("monitor target belongs to another network")
        self.monitors.append(mon)
        return mon

    def build(self, backend: str = "numba", **options):
        """Generate, compile (or load from the cache) and allocate: returns a Simulator."""
        from .simulator import Simulator
        return Simulator(self, backend=backend, **options)
