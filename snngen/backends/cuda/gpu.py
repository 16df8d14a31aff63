"""The GPU side of the CUDA backend: CuPy arrays, a CUBIN module, launches or CUDA graphs.

Imported only when ``backend="cuda"`` is built, after :func:`check_device` has confirmed
that CuPy imports and a device answers, so a machine without a GPU gets a clear
:class:`~snngen.errors.BackendUnsupported` instead of a CuPy traceback.
"""

from __future__ import annotations

import os

import numpy as np

from ...errors import BackendUnsupported


def check_device():
    """Return the ``cupy`` module if a CUDA device is usable, else raise a clear error."""
    try:
        import cupy
    except ImportError:
        raise BackendUnsupported(
            "backend='cuda' needs CuPy: pip install snngen[cuda] (and an NVIDIA GPU with its "
            "driver). Use backend='numba' on the CPU.") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # noqa: BLE001 - CuPy raises several types without a driver
        raise BackendUnsupported(
            "backend='cuda' found no usable NVIDIA GPU (no device or no driver: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Use "
            "backend='numba', or backend='cuda-host' to run the CUDA kernels on the CPU.") \
            from None
    if count == 0:
        raise BackendUnsupported("backend='cuda' found no NVIDIA GPU; use backend='numba'")
    return cupy


def arch() -> str:
    import cupy
    return f"sm_{cupy.cuda.Device().compute_capability}"


class GpuDevice:
    """Device arrays and kernels on the current CUDA device."""

    event_blocks = 2048  # blocks striding over one step's spikes (one spike per block)

    def __init__(self, cubin_path, params):
        import cupy
        self.cp = cupy
        self.module = cupy.RawModule(path=str(cubin_path))
        self.params = params
        self._fns = {}
        self.graph_steps = int(os.environ.get("SNNGEN_CUDA_GRAPH_STEPS", "50"))
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._graphs = {}
        self.used_graphs = False
        # CuPy compiles the kernels of the spike sort on first use: do it while building
        with self.stream:
            dummy = [cupy.arange(4, dtype=t) for t in (cupy.int64, cupy.int32, cupy.int32)]
        self.sort_records(dummy, 0, 4, 1 << 31)

    def zeros(self, n, dtype):
        with self.stream:  # every transfer and launch on one stream: ordered
            return self.cp.zeros(n, dtype)

    #: Arrays larger than this go through a pinned staging buffer, in pieces of this size
    #: (pageable copies were several times slower on the H200 machine).
    STAGE = 64 << 20

    def to_device(self, host):
        host = np.ascontiguousarray(host)
        with self.stream:
            dev = self.cp.empty(host.shape, host.dtype)
        self.upload(dev, host)
        return dev

    def upload(self, dev, host):
        host = np.ascontiguousarray(host, dtype=dev.dtype)
        if host.nbytes <= self.STAGE:
            dev.set(host, stream=self.stream)
            return
        import cupyx
        if getattr(self, "_stage", None) is None:
            self._stage = cupyx.empty_pinned(self.STAGE, np.uint8)
        src, dst = host.reshape(-1).view(np.uint8), dev.reshape(-1).view(np.uint8)
        for lo in range(0, src.size, self.STAGE):
            n = min(self.STAGE, src.size - lo)
            self.stream.synchronize()  # the staging buffer is free again
            self._stage[:n] = src[lo:lo + n]
            dst[lo:lo + n].set(self._stage[:n], stream=self.stream)
        self.stream.synchronize()

    def synchronize(self):
        self.stream.synchronize()

    def sort_records(self, fields, start, count, width):
        cp = self.cp
        with self.stream:
            step, b, i = (f[start:count] for f in fields)
            key = (step - step.min()) * width + b.astype(cp.int64) * (1 << 31) + i
            order = cp.argsort(key)
            for f in (step, b, i):
                f[...] = f[order]

    def to_host(self, dev):
        self.stream.synchronize()
        return dev.get(stream=self.stream)

    def kernel(self, name):
        if name not in self._fns:
            self._fns[name] = self.module.get_function(name)
        return self._fns[name]

    def launch(self, name, grid, values):
        """One kernel launch over ``grid = (gx, gy, block)`` with ``values`` for the params."""
        gx, gy, bx = grid
        with self.stream:
            self.kernel(name)((gx, gy), (bx,), tuple(values))

    def scan(self, counts, indptr):
        """``indptr[1:] = cumsum(counts)`` on the device (``indptr[0]`` stays zero)."""
        with self.stream:
            indptr[1:] = self.cp.cumsum(counts)

    def _launch_step(self, launches, bound):
        for fn, (gx, gy, bx) in launches:  # on self.stream: callers hold "with self.stream"
            fn((gx, gy), (bx,), bound)

    def _graph(self, launches, bound):
        key = tuple(id(fn) for fn, _ in launches) + tuple(g for _, g in launches) + tuple(
            (v.data.ptr if hasattr(v, "data") and hasattr(v.data, "ptr") else
             (type(v).__name__, v.item() if hasattr(v, "item") else v)) for v in bound)
        graph = self._graphs.get(key)
        if graph is None:
            self.stream.synchronize()
            self.stream.begin_capture()
            try:
                for _ in range(self.graph_steps):
                    self._launch_step(launches, bound)
            finally:
                graph = self.stream.end_capture()
            self._graphs = {key: graph}  # one at a time: old pointers may be freed
        return graph

    def run_steps(self, n_steps, launches, bound, runner):
        done = 0
        with self.stream:
            if self.graph_steps > 1 and n_steps >= self.graph_steps:
                graph = self._graph(launches, bound)
                self.used_graphs = True
                while n_steps - done >= self.graph_steps:
                    graph.launch(stream=self.stream)
                    done += self.graph_steps
            for _ in range(n_steps - done):
                self._launch_step(launches, bound)
        self.stream.synchronize()
