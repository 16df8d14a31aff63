"""The Numba (CPU) backend: render to a real .py file in the cache, import it, compile once.

Numba's own on-disk cache (``cache=True``) keys on the file's contents, so a file named by the
hash of its text is compiled once per machine and loaded by every later process.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
from pathlib import Path

from ... import cache
from ...errors import CacheError


@functools.cache
def _generator_digest() -> str:
    from ..templates import template_dir
    pkg = Path(__file__).resolve().parent.parent.parent
    files = [template_dir() / "numba" / "program.py.j2"]
    for sub in ("parse.py", "model.py", "integrate.py", "linalg.py", "ir", "backends"):
        path = pkg / sub
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return cache.digest("".join(f.read_text() for f in files))[:16]


class NumbaBackend:
    name = "numba"

    def version_key(self) -> str:
        """Everything besides the network that decides the generated text: the template and
        the code generator's own source (so an edited generator never meets stale kernels)."""
        import numba
        return f"numba {numba.__version__} generator {_generator_digest()}"

    def load_or_generate(self, net, key: str):
        """Return (module, path) for the structure ``key``, generating it if needed."""
        entry = cache.read_index(key)
        if entry is not None:
            cache.STATS["index_hits"] += 1
            path = cache.cache_dir() / entry["source"]
            return self._import(path), path
        from ...ir.lower import lower
        from ...ir.verify import verify
        from .render import render
        lowered = lower(net)
        verify(lowered.program)
        source = render(lowered.program, lowered.constants)
        cache.STATS["rendered"] += 1
        sha = cache.digest(source)
        rel = f"numba/snngen_{sha[:20]}.py"
        path = cache.cache_dir() / rel
        with cache.lock():
            try:
                if not path.exists() or cache.digest(path.read_text()) != sha:
                    cache.write_atomic(path, source)
            except OSError as err:
                raise CacheError(f"cannot write the kernel cache at {path.parent}: {err}. "
                                 "Set SNNGEN_CACHE_DIR to a writable folder.") from err
        module = self._import(path)  # index only what imports: a warm start never sees junk
        with cache.lock():
            cache.write_index(key, {"source": rel, "sha256": sha})
        return module, path

    @staticmethod
    def _import(path):
        name = path.stem
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[name]
            raise
        return module

    @staticmethod
    def environment(flush: bool):
        """Floating-point environment for kernel calls (denormals flushed if ``flush``)."""
        import contextlib

        from .fpenv import flush_denormals
        return flush_denormals() if flush else contextlib.nullcontext()

    chunk_steps = 2000

    @staticmethod
    def runner(module, sim):
        return module.run

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
