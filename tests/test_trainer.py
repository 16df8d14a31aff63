"""The first trainer: it learns, and checkpoints resume exactly."""

import numpy as np
import pytest

import snngen as sg
from snngen.datasets import randman
from snngen.train import RecurrentClassifier, Trainer, spike_raster

LIF = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="lif")


def _data(classes=5, per_class=40):
    times, _, labels = randman(classes=classes, channels=40, samples_per_class=per_class,
                               duration=0.08, seed=2)
    return spike_raster(times, 1e-3, 100), labels


def _net(seed=0, trainable=(), hidden=32):
    # input_gain 6 makes the first layer fire often enough that the layer above needs no
    # more gain than its input (the default hidden_gain suits sparse hidden activity)
    return RecurrentClassifier(LIF, "I", 40, hidden, 5, params={"taum": 0.01, "taus": 0.005},
                               seed=seed, recurrent_density=0.5, trainable_params=trainable,
                               input_gain=6.0, hidden_gain=6.0)


@pytest.mark.parametrize("hidden", [32, (32, 24)], ids=["one_layer", "two_layers"])
def test_training_reduces_loss_and_learns_randman(hidden):
    x, labels = _data()
    net = _net(hidden=hidden)
    trainer = Trainer(net, lr=1e-2, batch_size=20)
    history = trainer.fit(x[:, :160], labels[:160], 6)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    accuracy = np.mean(net.predict(x[:, 160:]) == labels[160:])
    assert accuracy > 0.5  # chance is 0.2; examples/train_randman.py reaches 1.0


@pytest.mark.parametrize("hidden", [32, (32, 24)], ids=["one_layer", "two_layers"])
def test_checkpoint_resumes_exactly(tmp_path, hidden):
    x, labels = _data(per_class=20)
    a = Trainer(_net(trainable=("taum",), hidden=hidden), lr=1e-4, batch_size=25, seed=3)
    a.fit(x, labels, 1)
    a.save(tmp_path / "ckpt.npz")
    a.fit(x, labels, 1)
    b = Trainer(_net(seed=9, trainable=("taum",), hidden=hidden), lr=1e-4, batch_size=25,
                seed=7)
    b.load(tmp_path / "ckpt.npz")
    assert b.epoch == 1
    for name, csr in a.net.csrs.items():  # the synapses of every layer come back too
        np.testing.assert_array_equal(b.net.csrs[name].indices, csr.indices, err_msg=name)
    b.fit(x, labels, 1)
    for k in a.net.weights:
        np.testing.assert_array_equal(a.net.weights[k], b.net.weights[k])
    for k in a.net.trainable:
        np.testing.assert_array_equal(a.net.params[k], b.net.params[k])
        assert not np.all(a.net.params[k] == 0.01)  # the time constants were trained
    assert [h["loss"] for h in a.history[1:]] == [h["loss"] for h in b.history]


def test_missing_model_parameter_is_named():
    with pytest.raises(sg.SnngenError, match="taus"):
        RecurrentClassifier(LIF, "I", 4, 8, 2, params={"taum": 0.01})


@pytest.mark.parametrize("script, args, keys", [
    ("train_randman.py", ["--epochs", "1", "--samples-per-class", "20", "--hidden", "32"],
     {"test_accuracy", "epochs", "train_s", "peak_rss_mib"}),
    ("train_network.py", ["--epochs", "1", "--samples-per-class", "4"],
     {"test_accuracy", "epochs", "train_s", "peak_rss_mib"}),
    ("online_network.py", ["--epochs", "1", "--samples-per-class", "4", "--rule", "rflo"],
     {"rule", "test_accuracy", "epochs", "train_s", "peak_rss_mib"}),
    ("conv_digits.py", ["--epochs", "1", "--samples", "80"],
     {"test_accuracy", "test_samples", "peak_rss_mib"}),
    ("heterogeneous_taus.py", ["--epochs", "1"],
     {"fixed_accuracy", "trained_accuracy", "tau_ms_p10_p50_p90"}),
    ("pattern_generation.py", ["--iterations", "2", "--steps", "40", "--neurons", "10"],
     {"eprop_nmse", "rflo_nmse", "train_s", "peak_rss_mib"}),
    ("cue_accumulation.py", ["--iterations", "2", "--batch", "4", "--neurons", "10",
                             "--test-trials", "8", "--loss", "cross_entropy"],
     {"test_accuracy", "train_s", "peak_rss_mib", "last_loss"}),
])
def test_training_examples_run(script, args, keys):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "examples" / script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(args)
    assert keys <= set(summary)


