"""Online learning references: exact RTRL and e-prop, from the same LearningModel as BPTT.

Everything here is NumPy, float64, one population and one trial: the yardsticks that the
compiled eligibility kernels of issue 4 will be checked against, and the checks 3-5 of
LEARNING.md. Nothing is specific to a neuron model: the neuron-local Jacobians come from
:meth:`snngen.derive.step.LearningModel.jacobian`.

- :func:`rtrl` carries ``ds_i/dtheta`` for every neuron and every weight and parameter
  (O(n * k * n_theta) memory): it equals BPTT exactly, on any network small enough.
- :func:`eprop` keeps only the neuron-local part (eligibility vectors
  ``eps_ij = J_i eps_ij + ds_i/dw_ij|local``), turns it into the eligibility trace
  ``e_ij = dz_i/ds_i . eps_ij (+ dz_i/dx_i x_j)``, filters it with the readout's decay and
  multiplies it by a learning signal ``L_i = sum_k B_ik (y_k - y*_k)`` (B = W_out: symmetric
  feedback; any other matrix: random feedback). Without recurrent weights it is exact.
- :func:`eligibility_layout` decides, from the symbolic Jacobian, which eligibility components
  are the same for every postsynaptic neuron (a presynaptic trace: O(neurons) memory) and
  which must be kept per synapse (O(synapses x batch)).
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, replace

import numpy as np
import sympy as sp

from ..errors import InvalidValueError, shown
from ..integrate import DT, REFRACTORY
from .reference import _compiled, chain_propagators, propagator_values, refractory_steps
from .step import LearningModel


class _Stepper:
    """Runs the model one step at a time and hands out the Jacobians of that step."""

    def __init__(self, lm, params, s0, dt, cutoff=0.0):
        n = s0.shape[0]
        self.lm, self.n, self.dt = lm, n, dt
        self.comp = _compiled(lm, cutoff)
        props = propagator_values(lm, params, dt, n)
        self.pvals = [params[p.name] for p in lm.params] + [props[q] for q in lm.propagators]
        self.ref_steps = refractory_steps(lm, params, dt, n)
        self.last = np.full(n, -10**9)
        self.s = s0.astype(np.float64).copy()

    def step(self, t, x):
        n, comp = self.n, self.comp
        refr = (t - self.last) <= self.ref_steps
        values = [*self.s.T, x, *self.pvals, refr, self.dt]
        z = np.broadcast_to(np.asarray(comp.spike(*values), float), (n,)).copy()
        s_next = np.stack([np.broadcast_to(np.asarray(e, float), (n,))
                           for e in comp.next(*values)], axis=1)
        m = {key: comp.matrix(key, values, n) for key in comp.jac}
        self.last = np.where(z > 0.5, t, self.last)
        self.s = s_next
        return s_next, z, m


def _param_jacobians(m):
    """(n, k, P+Q) and (n, P+Q): d next / d(params, propagators) and d z / d(...)."""
    jn = np.concatenate([m["next", "params"], m["next", "propagators"]], axis=2)
    jz = np.concatenate([m["spike", "params"], m["spike", "propagators"]], axis=2)[:, 0, :]
    return jn, jz


def _split_params(lm, params, dt, n, total, grads):
    """Per-neuron totals over (params, propagators) -> grads[param] (propagators chained)."""
    P = len(lm.params)  # noqa: N806
    for r, p in enumerate(lm.params):
        grads[p.name] = total[:, r].copy()
    gprop = {q: total[:, P + r] for r, q in enumerate(lm.propagators)}
    chain_propagators(lm, params, dt, n, grads, gprop)


def rtrl(lm: LearningModel, params: dict, s0: np.ndarray, x_in: np.ndarray, w_in: np.ndarray,
         w_rec: np.ndarray | None, dt: float, loss_grad):
    """Exact real-time recurrent learning; same arguments and result as
    :func:`snngen.derive.reference.bptt` (gradients for ``w_in``, ``w_rec`` and every
    parameter; not ``s0``), computed forward in time. Memory O(n * k * (n_in*n + n*n))."""
    n, k = s0.shape
    steps, n_in = x_in.shape
    st = _Stepper(lm, params, s0, dt)
    n_pq = len(lm.params) + len(lm.propagators)
    n_w = n_in * n + (n * n if w_rec is not None else 0)
    # sensitivities: ds_i/dtheta for the weights (flattened [pre, post]) and, per neuron, of
    # its own parameters (a neuron's state depends on other neurons' parameters only through
    # recurrence: those columns are carried too, as full (n, k, n, P+Q) arrays)
    P_w = np.zeros((n, k, n_w))  # noqa: N806
    Z_w = np.zeros((n, n_w))  # noqa: N806 - dz_{t-1}/dw
    P_p = np.zeros((n, k, n, n_pq))  # noqa: N806 - ds_i / dp_{i'}
    Z_p = np.zeros((n, n, n_pq))  # noqa: N806
    z_prev = np.zeros(n)
    loss, g_w, g_p = 0.0, np.zeros(n_w), np.zeros((n, n_pq))
    for t in range(steps):
        x = x_in[t] @ w_in + (z_prev @ w_rec if w_rec is not None else 0.0)
        # dx_i/dtheta: direct (the weight's own presynaptic spike) + through z_{t-1}
        D_w = np.zeros((n, n_w))  # noqa: N806
        D_w[:, :n_in * n] = _direct(x_in[t], n)
        D_p = np.zeros((n, n, n_pq))  # noqa: N806
        if w_rec is not None:
            D_w[:, n_in * n:] = _direct(z_prev, n)
            D_w += w_rec.T @ Z_w
            D_p += np.einsum("ji,jqr->iqr", w_rec, Z_p)
        s_next, z, m = st.step(t, x)
        jns, jnx = m["next", "states"], m["next", "inputs"][:, :, 0]
        jzs, jzx = m["spike", "states"][:, 0, :], m["spike", "inputs"][:, 0, 0]
        jnp_, jzp = _param_jacobians(m)
        P_w_new = np.einsum("nab,nbw->naw", jns, P_w) + jnx[:, :, None] * D_w[:, None, :]  # noqa: N806
        Z_w = np.einsum("nb,nbw->nw", jzs, P_w) + jzx[:, None] * D_w  # noqa: N806
        P_p_new = np.einsum("nab,nbqr->naqr", jns, P_p) + jnx[:, :, None, None] * D_p[:, None]  # noqa: N806
        Z_p = np.einsum("nb,nbqr->nqr", jzs, P_p) + jzx[:, None, None] * D_p  # noqa: N806
        idx = np.arange(n)
        P_p_new[idx, :, idx, :] += jnp_
        Z_p[idx, idx, :] += jzp
        P_w, P_p = P_w_new, P_p_new  # noqa: N806
        lt, dl_ds, dl_dz = loss_grad(t, s_next, z)
        loss += lt
        g_w += np.einsum("na,naw->w", dl_ds, P_w) + dl_dz @ Z_w
        g_p += np.einsum("na,naqr->qr", dl_ds, P_p) + np.einsum("n,nqr->qr", dl_dz, Z_p)
        z_prev = z
    grads = {"w_in": g_w[:n_in * n].reshape(n_in, n)}
    if w_rec is not None:
        grads["w_rec"] = g_w[n_in * n:].reshape(n, n)
    _split_params(lm, params, dt, n, g_p, grads)
    return loss, grads


def _direct(pre: np.ndarray, n: int) -> np.ndarray:
    """dx_i / dw[j, i'] = pre_j * delta(i, i'), as (n, len(pre) * n) with w flattened [j, i']."""
    out = np.zeros((n, pre.size, n))
    out[np.arange(n), :, np.arange(n)] = pre[None, :].repeat(n, 0)
    return out.reshape(n, -1)


@functools.lru_cache(maxsize=64)
def _linear_functions(lm: LearningModel) -> tuple:
    """NumPy functions of the update's Jacobians without the spike and reset terms (states,
    inputs), made once per model (sympy's lambdify takes milliseconds)."""
    from .reference import _modules

    def no_spike(e):
        return e.replace(lambda f: isinstance(f, sp.Function) and bool(
            getattr(type(f), "surrogate", None)), lambda f: sp.Integer(0))
    rest = {s: sp.Integer(0) for s in (*lm.noise, *lm.timed)}  # no noise, no drive at rest
    u = sp.Matrix([no_spike(e).xreplace(rest) for e in lm.next])
    args = list(lm.states + lm.inputs + lm.params + lm.propagators) + [REFRACTORY, DT]
    mods = _modules(lm)
    return tuple(sp.lambdify(args, u.jacobian(sp.Matrix(wrt)).tolist(), modules=mods)
                 for wrt in (lm.states, lm.inputs))


def _linear_jacobians(lm: LearningModel, values_at_rest: list, n: int, all_inputs=False):
    """RFLO's Jacobians: of the update without the spike and reset terms, at rest (states
    and inputs zero): a constant leak per neuron, (n, k, k) and (n, k) (the first input;
    ``all_inputs``: (n, k, m), every input)."""
    out = []
    for fn in _linear_functions(lm):
        rows = fn(*values_at_rest)
        out.append(np.stack([np.stack([np.broadcast_to(np.asarray(e, float), (n,))
                                       for e in row], axis=-1) for row in rows], axis=1))
    return out[0], (out[1] if all_inputs else out[1][:, :, 0])


RULES = ("eprop", "ostl", "rflo", "superspike", "decolle")


@dataclass(frozen=True)
class OnlineRule:
    """How an online rule approximates RTRL (LEARNING.md section 3), as three choices:

    - ``jacobian``: ``"full"``, the model's own neuron-local Jacobian (reset path through the
      surrogate unless the model was derived with ``detach_reset``), or ``"leak"``, the
      Jacobian of the update without spike and reset, at rest: a constant per neuron;
    - the trace filters: a cascade of exponential filters applied to the eligibility trace
      ``e`` before it meets the learning signal. ``readout_decay``: one stage with the
      readout's own decay kappa (given with each run), which makes e-prop exact without
      recurrence; otherwise the fixed decays ``filters`` (two: SuperSpike's
      double-exponential van Rossum kernel; none: DECOLLE's instantaneous update);
    - ``params``: whether neuron parameters get eligibility vectors (full Jacobian only).

    ``symmetric``: the rule is defined with the readout's own weights as feedback (OSTL).
    """

    name: str
    jacobian: str
    filters: tuple
    params: bool
    symmetric: bool = False
    readout_decay: bool = False

    @property
    def n_filters(self) -> int:
        """Filter stages: each costs one value per synapse and trial."""
        return 1 if self.readout_decay else len(self.filters)

    def decays(self, kappa: float) -> tuple:
        """The filter decays of a run whose readout decays by ``kappa`` per step."""
        return (float(kappa),) if self.readout_decay else self.filters

    def __str__(self) -> str:
        f = "the readout decay kappa" if self.readout_decay else \
            ", ".join(f"{d:.4g}" for d in self.filters) or "none"
        return (f"{self.name}: {self.jacobian} local Jacobian, trace filters [{f}], "
                f"parameter eligibility {'yes' if self.params else 'no'}"
                f"{', symmetric feedback only' if self.symmetric else ''}")


def online_rule(rule, dt: float = 1e-3, filters=None, tau_rise: float = 5e-3,
                tau_decay: float = 10e-3, where: str = "online_rule") -> OnlineRule:
    """The :class:`OnlineRule` called ``rule`` (one of :data:`RULES`; an ``OnlineRule`` is
    returned as it is, or with its filters replaced). ``filters`` overrides the rule's trace
    filters with fixed decays (``()`` turns them off, which lets a factorising model keep
    O(neurons) eligibility); SuperSpike's van Rossum kernel has time constants
    ``tau_rise``/``tau_decay`` (seconds) at time step ``dt``. Anything else as ``rule`` or
    ``filters`` is an :class:`~snngen.errors.InvalidValueError` naming ``where`` (the call
    that received it).

    >>> print(online_rule("superspike", 1e-3))
    superspike: leak local Jacobian, trace filters [0.8187, 0.9048], parameter eligibility no
    >>> print(online_rule("eprop"))
    eprop: full local Jacobian, trace filters [the readout decay kappa], parameter eligibility yes
    >>> online_rule({"a": 1}, where="OnlineLearner")
    Traceback (most recent call last):
    ...
    snngen.errors.InvalidValueError: OnlineLearner: unknown online rule {'a': 1}; choose one \
of eprop, ostl, rflo, superspike, decolle (a name), or pass an OnlineRule
    """
    if filters is not None:
        items = filters.tolist() if isinstance(filters, np.ndarray) and filters.ndim == 1 \
            else filters if isinstance(filters, (list, tuple)) else None
        if items is None or not all(isinstance(d, numbers.Real) and not isinstance(
                d, (bool, np.bool_)) and 0 <= d < 1 for d in items):  # NaN fails 0 <= d
            raise InvalidValueError(f"{where}: trace filter decays must be a list of numbers "
                                    f"in [0, 1) (() for none), got {shown(filters)}")
        filters = tuple(float(d) for d in items)
    if isinstance(rule, OnlineRule):
        return rule if filters is None else replace(rule, filters=filters,
                                                    readout_decay=False)
    if not isinstance(rule, str) or rule not in RULES:  # a dict or a list is not hashable
        raise InvalidValueError(f"{where}: unknown online rule {shown(rule)}; choose one of "
                                f"{', '.join(RULES)} (a name), or pass an OnlineRule")
    van_rossum = (float(np.exp(-dt / tau_rise)), float(np.exp(-dt / tau_decay)))
    table = {  # jacobian, fixed filters, params, symmetric, readout decay
        "eprop": ("full", (), True, False, True),        # Bellec et al. 2020
        "ostl": ("full", (), True, True, True),          # Bohnstingl et al. 2022
        "rflo": ("leak", (), False, False, True),        # Murray 2019
        "superspike": ("leak", van_rossum, False, False, False),  # Zenke & Ganguli 2018
        "decolle": ("leak", (), False, False, False),    # Kaiser, Mostafa & Neftci 2020
    }
    jac, filt, params, symmetric, readout = table[rule]
    if filters is not None:
        filt, readout = filters, False
    return OnlineRule(rule, jac, filt, params, symmetric, readout)


def readout_error(y, target, mask, loss: str):
    """(loss, dloss/dy) of one step's readout ``y`` (..., n_out): ``"mse"``,
    ``1/2 |mask (y - y*)|^2``, or ``"cross_entropy"``, ``-sum mask y* log softmax(y)``
    (targets one-hot or probabilities); ``mask`` broadcasts against ``y`` (a number, or
    (B, 1) for a batch). NumPy or CuPy arrays."""
    if loss == "mse":
        err = (y - target) * mask
        return 0.5 * float((err * err).sum()), err
    if loss == "cross_entropy":
        shifted = y - y.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return (-float((mask * target * logp).sum()),
                (np.exp(logp) * target.sum(axis=-1, keepdims=True) - target) * mask)
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def eprop(lm: LearningModel, params: dict, s0: np.ndarray, x_in: np.ndarray, w_in: np.ndarray,
          w_rec: np.ndarray | None, dt: float, w_out: np.ndarray, kappa: float,
          targets: np.ndarray, feedback: np.ndarray | None = None, rule="eprop",
          return_outputs: bool = False, loss: str = "mse", mask=None, filters=None):
    """Online learning of the RTRL family (reference, NumPy, float64), for any of
    :data:`RULES` (see :func:`online_rule`). Default: e-prop with the full neuron-local
    Jacobian (reset path through the surrogate), a leaky readout
    ``y_t = kappa y_{t-1} + z_t @ w_out`` and the loss ``1/2 sum_t |y_t - targets_t|^2``
    (``loss="cross_entropy"``: softmax cross-entropy at every step; ``mask`` (T,) or (T, B)
    weighs each step's error). ``feedback`` (n, n_out) is B; default ``w_out`` (symmetric).
    ``rule="rflo"``: the eligibility vectors are propagated by the linear leak only (the
    update's Jacobian without spike and reset, at rest). Returns (loss, grads) for ``w_in``,
    ``w_rec``, every parameter (rules with parameter eligibility) and ``w_out``, accumulated
    online: nothing is stored over time. ``x_in`` (T, n_in) or (T, B, n_in) with
    ``targets`` (T, [B,] n_out) and ``s0`` (n, k) or (B, n, k): trials are independent and
    their gradients add up. ``return_outputs`` also returns the readout traces y, shaped
    like ``targets``."""
    spec = online_rule(rule, dt, filters, where="eprop")
    if spec.symmetric and feedback is not None:
        raise ValueError(f"{spec.name} uses the readout weights as feedback; do not pass "
                         "feedback")
    if x_in.ndim == 3:
        total, grads, ys = 0.0, {}, []
        for b in range(x_in.shape[1]):
            out = eprop(lm, params, s0[b] if s0.ndim == 3 else s0, x_in[:, b], w_in, w_rec,
                        dt, w_out, kappa, targets[:, b], feedback, spec, return_outputs, loss,
                        None if mask is None else np.asarray(mask)[:, b])
            total += out[0]
            for key, value in out[1].items():
                grads[key] = grads.get(key, 0) + value
            if return_outputs:
                ys.append(out[2])
        return (total, grads, np.stack(ys, axis=1)) if return_outputs else (total, grads)
    n, k = s0.shape
    steps, n_in = x_in.shape
    mask = np.ones(steps) if mask is None else np.asarray(mask, float)
    b = w_out if feedback is None else feedback
    st = _Stepper(lm, params, s0, dt)
    if spec.jacobian == "leak":
        rest = [*np.zeros((k, n)), np.zeros(n), *st.pvals, np.zeros(n, bool), dt]
        j_lin, jx_lin = _linear_jacobians(lm, rest, n)
    n_pq = len(lm.params) + len(lm.propagators)
    nf, decays = spec.n_filters, spec.decays(kappa)
    eps_in, ebar_in = np.zeros((n_in, n, k)), np.zeros((nf, n_in, n))
    eps_p, ebar_p = np.zeros((n, k, n_pq)), np.zeros((nf, n, n_pq))
    g_in, g_p = np.zeros((n_in, n)), np.zeros((n, n_pq))
    if w_rec is not None:
        eps_rec, ebar_rec, g_rec = np.zeros((n, n, k)), np.zeros((nf, n, n)), np.zeros((n, n))

    def filtered(stages, e):  # the cascade of trace filters, in place; the last stage
        for f, decay in enumerate(decays):
            stages[f] = decay * stages[f] + e
            e = stages[f]
        return e
    y, zbar, g_out = np.zeros(w_out.shape[1]), np.zeros(n), np.zeros_like(w_out)
    z_prev, total, ys = np.zeros(n), 0.0, []
    for t in range(steps):
        x = x_in[t] @ w_in + (z_prev @ w_rec if w_rec is not None else 0.0)
        _, z, m = st.step(t, x)
        jns, jnx = m["next", "states"], m["next", "inputs"][:, :, 0]
        jzs, jzx = m["spike", "states"][:, 0, :], m["spike", "inputs"][:, 0, 0]
        jnp_, jzp = _param_jacobians(m)
        if spec.jacobian == "leak":
            jns, jnx = j_lin, jx_lin
        # eligibility traces of this step (dz_i/dw_ij, neuron-local), then vectors
        e_in = np.einsum("ib,jib->ji", jzs, eps_in) + jzx[None, :] * x_in[t][:, None]
        eps_in = np.einsum("iab,jib->jia", jns, eps_in) + jnx[None] * x_in[t][:, None, None]
        e_p = np.einsum("ib,ibq->iq", jzs, eps_p) + jzp
        eps_p = np.einsum("iab,ibq->iaq", jns, eps_p) + jnp_
        if w_rec is not None:
            e_rec = np.einsum("ib,jib->ji", jzs, eps_rec) + jzx[None, :] * z_prev[:, None]
            eps_rec = np.einsum("iab,jib->jia", jns, eps_rec) + jnx[None] * \
                z_prev[:, None, None]
            e_rec = filtered(ebar_rec, e_rec)
        e_in, e_p = filtered(ebar_in, e_in), filtered(ebar_p, e_p)
        # readout, error and learning signal
        y = kappa * y + z @ w_out
        if return_outputs:
            ys.append(y.copy())
        lt, err = readout_error(y, targets[t], mask[t], loss)
        total += lt
        signal = b @ err
        g_in += e_in * signal[None, :]
        g_p += e_p * signal[:, None]
        if w_rec is not None:
            g_rec += e_rec * signal[None, :]
        zbar = kappa * zbar + z
        g_out += np.outer(zbar, err)
        z_prev = z
    grads = {"w_in": g_in, "w_out": g_out}
    if w_rec is not None:
        grads["w_rec"] = g_rec
    if spec.params:
        _split_params(lm, params, dt, n, g_p, grads)
    return (total, grads, np.array(ys)) if return_outputs else (total, grads)


@dataclass(frozen=True)
class EligibilityLayout:
    """Which eligibility components are presynaptic traces shared by every postsynaptic
    neuron (``shared``), and which are kept per synapse (``per_synapse``); memory of both
    layouts for a given size."""

    states: tuple[str, ...]
    shared: tuple[str, ...]
    per_synapse: tuple[str, ...]
    reasons: dict

    def bytes(self, n_pre: int, n_post: int, n_synapses: int, batch: int,
              itemsize: int = 8, force: str | None = None) -> int:
        """Eligibility memory: shared components cost one trace per presynaptic neuron, the
        rest one value per synapse and trial. ``force="per_synapse"`` for comparison."""
        shared = 0 if force == "per_synapse" else len(self.shared)
        per = len(self.states) - shared
        return itemsize * batch * (shared * n_pre + per * n_synapses)

    def __str__(self) -> str:
        lines = ["eligibility layout:"]
        for s in self.states:
            kind = "presynaptic trace, O(neurons)" if s in self.shared else \
                "per synapse, O(synapses x batch)"
            lines.append(f"  {s}: {kind} ({self.reasons[s]})")
        return "\n".join(lines)


def eligibility_layout(lm: LearningModel, per_neuron=()) -> EligibilityLayout:
    """Prove from the symbolic Jacobian which components of ``eps_ij = ds_i/dw_ij`` factorise.

    Component ``a`` is a presynaptic trace when its row of the recursion
    ``eps_a <- sum_b J_ab eps_b + Jx_a x_j`` reads only factorising components and its
    coefficients are the same for every neuron at every step: free of states, inputs,
    spikes, refractoriness and per-neuron parameters (``per_neuron`` names them). The input
    enters a state directly, so a component whose row depends on the surrogate (the reset
    path) or on the state (a nonlinearity) stays per synapse, and so does everything it
    feeds."""
    jn = lm.jacobian("next", "states")
    jx = lm.jacobian("next", "inputs")
    heterogeneous = {sp.Symbol(p, real=True) for p in per_neuron}
    varying = set(lm.states) | set(lm.inputs) | {REFRACTORY} | heterogeneous
    for prop in lm.discrete.propagators:  # exact-integrator entries of per-neuron parameters
        if prop.a.free_symbols & heterogeneous:
            varying |= {s for _, s in prop.phi + prop.psi}
    names = [s.name for s in lm.states]

    def constant(e):
        if e.has(sp.Function) and any(getattr(type(f), "derivative_of", None) or
                                      getattr(type(f), "surrogate", None)
                                      for f in e.atoms(sp.Function)):
            return False
        return not (e.free_symbols & varying)
    shared, reasons = set(range(len(names))), {}
    for a in range(len(names)):
        row = [jn[a, b] for b in range(jn.cols)] + [jx[a, c] for c in range(jx.cols)]
        if not all(constant(e) for e in row):
            shared.discard(a)
            reasons[names[a]] = "its Jacobian row depends on the neuron's state, spike or " \
                "own parameters"
    changed = True
    while changed:  # a component that reads a per-synapse one is per synapse too
        changed = False
        for a in sorted(shared):
            if any(jn[a, b] != 0 and b not in shared for b in range(jn.cols)):
                shared.discard(a)
                reasons[names[a]] = "it reads a per-synapse component"
                changed = True
    for a in shared:
        reasons[names[a]] = "constant, shared coefficients"
    return EligibilityLayout(tuple(names), tuple(names[a] for a in sorted(shared)),
                             tuple(n for a, n in enumerate(names) if a not in shared), reasons)


__all__ = ["rtrl", "eprop", "eligibility_layout", "EligibilityLayout", "OnlineRule",
           "online_rule", "readout_error", "RULES"]
