"""The kernel cache: content addressed, cross-process locked, atomic, self-repairing.

Layout under :func:`cache_dir` (``$SNNGEN_CACHE_DIR`` or the user cache folder)::

    numba/snngen_<sha256[:20]>.py      generated source (named by the hash of its text)
    numba/__pycache__/...              Numba's compiled code for it (cache=True)
    index/<structure key>.json         structure key -> source file, so a warm start
                                       skips discretisation and rendering entirely
    lock                               cross-process lock for writers

Nothing here depends on parameter values or sizes: they are kernel arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from .errors import CacheError

#: Counters for this process (read them to show that a warm start compiled nothing).
STATS = {"compiled": 0, "loaded": 0, "rendered": 0, "index_hits": 0}


def cache_dir() -> Path:
    """The cache root; ``SNNGEN_CACHE_DIR`` overrides the per-user default."""
    root = os.environ.get("SNNGEN_CACHE_DIR")
    if not root:
        try:
            import platformdirs
            root = platformdirs.user_cache_dir("snngen")
        except ImportError:  # a bare machine (e.g. a GPU box without network): XDG default
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                     ".cache")
            root = os.path.join(base, "snngen")
    return Path(root)


def lock() -> FileLock:
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(f"cannot create the kernel cache at {root}: {err}. Set "
                         "SNNGEN_CACHE_DIR to a writable folder.") from err
    return FileLock(str(root / "lock"), timeout=600)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_index(key: str) -> dict | None:
    """The index entry of a structure key, or None if absent or corrupt (then removed)."""
    path = cache_dir() / "index" / f"{key}.json"
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        src = cache_dir() / entry["source"]
        if digest(src.read_text()) != entry["sha256"]:
            raise ValueError("source does not match its recorded hash")
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return None


def write_index(key: str, entry: dict) -> None:
    write_atomic(cache_dir() / "index" / f"{key}.json", json.dumps(entry))


def import_file(path: Path, name: str | None = None):
    """Import a generated module from its file, once per process (a real module in
    ``sys.modules`` backed by a file: what Numba's on-disk cache needs)."""
    import importlib.util
    import sys
    name = name or path.stem
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


def generated_module(source: str, kind: str, subdir: str = "numba"):
    """Write ``source`` once under ``subdir/snngen_<kind>_<sha>.py`` (atomically, locked) and
    import it: (module, path). For kernels that are keyed by their text alone."""
    sha = digest(source)
    path = cache_dir() / subdir / f"snngen_{kind}_{sha[:20]}.py"
    with lock():
        if not path.exists() or digest(path.read_text()) != sha:
            write_atomic(path, source)
    return import_file(path), path


def load_or_render(key: str, subdir: str, render, prefix: str = ""):
    """The generated module of a structure ``key``: from the index (a warm start renders
    nothing), else ``render()`` -> text, written once under ``subdir`` (named by its hash),
    imported, and only then indexed. Returns (module, path)."""
    entry = read_index(key)
    if entry is not None:
        STATS["index_hits"] += 1
        path = cache_dir() / entry["source"]
        return import_file(path, prefix + path.stem), path
    text = render()
    STATS["rendered"] += 1
    sha = digest(text)
    rel = f"{subdir}/snngen_{sha[:20]}.py"
    path = cache_dir() / rel
    with lock():
        try:
            if not path.exists() or digest(path.read_text()) != sha:
                write_atomic(path, text)
        except OSError as err:
            raise CacheError(f"cannot write the kernel cache at {path.parent}: {err}. "
                             "Set SNNGEN_CACHE_DIR to a writable folder.") from err
    module = import_file(path, prefix + path.stem)  # index only what imports
    with lock():
        write_index(key, {"source": rel, "sha256": sha})
    return module, path


def info() -> dict:
    """Location, number of kernels and size of the cache."""
    root = cache_dir()
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return {"path": str(root),
            "kernels": sum(len(list((root / sub).glob("snngen_*.py"))) for sub in
                           ("numba", "cuda") if (root / sub).exists()),
            "entries": len(list((root / "index").glob("*.json")))
            if (root / "index").exists() else 0,
            "bytes": sum(p.stat().st_size for p in files)}


def clear() -> int:
    """Remove every cached kernel; returns the number of files removed."""
    root = cache_dir()
    if not root.exists():
        return 0
    with lock():
        n = 0
        for sub in ("numba", "cuda", "cuda-host", "index"):
            if (root / sub).exists():
                n += sum(1 for p in (root / sub).rglob("*") if p.is_file())
                shutil.rmtree(root / sub)
    return n
