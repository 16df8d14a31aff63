"""Data sets generated offline (no downloads)."""

from .randman import randman
from .shd import events_raster, load_shd

__all__ = ["events_raster", "load_shd", "randman"]
