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
from .csr import CSR, Transpose, _regroup, transpose  # noqa: F401 - re-exported
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


# ---------------------------------------------------------------------------------------------
# numba kernels (the random draws are in snngen.draw)

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
