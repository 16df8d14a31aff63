"""Compile generated CUDA C: NVRTC (through CuPy) or ``nvcc`` for the GPU, g++ for the host.

Nothing here needs a GPU. :func:`compile_cubin` turns a source into a CUBIN for one
architecture (``sm_80``, ``sm_90``...), with NVRTC when its library is present (the
``nvidia-cuda-nvrtc`` wheel, or a CUDA toolkit) and otherwise with ``nvcc`` from ``PATH``.
:func:`build_host` compiles the same source as C++ with ``templates/cuda/shim.h`` into a
shared library for the host emulation. Both cache their output in the snngen cache, keyed by
the source, the options and the compiler's version, and both raise
:class:`~snngen.errors.CudaCompileError` with the failing kernel's lines on an error.

A compiled file is named ``snngen_<key>.<sha256 of its bytes>.{cubin,so}`` and written under
the cache lock (:func:`snngen.cache.store_binary`); one whose bytes no longer match the name
(truncated, emptied, overwritten) is quarantined with a warning and compiled again
(:func:`snngen.cache.find_binary`), instead of failing every later run when CuPy or ctypes
loads it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ... import cache
from ...errors import BackendUnsupported, CudaCompileError

_DIAG = re.compile(r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+)\): (?P<kind>error|catastrophic error)"
                   r": (?P<msg>.*)$", re.M)
_GXX_DIAG = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: "
                       r"(?P<msg>.*)$", re.M)


def _nvrtc():
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
        return nvrtc
    except Exception:  # noqa: BLE001 - no CuPy, or CuPy without libnvrtc: try nvcc
        return None


@functools.cache
def compiler_version() -> str:
    """Which GPU compiler is used, and its version (part of every cache key)."""
    nv = _nvrtc()
    if nv is not None:
        major, minor = nv.getVersion()
        return f"nvrtc {major}.{minor}"
    nvcc = shutil.which("nvcc")
    if nvcc:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"release ([\d.]+)", out)
        return f"nvcc {m.group(1) if m else 'unknown'}"
    return "none"


def available() -> bool:
    return compiler_version() != "none"


def _error(source: str, log: str, pattern, what: str) -> CudaCompileError:
    from ..templates import TEMPLATE_MARK
    lines = source.splitlines()
    found = []
    for m in pattern.finditer(log):
        n = int(m["line"])
        code = lines[n - 1] if 0 < n <= len(lines) else ""
        kernel = next((ln for ln in reversed(lines[:n]) if "__global__" in ln), "")
        mark = TEMPLATE_MARK.search(code)
        where = f"{mark.group(1)}:{mark.group(2)} (template), " if mark else ""
        found.append((f"{where}generated line {n}", m["msg"],
                      TEMPLATE_MARK.sub("", code).strip(),
                      TEMPLATE_MARK.sub("", kernel).strip()))
    return CudaCompileError(what, found, log)


def _options(arch: str, dtype: str) -> list[str]:
    opts = [f"-arch={arch}", "-std=c++17"]
    if dtype == "float32":
        opts.append("-ftz=true")  # denormals flushed, as on the CPU backend
    return opts


def compilers() -> list[str]:
    """The GPU compilers present: "nvrtc" and/or "nvcc"."""
    return [c for c, ok in (("nvrtc", _nvrtc() is not None), ("nvcc", bool(shutil.which("nvcc"))))
            if ok]


def compile_cubin(source: str, arch: str = "sm_90", dtype: str = "float32",
                  using: str = "auto") -> tuple[Path, bool]:
    """Compile ``source`` to a CUBIN for ``arch``; returns (path, compiled_now).

    ``using``: "nvrtc", "nvcc" or "auto" (NVRTC if present, else nvcc).
    """
    opts = _options(arch, dtype)
    nv = _nvrtc() if using in ("auto", "nvrtc") else None
    if using == "nvrtc" and nv is None:
        raise BackendUnsupported("NVRTC is not available: pip install snngen[cuda]")
    version = compiler_version() if using == "auto" else using
    key = cache.digest("\n".join([source, *opts, version]))[:24]
    with cache.lock():  # one process compiles, the others wait and load its file
        path = cache.find_binary("cuda", f"snngen_{key}.{arch}", ".cubin")
        if path is not None:
            return path, False
        return cache.store_binary("cuda", f"snngen_{key}.{arch}", ".cubin",
                                  _cubin(source, opts, nv, arch)), True


def _cubin(source: str, opts: list[str], nv, arch: str) -> bytes:
    """The CUBIN of ``source`` from NVRTC (``nv``) or, if that is None, nvcc."""
    if nv is not None:
        prog = nv.createProgram(source, "snngen_program.cu", (), ())
        try:
            try:
                nv.compileProgram(prog, opts)
            except nv.NVRTCError:
                raise _error(source, nv.getProgramLog(prog), _DIAG,
                             f"NVRTC ({arch})") from None
            binary = nv.getCUBIN(prog)
        finally:
            nv.destroyProgram(prog)
    else:
        nvcc = shutil.which("nvcc")
        if nvcc is None:
            raise BackendUnsupported(
                "no CUDA compiler: install the NVRTC wheel (pip install snngen[cuda]) or put "
                "nvcc on PATH")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "snngen_program.cu"
            src.write_text(source)
            out = Path(tmp) / "out.cubin"
            r = subprocess.run([nvcc, "-cubin", *opts, str(src), "-o", str(out)],
                               capture_output=True, text=True)
            if r.returncode:
                raise _error(source, r.stderr + r.stdout, _DIAG, f"nvcc ({arch})")
            binary = out.read_bytes()
    return binary


#: Always passed to the host compiler: never fuse a * b + c into an FMA, as CUDA's __dmul_rn and
#: __dadd_rn (and Numba) do not, so emulated results keep the same bits.
_HOST_FLAGS = ("-std=c++17", "-ffp-contract=off", "-shared", "-fPIC", "-w")


def shim_path() -> Path:
    from ..templates import template_dir
    return template_dir() / "cuda" / "shim.h"


def build_host(source: str, launchers: str, flags: tuple[str, ...] | None = None) \
        -> tuple[Path, bool]:
    """Compile ``source`` as C++ for this CPU with the shim; returns (shared library, new).

    ``flags`` default to ``$SNNGEN_CUDA_HOST_CXXFLAGS`` or ``-O2`` (AddressSanitizer:
    ``-O1 -g -fsanitize=address,undefined``, with libasan preloaded).
    """
    cxx = os.environ.get("CXX", "g++")
    if flags is None:
        flags = tuple(os.environ.get("SNNGEN_CUDA_HOST_CXXFLAGS", "-O2").split())
    if shutil.which(cxx) is None:
        raise BackendUnsupported(f"the CUDA host emulation needs a C++ compiler ('{cxx}'); "
                                 "install g++ or set CXX")
    shim = shim_path().read_text()
    unit = (f'{shim}\n#line 1 "snngen_program.cu"\n{source}\n'
            f'#line 1 "snngen_launchers.cpp"\n{launchers}\n')
    key = cache.digest("\n".join([unit, cxx, *flags, *_HOST_FLAGS]))[:24]
    with cache.lock():  # one process compiles, the others wait and load its file
        so = cache.find_binary("cuda-host", f"snngen_{key}", ".so")
        if so is not None:
            return so, False
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "unit.cpp"
            src.write_text(unit)
            out = Path(tmp) / "lib.so"
            r = subprocess.run([cxx, *flags, *_HOST_FLAGS, str(src), "-o", str(out)],
                               capture_output=True, text=True)
            if r.returncode:
                raise _error(source, r.stderr, _GXX_DIAG, f"{cxx} (host emulation)")
            return cache.store_binary("cuda-host", f"snngen_{key}", ".so", out.read_bytes()), \
                True
