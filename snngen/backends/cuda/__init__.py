"""The CUDA backend: one CUDA C source per network structure, on the GPU or emulated on the CPU.

``backend="cuda"`` compiles the source with NVRTC (or nvcc) to a CUBIN for the device's
architecture and runs it with CuPy. ``backend="cuda-host"`` compiles the *same* source as C++
with a small shim (``templates/cuda/shim.h``) and runs it on the CPU, thread by thread: it is
how the kernels are checked without a GPU (slow; for tests and debugging).

Cache layout (under the snngen cache): ``cuda/snngen_<sha>.py`` (host module: spec, plan,
constants, source), ``cuda/snngen_<key>.<arch>.<sha16>.cubin`` (key: source, options,
compiler version; sha16: the hash of the file's own bytes, checked before use),
``cuda-host/snngen_<key>.<sha16>.so``. Damaged files go to ``quarantine/`` and are rebuilt.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from ... import __version__, cache
from ..base import Backend
from .render import Launch, kernel_params


@functools.cache
def _generator_digest() -> str:
    from ..templates import generator_digest, template_dir
    return generator_digest(sorted((template_dir() / "cuda").iterdir()))


def render_module(program, constants) -> str:
    """The host module's text: spec, plan, constants and the CUDA source."""
    from ..numba.render import _constants_views
    from ..templates import environment
    from .render import render
    source, plan = render(program)
    spec = {"args": [[a.name, a.dtype, a.ndim, a.role] for a in program.args],
            "rings": [list(r) for r in program.rings], "dtype": program.dtype,
            "constants": {pop: [[a, bool(per)] for a, _, per in c["outputs"]]
                          for pop, c in constants.items()}}
    plan_data = [[p.kernel, p.node, p.shape, p.block] for p in plan]
    return environment().get_template("cuda/host.py.j2").render(
        version=__version__, spec=repr(json.loads(json.dumps(spec))), plan=repr(plan_data),
        source=repr(source), constants=_constants_views(constants)) + "\n"


class CudaBackend(Backend):
    """``mode="gpu"`` runs on a CUDA device; ``mode="host"`` emulates the kernels on the CPU."""

    def __init__(self, mode: str = "gpu"):
        self.mode = mode
        self.name = "cuda" if mode == "gpu" else "cuda-host"
        self.chunk_steps = 10_000 if mode == "gpu" else 2_000
        if mode == "gpu":
            from .gpu import check_device
            check_device()

    def version_key(self) -> str:
        return f"cuda generator {_generator_digest()}"

    def load_or_generate(self, net, key: str):
        """Return (host module, path) for the structure ``key``, generating it if needed."""
        def render():
            from ...ir.lower import lower
            from ...ir.verify import verify
            lowered = lower(net)
            verify(lowered.program)
            return render_module(lowered.program, lowered.constants)
        return cache.load_or_render("cuda-" + key, "cuda", render, prefix="cuda_")

    def _params(self, module):
        from ...ir.nodes import Arg, Program
        args = tuple(Arg(n, d, k, r) for n, d, k, r in module.SPEC["args"])
        return kernel_params(Program("network", args, (), (), module.SPEC["dtype"]))

    def compile(self, module, args) -> int:
        """Compile the module's source (or find it in the cache); 1 if compiled now."""
        from . import compiler
        with cache.lock():
            if self.mode == "gpu":
                from .gpu import arch
                path, new = compiler.compile_cubin(module.SOURCE, arch(), module.SPEC["dtype"])
            else:
                from .runner import launchers
                plan = [Launch(*p) for p in module.PLAN]
                path, new = compiler.build_host(module.SOURCE,
                                                launchers(self._params(module), plan))
        module.__dict__.setdefault("_binary", {})[self.mode] = path
        cache.STATS["compiled" if new else "loaded"] += 1
        return int(new)

    def build_csr(self, rule, n_pre: int, n_post: int, seed: int, max_bytes=None):
        """The table :func:`snngen.connectivity.build_csr` draws, drawn on the device (GPU, or
        the emulation); its indices stay there (see :mod:`.connect`)."""
        from .connect import connector
        return connector(self.mode).build(rule, n_pre, n_post, seed, max_bytes)

    def full(self, shape, value, dtype):
        """An array of one value made on the device, for per-synapse values that are one
        constant (:func:`snngen.runtime.allocate.allocate`): no host array of that size."""
        from .runner import DeviceArray
        if self.mode == "gpu":
            import cupy
            dev = cupy.full(shape, value, dtype)
            cupy.cuda.runtime.deviceSynchronize()  # the runner's own stream uses it next
        else:
            dev = np.full(shape, value, dtype)
        return DeviceArray(None, dev)

    def runner(self, module, sim):
        """A callable with the Numba kernel's convention, bound to one simulator."""
        from .runner import HostDevice, Runner
        params = self._params(module)
        plan = [Launch(*p) for p in module.PLAN]
        path = module._binary[self.mode]
        if self.mode == "gpu":
            from .gpu import GpuDevice
            device = GpuDevice(path, params)
        else:
            device = HostDevice(path, params)
        runner = Runner(params, plan, module.SPEC, device)
        runner.prepare(sim.arrays)
        return runner
