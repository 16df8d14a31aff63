"""The kernel cache: content addressed, cross-process locked, atomic, self-repairing.

Layout under :func:`cache_dir` (``$SNNGEN_CACHE_DIR`` or the user cache folder)::

    numba/snngen_<sha256[:20]>.py      generated source (named by the hash of its text)
    numba/__pycache__/...              Numba's compiled code for it (cache=True)
    cuda/, cuda-host/                  CUDA host modules, CUBINs and host-emulation libraries
                                       (binaries named by the hash of their bytes)
    index/<structure key>.json         structure key -> source file, so a warm start
                                       skips discretisation and rendering entirely
    quarantine/<when>-<pid>-<n>/...    damaged entries, moved aside for inspection
    lock                               cross-process lock for writers

Nothing here depends on parameter values or sizes: they are kernel arguments.

Every file is checked before it is used: sources and binaries against the hash in their
name or index entry, index entries and Numba's cache files by reading them. A file that is
damaged (truncated, emptied, overwritten, not UTF-8) is moved to ``quarantine/``, one
:class:`CacheWarning` says so, and the entry is rebuilt; a file that is missing is a plain
cache miss. Every writer writes a temporary ``.tmp-*`` file and renames it, holding
:func:`lock`, so a killed writer leaves at most such an orphan, which the next process to
take the lock removes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from filelock import FileLock

from .errors import CacheError

#: Counters for this process (read them to show that a warm start compiled nothing).
STATS = {"compiled": 0, "loaded": 0, "rendered": 0, "index_hits": 0}

#: Folders that hold entries (``snngen cache clear`` removes them).
FOLDERS = ("numba", "cuda", "cuda-host", "index", "quarantine")

_FIX = "Set SNNGEN_CACHE_DIR to a writable folder."


class CacheWarning(UserWarning):
    """A damaged kernel-cache entry was found, moved aside and rebuilt.

    Results are unaffected: the entry is generated and compiled again, exactly as on a cold
    start. The damaged files are kept under ``<cache>/quarantine/`` (the message names the
    folder) so that the damage can be inspected or reported; ``snngen cache clear`` removes
    them. Seeing this warning repeatedly points at a failing disk or at another program
    writing into the cache folder.
    """


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


_LOCKS: dict[str, FileLock] = {}
_SWEPT: set[str] = set()


class _Lock:
    """The cross-process writer lock of one cache root, reentrant within a process (one
    :class:`FileLock` per root: two instances on one file would wait for each other). The
    first time a process takes it, it removes the ``.tmp-*`` files that killed writers left:
    every writer holds this lock, so while we hold it nobody is writing one."""

    def __init__(self, root: Path):
        self.root = root
        key = str(root.resolve())
        if key not in _LOCKS:
            _LOCKS[key] = FileLock(str(root / "lock"), timeout=600)
        self.file_lock, self.key = _LOCKS[key], key

    @property
    def held(self) -> bool:
        return self.file_lock.is_locked

    def __enter__(self):
        try:
            self.file_lock.acquire()
        except OSError as err:  # unwritable, or held for 10 minutes (filelock's Timeout)
            raise CacheError(f"cannot take the kernel cache's lock {self.root / 'lock'}: "
                             f"{err}. {_FIX}") from err
        if self.key not in _SWEPT:
            _SWEPT.add(self.key)
            for sub in FOLDERS[:4]:
                for orphan in (self.root / sub).glob(".tmp-*"):
                    orphan.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc):
        self.file_lock.release()


def lock() -> _Lock:
    """The cache's cross-process lock (``with cache.lock(): ...``); every write holds it."""
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(f"cannot create the kernel cache at {root}: {err}. {_FIX}") from err
    path = root / "lock"
    if path.is_dir() or path.is_symlink():
        # something that is not a lock file took its name (no process can hold a folder as
        # its lock): moved aside like any damaged entry (quarantine() itself needs the lock)
        dest = root / "quarantine" / (time.strftime("%Y%m%d-%H%M%S") +
                                      f"-{os.getpid()}-{next(_EVENTS)}") / "lock"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, dest)
        except FileNotFoundError:  # another process moved it first
            pass
        except OSError as err:
            raise CacheError(f"the kernel cache's lock file {path} is not a file and cannot be "
                             f"moved aside: {err}. {_FIX}") from err
        else:
            warnings.warn(CacheWarning(f"snngen's kernel cache: its lock file {path} was not a "
                                       f"file; moved it to {dest}."), stacklevel=2)
    return _Lock(root)


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it (a temporary
    file, flushed to disk, then renamed). The caller holds :func:`lock`."""
    assert lock().held, "cache writes hold the cache lock (orphan removal relies on it)"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise CacheError(f"cannot write the kernel cache at {path.parent}: {err}. {_FIX}") \
            from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


_EVENTS = itertools.count()


def quarantine(paths, what: str, why: str = "") -> Path | None:
    """Move the damaged files ``paths`` into a new folder under ``quarantine/`` (keeping
    their path relative to the cache) and warn once; returns that folder (None if none of
    the files was there any more: another process got to them first)."""
    root = cache_dir()
    dest = root / "quarantine" / (time.strftime("%Y%m%d-%H%M%S") +
                                  f"-{os.getpid()}-{next(_EVENTS)}")
    moved = []
    with lock():
        for path in map(Path, paths):
            if not path.exists():
                continue
            try:
                rel = path.resolve().relative_to(root.resolve())
            except ValueError:  # Numba's cache of snngen's own functions lies elsewhere
                rel = Path(path.name)
            try:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, dest / rel)
            except OSError as err:
                raise CacheError(f"the kernel cache file {path} is damaged and cannot be moved "
                                 f"aside: {err}. {_FIX}") from err
            moved.append(str(rel))
    if not moved:
        return None
    warnings.warn(CacheWarning(
        f"snngen's kernel cache: {what} was damaged{f' ({why})' if why else ''}; "
        f"moved {', '.join(moved)} to {dest} and rebuilt the entry."), stacklevel=3)
    return dest


def _intact(path: Path, sha: str) -> bool | None:
    """True if the file's bytes hash to ``sha``, False if not (damaged), None if missing."""
    try:
        return digest(path.read_bytes()) == sha
    except FileNotFoundError:
        return None
    except OSError:
        return False


