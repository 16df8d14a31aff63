"""What a run of :class:`snngen.train.BPTT` holds in memory, counted from the network's
shapes before anything is allocated: the tape (one segment of it with checkpoints), the
spikes and inputs of the whole run, the rings of inputs in flight and of their adjoints, the
checkpoints, the loss's records and gradients, the synapse tables and the gradient sums.
``BPTT`` refuses a run that would not fit (``max_memory``, or 90 % of the memory available)
before it allocates it.
"""

from __future__ import annotations

from ..errors import NetworkTooLargeError
from ..runtime.simulator import available_bytes, size_text


def check_fits(bptt, steps: int, batch: int, backward: bool, where: str) -> None:
    """Refuse a run that would hold more than ``bptt.max_memory`` bytes (or 90 % of the
    memory available), before anything of it is allocated."""
    need = bptt.memory_bytes(steps, batch, backward)
    given = bptt.max_memory is not None
    limit = bptt.max_memory if given else int(0.9 * available_bytes())
    if need > limit:
        raise NetworkTooLargeError(
            f"{where}: a run of {steps} steps x {batch} trials needs about {size_text(need)} "
            f"but only {size_text(limit)} "
            f"{'is allowed (max_memory)' if given else 'is available'}; nothing was "
            "allocated. Use checkpoint_every=K (a tape of K steps), a smaller batch, shorter "
            "runs or dtype='float32'.")


def memory_parts(bptt, steps: int, batch: int, backward: bool = True) -> dict[str, int]:
    """Bytes of each kind of array a run of ``steps`` x ``batch`` trials holds at its peak
    (``backward=False``: a forward pass alone, as ``predict`` runs), by name."""
    f = bptt.kernels.dtype.itemsize
    net, nlm = bptt.net, bptt.nlm
    segments = bptt._segments(steps)
    tape = segments[0][1]
    longest = {}
    for d in nlm.deliveries:
        longest[d.post] = max(longest.get(d.post, 0),
                              int(bptt.tables[d.projection]["delays"].max(initial=0)))
    reads = {}
    for ref in bptt.loss.reads:
        reads.setdefault(ref.population.name, set()).add(ref.name)
    parts = dict.fromkeys(("states", "spikes and inputs", "tape", "rings", "checkpoints",
                           "loss", "tables", "adjoints", "gradients"), 0)
    for name, lm in nlm.populations.items():
        n, k, m = net.populations[name].n, len(lm.states), len(lm.inputs)
        q = len(lm.noise) + len(net.populations[name].inputs)  # noise draws, TimedArrays
        ring = longest.get(name, 0) + 1
        state = batch * k * n * f + batch * n * 8  # s, last
        parts["states"] += state + (len(lm.params) + len(lm.propagators)) * n * f + n * 8
        parts["spikes and inputs"] += steps * batch * (1 + q) * n * f  # z, N
        parts["tape"] += tape * batch * n * (1 + (k + m) * f)  # tr, ts, tx
        parts["rings"] += ring * batch * m * n * f
        if len(segments) > 1 and not bptt._online:
            parts["checkpoints"] += len(segments) * (state + ring * batch * m * n * f)
        mine = reads.get(name, set())
        parts["loss"] += 2 * steps * batch * n * 8 * len(mine - {"spikes"})  # records, dL
        parts["loss"] += steps * batch * n * 8 * ("spikes" in mine)          # dL/dz
        if backward:
            parts["adjoints"] += batch * n * (k + 1) * f + batch * m * n * f * \
                bptt._adjoint_ring(name, ring, steps)                       # a, dz, ar
            parts["adjoints"] += batch * n * f * (
                (steps if mine - {"spikes"} else 1) * k + (steps if "spikes" in mine else 1))
            parts["gradients"] += (len(lm.params) + len(lm.propagators)) * n * 8
    for name in nlm.sources:
        parts["spikes and inputs"] += steps * batch * net.populations[name].n * f
        parts["adjoints"] += f if backward else 0  # the placeholder dz of a source
    for proj in dict.fromkeys(d.projection for d in nlm.deliveries):
        table = bptt.tables[proj]
        parts["tables"] += sum(table[key].nbytes for key in ("indptr", "indices", "delays",
                                                             "layout"))
    for d in nlm.deliveries:
        size = bptt.tables[d.projection]["csr"].n_synapses
        parts["tables"] += size * f
        parts["gradients"] += size * 8 if backward else 0
    return parts
