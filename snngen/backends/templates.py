"""Locate and load the jinja2 kernel templates (repository ``templates/`` or package data)."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2


def template_dir() -> Path:
    """The folder holding ``<backend>/*.j2``: package data when installed, else the repo's."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_templates", here.parent / "templates"):
        if (candidate / "numba").is_dir():
            return candidate
    raise FileNotFoundError(f"snngen kernel templates not found next to {here} "
                            "(broken installation: reinstall snngen)")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)