def test_checkpointed_training_equals_full_tape():
    """checkpoint_every: same loss and gradients, dense or sparse (the event path is used)."""
    rng = np.random.default_rng(4)
    x = (rng.random((50, 4, 6)) < 0.2).astype(float)
    y = rng.integers(0, 2, 4)
    out = []
    for every in (None, 9):
        net = RecurrentClassifier(LIF, "I", 6, 10, 2, params={"taum": 0.01, "taus": 0.005},
                                  recurrent_density=0.5, seed=2, dtype="float64",
                                  checkpoint_every=every)
        out.append(net.loss_and_grads(x, y))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-12)
    for key in out[0][1]:
        np.testing.assert_allclose(out[1][1][key], out[0][1][key], rtol=1e-10, atol=1e-13)


def test_classifier_gradients_equal_a_numpy_readout():
    """The classifier's event-driven readout (boolean spikes, no float copy) gives the loss,
    readout gradient and hidden gradients that a plain NumPy readout over float spikes
    gives (float64)."""
    from snngen.train.losses import cross_entropy
    x, y = _data(classes=3, per_class=3)
    net = RecurrentClassifier(LIF, "I", 40, 16, 3, params={"taum": 0.01, "taus": 0.005},
                              seed=1, recurrent_density=0.5, input_gain=6.0, dtype="float64")
    loss, grads, _ = net.loss_and_grads(x, y)
    seen = {}

    def numpy_loss(states, spikes):  # float spikes: the matrix-product path
        assert spikes.dtype == np.float64
        drive = spikes @ net.weights["w_out"]
        yy = np.zeros_like(drive)
        acc = 0.0
        for t in range(len(drive)):
            acc = net.alpha * acc + drive[t]
            yy[t] = acc
        value, dy = cross_entropy(yy, y, net.over)
        d = np.zeros_like(dy)
        acc = 0.0
        for t in range(len(dy) - 1, -1, -1):
            acc = net.alpha * acc + dy[t]
            d[t] = acc
        seen["w_out"] = np.einsum("tbi,tbo->io", spikes, d)
        assert spikes.sum() > 0
        return value, None, d @ net.weights["w_out"].T
    s0 = np.zeros((x.shape[1], 16, 2))
    ref_loss, ref = net.bptt.run(net.params, s0, x, net.in_csr, net.weights["w_in"],
                                 net.rec_csr, net.weights["w_rec"], net.dt, numpy_loss,
                                 wanted=set(), states_needed=False)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grads["w_out"], seen["w_out"], rtol=1e-10, atol=1e-13)
    for key in ("w_in", "w_rec"):
        np.testing.assert_allclose(grads[key], ref[key], rtol=1e-10, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("hidden", [12, (12, 8)], ids=["one_layer", "two_layers"])
def test_a_training_step_leaves_no_reference_cycles(hidden):
    """Everything a step allocates is freed when it returns, not when the garbage
    collector next runs: a self-referring closure once kept each step's gradients (8 MB per
    T1 iteration at H = 1024) alive, and the training memory grew with every iteration."""
    import gc
    rng = np.random.default_rng(0)
    x = (rng.random((30, 4, 10)) < 0.2).astype(float)
    y = rng.integers(0, 2, 4)
    net = RecurrentClassifier(LIF, "I", 10, hidden, 2, params={"taum": 0.01, "taus": 0.005},
                              checkpoint_every=10)
    net.loss_and_grads(x, y)
    net.predict(x)
    gc.collect()
    gc.disable()
    try:
        net.loss_and_grads(x, y)
        net.predict(x)
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("hidden", [12, (12, 8)], ids=["one_layer", "two_layers"])
def test_predict_runs_forward_passes_only_and_agrees_with_training(hidden, monkeypatch):
    """predict and the layer rates run no backward pass (bptt.run is never called), and
    predict gives the classes whose accuracy the training step reports on the same batch."""
    rng = np.random.default_rng(2)
    x = (rng.random((40, 16, 10)) < 0.2).astype(float)
    y = rng.integers(0, 3, 16)
    net = RecurrentClassifier(LIF, "I", 10, hidden, 3, params={"taum": 0.01, "taus": 0.005},
                              seed=4)
    _, _, accuracy = net.loss_and_grads(x, y)
    spikes = net.hidden_spikes(x)
    assert [s.shape for s in spikes] == [(40, 16, n) for n in np.atleast_1d(hidden)]
    assert all(s.any() for s in spikes)

    def no_backward(*args, **kwargs):
        raise AssertionError("a forward-only path ran BPTT")
    monkeypatch.setattr(net.bptt, "run", no_backward)
    predicted = net.predict(x)
    assert np.mean(predicted == y) == accuracy
    assert len(set(predicted.tolist())) > 1  # not a constant answer
    rates = net._rates(x)
    assert rates == [float(s.mean()) / net.dt for s in spikes] and min(rates) > 0
