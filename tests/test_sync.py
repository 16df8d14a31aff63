"""The spin barrier and roll call that let the threads of one Numba parallel region meet
(snngen.backends.numba.sync): every thread sees every other's writes after a barrier, over
many steps, and chunks that cannot all run at once fall back to one chunk doing the work,
never a deadlock."""

import numba
import numpy as np
import pytest
from numba import njit, prange

from snngen.backends.numba.sync import (
    ALONE,
    SKIP,
    TOGETHER,
    atomic_add,
    atomic_cas,
    atomic_load,
    atomic_store,
    barrier,
    new_sync,
    roll_call,
)


@njit(parallel=True, cache=True)
def _ping_pong(parties, steps, slots, sums, roles):
    """Each step every chunk writes its slot, meets the others, then sums all slots (which
    must hold this step's values: a missing barrier or a stale read shows as a wrong sum).
    Slots are double-buffered by step parity."""
    sync = new_sync()
    for c in prange(parties):
        role = roll_call(sync, c, parties)
        roles[c] = role
        if role == SKIP:
            continue
        together = role == TOGETHER
        lo, hi = (c, c + 1) if together else (0, parties)
        for s in range(steps):
            for r in range(lo, hi):
                slots[s % 2, r] = (s + 1) * (r + 1)
            barrier(sync, parties if together else 1)
            for r in range(lo, hi):
                sums[s, r] = slots[s % 2].sum()


def _check(parties, steps=2000):
    slots = np.zeros((2, parties), np.int64)
    sums = np.zeros((steps, parties), np.int64)
    roles = np.full(parties, -1, np.int64)
    _ping_pong(parties, steps, slots, sums, roles)
    expect = np.arange(1, steps + 1)[:, None] * (parties * (parties + 1) // 2)
    np.testing.assert_array_equal(sums, np.broadcast_to(expect, sums.shape))
    return roles


def test_barrier_orders_every_step_when_all_chunks_run_together():
    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("needs two Numba threads")
    roles = _check(threads)
    assert roles.tolist() == [TOGETHER] * threads


def test_roll_call_falls_back_to_one_chunk_instead_of_deadlocking():
    """More chunks than threads, or one thread: the chunks cannot all wait for each other.
    One chunk is told to do everything alone, the others to skip, and the result is the
    same."""
    threads = numba.get_num_threads()
    roles = _check(threads + 1, steps=50)
    assert sorted(roles.tolist()) == [ALONE] + [SKIP] * threads
    numba.set_num_threads(1)
    try:
        roles = _check(3, steps=50)
    finally:
        numba.set_num_threads(threads)
    assert roles.tolist() == [ALONE, SKIP, SKIP]


@njit(cache=True)
def _atomics():
    a = np.zeros(4, np.int64)
    old = atomic_add(a, 1, 5)
    seen = atomic_cas(a, 1, 5, 7)     # matches: swaps
    kept = atomic_cas(a, 1, 5, 9)     # no longer matches: leaves 7
    atomic_store(a, 2, 3)
    return old, seen, kept, atomic_load(a, 1), a[2]


def test_atomics():
    assert _atomics() == (0, 5, 7, 7, 3)
