"""Locate and load the jinja2 kernel templates (repository ``templates/`` or package data)."""

from __future__ import annotations

import functools
import re
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


#: The package sources whose code decides a generated kernel's text (besides its templates):
#: the structure key of a network includes their digest, so an edited generator never meets
#: a kernel rendered by the old one. units.py is among them: unit scales of constants in
#: equations ("mV") are folded into the rendered expressions.
GENERATOR_SOURCES = ("parse.py", "model.py", "units.py", "integrate.py", "linalg.py", "ir",
                     "backends")


def generator_digest(templates: list[Path], extra: tuple[str, ...] = ()) -> str:
    """The digest of ``templates`` and of :data:`GENERATOR_SOURCES` (+ ``extra`` modules)."""
    from .. import cache
    pkg = Path(__file__).resolve().parent.parent
    files = list(templates)
    for sub in (*GENERATOR_SOURCES, *extra):
        path = pkg / sub
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return cache.digest("".join(f.read_text() for f in files))[:16]


#: Marks a generated CUDA line with the template line it came from: ``// @program.cu.j2:57``.
TEMPLATE_MARK = re.compile(r"// @([\w.]+\.j2):(\d+)\s*$")


def mark_lines(text: str, name: str) -> str:
    """Append ``// @<name>:<line>`` to every template line that emits C code, so that a
    compiler error in the generated source can name the template line (macros expanded
    elsewhere keep the line of their body). Lines that are only Jinja tags, comments or
    blank, and lines continued with a backslash, are left alone."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        bare = line.strip()
        if (bare and not bare.startswith(("{%", "{#", "//", "#")) and not bare.endswith("\\")
                and not bare.endswith(("%}", "#}"))):
            line = f"{line} // @{name}:{number}"
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


class _Loader(jinja2.FileSystemLoader):
    """Templates from disk; CUDA templates get line marks (see :func:`mark_lines`)."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template.startswith("cuda/") and template.endswith(".cu.j2"):
            source = mark_lines(source, template.split("/")[-1])
        return source, filename, uptodate


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=_Loader(str(template_dir())),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)
