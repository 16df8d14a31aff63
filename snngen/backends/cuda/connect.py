"""Connectivity drawn on the device: ``templates/cuda/connectivity.cu.j2``, driven from here.

The kernels are the CUDA twin of :mod:`snngen.draw`'s row kernels, and this driver runs the
same steps as :func:`snngen.connectivity.build_csr`: per-row counts, an exclusive scan into
row pointers, then the fill. The table is therefore the one the Numba backend draws, bit for
bit, without the indices ever crossing the bus; only the row pointers (8 bytes per
presynaptic neuron) come back, since launch sizes and the host's view of the table need them.
The indices are copied to the host only if asked for (:class:`~.runner.DeviceArray`).

On the GPU the source is compiled by NVRTC like the network's; with ``backend="cuda-host"`` the
same source runs on the CPU through the shim, which is how CI checks it.

>>> source().count("__global__ void conn_")
8
"""

from __future__ import annotations

import functools
import time

import numpy as np

from ... import __version__, cache, draw
from ... import connectivity as conn
from .render import Launch
from .runner import SCALAR_TYPES, DeviceArray, HostDevice, launchers

#: The parameters every connectivity kernel takes, as (C type, name, ndim, kind).
PARAMS = [("long long", "n_rows", 0, "int64"), ("long long", "n_cols", 0, "int64"),
          ("long long", "k", 0, "int64"), ("int", "allow_self", 0, "int32"),
          ("unsigned int", "key0", 0, "uint32"), ("unsigned int", "key1", 0, "uint32"),
          ("unsigned int", "tag", 0, "uint32"), ("double", "inv_rate", 0, "float64"),
          ("const double*", "table", 1, "float64"), ("const long long*", "indptr", 1, "int64"),
          ("long long*", "counts", 1, "int64"), ("int*", "out", 1, "int32"),
          ("const int*", "src", 1, "int32")]
KERNELS = ("conn_probability_count", "conn_probability_fill", "conn_sample",
           "conn_count_targets", "conn_scatter", "conn_sort_rows", "conn_all_to_all",
           "conn_one_to_one")


@functools.cache
def source() -> str:
    """The CUDA C of the connectivity kernels; numeric constants are printed exactly (hex)."""
    from ..templates import environment
    return environment().get_template("cuda/connectivity.cu.j2").render(
        version=__version__, exp_coeffs=[c.hex() for c in draw.EXP_COEFFS],
        ln2_hi=draw._LN2_HI.hex(), ln2_lo=draw._LN2_LO.hex(), inv_ln2=draw._INV_LN2.hex(),
        zn=draw._ZN, tag_probability=draw.TAG_PROBABILITY)


