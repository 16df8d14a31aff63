"""The SHD-format loader, on a small file written here."""

import numpy as np
import pytest

import snngen as sg
from snngen.datasets import events_raster, load_shd

h5py = pytest.importorskip("h5py", reason="h5py reads SHD files")


def _write(path, samples):
    with h5py.File(path, "w") as fh:
        vf = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        times = fh.create_dataset("spikes/times", (len(samples),), dtype=vf)
        units = fh.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for k, (t, u, _) in enumerate(samples):
            times[k], units[k] = t, u
        fh.create_dataset("labels", data=np.array([s[2] for s in samples], np.uint16))


def test_load_and_raster(tmp_path):
    samples = [(np.array([0.001, 0.0105, 0.5], np.float32), np.array([3, 699, 3]), 7),
               (np.array([0.02], np.float32), np.array([10]), 2)]
    _write(tmp_path / "shd.h5", samples)
    times, units, labels = load_shd(tmp_path / "shd.h5")
    assert labels.tolist() == [7, 2] and units[0].tolist() == [3, 699, 3]
    raster = events_raster(times, units, 700, 1e-3, 100)
    assert raster.shape == (100, 2, 700)
    assert raster[1, 0, 3] == 1 and raster[10, 0, 699] == 1 and raster[20, 1, 10] == 1
    assert raster.sum() == 3  # the event at 0.5 s is beyond 100 steps
    assert len(load_shd(tmp_path / "shd.h5", max_samples=1)[2]) == 1


def test_bad_files_are_explained(tmp_path):
    with pytest.raises(sg.SnngenError, match="not found"):
        load_shd(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(sg.SnngenError, match="missing spikes/times"):
        load_shd(tmp_path / "other.h5")
