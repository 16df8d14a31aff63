"""The Numba deliveries of a network's BPTT (snngen.backends.numba.learning): the paths a
table's layout selects (a shared delay, a full matrix with its dense reverse product) give
what the general per-synapse path gives, on random tables, spikes and adjoints."""

import numpy as np
import pytest

from snngen.backends.numba.learning import (
    deliver,
    deliver_back,
    dense_back,
    dense_back_threads,
    dense_grads,
    dense_grads_threads,
)
from snngen.train.network_data import layout

GENERAL = np.array([-1, 0], np.int64)  # per-synapse delays, any targets: the reference path


def _table(rng, n_pre, n_post, dense):
    if dense:
        indices = np.tile(np.arange(n_post), n_pre)
        indptr = np.arange(n_pre + 1) * n_post
    else:
        mask = rng.random((n_pre, n_post)) < 0.4
        indices = np.nonzero(mask)[1]
        indptr = np.concatenate([[0], np.cumsum(mask.sum(1))])
    return indptr.astype(np.int64), indices.astype(np.int64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("soft", [False, True])
def test_layout_paths_equal_the_general_path(dtype, dense, soft):
    rng = np.random.default_rng(7)
    batch, n_pre, n_post, pre0, post0, slots, ring_rows, steps = 5, 7, 11, 2, 3, 2, 4, 9
    indptr, indices = _table(rng, n_pre, n_post, dense)
    delays = np.full(len(indices), 2, np.int64)
    lay = layout(indptr, indices, delays, n_post)
    assert lay.tolist() == [2, int(dense)]
    fval = rng.normal(size=len(indices)).astype(dtype)
    z = (rng.random((batch, pre0 + n_pre + 1)) < 0.5).astype(dtype)
    if soft:  # soft spikes deliver their value
        z *= rng.random(z.shape).astype(dtype)
    shape = (ring_rows, batch, slots, post0 + n_post + 2)
    ring0 = rng.normal(size=shape).astype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for t in (3, 6, 7):  # 7: the inputs are due after the run's last step
        fast, slow = ring0.copy(), ring0.copy()
        deliver(z, pre0, indptr, indices, post0, delays, lay, fval, fast, 1, t)
        deliver(z, pre0, indptr, indices, post0, delays, GENERAL, fval, slow, 1, t)
        np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)
        for has_dz in (True, False):
            out = []
            for which in (lay, GENERAL):
                dz = np.zeros(z.shape, dtype)
                gf = np.zeros(len(indices), dtype)
                deliver_back(z, pre0, indptr, indices, post0, delays, which, fval, ring0, 1,
                             t, steps, dz, has_dz, gf)
                dense_back(z, pre0, indptr, post0, which, fval, ring0, 1, t, steps, dz, has_dz,
                           gf, steps)  # a segment longer than the ring: sums step by step
                out.append((dz, gf))
            np.testing.assert_allclose(out[0][0], out[1][0], rtol=tol, atol=tol)
            np.testing.assert_allclose(out[0][1], out[1][1], rtol=tol, atol=tol)
            assert (np.any(out[0][1] != 0)) == (t + 2 < steps)  # past the run: nothing


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("t0, t1", [(3, 8), (0, 9), (6, 9)])
def test_weight_sums_at_the_segment_end_equal_step_by_step(parallel, t0, t1):
    """A full matrix's weight sums, left by deliver_back for dense_grads at the end of a
    segment (the ring keeps the segment's adjoints), equal the general path's."""
    rng = np.random.default_rng(3)
    batch, n_pre, n_post, pre0, post0, d, steps = 4, 300, 9, 1, 2, 2, 9
    indptr, indices = _table(rng, n_pre, n_post, dense=True)
    delays = np.full(len(indices), d, np.int64)
    lay = layout(indptr, indices, delays, n_post)
    fval = rng.normal(size=len(indices))
    z = (rng.random((steps, batch, pre0 + n_pre)) < 0.3).astype(float)
    adjoints = rng.normal(size=(steps + d, batch, 2, post0 + n_post + 1))
    size = (t1 - t0) + d  # what the driver allocates (BPTT._adjoint_ring)
    back, grads = (dense_back_threads, dense_grads_threads) if parallel else \
        (dense_back, dense_grads)
    out = []
    for which in (lay, GENERAL):
        ring = np.zeros((size,) + adjoints.shape[1:])
        for t in range(t1, t1 + d):  # written by the later segment's backward pass
            ring[t % size] = adjoints[t]
        dz, gf = np.zeros((batch, pre0 + n_pre)), np.zeros(len(indices))
        for t in range(t1 - 1, t0 - 1, -1):
            ring[t % size] = adjoints[t]
            deliver_back(z[t], pre0, indptr, indices, post0, delays, which, fval, ring, 1, t,
                         steps, dz, True, gf)
            back(z[t], pre0, indptr, post0, which, fval, ring, 1, t, steps, dz, True, gf,
                 t1 - t0)
        grads(z, pre0, n_pre, post0, which, ring, 1, t0, t1, steps, gf)
        out.append((dz, gf))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-12, atol=1e-12)
    assert np.any(out[0][1] != 0)


def test_layouts_of_tables():
    """Only a table of every pair in row order is dense; differing delays share none."""
    rng = np.random.default_rng(0)
    indptr, indices = _table(rng, 4, 3, dense=True)
    same = np.ones(12, np.int64)
    assert layout(indptr, indices, same, 3).tolist() == [1, 1]
    assert layout(indptr, indices, same, 4).tolist() == [1, 0]  # a column is missing
    swapped = indices.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert layout(indptr, swapped, same, 3).tolist() == [1, 0]
    varied = same.copy()
    varied[5] = 2
    assert layout(indptr, indices, varied, 3).tolist() == [-1, 1]
    empty = np.zeros(0, np.int64)
    assert layout(np.zeros(3, np.int64), empty, empty, 3).tolist() == [-1, 0]
