"""The online rules of :mod:`snngen.train.online` on the CUDA backend (:class:`CudaEprop`):
the same derived step and Jacobians as CUDA kernels, dense products through CuPy."""

from __future__ import annotations

import numpy as np
import sympy as sp

from .. import __version__
from ..backends.templates import environment
from ..derive.bodies import cse_lines, kernel_renaming
from ..derive.online import readout_error
from ..derive.step import LearningModel
from ..derive.surrogate import surrogate_function
from ..errors import SnngenError
from .online import (
    CompiledEprop,
    OnlineState,
    _check_step,
    _kernel_expressions,
    _parameter_grads,
)


def _cuda_params(real: str):
    r = real
    return [("long long", "t"), ("long long", "batch"), ("long long", "n"),
            ("long long", "n_syn"), ("long long", "n_pre"), ("int", "leak"), ("int", "nf"),
            (f"{r}*", "decays"),
            ("double", "dt"), (f"{r}*", "state"), (f"{r}*", "params"), (f"{r}*", "props"),
            ("long long*", "ref_steps"), (f"{r}*", "x"), (f"{r}*", "z"), ("long long*", "last"),
            (f"{r}*", "jns"), (f"{r}*", "jnx"), (f"{r}*", "jzs"), (f"{r}*", "jzx"),
            (f"{r}*", "jnp"), (f"{r}*", "jzp"), (f"{r}*", "j_lin"), (f"{r}*", "jx_lin"),
            ("long long*", "syn_pre"), ("long long*", "syn_post"), (f"{r}*", "pre"),
            (f"{r}*", "eps"), (f"{r}*", "ebar"), (f"{r}*", "signal"), ("double*", "grad")]


