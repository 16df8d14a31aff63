"""The Numba (CPU) backend: render to a real .py file in the cache, import it, compile once.

Numba's own on-disk cache (``cache=True``) keys on the file's contents, so a file named by the
hash of its text is compiled once per machine and loaded by every later process.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from ... import cache
from ..base import Backend, Runner


@functools.cache
def _generator_digest() -> str:
    from ..templates import generator_digest, template_dir
    return generator_digest([template_dir() / "numba" / "program.py.j2"], extra=("draw.py",))


@functools.cache
def _callee_digest() -> str:
    """The digest of the modules whose compiled functions the generated kernels call.

    Numba's on-disk cache checks the generated file, not the modules it calls: the digest in
    the text gives the kernel a new file (and a new compilation) when one of them changes.
    """
    pkg = Path(__file__).resolve().parent.parent.parent
    return cache.digest("".join((pkg / f).read_text() for f in ("draw.py", "linalg.py")))[:16]


class NumbaRunner(Runner):
    """The generated ``run`` over the simulator's own arrays."""

    def __init__(self, run, arrays: dict):
        super().__init__(arrays)
        self._run = run

    def __call__(self, n_steps, step0, seed, status, *args) -> int:
        return self._run(n_steps, step0, seed, status, *args)


class NumbaBackend(Backend):
    name = "numba"

    def version_key(self) -> str:
        """Everything besides the network that decides the generated text: the template and
        the code generator's own source (so an edited generator never meets stale kernels)."""
        import numba
        return f"numba {numba.__version__} generator {_generator_digest()}"

    def load_or_generate(self, net, key: str):
        """Return (module, path) for the structure ``key``, generating it if needed."""
        def render():
            from ...ir.lower import lower
            from ...ir.verify import verify
            from .render import render as render_source
            lowered = lower(net)
            verify(lowered.program)
            return (f"# compiled against snngen.draw and snngen.linalg {_callee_digest()}\n"
                    + render_source(lowered.program, lowered.constants))
        return cache.load_or_render(key, "numba", render)

    @staticmethod
    def _import(path):
        return cache.import_file(path)

    def environment(self, flush: bool):
        """Floating-point environment for kernel calls (denormals flushed if ``flush``)."""
        import contextlib

        from .fpenv import flush_denormals
        return flush_denormals() if flush else contextlib.nullcontext()

    chunk_steps = 2000

    def runner(self, module, sim) -> NumbaRunner:
        return NumbaRunner(module.run, sim.arrays)

    def compile(self, module, args) -> int:
        """Compile (or load from Numba's cache) ``run`` for these argument types."""
        import numba
        import numpy as np
        run = module.run
        types = (numba.typeof(0), numba.typeof(0), numba.typeof(0),
                 numba.typeof(np.zeros(3, np.int64))) + tuple(numba.typeof(a) for a in args)
        if types in run.overloads:
            return 0
        before = sum(run.stats.cache_misses.values())
        t0 = time.perf_counter()
        with cache.lock():
            run.compile(types)
        compiled = sum(run.stats.cache_misses.values()) - before
        cache.STATS["compiled"] += compiled
        cache.STATS["loaded"] += 1 - compiled
        cache.STATS["last_compile_s"] = time.perf_counter() - t0
        return compiled
