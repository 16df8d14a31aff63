"""Arrays for a built network: structure key, memory estimate and allocation by argument role.

The generated module's ``SPEC`` lists every kernel argument with its role; this module fills
each one from the network description, following the naming convention of
:mod:`snngen.ir.lower`.
"""

from __future__ import annotations

import platform

import numpy as np
import sympy as sp

from .. import __version__
from .. import connectivity as conn
from ..errors import ConnectivityError, InvalidValueError, SnngenError
from ..ir.nodes import NEVER
from ..model import Quantities, is_quantity
from .network import Normal, TimedArray, Uniform
from .validate import delay_steps

_ITEM = {"float32": 4, "float64": 8}


def _owned(value, dtype=None) -> np.ndarray:
    """A fresh, writable, C-ordered copy (broadcast views are read-only)."""
    return np.array(value, dtype=dtype, order="C", copy=True)


def structure_key(net, backend) -> str:
    """What the generated code depends on: structure, never values or sizes."""
    parts = [f"snngen {__version__}", f"python {platform.python_version()}",
             backend.version_key(), f"dtype {net.dtype}"]
    for pop in net.populations.values():
        parts.append(f"pop {pop.name} {pop.kind}")
        if pop.kind == "neuron":
            parts += [pop.model.canonical(), f"method {pop.method}",
                      f"per-neuron {sorted(pop.per_neuron())}",
                      f"inputs {sorted((k, v.values.ndim) for k, v in pop.inputs.items())}"]
        elif pop.kind == "poisson":
            parts.append(f"rates {pop.rates.ndim}")
    for proj in net.projections.values():
        parts += [f"proj {proj.name} {proj.pre.population.name} -> {proj.post.population.name}",
                  proj.model.canonical(), f"heterogeneous {proj.heterogeneous}",
                  f"params {sorted(proj.params)}"]
    for mon in net.monitors:
        parts.append(f"monitor {mon.kind} {mon.pop.name} {mon.variables}")
    for op in net.operations:  # their statements are in the generated code
        parts.append(f"operation {op.pop.name} " + ";".join(
            f"{s.target}{s.op}{sp.srepr(s.expr)}" for s in op.statements))
    from ..cache import digest
    return digest("\n".join(parts))[:32]


def _ring_size(net, pop, longest=None) -> int:
    """Slots of ``pop``'s spike history: its longest outgoing delay + 1. Per-synapse delays
    count where the events are delivered when due (``longest``: projection -> its longest
    delay in steps; an expression's delays are known only once drawn)."""
    size = 1
    for proj in net.projections.values():
        if proj.pre.population is pop:
            if not proj.heterogeneous:
                size = max(size, int(proj.delay_steps))
            elif longest is not None and proj.name in longest:
                size = max(size, longest[proj.name])
    return size + 1


def spike_capacity(net, mon) -> int:
    """Spikes a spike monitor's first buffers hold (they double when full)."""
    return max(1024, 4 * net.batch * mon.pop.n)


#: Bytes per spike held by a spike monitor: its buffers (int32 index, int64 step, int32
#: trial) and the copies handed to the user (the same and float64 times).
SPIKE_BUFFER_BYTES, SPIKE_RESULT_BYTES = 16, 24


