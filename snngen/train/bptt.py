"""Compiled BPTT (Numba) for one recurrent population: the LearningModel rendered to kernels.

A forward kernel runs the network with a tape (state before each step, refractory flag,
spikes); a backward kernel recomputes each step's synaptic input from the input events and
the spikes, runs the derived adjoint step in reverse time,
propagates adjoints through the transposed sparse recurrent weights and accumulates weight
gradients event-driven over presynaptic spikes. Inputs and recurrent connections are CSR
(rows = presynaptic neurons). The loss is any function of the states and spikes computed by
the caller in NumPy. Checked against :func:`snngen.derive.reference.bptt` in the tests.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
import sympy as sp

from .. import __version__, cache
from ..backends.numba import bits, gemm, sync
from ..backends.numba.bits import bit_events, unpack
from ..backends.numba.inputs import input_adjoint, input_events  # noqa: F401 - re-exported
from ..backends.numba.printer import NumbaPrinter
from ..backends.templates import environment
from ..derive.bodies import cse_lines, derived_bodies
from ..derive.reference import chain_propagators, propagator_values, refractory_steps
from ..derive.step import LearningModel
from ..derive.tape import TAPE_G, describe_tape, minimal_tape  # noqa: F401 - re-exported
from ..errors import SnngenError
from ..integrate import REFRACTORY
from .bptt_plan import defer_weight_grads, memory_bytes, one_blas_thread, parallel_choice
from .checks import as_count, as_real, check_loss_grads, check_run


def check_kernel_model(lm: LearningModel, dtype: str) -> None:
    """What every backend's BPTT kernels need of their model and precision (clear errors)."""
    if not isinstance(dtype, str) or dtype not in ("float32", "float64"):
        raise SnngenError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if len(lm.inputs) != 1:
        raise SnngenError("compiled BPTT currently supports exactly one input target "
                          f"(got {len(lm.inputs)})")
    if lm.soft_beta is not None:
        raise SnngenError("compiled BPTT runs hard spikes with a surrogate gradient; this "
                          f"model was derived with soft spikes (soft_beta={lm.soft_beta}), "
                          "which only the reference executor (snngen.derive.reference, for "
                          "finite-difference checks) runs: derive it without soft_beta")


def run_values(kernels, params: dict, n: int, dt: float, delay, where: str = "BPTT run"):
    """What a run of ``kernels`` (CompiledBPTT or CudaBPTT: ``lm``, ``dtype``) reads of its
    parameters: per-neuron values (float64, broadcast to n), the kernels' parameter and
    propagator rows (NumPy, in their precision), refractory steps and the checked delay.
    The propagators are computed again, and the values checked against the model
    (:func:`snngen.runtime.validate.check_parameter_values`: no zero divisor, no negative
    time constant...), only when the parameters or dt change (cached on ``kernels``)."""
    lm, f = kernels.lm, kernels.dtype
    delay = as_count(delay, "the recurrent delay (steps)", where)
    params = {p: np.broadcast_to(np.asarray(v, float), (n,)) for p, v in params.items()}
    key = (dt, tuple((name, v.tobytes()) for name, v in sorted(params.items())))
    if getattr(kernels, "_props_key", None) != key:  # parameters rarely change between calls
        from ..runtime.validate import check_parameter_values
        check_parameter_values(lm.discrete.model, params, where)
        kernels._props_key, kernels._props = key, propagator_values(lm, params, dt, n)
    props = kernels._props
    p_arr = np.array([params[p.name] for p in lm.params], f).reshape(len(lm.params), n)
    q_arr = np.array([props[q] for q in lm.propagators], f).reshape(len(lm.propagators), n)
    return params, p_arr, q_arr, refractory_steps(lm, params, dt, n), int(delay)


