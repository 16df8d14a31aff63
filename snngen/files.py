"""Files snngen writes whole or not at all: an ``.npz`` archive (no pickles) written to a
temporary file in the destination's folder, flushed to disk, then renamed over the
destination, so that a crash or a full disk mid-write leaves any earlier file intact and no
temporary file behind (simulator snapshots, trainer checkpoints).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import CheckpointError


def write_npz(path: Path, arrays: dict, where: str) -> None:
    """Write ``arrays`` to ``path`` atomically; an OS error becomes a
    :class:`~snngen.errors.CheckpointError` naming ``where`` and ``path``.

    >>> import tempfile, pathlib
    >>> folder = tempfile.TemporaryDirectory()
    >>> target = pathlib.Path(folder.name) / "a.npz"
    >>> write_npz(target, {"x": np.arange(3)}, "example")
    >>> np.load(target)["x"].tolist(), sorted(p.name for p in target.parent.iterdir())
    ([0, 1, 2], ['a.npz'])
    >>> folder.cleanup()
    """
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fd = None  # the file object owns it now
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _sync_folder(path.parent)
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot write {path}: {exc}; the previous file (if "
                              "any) is unchanged") from exc
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:  # a failed write leaves no temporary file behind
            Path(tmp).unlink(missing_ok=True)


def read_npz(path: Path, where: str, what: str, written_by: str) -> dict:
    """Every array of the archive at ``path``, all read now: a truncated or damaged member
    fails here (the zip's CRC-32 of each member is checked as it is read), not halfway
    through loading. Failures are :class:`~snngen.errors.CheckpointError` naming ``where``,
    ``what`` the file should be and what writes one (``written_by``)."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no {what} at {path}") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise CheckpointError(f"{where}: {path} cannot be read as a {what} (truncated, "
                              f"damaged, or not a file written by {written_by}): "
                              f"{type(exc).__name__}: {exc}; nothing was loaded") from None


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: fsync the folder); a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
