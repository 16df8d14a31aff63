"""Compiled online learning for one recurrent population: e-prop, OSTL, RFLO, SuperSpike
and DECOLLE (:class:`snngen.derive.online.OnlineRule`), with Numba and on the CUDA backend.

The kernel is generated from the LearningModel like the BPTT kernels: the model's step and its
neuron-local Jacobians (``d next / d state``, ``d next / d input``, ``d z / d state``...,
derived symbolically) drive eligibility vectors, per synapse over the CSR synapses that exist,
or one per presynaptic neuron when the compiler proves that they factorise; a leaky readout
``y_t = kappa y_{t-1} + z_t @ w_out`` gives the learning signal ``L_i = sum_o B_io e_o``
(``e``: the error of the readout, MSE or softmax cross-entropy). Everything the next step
needs lives in a :class:`OnlineState`, so input can stream in chunks of any length and the
weights can change between chunks (:class:`OnlineLearner`): memory does not depend on the
sequence length. Checked against the NumPy reference :func:`snngen.derive.online.eprop`
in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import sympy as sp

from .. import __version__, cache
from ..backends.numba.arrays import kernel_array
from ..backends.numba.printer import NumbaPrinter
from ..backends.templates import environment
from ..derive.bodies import cse_lines, kernel_renaming
from ..derive.online import (
    OnlineRule,
    _linear_jacobians,
    eligibility_layout,
    online_rule,
)
from ..derive.reference import chain_propagators, propagator_values, refractory_steps
from ..derive.step import LearningModel
from ..derive.surrogate import surrogate_function
from ..errors import InvalidValueError, ShapeError, SnngenError, shown
from .checks import (
    as_count,
    as_real,
    check_broadcast,
    check_csr,
    check_csr_once,
    check_model_params,
    check_shape,
    check_spikes,
    check_weights,
)
from .optim import Adam


class CompiledEprop:
    """The online-learning kernels of ``lm`` (one input target), every rule and layout."""

    def __init__(self, lm: LearningModel, dtype: str = "float64"):
        if len(lm.inputs) != 1:
            raise SnngenError("online learning currently supports exactly one input target")
        self.lm, self.dtype = lm, np.dtype(dtype)
        ren = kernel_renaming(lm)
        pr = NumbaPrinter(dtype)
        k = len(lm.states)
        exprs, names, npq = _kernel_expressions(lm)
        body = cse_lines(ren, exprs, names, pr, "_e")
        x = sp.Symbol("x", real=True)
        source = environment().get_template("numba/eprop.py.j2").render(
            version=__version__, model=lm.discrete.model.name, dtype=dtype, k=k, npq=npq,
            states=[ren[s].name for s in lm.states], input=lm.inputs[0].name,
            params=[ren[p].name for p in lm.params], props=[ren[q].name for q in lm.propagators],
            body=body, surrogate=pr.doprint(surrogate_function(lm.surrogate).expression(x)))
        self.module, self.source_path = cache.generated_module(source, "eprop")
        self.npq = npq

    def state(self, params: dict, dt: float, batch: int, n: int, in_csr, rec_csr,
              n_out: int, s0=None, rule="eprop", filters=None,
              layout: str = "auto") -> OnlineState:
        """Fresh online state (eligibility, readout, neuron states) for ``batch`` trials.

        ``rule``: one of :data:`snngen.derive.online.RULES` or an
        :class:`~snngen.derive.online.OnlineRule` (e-prop, OSTL and RFLO filter their traces
        with the readout decay passed to each :meth:`step`); ``filters`` overrides the
        rule's trace filters with fixed decays. ``layout``: ``"auto"`` stores presynaptic traces
        (O(neurons)) when the compiler proves that the eligibility factorises (see
        :meth:`layout_of`), else per-synapse vectors; ``"per_synapse"`` or
        ``"factorised"`` force one (the latter raises when it does not hold)."""
        where = f"{type(self).__name__}.state"
        batch, n = as_count(batch, "batch", where), as_count(n, "n", where)
        n_out = as_count(n_out, "n_out", where)
        dt = as_real(dt, "dt", where, 0, open_low=True)
        check_layout(layout, where)
        check_csr(in_csr, getattr(in_csr, "n_pre", None), n, "in_csr (input synapses)", where)
        check_csr(rec_csr, n, n, "rec_csr (recurrent synapses)", where)
        check_model_params(self.lm, params, where, per_neuron=n)
        from ..runtime.validate import check_parameter_values
        check_parameter_values(self.lm.discrete.model, params, where)
        if s0 is not None:
            check_broadcast(s0, (batch, n, len(self.lm.states)), "s0 (trials, neurons, "
                            "states)", where)
        spec = online_rule(rule, dt, filters, where=where)
        f, k, lm = self.dtype, len(self.lm.states), self.lm
        params = {p: np.broadcast_to(np.asarray(v, float), (n,)) for p, v in params.items()}
        props = propagator_values(lm, params, dt, n)
        p_arr = np.array([params[p.name] for p in lm.params], f).reshape(-1, n)
        q_arr = np.array([props[q] for q in lm.propagators], f).reshape(-1, n)
        j_lin, jx_lin = np.zeros((n, k, k), f), np.zeros((n, k), f)
        if spec.jacobian == "leak":
            rest = [*np.zeros((k, n)), np.zeros(n), *p_arr.astype(float), *q_arr.astype(float),
                    np.zeros(n, bool), dt]
            j, jx = _linear_jacobians(lm, rest, n)
            j_lin, jx_lin = j.astype(f), jx.astype(f)
        chosen, reason = self.layout_of(spec, params, j_lin, jx_lin, layout)
        s = np.zeros((batch, n, k), f) if s0 is None else np.array(
            np.broadcast_to(s0, (batch, n, k)), f)
        nf = spec.n_filters
        if chosen == "factorised":
            elig = {"eps_in": np.zeros((batch, in_csr.n_pre, k), f),
                    "eps_rec": np.zeros((batch, rec_csr.n_pre, k), f),
                    "ebar_in": np.zeros((batch, 0, 0), f),
                    "ebar_rec": np.zeros((batch, 0, 0), f)}
        else:
            elig = {"eps_in": np.zeros((batch, in_csr.n_synapses, k), f),
                    "ebar_in": np.zeros((batch, in_csr.n_synapses, nf), f),
                    "eps_rec": np.zeros((batch, rec_csr.n_synapses, k), f),
                    "ebar_rec": np.zeros((batch, rec_csr.n_synapses, nf), f)}
        npq = self.npq if spec.params else 0
        return OnlineState(
            params=params, dt=dt, rule=spec, layout=chosen,
            layout_reason=reason, p_arr=p_arr, q_arr=q_arr,
            ref=refractory_steps(lm, params, dt, n), state=s,
            last=np.full((batch, n), -(2**40), np.int64), z_prev=np.zeros((batch, n), f),
            **elig, eps_p=np.zeros((batch, n, k, npq), f),
            ebar_p=np.zeros((batch, n, npq, nf), f),
            y=np.zeros((batch, n_out), f), zbar=np.zeros((batch, n), f), j_lin=j_lin,
            jx_lin=jx_lin)

    def layout_of(self, spec, params: dict, j_lin, jx_lin, layout: str = "auto"):
        """(layout, reason): ``"factorised"`` when every eligibility component is a
        presynaptic trace for this rule and these parameter values, else ``"per_synapse"``.

        Factorising needs (1) no trace filter (a filtered product of a postsynaptic and a
        presynaptic factor is per synapse); (2) a shared Jacobian: with the model's own
        Jacobian, :func:`~snngen.derive.online.eligibility_layout` must prove every
        component shared (no state, spike or surrogate in the rows), given which parameters
        differ between neurons; with the leak Jacobian, its values must be equal for every
        neuron."""
        check_layout(layout, f"{type(self).__name__}.layout_of")
        if layout == "per_synapse":
            return layout, "forced"
        if spec.n_filters:
            why = (f"{spec.name} filters the eligibility trace ({spec.n_filters} stage(s)),"
                   " which needs per-synapse state; pass filters=() to drop the filter")
        elif spec.jacobian == "leak":
            same = bool(np.all(j_lin == j_lin[:1]) and np.all(jx_lin == jx_lin[:1]))
            why = None if same else "the leak Jacobian differs between neurons " \
                "(heterogeneous parameters)"
        else:
            varying = [p for p, v in params.items() if np.ptp(v) != 0]
            proof = eligibility_layout(self.lm, per_neuron=varying)
            why = None if not proof.per_synapse else \
                "; ".join(f"{s}: {proof.reasons[s]}" for s in proof.per_synapse)
        if why is None:
            return "factorised", "every eligibility component is a presynaptic trace"
        if layout == "factorised":
            raise SnngenError(f"the eligibility of {self.lm.discrete.model.name!r} under "
                              f"{spec.name} does not factorise: {why}")
        return "per_synapse", why

    def step(self, st: OnlineState, x_in: np.ndarray, targets: np.ndarray, in_csr, w_in,
             rec_csr, w_rec, w_out, kappa: float, feedback=None, wanted=None, mask=None,
             loss: str = "mse"):
        """Run ``len(x_in)`` more steps (x_in (T, B, n_in), targets (T, B, n_out)); returns
        (loss, gradients accumulated over these steps, readout (T, B, n_out)). ``mask``
        (T, B), default ones: each step's error is multiplied by it (``loss="mse"``:
        ``1/2 sum (mask (y - y*))^2``; ``"cross_entropy"``: ``-sum mask y* log softmax(y)``,
        targets one-hot)."""
        _check_step(self, st, x_in, targets, in_csr, w_in, rec_csr, w_rec, w_out, kappa,
                    feedback, mask, loss, "CompiledEprop.step")
        f, spec = self.dtype, st.rule
        steps, batch, _ = x_in.shape
        n = st.state.shape[1]
        chunks = max(1, min(batch, numba.get_num_threads()))
        g_in = np.zeros((chunks, in_csr.n_synapses), f)
        g_rec = np.zeros((chunks, rec_csr.n_synapses), f)
        g_p = np.zeros((chunks, n, st.eps_p.shape[3]), f)
        g_out = np.zeros((chunks,) + np.shape(w_out), f)
        losses = np.zeros(chunks, f)
        out = np.zeros((steps, batch, np.shape(w_out)[1]), f)
        w_out = kernel_array(w_out, f)
        fb = w_out if feedback is None else kernel_array(feedback, f)
        run = self.module.run_factorised if st.layout == "factorised" else self.module.run
        elig = (st.eps_in, st.eps_rec) if st.layout == "factorised" else (
            st.eps_in, st.ebar_in, st.eps_rec, st.ebar_rec)
        run(st.t, kernel_array(x_in, f), in_csr.indptr, in_csr.indices,
            kernel_array(w_in, f), rec_csr.indptr, rec_csr.indices, kernel_array(w_rec, f), w_out,
            fb, kernel_array(targets, f), f.type(kappa), st.state, st.p_arr, st.q_arr,
            st.ref, st.dt, st.last, st.z_prev, *elig, st.eps_p, st.ebar_p, st.y, st.zbar,
            g_in, g_rec, g_p, g_out, losses, out, spec.jacobian == "leak", st.j_lin,
            st.jx_lin, np.ones((steps, batch), f) if mask is None else
            kernel_array(np.broadcast_to(mask, (steps, batch)), f),
            kernel_array(spec.decays(kappa), f), spec.params, loss == "cross_entropy")
        st.t += steps
        grads = {"w_in": g_in.sum(0).astype(np.float64), "w_rec": g_rec.sum(0).astype(
            np.float64), "w_out": g_out.sum(0).astype(np.float64)}
        _parameter_grads(self.lm, st, g_p.sum(0).astype(np.float64), wanted, grads)
        return float(losses.sum()), grads, out

    def memory_bytes(self, st: OnlineState) -> int:
        """Bytes of online state: eligibility, readout, neurons."""
        return sum(v.nbytes for v in vars(st).values() if isinstance(v, np.ndarray))


def _check_step(kernel, st, x_in, targets, in_csr, w_in, rec_csr, w_rec, w_out, kappa,
                feedback, mask, loss: str, where: str) -> None:
    """What a step of the online kernels reads, which they index without bounds checks:
    input (T, B, n_in) with n_in the rows of ``in_csr`` and B the state's trials, targets
    (T, B, n_out), the synapse tables the state's eligibility was made for, one weight per
    synapse, readout and feedback (n, n_out), a mask that broadcasts to (T, B), all finite;
    the readout decay ``kappa`` in [0, 1]. Tables are checked once per kernel object."""
    if not isinstance(st, OnlineState):
        raise InvalidValueError(f"{where}: st must be an OnlineState (from .state(...)), got "
                                f"{type(st).__name__}")
    if not isinstance(loss, str) or loss not in ("mse", "cross_entropy"):
        raise SnngenError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")
    if st.rule.symmetric and feedback is not None:
        raise SnngenError(f"{st.rule.name} uses the readout weights as feedback; do not pass "
                          "feedback")
    batch, n, _ = st.state.shape
    n_out = st.y.shape[1]
    seen = kernel.__dict__.setdefault("_checked_tables", {})
    check_csr_once(seen, rec_csr, n, n, "rec_csr (recurrent synapses)", where)
    check_csr_once(seen, in_csr, getattr(in_csr, "n_pre", None), n, "in_csr (input synapses)",
                   where)
    factorised = st.layout == "factorised"
    for name, csr, eps in (("in_csr", in_csr, st.eps_in), ("rec_csr", rec_csr, st.eps_rec)):
        size = csr.n_pre if factorised else csr.n_synapses
        if eps.shape[1] != size:
            raise ShapeError(f"{where}: {name} is not the table this online state was made "
                             f"for ({eps.shape[1]} {'rows' if factorised else 'synapses'} "
                             f"there, {size} here); make a new state with .state(...)")
    steps, got = check_spikes(x_in, in_csr.n_pre, where,
                              f"in_csr has {in_csr.n_pre} rows")
    if got != batch:
        raise ShapeError(f"{where}: the input has {got} trials (axis 1), the online state "
                         f"{batch}; make a state for {got} trials with .state(...)")
    check_shape(targets, (steps, batch, n_out), "targets (steps, trials, readouts)", where)
    check_weights(w_in, in_csr, "w_in", where)
    check_weights(w_rec, rec_csr, "w_rec", where)
    check_shape(w_out, (n, n_out), "w_out (neurons, readouts)", where)
    if feedback is not None:
        check_shape(feedback, (n, n_out), "feedback (neurons, readouts)", where)
    if mask is not None:
        check_broadcast(mask, (steps, batch), "mask (steps, trials)", where)
    as_real(kappa, "kappa (readout decay per step)", where, 0, 1)


def _parameter_grads(lm, st, total, wanted, grads: dict) -> None:
    """Per-neuron totals over (parameters, propagators) (n, P+Q) into ``grads``, the
    propagators chained to the parameters they come from (rules with parameter
    eligibility only)."""
    if not st.rule.params:
        return
    n, P = total.shape[0], len(lm.params)  # noqa: N806
    grads.update({p.name: total[:, r].copy() for r, p in enumerate(lm.params)})
    chain_propagators(lm, st.params, st.dt, n, grads,
                      {q: total[:, P + r] for r, q in enumerate(lm.propagators)}, wanted)


@dataclass
class OnlineState:
    """Everything an online run continues from; its size does not depend on time."""

    params: dict
    dt: float
    rule: OnlineRule
    layout: str
    layout_reason: str
    p_arr: np.ndarray
    q_arr: np.ndarray
    ref: np.ndarray
    state: np.ndarray
    last: np.ndarray
    z_prev: np.ndarray
    eps_in: np.ndarray
    ebar_in: np.ndarray
    eps_rec: np.ndarray
    ebar_rec: np.ndarray
    eps_p: np.ndarray
    ebar_p: np.ndarray
    y: np.ndarray
    zbar: np.ndarray
    j_lin: np.ndarray
    jx_lin: np.ndarray
    t: int = 0

    def eligibility_bytes(self) -> int:
        """Bytes of eligibility state (vectors and filter stages, weights and parameters)."""
        return sum(a.nbytes for a in (self.eps_in, self.ebar_in, self.eps_rec, self.ebar_rec,
                                      self.eps_p, self.ebar_p))

    def describe(self) -> str:
        """The rule, the layout chosen and why, and what the eligibility costs."""
        size = self.eligibility_bytes()
        size = f"{size / 2**20:.2f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
        return (f"{self.rule}\nlayout: {self.layout} ({self.layout_reason}); eligibility {size} "
                f"for {self.state.shape[0]} trial(s)")


def check_layout(layout, where: str) -> None:
    """``layout`` is one of ``"auto"``, ``"per_synapse"`` or ``"factorised"``."""
    if not isinstance(layout, str) or layout not in ("auto", "per_synapse", "factorised"):
        raise InvalidValueError(f"{where}: layout must be 'auto', 'per_synapse' or "
                                f"'factorised', got {shown(layout)}")


class OnlineLearner:
    """Online training of input, recurrent and readout weights with any rule of
    :data:`snngen.derive.online.RULES` (e-prop, OSTL, RFLO, SuperSpike, DECOLLE).

    ``update_every`` steps (or once per sequence with ``None``), the gradients accumulated so
    far go to the optimiser (Adam by default, shared with BPTT); the eligibility and neuron
    states carry on, so a long input can be fed in chunks (:meth:`feed`) and nothing of its
    history is stored.

    Feedback: ``None`` is symmetric (the readout weights), an (n, n_out) array is fixed
    random feedback, and ``adaptive_feedback=True`` makes that array adaptive (Bellec et al.
    2020): it receives every change of ``w_out`` too, and both decay by
    ``feedback_decay`` per update. DECOLLE's readout is a fixed random local readout: by
    default it trains ``w_in`` and ``w_rec`` only. ``loss`` is ``"mse"`` or
    ``"cross_entropy"``; ``filters`` and ``layout`` go to :meth:`CompiledEprop.state`.
    """

    def __init__(self, kernel: CompiledEprop, params: dict, dt: float, in_csr, rec_csr,
                 weights: dict, kappa: float, rule="eprop", feedback=None,
                 update_every: int | None = None, optimizer=None, trainable=None,
                 loss: str = "mse", filters=None, layout: str = "auto",
                 adaptive_feedback: bool = False, feedback_decay: float = 0.0):
        where = "OnlineLearner"
        # rule and filters are used at each reset (in feed): checked here, where they are given
        dt = as_real(dt, "dt", where, 0, open_low=True)
        online_rule(rule, dt, filters, where=where)  # a name of RULES or an OnlineRule
        check_layout(layout, where)
        if trainable is None:
            trainable = ("w_in", "w_rec") if rule == "decolle" else ("w_in", "w_rec", "w_out")
        if not isinstance(trainable, (list, tuple, set, frozenset)) or \
                not all(isinstance(name, str) for name in trainable):
            raise InvalidValueError(f"{where}: trainable must be a list of weight names among "
                                    f"w_in, w_rec, w_out, got {shown(trainable)}")
        unknown = set(trainable) - {"w_in", "w_rec", "w_out"}
        if unknown:
            raise SnngenError(f"OnlineLearner: cannot train {sorted(unknown)}; choose among "
                              "w_in, w_rec, w_out")
        if not isinstance(loss, str) or loss not in ("mse", "cross_entropy"):
            raise SnngenError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")
        if not isinstance(adaptive_feedback, (bool, np.bool_)):
            raise InvalidValueError(f"{where}: adaptive_feedback must be True or False, got "
                                    f"{shown(adaptive_feedback)}")
        if adaptive_feedback and (feedback is None or "w_out" not in trainable):
            raise SnngenError("adaptive feedback needs an initial feedback matrix (feedback=) "
                              "and a trained readout ('w_out' in trainable)")
        if optimizer is not None and not callable(getattr(optimizer, "step", None)):
            raise InvalidValueError(f"{where}: optimizer must be an optimiser with a step "
                                    f"method (e.g. snngen.train.optim.Adam(lr=1e-3)), got "
                                    f"{shown(optimizer)}")
        if not isinstance(weights, dict) or not {"w_in", "w_rec", "w_out"} <= set(weights):
            raise InvalidValueError(f"{where}: weights must be a dict with w_in, w_rec and "
                                    f"w_out, got {type(weights).__name__} {list(weights)}")
        n = getattr(rec_csr, "n_pre", None)
        check_csr(rec_csr, n, n, "rec_csr (recurrent synapses)", where)
        check_csr(in_csr, getattr(in_csr, "n_pre", None), n, "in_csr (input synapses)", where)
        check_weights(weights["w_in"], in_csr, "w_in", where)
        check_weights(weights["w_rec"], rec_csr, "w_rec", where)
        if np.ndim(weights["w_out"]) != 2 or np.shape(weights["w_out"])[0] != n:
            raise ShapeError(f"{where}: w_out must have shape (neurons, readouts) = ({n}, ...), "
                             f"got {np.shape(weights['w_out'])}")
        check_shape(weights["w_out"], np.shape(weights["w_out"]), "w_out", where)
        kappa = as_real(kappa, "kappa (readout decay per step)", where, 0, 1)
        if update_every is not None:
            update_every = as_count(update_every, "update_every (steps)", where)
        feedback_decay = as_real(feedback_decay, "feedback_decay", where, 0, 1, open_high=True)
        if feedback is not None:
            check_shape(feedback, np.shape(weights["w_out"]), "feedback (the readout's shape: "
                        "neurons, readouts)", where)
            feedback = np.array(feedback, float)
        self.trainable = tuple(trainable)
        self.kernel, self.params, self.dt = kernel, params, dt
        self.in_csr, self.rec_csr, self.weights = in_csr, rec_csr, weights
        self.kappa, self.rule, self.feedback = kappa, rule, feedback
        self.update_every, self.loss = update_every, loss
        self.filters, self.layout = filters, layout
        self.adaptive_feedback, self.feedback_decay = adaptive_feedback, feedback_decay
        self.opt = optimizer or Adam(lr=1e-3)
        self.state = None

    def reset(self, batch: int):
        """Start new sequences (fresh neuron states, eligibility and readout)."""
        n = self.rec_csr.n_pre
        self.state = self.kernel.state(self.params, self.dt, batch, n, self.in_csr,
                                       self.rec_csr, np.shape(self.weights["w_out"])[1],
                                       rule=self.rule, filters=self.filters,
                                       layout=self.layout)

    def feed(self, x_in: np.ndarray, targets: np.ndarray, learn: bool = True, mask=None):
        """Feed (T, B, n_in) input with its (T, B, n_out) targets (``mask`` (T, B): which
        steps' errors count); returns (loss, readout). Checked whole before the first step
        (shapes against the network, finite values): a bad chunk changes nothing."""
        where = "OnlineLearner.feed"
        if not isinstance(learn, (bool, np.bool_)):
            raise InvalidValueError(f"{where}: learn must be True or False, got {learn!r}")
        steps, batch = check_spikes(x_in, self.in_csr.n_pre, where,
                                    f"in_csr has {self.in_csr.n_pre} rows")
        n_out = np.shape(self.weights["w_out"])[1]
        check_shape(targets, (steps, batch, n_out), "targets (steps, trials, readouts)", where)
        if mask is not None:
            check_broadcast(mask, (steps, batch), "mask (steps, trials)", where)
            mask = np.broadcast_to(mask, (steps, batch))
        if self.state is None or self.state.state.shape[0] != x_in.shape[1]:
            self.reset(x_in.shape[1])
        every = self.update_every or x_in.shape[0]
        total, outs = 0.0, []
        for lo in range(0, x_in.shape[0], every):
            hi = min(lo + every, x_in.shape[0])
            loss, grads, out = self.kernel.step(
                self.state, x_in[lo:hi], targets[lo:hi], self.in_csr, self.weights["w_in"],
                self.rec_csr, self.weights["w_rec"], self.weights["w_out"], self.kappa,
                self.feedback, wanted=set(), mask=None if mask is None else mask[lo:hi],
                loss=self.loss)
            if learn:  # in place: the arrays of self.weights change
                before = np.array(self.weights["w_out"]) if self.adaptive_feedback else None
                self.opt.step({k: self.weights[k] for k in self.trainable},
                              {k: grads[k] for k in self.trainable})
                if self.adaptive_feedback:
                    self.feedback += self.weights["w_out"] - before
                    if self.feedback_decay:
                        self.feedback *= 1.0 - self.feedback_decay
                        self.weights["w_out"] *= 1.0 - self.feedback_decay
            total += loss
            outs.append(out)
        return total, np.concatenate(outs, axis=0)


def _kernel_expressions(lm: LearningModel):
    """The model's step and every Jacobian entry the online kernels need, with their names."""
    k = len(lm.states)
    jn_s, jn_x = lm.jacobian("next", "states"), lm.jacobian("next", "inputs")
    jz_s, jz_x = lm.jacobian("spike", "states"), lm.jacobian("spike", "inputs")
    jn_p = lm.jacobian("next", "params").row_join(lm.jacobian("next", "propagators"))
    jz_p = lm.jacobian("spike", "params").row_join(lm.jacobian("spike", "propagators"))
    npq = jn_p.cols
    exprs = [lm.spike, *lm.next]
    names = ["_z"] + [f"_next{j}" for j in range(k)]
    for a in range(k):
        exprs += [jn_x[a, 0], jz_s[0, a]]
        names += [f"_jnx{a}", f"_jzs{a}"]
        for b in range(k):
            exprs.append(jn_s[a, b])
            names.append(f"_jns{a}_{b}")
        for r in range(npq):
            exprs.append(jn_p[a, r])
            names.append(f"_jnp{a}_{r}")
    exprs.append(jz_x[0, 0])
    names.append("_jzx")
    for r in range(npq):
        exprs.append(jz_p[0, r])
        names.append(f"_jzp{r}")
    return exprs, names, npq


__all__ = ["CompiledEprop", "CudaEprop", "OnlineState", "OnlineLearner"]


from .online_cuda import CudaEprop  # noqa: E402, F401 - re-exported (it builds on the above)
