"""Spiking Heidelberg Digits (SHD) format: HDF5 files of spike events, read from a local path.

The files hold ``spikes/times`` (seconds) and ``spikes/units`` (channel) as one
variable-length array per sample, and ``labels``. Nothing is downloaded: pass the path of a
file you have. Needs the optional dependency h5py (``pip install h5py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidValueError, ShapeError, SnngenError, shown
from ..train.checks import as_count, as_real, check_array_fits


def load_shd(path, max_samples: int | None = None):
    """Return ``(times, units, labels)``: lists of per-sample arrays and a label array."""
    try:
        import h5py
    except ImportError:
        raise SnngenError("reading SHD files needs h5py: pip install h5py") from None
    path = Path(path)
    if not path.is_file():
        raise SnngenError(f"SHD file not found: {path}")
    if max_samples is not None:
        max_samples = as_count(max_samples, "max_samples", "load_shd", 0)
    try:
        with h5py.File(path, "r") as fh:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in fh]
            if missing:
                raise InvalidValueError(f"{path} is not an SHD file: missing "
                                        f"{', '.join(missing)}")
            n = len(fh["labels"]) if max_samples is None else min(max_samples,
                                                                  len(fh["labels"]))
            if len(fh["spikes/times"]) < n or len(fh["spikes/units"]) < n:
                raise InvalidValueError(f"{path}: {len(fh['labels'])} labels but "
                                        f"{len(fh['spikes/times'])} spike-time and "
                                        f"{len(fh['spikes/units'])} unit arrays")
            times = [np.asarray(fh["spikes/times"][k], np.float64) for k in range(n)]
            units = [np.asarray(fh["spikes/units"][k], np.int64) for k in range(n)]
            labels = np.asarray(fh["labels"][:n], np.int64)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, SnngenError):
            raise
        raise InvalidValueError(f"load_shd: {path} cannot be read as an SHD file (HDF5 with "
                                f"spikes/times, spikes/units and labels; truncated or another "
                                f"format?): {type(exc).__name__}: {exc}") from None
    for k, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise InvalidValueError(f"{path}: sample {k} has {t.size} times but {u.size} "
                                    "units")
        if not np.all(np.isfinite(t)):
            raise InvalidValueError(f"{path}: sample {k} has non-finite spike times")
    return times, units, labels


def events_raster(times, units, channels: int, dt: float, steps: int,
                  dtype=np.float32) -> np.ndarray:
    """Per-sample spike events -> (steps x samples x channels) spike counts; events after
    ``steps * dt`` (and before 0) are dropped."""
    where = "events_raster"
    channels, steps = as_count(channels, "channels", where), as_count(steps, "steps", where)
    dt = as_real(dt, "dt", where, 0, open_low=True)
    if len(times) != len(units):
        raise ShapeError(f"{where}: {len(times)} samples of times but {len(units)} of units")
    for b, (t, u) in enumerate(zip(times, units)):
        t, u = np.asarray(t), np.asarray(u)
        if t.shape != u.shape or t.ndim != 1:
            raise ShapeError(f"{where}: sample {b} has times of shape {t.shape} and units of "
                             f"shape {u.shape}; one unit per spike time")
        if u.size and u.dtype.kind not in "iu":
            raise ShapeError(f"{where}: the units of sample {b} must be integers, got "
                             f"{u.dtype}")
        if u.size and (u.min() < 0 or u.max() >= channels):
            bad = u.min() if u.min() < 0 else u.max()
            raise InvalidValueError(f"{where}: sample {b} has channel {bad}, outside "
                                    f"0..{channels - 1}; pass channels= the number of "
                                    "channels of the data")
        if not np.all(np.isfinite(t)):
            raise InvalidValueError(f"{where}: sample {b} has non-finite spike times")
    check_array_fits((steps, len(times), channels), dtype, f"a raster of {shown(steps)} steps "
                     f"x {len(times)} samples x {shown(channels)} channels", where)
    out = np.zeros((steps, len(times), channels), dtype)
    for b, (t, u) in enumerate(zip(times, units)):
        u = np.asarray(u)
        # files store float32 seconds: 0.02 reads as 0.0199999995, which must land in bin 20
        step = np.floor(np.asarray(t, np.float64) / dt + 1e-4).astype(np.int64)
        keep = (step >= 0) & (step < steps)
        np.add.at(out, (step[keep], b, u[keep]), 1)
    return out
