"""BPTT on the CUDA backend: the derived neuron-local steps as CUDA kernels, synaptic sums as
matrix products (cuBLAS through CuPy).

Same interface and results as :class:`snngen.train.bptt.CompiledBPTT` (``run``). Per step,
the forward pass is one product ``z(t-1) @ W_rec`` plus one kernel (the model's update, a tape,
spikes); the reverse pass is one kernel (the model's adjoint step) plus one product
``a_x(t) @ W_rec^T``. The input drive of all steps, and the weight gradients of all steps,
are one product each. Sparse connectivity is scattered into dense matrices on the device and
its gradients gathered back at the synapses (right for the T1 sizes; very large sparse
networks need sparse products, not implemented).

``device="gpu"`` runs on CuPy; ``device="host"`` runs the same kernel source on the CPU through
the host shim and NumPy products: that is how the kernels are checked without a GPU.
"""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np
import sympy as sp

from .. import __version__
from ..backends.cuda.printer import CPrinter
from ..backends.templates import environment
from ..derive.bodies import derived_bodies
from ..derive.reference import chain_propagators
from ..derive.step import LearningModel
from ..derive.surrogate import surrogate_function
from ..errors import BackendUnsupported
from .bptt import check_kernel_model, run_values
from .checks import as_real, check_loss_grads, check_run


class LearningCPrinter(CPrinter):
    """C printer for derived learning code: the spike step and its surrogate derivative."""

    def _print_Function(self, expr):
        if getattr(type(expr), "derivative_of", None):
            return f"snn_sg({self._print(expr.args[0])}, cutoff)"
        if getattr(type(expr), "surrogate", None):
            return f"(({self._print(expr.args[0])} > 0) ? {self._lit(1)} : {self._lit(0)})"
        return super()._print_Function(expr)


def _params(real: str):
    r = real
    return [("long long", "t"), ("long long", "n_steps"), ("long long", "batch"),
            ("long long", "n_neurons"), (r, "cutoff"), ("int", "use_ds"), ("double", "dt"),
            (f"{r}*", "state"), (f"{r}*", "params"), (f"{r}*", "props"),
            ("long long*", "ref_steps"), (f"{r}*", "x"), (f"{r}*", "tape_s"),
            (f"{r}*", "tape_x"), ("unsigned char*", "tape_r"), (f"{r}*", "spikes"),
            ("long long*", "last"), (f"{r}*", "a_s"), (f"{r}*", "a_x"), (f"{r}*", "a_z_rec"),
            (f"{r}*", "dl_ds"), (f"{r}*", "dl_dz"), ("double*", "g_params"),
            ("double*", "g_props"), ("unsigned long long*", "skipped")]




