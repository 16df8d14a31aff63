"""Connection rules and the builder that turns them into CSR synapse tables.

A rule (:class:`AllToAll`, :class:`FixedProbability`, ...) says *which* pre/post pairs are
connected; :func:`build_csr` draws the pairs and returns a :class:`CSR` whose rows are the
presynaptic neurons, as event-driven forward propagation needs. :func:`transpose` groups the same
synapses by postsynaptic neuron for ``on_post`` pathways.

>>> csr = build_csr(FixedOutDegree(k=2), n_pre=3, n_post=4, seed=0)
>>> csr.n_synapses, csr.indptr.tolist()
(6, [0, 2, 4, 6])
"""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit

from . import draw
from .errors import ConnectivityError, NetworkTooLargeError, did_you_mean
from .sharing import SHARING_RULES, Conv2D, Pool2D

__all__ = [
    "CSR", "AllToAll", "Conv2D", "Explicit", "FixedInDegree", "FixedOutDegree",
    "FixedProbability", "OneToOne", "Pool2D", "Rule", "Transpose", "build_csr", "checked",
    "expected_synapses", "fixed_indptr", "parse_rule", "transpose",
]

MAX_NEURONS = 2**31 - 1  # neuron indices are stored as int32
MAX_SEED = 2**64 - 1  # the Philox key
BYTES_PER_SYNAPSE = 12  # int32 post index + float64 weight, what a typical synapse table needs
_ACCEPTED = ("a rule object (AllToAll(), OneToOne(), FixedProbability(p), FixedInDegree(k), "
             "FixedOutDegree(k), Explicit(i, j)), the strings 'all_to_all' or 'one_to_one', "
             "or a dict {'p': 0.1}, {'k_in': 80}, {'k_out': 80} (each optionally with "
             "'allow_self') or {'i': pre_indices, 'j': post_indices}")


