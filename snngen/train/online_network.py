"""Online learning of any :class:`~snngen.Network` (``sg.Online``): the driver over the
network's compiled step, its generated Jacobian kernels and the model-independent
eligibility kernels. The rules and where they apply: :mod:`snngen.derive.online_network`.

Nothing is stored over time: each step runs the network once, forms every population's
Jacobians, updates the eligibility of every trained synapse and parameter and adds its
gradient, so memory grows with the synapses and the batch, not with the sequence.

>>> import numpy as np
>>> import snngen as sg
>>> lif = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v -= 1",
...                      name="lif")
>>> leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="leaky")
>>> net = sg.Network(dt=1e-3, batch=2, dtype="float64")
>>> x = net.input("x", 5)
>>> h = net.population("h", lif, 8, params={"tau": 0.02})
>>> o = net.population("o", leaky, 2, params={"tau": 0.02})
>>> _ = net.connect(x, h, "v += w", w=sg.Trainable(sg.Normal(0.5, 0.3)))
>>> _ = net.connect(h, h, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.1)), delay="1*ms")
>>> _ = net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)))
>>> fit = Online(net, loss=sg.losses.cross_entropy(o.v, over="each"), rule="eprop")
>>> print(fit.plan)
eprop: full local Jacobian, reset detached, surrogate Bellec (gamma 0.3), signal through \
the readout, parameter eligibility yes
  readout o (the loss reads state 0); feedback symmetric
  hidden h: signal into readout input 0 (h_to_o_2)
>>> data = (np.random.default_rng(0).random((20, 4, 5)) < 0.3).astype(float)
>>> loss, grads = fit.loss_and_grads({"x": data}, np.array([0, 1, 0, 1]))
>>> sorted(grads)
['h_to_h_1.w', 'h_to_o_2.w', 'x_to_h_0.w']
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..derive.online import _linear_jacobians
from ..derive.online_network import graph_rule, plan, readout_filter, threshold_value
from ..derive.surrogate import surrogate_spec
from ..errors import InvalidValueError, SnngenError
from ..integrate import DT, REFRACTORY, discretise
from ..runtime import validate
from .checks import as_count
from .network import BPTT


class Online(BPTT):
    """Online learning of ``net`` by an eligibility-trace rule (see
    :mod:`snngen.derive.online_network`): the gradients of a sequence are formed step by step
    as the network runs, and applied after it (:meth:`fit`), like :class:`BPTT`'s.

    Parameters
    ----------
    net, optimizer, clip, progress, parallel
        As for :class:`BPTT`: populations of any neuron models, projections of any
        differentiable ``on_pre`` statements, with delays; what trains is marked
        ``sg.Trainable``.
    loss : snngen.losses.Loss
        A per-step loss of one readout population (no threshold, no outgoing projection):
        ``sg.losses.mse(o.v)`` or ``sg.losses.cross_entropy(o.v, over="each")`` (or
        ``"last"``).
    rule : str
        ``"eprop"`` (Bellec et al. 2020: reset not differentiated, the pseudo-derivative
        ``0.3 * max(0, 1 - |v - v_th| / v_th)``), ``"ostl"``, ``"rflo"``, ``"superspike"``,
        ``"d_rtrl"``, ``"es_d_rtrl"``, ``"ottt"`` or ``"decolle"``
        (:mod:`snngen.derive.online_network` says what each keeps); ``fit.plan`` says how it
        applies to this network.
    feedback : str
        ``"symmetric"``: the learning signal of a hidden neuron is the readout's error sent back
        through the values its own projections into the readout deliver; ``"random"``: through
        fixed random matrices (:attr:`feedback`, one per hidden population, which need no
        projection into the readout).
    surrogate, detach_reset
        Override the rule's choice (e.g. ``rule="eprop", surrogate="fast_sigmoid"``).
    backend : str
        ``"numba"``, ``"cuda"`` or ``"cuda-host"`` (the CUDA kernels compiled for the CPU,
        how they are checked without a GPU): the same kernels' sums, the same results.
    update_every : int or None
        ``None``: :meth:`fit` applies each sequence's gradients after it. A number of steps:
        :meth:`fit` also updates the trained values every ``update_every`` steps within a
        sequence (the gradients accumulated since the last update, one optimiser step), and
        the network and the eligibility traces run on with the new values: learning while
        the sequence runs. A spike in flight (a delay) when an update happens delivers the
        value it was sent with. :meth:`loss_and_grads` never updates.
    """

    _online = True

    def __init__(self, net, loss, rule="eprop", optimizer=None, feedback: str = "symmetric",
                 surrogate=None, detach_reset: bool | None = None, clip: float | None = None,
                 progress: bool | None = None, backend: str = "numba",
                 update_every: int | None = None, parallel: bool = False):
        from ..losses import Loss
        from ..runtime.network import Network
        if not isinstance(net, Network):
            raise InvalidValueError(f"Online: net must be an sg.Network, got "
                                    f"{type(net).__name__}")
        spec = graph_rule(rule, net.dt, where="Online")
        if not isinstance(feedback, str) or feedback not in ("symmetric", "random"):
            raise InvalidValueError(f"Online: feedback must be 'symmetric' or 'random', got "
                                    f"{validate.shown(feedback)}")
        if isinstance(loss, Loss) and not loss.per_step:
            raise InvalidValueError(f"Online: {loss!r} is not a sum of per-step losses, which "
                                    "an online rule needs: use sg.losses.mse or "
                                    "sg.losses.cross_entropy(..., over='each' or 'last')")
        validate.read_flag(detach_reset, "Online: detach_reset", none=True)
        #: steps between updates within a sequence (None: once, after it)
        self.update_every = None if update_every is None else as_count(
            update_every, "update_every (steps)", "Online")
        detach = spec.detach_reset if detach_reset is None else detach_reset
        if surrogate is None:
            surrogate = self._bellec(net, spec) if spec.surrogate == "bellec" \
                else "fast_sigmoid"
        self.rule = spec
        super().__init__(net, loss, optimizer, backend, surrogate, detach, clip,
                         checkpoint_every=1, progress=progress, parallel=parallel)
        longest = {k: int(t["delays"].max(initial=0)) for k, t in self.tables.items()}
        one = {k: bool(t["delays"].size == 0 or t["delays"].min() == t["delays"].max())
               for k, t in self.tables.items()}
        #: where the rule applies and how (printable)
        self.plan = plan(net, self.nlm, loss, spec, feedback, longest, one)
        rng = np.random.default_rng([net.seed, 2])
        n_out = net.populations[self.plan.readout].n
        #: the fixed random feedback matrices (hidden neurons, readout neurons), by hidden
        #: population (feedback="random"); replace their values to choose others
        #: (DECOLLE: each hidden population's fixed random local readout, the same shape)
        self.feedback = {h.name: rng.standard_normal((net.populations[h.name].n, n_out))
                         / np.sqrt(n_out) for h in self.plan.hidden} \
            if feedback == "random" or spec.signal == "local" else {}
        o = self.plan.readout  # the readout's filter, checked now (not after a run's work)
        self._filters(dict(zip((f"P_{o}", f"Q_{o}"), self._parameter_arrays(o)[1:3])))

    @staticmethod
    def _bellec(net, spec) -> object:
        """Bellec's pseudo-derivative as a surrogate: ``triangle`` with ``gamma`` and the
        width ``v_th`` of the spiking populations (which must share it)."""
        widths = set()
        for pop in net.populations.values():
            if pop.kind == "neuron" and pop.model.threshold is not None:
                values = {k: np.asarray(v, float) for k, v in pop.params.items()}
                widths.add(threshold_value(discretise(pop.model, pop.method), values,
                                           f"Online ({spec.name})"))
        if len(widths) > 1:
            raise SnngenError(f"Online ({spec.name}): the spiking populations have different "
                              f"thresholds ({', '.join(f'{w:g}' for w in sorted(widths))}); "
                              "Bellec's pseudo-derivative scales by one: give the surrogate "
                              "explicitly")
        width = widths.pop() if widths else 1.0
        return surrogate_spec("triangle", gamma=spec.gamma, width=width)

    # -- one sequence -------------------------------------------------------------------

    def _filters(self, args: dict) -> dict:
        """(A, b, C) per hidden population: the trace filter and the map from the readout's
        signal (n, k_out, B) to the filter's (n, g, B)."""
        o, lo = self.plan.readout, self.nlm.populations[self.plan.readout]
        n_o, k_o = self.net.populations[o].n, len(lo.states)
        host = self.kernels.host
        pvals = [*host(args[f"P_{o}"]).astype(float), *host(args[f"Q_{o}"]).astype(float)]
        out = {}
        for h in self.plan.hidden:
            if self.rule.signal == "local":  # DECOLLE: the local readout's signal, no memory
                out[h.name] = (np.zeros((1, 1)), np.ones(1), None)
                continue
            a, bx = readout_filter(lo, pvals, self.net.dt, n_o, h.slot, "Online",
                                   need_decay=self.rule.signal == "readout")
            if self.rule.signal == "readout":    # the readout's own decay
                out[h.name] = (a, bx, np.eye(k_o))
            elif self.rule.signal == "instant":  # no memory: this step's signal only
                out[h.name] = (np.zeros((k_o, k_o)), bx, np.eye(k_o))
            else:  # a cascade of fixed filters: stage q adds the new value of stage q - 1
                d = np.asarray(self.rule.filters, float)
                c = np.zeros((k_o, d.size))
                c[:, -1] = bx
                out[h.name] = (np.tril(np.broadcast_to(d, (d.size, d.size))),
                               np.ones(d.size), c)
        return out

    def _leak(self, name: str, args: dict):
        """RFLO's and SuperSpike's Jacobians of ``name``: the update without spike and
        reset, at rest, (n, k, k) and (n, k, m)."""
        lm = self.nlm.populations[name]
        n, k = self.net.populations[name].n, len(lm.states)
        host = self.kernels.host
        rest = [*np.zeros((k, n)), *np.zeros((len(lm.inputs), n)),
                *host(args[f"P_{name}"]).astype(float), *host(args[f"Q_{name}"]).astype(float),
                np.zeros(n, bool), self.net.dt]
        return _linear_jacobians(lm, rest, n, all_inputs=True)

    def _constant(self, name: str) -> bool:
        """Whether the rule's Jacobians of population ``name`` are constants (no state,
        input, spike or refractory clock in them): then each synapse's eligibility vector is
        its presynaptic neuron's, where the neurons share their values."""
        if self.update_every is not None and any(
                getattr(self.net.populations[name], "trainable", {}).values()):
            return False  # updated within a sequence, its neurons' values part
        if self.rule.jacobian == "leak" and name != self.plan.readout:
            return True
        lm = self.nlm.populations[name]
        allowed = {*lm.params, *lm.propagators, DT}
        for wrt in ("states", "inputs"):
            jac = lm.jacobian("next", wrt)
            if jac.free_symbols - allowed or jac.has(REFRACTORY) or any(
                    getattr(type(f), "surrogate", None) or getattr(type(f), "derivative_of",
                                                                   None)
                    for f in jac.atoms(sp.Function)):
                return False
        return True

    def _layouts(self, args: dict) -> dict:
        """The constant Jacobians (J0, JX0) of every population whose neurons share them:
        its synapses of one delay keep presynaptic eligibility vectors (O(neurons) instead
        of O(synapses), the same numbers)."""
        out = {}
        for name in self.nlm.populations:
            if not self._constant(name):
                continue
            j, jx = self._leak(name, args)  # no spike in them: the leak is the Jacobian
            if np.all(j == j[:1]) and np.all(jx == jx[:1]):
                out[name] = (np.ascontiguousarray(j[0]), np.ascontiguousarray(jx[0]))
        return out

    def layout(self) -> dict:
        """``{projection statement: "presynaptic" or "per synapse"}``: how each trained
        synapse's eligibility vector is kept with the current values (see
        :meth:`_layouts`). Draws nothing: asking does not move the runs' random numbers."""
        args = {}
        for name in self.nlm.populations:
            args[f"P_{name}"], args[f"Q_{name}"] = self._parameter_arrays(name)[1:3]
        constant = self._layouts(args)
        return {f"{d.projection}: {d.statement}": "presynaptic" if self._factorised(
            d, constant) else "per synapse" for d in self.nlm.deliveries if d.grads}

    def _factorised(self, d, constant: dict) -> bool:
        delays = self.tables[d.projection]["delays"]
        return d.post in constant and (delays.size == 0 or delays.min() == delays.max())

    def loss_and_grads(self, inputs: dict, labels) -> tuple[float, dict]:
        """One sequence: (loss, {name: gradient estimate}) for every trained value, formed
        online by the rule (the trained values stay as they are)."""
        return self._sequence(inputs, labels, None, "Online.loss_and_grads")

    def _train_batch(self, inputs: dict, labels) -> float:
        loss, grads = self._sequence(inputs, labels, self.update_every, "Online.fit")
        self.step(grads)  # what the sequence's last steps (all of them: None) accumulated
        return loss

    def _refresh(self, args: dict, info: dict) -> None:
        """After an update within a sequence: the parameters, propagators and refractory
        periods the kernels read, and the values the synapses deliver, from the new
        values."""
        for name in self.nlm.populations:
            if getattr(self.net.populations[name], "trainable", None):
                values, *arrays = self._parameter_arrays(name)
                for key, a in zip(("P", "Q", "ref"), arrays):
                    args[f"{key}_{name}"][...] = self.kernels.array(a)
                info[name] = (values, info[name][1])
        for j, d in enumerate(self.nlm.deliveries):
            if d.grads:
                args[f"f_d{j}"][...] = self.kernels.array(
                    self._delivered(d).astype(self.kernels.dtype))

    def _collected(self, elig: dict, par: dict) -> dict:
        """The accumulated gradient sums in the form :meth:`_gradients` reads (host
        memory)."""
        got, host = {}, self.kernels.host
        for name, lm in self.nlm.populations.items():
            g_acc = host(par[name][2]) if name in par else np.zeros(
                (len(lm.params) + len(lm.propagators), self.net.populations[name].n))
            got[f"gP_{name}"], got[f"gQ_{name}"] = g_acc[:len(lm.params)], \
                g_acc[len(lm.params):]
        for j, d in enumerate(self.nlm.deliveries):
            got[f"gf_d{j}"] = host(elig[j][2]) if j in elig else np.zeros(
                self.tables[d.projection]["csr"].n_synapses)
        return got

    def _sequence(self, inputs: dict, labels, every: int | None,
                  where: str) -> tuple[float, dict]:
        """Run one sequence, forming the gradients step by step; with ``every``, one
        optimiser step every ``every`` steps (not after the last: the gradients returned
        are those accumulated since the last update). The arrays live where the kernels
        read them (``xp``: NumPy, or CuPy on a GPU); the loss of each step is formed on the
        host from the readout's states."""
        steps, batch, inputs = self._check_inputs(inputs, where)
        args, info = self._arrays(inputs, steps, batch)
        args = self._device(args)
        ops, xp, host = self.kernels.online(), self.kernels.xp, self.kernels.host
        o, state = self.plan.readout, self.plan.state
        n_o = self.net.populations[o].n
        labels = self._labels(labels, steps, batch, n_o)
        hidden = {h.name: h for h in self.plan.hidden}
        lag = {h.name: h.delay for h in self.plan.hidden if h.delay}  # delays into the readout
        filters = self._filters(args)
        jac, leak, par = {}, {}, {}
        for name, lm in self.nlm.populations.items():
            n, k, m = self.net.populations[name].n, len(lm.states), len(lm.inputs)
            r = len(lm.params) + len(lm.propagators)
            ops.check(k, filters[name][0].shape[0] if name in hidden else 0, "Online")
            jac[name] = [xp.zeros((n, k, k, batch)), xp.zeros((n, k, m, batch)),
                         xp.zeros((n, k, batch)), xp.zeros((n, k, r, batch)),
                         xp.zeros((n, r, batch))]
            if self.rule.jacobian == "leak" and name in hidden:
                leak[name] = [xp.asarray(a) for a in self._leak(name, args)]
            if getattr(self.net.populations[name], "trainable", None):
                g = filters[name][0].shape[0] if name in hidden else 0
                par[name] = [xp.zeros((n, k, r, batch)), xp.zeros((n, r, g, batch)),
                             xp.zeros((r, n)), xp.zeros((n, r, batch, lag[name]))
                             if name in lag else None]
        constant = self._layouts(args)
        elig = {}
        for j, d in enumerate(self.nlm.deliveries):
            if not d.grads:
                continue
            csr = self.tables[d.projection]["csr"]
            k = len(self.nlm.populations[d.post].states)
            g = filters[d.post][0].shape[0] if d.post in hidden else 0
            if self.rule.factorised and d.post in hidden:  # ES-D-RTRL: x_j, per row
                elig[j] = (xp.zeros((csr.n_pre, batch)), None, xp.zeros(csr.n_synapses),
                           xp.zeros((csr.n_pre, batch, lag[d.post])) if d.post in lag
                           else None)
                continue
            rows = csr.n_pre if self._factorised(d, constant) else csr.n_synapses
            # with a delay into the readout: the last traces e of each synapse (a ring)
            ring = (csr.n_synapses, lag[d.post], batch) if d.post in lag else (0, 0, 0)
            elig[j] = (xp.zeros((rows, k, batch)), xp.zeros((csr.n_synapses, g, batch)),
                       xp.zeros(csr.n_synapses), xp.zeros(ring))
        # ES-D-RTRL: the postsynaptic factor ef of every (hidden population, input slot)
        post_traces = {(d.post, d.slot): xp.zeros((self.net.populations[d.post].n,
                                                   len(self.nlm.populations[d.post].states),
                                                   batch))
                       for j, d in enumerate(self.nlm.deliveries) if j in elig
                       and elig[j][1] is None}
        q_rings = {(name, slot): xp.zeros((self.net.populations[name].n, batch, lag[name]))
                   if name in lag else None for name, slot in post_traces}
        total, dt = 0.0, self.net.dt
        k_o = len(self.nlm.populations[o].states)
        delta = xp.zeros((n_o, k_o, batch))  # d loss_t / d s_o(t+1), the trial last
        for t in range(steps):
            self.kernels.forward(t, t + 1, dt, args)
            value, grad = self.loss.at_step(host(args[f"s_{o}"][:, state, :]), labels, t, steps)
            total += value
            delta[:, state, :] = xp.asarray(grad.T)
            for name in self.nlm.populations:
                arrays = jac[name]
                self.kernels.jacobian(name, t, dt, args, arrays)
                if name in leak:
                    arrays[0][...] = leak[name][0][..., None]
                    arrays[1][...] = leak[name][1][..., None]
            signals = {o: delta}
            for h in self.plan.hidden:
                if self.rule.signal == "local":  # DECOLLE: the local readout's own loss
                    z = host(args[f"z_{h.name}"][t]).astype(float)
                    local = self.loss.at_step(z @ self.feedback[h.name], labels, t, steps)[1]
                    signals[h.name] = xp.asarray((self.feedback[h.name] @ local.T)[:, None, :])
                    continue
                signals[h.name] = xp.einsum("iab,aq->iqb", self._signal(h, delta, args, ops),
                                            xp.asarray(filters[h.name][2]))
            # ES-D-RTRL's postsynaptic factors JZ . ef (of lag steps ago, with a delay)
            q = {key: self._lagged(q_rings[key], xp.einsum("icb,icb->ib", jac[key[0]][2], ef),
                                   t) for key, ef in post_traces.items()}
            for j, (eps, trace, gf, ring) in elig.items():
                d = self.nlm.deliveries[j]
                proj, table = self.net.projections[d.projection], self.tables[d.projection]
                indptr, indices = args[f"indptr_{d.projection}"], args[f"indices_{d.projection}"]
                if trace is None:  # ES-D-RTRL: grad += sum_b u_i x_j, then x_j moves on
                    bx = xp.asarray(filters[d.post][1])
                    u = xp.einsum("iqb,q->ib", signals[d.post], bx) * q[d.post, d.slot]
                    ops.outer(indptr, indices, proj.post.start,
                              xp.ascontiguousarray(self._lagged(ring, eps, t)),
                              xp.ascontiguousarray(u), gf)
                    due = t - int(table["delays"][0]) if table["delays"].size else t
                    eps *= self.rule.decay
                    if due >= 0:
                        z = args[f"z_{d.pre}"][due, :, proj.pre.start:proj.pre.start
                                               + eps.shape[0]]
                        eps += z.T.astype(np.float64)
                    continue
                a, b = filters[d.post][:2] if d.post in hidden else (np.zeros((0, 0)),
                                                                     np.zeros(0))
                if self._factorised(d, constant):
                    ops.eligibility_pre(args[f"z_{d.pre}"], t, proj.pre.start, indptr, indices,
                                        proj.post.start,
                                        int(table["delays"][0]) if table["delays"].size else 0,
                                        d.slot, *constant[d.post], jac[d.post][2], eps, trace,
                                        a, b, signals[d.post], gf, d.post in hidden, ring,
                                        lag.get(d.post, 0))
                    continue
                ops.eligibility(args[f"z_{d.pre}"], t, proj.pre.start, indptr, indices,
                                proj.post.start, args[f"delays_{d.projection}"], d.slot,
                                *jac[d.post][:3], eps, trace, a, b, signals[d.post], gf,
                                d.post in hidden, ring, lag.get(d.post, 0))
            a_ = self.rule.decay
            for (name, slot), ef in post_traces.items():  # after every projection read it
                ef[...] = a_ * xp.einsum("iacb,icb->iab", jac[name][0], ef) + \
                    (1 - a_) * jac[name][1][:, :, slot, :]
            for name, (eps, trace, g_acc, ring) in par.items():
                j_, _, jz, jp, jzp = jac[name]
                if name in hidden:  # eps (n, k, r, B), trace (n, r, g, B)
                    a, b = (xp.asarray(f) for f in filters[name][:2])
                    e = self._lagged(ring, xp.einsum("icb,icrb->irb", jz, eps) + jzp, t)
                    eps[...] = xp.einsum("iacb,icrb->iarb", j_, eps) + jp
                    trace[...] = xp.einsum("qc,ircb->irqb", a, trace) + \
                        e[:, :, None, :] * b[None, None, :, None]
                    g_acc += xp.einsum("iqb,irqb->ri", signals[name], trace)
                else:
                    eps[...] = xp.einsum("iacb,icrb->iarb", j_, eps) + jp
                    g_acc += xp.einsum("iab,iarb->ri", delta, eps)
            if every is not None and (t + 1) % every == 0 and t + 1 < steps:
                self.step(self._gradients(self._collected(elig, par), info))
                for entry in (*elig.values(), *par.values()):
                    entry[2][...] = 0.0  # the gradient sums
                self._refresh(args, info)  # and what the rule reads of the new values:
                filters = self._filters(args)
                leak = {name: [xp.asarray(a) for a in self._leak(name, args)]
                        for name in leak}
                updated = self._layouts(args)
                if updated.keys() != constant.keys():  # _constant rules this out
                    raise SnngenError("Online: internal error: an eligibility layout changed "
                                      "within a sequence")
                constant = updated
        return total, self._gradients(self._collected(elig, par), info)

    @staticmethod
    def _lagged(ring, now, t: int):
        """``now`` delayed by the length of ``ring`` (its last axis; None: no delay): the
        value stored that many steps ago (zeros before), keeping ``now`` in its place."""
        if ring is None:
            return now
        slot = t % ring.shape[-1]
        old = ring[..., slot].copy()
        ring[..., slot] = now
        return old

    def _signal(self, h, delta, args: dict, ops):
        """The readout's error ``delta`` (n_out, k_out, B) sent back to hidden population
        ``h``: (n_h, k_out, B)."""
        xp = self.kernels.xp
        n = self.net.populations[h.name].n
        if h.name in self.feedback:
            return xp.einsum("hr,rab->hab", xp.asarray(self.feedback[h.name]), delta)
        out = xp.zeros((n, delta.shape[1], delta.shape[2]))
        for j, d in enumerate(self.nlm.deliveries):
            if d.projection in h.projections and d.post == self.plan.readout:
                proj = self.net.projections[d.projection]
                ops.feedback(delta, proj.pre.start, args[f"indptr_{d.projection}"],
                             args[f"indices_{d.projection}"], proj.post.start,
                             args[f"f_d{j}"].astype(np.float64), out)
        return out

    def _labels(self, labels, steps: int, batch: int, n_out: int):
        """The labels checked once for the whole sequence (each step reads its part)."""
        if self.loss.kind == "mse":
            from ..losses import _targets
            arr = _targets(labels, "mse")
            if arr.shape != (steps, batch, n_out):
                raise InvalidValueError(f"Online: mse targets must have the readout's shape "
                                        f"(steps, batch, neurons) = {(steps, batch, n_out)}, "
                                        f"got {arr.shape}")
            return arr
        from .checks import check_labels
        return check_labels(labels, batch, n_out, "Online")
