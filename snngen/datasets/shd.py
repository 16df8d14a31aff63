"""Spiking Heidelberg Digits (SHD) format: HDF5 files of spike events, read from a local path.

The files hold ``spikes/times`` (seconds) and ``spikes/units`` (channel) as one
variable-length array per sample, and ``labels``. Nothing is downloaded: pass the path of a
file you have. Needs the optional dependency h5py (``pip install h5py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SnngenError


def load_shd(path, max_samples: int | None = None):
    """Return ``(times, units, labels)``: lists of per-sample arrays and a label array."""
    try:
        import h5py
    except ImportError:
        raise SnngenError("reading SHD files needs h5py: pip install h5py") from None
    path = Path(path)
    if not path.is_file():
        raise SnngenError(f"SHD file not found: {path}")
    with h5py.File(path, "r") as fh:
        missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in fh]
        if missing:
            raise SnngenError(f"{path} is not an SHD file: missing {', '.join(missing)}")
        n = len(fh["labels"]) if max_samples is None else min(max_samples, len(fh["labels"]))
        times = [np.asarray(fh["spikes/times"][k], np.float64) for k in range(n)]
        units = [np.asarray(fh["spikes/units"][k], np.int64) for k in range(n)]
        labels = np.asarray(fh["labels"][:n], np.int64)
    for k, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise SnngenError(f"{path}: sample {k} has {t.size} times but {u.size} units")
    return times, units, labels


def events_raster(times, units, channels: int, dt: float, steps: int,
                  dtype=np.float32) -> np.ndarray:
    """Per-sample spike events -> (steps x samples x channels) spike counts; events after
    ``steps * dt`` are dropped."""
    out = np.zeros((steps, len(times), channels), dtype)
    for b, (t, u) in enumerate(zip(times, units)):
        if u.size and (u.min() < 0 or u.max() >= channels):
            raise SnngenError(f"sample {b}: channel {u.max()} outside 0..{channels - 1}")
        # files store float32 seconds: 0.02 reads as 0.0199999995, which must land in bin 20
        step = np.floor(np.asarray(t, np.float64) / dt + 1e-4).astype(np.int64)
        keep = (step >= 0) & (step < steps)
        np.add.at(out, (step[keep], b, u[keep]), 1)
    return out
