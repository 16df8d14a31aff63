"""Register-blocked dense products for the backward pass: ``c = W[j0:j1] @ a``.

The backward pass of a densely connected recurrent layer sends the adjoint back through the
weights once per step: for the rows of W a thread owns, ``c[j - j0, :] = sum_k W[j, k] a[k, :]``
with ``a`` the adjoint of the synaptic input, trials innermost (K x B, B about 32). That
product is skinny (B columns), repeated T times against the same W, and OpenBLAS spends much
of it packing W again every call: on T1 (H = 1024, B = 32, 512 rows per thread) it ran at
70-90 GFLOP/s per core, where this kernel runs at 120-150 (``benchmarks/RESULTS.md``).

How: a tile of R rows of W times V vectors of columns of ``a`` keeps its R x V accumulators in
registers for the whole sum over k. Each k loads V vectors of ``a``'s row k, broadcasts the R
numbers W[j0 + r, k] and issues R x V fused multiply-adds. The tile is written as LLVM vector
operations (``<L x float>``, ``llvm.fma``) by a Numba intrinsic, so it does not depend on the
loop vectoriser, whose cost model keeps Numba's loops at 256 bits on AVX-512 machines; the
vector length L is the host's widest (AVX-512: 16 floats, AVX: 8, else 4), and R is chosen so
that the accumulators fit the register file (32 vector registers with AVX-512, else 16).
W is read in place (row-major, any row stride): packing it first was measured no faster.

Every row's sum runs over k in order, one lane per column, so a result does not depend on
which thread computes it, on the split of rows between threads, or on the batch padding.
``a`` and ``c`` must have a multiple of :func:`lanes` columns (pad them; see :func:`padded`);
:func:`rows_product` falls back to a plain loop otherwise.

>>> import numpy as np
>>> w = np.arange(12.0, dtype=np.float32).reshape(3, 4)
>>> a = np.ones((4, padded(2, np.float32)), np.float32)
>>> c = np.zeros((3, a.shape[1]), np.float32)
>>> rows_product(w.ravel(), 4, 0, 3, a, c, False)
>>> c[:, 0].tolist()
[6.0, 22.0, 38.0]
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic


def digest() -> str:
    """Hash of this file: generated kernels that call these tiles embed it, so that Numba's
    cache (keyed on the kernel's own file) never serves code built from an older one."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _target_features() -> str:
    """The CPU features Numba compiles for (``NUMBA_CPU_FEATURES`` / ``NUMBA_CPU_NAME``
    when set, else the host's)."""
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    if config.CPU_NAME and config.CPU_NAME not in ("host", "native"):
        return ""  # a named (portable) target without features: assume the baseline
    try:
        import llvmlite.binding as llvm
        return llvm.get_host_cpu_features().flatten()
    except Exception:  # (no feature list on this platform: the baseline is always right)
        return ""


def _vector_shape() -> tuple[int, int]:
    """(bytes per vector register, vector registers) of the target."""
    feats = set(_target_features().split(","))
    if "+avx512f" in feats:
        return 64, 32
    if "+avx" in feats:
        return 32, 16
    return 16, 16


VECTOR_BYTES, REGISTERS = _vector_shape()
# rows per tile for V = 2 and V = 1 vectors of columns: accumulators R x V, plus the vectors
# of ``a`` and a broadcast, within the register file (AVX-512: 14 x 2 and 28 x 1; measured
# against 8, 12 and 20 rows on T1's shape, 14 x 2 was fastest)
_ROWS2 = min(14, (REGISTERS - 4) // 2)
_ROWS1 = min(28, REGISTERS - 4)
_TAIL = 4  # the rows left over go in tiles of 4, then of 1


def lanes(dtype) -> int:
    """Numbers of ``dtype`` per vector register."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def padded(columns: int, dtype) -> int:
    """``columns`` rounded up to a multiple of :func:`lanes`."""
    size = lanes(dtype)
    return -(-columns // size) * size


def _tile(rows: int, vectors: int):
    """The intrinsic ``tile(w, j, ldw, a, col, c, crow, k)``: for r < rows and the
    ``vectors`` x L columns from ``col``, ``c[crow + r, cols] = sum_{k' < k} w[(j + r) ldw +
    k'] a[k', cols]``. w is 1-d, a and c 2-d C-contiguous, all of one float type."""
    def define(typingctx, w, j, ldw, a, col, c, crow, k):
        ok = (isinstance(w, types.Array) and w.ndim == 1 and isinstance(w.dtype, types.Float)
              and isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"
              and isinstance(c, types.Array) and c.ndim == 2 and c.layout == "C"
              and a.dtype == w.dtype and c.dtype == w.dtype)
        if not ok:
            raise TypeError("tile(w, j, ldw, a, col, c, crow, k): w 1-d, a and c 2-d "
                            "C-contiguous, one float type")
        size = VECTOR_BYTES // (w.dtype.bitwidth // 8)
        sig = types.void(w, types.intp, types.intp, a, types.intp, c, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            w_t, _, _, a_t, _, c_t, _, _ = signature.args
            w_v, j_v, ldw_v, a_v, col_v, c_v, crow_v, k_v = args
            i64 = ir.IntType(64)
            fty = context.get_value_type(w_t.dtype)
            vty = ir.VectorType(fty, size)
            pvty = vty.as_pointer()
            w_p = context.make_array(w_t)(context, builder, w_v).data
            a_arr = context.make_array(a_t)(context, builder, a_v)
            c_arr = context.make_array(c_t)(context, builder, c_v)
            a_p, c_p = a_arr.data, c_arr.data
            a_cols = builder.extract_value(a_arr.shape, 1)
            c_cols = builder.extract_value(c_arr.shape, 1)
            name = f"llvm.fma.v{size}f{w_t.dtype.bitwidth}"
            fma = cgutils.get_or_insert_function(builder.module,
                                                 ir.FunctionType(vty, [vty, vty, vty]), name)
            zero = ir.Constant(vty, None)
            undef = ir.Constant(vty, ir.Undefined)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), size), None)
            first = ir.Constant(ir.IntType(32), 0)
            align = w_t.dtype.bitwidth // 8  # (unaligned vector loads and stores)

            def const(value):
                return ir.Constant(i64, value)
            # accumulators: allocas in the entry block, promoted to registers by mem2reg
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vectors)]
                   for _ in range(rows)]
            w_rows = [builder.mul(builder.add(j_v, const(r)), ldw_v) for r in range(rows)]
            with cgutils.for_range(builder, k_v) as loop:
                k = loop.index
                a_row = builder.add(builder.mul(k, a_cols), col_v)
                b = [builder.load(builder.bitcast(builder.gep(
                     a_p, [builder.add(a_row, const(v * size))]), pvty), align=align)
                     for v in range(vectors)]
                for r in range(rows):
                    s = builder.load(builder.gep(w_p, [builder.add(w_rows[r], k)]))
                    s = builder.shuffle_vector(builder.insert_element(undef, s, first), undef,
                                               splat)
                    for v in range(vectors):
                        builder.store(builder.call(fma, [s, b[v], builder.load(acc[r][v])]),
                                      acc[r][v])
            for r in range(rows):
                base = builder.add(builder.mul(builder.add(crow_v, const(r)), c_cols), col_v)
                for v in range(vectors):
                    p = builder.bitcast(builder.gep(c_p, [builder.add(base, const(v * size))]),
                                        pvty)
                    builder.store(builder.load(acc[r][v]), p, align=align)
            return context.get_dummy_value()
        return sig, codegen
    define.__name__ = define.__qualname__ = f"tile_{rows}x{vectors}"
    return intrinsic(define)


_tile2, _tile2_tail, _tile2_one = _tile(_ROWS2, 2), _tile(_TAIL, 2), _tile(1, 2)
_tile1, _tile1_tail, _tile1_one = _tile(_ROWS1, 1), _tile(_TAIL, 1), _tile(1, 1)


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def _panel(w, ldw, j, rows, a, col, vectors, c, crow, k):
    """``rows`` (the full tile, 4 or 1) rows from j, ``vectors`` (2 or 1) vectors of columns."""
    if vectors == 2:
        if rows == _ROWS2:
            _tile2(w, j, ldw, a, col, c, crow, k)
        elif rows == _TAIL:
            _tile2_tail(w, j, ldw, a, col, c, crow, k)
        else:
            _tile2_one(w, j, ldw, a, col, c, crow, k)
    else:
        if rows == _ROWS1:
            _tile1(w, j, ldw, a, col, c, crow, k)
        elif rows == _TAIL:
            _tile1_tail(w, j, ldw, a, col, c, crow, k)
        else:
            _tile1_one(w, j, ldw, a, col, c, crow, k)


@njit(cache=True, boundscheck=False, nogil=True)
def rows_product(w, ldw, j0, j1, a, c, descending):
    """``c[j - j0, :] = sum_k w[j ldw + k] a[k, :]`` for ``j0 <= j < j1``: rows j0 .. j1 - 1 of
    the row-major matrix ``w`` (1-d, row stride ``ldw``) times ``a`` (K x N), into the first
    j1 - j0 rows of ``c`` (N columns). N a multiple of :func:`lanes` takes the register tiles;
    any other N (or a ``c`` of another width: its first columns) a plain loop.
    ``descending``: the tiles of rows in the opposite order (a thread that alternates reads
    last the rows it read first, while they are still cached)."""
    k = a.shape[0]
    cols = a.shape[1]
    size = VECTOR_BYTES // a.itemsize
    if cols % size != 0 or c.shape[1] != cols:
        width = min(cols, c.shape[1])
        for j in range(j0, j1):
            out = c[j - j0]
            out[:] = 0.0
            for kk in range(k):
                wv = w[j * ldw + kk]
                row = a[kk]
                for b in range(width):
                    out[b] += wv * row[b]
        return
    for col in range(0, cols, 2 * size):
        vectors = 2 if col + 2 * size <= cols else 1
        full = _ROWS2 if vectors == 2 else _ROWS1
        # tiles: full ones from j0, then of 4 rows, then single rows
        m = (j1 - j0) // full
        m4 = (j1 - j0 - m * full) // _TAIL
        ones = j1 - j0 - m * full - m4 * _TAIL
        tiles = m + m4 + ones
        for p in range(tiles):
            q = tiles - 1 - p if descending else p
            if q < m:
                j, rows = j0 + q * full, full
            elif q < m + m4:
                j, rows = j0 + m * full + (q - m) * _TAIL, _TAIL
            else:
                j, rows = j0 + m * full + m4 * _TAIL + (q - m - m4), 1
            _panel(w, ldw, j, rows, a, col, vectors, c, j - j0, k)


@njit(cache=True, boundscheck=False, nogil=True, inline="always")
def pad_columns(columns, like):
    """``columns`` rounded up to a multiple of the lanes of ``like``'s float type."""
    size = VECTOR_BYTES // like.itemsize
    return (columns + size - 1) // size * size