class CudaEprop(CompiledEprop):
    """The e-prop / RFLO step on the CUDA backend: the same derived step and Jacobians as
    CUDA kernels (one thread per trial and neuron, per trial and synapse), dense products
    through CuPy. ``device="host"`` runs the kernels on the CPU (checks). Same interface and
    results as :class:`CompiledEprop` (tested to 1e-9 in float64)."""

    def __init__(self, lm: LearningModel, dtype: str = "float64", device: str = "gpu"):
        from ..backends.cuda.printer import CPrinter
        from .cuda_bptt import Kernels, LearningCPrinter
        if len(lm.inputs) != 1:
            raise SnngenError("online learning currently supports exactly one input target")
        assert issubclass(LearningCPrinter, CPrinter)
        self.lm, self.dtype = lm, np.dtype(dtype)
        ren = kernel_renaming(lm)
        pr = LearningCPrinter(dtype)
        exprs, names, npq = _kernel_expressions(lm)
        body = cse_lines(ren, exprs, names, pr, "_e")
        real = "float" if dtype == "float32" else "double"
        x = sp.Symbol("x", real=True)
        source = environment().get_template("cuda/eprop.cu.j2").render(
            version=__version__, model=lm.discrete.model.name, dtype=dtype, real=real,
            k=len(lm.states), npq=npq, params=[f"{t} {n}" for t, n in _cuda_params(real)],
            states=[ren[s].name for s in lm.states], input=lm.inputs[0].name,
            params_=[ren[p].name for p in lm.params],
            props=[ren[q].name for q in lm.propagators], body=body,
            surrogate=pr.doprint(surrogate_function(lm.surrogate).expression(x))) + "\n"
        self.source, self.npq = source, npq
        self.kernels = Kernels(source, ("eprop_neurons", "eprop_synapses", "eprop_params",
                                        "eprop_factor_grad", "eprop_traces"),
                               [(t, n, 0, "") for t, n in _cuda_params(real)], device, dtype)
        self.xp = self.kernels.xp

    def step(self, st: OnlineState, x_in, targets, in_csr, w_in, rec_csr, w_rec, w_out,
             kappa: float, feedback=None, wanted=None, mask=None, loss: str = "mse"):
        _check_step(self, st, x_in, targets, in_csr, w_in, rec_csr, w_rec, w_out, kappa,
                    feedback, mask, loss, "CudaEprop.step")
        xp, f, lm, spec = self.xp, self.dtype, self.lm, st.rule
        steps, batch, n_in = x_in.shape
        n, k = st.state.shape[1], len(lm.states)
        npq = st.eps_p.shape[3]
        factorised = st.layout == "factorised"
        dev = self._device_state(st, in_csr, rec_csr)
        win = xp.zeros((n_in, n), f)
        xp.add.at(win, (dev["in_pre"], dev["in_post"]), xp.asarray(np.asarray(w_in, f)))
        wrec = xp.zeros((n, n), f)
        xp.add.at(wrec, (dev["rec_pre"], dev["rec_post"]), xp.asarray(np.asarray(w_rec, f)))
        wout = xp.asarray(np.asarray(w_out, f))
        fb = wout if feedback is None else xp.asarray(np.asarray(feedback, f))
        xs = xp.asarray(np.ascontiguousarray(x_in, f))
        drive = (xs.reshape(steps * batch, n_in) @ win).reshape(steps, batch, n)
        tg = xp.asarray(np.ascontiguousarray(targets, f))
        mk = xp.ones((steps, batch), f) if mask is None else xp.asarray(
            np.ascontiguousarray(np.broadcast_to(mask, (steps, batch)), f))
        decays = xp.asarray(np.asarray(spec.decays(kappa), f))
        g_in = xp.zeros(in_csr.n_synapses, np.float64)
        g_rec = xp.zeros(rec_csr.n_synapses, np.float64)
        g_p = xp.zeros(max(n * npq, 1), np.float64)
        g_out = xp.zeros(np.shape(w_out), f)
        outs = xp.zeros((steps, batch, np.shape(w_out)[1]), f)
        total = 0.0
        jac = {"jns": xp.zeros((batch, n, k, k), f), "jnx": xp.zeros((batch, n, k), f),
               "jzs": xp.zeros((batch, n, k), f), "jzx": xp.zeros((batch, n), f),
               "jnp": xp.zeros((batch, n, k, max(self.npq, 1)), f),
               "jzp": xp.zeros((batch, n, max(self.npq, 1)), f)}
        z = xp.zeros((batch, n), f)
        common = {"batch": batch, "n": n, "leak": int(spec.jacobian == "leak"),
                  "nf": int(decays.size), "decays": decays, "dt": st.dt,
                  "state": dev["state"], "params": dev["p_arr"], "props": dev["q_arr"],
                  "ref_steps": dev["ref"], "z": z, "last": dev["last"], "j_lin": dev["j_lin"],
                  "jx_lin": dev["jx_lin"], **jac}
        for tl in range(steps):
            t = st.t + tl
            x = drive[tl] + dev["z_prev"] @ wrec
            self.kernels.launch("eprop_neurons", batch * n, {**common, "t": t, "x": x})
            dev["y"][...] = kappa * dev["y"] + z @ wout
            outs[tl] = dev["y"]
            step_loss, err = readout_error(dev["y"], tg[tl], mk[tl][:, None], loss)
            total += step_loss
            signal = xp.ascontiguousarray(err @ fb.T)
            dev["zbar"][...] = kappa * dev["zbar"] + z
            g_out += dev["zbar"].T @ err
            for kind, pre, grad in (("in", xs[tl], g_in), ("rec", dev["z_prev"], g_rec)):
                n_syn = in_csr.n_synapses if kind == "in" else rec_csr.n_synapses
                args = {**common, "t": t, "n_syn": n_syn, "n_pre": pre.shape[1],
                        "syn_pre": dev[f"{kind}_pre"], "syn_post": dev[f"{kind}_post"],
                        "pre": xp.ascontiguousarray(pre), "eps": dev[f"eps_{kind}"],
                        "ebar": dev[f"ebar_{kind}"], "signal": signal, "grad": grad}
                if factorised:
                    self.kernels.launch("eprop_factor_grad", batch * n_syn, args)
                    self.kernels.launch("eprop_traces", batch * pre.shape[1], args)
                else:
                    self.kernels.launch("eprop_synapses", batch * n_syn, args)
            if spec.params and npq:
                self.kernels.launch("eprop_params", batch * n * npq, {
                    **common, "t": t, "eps": dev["eps_p"], "ebar": dev["ebar_p"],
                    "signal": signal, "grad": g_p})
            dev["z_prev"][...] = z
        st.t += steps
        self._sync_back(st, dev)
        host = self._host
        grads = {"w_in": host(g_in), "w_rec": host(g_rec),
                 "w_out": host(g_out).astype(np.float64)}
        _parameter_grads(lm, st, host(g_p)[:n * npq].reshape(n, npq), wanted, grads)
        return total, grads, host(outs)

    def _host(self, a):
        return a.get() if hasattr(a, "get") and type(a) is not np.ndarray else np.asarray(a)

    def _device_state(self, st: OnlineState, in_csr, rec_csr) -> dict:
        """The state's arrays on the device (uploaded once per state, kept there)."""
        xp = self.xp
        dev = getattr(st, "_device", None)
        if dev is None:
            dev = {name: xp.asarray(getattr(st, name)) for name in (
                "state", "last", "z_prev", "eps_in", "ebar_in", "eps_rec", "ebar_rec", "eps_p",
                "ebar_p", "y", "zbar", "p_arr", "q_arr", "ref", "j_lin", "jx_lin")}
            dev.update({"in_pre": xp.asarray(in_csr.pre_indices().astype(np.int64)),
                        "in_post": xp.asarray(in_csr.indices.astype(np.int64)),
                        "rec_pre": xp.asarray(rec_csr.pre_indices().astype(np.int64)),
                        "rec_post": xp.asarray(rec_csr.indices.astype(np.int64))})
            st._device = dev
        return dev

    def _sync_back(self, st: OnlineState, dev: dict):
        for name in ("state", "last", "z_prev", "eps_in", "ebar_in", "eps_rec", "ebar_rec",
                     "eps_p", "ebar_p", "y", "zbar"):
            getattr(st, name)[...] = self._host(dev[name])
