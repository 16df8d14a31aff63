"""Atomics and a spin barrier for threads of one Numba parallel region.

Numba's ``prange`` has no barrier: a loop whose steps need every thread's previous step (the
reverse time loop of BPTT when threads own blocks of neurons rather than trials) would need one
parallel region per step. These intrinsics (LLVM atomics, sequentially consistent) let the
threads of one region meet instead:

- :func:`roll_call` decides, once, whether all ``parties`` chunks of a ``prange`` run at the
  same time. Numba does not promise that (a nested region, a TBB arena or a single thread may
  run them one after another), and a barrier among chunks that do not run together would wait
  forever. So every chunk checks in and waits a bounded time for the others; if they do not all
  arrive, one chunk (chosen by compare-and-swap) is told to do all the work alone and the
  others to return. Nothing can deadlock, and the answer is the same either way.
- :func:`barrier` is a generation-counting barrier: the last to arrive resets the count and
  advances the generation; the others spin on it (``pause`` on x86), then yield the CPU.
  A chunk that raises (a shape mismatch, say) leaves the region early and the others wait
  for it forever: code between a roll call and the last barrier must not be able to raise.

The state is a small int64 array, ``new_sync()``, one per run; its counters sit on separate
cache lines.

>>> import numpy as np, numba
>>> from numba import njit, prange
>>> @njit(parallel=True)
... def total(parties, out):
...     sync = new_sync()
...     for c in prange(parties):
...         role = roll_call(sync, c, parties)
...         if role == SKIP:
...             continue
...         together = role == TOGETHER
...         lo, hi = (c, c + 1) if together else (0, parties)
...         for r in range(lo, hi):
...             out[r] = r + 1                     # phase 1: each writes its own slot
...         barrier(sync, parties if together else 1)
...         for r in range(lo, hi):
...             out[parties + r] = out.sum() - out[parties:].sum()  # reads every slot
>>> out = np.zeros(8, np.int64); total(4, out); out[4:].tolist()
[10, 10, 10, 10]
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_COUNT, _GEN, _ROLL, _DECIDE = 0, 8, 16, 24   # int64 slots, 64 bytes apart
SYNC_SIZE = 32
TOGETHER, ALONE, SKIP = 0, 1, 2                # roll_call's answers
_SPINS = 2000          # pauses before a waiting thread starts yielding the CPU
_ROLL_YIELDS = 200000  # yields a chunk waits at the roll call (tens of ms) before giving up

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_POSIX = sys.platform != "win32"


def digest() -> str:
    """Hash of this file: generated kernels that inline these intrinsics embed it, so that
    Numba's cache (keyed on the kernel's own file) never serves code built from an older one."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _pointer(context, builder, arr_t, arr, idx):
    aryobj = context.make_array(arr_t)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arr_t, aryobj, [idx], wraparound=False,
                                    boundscheck=False)


def _check(arr):
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1):
        raise TypeError("atomics need a 1-d int64 array")


def _atomic(name: str, ret, emit, doc: str):
    """An intrinsic ``name(arr, idx, *values)`` on ``arr[idx]`` of a 1-d int64 array:
    ``emit(builder, pointer, *values)`` writes the LLVM instruction (sequentially consistent).
    Numba's intrinsics take fixed arguments, so there is one definition per arity."""
    def typed(arr, values):
        _check(arr)

        def codegen(context, builder, signature, args):
            ptr = _pointer(context, builder, signature.args[0], args[0], args[1])
            out = emit(builder, ptr, *args[2:])
            return context.get_dummy_value() if out is None else out
        return ret(arr, types.intp, *([types.int64] * values)), codegen
    arity = emit.__code__.co_argcount - 2
    if arity == 0:
        def define(typingctx, arr, idx):
            return typed(arr, 0)
    elif arity == 1:
        def define(typingctx, arr, idx, value):
            return typed(arr, 1)
    else:
        def define(typingctx, arr, idx, first, second):
            return typed(arr, 2)
    define.__name__, define.__qualname__, define.__doc__ = name, name, doc
    return intrinsic(define)


atomic_add = _atomic("atomic_add", types.int64,
                     lambda b, ptr, val: b.atomic_rmw("add", ptr, val, "seq_cst"),
                     "arr[idx] += val atomically; returns the old value.")
atomic_load = _atomic("atomic_load", types.int64,
                      lambda b, ptr: b.load_atomic(ptr, "seq_cst", 8),
                      "arr[idx], read atomically.")
atomic_store = _atomic("atomic_store", types.void,
                       lambda b, ptr, val: b.store_atomic(val, ptr, "seq_cst", 8),
                       "arr[idx] = val atomically.")
atomic_cas = _atomic("atomic_cas", types.int64,
                     lambda b, ptr, expected, new: b.extract_value(
                         b.cmpxchg(ptr, expected, new, "seq_cst", "seq_cst"), 0),
                     "If arr[idx] == expected, set it to new; returns the value found.")


def _call(builder, name, ret=None):
    """Emit a call of the argument-less function ``name`` (an LLVM intrinsic or libc)."""
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ret or ir.VoidType(), []), name)
    builder.call(fn, [])


@intrinsic
def cpu_relax(typingctx):
    """A spin-wait hint (x86 ``pause``; nothing elsewhere)."""
    def codegen(context, builder, signature, args):
        if _X86:
            _call(builder, "llvm.x86.sse2.pause")
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def yield_cpu(typingctx):
    """Give the CPU to another runnable thread (POSIX ``sched_yield``; a pause elsewhere)."""
    def codegen(context, builder, signature, args):
        if _POSIX:
            _call(builder, "sched_yield", ir.IntType(32))
        elif _X86:
            _call(builder, "llvm.x86.sse2.pause")
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True)
def new_sync():
    """The shared state of one roll call and its barriers."""
    return np.zeros(SYNC_SIZE, np.int64)


@njit(cache=True, inline="always")
def _wait_step(spins):
    if spins < _SPINS:
        cpu_relax()
    else:
        yield_cpu()


@njit(cache=True)
def roll_call(sync, chunk, parties):
    """Called once by every chunk ``0 .. parties - 1`` of a ``prange``: TOGETHER when all of
    them are running at once (they may then meet at :func:`barrier`); otherwise exactly one
    chunk gets ALONE (it must do all the work, with ``barrier(sync, 1)``) and the rest SKIP."""
    if parties <= 1:
        return ALONE
    atomic_add(sync, _ROLL, 1)
    spins = 0
    while atomic_load(sync, _ROLL) < parties and spins < _SPINS + _ROLL_YIELDS:
        _wait_step(spins)
        spins += 1
    if atomic_load(sync, _ROLL) >= parties:
        atomic_cas(sync, _DECIDE, 0, 1)          # everyone is here: work together
    else:
        atomic_cas(sync, _DECIDE, 0, 2 + chunk)  # gave up waiting: the first to say so works
    decision = atomic_load(sync, _DECIDE)
    if decision == 1:
        return TOGETHER
    return ALONE if decision == 2 + chunk else SKIP


@njit(cache=True)
def barrier(sync, parties):
    """Wait until ``parties`` threads have called it (``parties`` <= 1: return at once).
    Everything written before it is visible to every thread after it."""
    if parties <= 1:
        return
    gen = atomic_load(sync, _GEN)
    if atomic_add(sync, _COUNT, 1) == parties - 1:
        atomic_store(sync, _COUNT, 0)
        atomic_add(sync, _GEN, 1)
        return
    spins = 0
    while atomic_load(sync, _GEN) == gen:
        _wait_step(spins)
        spins += 1
