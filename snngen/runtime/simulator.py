"""Simulator: owns the arrays of a built network and runs its fused time loop in chunks.

Building goes: structure key -> cached module (or lower, render and write it) -> estimate
memory -> allocate -> compile or load the kernel (under the cache lock) -> ready.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .. import cache
from .. import connectivity as conn
from ..backends import get_backend
from ..errors import (
    ConnectivityError,
    InvalidValueError,
    NetworkTooLargeError,
    NumericalError,
    SnngenError,
)
from . import snapshot, validate
from .allocate import (
    SPIKE_BUFFER_BYTES,
    SPIKE_RESULT_BYTES,
    allocate,
    estimate_bytes,
    monitor_run_bytes,
    records,
    structure_key,
)

#: Runs longer than this many steps say their size on stderr before they start.
LONG_RUN_STEPS = 1_000_000
#: Steps are stored as int32 where a neuron remembers its last spike (refractoriness).
MAX_STEPS = 2**31 - 1


def _Bar(total: int):  # noqa: N802 - a factory that reads like the class it returns
    from tqdm import tqdm
    return tqdm(total=total, unit="step", desc="snngen", leave=False)


def available_bytes() -> int:
    """Memory the OS can give this process now (MemAvailable; total memory elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def size_text(n_bytes: float) -> str:
    """Bytes in the unit that reads best.

    >>> size_text(3 * 2**30), size_text(1536 * 2**10), size_text(800), size_text(8 * 10**400)
    ('3 GiB', '1.5 MiB', '800 B', 'about 2**1331 B')
    """
    if validate.beyond_float(n_bytes):  # a size from absurd counts: n / scale would overflow
        return f"about 2**{int(n_bytes).bit_length() - 1} B"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def where_nonfinite(bad: np.ndarray) -> str:
    """Which neurons and trials of a (batch x neurons) mask are set, counted apart.

    >>> bad = np.zeros((4, 6), bool); bad[:, 3] = True
    >>> where_nonfinite(bad)
    'in neuron 3 of all 4 trials'
    >>> bad = np.zeros((4, 6), bool); bad[0, 1:4] = True; bad[2, 5] = True
    >>> where_nonfinite(bad)
    'in 4 neurons (first 1) across 2 of 4 trials (first trial 0)'
    """
    neurons, trials = np.flatnonzero(bad.any(axis=0)), np.flatnonzero(bad.any(axis=1))
    batch = bad.shape[0]
    who = f"in neuron {neurons[0]}" if len(neurons) == 1 else \
        f"in {len(neurons)} neurons (first {neurons[0]})"
    if batch == 1:
        return who
    if len(trials) == batch:
        return f"{who} {'of' if len(neurons) == 1 else 'across'} all {batch} trials"
    if len(trials) == 1:
        return f"{who} of trial {trials[0]} (of {batch})"
    return f"{who} across {len(trials)} of {batch} trials (first trial {trials[0]})"


class Simulator:
    """A compiled network, ready to :meth:`run`.

    Attributes ``build_s`` (connectivity and allocation), ``connect_s`` (of which drawing the
    connectivity: on the device for ``backend="cuda"``), ``compile_s`` (code generation and
    compile or cache load) and ``compiled_kernels`` (kernels compiled by this process for this
    network: 0 on a warm cache) report what building cost.

    ``flush_denormals`` (default True) runs kernels with denormal floats flushed to zero, as
    C simulators compiled with ``-ffast-math`` do: a silent float32 current otherwise decays
    into the denormal range, where arithmetic is about 80 times slower.
    """

    def __init__(self, net, backend: str = "numba", progress: bool | None = None,
                 max_memory: int | None = None, flush_denormals: bool = True):
        if max_memory is not None:
            max_memory = validate.read_count(max_memory, "build: max_memory (bytes, e.g. "
                                             "4 * 2**30 for 4 GiB)")
        validate.read_flag(progress, "build: progress", none=True)
        validate.read_flag(flush_denormals, "build: flush_denormals")
        inputs = [p.name for p in net.populations.values() if p.kind == "input"]
        if inputs:
            raise SnngenError(f"population '{inputs[0]}' is an input fed per run by the "
                              "trainers (net.input); to simulate, give its spikes with "
                              "net.spike_source(...) or net.poisson(...) instead")
        self.net, self.progress, self.flush = net, progress, flush_denormals
        self.backend = get_backend(backend)
        t0 = time.perf_counter()
        key = structure_key(net, self.backend)
        self.module, self.source_path = self.backend.load_or_generate(net, key)
        self.spec = self.module.SPEC
        t1 = time.perf_counter()
        need = estimate_bytes(net, self.spec)
        self.max_memory = max_memory
        limit = max_memory if max_memory is not None else int(0.9 * available_bytes())
        if need > limit:
            raise NetworkTooLargeError(
                f"this network needs about {size_text(need)} but only "
                f"{size_text(limit)} {'is allowed' if max_memory else 'is available'}; "
                "nothing was allocated. Reduce the population sizes, the connection "
                "density, the batch or the recorded variables, or use dtype='float32'.")
        self.connect_s = 0.0
        self.arrays = allocate(net, self.spec, self.module, limit, self._timed_build_csr,
                               self.backend.full)
        t2 = time.perf_counter()
        self.compiled_kernels = self.backend.compile(self.module, self._args())
        t3 = time.perf_counter()
        self._kernel = self.backend.runner(self.module, self)  # on a GPU: uploads the arrays
        t4 = time.perf_counter()
        self.build_s = (t2 - t1) + (t4 - t3)
        self.compile_s = (t1 - t0) + (t3 - t2)
        self.step = 0
        self._snapshots: dict = {}  # sim.store(name)

    def _timed_build_csr(self, *args, **kwargs) -> conn.CSR:
        t0 = time.perf_counter()
        csr = self.backend.build_csr(*args, **kwargs)
        self.connect_s += time.perf_counter() - t0
        return csr

    # -- arguments --------------------------------------------------------------------------
    def _args(self):
        return [self.arrays[name] for name, *_ in self.spec["args"]]

    def _prepare_monitors(self, n_steps: int):
        net, dtype = self.net, np.dtype(self.net.dtype)
        for k, mon in enumerate(net.monitors):
            m = f"m{k}"
            if mon.kind == "rate":
                self.arrays[f"{m}__counts"] = np.zeros((net.batch, n_steps), np.int32)
            elif mon.kind == "state":
                idx = self.arrays[f"{m}__idx"]
                self.arrays[f"{m}__data"] = np.zeros(
                    (net.batch, records(self.step, n_steps, mon.every), len(mon.variables),
                     idx.shape[0]), dtype)
                self.arrays[f"{m}__count"][0] = 0

    def _run_blocks(self, n_total: int) -> dict:
        """One result array per state and rate monitor for the whole run, allocated once."""
        net, blocks = self.net, {}
        for k, mon in enumerate(net.monitors):
            if mon.kind == "rate":
                blocks[k] = [np.zeros((net.batch, n_total), np.int32), 0]
            elif mon.kind == "state":
                width = self.arrays[f"m{k}__idx"].shape[0]
                blocks[k] = [np.zeros((net.batch, records(self.step, n_total, mon.every),
                                       len(mon.variables), width), np.dtype(net.dtype)), 0]
        return blocks

    def _collect(self, n_steps: int, blocks: dict):
        for k, mon in enumerate(self.net.monitors):
            if k not in blocks:
                continue
            block, at = blocks[k]
            if mon.kind == "rate":
                new = self.arrays[f"m{k}__counts"][:, :n_steps]
            else:
                new = self.arrays[f"m{k}__data"][:, :int(self.arrays[f"m{k}__count"][0])]
            block[:, at:at + new.shape[1]] = new
            blocks[k][1] = at + new.shape[1]

    def _grow_spike_buffers(self, n_done: int, n_total: int):
        """Double the full spike buffers, if the memory limit allows it (else refuse: what
        was recorded so far stays in the monitors)."""
        grow = []
        for k, mon in enumerate(self.net.monitors):
            if mon.kind == "spikes":
                cap = self.arrays[f"m{k}__i"].shape[0]
                grow.append((k, max(2 * cap, 1024)))
        extra = sum(SPIKE_BUFFER_BYTES * new + SPIKE_RESULT_BYTES * new // 2
                    for _, new in grow)
        if not self._fits(extra):
            counts = ", ".join(f"'{self.net.monitors[k].pop.name}' "
                               f"{int(self.arrays[f'm{k}__count'][0]):,}" for k, _ in grow)
            raise NetworkTooLargeError(
                f"the spike monitors ({counts} spikes) are full and growing them needs "
                f"{size_text(extra)} more, {self._over(extra)}; the run stopped at step "
                f"{self.step} (t = {self.t:.6g} s) after {n_done} of its {n_total} steps, and "
                "the spikes recorded so far are in the monitors. Monitor fewer or smaller "
                "populations, run shorter pieces (collecting spikes in between) or raise "
                "max_memory.")
        for k, new_cap in grow:
            for f in ("i", "step", "b"):
                old = self.arrays[f"m{k}__{f}"]
                new = np.empty(new_cap, old.dtype)
                new[:old.shape[0]] = old
                self.arrays[f"m{k}__{f}"] = new

    # -- memory -----------------------------------------------------------------------------
    def held_bytes(self) -> int:
        """Host bytes this simulator holds now: its arrays and what its monitors recorded."""
        seen, total = set(), 0
        for arr in self.arrays.values():
            if isinstance(arr, np.ndarray) and id(arr) not in seen:
                seen.add(id(arr))
                total += arr.nbytes
        return total + sum(mon.held_bytes() for mon in self.net.monitors) + \
            snapshot.held_bytes(self)

    def _fits(self, extra: int) -> bool:
        if self.max_memory is not None:
            return self.held_bytes() + extra <= self.max_memory
        return extra <= 0.9 * available_bytes()

    def _over(self, extra: int) -> str:
        if self.max_memory is not None:
            return (f"with the {size_text(self.held_bytes())} held that exceeds "
                    f"max_memory = {size_text(self.max_memory)}")
        return f"more than the {size_text(0.9 * available_bytes())} available"

    def _check_run(self, n_total: int, chunk: int) -> int:
        """Refuse, before anything is allocated, a run whose monitors would not fit; return
        the bytes they will add."""
        if self.step + n_total > MAX_STEPS and any(
                role == "last_spike" for *_, role in self.spec["args"]):
            raise InvalidValueError(
                f"run: {n_total:,} steps from step {self.step:,} pass step 2**31 - 1 (the "
                "steps of last spikes are int32); run a shorter time or use a larger dt")
        per = monitor_run_bytes(self.net, self.step, n_total, chunk)
        extra = sum(per)
        if extra and not self._fits(extra):
            big = max(range(len(per)), key=per.__getitem__)
            mon = self.net.monitors[big]
            raise NetworkTooLargeError(
                f"run of {n_total:,} steps ({n_total * self.net.dt:.6g} s): the monitors would "
                f"record {size_text(extra)} ({mon.kind} monitor of '{mon.pop.name}': "
                f"{size_text(per[big])}), {self._over(extra)}; nothing was run or "
                "allocated. Record fewer neurons or variables (indices=), less often (every=), "
                "or run shorter pieces and empty the monitors (mon.data = {}) in between.")
        return extra

    # -- running ----------------------------------------------------------------------------
    def run(self, duration) -> Simulator:
        """Advance the network by ``duration`` (seconds, or a time string such as
        ``"1*second"``), rounded to whole steps.

        Before anything runs or is allocated, a run whose monitors would not fit in memory
        (``max_memory``, else the memory available) is refused with the estimate; a run of
        more than :data:`LONG_RUN_STEPS` steps says its size on stderr (unless
        ``progress=False``) and shows a progress bar when stderr is a terminal. If the run
        stops early (NaN in a state, spike monitors that may not grow, an interrupt), the
        step counter and the monitors agree: both stop at the last step that ran.
        """
        n_total = validate.read_steps(duration, self.net.dt)
        chunk = self.backend.chunk_steps
        extra = self._check_run(n_total, chunk)
        if n_total > LONG_RUN_STEPS and self.progress is not False:
            print(f"snngen: running {n_total:,} steps ({n_total * self.net.dt:.6g} s "
                  f"simulated, dt = {self.net.dt:g} s); the monitors will record "
                  f"{size_text(extra)} (spike monitors: as the network spikes)",
                  file=sys.stderr)
        show = self.progress if self.progress is not None else (
            n_total > 50_000 and sys.stderr.isatty())
        bar = _Bar(n_total) if show else None  # tqdm is imported only when a bar is shown
        blocks = self._run_blocks(n_total)
        status = np.zeros(3, np.int64)
        # the kernels take the seed as int64; seeds >= 2**63 pass as the same 64 bits
        seed = self.net.seed - 2**64 if self.net.seed >= 2**63 else self.net.seed
        done = 0
        try:
            while done < n_total:
                n = min(chunk, n_total - done)
                self._prepare_monitors(n)
                status[:] = 0
                with self.backend.environment(self.flush):
                    ran = self._kernel(n, self.step, seed, status, *self._args())
                self._collect(ran, blocks)
                self.step += ran
                done += ran
                if bar:
                    bar.update(ran)
                if status[0] == 1:
                    self._raise_nonfinite(int(status[1]), int(status[2]))
                elif status[0] == 2:
                    self._grow_spike_buffers(done, n_total)
        finally:
            if bar:
                bar.close()
            self._finish(blocks)
        return self

    def _finish(self, blocks: dict):
        net = self.net
        for k, mon in enumerate(net.monitors):
            m = f"m{k}"
            if mon.kind == "spikes":
                c = int(self.arrays[f"{m}__count"][0])
                mon.data = {}  # the old copies go before the new ones are made
                step = self.arrays[f"{m}__step"][:c].copy()
                mon.data = {"i": self.arrays[f"{m}__i"][:c].copy(), "step": step,
                            "t": step * net.dt, "b": self.arrays[f"{m}__b"][:c].copy()}
            elif k in blocks:
                block, filled = blocks[k]
                if filled:
                    mon._append(block if filled == block.shape[1] else block[:, :filled].copy())

    def _raise_nonfinite(self, step: int, node_index: int):
        self._kernel.sync()  # device backends: every state as it is now
        for pop in self.net.populations.values():
            if pop.kind != "neuron":
                continue
            for x in pop.model.state_names:
                arr = self.arrays[f"{pop.name}__{x}"]
                bad = ~np.isfinite(arr)
                if bad.any():
                    b, i = np.argwhere(bad)[0]
                    raise NumericalError(
                        f"population '{pop.name}': state variable '{x}' became "
                        f"{arr[b, i]} at step {step} (t = {step * self.net.dt:.6g} s) "
                        f"{where_nonfinite(bad)}. Check the parameters, the initial values, "
                        "the inputs, or use a smaller dt or another integration method.")
        raise NumericalError(f"a state became NaN or infinite at step {step} (it was no "
                             "longer so when inspected)")

    # -- snapshots (snngen/runtime/snapshot.py) ---------------------------------------------
    def store(self, name: str = "default") -> None:
        """Keep a snapshot of the simulation now in memory as ``name`` (Brian2's
        ``net.store()``): the step, every state carried between steps (neuron states, last
        spikes, spikes and input in flight, synaptic variables, spike-source cursors) and
        what the monitors recorded. Storing a name again replaces it; a snapshot that would
        not fit in memory (``max_memory``, else the memory available) is refused. What is
        stored, and an example: :mod:`snngen.runtime.snapshot`."""
        snapshot.store(self, name)

    def restore(self, name: str = "default") -> None:
        """Put back the snapshot stored as ``name``: the step, the states and the monitors
        (what was recorded after it is forgotten), so a run repeats bit for bit."""
        snapshot.restore(self, name)

    def save(self, path) -> None:
        """Write a snapshot of the simulation now to the ``.npz`` file ``path`` (atomically,
        no pickles), for :meth:`load` in this or another process."""
        snapshot.save(self, path)

    def load(self, path) -> None:
        """Bring this simulator to the snapshot saved at ``path`` by :meth:`save` from a
        simulator of the same network (structure, sizes, connectivity, ``dt``, ``batch``,
        ``dtype`` and seed; parameter values may differ). The whole file is checked first: a
        damaged or mismatching one raises :class:`~snngen.errors.CheckpointError` and
        changes nothing."""
        snapshot.load(self, path)

    # -- access ----------------------------------------------------------------------------
    def state(self, pop, name: str) -> np.ndarray:
        """The current values of state variable ``name`` of ``pop`` (batch x neurons)."""
        pop = pop.population if hasattr(pop, "population") else pop
        key = f"{pop.name}__{name}"
        if key not in self.arrays:
            raise SnngenError(f"'{pop.name}' has no state variable '{name}'")
        self._expose(key)
        return self.arrays[key]

    def _expose(self, key: str):
        """A device backend brings ``key`` up to date and keeps it so (the caller may read
        or change the array it gets)."""
        host = self._kernel.expose(key)
        if host is not None:  # made on the device: from now on this host copy mirrors it
            self.arrays[key] = host

    def synapses(self, proj, name: str) -> np.ndarray:
        """Per-synapse values of ``name`` in CSR order (batch or 1, synapses)."""
        key = f"{proj.name}__{name}"
        if key not in self.arrays:
            raise SnngenError(f"projection '{proj.name}' has no synaptic variable '{name}' in "
                              "the generated code")
        self._expose(key)
        return self.arrays[key]

    def connectivity(self, proj) -> conn.CSR:
        """The CSR structure of ``proj`` (rows: presynaptic neurons of the projection). With
        ``backend="cuda"`` it was drawn on the GPU: its indices are copied to the host the
        first time they are read, and stay on the device for the kernels."""
        try:
            return self._csr[proj.name]
        except KeyError:
            raise ConnectivityError(f"no projection '{proj.name}' in this simulator") from None

    @property
    def t(self) -> float:
        """Current simulated time in seconds."""
        return self.step * self.net.dt

    @property
    def _csr(self):
        return self.arrays["__csr__"]

    @property
    def stats(self) -> dict:
        return dict(cache.STATS)
