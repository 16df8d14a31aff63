"""Run a compiled CUDA program: device arrays, kernel launches in plan order, transfers.

One :class:`Runner` per simulator. It has the Numba kernel's calling convention,
``runner(n_steps, step0, seed, status, *args)`` -> steps run, so the
:class:`~snngen.runtime.simulator.Simulator` drives both backends the same way. The same
code drives the GPU (CuPy arrays, kernels from a CUBIN) and the host emulation (NumPy arrays
kept apart from the simulator's, kernels from a shared library through ctypes), so the
emulation checks the transfers as well as the kernels.

Transfers: monitors are uploaded before and downloaded after every call. States, last spikes
and plastic synapses stay on the device until the host asks for one (:meth:`expose`, called
by ``Simulator.state`` and ``Simulator.synapses``): from then on that array is copied to the
device before every call (and back after it, if the kernels change it), so changes made on
the host reach the device. Structure (indices, fixed weights, delays, spike rings) stays on
the device and is uploaded again only if the simulator's array object changes, or at every
call once it is exposed. Arrays made on the device
(:class:`DeviceArray`: connectivity, constant per-synapse values) have no host copy until
one is asked for.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np

from ..base import Runner as BaseRunner
from .render import Launch

#: Roles whose arrays stay on the device between calls (uploaded when first seen or replaced).
STATIC_ROLES = {"index", "syn", "events", "delays", "input", "ring", "ringn", "accum",
                "scratch"}
#: Roles the kernels change that are copied back only when the host asks for them
#: (:meth:`Runner.expose`): an array never handed out cannot have changed on the host.
LAZY_ROLES = {"state", "last_spike", "syn_batched", "syn_lastupdate"}

#: the NumPy type of each C scalar type a kernel takes (public: the trainers pass scalars too)
SCALAR_TYPES = {"double": np.float64, "float": np.float32, "long long": np.int64,
                "int": np.int32, "unsigned char": np.uint8, "unsigned long long": np.uint64,
                "unsigned int": np.uint32}


class DeviceArray:
    """Host stand-in for an array made on the device (connectivity drawn there, constant
    per-synapse values): shape and dtype at once, the values copied to the host the first time
    they are asked for (``np.asarray``), then kept until the kernels change the device array
    (:meth:`Runner.expose` then hands the simulator a plain host copy). The runner binds the
    device array itself: nothing is uploaded."""

    def __init__(self, device, dev, host: np.ndarray | None = None):
        # device: what copies dev to the host (None: dev.get() for CuPy, a copy for NumPy)
        self.device, self.dev, self._host = device, dev, host
        self.shape, self.dtype = tuple(dev.shape), np.dtype(dev.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def fetched(self) -> bool:
        """Whether a host copy exists (no transfer made to answer)."""
        return self._host is not None

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        if self._host is None:
            self._host = self.device.to_host(self.dev) if self.device is not None else \
                (self.dev.get() if hasattr(self.dev, "get") else np.array(self.dev))
        out = self._host if dtype is None else self._host.astype(dtype, copy=False)
        return out.copy() if copy else out


class Runner(BaseRunner):
    """The CUDA kernels of one simulator, on a device (GPU) or its emulation (host), with
    the device's copies of the simulator's arrays."""

    def __init__(self, params, plan: list[Launch], spec: dict, device):
        super().__init__({})
        self.params, self.plan, self.device = params, plan, device
        self.roles = {name: role for name, _, _, role in spec["args"]}
        self.ndims = {name: ndim for name, _, ndim, _ in spec["args"]}
        self.mirror: dict[str, tuple[int, object]] = {}
        self.clock = device.zeros(2, np.int64)
        self.status = device.zeros(3, np.int64)
        self.graph_steps = device.graph_steps
        #: Seconds spent, summed over calls: uploads, the kernels, downloads, spike sorting.
        self.timings = {"upload_s": 0.0, "steps_s": 0.0, "download_s": 0.0, "sort_s": 0.0}
        self._recorded: dict[str, int] = {}
        self.exposed: set[str] = set()
        self.stale: set[str] = set()
        # spike monitor buffers are written by the kernels only: uploaded when (re)allocated
        self.device_owned = {f"{m}__{f}" for m in self._spike_monitors(spec) for f in
                             ("i", "step", "b")}

    @staticmethod
    def _spike_monitors(spec) -> list[str]:
        names = {name for name, *_ in spec["args"]}
        return [n[:-3] for n in names if n.endswith("__i") and f"{n[:-3]}__count" in names]

    def prepare(self, arrays: dict) -> None:
        """Upload every array now (at build time), so that no run pays for it."""
        t0 = time.perf_counter()
        self._bind({name: arrays[name] for name in self.roles})
        self.timings["upload_s"] += time.perf_counter() - t0

    def expose(self, name: str) -> np.ndarray | None:
        """The host is handed ``name``: bring its host copy up to date, and from now on copy
        it to the device before every call (the caller may read or change it). Returns the
        new host array when ``name`` was made on the device (the caller keeps it in place of
        the :class:`DeviceArray`), else None."""
        held = self.mirror.get(name)
        self.exposed.add(name)
        if held is not None and isinstance(held[0], DeviceArray):
            host = self.device.to_host(held[1])
            self.mirror[name] = (host, held[1])
            self.stale.discard(name)
            return host
        if name in self.stale:
            self._fetch(name)
        return None

    def sync(self) -> None:
        """Bring every host copy up to date (before the host reads them all)."""
        for name in list(self.stale):
            self._fetch(name)

    # -- snapshots (snngen.runtime.snapshot) ----------------------------------------------
    def _host_current(self, name: str) -> bool:
        """Whether the host copy of ``name`` is what the kernels see at the next call (it is
        uploaded before every call), rather than the device array."""
        role = self.roles[name]
        return name in self.exposed or (role not in STATIC_ROLES and role not in LAZY_ROLES)

    def read_array(self, name: str, start: int | None = None,
                   stop: int | None = None) -> np.ndarray:
        """A host copy of rows ``start:stop`` of ``name`` as the kernels will see it at the
        next call. Nothing else changes: the array is not exposed, no host copy is replaced."""
        host, dev = self.mirror[name]
        if self._host_current(name):
            return np.array(np.asarray(host)[start:stop], copy=True)
        return self.device.to_host(dev[start:stop])

    def write_array(self, name: str, values: np.ndarray) -> None:
        """Set ``name`` to ``values`` (its shape and dtype) on the device and in its host
        copy, which is then current."""
        host, dev = self.mirror[name]
        self.device.upload(dev, values)
        if isinstance(host, DeviceArray):
            host._host = None  # copied again when next read
        else:
            host[...] = values
        self.stale.discard(name)

    def rewound(self, counts: dict[str, int]) -> None:
        """The simulator put back spike monitor buffers (new arrays, uploaded at the next
        call) holding ``counts[m]`` spikes: the next call copies the spikes after those."""
        self._recorded.update(counts)

    def _fetch(self, name: str) -> None:
        host, dev = self.mirror[name]
        if isinstance(host, DeviceArray):
            host._host = None  # copied again when next read
        else:
            host[...] = self.device.to_host(dev)
        self.stale.discard(name)

    # -- arguments ------------------------------------------------------------------------
    def _bind(self, args: dict):
        dev = self.device
        values = {"_clock": self.clock, "_status": self.status}
        for name, host in args.items():
            if self.ndims[name] == 0:
                continue
            if isinstance(host, DeviceArray):  # made on the device: bound as it is
                self.mirror[name] = (host, host.dev)
                values[name] = host.dev
                continue
            role = self.roles[name]
            held = self.mirror.get(name)
            if held is not None and held[0] is host and held[1].shape == host.shape:
                if role in STATIC_ROLES or role in LAZY_ROLES:
                    send = name in self.exposed  # handed out: the host may have changed it
                else:
                    send = name not in self.device_owned
                if send:
                    dev.upload(held[1], host)
                values[name] = held[1]
                continue
            arr = dev.to_device(np.ascontiguousarray(host))
            self.mirror[name] = (host, arr)
            values[name] = arr
        out = []
        for ctype, name, _ndim, _kind in self.params:
            if name in values:
                out.append(values[name])
            elif name == "_seed":
                out.append(None)  # filled per call
            elif "__d" in name and name.rsplit("__d", 1)[0] in args \
                    and name.rsplit("__d", 1)[1].isdigit():
                base, k = name.rsplit("__d", 1)
                out.append(np.int64(np.shape(args[base])[int(k)]))
            else:
                out.append(SCALAR_TYPES[ctype](args[name]))
        return out

    def _grid(self, launch: Launch, args: dict) -> tuple[int, int, int]:
        batch = int(args["batch"])
        kind, _, what = launch.shape.partition(":")
        if kind == "begin":
            return 1, 1, 256
        if kind == "one":
            return 1, 1, 1
        if kind == "batch":
            return 1, batch, 1
        if kind == "neurons":
            n = int(args[what])
        elif kind == "spikes":  # one step's spikes: a few blocks stride over them
            return max(1, min(-(-int(args[what]) // 256), 32)), batch, 256
        elif kind == "range":
            n = int(args[f"{what}__post_stop"]) - int(args[f"{what}__post_start"])
        elif kind == "rows":  # the presynaptic rows of a projection: one thread each
            n = int(args[f"{what}__pre_stop"]) - int(args[f"{what}__pre_start"])
        elif kind == "monitor":
            n = int(np.shape(args[what])[0])
        elif kind == "events":
            indptr = np.asarray(args[what])  # a device-built table's row pointers: on the host
            rows = max(1, len(indptr) - 1)
            mean = float(indptr[-1]) / rows if len(indptr) else 0.0
            block = 32
            for size in (32, 64, 128, 256):
                block = size
                if mean <= size * 1.25:
                    break
            return max(1, min(rows, self.device.event_blocks)), batch, block
        else:  # pragma: no cover - render.build writes only the kinds above
            raise ValueError(launch.shape)
        block = launch.block
        return max(1, min(-(-n // block), 1 << 16)), batch, block

    # -- running --------------------------------------------------------------------------
    def __call__(self, n_steps, step0, seed, status, *arrays):
        names = [p[1] for p in self.params[3:3 + len(arrays)]]
        args = dict(zip(names, arrays))
        t0 = time.perf_counter()
        bound = self._bind(args)
        bound[2] = np.uint64(int(seed) % 2**64)  # the Numba kernel wraps it the same way
        dev = self.device
        dev.upload(self.clock, np.array([step0, step0], np.int64))
        dev.upload(self.status, np.zeros(3, np.int64))
        launches = [(dev.kernel(launch.kernel), self._grid(launch, args)) for launch in self.plan]
        bound = tuple(bound)
        dev.synchronize()
        t1 = time.perf_counter()
        dev.run_steps(n_steps, launches, bound, self)
        clock = dev.to_host(self.clock)
        t2 = time.perf_counter()
        status[:] = dev.to_host(self.status)
        ran = int(clock[0] - step0)
        self._download(args)
        t3 = time.perf_counter()
        self.timings["upload_s"] += t1 - t0
        self.timings["steps_s"] += t2 - t1
        self.timings["download_s"] += t3 - t2 - self._sort_s
        self.timings["sort_s"] += self._sort_s
        return ran

    def _download(self, args: dict):
        dev = self.device
        self._sort_s = 0.0
        for name, host in args.items():
            if self.ndims[name] == 0 or self.roles[name] in STATIC_ROLES:
                continue
            held = self.mirror[name][1]
            base, _, field = name.rpartition("__")
            if field in ("i", "step", "b") and f"{base}__count" in args \
                    and f"{base}__i" in args:
                continue  # spike monitor buffers: below, only what was added
            if self.roles[name] in LAZY_ROLES and name not in self.exposed:
                self.stale.add(name)  # fetched when the host asks (expose, sync)
                if isinstance(self.mirror[name][0], DeviceArray):
                    self.mirror[name][0]._host = None  # its host copy, if any, is old
                continue
            host[...] = dev.to_host(held)
        for name in args:
            if name.endswith("__count") and f"{name[:-7]}__i" in args:
                m = name[:-7]
                self._spikes(m, args)

    def _spikes(self, m: str, args: dict):
        """Copy the spikes recorded this call, in (step, batch, neuron) order: the Numba
        backend's order (the GPU appends them in whatever order its threads ran). The sort
        runs on the device, before the copy."""
        dev = self.device
        count = int(args[f"{m}__count"][0])
        start = min(self._recorded.get(m, 0), count)
        if count > start:
            t0 = time.perf_counter()
            held = [self.mirror[f"{m}__{f}"][1] for f in ("step", "b", "i")]
            width = int(np.int64(args["batch"])) * (1 << 31)
            dev.sort_records(held, start, count, width)
            self._sort_s += time.perf_counter() - t0
            for f, arr in zip(("step", "b", "i"), held):
                args[f"{m}__{f}"][start:count] = dev.to_host(arr[start:count])
        self._recorded[m] = count


class HostDevice:
    """The CPU stand-in for a GPU: separate NumPy arrays, kernels from the host build."""

    graph_steps = 0
    event_blocks = 4  # grid-stride loops make the result independent of this; small is fast

    def __init__(self, library_path, params):
        self.lib = ctypes.CDLL(str(library_path))
        self.params = params
        self._fns = {}

    def zeros(self, n, dtype):
        return np.zeros(n, dtype)

    def to_device(self, host):
        return np.array(host, copy=True, order="C")

    def upload(self, dev, host):
        dev[...] = host

    def to_host(self, dev):
        return np.array(dev, copy=True)

    def synchronize(self):
        pass

    @staticmethod
    def sort_records(fields, start, count, width):
        step, b, i = (f[start:count] for f in fields)
        order = np.argsort((step - step.min()) * width + b.astype(np.int64) * (1 << 31) + i,
                           kind="stable")
        for f in (step, b, i):
            f[...] = f[order]

    def kernel(self, name):
        if name not in self._fns:
            fn = getattr(self.lib, f"snn_launch_{name}")
            fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p]
            fn.restype = None
            self._fns[name] = fn
        return self._fns[name]

    def launch(self, name, grid, values):
        """One kernel launch over ``grid = (gx, gy, block)`` with ``values`` for the params."""
        keep, argv = host_argv(self.params, values)  # noqa: F841 - keep: what argv points to
        self.kernel(name)(*grid, argv)

    @staticmethod
    def scan(counts, indptr):
        """``indptr[1:] = cumsum(counts)`` (``indptr[0]`` is left as it is, zero)."""
        np.cumsum(counts, out=indptr[1:])

    def run_steps(self, n_steps, launches, bound, runner):
        keep, argv = host_argv(self.params, bound)  # noqa: F841 - keep: what argv points to
        for _ in range(n_steps):
            for fn, (gx, gy, bx) in launches:
                fn(gx, gy, bx, argv)
            if self._status_set(bound):
                break

    @staticmethod
    def _status_set(bound):
        return bound[1][0] != 0


def host_argv(params, values):
    """(keep, argv): a ``void*`` array pointing at each argument, as the host launchers take
    it (NumPy arrays by address; ``None`` pointers as null, ``None`` scalars as zero). Hold on
    to ``keep`` while ``argv`` is used."""
    keep, ptrs = [], []
    for (ctype, _, _, _), value in zip(params, values):
        if isinstance(value, np.ndarray):
            obj = ctypes.c_void_p(value.ctypes.data)
        elif ctype.endswith("*"):
            obj = ctypes.c_void_p(0)
        else:
            obj = np.ctypeslib.as_ctypes(np.array(value or 0, SCALAR_TYPES[ctype]).reshape(1))
        keep.append(obj)
        ptrs.append(ctypes.addressof(obj))
    return keep, (ctypes.c_void_p * len(ptrs))(*ptrs)


def launchers(params, plan: list[Launch]) -> str:
    """C++ entry points for the host build: each unpacks an argv like cuLaunchKernel's."""
    unpack = ", ".join(f"*({t}*)argv[{k}]" for k, (t, _, _, _) in enumerate(params))
    out = []
    for name in dict.fromkeys(launch.kernel for launch in plan):
        out.append(f'extern "C" void snn_launch_{name}(unsigned gx, unsigned gy, unsigned bx, '
                   f"void** argv) {{ SNN_HOST_LAUNCH({name}, gx, gy, bx, {unpack}); }}")
    return "\n".join(out) + "\n"
