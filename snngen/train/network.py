"""BPTT of any :class:`~snngen.Network`: the driver (what is trained, the tables, the loss,
the optimiser) over the compiled kernels of the network's derived step.

What trains is marked where it is declared: ``sg.Trainable`` around a population's
parameter (shared, or ``per_neuron=True``) or a projection's synaptic variable. The loss
reads any population's state or spikes (:mod:`snngen.losses`), recorded after every step.

>>> import numpy as np
>>> import snngen as sg
>>> lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\\ndI/dt = -I / taus : 1",
...                      threshold="v > 1", reset="v = 0", name="lif")
>>> leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="leaky")
>>> net = sg.Network(dt=1e-3, batch=2, dtype="float64")
>>> x = net.input("x", 5)
>>> h = net.population("h", lif, 8, params={"tau": 0.02, "taus": 0.005})
>>> o = net.population("o", leaky, 2, params={"tau": sg.Trainable(0.02)})
>>> _ = net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(2.0, 1.0)))
>>> _ = net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)))
>>> _ = net.connect(x, o, "v += w", w=sg.Trainable(0.0))                # a skip projection
>>> fit = BPTT(net, loss=sg.losses.cross_entropy(o.v), optimizer=sg.train.Adam(1e-2))
>>> sorted(fit.params)
['h_to_o_1.w', 'o.tau', 'x_to_h_0.w', 'x_to_o_2.w']
>>> data = (np.random.default_rng(0).random((20, 4, 5)) < 0.3).astype(float)
>>> loss, grads = fit.loss_and_grads({"x": data}, np.array([0, 1, 0, 1]))
>>> grads["x_to_h_0.w"].shape, grads["o.tau"].shape
((40,), ())
"""

from __future__ import annotations

import sys

import numpy as np

from ..derive.network import derive_network
from ..derive.reference import chain_propagators, propagator_values, refractory_steps
from ..errors import InvalidValueError, ShapeError, SnngenError
from ..runtime import validate
from ..runtime.allocate import _initial
from .checks import as_count
from .network_data import (
    check_inputs,
    initial_params,
    per_synapse,
    positive_params,
    source_spikes,
    synapse_tables,
    timed_values,
)
from .network_memory import check_fits, memory_parts
from .optim import SGD, Adam, clip_scale, global_norm

