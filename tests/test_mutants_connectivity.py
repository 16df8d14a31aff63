"""Direct tests of connectivity's column regrouping, written from its mutation run (issue 18,
item 7): ``_regroup`` (the transposed tables of ``on_post`` pathways and of fixed in-degree
rules) against NumPy's stable sort for column counts on both sides of every bucket-width
switch (256 columns per bucket level, shifts up to 16)."""

from __future__ import annotations

import numpy as np
import pytest

from snngen.connectivity import _regroup


@pytest.mark.parametrize("n_cols", [1, 2, 255, 256, 257, 511, 512, 1000, 4099, 70_001])
@pytest.mark.parametrize("with_positions", [True, False])
def test_regroup_equals_a_stable_sort_by_column(n_cols, with_positions):
    rng = np.random.default_rng(n_cols)
    n_rows = 50
    counts = rng.integers(0, 40, n_rows)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    indices = rng.integers(0, n_cols, indptr[-1]).astype(np.int32)
    if n_cols > 1:
        indices[:2] = [0, n_cols - 1]  # both ends of the column range
    col_ptr, rows, positions = _regroup(indptr, indices, n_cols, with_positions)
    order = np.argsort(indices, kind="stable")  # rows ascend within a column
    row_of = np.repeat(np.arange(n_rows), counts)
    np.testing.assert_array_equal(col_ptr, np.r_[0, np.cumsum(np.bincount(indices,
                                                                          minlength=n_cols))])
    np.testing.assert_array_equal(rows, row_of[order])
    if with_positions:
        np.testing.assert_array_equal(positions, order)
    else:
        assert positions.size == 0
