"""How a compiled BPTT run (:class:`snngen.train.bptt.CompiledBPTT`) shares its work between
threads and what memory it holds: the choice between threads owning trials or blocks of
neurons, deferred weight gradients against per-thread buffers, one BLAS thread inside the
kernels' threads, and the memory estimate made before a run.
"""

from __future__ import annotations

import contextlib

import numba

from ..backends.numba import bits
from ..errors import SnngenError
from .checks import as_count


def memory_bytes(bptt, steps: int, batch: int, n: int, checkpoint_every: int | None = None,
                 n_synapses: int = 0, tape_input: bool | None = None,
                 parallel: str = "auto", input_grad: int = 0,
                 weights_only: bool = False) -> int:
    """:meth:`CompiledBPTT.memory_bytes` of ``bptt``."""
    where = "CompiledBPTT.memory_bytes"
    steps, batch, n = (as_count(v, name, where) for v, name in
                       ((steps, "steps"), (batch, "batch"), (n, "n")))
    n_synapses = as_count(n_synapses, "n_synapses", where, 0)
    input_grad = as_count(input_grad, "input_grad (number of inputs)", where, 0)
    if checkpoint_every is not None:
        checkpoint_every = as_count(checkpoint_every, "checkpoint_every (steps)", where)
    if not isinstance(parallel, str) or parallel not in ("auto", "trials", "neurons"):
        raise SnngenError(f"parallel must be 'auto', 'trials' or 'neurons', got "
                          f"{parallel!r}")
    item, k = bptt.dtype.itemsize, len(bptt.lm.states)
    threads = numba.get_num_threads()
    if parallel == "auto":
        parallel = parallel_choice(threads, batch, n)
    seg = steps if checkpoint_every is None else min(int(checkpoint_every), steps)
    minimal = bptt._minimal(not weights_only, 0.0, not weights_only)
    if tape_input is None:
        tape_input = checkpoint_every is not None and not minimal
    columns = len(bptt.tape_columns) if minimal else k
    tape = seg * batch * n * ((columns + int(tape_input)) * item + int(bptt.refractory))
    # bit-packed, and the float copy the loss sees (freed before the backward pass: an
    # upper bound)
    spikes = steps * batch * (8 * bits.words(n) + n * item)
    checkpoints = (-(-steps // seg) if seg < steps else 0) * batch * n * (
        k * item + 8 * bptt.refractory)
    checkpoints += seg * batch * 8 * bits.words(n) if seg < steps else 0  # recomputed spikes
    stored = seg * batch * n
    if parallel == "neurons":  # one weight-gradient buffer; a_x (not when deferred:
        chunks = max(1, min(n, threads))  # a_store holds it), its transpose by step
        # parity, and for dense weights the product's output: at most 1 + 3
        defer = input_grad > 0 or defer_weight_grads("auto", chunks, stored, n_synapses,
                                                      item, seg < steps, True)
        weights = n_synapses + ((not defer) + 3) * batch * n + defer * stored
    else:
        chunks = max(1, min(batch, threads))
        weights = (stored + n_synapses
                   if input_grad > 0 or defer_weight_grads("auto", chunks, stored,
                                                            n_synapses, item, seg < steps)
                   else chunks * n_synapses)
    weights += steps * batch * input_grad  # the returned dL/d(inputs)
    grads = item * weights + chunks * 8 * n * (len(bptt.lm.params) + len(bptt.lm.propagators))
    adjoints = batch * n * (k + 1) * item + batch * n * (k * item + 8 * bptt.refractory)
    return tape + spikes + checkpoints + grads + adjoints


def defer_weight_grads(choice: str, chunks: int, stored: int, synapses: int,
                        item: int, checkpointed: bool = False, by_neurons: bool = False) -> bool:
    """Deferred weight gradients (``stored`` adjoint values) or per-thread buffers (the
    ``chunks - 1`` extra copies of every weight). "auto" defers when the extra copies would
    hold more than the stored adjoints. Over a whole run's tape per-thread accumulation is
    faster (the adjoints are still in cache), so there it also needs the copies to exceed
    32 MiB (many threads, large projections); with checkpoints the adjoints of one segment
    are read back from cache and the two ran equally fast (T1 H=1024 dense, 2 threads).
    Threads owning blocks of neurons (``by_neurons``) have no copies to save: there "auto"
    defers when the stored adjoints are at most half the weights, because the deferred pass
    visits each row's gradient once per segment for all its events instead of once per
    event (T1, 2 threads: H=1024 dense with checkpoints every 20 steps 0.138 -> 0.124 s per
    iteration; H=4096 dense every 10, backward and weight gradients 1.21 -> 1.09 s)."""
    if choice == "auto" and by_neurons:
        return 2 * stored <= synapses
    if choice == "auto":
        floor = 0 if checkpointed else 32 * 2**20
        return (chunks - 1) * synapses * item > max(stored * item, floor)
    return choice == "deferred"


def parallel_choice(threads: int, batch: int, n: int) -> str:
    """How the backward pass shares its work between threads (``parallel="auto"``):
    "neurons" (threads own blocks of neurons of every trial and meet at a barrier each step)
    once each thread gets at least 384 neurons, or 32 when there are fewer trials than
    threads (the trials alone would leave threads idle); else "trials" (threads own trials).
    Measured on T1 (batch 32) with 2 threads, seconds per training iteration, trials against
    neurons: dense H = 256 0.031 / 0.036, H = 512 0.057 / 0.062, H = 768 0.106 / 0.101,
    H = 1024 (checkpoints every 20 steps) 0.190 / 0.149, H = 4096 (every 10) backward kernel
    1.5x faster by neurons; at 1 % H = 1024 0.079 / 0.085, H = 4096 0.493 / 0.460 (every 10:
    0.528 / 0.403). Below that size a step has too little work between two barriers.

    >>> parallel_choice(2, 32, 4096), parallel_choice(2, 32, 512), parallel_choice(1, 32, 4096)
    ('neurons', 'trials', 'trials')
    >>> parallel_choice(8, 4, 512)
    'neurons'
    """
    if threads < 2:
        return "trials"
    per_thread = n // threads
    return "neurons" if per_thread >= 384 or (batch < threads and per_thread >= 32) \
        else "trials"


_BLAS = None


def one_blas_thread():
    """Keep BLAS to one thread while the kernels' own threads each run matrix products
    (a multi-threaded BLAS inside them oversubscribes the cores: 4x slower on 2 cores)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController()
        except ImportError:  # a source checkout without it: correct, only slower
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else contextlib.nullcontext()