NEVER = -(10 ** 9)  # the last spike of a neuron that has not spiked: never refractory


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BPTT:
    """Backpropagation through time of ``net``, a :class:`~snngen.Network` whose inputs are
    ``net.input`` groups (or spike sources) and whose trained values are marked
    :class:`~snngen.Trainable`.

    Parameters
    ----------
    net : Network
        Populations of any neuron models (a model without threshold is a readout), and
        projections whose ``on_pre`` statements add a function of synaptic variables and
        parameters to a postsynaptic state (``I += w``, ``ge += w``), with delays per
        projection or per synapse. The synapses are drawn as the simulator draws them (the
        same seeds); synaptic values drawn from distributions are drawn here.
    loss : snngen.losses.Loss
        What is minimised, e.g. ``sg.losses.cross_entropy(o.v, over="max")``.
    optimizer : Adam or SGD, optional
        Default ``Adam(1e-3)``.
    backend : str
        ``"numba"`` (CPU), ``"cuda"`` (a GPU, through CuPy) or ``"cuda-host"`` (the CUDA
        kernels compiled for the CPU: how they are checked without a GPU); the same
        gradients, to the rounding of sums.
    surrogate : str or SurrogateSpec
        The surrogate derivative of the spike: a name (see :mod:`snngen.derive.surrogate`) or
        one with parameters, ``sg.surrogate("fast_sigmoid", beta=5)``.
    detach_reset : bool
        Do not differentiate through the reset's spike.
    clip : float or None
        Clip the global gradient norm to this value before each step.
    checkpoint_every : int or None
        Keep the tape of this many steps only, and the state (with the refractory clocks and
        the inputs in flight) at the start of every such segment: the backward pass
        recomputes each segment from its checkpoint (one more forward pass; tape memory /
        (steps / checkpoint_every)). The same gradients. None: the whole run's tape. The
        tape includes, for a population that an all-to-all projection with one delay
        feeds, the adjoints of its inputs over a segment (their weight gradients are summed
        row by row at the segment's end).
    progress : bool or None
        ``False``: say nothing; otherwise the first use of kernels that are not in the cache
        yet says on stderr what it compiles and how long it took.
    parallel : bool
        Numba backend: the population kernels share each population's neurons between
        threads, and so do the dense products and weight sums of all-to-all projections:
        the same gradients, bit for bit; the first compile takes about twice as long. It
        pays where these dominate a step (large populations, dense layers; the other
        deliveries stay serial): benchmarks/RESULTS.md.
    max_memory : int or None
        The most bytes a run may hold (:meth:`memory_bytes` counts them before it starts);
        a larger run is refused before anything is allocated. None: 90 % of the memory
        available.
    soft_beta : float or None
        Soft forward spikes ``sigmoid(soft_beta * g)``, delivered with their value, and their
        exact derivative: a smooth network whose gradients finite differences check
        (LEARNING.md section 4); None (default) runs hard spikes with the surrogate.

    The trained values are :attr:`params` (``"<population>.<parameter>"``,
    ``"<population>.<state>0"`` for an initial state, ``"<projection>.<variable>"``;
    synaptic ones in the order of the synapse table).
    Parameters the model needs positive (time constants) are optimised as their logarithms
    (:attr:`log_space`), so that no step makes them negative. White noise (``xi``) in a
    neuron model is a fixed input of each run: its standard normal draws are made before
    the forward pass (by :attr:`noise_rng`) and read again by the backward pass, which
    differentiates their coefficients (``sigma*sqrt(2/tau)*xi``). Poisson groups
    (``net.poisson``) are inputs of each run too, drawn by :attr:`poisson_rng`.
    """

    _online = False  # the kernels of online learning too (sg.Online)

    def __init__(self, net, loss, optimizer=None, backend: str = "numba",
                 surrogate="fast_sigmoid", detach_reset: bool = False,
                 clip: float | None = None, soft_beta: float | None = None,
                 checkpoint_every: int | None = None, progress: bool | None = None,
                 parallel: bool = False, max_memory: int | None = None):
        from ..losses import Loss
        from ..runtime.network import Network
        who = type(self).__name__  # BPTT, or Online (its subclass)
        if not isinstance(net, Network):
            raise InvalidValueError(f"{who}: net must be an sg.Network, got {type(net).__name__}")
        if not isinstance(loss, Loss):
            raise InvalidValueError(f"{who}: loss must be one of sg.losses (e.g. "
                                    f"sg.losses.cross_entropy(o.v)), got {type(loss).__name__}")
        for ref in loss.reads:
            if ref.population.net is not net or ref.population.kind != "neuron":
                raise InvalidValueError(f"{who}: the loss reads {ref!r}, which is not a neuron "
                                        "population of this network")
        if optimizer is None:
            optimizer = Adam(1e-3)
        if not isinstance(optimizer, (Adam, SGD)):
            raise InvalidValueError(f"{who}: optimizer must be sg.train.Adam(...) or "
                                    f"sg.train.SGD(...), got {type(optimizer).__name__}")
        if not isinstance(backend, str) or backend not in ("numba", "cuda", "cuda-host"):
            raise InvalidValueError(f"{who}: backend must be 'numba', 'cuda' or 'cuda-host', "
                                    f"got {validate.shown(backend)}")
        validate.read_flag(detach_reset, f"{who}: detach_reset")
        validate.read_flag(progress, f"{who}: progress", none=True)
        validate.read_flag(parallel, f"{who}: parallel")
        #: the most bytes a run may hold (None: 90 % of the memory available at its start)
        self.max_memory = None if max_memory is None else validate.read_count(
            max_memory, f"{who}: max_memory (bytes, e.g. 4 * 2**30 for 4 GiB)")
        self.clip = None if clip is None else float(
            validate.read_value(clip, f"{who}: clip", shape=()))
        self.checkpoint_every = None if checkpoint_every is None else \
            as_count(checkpoint_every, "checkpoint_every (steps)", "BPTT")
        self.net, self.loss, self.optimizer = net, loss, optimizer
        if soft_beta is not None:
            soft_beta = float(validate.read_value(soft_beta, f"{who}: soft_beta", shape=()))
            if not soft_beta > 0:
                raise InvalidValueError(f"{who}: soft_beta must be > 0, got {soft_beta:g}")
        self.nlm = derive_network(net, surrogate, detach_reset, soft_beta)
        trained = [f"{p.name}.{k}" for p in net.populations.values()
                   for k in [*getattr(p, "trainable", {}), *getattr(p, "trainable_init", {})]] + \
            [f"{j.name}.{k}" for j in net.projections.values() for k in j.trainable]
        if not trained:
            raise SnngenError(f"{who}: nothing is trained: mark values with sg.Trainable, e.g. "
                              "w=sg.Trainable(sg.Normal(0, 0.1)) in net.connect")
        self.tables = synapse_tables(net)
        self._fixed_arrays = {}  # _parameter_arrays of populations with nothing trained
        self.params = initial_params(net, self.tables)
        self.log_space = positive_params(net)
        #: draws the white noise of each run (standard normal, per neuron, trial and step):
        #: a fixed input of that run; replace it to repeat a run's noise
        self.noise_rng = np.random.default_rng([net.seed, 1])
        #: draws the spikes of Poisson groups in each run (a fixed input of that run: spike
        #: when a uniform draw < rate * dt, Brian2's PoissonGroup), like noise_rng
        self.poisson_rng = np.random.default_rng([net.seed, 3])
        # what the optimiser updates: the logarithm of the parameters kept positive
        self._optimised = {k: np.log(v) if k in self.log_space else v
                           for k, v in self.params.items()}
        if backend == "numba":
            from ..backends.numba.learning import NetworkKernels
            self.kernels = NetworkKernels(self.nlm, net, net.dtype, parallel,
                                          say=None if progress is False else _say,
                                          online=self._online)
        else:
            from ..backends.cuda.learning import NetworkKernels
            self.kernels = NetworkKernels(self.nlm, net, net.dtype,
                                          "gpu" if backend == "cuda" else "host",
                                          online=self._online)
        self.backend = backend

    # -- the network's fixed structure and its trained values --------------------------

    def _population_values(self, pop) -> dict:
        """Per-neuron float64 values of every parameter of ``pop`` (trained ones current)."""
        values = {k: np.broadcast_to(np.asarray(v, np.float64), (pop.n,))
                  for k, v in pop.params.items() if k not in pop.inputs}  # not TimedArrays
        for k in getattr(pop, "trainable", {}):
            values[k] = np.broadcast_to(self.params[f"{pop.name}.{k}"], (pop.n,))
        return values

    def _parameter_arrays(self, name: str) -> tuple[dict, np.ndarray, np.ndarray,
                                                    np.ndarray]:
        """Population ``name``'s parameter values (checked), and what its kernels read of
        them: P (params, n), Q (propagators, n) in the network's dtype, and the refractory
        steps (n,). A population with nothing trained reuses them while its values stay
        the same (no matrix exponential per neuron and run)."""
        f, pop, lm = self.kernels.dtype, self.net.populations[name], self.nlm.populations[name]
        values = self._population_values(pop)
        validate.check_parameter_values(pop.model, values, f"population '{name}'")
        key = tuple((k, np.ascontiguousarray(v).tobytes()) for k, v in sorted(values.items()))
        cached = self._fixed_arrays.get(name)
        if cached is not None and cached[0] == key:
            return (values, *cached[1])
        props = propagator_values(lm, values, self.net.dt, pop.n)
        arrays = (np.array([values[p.name] for p in lm.params], f).reshape(-1, pop.n),
                  np.array([props[q] for q in lm.propagators], f).reshape(-1, pop.n),
                  refractory_steps(lm, values, self.net.dt, pop.n).astype(np.int64))
        if not getattr(pop, "trainable", None):  # Online writes the trained ones in place
            self._fixed_arrays[name] = (key, arrays)
        return (values, *arrays)

    # -- one run ----------------------------------------------------------------------

    def _check_inputs(self, inputs, where: str) -> tuple[int, int, dict]:
        return check_inputs(self.net, inputs, where, self.kernels.dtype)

    def _arrays(self, inputs: dict, steps: int, batch: int) -> tuple[dict, dict]:
        f, net = self.kernels.dtype, self.net
        args, info = {}, {}
        rng = np.random.default_rng(net.seed)
        longest = {}
        for d in self.nlm.deliveries:
            longest[d.post] = max(longest.get(d.post, 0),
                                  int(self.tables[d.projection]["delays"].max(initial=0)))
        tape = self._segments(steps)[0][1]  # the tape holds one segment
        for name, lm in self.nlm.populations.items():
            pop = net.populations[name]
            n, k, m = pop.n, len(lm.states), len(lm.inputs)
            values, P, Q, ref = self._parameter_arrays(name)
            s0 = np.stack([_initial(pop.init.get(s.name, 0.0), rng, (batch, n),
                                    f"init of '{name}.{s.name}'") for s in lm.states], axis=1)
            for j, s in enumerate(lm.states):  # trained initial states: the current values
                if s.name in getattr(pop, "trainable_init", {}):
                    s0[:, j, :] = self.params[f"{name}.{s.name}0"]
            ring = longest.get(name, 0) + 1
            args.update({
                f"s_{name}": np.ascontiguousarray(s0, f),
                f"P_{name}": P, f"Q_{name}": Q,
                f"last_{name}": np.full((batch, n), NEVER, np.int64), f"ref_{name}": ref,
                f"z_{name}": np.zeros((steps, batch, n), f),
                f"tr_{name}": np.zeros((tape, batch, n), np.bool_),
                f"ts_{name}": np.empty((tape, batch, k, n), f),
                f"tx_{name}": np.empty((tape, batch, m, n), f),
                f"xr_{name}": np.zeros((ring, batch, m, n), f),
                # white noise: a fixed input of the run, drawn here, read by both passes;
                # then the values of time-varying inputs (TimedArray) at each step
                f"N_{name}": np.concatenate([self.noise_rng.standard_normal(
                    (steps, batch, len(lm.noise), n)), timed_values(pop, net.dt, steps, batch)],
                    axis=2).astype(f)})
            info[name] = (values, ring)
        for name in self.nlm.sources:
            pop = net.populations[name]
            if pop.kind == "poisson":  # a fixed input of the run, drawn here
                p = np.broadcast_to(np.asarray(pop.rates, np.float64) * net.dt, (pop.n,))
                args[f"z_{name}"] = (self.poisson_rng.random((steps, batch, pop.n)) < p) \
                    .astype(f)
            else:
                args[f"z_{name}"] = inputs[name] if pop.kind == "input" else \
                    source_spikes(pop, steps, batch, f)
        for proj in dict.fromkeys(d.projection for d in self.nlm.deliveries):
            for key in ("indptr", "indices", "delays", "layout"):
                args[f"{key}_{proj}"] = self.tables[proj][key]
        for j, d in enumerate(self.nlm.deliveries):
            args[f"f_d{j}"] = self._delivered(d).astype(f)
        return args, info

    def _synaptic_env(self, d) -> dict:
        proj = self.net.projections[d.projection]
        table = self.tables[d.projection]
        env = {**proj.params, **table["values"]}
        for k in proj.trainable:
            env[k] = self.params[f"{d.projection}.{k}"]
        shared = table["csr"].shared
        if shared is not None:  # each synapse reads the value it shares
            env.update({k: env[k][shared] for k in table["values"]})
        return env

    def _delivered(self, d) -> np.ndarray:
        """The value each synapse of ``d`` adds to its target per event."""
        size = self.tables[d.projection]["csr"].n_synapses
        out = per_synapse(d.expr, self._synaptic_env(d), size)
        if not np.all(np.isfinite(out)):
            raise SnngenError(f"projection '{d.projection}': '{d.statement}' is not finite for "
                              f"synapse {int(np.flatnonzero(~np.isfinite(out))[0])}")
        return out

    def _record(self, args: dict, t0: int, t1: int, out: dict) -> None:
        """The states the loss reads after steps t0 .. t1 - 1 (from the tape of those steps
        and the state after them) into ``out`` (steps, batch, neurons)."""
        host = self.kernels.host
        for ref in self.loss.reads:
            if ref.name == "spikes":
                continue
            name = ref.population.name
            j = [s.name for s in self.nlm.populations[name].states].index(ref.name)
            out[ref][t0:t1 - 1] = host(args[f"ts_{name}"][1:t1 - t0, :, j, :])
            out[ref][t1 - 1] = host(args[f"s_{name}"][:, j, :])

    def _device(self, args: dict) -> dict:
        """The arrays of ``args`` where the kernels read them (a GPU's memory for 'cuda')."""
        return {k: self.kernels.array(v) if isinstance(v, np.ndarray) else v
                for k, v in args.items()}

    def _adjoint_ring(self, name: str, ring: int, steps: int) -> int:
        """Rows of population ``name``'s ring of input adjoints in the backward pass: the
        forward ring's (its longest delay + 1), or, where a full matrix with a shared delay
        projects into it, a segment's steps more, so that the segment's adjoints are all
        there when its weight sums are made row by row (one row of weights in cache for all
        of its neuron's spikes) at the segment's end."""
        dense = any(d.post == name and self.tables[d.projection]["layout"][0] >= 0
                    and self.tables[d.projection]["layout"][1] for d in self.nlm.deliveries)
        return ring + self._segments(steps)[0][1] - 1 if dense else ring

    def memory_bytes(self, steps: int, batch: int | None = None,
                     backward: bool = True) -> int:
        """Bytes a run of ``steps`` steps and ``batch`` trials (default: the network's)
        holds at its peak, counted before anything is allocated (``backward=False``: the
        forward pass of :meth:`predict`); :func:`snngen.train.network_memory.memory_parts`
        names the parts. A run that would not fit is refused before it starts."""
        steps = as_count(steps, "steps", "BPTT.memory_bytes")
        batch = as_count(self.net.batch if batch is None else batch, "batch",
                         "BPTT.memory_bytes")
        return sum(memory_parts(self, steps, batch, backward).values())

    def _segments(self, steps: int) -> list[tuple[int, int]]:
        every = self.checkpoint_every or steps
        return [(t0, min(t0 + every, steps)) for t0 in range(0, steps, every)]

    def _forward(self, inputs, where: str):
        """The forward pass, segment by segment when checkpointed (the state, refractory
        clocks and pending inputs at each segment's start are kept, the tape holds one
        segment); returns (steps, batch, args, info, records, checkpoints)."""
        steps, batch, inputs = self._check_inputs(inputs, where)
        check_fits(self, steps, batch, where != "BPTT.predict", where)
        args, info = self._arrays(inputs, steps, batch)
        args = self._device(args)
        records = {ref: np.empty((steps, batch, ref.population.n))
                   for ref in self.loss.reads if ref.name != "spikes"}
        saved = {}
        segments = self._segments(steps)
        for t0, t1 in segments:
            if len(segments) > 1 and not self._online:  # online: nothing is recomputed
                saved[t0] = {k: v.copy() for k, v in args.items()
                             if k.startswith(("s_", "last_", "xr_"))}
            self.kernels.forward(t0, t1, self.net.dt, args)
            self._record(args, t0, t1, records)
        for ref in self.loss.reads:
            if ref.name == "spikes":
                records[ref] = self.kernels.host(args[f"z_{ref.population.name}"])
        return steps, batch, args, info, records, saved

    def loss_and_grads(self, inputs: dict, labels) -> tuple[float, dict]:
        """One forward and backward pass over a batch: (loss, {name: dL/d value}) for every
        trained value (the names of :attr:`params`)."""
        steps, batch, args, info, records, saved = self._forward(inputs,
                                                                 "BPTT.loss_and_grads")
        loss, dl = self.loss(records, labels)
        f = self.kernels.dtype
        for name, lm in self.nlm.populations.items():
            n, k, m = self.net.populations[name].n, len(lm.states), len(lm.inputs)
            mine = {ref: g for ref, g in dl.items() if ref.population.name == name}
            use_ds = any(ref.name != "spikes" for ref in mine)
            use_dz = any(ref.name == "spikes" for ref in mine)
            dls = np.zeros((steps if use_ds else 1, batch, k, n), f)
            dlz = np.zeros((steps if use_dz else 1, batch, n), f)
            for ref, grad in mine.items():
                if ref.name == "spikes":
                    dlz += grad
                else:
                    dls[:, :, [s.name for s in lm.states].index(ref.name), :] += grad
            args.update({
                f"a_{name}": np.zeros((batch, k, n), f), f"dls_{name}": dls,
                f"use_ds_{name}": use_ds, f"dlz_{name}": dlz, f"use_dz_{name}": use_dz,
                f"ar_{name}": np.zeros((self._adjoint_ring(name, info[name][1], steps), batch,
                                        m, n), f),
                f"dz_{name}": np.zeros((batch, n), f),
                f"gP_{name}": np.zeros((len(lm.params), n)),
                f"gQ_{name}": np.zeros((len(lm.propagators), n))})
        for name in self.nlm.sources:
            args[f"dz_{name}"] = np.zeros((1, 1), f)
        for j, d in enumerate(self.nlm.deliveries):
            args[f"gf_d{j}"] = np.zeros(self.tables[d.projection]["csr"].n_synapses)
        args = self._device(args)
        segments = self._segments(steps)
        for t0, t1 in reversed(segments):
            if t1 < steps:  # the tape holds the last segment: recompute this one's
                for key, value in saved[t0].items():
                    args[key][...] = value
                self.kernels.forward(t0, t1, self.net.dt, args)
            self.kernels.backward(t0, t1, steps, self.net.dt, 0.0, args)
        got = {k: self.kernels.host(v) for k, v in args.items()
               if k.startswith(("gP_", "gQ_", "gf_", "a_"))}  # a_: dL/d initial states
        return loss, self._gradients(got, info)

    def _gradients(self, args: dict, info: dict) -> dict:
        grads = {key: np.zeros_like(v) for key, v in self.params.items()}
        for name, lm in self.nlm.populations.items():
            pop = self.net.populations[name]
            for j, s in enumerate(lm.states):
                each = getattr(pop, "trainable_init", {}).get(s.name)
                if each is not None:  # the same initial value in every trial
                    g = args[f"a_{name}"][:, j, :].sum(axis=0)
                    grads[f"{name}.{s.name}0"] = g if each else np.asarray(g.sum())
            trained = getattr(pop, "trainable", {})
            if not trained:
                continue
            values = info[name][0]
            per = {p.name: args[f"gP_{name}"][j] for j, p in enumerate(lm.params)}
            gprop = {q: args[f"gQ_{name}"][j] for j, q in enumerate(lm.propagators)}
            chain_propagators(lm, values, self.net.dt, pop.n, per, gprop, wanted=set(trained))
            for k, each in trained.items():
                g = per.get(k, np.zeros(pop.n))
                grads[f"{name}.{k}"] = g.copy() if each else np.asarray(g.sum())
        for j, d in enumerate(self.nlm.deliveries):
            env = self._synaptic_env(d)
            size = self.tables[d.projection]["csr"].n_synapses
            shared = self.tables[d.projection]["csr"].shared
            for var, dexpr in d.grads:
                per = args[f"gf_d{j}"] * per_synapse(dexpr, env, size)
                if shared is not None:  # summed over the synapses that share a value
                    per = np.bincount(shared, per, minlength=grads[f"{d.projection}.{var}"].size)
                grads[f"{d.projection}.{var}"] += per
        return grads

    # -- training ---------------------------------------------------------------------

    def step(self, grads: dict) -> None:
        """One optimiser step of :attr:`params` from ``grads`` (clipped if ``clip``)."""
        scale = 1.0 if self.clip is None else clip_scale(global_norm(grads), self.clip)
        # the chain rule into the logarithms: dL/dlog(p) = p dL/dp
        grads = {k: g * self.params[k] if k in self.log_space else g for k, g in grads.items()}
        self.optimizer.step(self._optimised, grads, scale)
        for k in self.log_space:
            self.params[k][...] = np.exp(self._optimised[k])

    def _train_batch(self, inputs: dict, labels) -> float:
        """One batch of :meth:`fit`: its gradients, then one optimiser step; its loss."""
        loss, grads = self.loss_and_grads(inputs, labels)
        self.step(grads)
        return loss

    def fit(self, inputs: dict, labels, epochs: int = 1, batch_size: int | None = None,
            shuffle: bool = True) -> list[dict]:
        """Train on samples along axis 1 of ``inputs`` (steps, samples, channels) in batches
        of ``batch_size`` (default: the network's batch); returns one record per epoch:
        ``{"epoch", "loss"}`` (the mean of the batches' losses)."""
        epochs = as_count(epochs, "epochs", "BPTT.fit", minimum=0)  # 0: nothing to do
        steps, samples, inputs = self._check_inputs(inputs, "BPTT.fit")
        if labels is None and not self.loss.needs_labels:
            labels = np.zeros(samples)  # a regulariser alone reads no labels
        labels = np.asarray(labels)
        axis = self.loss.label_axis
        if labels.ndim <= axis or labels.shape[axis] != samples:
            raise ShapeError(f"BPTT.fit: {samples} samples but labels of shape {labels.shape}; "
                             f"give one label per sample (axis {axis} of the labels, axis 1 "
                             "of the inputs), in order")
        size = as_count(batch_size if batch_size is not None else self.net.batch,
                        "batch_size", "BPTT.fit")
        rng = np.random.default_rng(self.net.seed)
        history = []
        for epoch in range(epochs):
            order = rng.permutation(samples) if shuffle else np.arange(samples)
            losses = []
            for lo in range(0, samples, size):
                idx = order[lo:lo + size]
                losses.append(self._train_batch({k: v[:, idx] for k, v in inputs.items()},
                                                np.take(labels, idx, axis=axis)))
            history.append({"epoch": epoch, "loss": float(np.mean(losses))})
        return history

    def predict(self, inputs: dict, batch_size: int | None = None) -> np.ndarray:
        """The class of each sample (a cross-entropy loss's arg-max)."""
        steps, samples, inputs = self._check_inputs(inputs, "BPTT.predict")
        size = as_count(batch_size if batch_size is not None else self.net.batch,
                        "batch_size", "BPTT.predict")
        out = []
        for lo in range(0, samples, size):
            part = {k: v[:, lo:lo + size] for k, v in inputs.items()}
            records = self._forward(part, "BPTT.predict")[4]
            out.append(self.loss.predict(records))
        return np.concatenate(out)
