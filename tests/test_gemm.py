"""The register-tiled dense product of the backward pass (snngen.backends.numba.gemm)."""

import numpy as np
import pytest

from snngen.backends.numba import gemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, batch", [(1024, 32), (37, 5), (100, 16), (64, 48), (33, 8)])
def test_rows_product_equals_numpy(dtype, n, batch):
    """Every split of rows (full tiles, tiles of 4, single rows), both orders, both column
    tilings (two vectors and one), against numpy; the padding columns stay zero."""
    rng = np.random.default_rng(n + batch)
    w = rng.standard_normal((n, n)).astype(dtype)
    cols = gemm.padded(batch, dtype)
    assert cols % gemm.lanes(dtype) == 0 and cols >= batch
    a = np.zeros((n, cols), dtype)
    a[:, :batch] = rng.standard_normal((n, batch))
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    for j0, j1 in [(0, n), (3, n - 2), (n // 2, n), (5, 6)]:
        for descending in (False, True):
            c = np.full((j1 - j0, cols), np.nan, dtype)
            gemm.rows_product(w.ravel(), n, j0, j1, a, c, descending)
            np.testing.assert_allclose(c, w[j0:j1] @ a, **tol)
            assert not c[:, batch:].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_row_is_the_same_sum_whoever_computes_it(dtype):
    """A row's result is bitwise the same in any tile (full, 4 or 1 rows), any order, any
    split of the rows between threads: gradients do not depend on the thread count."""
    rng = np.random.default_rng(0)
    n, cols = 61, gemm.padded(24, dtype)
    w = rng.standard_normal((n, n)).astype(dtype)
    a = rng.standard_normal((n, cols)).astype(dtype)
    whole = np.zeros((n, cols), dtype)
    gemm.rows_product(w.ravel(), n, 0, n, a, whole, False)
    for cut in (1, 4, 17, 30, 45, 60):
        lo = np.zeros((cut, cols), dtype)
        hi = np.zeros((n - cut, cols), dtype)
        gemm.rows_product(w.ravel(), n, 0, cut, a, lo, True)
        gemm.rows_product(w.ravel(), n, cut, n, a, hi, False)
        assert np.array_equal(np.vstack([lo, hi]), whole)


def test_rows_product_takes_a_row_stride_and_unpadded_columns():
    """W's rows may be longer than K (the stride ``ldw``), and a column count that is not a
    multiple of the vector lanes takes the plain loop: same results."""
    rng = np.random.default_rng(1)
    k, ldw, rows = 20, 29, 9
    w = rng.standard_normal((rows, ldw)).astype(np.float32)
    for cols in (3, gemm.padded(3, np.float32)):
        a = rng.standard_normal((k, cols)).astype(np.float32)
        c = np.zeros((rows, cols), np.float32)
        gemm.rows_product(w.ravel(), ldw, 0, rows, a, c, False)
        np.testing.assert_allclose(c, w[:, :k] @ a, rtol=1e-5, atol=1e-5)


def test_tiles_fit_the_register_file():
    """The accumulators of a tile, the vectors of ``a`` and a broadcast fit the registers."""
    assert gemm.VECTOR_BYTES in (16, 32, 64)
    assert 2 * gemm._ROWS2 + 3 <= gemm.REGISTERS and gemm._ROWS1 + 2 <= gemm.REGISTERS
    assert gemm._ROWS2 >= gemm._TAIL and gemm._ROWS1 >= gemm._TAIL


def test_tile_rejects_mixed_types():
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def call(w, a, c):
        gemm._tile1_one(w, 0, 4, a, 0, c, 0, 4)
    with pytest.raises((TypeError, TypingError), match="one float type"):
        call(np.zeros(16, np.float64), np.zeros((4, 16), np.float32),
             np.zeros((1, 16), np.float32))


@pytest.mark.parametrize("cpu", [("generic", None, 16), ("haswell", "+avx,+avx2,+fma,+sse4.2", 32)])
def test_rows_product_on_narrower_vector_targets(cpu, tmp_path):
    """Compiled for a CPU without AVX-512 (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES, as on other
    machines or for portable caches), the tiles take that target's vectors and registers and
    give the same products."""
    import os
    import subprocess
    import sys
    name, features, width = cpu
    env = {**os.environ, "NUMBA_CPU_NAME": name, "NUMBA_CACHE_DIR": str(tmp_path)}
    if features:
        env["NUMBA_CPU_FEATURES"] = features
    code = """
import numpy as np
from snngen.backends.numba import gemm
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    n, batch = 45, 19
    w = rng.standard_normal((n, n)).astype(dtype)
    a = np.zeros((n, gemm.padded(batch, dtype)), dtype)
    a[:, :batch] = rng.standard_normal((n, batch))
    c = np.zeros((n - 3, a.shape[1]), dtype)
    gemm.rows_product(w.ravel(), n, 3, n, a, c, True)
    assert np.allclose(c, w[3:] @ a, rtol=1e-4, atol=1e-4), dtype
print(gemm.VECTOR_BYTES, gemm.REGISTERS, gemm._ROWS2, gemm._ROWS1)
"""
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    vector_bytes, registers, rows2, rows1 = map(int, run.stdout.split())
    assert vector_bytes == width and registers == 16
    assert 2 * rows2 + 3 <= registers and rows1 + 2 <= registers
