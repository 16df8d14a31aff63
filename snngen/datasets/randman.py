"""Random manifold (Randman) spike-timing data, after Zenke & Vogels (2021).

Each class is a random smooth ``dim``-dimensional manifold embedded in ``channels``
dimensions: every embedding coordinate is a sum of random low-frequency sinusoids of the
intrinsic coordinates. A sample draws a point on its class's manifold; each channel fires one
spike at a time given by its coordinate. Our own implementation, seeded and reproducible.

>>> times, units, labels = randman(3, 5, samples_per_class=2, shuffle=False)
>>> times.shape, units.shape, labels.tolist()
((6, 5), (6, 5), [0, 0, 1, 1, 2, 2])
"""

from __future__ import annotations

import numpy as np

from ..errors import SnngenError
from ..train.checks import as_count, as_real


def randman(classes: int = 10, channels: int = 100, samples_per_class: int = 100,
            dim: int = 1, frequencies: int = 3, smoothness: float = 1.0,
            duration: float = 0.1, alpha: float = 2.0, seed: int = 0, shuffle: bool = True):
    """Return ``(times, units, labels)``: spike times in seconds (samples, channels), the
    channel of each spike and the class of each sample.

    ``smoothness`` damps high frequencies (amplitude ~ 1/f**smoothness); ``alpha`` scales the
    spread of spike times within ``duration``.
    """
    for name, value in (("classes", classes), ("channels", channels),
                        ("samples_per_class", samples_per_class), ("dim", dim),
                        ("frequencies", frequencies)):
        if int(value) != value or value < 1:
            raise SnngenError(f"randman: {name} must be a positive integer, got {value!r}")
    duration = as_real(duration, "duration", "randman", 0, open_low=True)
    smoothness = as_real(smoothness, "smoothness", "randman")
    alpha = as_real(alpha, "alpha", "randman", 0, open_low=True)
    seed = as_count(seed, "seed", "randman", 0)
    rng = np.random.default_rng(seed)
    f = np.arange(1, frequencies + 1)
    amp = rng.uniform(0, 1, (classes, channels, dim, frequencies)) / f ** smoothness
    phase = rng.uniform(0, 2 * np.pi, (classes, channels, dim, frequencies))
    points = rng.uniform(0, 1, (classes, samples_per_class, dim))
    # coordinate[c, s, ch] = sum_d sum_f amp sin(2 pi f x_d + phase)
    arg = 2 * np.pi * f * points[:, :, None, :, None] + phase[:, None]
    coords = (amp[:, None] * np.sin(arg)).sum(axis=(-1, -2))
    lo = coords.min(axis=(0, 1), keepdims=True)
    hi = coords.max(axis=(0, 1), keepdims=True)
    unit = (coords - lo) / np.where(hi > lo, hi - lo, 1.0)
    times = duration * (1 - np.exp(-alpha * unit)) / (1 - np.exp(-alpha))
    times = times.reshape(classes * samples_per_class, channels)
    labels = np.repeat(np.arange(classes), samples_per_class)
    units = np.broadcast_to(np.arange(channels), times.shape).copy()
    order = rng.permutation(len(labels)) if shuffle else np.arange(len(labels))
    return times[order], units[order], labels[order]
