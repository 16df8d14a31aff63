"""Data sets generated offline (no downloads)."""

from .digits import latency_digits, latency_raster
from .randman import randman
from .shd import events_raster, load_shd

__all__ = ["events_raster", "latency_digits", "latency_raster", "load_shd", "randman"]