class Kernels:
    """Kernels of one generated source, on the GPU (CuPy, a CUBIN compiled with NVRTC) or on
    the CPU (the same source through the host shim): ``launch(name, work, values)`` runs
    ``work`` threads with the arguments named in ``params`` (missing ones: null, zero)."""

    BLOCK = 256

    def __init__(self, source: str, names, params, device: str, dtype: str):
        from ..backends.cuda import compiler
        self.params, self.device = params, device
        if device == "gpu":
            from ..backends.cuda.gpu import arch, check_device
            self.xp = check_device()
            path, _ = compiler.compile_cubin(source, arch(), dtype)
            module = self.xp.RawModule(path=str(path))
            self._fns = {k: module.get_function(k) for k in names}
        elif device == "host":
            from ..backends.cuda.render import Launch
            from ..backends.cuda.runner import launchers
            self.xp = np
            plan = [Launch(k, "", "", 0) for k in names]
            path, _ = compiler.build_host(source, launchers(params, plan))
            lib = ctypes.CDLL(str(path))
            self._fns = {}
            for k in names:
                fn = getattr(lib, f"snn_launch_{k}")
                fn.argtypes = [ctypes.c_uint] * 3 + [ctypes.c_void_p]
                self._fns[k] = fn
        else:
            raise BackendUnsupported(f"unknown device {device!r}: 'gpu' or 'host'")

    def launch(self, name, work, values: dict):
        args = [values.get(n, None) for _, n, _, _ in self.params]
        grid = max(1, min(-(-work // self.BLOCK), 1 << 16))
        from ..backends.cuda.runner import SCALAR_TYPES
        if self.device == "gpu":  # arguments a kernel does not use: null pointers and zeros
            conv = [a if hasattr(a, "data") and hasattr(a.data, "ptr") else
                    np.uint64(0) if a is None and t.endswith("*") else SCALAR_TYPES[t](a or 0)
                    for (t, _, _, _), a in zip(self.params, args)]
            self._fns[name]((grid,), (self.BLOCK,), tuple(conv))
            return
        from ..backends.cuda.runner import host_argv
        keep, argv = host_argv(self.params, args)  # noqa: F841 - keep: what argv points to
        self._fns[name](grid, 1, self.BLOCK, argv)


class CudaBPTT:
    """Kernels for ``lm`` (one input target) on a GPU (``device="gpu"``) or emulated."""

    BLOCK = 256

    def __init__(self, lm: LearningModel, dtype: str = "float32", device: str = "gpu"):
        check_kernel_model(lm, dtype)
        self.lm, self.dtype, self.device = lm, np.dtype(dtype), device
        self.source = self._render(lm, dtype)
        real = "float" if dtype == "float32" else "double"
        self.params = [(t, n, 0, "") for t, n in _params(real)]
        self.kernels = Kernels(self.source, ("bptt_forward", "bptt_backward"), self.params,
                               device, dtype)
        self.xp = self.kernels.xp
        self.skipped = 0

    @staticmethod
    def _render(lm, dtype):
        pr = LearningCPrinter(dtype)
        ren, forward_body, backward_body = derived_bodies(lm, pr)
        x = sp.Symbol("x", real=True)
        real = "float" if dtype == "float32" else "double"
        return environment().get_template("cuda/bptt.cu.j2").render(
            version=__version__, model=lm.discrete.model.name, dtype=dtype, real=real,
            params=[f"{t} {n}" for t, n in _params(real)],
            states=[ren[s].name for s in lm.states], input=lm.inputs[0].name,
            params_=[ren[p].name for p in lm.params],
            props=[ren[q].name for q in lm.propagators],
            forward_body=forward_body, backward_body=backward_body,
            surrogate=pr.doprint(surrogate_function(lm.surrogate).expression(x)),
            g=pr.doprint(lm.g.xreplace(ren))) + "\n"

    def _launch(self, name, work, values: dict):
        self.kernels.launch(name, work, values)

    def _dense(self, csr, values):
        """(n_pre, n_post) weight matrix on the device, and how to gather its gradient back
        into CSR order. All-to-all CSR is the row-major matrix itself (no copy)."""
        xp, f = self.xp, self.dtype
        vals = values if isinstance(values, xp.ndarray) else xp.asarray(np.asarray(values, f))
        vals = vals.astype(f, copy=False)
        if csr.n_synapses == csr.n_pre * csr.n_post:
            return vals.reshape(csr.n_pre, csr.n_post), None
        key = (id(csr), csr.n_synapses)
        cached = getattr(self, "_index", {}).get(key)
        if cached is None or cached[0] is not csr:  # device copies of the synapse indices
            cached = (csr, xp.asarray(csr.pre_indices()), xp.asarray(csr.indices))
            self._index = {**getattr(self, "_index", {}), key: cached}
        _, pre, post = cached
        w = xp.zeros((csr.n_pre, csr.n_post), f)
        xp.add.at(w, (pre, post), vals)  # repeated (pre, post) pairs add up
        return w, (pre, post)

    @staticmethod
    def _gather(g, index):
        return g.reshape(-1) if index is None else g[index]

    def _forward(self, params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt, delay,
                 cutoff=0.0, where="CudaBPTT.simulate"):
        """The forward pass with its tape, on the device: what :meth:`run` and
        :meth:`simulate` share. Input spikes are read as the Numba kernels read them:
        nonzero = one spike (a count of 2 is not twice the weight)."""
        xp, f = self.xp, self.dtype
        steps, batch, n = check_run(self, params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec,
                                    dt, where)
        cutoff = as_real(cutoff, "cutoff", where, 0)
        n_in, k = inputs.shape[2], len(self.lm.states)
        params, p_arr, q_arr, ref, delay = run_values(self, params, n, dt, delay, where)
        p_arr, q_arr = xp.asarray(p_arr), xp.asarray(q_arr)
        win, in_index = self._dense(w_in_csr, w_in)
        wrec, rec_index = self._dense(w_rec_csr, w_rec)
        x_in = xp.asarray(inputs)
        x_in = (x_in if x_in.dtype == np.bool_ else x_in != 0).astype(f).reshape(steps * batch,
                                                                                 n_in)
        drive = (x_in @ win).reshape(steps, batch, n)  # the input drive of every step at once
        state = xp.array(s0, dtype=f)  # a copy: the kernels write it, the caller's s0 stays
        tape_s = xp.zeros((steps, batch, n, k), f)
        tape_x = xp.zeros((steps, batch, n), f)
        tape_r = xp.zeros((steps, batch, n), np.uint8)
        spikes = xp.zeros((steps, batch, n), f)
        last = xp.full((batch, n), -(2**40), np.int64)
        common = {"n_steps": steps, "batch": batch, "n_neurons": n, "cutoff": cutoff,
                  "dt": dt, "state": state, "params": p_arr, "props": q_arr,
                  "ref_steps": xp.asarray(ref), "tape_s": tape_s, "tape_x": tape_x,
                  "tape_r": tape_r, "spikes": spikes, "last": last}
        xt = xp.empty((batch, n), f)
        for t in range(steps):
            if t >= delay:
                xp.matmul(spikes[t - delay], wrec, out=xt)
                xt += drive[t]
            else:
                xt[...] = drive[t]
            self._launch("bptt_forward", batch * n, {**common, "t": t, "x": xt})
        return SimpleNamespace(params=params, common=common, win=win, in_index=in_index,
                               wrec=wrec, rec_index=rec_index, x_in=x_in, state=state,
                               tape_s=tape_s, spikes=spikes, delay=delay)

    def simulate(self, params: dict, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt,
                 delay: int = 1):
        """The forward pass alone, as :meth:`snngen.train.bptt.CompiledBPTT.simulate`: the
        spikes (T, B, n) and the final state (B, n, k), as arrays of this backend's array
        module (on the device for ``"cuda"``), float 0/1 spikes. The forward kernel writes
        its tape as in :meth:`run` (device memory as for training); no backward pass runs."""
        fw = self._forward(params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt, delay)
        return fw.spikes, fw.state

    def run(self, params: dict, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt, loss_fn,
            wanted=None, dense=None, cutoff: float = 0.0, states_needed: bool = True,
            loss_on_device: bool = False, delay: int = 1, checkpoint_every=None,
            input_grad: bool = False):
        """As :meth:`snngen.train.bptt.CompiledBPTT.run`. ``loss_fn`` gets NumPy arrays
        (host copies), or with ``loss_on_device`` the device arrays themselves (it may then
        return device arrays too); ``states_needed=False`` passes ``None`` for the states and
        skips copying them (the loss reads only spikes). ``delay``: recurrent spikes arrive
        that many steps later. ``checkpoint_every`` is not implemented here (an error).
        ``inputs`` may be a device array (the spikes of a layer below); ``input_grad``:
        also ``grads["inputs"]``, dL/d(inputs), one product of all steps' adjoints."""
        if checkpoint_every is not None:
            raise BackendUnsupported("checkpoint_every is implemented on the Numba backend only")
        fw = self._forward(params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dt, delay,
                           cutoff, "CudaBPTT.run")
        params, common, win, in_index, wrec, rec_index = (
            fw.params, fw.common, fw.win, fw.in_index, fw.wrec, fw.rec_index)
        x_in, state, tape_s, spikes, delay = fw.x_in, fw.state, fw.tape_s, fw.spikes, fw.delay
        lm, xp, f = self.lm, self.xp, self.dtype
        steps, batch, n_in = inputs.shape
        _, n, k = s0.shape
        on_device = xp is not np and isinstance(w_in, xp.ndarray)
        host = (lambda a: a) if loss_on_device else self._host
        states_h = None
        if states_needed:
            states_h = xp.concatenate([tape_s[1:], state[None]], 0)
            states_h = host(states_h)
        loss, dl_ds, dl_dz = loss_fn(states_h, host(spikes))
        check_loss_grads(dl_ds, dl_dz, steps, batch, n, k, "CudaBPTT.run")
        if isinstance(dl_dz, tuple):  # the low-rank form of CompiledBPTT.run
            dl_dz = xp.asarray(dl_dz[0]) @ xp.asarray(dl_dz[1]).T
        use_ds = dl_ds is not None  # row t: w.r.t. the state after step t (as CompiledBPTT)
        d_ds = xp.ascontiguousarray(xp.asarray(dl_ds, f)) if use_ds else xp.zeros((1,), f)
        a_s = xp.zeros((batch, n, k), f)
        a_x = xp.zeros((steps, batch, n), f)
        pending = xp.zeros((delay, batch, n), f)  # slot s % delay: adjoint of z_s, from s+delay
        g_p = xp.zeros((len(lm.params), n), np.float64)
        g_q = xp.zeros((max(len(lm.propagators), 1), n), np.float64)
        skipped = xp.zeros(1, np.uint64)
        back = {**common, "a_s": a_s, "a_x": a_x,
                "dl_ds": d_ds, "use_ds": int(use_ds),
                "dl_dz": xp.ascontiguousarray(xp.asarray(dl_dz, f)), "g_params": g_p,
                "g_props": g_q, "skipped": skipped}
        wrec_t = wrec.T  # a view: cuBLAS reads it transposed
        for t in range(steps - 1, -1, -1):
            slot = pending[t % delay]
            self._launch("bptt_backward", batch * n, {**back, "t": t, "a_z_rec": slot})
            if t >= delay:  # the slot now carries the adjoint of step t - delay
                xp.matmul(a_x[t], wrec_t, out=slot)
            else:
                slot[...] = 0
        ax = a_x.reshape(steps * batch, n)
        g_in = self._gather(x_in.T @ ax, in_index)
        if steps > delay:
            g_rec = self._gather(spikes[:-delay].reshape(-1, n).T @ a_x[delay:].reshape(-1, n),
                                 rec_index)
        else:
            g_rec = xp.zeros(w_rec_csr.n_synapses, f)
        self.skipped = int(self._host(skipped)[0])
        if on_device:  # weights given on the device: their gradients stay there
            grads = {"w_in": g_in, "w_rec": g_rec}
        else:
            grads = {"w_in": self._host(g_in).astype(np.float64),
                     "w_rec": self._host(g_rec).astype(np.float64)}
        if input_grad:  # dL/dx_t = a_x(t) @ W_in^T, every step at once
            d_in = (ax @ win.T).reshape(steps, batch, n_in)
            grads["inputs"] = d_in if on_device else self._host(d_in).astype(np.float64)
        grads["s0"] = self._host(a_s).astype(np.float64)
        gp, gq = self._host(g_p), self._host(g_q)
        grads.update({p.name: gp[j].copy() for j, p in enumerate(lm.params)})
        chain_propagators(lm, params, dt, n, grads,
                          {q: gq[j] for j, q in enumerate(lm.propagators)}, wanted)
        return loss, grads

    def _host(self, a):
        return a.get() if hasattr(a, "get") else np.asarray(a)