class DeviceConnectivity:
    """Draws CSR tables with the connectivity kernels on one device (``mode`` "gpu" or
    "host", the emulation). Built once per process and mode (:func:`connector`)."""

    def __init__(self, mode: str):
        from . import compiler
        self.mode = mode
        t0 = time.perf_counter()
        with cache.lock():
            if mode == "gpu":
                from .gpu import GpuDevice, arch
                path, _ = compiler.compile_cubin(source(), arch(), "float64")
                self.device = GpuDevice(path, PARAMS)
            else:
                plan = [Launch(name, "", "") for name in KERNELS]
                path, _ = compiler.build_host(source(), launchers(PARAMS, plan))
                self.device = HostDevice(path, PARAMS)
        #: Seconds spent compiling or loading the kernels (once), and drawing (every table).
        self.timings = {"compile_s": time.perf_counter() - t0, "draw_s": 0.0}
        # 256 threads per block on the GPU; a few small blocks in the emulation, which runs
        # them one after another (enough to exercise the atomics of the in-degree scatter)
        self.block, self.max_blocks = (256, 1 << 16) if mode == "gpu" else (32, 4)
        self.table = self.device.to_device(draw.ZIGGURAT)
        self._none = {"long long": self.device.zeros(1, np.int64),
                      "int": self.device.zeros(1, np.int32)}

    def _launch(self, kernel: str, n: int, **values) -> None:
        """``kernel`` over ``n`` rows (or entries); parameters not given are zero or a dummy."""
        args = []
        for ctype, name, ndim, _ in PARAMS:
            value = values.get(name)
            if ndim:
                base = ctype.replace("const ", "").rstrip("*")
                args.append(self.table if name == "table" else
                            value if value is not None else self._none[base])
            else:
                args.append(SCALAR_TYPES[ctype](value or 0))
        blocks = max(1, min(-(-n // self.block), self.max_blocks))
        self.device.launch(kernel, (blocks, 1, self.block), args)

    def build(self, rule, n_pre: int, n_post: int, seed: int,
              max_bytes: int | None = None) -> conn.CSR:
        """The table :func:`snngen.connectivity.build_csr` draws, made on the device
        (explicit and weight-sharing rules are built on the host, and uploaded
        with the other arrays). Same arguments, same errors."""
        rule, n_pre, n_post, seed = conn.checked(rule, n_pre, n_post, seed, max_bytes)
        if isinstance(rule, conn.HOST_BUILT):
            return conn.build_csr(rule, n_pre, n_post, seed)
        t0 = time.perf_counter()
        dev = self.device
        key = {"key0": seed & 0xFFFFFFFF, "key1": seed >> 32}
        self_ = {"allow_self": int(getattr(rule, "allow_self", True))}
        host_ptr = conn.fixed_indptr(rule, n_pre, n_post)
        if host_ptr is not None:
            indptr = dev.to_device(host_ptr)
            out = dev.zeros(int(host_ptr[-1]), np.int32)
            if isinstance(rule, conn.OneToOne):
                self._launch("conn_one_to_one", n_pre, n_rows=n_pre, out=out)
            elif isinstance(rule, conn.AllToAll):
                self._launch("conn_all_to_all", n_pre, n_rows=n_pre, n_cols=n_post,
                             indptr=indptr, out=out, **self_)
            else:
                self._launch("conn_sample", n_pre, n_rows=n_pre, n_cols=n_post, k=rule.k,
                             tag=draw.TAG_OUT_DEGREE, out=out, **key, **self_)
        else:
            counts = dev.zeros(n_pre, np.int64)
            indptr = dev.zeros(n_pre + 1, np.int64)
            if isinstance(rule, conn.FixedProbability):
                out = self._probability(rule, n_pre, n_post, key, self_, counts, indptr)
            else:  # FixedInDegree: draw columns, count and scatter them into rows, sort rows
                cols = dev.zeros(n_post * rule.k, np.int32)
                self._launch("conn_sample", n_post, n_rows=n_post, n_cols=n_pre, k=rule.k,
                             tag=draw.TAG_IN_DEGREE, out=cols, **key, **self_)
                entries = dict(n_rows=n_post, k=rule.k, src=cols)
                self._launch("conn_count_targets", n_post * rule.k, counts=counts, **entries)
                dev.scan(counts, indptr)
                out = dev.zeros(n_post * rule.k, np.int32)
                cursor = dev.zeros(n_pre, np.int64)
                self._launch("conn_scatter", n_post * rule.k, counts=cursor, indptr=indptr,
                             out=out, **entries)
                del cols, cursor
                self._launch("conn_sort_rows", n_pre, n_rows=n_pre, indptr=indptr, out=out)
            host_ptr = dev.to_host(indptr)
        dev.synchronize()
        self.timings["draw_s"] += time.perf_counter() - t0
        indices = DeviceArray(dev, out)
        return conn.CSR(n_pre, n_post, host_ptr, indices, device={
            "indptr": DeviceArray(dev, indptr, host=host_ptr), "indices": indices})

    def _probability(self, rule, n_pre, n_post, key, self_, counts, indptr):
        """FixedProbability: count, scan, fill; returns the indices."""
        dev = self.device
        if rule.p == 0:
            return dev.zeros(0, np.int32)
        rows = dict(n_rows=n_pre, n_cols=n_post, inv_rate=draw.probability_rate(rule.p),
                    **key, **self_)
        self._launch("conn_probability_count", n_pre, counts=counts, **rows)
        dev.scan(counts, indptr)
        n_syn = int(dev.to_host(indptr[n_pre:])[0])
        out = dev.zeros(n_syn, np.int32)
        self._launch("conn_probability_fill", n_pre, indptr=indptr, out=out, **rows)
        return out


@functools.cache
def connector(mode: str) -> DeviceConnectivity:
    """The process's :class:`DeviceConnectivity` for ``mode`` (compiled or loaded once)."""
    return DeviceConnectivity(mode)
