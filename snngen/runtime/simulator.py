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
from ..errors import ConnectivityError, NetworkTooLargeError, NumericalError, SnngenError
from .allocate import allocate, estimate_bytes, structure_key

#: Steps per kernel call: long enough to amortise the call, short enough for progress bars.
CHUNK_STEPS = 2000


def _Bar(total: int):  # noqa: N802 - a factory that reads like the class it returns
    from tqdm import tqdm
    return tqdm(total=total, unit="step", desc="snngen", leave=False)


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


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
        self.net, self.progress, self.flush = net, progress, flush_denormals
        self.backend = get_backend(backend)
        t0 = time.perf_counter()
        key = structure_key(net, self.backend)
        self.module, self.source_path = self.backend.load_or_generate(net, key)
        self.spec = self.module.SPEC
        t1 = time.perf_counter()
        need = estimate_bytes(net, self.spec)
        limit = max_memory if max_memory is not None else int(0.9 * _available_bytes())
        if need > limit:
            raise NetworkTooLargeError(
                f"this network needs about {need / 2**30:.2f} GiB but only "
                f"{limit / 2**30:.2f} GiB {'is allowed' if max_memory else 'is available'}; "
                "nothing was allocated. Reduce the population sizes, the connection "
                "density, the batch or the recorded variables, or use dtype='float32'.")
        self.connect_s = 0.0
        self.arrays = allocate(net, self.spec, self.module, limit, self._timed_build_csr,
                               getattr(self.backend, "full", None))
        t2 = time.perf_counter()
        self.compiled_kernels = self.backend.compile(self.module, self._args())
        t3 = time.perf_counter()
        self._kernel = self.backend.runner(self.module, self)  # on a GPU: uploads the arrays
        t4 = time.perf_counter()
        self.build_s = (t2 - t1) + (t4 - t3)
        self.compile_s = (t1 - t0) + (t3 - t2)
        self.step = 0

    def _timed_build_csr(self, *args, **kwargs) -> conn.CSR:
        build = getattr(self.backend, "build_csr", conn.build_csr)
        t0 = time.perf_counter()
        csr = build(*args, **kwargs)
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
                first = -(-self.step // mon.every) * mon.every
                records = max(0, -(-(self.step + n_steps - first) // mon.every))
                idx = self.arrays[f"{m}__idx"]
                self.arrays[f"{m}__data"] = np.zeros(
                    (net.batch, records, len(mon.variables), idx.shape[0]), dtype)
                self.arrays[f"{m}__count"][0] = 0

    def _collect(self, n_steps: int, parts: dict):
        net = self.net
        for k, mon in enumerate(net.monitors):
            m = f"m{k}"
            if mon.kind == "rate":
                parts.setdefault(k, []).append(self.arrays[f"{m}__counts"][:, :n_steps].copy())
            elif mon.kind == "state":
                c = int(self.arrays[f"{m}__count"][0])
                parts.setdefault(k, []).append(self.arrays[f"{m}__data"][:, :c].copy())

    def _grow_spike_buffers(self):
        for k, mon in enumerate(self.net.monitors):
            if mon.kind == "spikes":
                m = f"m{k}"
                for f in ("i", "step", "b"):
                    old = self.arrays[f"{m}__{f}"]
                    new = np.empty(max(2 * old.shape[0], 1024), old.dtype)
                    new[:old.shape[0]] = old
                    self.arrays[f"{m}__{f}"] = new

    # -- running ----------------------------------------------------------------------------
    def run(self, duration: float) -> Simulator:
        """Advance the network by ``duration`` seconds (rounded to whole steps)."""
        n_total = int(round(duration / self.net.dt))
        if n_total < 0 or not np.isfinite(duration):
            raise SnngenError(f"run duration must be finite and >= 0, got {duration}")
        show = self.progress if self.progress is not None else (
            n_total > 50_000 and sys.stderr.isatty())
        bar = _Bar(n_total) if show else None  # tqdm is imported only when a bar is shown
        parts: dict = {}
        run = self._kernel
        status = np.zeros(3, np.int64)
        done = 0
        chunk = getattr(self.backend, "chunk_steps", CHUNK_STEPS)
        while done < n_total:
            n = min(chunk, n_total - done)
            self._prepare_monitors(n)
            status[:] = 0
            with self.backend.environment(self.flush):
                ran = run(n, self.step, self.net.seed, status, *self._args())
            self._collect(ran, parts)
            self.step += ran
            done += ran
            if bar:
                bar.update(ran)
            if status[0] == 1:
                if bar:
                    bar.close()
                self._finish(parts)
                self._raise_nonfinite(int(status[1]), int(status[2]))
            elif status[0] == 2:
                self._grow_spike_buffers()
        if bar:
            bar.close()
        self._finish(parts)
        return self

    def _finish(self, parts: dict):
        net = self.net
        for k, mon in enumerate(net.monitors):
            m = f"m{k}"
            if mon.kind == "spikes":
                c = int(self.arrays[f"{m}__count"][0])
                step = self.arrays[f"{m}__step"][:c].copy()
                mon.data = {"i": self.arrays[f"{m}__i"][:c].copy(), "step": step,
                            "t": step * net.dt, "b": self.arrays[f"{m}__b"][:c].copy()}
            elif k in parts:
                new = np.concatenate(parts[k], axis=1)
                if mon.kind == "rate":
                    old = mon.data.get("counts")
                    counts = new if old is None else np.concatenate([old, new], axis=1)
                    mon.data = {"counts": counts, "rate": counts / (mon.pop.n * net.dt),
                                "t": np.arange(counts.shape[1]) * net.dt}
                else:
                    old = mon.data.get("_all")
                    allv = new if old is None else np.concatenate([old, new], axis=1)
                    data = {"_all": allv, "t": (np.arange(allv.shape[1]) * mon.every + 1)
                            * net.dt}
                    for j, v in enumerate(mon.variables):
                        data[v] = allv[:, :, j, :]
                    mon.data = data

    def _raise_nonfinite(self, step: int, node_index: int):
        sync = getattr(self._kernel, "sync", None)
        if sync is not None:  # device backends: every state as it is now
            sync()
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
                        f"{arr[b, i]} at step {step} (t = {step * self.net.dt:.6g} s) in "
                        f"{int(bad.sum())} neuron(s), first neuron {i} (batch {b}). Check "
                        "the parameters (a zero or negative time constant?), the initial "
                        "values, or use a smaller dt or another integration method.")
        raise NumericalError(f"a state became NaN or infinite at step {step} (it was no "
                             "longer so when inspected)")

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
        expose = getattr(self._kernel, "expose", None)
        if expose is not None:
            host = expose(key)
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