def store_source(path: Path, text: str) -> None:
    """Make ``path`` hold exactly ``text``: written if missing, quarantined and rewritten if
    damaged, left alone if intact."""
    sha = digest(text)
    with lock():
        state = _intact(path, sha)
        if state is False:
            quarantine([path], f"the generated kernel {path.name}", "its text does not match "
                       "its hash")
        if not state:
            write_atomic(path, text)


def _index_state(path: Path):
    """(entry, damage): the index entry at ``path`` if it and its source are intact; damage
    is (files, what, why) when something is unreadable; both None when there is no entry."""
    try:
        entry = json.loads(path.read_bytes().decode())
        if not (isinstance(entry, dict) and isinstance(entry.get("source"), str)
                and isinstance(entry.get("sha256"), str)):
            raise ValueError("not an index entry")
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:  # JSON and UTF-8 errors are ValueErrors
        return None, ([path], f"the index entry {path.name}", type(err).__name__)
    src = cache_dir() / entry["source"]
    state = _intact(src, entry["sha256"])
    if state is None:
        return None, ([path], f"the index entry {path.name}", f"{entry['source']} is missing")
    if state is False:
        return None, ([src], f"the generated kernel {src.name}", "its text does not match "
                      "its hash")
    return entry, None


def read_index(key: str) -> dict | None:
    """The index entry of a structure key, or None if absent or damaged (then quarantined:
    re-checked under the lock, as another process may have repaired it meanwhile)."""
    path = cache_dir() / "index" / f"{key}.json"
    entry, damage = _index_state(path)
    if damage is None:
        return entry
    with lock():
        entry, damage = _index_state(path)
        if damage is not None:
            quarantine(*damage)
    return entry


def write_index(key: str, entry: dict) -> None:
    write_atomic(cache_dir() / "index" / f"{key}.json", json.dumps(entry))


def _damaged_bytecode(path: Path) -> Path | None:
    """Python's cached bytecode of ``path`` if it is current but unreadable (Python itself
    recompiles a stale or headerless .pyc, but fails on a truncated body)."""
    import importlib.util
    import marshal
    pyc = Path(importlib.util.cache_from_source(str(path)))
    try:
        marshal.loads(pyc.read_bytes()[16:])
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, TypeError):
        return pyc
    return None


