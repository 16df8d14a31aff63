"""Data sets generated offline (no downloads)."""

from .randman import randman

__all__ = ["randman"]
