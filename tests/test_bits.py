"""Bit-packed spike rows (snngen.backends.numba.bits): what the compiled BPTT keeps of a run's
spikes, one bit per neuron and step."""

import numpy as np
import pytest
from numba import njit

from snngen.backends.numba import bits
from snngen.train.bptt import input_events


@njit(cache=True)
def _pack_all(z, out):
    """As the forward kernel does: each step's boolean row, padded, into its words."""
    scratch = np.zeros(64 * out.shape[2], np.bool_)
    for t in range(z.shape[0]):
        for b in range(z.shape[1]):
            scratch[:z.shape[2]] = z[t, b]
            bits.pack_row(scratch, out[t, b])


@pytest.mark.parametrize("n", [1, 7, 8, 63, 64, 65, 130, 1000])
@pytest.mark.parametrize("rate", [0.0, 0.02, 0.5, 1.0])
def test_pack_scan_unpack_and_events_round_trip(n, rate):
    rng = np.random.default_rng(n)
    z = rng.random((6, 3, n)) < rate
    packed = np.full((6, 3, bits.words(n)), 12345, np.uint64)  # overwritten, not or-ed into
    _pack_all(z, packed)
    # the layout numpy calls little-endian bit order, and nothing past the neurons
    ref = np.zeros((6, 3, 8 * bits.words(n)), np.uint8)
    ref[:, :, :(n + 7) // 8] = np.packbits(z, axis=2, bitorder="little")
    np.testing.assert_array_equal(packed, ref.view(np.uint64))
    for dtype in (np.bool_, np.float32, np.float64):
        out = np.full(z.shape, 3, dtype)
        bits.unpack(packed, n, out)
        np.testing.assert_array_equal(out, z.astype(dtype))
    idx, ptr = bits.bit_events(packed, n)
    ref_idx, ref_ptr = input_events(z)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(ptr, ref_ptr)
    found = np.empty(n, np.int64)
    for t, b in [(0, 0), (5, 2)]:
        count = bits.fired_bits(packed[t, b], found)
        assert found[:count].tolist() == np.flatnonzero(z[t, b]).tolist()


def test_words():
    assert [bits.words(n) for n in (1, 64, 65, 128, 129)] == [1, 1, 2, 2, 3]
