"""Compiled online learning (Numba): e-prop and RFLO for one recurrent population.

The kernel is generated from the LearningModel like the BPTT kernels: the model's step and its
neuron-local Jacobians (``d next / d state``, ``d next / d input``, ``d z / d state``...,
derived symbolically) drive per-synapse eligibility vectors over the CSR synapses that exist;
a leaky readout ``y_t = kappa y_{t-1} + z_t @ w_out`` gives the learning signal
``L_i = sum_o B_io (y_o - y*_o)``. Everything the next step needs lives in a
:class:`OnlineState`, so input can stream in chunks of any length and the weights can change
between chunks (:class:`OnlineLearner`): memory does not depend on the sequence length.
Checked against the NumPy reference :func:`snngen.derive.online.eprop` in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import sympy as sp

from .. import __version__, cache
from ..backends.numba.printer import NumbaPrinter
from ..backends.templates import environment
from ..derive.online import _linear_jacobians
from ..derive.reference import chain_propagators, propagator_values
from ..derive.step import LearningModel
from ..derive.surrogate import surrogate_function
from ..errors import SnngenError
from .bptt import cse_lines, kernel_renaming, refractory_steps
from .optim import Adam


class CompiledEprop:
    """The e-prop / RFLO kernel of ``lm`` (one input target)."""

    def __init__(self, lm: LearningModel, dtype: str = "float64"):
        if len(lm.inputs) != 1:
            raise SnngenError("online learning currently supports exactly one input target")
        self.lm, self.dtype = lm, np.dtype(dtype)
        ren = kernel_renaming(lm)
        pr = NumbaPrinter(dtype)
        k = len(lm.states)
        jn_s, jn_x = lm.jacobian("next", "states"), lm.jacobian("next", "inputs")
        jz_s, jz_x = lm.jacobian("spike", "states"), lm.jacobian("spike", "inputs")
        jn_p = lm.jacobian("next", "params").row_join(lm.jacobian("next", "propagators"))
        jz_p = lm.jacobian("spike", "params").row_join(lm.jacobian("spike", "propagators"))
        npq = jn_p.cols
        exprs = [lm.spike, *lm.next]
        names = ["_z"] + [f"_next{j}" for j in range(k)]
        for a in range(k):
            exprs.append(jn_x[a, 0])
            names.append(f"_jnx{a}")
            exprs.append(jz_s[0, a])
            names.append(f"_jzs{a}")
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
              n_out: int, s0=None, rule: str = "eprop") -> OnlineState:
        """Fresh online state (eligibility, readout, neuron states) for ``batch`` trials."""
        if rule not in ("eprop", "rflo"):
            raise SnngenError(f"rule must be 'eprop' or 'rflo', got {rule!r}")
        f, k, lm = self.dtype, len(self.lm.states), self.lm
        params = {p: np.broadcast_to(np.asarray(v, float), (n,)) for p, v in params.items()}
        props = propagator_values(lm, params, dt, n)
        p_arr = np.array([params[p.name] for p in lm.params], f).reshape(-1, n)
        q_arr = np.array([props[q] for q in lm.propagators], f).reshape(-1, n)
        j_lin, jx_lin = np.zeros((n, k, k), f), np.zeros((n, k), f)
        if rule == "rflo":
            rest = [*np.zeros((k, n)), np.zeros(n), *p_arr.astype(float), *q_arr.astype(float),
                    np.zeros(n, bool), dt]
            j, jx = _linear_jacobians(lm, rest, n)
            j_lin, jx_lin = j.astype(f), jx.astype(f)
        s = np.zeros((batch, n, k), f) if s0 is None else np.array(
            np.broadcast_to(s0, (batch, n, k)), f)
        return OnlineState(
            params=params, dt=dt, rule=rule, p_arr=p_arr, q_arr=q_arr,
            ref=refractory_steps(lm, params, dt, n), state=s,
            last=np.full((batch, n), -(2**40), np.int64), z_prev=np.zeros((batch, n), f),
            eps_in=np.zeros((batch, in_csr.n_synapses, k), f),
            ebar_in=np.zeros((batch, in_csr.n_synapses), f),
            eps_rec=np.zeros((batch, rec_csr.n_synapses, k), f),
            ebar_rec=np.zeros((batch, rec_csr.n_synapses), f),
            eps_p=np.zeros((batch, n, k, self.npq), f), ebar_p=np.zeros((batch, n, self.npq), f),
            y=np.zeros((batch, n_out), f), zbar=np.zeros((batch, n), f), j_lin=j_lin,
            jx_lin=jx_lin)

    def step(self, st: OnlineState, x_in: np.ndarray, targets: np.ndarray, in_csr, w_in,
             rec_csr, w_rec, w_out, kappa: float, feedback=None, wanted=None, mask=None):
        """Run ``len(x_in)`` more steps (x_in (T, B, n_in), targets (T, B, n_out)); returns
        (loss, gradients accumulated over these steps, readout (T, B, n_out)). ``mask``
        (T, B), default ones: each step's error is multiplied by it (the loss is
        ``1/2 sum (mask (y - y*))^2``)."""
        f, lm = self.dtype, self.lm
        steps, batch, _ = x_in.shape
        n = st.state.shape[1]
        chunks = max(1, min(batch, numba.get_num_threads()))
        g_in = np.zeros((chunks, in_csr.n_synapses), f)
        g_rec = np.zeros((chunks, rec_csr.n_synapses), f)
        g_p = np.zeros((chunks, n, self.npq), f)
        g_out = np.zeros((chunks,) + np.shape(w_out), f)
        loss = np.zeros(chunks, f)
        out = np.zeros((steps, batch, np.shape(w_out)[1]), f)
        w_out = np.ascontiguousarray(w_out, f)
        fb = w_out if feedback is None else np.ascontiguousarray(feedback, f)
        self.module.run(st.t, np.ascontiguousarray(x_in, f), in_csr.indptr, in_csr.indices,
                        np.asarray(w_in, f), rec_csr.indptr, rec_csr.indices,
                        np.asarray(w_rec, f), w_out, fb, np.ascontiguousarray(targets, f),
                        f.type(kappa), st.state, st.p_arr, st.q_arr, st.ref, st.dt, st.last,
                        st.z_prev, st.eps_in, st.ebar_in, st.eps_rec, st.ebar_rec, st.eps_p,
                        st.ebar_p, st.y, st.zbar, g_in, g_rec, g_p, g_out, loss, out,
                        st.rule == "rflo", st.j_lin, st.jx_lin,
                        np.ones((steps, batch), f) if mask is None else
                        np.ascontiguousarray(np.broadcast_to(mask, (steps, batch)), f))
        st.t += steps
        grads = {"w_in": g_in.sum(0).astype(np.float64), "w_rec": g_rec.sum(0).astype(
            np.float64), "w_out": g_out.sum(0).astype(np.float64)}
        if st.rule == "eprop":
            total = g_p.sum(0).astype(np.float64)
            P = len(lm.params)  # noqa: N806
            grads.update({p.name: total[:, r].copy() for r, p in enumerate(lm.params)})
            chain_propagators(lm, st.params, st.dt, n, grads,
                              {q: total[:, P + r] for r, q in enumerate(lm.propagators)},
                              wanted)
        return float(loss.sum()), grads, out

    def memory_bytes(self, st: OnlineState) -> int:
        """Bytes of online state: eligibility (per synapse and trial), readout, neurons."""
        return sum(v.nbytes for v in vars(st).values() if isinstance(v, np.ndarray))


@dataclass
class OnlineState:
    """Everything an online run continues from; its size does not depend on time."""

    params: dict
    dt: float
    rule: str
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


class OnlineLearner:
    """Online training of input, recurrent and readout weights with e-prop or RFLO.

    ``update_every`` steps (or once per sequence with ``None``), the gradients accumulated so
    far go to the optimiser (Adam by default, shared with BPTT); the eligibility and neuron
    states carry on, so a long input can be fed in chunks (:meth:`feed`) and nothing of its
    history is stored.
    """

    def __init__(self, kernel: CompiledEprop, params: dict, dt: float, in_csr, rec_csr,
                 weights: dict, kappa: float, rule: str = "eprop", feedback=None,
                 update_every: int | None = None, optimizer=None,
                 trainable=("w_in", "w_rec", "w_out")):
        unknown = set(trainable) - {"w_in", "w_rec", "w_out"}
        if unknown:
            raise SnngenError(f"OnlineLearner: cannot train {sorted(unknown)}; choose among "
                              "w_in, w_rec, w_out")
        self.trainable = tuple(trainable)
        self.kernel, self.params, self.dt = kernel, params, dt
        self.in_csr, self.rec_csr, self.weights = in_csr, rec_csr, weights
        self.kappa, self.rule, self.feedback = kappa, rule, feedback
        self.update_every = update_every
        self.opt = optimizer or Adam(lr=1e-3)
        self.state = None

    def reset(self, batch: int):
        """Start new sequences (fresh neuron states, eligibility and readout)."""
        n = self.rec_csr.n_pre
        self.state = self.kernel.state(self.params, self.dt, batch, n, self.in_csr,
                                       self.rec_csr, np.shape(self.weights["w_out"])[1],
                                       rule=self.rule)

    def feed(self, x_in: np.ndarray, targets: np.ndarray, learn: bool = True, mask=None):
        """Feed (T, B, n_in) input with its (T, B, n_out) targets (``mask`` (T, B): which
        steps' errors count); returns (loss, readout)."""
        if self.state is None or self.state.state.shape[0] != x_in.shape[1]:
            self.reset(x_in.shape[1])
        every = self.update_every or x_in.shape[0]
        total, outs = 0.0, []
        for lo in range(0, x_in.shape[0], every):
            hi = min(lo + every, x_in.shape[0])
            loss, grads, out = self.kernel.step(
                self.state, x_in[lo:hi], targets[lo:hi], self.in_csr, self.weights["w_in"],
                self.rec_csr, self.weights["w_rec"], self.weights["w_out"], self.kappa,
                self.feedback, wanted=set(), mask=None if mask is None else mask[lo:hi])
            if learn:  # in place: the arrays of self.weights change
                self.opt.step({k: self.weights[k] for k in self.trainable},
                              {k: grads[k] for k in self.trainable})
            total += loss
            outs.append(out)
        return total, np.concatenate(outs, axis=0)


__all__ = ["CompiledEprop", "OnlineState", "OnlineLearner"]
