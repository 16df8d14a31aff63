"""Latency-coded digits: scikit-learn's bundled 8x8 digits as one spike per pixel (L3).

Brighter pixels fire earlier: pixel intensity ``x`` in [0, 1] fires at
``t = duration * (1 - x)``; pixels at or below ``threshold`` do not fire. Needs the optional
dependency scikit-learn (its data set ships inside the package; nothing is downloaded).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidValueError, ShapeError, SnngenError, shown
from ..train.checks import as_count, as_real, check_array_fits


def latency_digits(duration: float = 0.05, threshold: float = 0.0):
    """Return ``(times, labels)``: spike times in seconds (samples x 64, NaN where a pixel
    does not fire) and the digit of each sample."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SnngenError("latency_digits needs scikit-learn: pip install scikit-learn") from None
    duration = as_real(duration, "duration", "latency_digits", 0, open_low=True)
    threshold = as_real(threshold, "threshold", "latency_digits", 0, 1, open_high=True)
    data = load_digits()
    x = data.data / 16.0
    times = np.where(x > threshold, duration * (1.0 - x), np.nan)
    return times, data.target.astype(np.int64)


def latency_raster(times: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """(samples x channels) spike times with NaN for silence -> (steps x samples x channels);
    times >= 0, those past the last step land in it."""
    times = np.asarray(times)
    dt = as_real(dt, "dt", "latency_raster", 0, open_low=True)
    steps = as_count(steps, "steps", "latency_raster")
    if times.ndim != 2 or times.dtype.kind != "f":
        raise ShapeError(f"latency_raster: times must be a (samples, channels) float array "
                         f"(NaN: silent), got shape {times.shape} and dtype {times.dtype}")
    bad = np.flatnonzero(np.isinf(times) | (times < 0))
    if bad.size:
        where = np.unravel_index(bad[0], times.shape)
        raise InvalidValueError(f"latency_raster: spike times must be >= 0 and finite (NaN: "
                                f"silent), found {times[where]} at (sample, channel) {where}")
    check_array_fits((steps,) + times.shape, np.float32, f"a raster of {shown(steps)} steps x "
                     f"{times.shape}", "latency_raster")
    fires = ~np.isnan(times)
    idx = np.minimum(np.floor(np.where(fires, times, 0) / dt + 1e-9).astype(np.int64),
                     steps - 1)
    raster = np.zeros((steps,) + times.shape, np.float32)
    s, c = np.nonzero(fires)
    raster[idx[s, c], s, c] = 1.0
    return raster