class CompiledBPTT:
    """Kernels for ``lm`` (one input target), generated once and cached like all kernels."""

    def __init__(self, lm: LearningModel, dtype: str = "float64"):
        check_kernel_model(lm, dtype)
        self.dtype = np.dtype(dtype)
        self.lm = lm
        # without refractoriness the tape keeps no refractory flags (T x B x n bytes saved)
        self.refractory = lm.discrete.refractory is not None
        pr = NumbaPrinter(dtype)
        # the minimal tape (weight gradients only): its columns and its adjoint step; None
        # when the states and input are already the least the backward step can read
        minimal = minimal_tape(lm)
        self.tape_columns = None if minimal is None else minimal[0]
        self.ren, forward_body, backward_body = derived_bodies(lm, pr, tape_g=True)
        backward_min = [] if minimal is None else cse_lines(
            {}, minimal[1], [f"_as{j}" for j in range(len(lm.states))] + ["_ax"], pr, "_m")
        from ..derive.surrogate import surrogate_function
        xg = sp.Symbol("x", real=True)
        sur = pr.doprint(surrogate_function(lm.surrogate).expression(xg))
        g_code = pr.doprint(lm.g.xreplace(self.ren))
        ren = self.ren
        source = environment().get_template("numba/bptt.py.j2").render(
            version=__version__, model=lm.discrete.model.name, dtype=dtype,
            states=[ren[s].name for s in lm.states], input=lm.inputs[0].name,
            params=[ren[p].name for p in lm.params], props=[ren[q].name for q in lm.propagators],
            forward_body=forward_body, backward_body=backward_body, surrogate=sur, g=g_code,
            backward_min=backward_min,
            tape_cols=[pr.doprint(c) for c in self.tape_columns or [TAPE_G]],
            refractory=self.refractory, sync_digest=sync.digest(),
            bits_digest=bits.digest(), gemm_digest=gemm.digest())
        self.module, self.source_path = cache.generated_module(source, "bptt")

    def run(self, params: dict, s0: np.ndarray, inputs: np.ndarray, w_in_csr, w_in,
            w_rec_csr, w_rec, dt: float, loss_fn, wanted=None, dense=None,
            cutoff: float = 0.0, states_needed: bool = True,
            checkpoint_every: int | None = None, delay: int = 1, bool_spikes: bool = False,
            weight_grads: str = "auto", tape_input: bool | None = None,
            parallel: str = "auto", input_grad: bool = False):
        """Forward and backward. ``inputs`` (T, B, n_in) binary input spikes; ``s0`` (B, n,
        k); ``loss_fn(states (T, B, n, k), spikes (T, B, n))`` returns (loss, dL/ds, dL/dz);
        dL/ds may be None when the loss does not read the states; dL/dz may be a pair
        ``(left (T, B, r), right (n, r))`` meaning ``left @ right.T`` (a loss through a
        linear readout: the event path then never forms the T x B x n array).
        Returns (loss, grads) with ``w_in``, ``w_rec`` (CSR order, in the kernels'
        precision), each parameter (per neuron, float64) and ``s0``; ``wanted`` (a set of
        parameter names) limits the parameter gradients to those it holds (an empty set: the
        kernels skip the per-neuron parameter sums). ``dense`` (default: when the recurrent
        projection is all-to-all) forms the recurrent adjoint as a matrix product (BLAS) per
        step instead of a gather through the synapses; everything else stays event-driven
        (spikes are sparse even when weights are dense). ``cutoff`` > 0: surrogate values
        below it count as zero and neuron-steps with nothing to propagate are skipped;
        ``self.skipped`` counts them.
        ``states_needed=False``: the loss reads only spikes and gets ``None`` for the states
        (no T x B x n x k copy is made). ``checkpoint_every=K``: keep the tape of
        K steps only, and checkpoints of the state every K steps; the backward pass recomputes
        each segment from its checkpoint (one more forward pass, tape memory / (T / K)); the
        loss then reads spikes only. :meth:`memory_bytes` estimates the memory before a run.
        ``delay`` (>= 1): recurrent spikes arrive that many steps later. ``bool_spikes``: the
        loss gets the spikes as booleans (no T x B x n float copy; see
        :mod:`snngen.train.readout`). ``weight_grads``: ``"per_thread"`` accumulates the
        weight gradients during the backward pass, one buffer per thread (memory: threads x
        synapses); ``"deferred"`` stores the adjoint of each step's synaptic input (tape
        steps x B x n) and forms the gradients after the pass, threads owning blocks of
        postsynaptic neurons (the adjoints are read again: slower over a whole run's tape, as
        fast over one checkpointed segment's); ``"auto"`` (default) defers when the
        per-thread copies would hold more than the stored adjoints and, without checkpoints,
        more than 32 MiB; ``self.deferred`` says which ran. With ``parallel="neurons"``
        there are no per-thread buffers ("per_thread" then means one buffer filled during
        the pass) and "auto" defers when the stored adjoints are at most half the weights.
        ``tape_input``: keep each step's synaptic input on the tape (B x n per step) so
        that the backward pass reads it instead of recomputing it (the input events and the
        recurrent spikes summed again);
        default: only with ``checkpoint_every``, where the tape holds one segment.
        ``parallel``: how the backward pass shares work between Numba's threads.
        ``"trials"``: each thread runs the reverse pass of its own trials (with dense
        recurrence every thread then reads all of W each step). ``"neurons"``: each thread
        owns a block of neurons of every trial; the threads meet at a barrier each step
        and each forms the recurrent adjoint of its own presynaptic neurons for all trials
        (W, or the synapses, read once per step, not once per thread); weight gradients go
        straight into one buffer (each thread writes only the synapses onto its own neurons:
        no per-thread copies, no deferral needed). ``"auto"`` (default): "neurons" from 384
        neurons per thread (see :func:`snngen.train.bptt_plan.parallel_choice`);
        ``self.parallel`` says which ran.
        Both give the same gradients up to the order of floating-point sums.
        A run that wants weight gradients only (``wanted`` an empty set), with no cut-off
        and ``states_needed=False``, keeps the minimal tape (:func:`minimal_tape`, e.g. the
        threshold function alone for LIF: a third of the tape of (v, I, x)), and its
        backward pass neither keeps nor recomputes the synaptic input; ``tape_input`` then
        defaults to False.
        ``input_grad=True``: also return ``grads["inputs"]`` (T, B, n_in), dL/d(inputs):
        the input weights times the adjoint of each step's synaptic input (what a layer
        below needs as its dL/dz; see :class:`~snngen.train.RecurrentClassifier` with
        several hidden layers). It stores those adjoints, so the weight gradients are then
        always deferred."""
        lm = self.lm
        steps, batch, n = check_run(self, params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec,
                                    dt, "CompiledBPTT.run")
        k = len(lm.states)
        cutoff = as_real(cutoff, "cutoff", "CompiledBPTT.run", 0)
        params, p_arr, q_arr, ref, delay = run_values(self, params, n, dt, delay,
                                                      "CompiledBPTT.run")
        f = self.dtype
        if not isinstance(weight_grads, str) or \
                weight_grads not in ("auto", "per_thread", "deferred"):
            raise SnngenError(f"weight_grads must be 'auto', 'per_thread' or 'deferred', got "
                              f"{weight_grads!r}")
        if not isinstance(parallel, str) or parallel not in ("auto", "trials", "neurons"):
            raise SnngenError(f"parallel must be 'auto', 'trials' or 'neurons', got "
                              f"{parallel!r}")
        threads = numba.get_num_threads()
        if parallel == "auto":
            parallel = parallel_choice(threads, batch, n)
        by_neurons = parallel == "neurons"
        rec_full = w_rec_csr.n_synapses == n * n  # rows complete and sorted
        if dense is None:
            dense = rec_full
        if dense and not rec_full:
            raise SnngenError(f"dense=True needs an all-to-all recurrent projection ({n} x {n}"
                              f" synapses); this one has {w_rec_csr.n_synapses}: leave dense "
                              "unset (event-driven gather)")
        if checkpoint_every is not None:
            checkpoint_every = as_count(checkpoint_every, "checkpoint_every (steps)",
                                        "CompiledBPTT.run")
        if checkpoint_every is not None and states_needed:
            raise SnngenError("checkpoint_every keeps no states for the loss: it needs a loss "
                              "on spikes only, and states_needed=False")
        seg = steps if checkpoint_every is None else min(int(checkpoint_every), steps)
        # the kernels form the per-neuron parameter gradients only when one is wanted
        param_grads = wanted is None or len(wanted) > 0
        # the minimal tape (see minimal_tape): weight gradients only, no cut-off, a loss on
        # spikes only; it holds everything the adjoint step reads (no synaptic input kept
        # or recomputed)
        minimal = self._minimal(param_grads, cutoff, states_needed)
        if tape_input is None:
            tape_input = checkpoint_every is not None and not minimal
        common, state, spikes, last = self._forward_arrays(s0, inputs, w_in_csr, w_in,
                                                           w_rec_csr, w_rec, dense)
        ev, ptr, in_full = common[0], common[1], common[5]
        # the tape holds one segment: the whole run, or checkpoint_every steps (recomputed)
        tape_s = np.empty((seg, batch, len(self.tape_columns) if minimal else k, n), f)
        tape_r = np.zeros((seg, batch, n) if self.refractory else (seg, 0, 0), np.bool_)
        tape_x = np.empty((seg, batch, n) if tape_input else (0, 0, 0), f)
        starts = list(range(0, steps, seg))
        saved = {}  # checkpoints: state, last spike and previous spikes at each segment start

        def z_before(t0):  # spikes of steps t0 - delay .. t0 - 1 (none before step 0)
            out = np.zeros((delay,) + spikes.shape[1:], np.uint64)
            lo = max(0, t0 - delay)
            out[delay - (t0 - lo):] = spikes[lo:t0]
            return out

        for t0 in starts:
            t1 = min(t0 + seg, steps)
            if seg < steps:
                saved[t0] = (state.copy(), last.copy())
            # with checkpoints only the last segment's tape is used as it is: the others
            # are recomputed, and their first pass keeps no tape
            kept = slice(0, t1 - t0 if t0 == starts[-1] else 0)
            self.module.forward(t0, delay, *common, state, p_arr, q_arr, ref, dt,
                                tape_s[kept], tape_r[kept], tape_x[kept],
                                spikes[t0:t1], last, z_before(t0), minimal)
        states = _states_for_loss(tape_s, state) if states_needed else None
        # the loss sees the spikes as a (T, B, n) array; the run keeps them bit-packed, and
        # this copy is gone before the backward pass allocates its buffers
        seen = np.empty((steps, batch, n), np.bool_ if bool_spikes else f)
        unpack(spikes, n, seen)
        loss, dl_ds, dl_dz = loss_fn(states, seen)
        del seen
        use_ds = dl_ds is not None  # None: the loss does not read states (no T x B x n x k zeros)
        if use_ds and checkpoint_every is not None:
            raise SnngenError("with checkpoint_every the loss may read spikes only (it "
                              "returned dL/ds)")
        check_loss_grads(dl_ds, dl_dz, steps, batch, n, k, "CompiledBPTT.run")
        if not use_ds:
            dl_ds = np.zeros((1, 1, 1, k), f)
        dl_ds = np.ascontiguousarray(np.swapaxes(dl_ds, 2, 3), f)
        if isinstance(dl_dz, tuple):  # low rank: left (T, B, r) @ right (n, r)^T
            dz_left, dz_right = (np.ascontiguousarray(a, f) for a in dl_dz)
            dl_dz = np.zeros((steps, 1, 1), f)
        else:
            dl_dz = np.ascontiguousarray(dl_dz, f)
            dz_left, dz_right = np.zeros((steps, 1, 0), f), np.zeros((1, 0), f)
        # trials: one gradient buffer per chunk of trials; neurons: one, split by post neuron
        chunks = max(1, min(n, threads)) if by_neurons else max(1, min(batch, threads))
        defer = input_grad or defer_weight_grads(
            weight_grads, chunks, seg * batch * n, w_in_csr.n_synapses + w_rec_csr.n_synapses,
            f.itemsize, seg < steps, by_neurons)
        d_in = np.zeros((steps, batch, inputs.shape[2]) if input_grad else (0, 0, 0), f)
        # weight gradients in the kernels' precision (like the weights they update: at
        # float32 this halves the per-thread buffers); parameter gradients in float64.
        # Deferred: one buffer each, filled after each segment's backward pass from the
        # stored adjoints (T x B x n) by threads that own blocks of postsynaptic neurons
        copies = 1 if defer or by_neurons else chunks
        g_in = np.zeros((copies,) + np.shape(w_in), f)
        g_rec = np.zeros((copies,) + np.shape(w_rec), f)
        g_in_k, g_rec_k = (np.zeros((copies, 0), f), np.zeros((copies, 0), f)) if defer \
            else (g_in, g_rec)
        a_store = np.empty((seg, batch, n) if defer else (0, 0, 0), f)
        if defer:  # the spikes as events per (step, trial): what each step t receives
            z_idx, z_ptr = bit_events(spikes, n)
        g_p = np.zeros((chunks,) + p_arr.shape)
        g_q = np.zeros((chunks,) + q_arr.shape)
        a_s = np.zeros((batch, k, n), f)   # adjoints carried from one segment to the one before
        a_z = np.zeros((delay, batch, n), f)
        skipped = np.zeros(chunks, np.int64)
        respikes = np.empty((seg if seg < steps else 0,) + spikes.shape[1:], np.uint64)
        for t0 in reversed(starts):
            t1 = min(t0 + seg, steps)
            if t0 != starts[-1]:
                # recompute this segment's tape from its checkpoint (the last one's is still
                # there); its spikes, the same again, go to scratch
                st, la = saved.pop(t0)
                self.module.forward(t0, delay, *common, st, p_arr, q_arr, ref, dt,
                                    tape_s[:t1 - t0], tape_r[:t1 - t0], tape_x[:t1 - t0],
                                    respikes[:t1 - t0], la, z_before(t0), minimal)
            args = (t0, delay, *common, p_arr, q_arr, dt, tape_s[:t1 - t0], tape_r[:t1 - t0],
                    tape_x[:t1 - t0], spikes[t0:t1], dl_ds[t0:t1] if use_ds else dl_ds, use_ds,
                    dl_dz[t0:t1], dz_left[t0:t1], dz_right, g_in_k, g_rec_k, g_p, g_q, a_s, a_z,
                    z_before(t0), f.type(cutoff), skipped, a_store[:t1 - t0], param_grads,
                    minimal)
            # the kernels' threads call BLAS for the low-rank dL/dz (the dense recurrent
            # product is their own register tiles, no BLAS)
            with one_blas_thread() if dz_left.shape[2] else contextlib.nullcontext():
                if by_neurons:
                    self.module.backward_blocks(*args, chunks)
                else:
                    self.module.backward(*args)
            if defer:
                self.module.weight_grads(
                    t0, delay, ev, ptr, w_in_csr.indptr, w_in_csr.indices, in_full, z_idx,
                    z_ptr, w_rec_csr.indptr, w_rec_csr.indices, rec_full, a_store[:t1 - t0],
                    numba.get_num_threads(), g_in[0], g_rec[0])
            if input_grad:
                input_adjoint(a_store[:t1 - t0], w_in_csr, common[4], in_full, d_in[t0:t1])
        a_s0 = a_s
        self.skipped = int(skipped.sum())
        self.deferred = defer
        self.parallel = parallel
        g_in, g_rec, g_p, g_q = (_sum_chunks(g) for g in (g_in, g_rec, g_p, g_q))
        grads = {"w_in": g_in, "w_rec": g_rec,
                 "s0": np.swapaxes(a_s0, 1, 2).astype(np.float64)}
        if input_grad:
            grads["inputs"] = d_in
        grads.update({p.name: g_p[j].copy() for j, p in enumerate(lm.params)
                      if wanted is None or p.name in wanted})
        chain_propagators(lm, params, dt, n, grads,
                          {q: g_q[j] for j, q in enumerate(lm.propagators)}, wanted)
        return loss, grads


    def _minimal(self, param_grads: bool, cutoff: float, states_needed: bool) -> bool:
        """Whether a run keeps the minimal tape: the model has one, and the run wants weight
        gradients only, no cut-off, and gives its loss no states."""
        return self.tape_columns is not None and not param_grads and not cutoff > 0 \
            and not states_needed

    def simulate(self, params: dict, s0: np.ndarray, inputs: np.ndarray, w_in_csr, w_in,
                 w_rec_csr, w_rec, dt: float, delay: int = 1):
        """The forward pass alone (evaluation, firing rates): the spikes (T, B, n) as
        booleans and the final state (B, n, k), from the same forward kernel as :meth:`run`
        but with no tape and no backward pass (memory: the spikes only, bit-packed while the
        kernel runs). Same arguments as :meth:`run`; its spikes equal the ones :meth:`run`
        gives its loss."""
        steps, batch, n = check_run(self, params, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec,
                                    dt, "CompiledBPTT.simulate")
        k = len(self.lm.states)
        _, p_arr, q_arr, ref, delay = run_values(self, params, n, dt, delay,
                                                 "CompiledBPTT.simulate")
        f = self.dtype
        common, state, spikes, last = self._forward_arrays(
            s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, w_rec_csr.n_synapses == n * n)
        self.module.forward(0, delay, *common, state, p_arr, q_arr, ref, dt,
                            np.empty((0, batch, k, n), f), np.empty((0, 0, 0), np.bool_),
                            np.empty((0, batch, 0), f), spikes, last,
                            np.zeros((delay,) + spikes.shape[1:], np.uint64), False)
        out = np.empty((steps, batch, n), np.bool_)
        unpack(spikes, n, out)
        return out, np.swapaxes(state, 1, 2)

    def _forward_arrays(self, s0, inputs, w_in_csr, w_in, w_rec_csr, w_rec, dense):
        """What the forward kernel reads and writes in every run: its leading arguments
        (input events, both projections), the state (B, k, n), the spikes (T, B, words),
        bit-packed (:mod:`snngen.backends.numba.bits`), and the last spike steps."""
        f = self.dtype
        steps, batch, _ = inputs.shape
        n = s0.shape[1]
        ev, ptr = input_events(np.ascontiguousarray(inputs))
        # states, their tape and adjoints are (..., k, n) in the kernels: neuron loops then
        # read and write contiguous runs (vectorised); the loss sees (T, B, n, k)
        # a copy (np.array, not ascontiguousarray: with one state the swapped view is already
        # contiguous, and the kernels would write the caller's s0)
        state = np.array(np.swapaxes(s0, 1, 2), f, order="C")
        spikes = np.zeros((steps, batch, bits.words(n)), np.uint64)
        # last spike steps: read only for refractoriness (without it, no columns: nothing
        # kept, nothing copied into the checkpoints)
        last = np.full((batch, n if self.refractory else 0), -(2**40), np.int64)
        in_full = w_in_csr.n_synapses == w_in_csr.n_pre * n  # rows contiguous and sorted
        common = (ev, ptr, w_in_csr.indptr, w_in_csr.indices, np.asarray(w_in, f), in_full,
                  w_rec_csr.indptr, w_rec_csr.indices, np.ascontiguousarray(w_rec, f),
                  bool(dense))
        return common, state, spikes, last

    def memory_bytes(self, steps: int, batch: int, n: int, checkpoint_every: int | None = None,
                     n_synapses: int = 0, tape_input: bool | None = None,
                     parallel: str = "auto", input_grad: int = 0,
                     weights_only: bool = False) -> int:
        """Bytes a :meth:`run` of this size holds at its peak (tape, spikes, checkpoints,
        adjoints, gradient buffers), before it runs, with the same ``parallel`` choice as
        :meth:`run`; ``input_grad``: the number of inputs when the run returns their
        gradient (0: it does not); ``weights_only``: the run wants no parameter gradients,
        no cut-off and gives its loss no states (it then keeps the minimal tape, if the model
        has one). Loss arrays not included."""
        return memory_bytes(self, steps, batch, n, checkpoint_every, n_synapses,
                            tape_input, parallel, input_grad, weights_only)


def _states_for_loss(tape_s: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The state after every step, (T, B, n, k), from the tape of states before each step
    (T, B, k, n) and the final state (B, k, n)."""
    out = np.empty(tape_s.shape[:2] + tape_s.shape[:1:-1], tape_s.dtype)
    out[:-1] = np.swapaxes(tape_s[1:], 2, 3)
    out[-1] = np.swapaxes(state, 1, 2)
    return out


def _sum_chunks(g: np.ndarray) -> np.ndarray:
    """Sum the per-thread gradient buffers into the first one (no new array)."""
    for c in range(1, g.shape[0]):
        g[0] += g[c]
    return g[0]


__all__ = ["CompiledBPTT", "REFRACTORY"]
