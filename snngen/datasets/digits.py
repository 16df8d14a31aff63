"""Latency-coded digits: scikit-learn's bundled 8x8 digits as one spike per pixel (L3).

Brighter pixels fire earlier: pixel intensity ``x`` in [0, 1] fires at
``t = duration * (1 - x)``; pixels at or below ``threshold`` do not fire. Needs the optional
dependency scikit-learn (its data set ships inside the package; nothing is downloaded).
"""

from __future__ import annotations

import numpy as np

from ..errors import SnngenError


def latency_digits(duration: float = 0.05, threshold: float = 0.0):
    """Return ``(times, labels)``: spike times in seconds (samples x 64, NaN where a pixel
    does not fire) and the digit of each sample."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SnngenError("latency_digits needs scikit-learn: pip install scikit-learn") from None
    if not duration > 0 or not 0 <= threshold < 1:
        raise SnngenError("latency_digits: need duration > 0 and 0 <= threshold < 1")
    data = load_digits()
    x = data.data / 16.0
    times = np.where(x > threshold, duration * (1.0 - x), np.nan)
    return times, data.target.astype(np.int64)


def latency_raster(times: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """(samples x channels) spike times with NaN for silence -> (steps x samples x channels)."""
    fires = ~np.isnan(times)
    idx = np.minimum(np.floor(np.where(fires, times, 0) / dt + 1e-9).astype(np.int64),
                     steps - 1)
    raster = np.zeros((steps,) + times.shape, np.float32)
    s, c = np.nonzero(fires)
    raster[idx[s, c], s, c] = 1.0
    return raster