def records(step: int, n_steps: int, every: int) -> int:
    """How many of steps ``step .. step + n_steps - 1`` a state monitor records (the multiples
    of ``every``)."""
    first = -(-step // every) * every
    return max(0, -(-(step + n_steps - first) // every))


def monitor_run_bytes(net, step: int, n_steps: int, chunk: int) -> list[int]:
    """Host bytes each monitor of ``net`` adds in a run of ``n_steps`` steps from ``step``,
    computed before the run allocates anything: state monitors their records (batch x records x
    variables x neurons) and one chunk's buffer, rate monitors their counts and rates (batch x
    steps, int32 and float64) and one chunk's counts; spike monitors grow with activity and are
    checked as they grow (0 here)."""
    item, b = _ITEM[net.dtype], net.batch
    out = []
    for mon in net.monitors:
        if mon.kind == "state":
            width = len(mon.variables) * (mon.pop.n if mon.indices is None else len(mon.indices))
            out.append(b * width * item * (records(step, n_steps, mon.every)
                                           + records(0, min(chunk, n_steps), mon.every)))
        elif mon.kind == "rate":
            out.append(b * (12 * n_steps + 4 * min(chunk, n_steps)))
        else:
            out.append(0)
    return out


def estimate_bytes(net, spec, n_steps: int = 0, chunk: int = 2000) -> int:
    """Bytes the arrays of ``net`` will take, computed before allocating anything; with
    ``n_steps``, also what its monitors record in a first run of that many steps."""
    item, b = _ITEM[net.dtype], net.batch
    total = sum(monitor_run_bytes(net, 0, n_steps, chunk))
    for mon in net.monitors:
        if mon.kind == "spikes":
            total += spike_capacity(net, mon) * SPIKE_BUFFER_BYTES
        elif mon.kind == "state":
            total += 4 * (mon.pop.n if mon.indices is None else len(mon.indices))
    due = {name.partition("__")[0] for name, *_, role in (spec or {}).get("args", ())
           if role == "max_delay"}
    longest = {p: int(np.max(net.projections[p].delay_steps, initial=0))
               for p in due if net.projections[p].delay_steps is not None}
    for pop in net.populations.values():
        total += b * _ring_size(net, pop, longest) * pop.n * 4
        if pop.kind == "neuron":
            total += b * pop.n * (item * len(pop.model.state_names) + 4) + pop.n * 16
    for proj in net.projections.values():
        s = conn.expected_synapses(proj.rule, proj.pre.n, proj.post.n)
        per = 12 + item * len(proj.model.variables) * (b if proj.model.on_post else 1)
        total += s * per + (s * 12 if proj.model.on_post else 0) + proj.pre.n * 8
        if proj.heterogeneous:  # an expression's largest delay is known only later
            longest = 2 if proj.delay_steps is None else int(np.max(proj.delay_steps)) + 1
            total += s * 8 + b * longest * proj.post.n * item
    return total


def _initial(value, rng, shape, what):
    if isinstance(value, (Uniform, Normal)):
        return value.sample(rng, int(np.prod(shape))).reshape(shape)
    if isinstance(value, str):
        value = Quantities.parse({"v": value}).values["v"]
    arr = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise SnngenError(f"{what}: got {arr.shape} values, expected a scalar or "
                          f"{shape[-1]}") from None


def synapse_expression(text: str, proj, csr, what: str) -> np.ndarray:
    """Evaluate ``text`` for every synapse: ``i`` (pre) and ``j`` (post) index the neurons of
    the projection's subgroups; ``n_pre``, ``n_post``, the projection's params and units too.
    """
    import sympy as sp

    from ..model import strip_units
    from ..parse import parse_expression
    expr, names = parse_expression(text, where=what)
    known = {"i", "j", "n_pre", "n_post"} | set(proj.params)
    from .. import units
    unknown = [n for n in names if n not in known and not units.is_unit_name(n)]
    if unknown:
        from ..errors import UnknownNameError, did_you_mean
        raise UnknownNameError(f"unknown name '{unknown[0]}' in a synaptic value expression "
                               "(use i, j, n_pre, n_post and the projection's params)."
                               + did_you_mean(unknown[0], known), text, names[unknown[0]],
                               len(unknown[0]), what)
    expr = strip_units(expr)
    args = sorted(expr.free_symbols, key=lambda x: x.name)
    fn = sp.lambdify(args, expr, modules="numpy")
    env = {"i": csr.pre_indices().astype(np.float64), "j": csr.indices.astype(np.float64),
           "n_pre": float(csr.n_pre), "n_post": float(csr.n_post), **proj.params}
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(fn(*(env[a.name] for a in args)), np.float64),
                              (csr.n_synapses,))
    if not np.all(np.isfinite(out)):
        raise ConnectivityError(f"{what}: the expression {text!r} is not finite for synapse "
                                f"{int(np.flatnonzero(~np.isfinite(out))[0])}")
    return out


def shared_values(proj, csr, value, rng, what) -> np.ndarray:
    """One value per shared parameter of a weight-sharing rule (:mod:`snngen.sharing`): a
    number, a distribution (drawn once per parameter) or an array of ``n_shared``."""
    n = proj.rule.n_shared
    constant = _constant(value)
    if constant is not None:
        return np.full(n, constant)
    if isinstance(value, (Uniform, Normal)):
        return value.sample(rng, n)
    if isinstance(value, str):
        raise ConnectivityError(f"{what}: a weight-sharing rule ({type(proj.rule).__name__}) "
                                "shares its values between synapses: give a number, a "
                                f"distribution or an array of its {n} shared values, not an "
                                "expression of i and j")
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,):
        raise ConnectivityError(f"{what}: {type(proj.rule).__name__} shares {n} values "
                                f"(n_shared), got an array of shape {arr.shape}")
    return arr


def _csr_values(proj, csr, name, value, rng, shape, what):
    if csr.shared is not None:  # per shared parameter, read by every synapse sharing it
        return shared_values(proj, csr, value, rng, what)[csr.shared]
    constant = _constant(value)
    if constant is not None:
        return np.broadcast_to(constant, shape)
    if isinstance(value, (Uniform, Normal)):
        return value.sample(rng, csr.n_synapses)
    if isinstance(value, str):  # not a quantity (that is a constant)
        return synapse_expression(value, proj, csr, what)  # already in CSR order
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (csr.n_synapses,):
        raise ConnectivityError(f"{what}: {arr.shape[0]} values for {csr.n_synapses} synapses")
    return _to_csr_order(arr, csr)


def _to_csr_order(arr, csr):
    if csr.order is None:
        return arr
    out = np.empty_like(arr)
    out[csr.order] = arr
    return out


def allocate(net, spec, module, limit: int, build_csr=conn.build_csr, full=None) -> dict:
    """Create every argument array of ``spec`` for ``net``; connectivity comes from
    ``build_csr`` (a device backend's draws it on the device, with the same result).

    ``full(shape, value, dtype)``, given by a device backend, makes per-synapse arrays of one
    value (a constant weight, the zero last-update steps) on the device, so that no host
    array of one entry per synapse is made; values drawn from distributions or given by
    expressions or arrays are made here and uploaded."""
    dtype = np.dtype(net.dtype)
    rng = np.random.default_rng(net.seed)
    arrays: dict = {"batch": net.batch, "dt": net.dt, "__csr__": {}}
    pops, projs = net.populations, net.projections
    consts = {}
    for pop_name in spec["constants"]:
        pop = pops[pop_name]
        params = {k: np.asarray(v, dtype=np.float64) if np.ndim(v) else float(v)
                  for k, v in pop.params.items()}
        with np.errstate(all="ignore"):
            consts.update(module.__dict__[f"constants_{pop_name}"](params, net.dt))
    csrs, transposed = {}, {}
    for name, proj in projs.items():
        seed = int(np.random.default_rng([net.seed, len(csrs)]).integers(2**31))
        csrs[name] = build_csr(proj.rule, proj.pre.n, proj.post.n, seed, max_bytes=limit)
    arrays["__csr__"] = csrs
    # per-synapse delays delivered when due: the sources' spike history must reach back to
    # the longest of them
    longest = {}
    for name, _kind, _ndim, role in spec["args"]:
        if role == "max_delay":
            proj = projs[name.partition("__")[0]]
            d = transposed[f"{proj.name}/delays"] = _delays(net, proj, csrs[proj.name])
            longest[proj.name] = int(d.max(initial=0))
    for name, kind, ndim, role in spec["args"]:
        owner, _, field = name.partition("__")
        if name in arrays:
            continue
        np_type = dtype if kind == "float" else np.dtype(kind)
        if role == "size":
            arrays[name] = pops[owner].n
        elif role == "state":
            pop = pops[owner]
            init = pop.init.get(field, 0.0)
            arrays[name] = _owned(
                _initial(init, rng, (net.batch, pop.n), f"init of '{owner}.{field}'"),
                dtype=np_type)
        elif role == "every":  # a run_regularly operation's period, in steps
            arrays[name] = np.int64(net.operations[int(owner[2:])].every)
        elif role == "summed":  # set by the synapses every step, before it is read
            arrays[name] = np.zeros((net.batch, pops[owner].n), np_type)
        elif role in ("param", "param_array"):
            pop = pops[owner]
            value = pop.rates if pop.kind == "poisson" else pop.params[field]
            arrays[name] = _owned(np.broadcast_to(value, (pop.n,)), np_type) \
                if role == "param_array" else np_type.type(value)
        elif role in ("const", "const_array", "refractory_steps"):
            value = consts[name]
            if role == "refractory_steps":
                np_type = np.dtype(np.int32)
            if ndim == 0:
                arrays[name] = np_type.type(value)
            else:
                arrays[name] = _owned(np.broadcast_to(value, (pops[owner].n,)),
                                                    np_type)
        elif role == "input":
            ta: TimedArray = pops[owner].inputs[field]
            arrays[name] = _owned(ta.values.reshape(ta.values.shape[0], -1))
        elif role == "input_ratio":
            ta = pops[owner].inputs[field.split("__")[0]]
            arrays[name] = net.dt / ta.dt
        elif role == "not_refractory":  # Brian2's not_refractory, True at the start
            arrays[name] = np.ones((net.batch, pops[owner].n), np.int32)
        elif role == "last_spike":  # "long ago": never refractory at the start
            arrays[name] = np.full((net.batch, pops[owner].n), NEVER, np.int32)
        elif role == "ring":
            pop = pops[owner]
            arrays[name] = np.zeros((net.batch, _ring_size(net, pop, longest), pop.n),
                                    np.int32)
        elif role == "ringn":
            arrays[name] = np.zeros((net.batch, _ring_size(net, pops[owner], longest)),
                                    np.int64)
        elif role == "scratch":  # padded to whole 64-bit words for the spike scan
            arrays[name] = np.zeros(-(-pops[owner].n // 8) * 8, np.uint8)
        elif role == "events":
            src = pops[owner]
            arrays[name] = src.steps if field == "ev_step" else src.indices
        elif role == "cursor":
            arrays[name] = np.zeros(net.batch, np.int64)
        elif owner in projs:
            arrays[name] = _projection_array(net, projs[owner], csrs[owner], field, role,
                                             np_type, rng, transposed, full)
        elif role == "monitor":
            arrays[name] = _monitor_array(net, int(owner[1:]), field, np_type)
        else:  # pragma: no cover - the spec and this table are written together
            raise SnngenError(f"internal: no allocation rule for argument {name} ({role})")
    return arrays


def _constant(value):
    """``value`` as a float if it is one number (or quantity) for every synapse, else None."""
    if isinstance(value, (Uniform, Normal)) or (isinstance(value, str)
                                                and not is_quantity(value)):
        return None
    if isinstance(value, str):
        value = Quantities.parse({"v": value}).values["v"]
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # not numbers: the caller reports it
        return None
    return float(arr) if arr.ndim == 0 else None


def _projection_array(net, proj, csr, field, role, np_type, rng, memo, full=None):
    if field in ("indptr", "indices") and csr.device:
        return csr.device[field]  # drawn on the device: bound there, never uploaded
    if field == "indptr":
        return csr.indptr
    if field == "indices":
        return csr.indices
    if field in ("tindptr", "tsyn", "tpre"):
        if proj.name not in memo:  # computed once per projection, not once per array
            memo[proj.name] = conn.transpose(csr)
        tr = memo[proj.name]
        return {"tindptr": tr.indptr, "tsyn": tr.synapse, "tpre": tr.pre}[field]
    if field == "pre_start":
        return proj.pre.start
    if field == "pre_stop":
        return proj.pre.stop
    if field == "post_start":
        return proj.post.start
    if field == "post_stop":
        return proj.post.stop
    if role in ("syn", "syn_batched"):
        rows = net.batch if role == "syn_batched" else 1
        value = proj.values.get(field, 0.0)
        constant = _constant(value) if full is not None else None
        if constant is not None:  # made on the device, rounded to np_type as on the host
            return full((rows, csr.n_synapses), np_type.type(constant), np_type)
        vals = _csr_values(proj, csr, field, value, rng, (csr.n_synapses,),
                           f"projection '{proj.name}', '{field}'")
        return _owned(np.broadcast_to(vals, (rows, csr.n_synapses)), np_type)
    if role == "syn_param":
        if field not in proj.params:
            raise SnngenError(f"projection '{proj.name}': no value for parameter '{field}'; "
                              "give it in params={...}")
        return float(proj.params[field])
    if role == "syn_lastupdate":
        if full is not None:
            return full((net.batch, csr.n_synapses), 0, np.dtype(np.int64))
        return np.zeros((net.batch, csr.n_synapses), np.int64)
    if field == "delay":
        return int(proj.delay_steps)
    if field in ("delays", "buf") and f"{proj.name}/delays" not in memo:
        memo[f"{proj.name}/delays"] = _delays(net, proj, csr)
    if field == "delays":
        return memo[f"{proj.name}/delays"]
    if field == "maxdelay":
        return int(memo[f"{proj.name}/delays"].max(initial=0))
    if field == "buf":
        d = memo[f"{proj.name}/delays"]
        return np.zeros((net.batch, int(d.max(initial=1)) + 1, proj.post.n), np_type)
    raise SnngenError(f"internal: no allocation rule for projection argument {field}")


def _delays(net, proj, csr) -> np.ndarray:
    """Per-synapse delays in steps, in CSR order."""
    what = f"projection '{proj.name}', delay"
    if proj.delay_expr is not None:
        seconds = synapse_expression(proj.delay_expr, proj, csr, what)
        try:
            return delay_steps(seconds, f"{what} {proj.delay_expr!r}", net.dt)
        except InvalidValueError as err:
            raise ConnectivityError(str(err)) from None
    d = np.broadcast_to(proj.delay_steps, (csr.n_synapses,)) if proj.delay_steps.ndim == 0 \
        else proj.delay_steps
    if d.shape != (csr.n_synapses,):
        raise ConnectivityError(f"{what}: {d.shape[0]} delays for {csr.n_synapses} synapses")
    return _owned(_to_csr_order(np.asarray(d), csr), np.int64)


def _monitor_array(net, k, field, np_type):
    mon = net.monitors[k]
    if mon.kind == "spikes":
        cap = spike_capacity(net, mon)
        return np.zeros(1, np.int64) if field == "count" else \
            np.zeros(cap, np.int64 if field == "step" else np.int32)
    if mon.kind == "rate":
        return np.zeros((net.batch, 0), np.int32)
    if field == "idx":
        return np.arange(mon.pop.n, dtype=np.int32) if mon.indices is None else mon.indices
    if field == "every":
        return mon.every
    if field == "count":
        return np.zeros(1, np.int64)
    return np.zeros((net.batch, 0, len(mon.variables), 0), np_type)
