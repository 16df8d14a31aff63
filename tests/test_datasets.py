"""Data sets: the SHD-format loader (on a small file written here) and latency-coded digits."""

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


def test_latency_digits_and_a_short_training_run():
    pytest.importorskip("sklearn", reason="the digits ship with scikit-learn")
    from snngen.datasets import latency_digits, latency_raster
    from snngen.train import RecurrentClassifier, Trainer
    times, labels = latency_digits(duration=0.05)
    assert times.shape == (1797, 64) and set(labels.tolist()) == set(range(10))
    from sklearn.datasets import load_digits
    pixels = load_digits().data[0] / 16
    np.testing.assert_allclose(times[0][pixels > 0], 0.05 * (1 - pixels[pixels > 0]))
    assert np.all(np.isnan(times[0][pixels == 0]))  # dark pixels stay silent
    x = latency_raster(times[:600], 1e-3, 60)
    assert x.sum() == np.sum(~np.isnan(times[:600]))
    lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0", name="lif")
    net = RecurrentClassifier(lif, "I", 64, 48, 10, params={"taum": 0.01, "taus": 0.005},
                              seed=0, recurrent_density=0.2, input_gain=8.0)
    Trainer(net, lr=1e-2, batch_size=40).fit(x[:, :500], labels[:500], 5)
    assert np.mean(net.predict(x[:, 500:]) == labels[500:600]) > 0.5  # chance is 0.1
