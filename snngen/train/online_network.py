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

from ..backends.numba.online_network import eligibility, feedback
from ..derive.online import _linear_jacobians
from ..derive.online_network import graph_rule, plan, readout_filter, threshold_value
from ..derive.surrogate import surrogate_spec
from ..errors import InvalidValueError, SnngenError
from ..integrate import discretise
from ..runtime import validate
from .network import BPTT


class Online(BPTT):
    """Online learning of ``net`` by an eligibility-trace rule (see
    :mod:`snngen.derive.online_network`): the gradients of a sequence are formed step by step
    as the network runs, and applied after it (:meth:`fit`), like :class:`BPTT`'s.

    Parameters
    ----------
    net, optimizer, clip, progress
        As for :class:`BPTT`: populations of any neuron models, projections of any
        differentiable ``on_pre`` statements, with delays; what trains is marked
        ``sg.Trainable``.
    loss : snngen.losses.Loss
        A per-step loss of one readout population (no threshold, no outgoing projection):
        ``sg.losses.mse(o.v)`` or ``sg.losses.cross_entropy(o.v, over="each")`` (or
        ``"last"``).
    rule : str
        ``"eprop"`` (Bellec et al. 2020: reset not differentiated, the pseudo-derivative
        ``0.3 * max(0, 1 - |v - v_th| / v_th)``), ``"ostl"``, ``"rflo"``, ``"superspike"``
        or ``"d_rtrl"``.
    feedback : str
        ``"symmetric"``: the learning signal of a hidden neuron is the readout's error sent back
        through the values its own projections into the readout deliver; ``"random"``: through
        fixed random matrices (:attr:`feedback`, one per hidden population, which need no
        projection into the readout).
    surrogate, detach_reset
        Override the rule's choice (e.g. ``rule="eprop", surrogate="fast_sigmoid"``).
    """

    _online = True

    def __init__(self, net, loss, rule="eprop", optimizer=None, feedback: str = "symmetric",
                 surrogate=None, detach_reset: bool | None = None, clip: float | None = None,
                 progress: bool | None = None, backend: str = "numba"):
        from ..losses import Loss
        from ..runtime.network import Network
        if not isinstance(net, Network):
            raise InvalidValueError(f"Online: net must be an sg.Network, got "
                                    f"{type(net).__name__}")
        spec = graph_rule(rule, net.dt, where="Online")
        if backend != "numba":
            raise InvalidValueError(f"Online: backend {validate.shown(backend)} is not built "
                                    "for online rules on a network yet; use 'numba'")
        if not isinstance(feedback, str) or feedback not in ("symmetric", "random"):
            raise InvalidValueError(f"Online: feedback must be 'symmetric' or 'random', got "
                                    f"{validate.shown(feedback)}")
        if isinstance(loss, Loss) and not loss.per_step:
            raise InvalidValueError(f"Online: {loss!r} is not a sum of per-step losses, which "
                                    "an online rule needs: use sg.losses.mse or "
                                    "sg.losses.cross_entropy(..., over='each' or 'last')")
        validate.read_flag(detach_reset, "Online: detach_reset", none=True)
        detach = spec.detach_reset if detach_reset is None else detach_reset
        if surrogate is None:
            surrogate = self._bellec(net, spec) if spec.surrogate == "bellec" \
                else "fast_sigmoid"
        self.rule = spec
        super().__init__(net, loss, optimizer, "numba", surrogate, detach, clip,
                         checkpoint_every=1, progress=progress)
        longest = {k: int(t["delays"].max(initial=0)) for k, t in self.tables.items()}
        #: where the rule applies and how (printable)
        self.plan = plan(net, self.nlm, loss, spec, feedback, longest)
        rng = np.random.default_rng([net.seed, 2])
        n_out = net.populations[self.plan.readout].n
        #: the fixed random feedback matrices (hidden neurons, readout neurons), by hidden
        #: population (feedback="random"); replace their values to choose others
        self.feedback = {h.name: rng.standard_normal((net.populations[h.name].n, n_out))
                         / np.sqrt(n_out) for h in self.plan.hidden} \
            if feedback == "random" else {}

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
        signal (B, n, k_out) to the filter's (B, n, g)."""
        o, lo = self.plan.readout, self.nlm.populations[self.plan.readout]
        n_o, k_o = self.net.populations[o].n, len(lo.states)
        pvals = [*args[f"P_{o}"].astype(float), *args[f"Q_{o}"].astype(float)]
        out = {}
        for h in self.plan.hidden:
            a, bx = readout_filter(lo, pvals, self.net.dt, n_o, h.slot, "Online")
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
        rest = [*np.zeros((k, n)), *np.zeros((len(lm.inputs), n)),
                *args[f"P_{name}"].astype(float), *args[f"Q_{name}"].astype(float),
                np.zeros(n, bool), self.net.dt]
        return _linear_jacobians(lm, rest, n, all_inputs=True)

    def loss_and_grads(self, inputs: dict, labels) -> tuple[float, dict]:
        """One sequence: (loss, {name: gradient estimate}) for every trained value, formed
        online by the rule."""
        steps, batch, inputs = self._check_inputs(inputs, "Online.loss_and_grads")
        args, info = self._arrays(inputs, steps, batch)
        o, state = self.plan.readout, self.plan.state
        n_o = self.net.populations[o].n
        labels = self._labels(labels, steps, batch, n_o)
        hidden = {h.name: h for h in self.plan.hidden}
        filters = self._filters(args)
        jac, leak, par = {}, {}, {}
        for name, lm in self.nlm.populations.items():
            n, k, m = self.net.populations[name].n, len(lm.states), len(lm.inputs)
            r = len(lm.params) + len(lm.propagators)
            jac[name] = [np.zeros((batch, n, k, k)), np.zeros((batch, n, k, m)),
                         np.zeros((batch, n, k)), np.zeros((batch, n, k, r)),
                         np.zeros((batch, n, r))]
            if self.rule.jacobian == "leak" and name in hidden:
                leak[name] = self._leak(name, args)
            if getattr(self.net.populations[name], "trainable", None):
                g = filters[name][0].shape[0] if name in hidden else 0
                par[name] = [np.zeros((batch, n, k, r)), np.zeros((batch, n, r, g)),
                             np.zeros((r, n))]
        elig = {}
        for j, d in enumerate(self.nlm.deliveries):
            if not d.grads:
                continue
            size = self.tables[d.projection]["csr"].n_synapses
            k = len(self.nlm.populations[d.post].states)
            g = filters[d.post][0].shape[0] if d.post in hidden else 0
            elig[j] = (np.zeros((batch, size, k)), np.zeros((batch, size, g)), np.zeros(size))
        total, dt = 0.0, self.net.dt
        k_o = len(self.nlm.populations[o].states)
        delta = np.zeros((batch, n_o, k_o))
        for t in range(steps):
            self.kernels.forward(t, t + 1, dt, args)
            value, grad = self.loss.at_step(args[f"s_{o}"][:, state, :], labels, t, steps)
            total += value
            delta[:, :, state] = grad
            for name in self.nlm.populations:
                arrays = jac[name]
                getattr(self.kernels.module, f"jac_{name}")(
                    args[f"ts_{name}"][0], args[f"tx_{name}"][0], args[f"tr_{name}"][0],
                    args[f"z_{name}"][t], args[f"P_{name}"], args[f"Q_{name}"], dt, 0.0, t,
                    args[f"N_{name}"][t], *arrays)
                if name in leak:
                    arrays[0][...] = leak[name][0]
                    arrays[1][...] = leak[name][1]
            signals = {o: delta}
            for h in self.plan.hidden:
                signals[h.name] = self._signal(h, delta, args) @ filters[h.name][2]
            for j, (eps, trace, gf) in elig.items():
                d = self.nlm.deliveries[j]
                proj, table = self.net.projections[d.projection], self.tables[d.projection]
                a, b = filters[d.post][:2] if d.post in hidden else (np.zeros((0, 0)),
                                                                     np.zeros(0))
                eligibility(args[f"z_{d.pre}"], t, proj.pre.start, table["indptr"],
                            table["indices"], proj.post.start, table["delays"], d.slot,
                            *jac[d.post][:3], eps, trace, a, b, signals[d.post], gf,
                            d.post in hidden)
            for name, (eps, trace, g_acc) in par.items():
                j_, _, jz, jp, jzp = jac[name]
                if name in hidden:
                    a, b, _ = filters[name]
                    e = np.einsum("bic,bicr->bir", jz, eps) + jzp
                    eps[...] = np.einsum("biac,bicr->biar", j_, eps) + jp
                    trace[...] = np.einsum("qc,birc->birq", a, trace) + e[..., None] * b
                    g_acc += np.einsum("biq,birq->ri", signals[name], trace)
                else:
                    eps[...] = np.einsum("biac,bicr->biar", j_, eps) + jp
                    g_acc += np.einsum("bia,biar->ri", delta, eps)
        got = {}
        for name, lm in self.nlm.populations.items():
            g_acc = par[name][2] if name in par else np.zeros(
                (len(lm.params) + len(lm.propagators), self.net.populations[name].n))
            got[f"gP_{name}"], got[f"gQ_{name}"] = g_acc[:len(lm.params)], \
                g_acc[len(lm.params):]
        for j, d in enumerate(self.nlm.deliveries):
            got[f"gf_d{j}"] = elig[j][2] if j in elig else np.zeros(
                self.tables[d.projection]["csr"].n_synapses)
        return total, self._gradients(got, info)

    def _signal(self, h, delta: np.ndarray, args: dict) -> np.ndarray:
        """The readout's error sent back to hidden population ``h`` (B, n_h, k_out)."""
        n = self.net.populations[h.name].n
        if h.name in self.feedback:
            return np.einsum("hr,bra->bha", self.feedback[h.name], delta)
        out = np.zeros((delta.shape[0], n, delta.shape[2]))
        for j, d in enumerate(self.nlm.deliveries):
            if d.projection in h.projections and d.post == self.plan.readout:
                proj, table = self.net.projections[d.projection], self.tables[d.projection]
                feedback(delta, proj.pre.start, table["indptr"], table["indices"],
                         proj.post.start, args[f"f_d{j}"].astype(float), out)
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