def _check_int(value, what: str, lo: int = 0, hi: int | None = None) -> int:
    # bool is an Integral, but FixedInDegree(True) is surely a mistake
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConnectivityError(f"{what} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConnectivityError(f"{what} must be {bound}, got {value}")
    return value


@dataclass(frozen=True)
class AllToAll:
    """Every pre neuron connects to every post neuron (``allow_self=False`` drops ``i == j``)."""

    allow_self: bool = True


@dataclass(frozen=True)
class OneToOne:
    """Pre neuron ``i`` connects to post neuron ``i``; both populations must have the same size."""


@dataclass(frozen=True)
class FixedProbability:
    """Each pair is connected independently with probability ``p``."""

    p: float
    allow_self: bool = True

    def __post_init__(self):
        if (isinstance(self.p, bool) or not isinstance(self.p, numbers.Real)
                or not 0.0 <= self.p <= 1.0):  # also rejects NaN
            raise ConnectivityError(f"FixedProbability: p must be a number in [0, 1], "
                                    f"got {self.p!r}")


@dataclass(frozen=True)
class _Degree:
    k: int
    allow_self: bool = True

    def __post_init__(self):
        _check_int(self.k, f"{type(self).__name__}: k")


@dataclass(frozen=True)
class FixedInDegree(_Degree):
    """Every post neuron receives synapses from exactly ``k`` distinct pre neurons."""


@dataclass(frozen=True)
class FixedOutDegree(_Degree):
    """Every pre neuron sends synapses to exactly ``k`` distinct post neurons."""


@dataclass(frozen=True, eq=False)  # arrays are neither hashable nor comparable with ==
class Explicit:
    """User-given synapse list: synapse ``s`` goes from pre ``i[s]`` to post ``j[s]``.

    Any order is accepted and repeated pairs are kept as separate synapses (multapses).
    """

    i: np.ndarray
    j: np.ndarray

    def __post_init__(self):
        for name in ("i", "j"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1:
                raise ConnectivityError(f"Explicit: {name} must be a 1-D index array, "
                                        f"got shape {arr.shape}")
            if arr.size == 0:  # np.asarray([]) is float64; an empty list is still fine
                arr = arr.astype(np.int64)
            elif arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
                raise ConnectivityError(f"Explicit: {name} must have an integer dtype, got "
                                        f"{arr.dtype}; convert it with .astype(int)")
            object.__setattr__(self, name, arr)
        if self.i.size != self.j.size:
            raise ConnectivityError(f"Explicit: i and j must have the same length, got "
                                    f"len(i) = {self.i.size} and len(j) = {self.j.size}")


Rule = AllToAll | OneToOne | FixedProbability | FixedInDegree | FixedOutDegree | Explicit | \
    Conv2D | Pool2D
_RULE_TYPES = (AllToAll, OneToOne, FixedProbability, FixedInDegree, FixedOutDegree, Explicit,
               *SHARING_RULES)
#: Rules whose tables are made on the host (a device backend uploads them)
HOST_BUILT = (Explicit, *SHARING_RULES)
_NAMED = {"all_to_all": AllToAll, "one_to_one": OneToOne}
_DICT_FORMS = {"p": FixedProbability, "k_in": FixedInDegree, "k_out": FixedOutDegree}


def parse_rule(spec=None, /, **kwargs) -> Rule:
    """Turn a rule object, a name or a dict shortcut into a rule object.

    Examples
    --------
    >>> parse_rule("all_to_all")
    AllToAll(allow_self=True)
    >>> parse_rule({"p": 0.1, "allow_self": False})
    FixedProbability(p=0.1, allow_self=False)
    >>> parse_rule(k_in=80)
    FixedInDegree(k=80, allow_self=True)
    """
    if kwargs:
        if spec is not None:
            raise ConnectivityError("give the connection rule either as one argument or as "
                                    "keywords, not both")
        spec = kwargs
    if isinstance(spec, _RULE_TYPES):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower().replace("-", "_").replace(" ", "_")
        if key in _NAMED:
            return _NAMED[key]()
        raise ConnectivityError(f"unknown connection rule {spec!r}."
                                f"{did_you_mean(key, _NAMED)} Accepted: {_ACCEPTED}")
    if isinstance(spec, dict):
        keys = set(spec)
        if keys == {"i", "j"}:
            return Explicit(spec["i"], spec["j"])
        forms = [k for k in _DICT_FORMS if k in keys]
        if len(forms) == 1 and keys <= {forms[0], "allow_self"}:
            return _DICT_FORMS[forms[0]](spec[forms[0]], bool(spec.get("allow_self", True)))
        raise ConnectivityError(f"connection rule dict with keys {sorted(keys)} not "
                                f"understood. Accepted: {_ACCEPTED}")
    raise ConnectivityError(f"connection rule {spec!r} not understood. Accepted: {_ACCEPTED}")


def _candidates(n_pre: int, n_post: int, allow_self: bool) -> int:
    return n_pre * n_post - (0 if allow_self else min(n_pre, n_post))


def expected_synapses(rule, n_pre: int, n_post: int) -> int:
    """Number of synapses ``rule`` will create: exact, or the mean for :class:`FixedProbability`.

    Cheap (no allocation, no sampling), so memory checks can run before building.

    >>> expected_synapses(FixedProbability(0.1), 1000, 2000)
    200000
    >>> expected_synapses(AllToAll(allow_self=False), 10, 10)
    90
    """
    rule = parse_rule(rule)
    n_pre, n_post = int(n_pre), int(n_post)  # Python ints: products must not overflow
    if isinstance(rule, AllToAll):
        return _candidates(n_pre, n_post, rule.allow_self)
    if isinstance(rule, OneToOne):
        return min(n_pre, n_post)
    if isinstance(rule, FixedProbability):
        return round(rule.p * _candidates(n_pre, n_post, rule.allow_self))
    if isinstance(rule, FixedInDegree):
        return rule.k * n_post
    if isinstance(rule, FixedOutDegree):
        return rule.k * n_pre
    if isinstance(rule, SHARING_RULES):
        return rule.count()
    return int(rule.i.size)


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


# ---------------------------------------------------------------------------------------------
# numba kernels (the random draws are in snngen.draw)

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


@njit(cache=True)
def _explicit(i, j, n_pre):
    n_syn = i.size
    indptr = np.zeros(n_pre + 1, np.int64)
    for s in range(n_syn):
        indptr[i[s] + 1] += 1
    for r in range(n_pre):
        indptr[r + 1] += indptr[r]
    nxt = indptr[:-1].copy()
    indices = np.empty(n_syn, np.int32)
    source = np.empty(n_syn, np.int64)
    for s in range(n_syn):
        d = nxt[i[s]]
        nxt[i[s]] = d + 1
        indices[d] = j[s]
        source[d] = s
    for r in range(n_pre):
        a, b = indptr[r], indptr[r + 1]
        for d in range(a + 1, b):
            if indices[d] < indices[d - 1]:
                # stable, so repeated pairs keep the user's order
                perm = np.argsort(indices[a:b], kind="mergesort") + a
                row, src = indices[perm], source[perm]
                for x in range(b - a):
                    indices[a + x], source[a + x] = row[x], src[x]
                break
    order = np.empty(n_syn, np.int64)
    for d in range(n_syn):
        order[source[d]] = d
    return indptr, indices, order


# ---------------------------------------------------------------------------------------------

def _check_degree(rule, k_name: str, n_other: int, other: str) -> None:
    limit = max(n_other - (0 if rule.allow_self else 1), 0)  # distinct partners available
    if rule.k > limit:
        self_note = "" if rule.allow_self else " once self-connections are excluded"
        raise ConnectivityError(
            f"{type(rule).__name__}: k = {rule.k} distinct {other} neurons are needed per "
            f"neuron, but only {limit} are available{self_note} ({other} population has "
            f"{n_other} neurons); lower {k_name} or allow self-connections")


def _check_explicit(name: str, arr: np.ndarray, n: int, side: str) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        pos = int(np.flatnonzero((arr < 0) | (arr >= n))[0])
        raise ConnectivityError(
            f"Explicit: {name}[{pos}] = {int(arr[pos])} is out of range for the {side} "
            f"population of {n} neurons (valid indices 0..{n - 1}); this is the first bad "
            f"index")


def checked(rule, n_pre: int, n_post: int, seed: int, max_bytes: int | None = None):
    """``(rule, n_pre, n_post, seed)`` validated for building, the rule parsed; raises the
    errors :func:`build_csr` documents. Every builder (host or device) starts here."""
    rule = parse_rule(rule)
    n_pre = _check_int(n_pre, "n_pre", hi=MAX_NEURONS)
    n_post = _check_int(n_post, "n_post", hi=MAX_NEURONS)
    seed = _check_int(seed, "seed", hi=MAX_SEED)
    if isinstance(rule, OneToOne) and n_pre != n_post:
        raise ConnectivityError(f"OneToOne needs populations of equal size, got n_pre = "
                                f"{n_pre} and n_post = {n_post}")
    if isinstance(rule, FixedOutDegree):
        _check_degree(rule, "k_out", n_post, "post")
    if isinstance(rule, FixedInDegree):
        _check_degree(rule, "k_in", n_pre, "pre")
    if isinstance(rule, Explicit):
        _check_explicit("i", rule.i, n_pre, "pre")
        _check_explicit("j", rule.j, n_post, "post")
    if isinstance(rule, SHARING_RULES):
        rule.check_sizes(n_pre, n_post)

    n_syn = expected_synapses(rule, n_pre, n_post)
    estimate = BYTES_PER_SYNAPSE * n_syn + 8 * (n_pre + 1)
    if max_bytes is not None and estimate > max_bytes:
        raise NetworkTooLargeError(
            f"{type(rule).__name__} between {n_pre} pre and {n_post} post neurons would create "
            f"about {n_syn:,} synapses needing about {estimate / 2**30:.3g} GiB "
            f"({BYTES_PER_SYNAPSE} bytes per synapse plus row pointers), more than the limit "
            f"of {max_bytes / 2**30:.3g} GiB; make the network sparser or smaller, or raise "
            f"max_bytes")
    return rule, n_pre, n_post, seed


def fixed_indptr(rule, n_pre: int, n_post: int) -> np.ndarray | None:
    """Row pointers of the rules whose row lengths are known in advance (AllToAll, OneToOne,
    FixedOutDegree), else None.

    >>> fixed_indptr(AllToAll(allow_self=False), 3, 2).tolist()
    [0, 1, 2, 4]
    """
    rows = np.arange(n_pre + 1, dtype=np.int64)
    if isinstance(rule, OneToOne):
        return rows
    if isinstance(rule, FixedOutDegree):
        return rows * rule.k
    if isinstance(rule, AllToAll):
        return rows * n_post - (0 if rule.allow_self else np.minimum(rows, n_post))
    return None


def build_csr(rule, n_pre: int, n_post: int, seed: int, max_bytes: int | None = None) -> CSR:
    """Draw the synapses of ``rule`` between ``n_pre`` and ``n_post`` neurons as a :class:`CSR`.

    The draws are counter-based (Philox4x32-10 keyed by ``seed``, :mod:`snngen.draw`), in
    parallel over rows: the table depends only on (rule, sizes, seed), and the CUDA backend
    draws the same table on the GPU.

    Parameters
    ----------
    rule : Rule, str or dict
        Anything :func:`parse_rule` accepts.
    n_pre, n_post : int
        Population sizes, each below 2**31.
    seed : int
        In [0, 2**64): the same seed gives the same synapses, on every backend.
    max_bytes : int, optional
        Refuse, before allocating, networks estimated (:data:`BYTES_PER_SYNAPSE` per synapse plus
        row pointers) to be larger; by default, the memory available now.

    Raises
    ------
    ConnectivityError
        Invalid sizes, rule parameters or index arrays.
    NetworkTooLargeError
        The estimate exceeds ``max_bytes``.

    Examples
    --------
    >>> csr = build_csr(AllToAll(allow_self=False), 3, 3, seed=0)
    >>> csr.indices.tolist()
    [1, 2, 0, 2, 0, 1]
    >>> explicit = build_csr({"i": [1, 0, 1], "j": [2, 1, 0]}, 2, 3, seed=0)
    >>> explicit.indices.tolist(), explicit.order.tolist()
    ([1, 0, 2], [2, 0, 1])
    """
    if max_bytes is None:  # the table is made here, in host memory: it must fit there
        from .runtime.simulator import available_bytes
        max_bytes = available_bytes()
    rule, n_pre, n_post, seed = checked(rule, n_pre, n_post, seed, max_bytes)
    with _threads_for(expected_synapses(rule, n_pre, n_post)):
        return _draw(rule, n_pre, n_post, seed)


#: Tables expected to be smaller than this are drawn on one thread: waking Numba's thread pool
#: for a parallel loop cost about 10 ms on the busy 2-core machine, more than drawing 1e5
#: synapses (0.4 ms on one thread).
PARALLEL_FROM = 1 << 20


@contextlib.contextmanager
def _threads_for(n_syn: int):
    before = numba.get_num_threads()
    if n_syn < PARALLEL_FROM:
        numba.set_num_threads(1)  # this thread's setting only
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _draw(rule, n_pre: int, n_post: int, seed: int) -> CSR:
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    if isinstance(rule, SHARING_RULES):
        i, j, shared = rule.pairs()
        indptr, indices, order = _explicit(i, j, n_pre)
        in_csr = np.empty_like(shared)
        in_csr[order] = shared
        return CSR(n_pre, n_post, indptr, indices, shared=in_csr)
    if isinstance(rule, Explicit):
        # one dtype for both, so the kernel is compiled for two signatures at most
        dtype = np.int32 if rule.i.dtype == rule.j.dtype == np.int32 else np.int64
        i, j = rule.i.astype(dtype, copy=False), rule.j.astype(dtype, copy=False)
        return CSR(n_pre, n_post, *_explicit(i, j, n_pre))
    if isinstance(rule, OneToOne):
        return CSR(n_pre, n_post, fixed_indptr(rule, n_pre, n_post),
                   np.arange(n_pre, dtype=np.int32))
    if isinstance(rule, FixedInDegree):
        # draw each post neuron's pre set (a column), then counting-sort the columns into rows
        col_pre = np.empty(n_post * rule.k, dtype=np.int32)
        draw.sample_rows(n_post, n_pre, rule.k, rule.allow_self, draw.ZIGGURAT, k0, k1,
                         draw.TAG_IN_DEGREE, col_pre)
        col_ptr = np.arange(n_post + 1, dtype=np.int64) * rule.k
        return CSR(n_pre, n_post, *_regroup(col_ptr, col_pre, n_pre, False)[:2])
    indptr = fixed_indptr(rule, n_pre, n_post)
    if isinstance(rule, FixedProbability):
        indptr = np.zeros(n_pre + 1, dtype=np.int64)
        if rule.p == 0:
            return CSR(n_pre, n_post, indptr, np.empty(0, np.int32))
        args = (rule.allow_self, draw.probability_rate(rule.p), draw.ZIGGURAT, k0, k1)
        counts = np.empty(n_pre, dtype=np.int64)
        draw.probability_counts(n_pre, n_post, *args, counts)
        np.cumsum(counts, out=indptr[1:])
        del counts
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        draw.probability_fill(n_pre, n_post, *args, indptr, indices)
    elif isinstance(rule, FixedOutDegree):
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        draw.sample_rows(n_pre, n_post, rule.k, rule.allow_self, draw.ZIGGURAT, k0, k1,
                         draw.TAG_OUT_DEGREE, indices)
    else:
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        draw.all_to_all_fill(n_pre, n_post, rule.allow_self, indptr, indices)
    return CSR(n_pre, n_post, indptr, indices)


def transpose(csr: CSR) -> Transpose:
    """Group the synapses of ``csr`` by postsynaptic neuron.

    >>> t = transpose(build_csr({"i": [0, 1, 1], "j": [1, 1, 0]}, 2, 2, seed=0))
    >>> t.indptr.tolist(), t.synapse.tolist(), t.pre.tolist()
    ([0, 1, 3], [1, 0, 2], [1, 0, 1])
    """
    indptr, pre, synapse = _regroup(csr.indptr, csr.indices, csr.n_post, True)
    return Transpose(indptr, synapse, pre)
