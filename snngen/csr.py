"""Synapse tables: :class:`CSR` (synapses grouped by presynaptic neuron, what event-driven
propagation reads) and :class:`Transpose` (the same synapses grouped by postsynaptic
neuron, for ``on_post`` pathways), with the counting sort between them. The rules that draw
them are in :mod:`snngen.connectivity`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


class CSR:
    """Synapses grouped by presynaptic neuron (compressed sparse rows). Read-only.

    Row ``i`` holds the synapses of pre neuron ``i`` at positions ``indptr[i]:indptr[i + 1]``;
    ``indices`` gives their post neurons, ascending within each row. ``order`` is set for
    :class:`Explicit` rules only: ``order[s]`` is the CSR position of the user's ``s``-th
    synapse, so ``out[order] = user_values`` puts per-synapse values into CSR order.
    ``shared`` is set for weight-sharing rules (:mod:`snngen.sharing`) only: the index of the
    parameter each synapse shares, in CSR order.

    A table drawn on a GPU keeps its ``indices`` there: ``device`` then maps ``"indptr"`` and
    ``"indices"`` to the device arrays' host stand-ins, and ``indices`` is copied to the host
    the first time it is read.
    """

    __slots__ = ("n_pre", "n_post", "indptr", "_indices", "order", "device", "shared")

    def __init__(self, n_pre: int, n_post: int, indptr: np.ndarray, indices,
                 order: np.ndarray | None = None, device: dict | None = None,
                 shared: np.ndarray | None = None):
        for name, value in (("n_pre", n_pre), ("n_post", n_post), ("indptr", indptr),
                            ("_indices", indices), ("order", order), ("device", device),
                            ("shared", shared)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"CSR is read-only (cannot set '{name}')")

    @property
    def indices(self) -> np.ndarray:
        """Post neuron (int32) of every synapse, in CSR order."""
        return np.asarray(self._indices)  # a device array's stand-in fetches it once

    @property
    def n_synapses(self) -> int:
        """Number of synapses."""
        return int(self.indptr[-1])

    def pre_indices(self) -> np.ndarray:
        """Pre neuron (int32) of every synapse, in CSR order.

        >>> from snngen.connectivity import build_csr
        >>> build_csr("one_to_one", 3, 3, seed=0).pre_indices().tolist()
        [0, 1, 2]
        """
        return np.repeat(np.arange(self.n_pre, dtype=np.int32), np.diff(self.indptr))

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (like ``ndarray.nbytes``), wherever they are."""
        extra = sum(a.nbytes for a in (self.order, self.shared) if a is not None)
        return int(self.indptr.nbytes + self._indices.nbytes + extra)

    def __repr__(self) -> str:
        where = "device" if self.device else "host"
        return (f"CSR(n_pre={self.n_pre}, n_post={self.n_post}, "
                f"n_synapses={self.n_synapses}, on the {where})")


@dataclass(frozen=True, eq=False)
class Transpose:
    """Synapses grouped by postsynaptic neuron, for pathways triggered by post spikes.

    Group ``j`` is ``indptr[j]:indptr[j + 1]``; ``synapse`` holds CSR positions and ``pre`` the
    pre neurons, ascending within each group.
    """

    indptr: np.ndarray
    synapse: np.ndarray
    pre: np.ndarray


@njit(cache=True)
def _regroup(indptr, indices, n_cols, with_positions):
    """Counting sort of a row-grouped table by column: O(synapses + rows + columns).

    Rows are visited in ascending order, so each column group lists its rows ascending. A
    one-level scatter would write each synapse to a random place in a big array (a cache miss
    each, several times slower); instead synapses are first scattered into at most a few hundred
    buckets of adjacent columns, which are then sorted one at a time inside the cache.
    """
    n_syn, n_rows = indices.size, indptr.size - 1
    shift = 0  # bucket = column >> shift; low 16 bits at most, kept in a uint16 scratch array
    while (n_cols - 1) >> shift >= 256 and shift < 16:
        shift += 1
    n_buckets = ((n_cols - 1) >> shift) + 1 if n_cols > 0 else 0
    bucket_ptr = np.zeros(n_buckets + 1, np.int64)
    for s in range(n_syn):
        bucket_ptr[(indices[s] >> shift) + 1] += 1
    biggest = 0
    for b in range(n_buckets):
        biggest = max(biggest, bucket_ptr[b + 1])
        bucket_ptr[b + 1] += bucket_ptr[b]
    nxt = bucket_ptr[:-1].copy()
    rows = np.empty(n_syn, np.int32)
    positions = np.empty(n_syn if with_positions else 0, np.int64)
    low = np.empty(n_syn, np.uint16)
    mask = (1 << shift) - 1
    for r in range(n_rows):
        for s in range(indptr[r], indptr[r + 1]):
            c = indices[s]
            d = nxt[c >> shift]
            nxt[c >> shift] = d + 1
            rows[d], low[d] = r, c & mask
            if with_positions:
                positions[d] = s
    col_ptr = np.zeros(n_cols + 1, np.int64)
    row_buf = np.empty(biggest, np.int32)
    pos_buf = np.empty(biggest if with_positions else 0, np.int64)
    local = np.empty((1 << shift) + 1, np.int64)
    for b in range(n_buckets):
        a, e, c0 = bucket_ptr[b], bucket_ptr[b + 1], b << shift
        width = min(1 << shift, n_cols - c0)
        local[0] = a
        for q in range(width):
            local[q + 1] = 0
        for d in range(a, e):
            local[low[d] + 1] += 1
        for q in range(width):
            local[q + 1] += local[q]
            col_ptr[c0 + q + 1] = local[q + 1]
        for x in range(e - a):
            row_buf[x] = rows[a + x]
            if with_positions:
                pos_buf[x] = positions[a + x]
        for x in range(e - a):
            q = low[a + x]
            d = local[q]
            local[q] = d + 1
            rows[d] = row_buf[x]
            if with_positions:
                positions[d] = pos_buf[x]
    return col_ptr, rows, positions


def transpose(csr: CSR) -> Transpose:
    """Group the synapses of ``csr`` by postsynaptic neuron.

    >>> from snngen.connectivity import build_csr
    >>> t = transpose(build_csr({"i": [0, 1, 1], "j": [1, 1, 0]}, 2, 2, seed=0))
    >>> t.indptr.tolist(), t.synapse.tolist(), t.pre.tolist()
    ([0, 1, 3], [1, 0, 2], [1, 0, 1])
    """
    indptr, pre, synapse = _regroup(csr.indptr, csr.indices, csr.n_post, True)
    return Transpose(indptr, synapse, pre)