def import_file(path: Path, name: str | None = None):
    """Import a generated module from its file, once per process (a real module in
    ``sys.modules`` backed by a file: what Numba's on-disk cache needs). Damaged bytecode
    that Python cached for it is quarantined and the import retried."""
    import importlib.util
    import sys
    name = name or path.stem
    if name in sys.modules:
        return sys.modules[name]
    for attempt in range(2):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            return module
        except Exception as err:
            del sys.modules[name]
            pyc = _damaged_bytecode(path) if attempt == 0 else None
            if pyc is None:
                raise
            quarantine([pyc], f"Python's bytecode of {path.name}", type(err).__name__)


def generated_module(source: str, kind: str, subdir: str = "numba"):
    """Write ``source`` once under ``subdir/snngen_<kind>_<sha>.py`` (atomically, locked) and
    import it: (module, path). For kernels that are keyed by their text alone."""
    path = cache_dir() / subdir / f"snngen_{kind}_{digest(source)[:20]}.py"
    store_source(path, source)
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
    store_source(path, text)
    module = import_file(path, prefix + path.stem)  # index only what imports
    with lock():
        write_index(key, {"source": rel, "sha256": sha})
    return module, path


def find_binary(folder: str, stem: str, suffix: str) -> Path | None:
    """The intact compiled file ``<folder>/<stem>.<sha256 of its bytes [:16]><suffix>``, or
    None; damaged ones are quarantined."""
    with lock():
        for path in sorted((cache_dir() / folder).glob(f"{stem}.*{suffix}")):
            try:
                if digest(path.read_bytes())[:16] == path.name[len(stem) + 1:-len(suffix)]:
                    return path
            except FileNotFoundError:
                continue
            except OSError:
                pass
            quarantine([path], f"the compiled kernel {path.name}", "its bytes do not match "
                       "their hash")
    return None


def store_binary(folder: str, stem: str, suffix: str, data: bytes) -> Path:
    """Write compiled ``data`` as ``<folder>/<stem>.<its hash><suffix>``; returns the path."""
    path = cache_dir() / folder / f"{stem}.{digest(data)[:16]}{suffix}"
    with lock():
        write_atomic(path, data)
    return path


def info() -> dict:
    """Location, number of kernels, entries and quarantined files, and size of the cache."""
    root = cache_dir()

    def files(sub):
        return [p for p in (root / sub).rglob("*") if p.is_file()] if (root / sub).exists() \
            else []
    return {"path": str(root),
            "kernels": sum(len(list((root / sub).glob("snngen_*.py"))) for sub in
                           ("numba", "cuda") if (root / sub).exists()),
            "entries": len(list((root / "index").glob("*.json")))
            if (root / "index").exists() else 0,
            "quarantined": len(files("quarantine")),
            "bytes": sum(p.stat().st_size for p in files("."))}


def clear() -> int:
    """Remove every cached kernel and quarantined file; returns the number of files removed."""
    root = cache_dir()
    if not root.exists():
        return 0
    with lock():
        n = 0
        for sub in FOLDERS:
            if (root / sub).exists():
                n += sum(1 for p in (root / sub).rglob("*") if p.is_file())
                shutil.rmtree(root / sub)
    return n


def _guard_numba_cache() -> None:
    """Make Numba's on-disk cache of snngen's functions (generated kernels and the package's
    own ``cache=True`` functions) self-repairing: Numba raises when an index (.nbi) or data
    (.nbc) file it finds cannot be unpickled, and every later run would fail the same way.
    Such a load becomes a cache miss instead, after the function's files are quarantined, so
    Numba compiles it again and writes fresh files. Other programs' functions are left alone.
    """
    try:
        from numba.core.caching import Cache
    except ImportError:  # pragma: no cover - numba is a dependency
        return
    load = Cache.load_overload
    if getattr(load, "snngen_guard", False):
        return

    def load_overload(self, sig, target_context):
        try:
            return load(self, sig, target_context)
        except Exception as err:
            module = getattr(getattr(self, "_py_func", None), "__module__", None) or ""
            files = getattr(self, "_cache_file", None)
            if not module.startswith(("snngen", "cuda_snngen")) or files is None:
                raise
            index = Path(files._index_path)
            damaged = [index, *index.parent.glob(index.stem + ".*.nbc")]
            quarantine(damaged, f"Numba's compiled code of {module}.{self._py_func.__qualname__}",
                       type(err).__name__)
            return None  # a miss: Numba compiles and saves it again

    load_overload.snngen_guard = True
    Cache.load_overload = load_overload


_guard_numba_cache()
