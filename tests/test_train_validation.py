"""Every mistake a user can make with the training code gets an snngen error before any
kernel runs (issue 18.1), and checkpoints are verified whole before loading and written
atomically (issue 18.3). Networks are tiny; the kernels compile once per session."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import snngen as sg
from snngen.connectivity import CSR, AllToAll, build_csr
from snngen.errors import CheckpointError, InvalidValueError, ShapeError, SnngenError
from snngen.train import RecurrentClassifier, Trainer, spike_raster
from snngen.train.trainer import spike_batch

LIF = sg.NeuronModel("dv/dt = (I - v) / taum : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", name="lif")
PARAMS = {"taum": 0.01, "taus": 0.005}


def _net(**kw):
    args = {"n_in": 6, "n_hidden": 5, "n_out": 3, "params": PARAMS, "seed": 1,
            "trainable_params": ("taum",)}
    args.update(kw)
    return RecurrentClassifier(LIF, "I", **args)


@pytest.fixture(scope="module")
def net():
    return _net()


def _x(channels=6, samples=4, steps=12, seed=0):
    return (np.random.default_rng(seed).random((steps, samples, channels)) < 0.3).astype(float)


@pytest.fixture
def no_kernels(net, monkeypatch):
    """Every compiled entry of the BPTT kernels raises: a check must refuse first."""
    def ran(*args, **kwargs):
        raise AssertionError("a kernel ran on data that should have been refused")
    for name in ("forward", "backward", "backward_blocks"):
        monkeypatch.setattr(net.bptt.module, name, ran)


# -- inputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [7, 5])
def test_inputs_with_other_channel_counts_are_refused_everywhere(net, no_kernels, channels):
    x, y = _x(channels), np.array([0, 1, 2, 0])
    calls = [lambda: net.predict(x), lambda: net.hidden_spikes(x),
             lambda: net.loss_and_grads(x, y), lambda: Trainer(net).fit(x, y, 1),
             lambda: net.calibrate_layers(x, 0.0, 0.5)]
    for call in calls:
        with pytest.raises(ShapeError, match=rf"{channels} channels.*reads 6 \(n_in=6"):
            call()


def test_more_channels_than_n_in_no_longer_corrupts_the_heap(tmp_path):
    """The issue's crash (21 channels for n_in=20: 'double free or corruption'), run in a
    child process: it now exits with a ShapeError, not a signal."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, snngen as sg
        from snngen.errors import ShapeError
        from snngen.train import RecurrentClassifier, Trainer
        lif = sg.NeuronModel("dv/dt = (I - v) / taum : 1\\ndI/dt = -I / taus : 1",
                             threshold="v > 1", reset="v = 0", name="lif")
        net = RecurrentClassifier(lif, "I", 6, 5, 3, params={"taum": 0.01, "taus": 0.005})
        x = (np.random.default_rng(0).random((12, 4, 7)) < 0.3).astype(float)
        try:
            Trainer(net, batch_size=2).fit(x, np.array([0, 1, 2, 0]), 1)
        except ShapeError:
            raise SystemExit(3)
    """))
    env = dict(os.environ, PYTHONPATH=str(Path(sg.__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env)  # the snngen under test, not another one
    assert done.returncode == 3, done.stderr[-2000:]


def test_nan_and_inf_inputs_are_refused_naming_the_first(net, no_kernels):
    x = _x()
    x[3, 2, 4] = np.nan
    with pytest.raises(InvalidValueError, match=r"nan at index \(3, 2, 4\)"):
        net.predict(x)
    x[3, 2, 4] = 0
    x[1, 0, 0] = -np.inf
    with pytest.raises(InvalidValueError, match=r"index \(1, 0, 0\)"):
        Trainer(net).fit(x, np.array([0, 1, 2, 0]), 1)


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((12, 6)), ShapeError, "3 axes"),
    (np.zeros((0, 4, 6)), ShapeError, "at least one step"),
    (np.zeros((12, 4, 6), complex), ShapeError, "dtype complex"),
    ([[[0.0] * 6]], ShapeError, "must be an array"),
])
def test_malformed_inputs_are_refused(net, no_kernels, bad, error, match):
    with pytest.raises(error, match=match):
        net.predict(bad)


def test_bool_int_and_float_spikes_give_the_same_predictions(net):
    x = _x()
    expected = net.predict(x)
    for kind in (bool, np.int32, np.float32):
        np.testing.assert_array_equal(net.predict(x.astype(kind)), expected)


# -- labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, error, match", [
    (np.array([0, 1, 2]), ShapeError, "4 samples"),
    (np.array([0, 1, 2, 0, 1]), ShapeError, "4 samples"),
    (np.array([0, 1, 3, 0]), InvalidValueError, "label 3 of sample 2"),
    (np.array([0, -1, 2, 0]), InvalidValueError, "label -1 of sample 1"),
    (np.array([0.0, 1.0, 2.0, 0.0]), ShapeError, "integers"),
])
def test_bad_labels_are_refused_before_training(net, no_kernels, labels, error, match):
    trainer = Trainer(net)
    before = {k: v.copy() for k, v in net.weights.items()}
    for call in (lambda: trainer.fit(_x(), labels, 1),
                 lambda: net.loss_and_grads(_x(), labels)):
        with pytest.raises(error, match=match):
            call()
    assert trainer.epoch == 0 and not trainer.history
    for k, v in before.items():
        np.testing.assert_array_equal(net.weights[k], v)


def test_cross_entropy_checks_its_labels():
    from snngen.train import cross_entropy
    with pytest.raises(ShapeError, match="integers"):
        cross_entropy(np.zeros((3, 2, 4)), np.array([0.5, 1.0]))
    with pytest.raises(InvalidValueError, match="label 4"):
        cross_entropy(np.zeros((3, 2, 4)), np.array([0, 4]))


# -- constructor and trainer arguments ----------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    ({"n_out": 0}, "n_out must be an integer >= 1"),
    ({"n_in": -2}, "n_in must be an integer >= 1"),
    ({"n_in": 2.5}, "n_in must be an integer"),
    ({"n_hidden": (5, 0)}, "n_hidden must be an integer >= 1"),
    ({"n_hidden": ()}, "n_hidden must be a positive int"),
    ({"recurrent_density": 1.5}, "need 0 <= recurrent_density <= 1"),
    ({"recurrent_density": np.nan}, "recurrent_density"),
    ({"dt": 0}, "need dt > 0"),
    ({"readout_tau": -1.0}, "readout_tau"),
    ({"over": "median"}, "over must be 'max', 'mean' or 'last'"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"input_gain": np.inf}, "input_gain"),
    ({"cutoff": -0.1}, "cutoff"),
    ({"recurrent_delay": 0}, "recurrent_delay"),
    ({"checkpoint_every": 0}, "checkpoint_every"),
    ({"params": {"taum": 0.01, "taus": 0.005, "tau_s": 0.005}},
     r"'tau_s' is not a parameter.*Did you mean.*'taus'"),
    ({"params": {"taum": 0.01, "taus": np.nan}}, "parameter 'taus'"),
    ({"params": {"taum": [0.01, 0.02], "taus": 0.005}}, "parameter 'taum' must be a number"),
    ({"trainable_params": "taum"}, r"list or tuple of names, e.g. \('taum',\)"),
    ({"trainable_params": ("tau",)}, "trainable parameter 'tau' is not a parameter"),
    ({"fluctuation_init": {"rate": 10.0, "mu": 0.0}}, "fluctuation_init needs exactly"),
    ({"params": {"taum": 0.0, "taus": 0.005}}, "'taum' is 0.*divides"),
    ({"surrogate": 3}, "surrogate must be the name"),
    ({"params": {"taum": 0.01, "taus": -0.005}, "trainable_params": ()}, "'taus'"),
])
def test_bad_classifier_arguments_are_refused_before_compiling(kw, match, monkeypatch):
    import snngen.train.trainer as trainer_module

    def no_compile(*args, **kwargs):
        raise AssertionError("kernels were compiled for a network that is refused")
    monkeypatch.setattr(trainer_module, "CompiledBPTT", no_compile)
    with pytest.raises(SnngenError, match=match):
        _net(**kw)


def test_the_model_must_be_a_neuron_model():
    with pytest.raises(InvalidValueError, match="model must be a NeuronModel"):
        RecurrentClassifier("dv/dt = -v / tau : 1", "v", 6, 5, 3, params=PARAMS)


@pytest.mark.parametrize("kw, match", [
    ({"lr": 0}, "need lr > 0"), ({"lr": np.inf}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"clip": -1.0}, "clip"), ({"seed": -3}, "seed"),
])
def test_bad_trainer_arguments_are_refused(net, kw, match):
    with pytest.raises(InvalidValueError, match=match):
        Trainer(net, **kw)


def test_epochs_must_be_a_count(net, no_kernels):
    with pytest.raises(InvalidValueError, match="epochs"):
        Trainer(net).fit(_x(), np.array([0, 1, 2, 0]), -1)


@pytest.mark.parametrize("kw, match", [
    ({"lr": np.nan}, "lr"), ({"betas": (0.9, 1.0)}, r"betas\[1\]"), ({"betas": 0.9}, "pair"),
    ({"eps": 0}, "eps"), ({"weight_decay": -1}, "weight_decay"),
])
def test_adam_arguments(kw, match):
    from snngen.train import Adam
    with pytest.raises(InvalidValueError, match=match):
        Adam(**kw)


# -- spike_batch, spike_raster ----------------------------------------------------------------

def test_spike_batch_refuses_sample_numbers_past_the_data():
    x = _x()
    with pytest.raises(InvalidValueError, match=r"idx\[1\] = 4 is not a sample"):
        spike_batch(x, np.array([0, 4]))
    with pytest.raises(InvalidValueError, match="idx"):
        spike_batch(x, np.array([-1]))
    with pytest.raises(InvalidValueError, match="nan"):
        spike_batch(np.full((2, 2, 2), np.nan), np.array([0]))
    np.testing.assert_array_equal(spike_batch(x, np.array([2, 0])), x[:, [2, 0]] != 0)


def test_spike_raster_refuses_negative_and_missing_times():
    with pytest.raises(InvalidValueError, match=">= 0"):
        spike_raster(np.array([[0.001, -0.001]]), 1e-3, 5)  # used to wrap to the last step
    with pytest.raises(InvalidValueError, match="latency_raster"):
        spike_raster(np.array([[0.001, np.nan]]), 1e-3, 5)
    with pytest.raises(InvalidValueError, match="steps"):
        spike_raster(np.array([[0.001]]), 1e-3, 0)
    with pytest.raises(sg.errors.NetworkTooLargeError, match="memory available"):
        spike_raster(np.array([[0.001]]), 1e-3, 1e308)  # was an OverflowError


# -- the compiled BPTT directly ----------------------------------------------------------------

def _run_args(net, x):
    s0 = np.zeros((x.shape[1], 5, 2))
    return [net._layer_params(0), s0, x, net.in_csr, net.weights["w_in"], net.rec_csr,
            net.weights["w_rec"], net.dt]


def test_compiled_bptt_checks_what_its_kernels_index(net, no_kernels):
    x = _x()

    def call(change, fn="simulate"):
        args = _run_args(net, x)
        change(args)
        if fn == "simulate":
            return net.bptt.simulate(*args)
        return net.bptt.run(*args, lambda s, z: (0.0, None, np.zeros(z.shape)))
    cases = [
        (lambda a: a.__setitem__(2, _x(7)), ShapeError, "w_in_csr has 6 rows"),
        (lambda a: a.__setitem__(1, np.zeros((4, 6, 2))), ShapeError, "s0"),
        (lambda a: a.__setitem__(1, np.zeros((3, 5, 2))), ShapeError, "s0"),
        (lambda a: a.__setitem__(4, a[4][:-1]), ShapeError, "w_in"),
        (lambda a: a.__setitem__(6, np.zeros(3)), ShapeError, "w_rec"),
        (lambda a: a.__setitem__(3, build_csr(AllToAll(), 6, 4, 0)), ShapeError,
         "connects 6 -> 4 neurons, expected 6 -> 5"),
        (lambda a: a.__setitem__(5, CSR(5, 5, np.array([0, 1, 1, 1, 1, 1]), np.array([9]))),
         ShapeError, "post neurons must lie in 0 .. 4"),
        (lambda a: a.__setitem__(5, CSR(5, 5, np.array([0, 2, 1, 1, 1, 1]), np.array([1]))),
         ShapeError, "row pointers"),
        (lambda a: a.__setitem__(0, {"taum": 0.01}), sg.SnngenError, "taus"),
        (lambda a: a.__setitem__(0, {"taum": np.full(4, 0.01), "taus": 0.005}), SnngenError,
         "one per neuron"),
        (lambda a: a.__setitem__(7, 0.0), InvalidValueError, "dt"),
        (lambda a: a.__setitem__(0, {"taum": np.full(5, 0.01), "taus": 0.0}),
         InvalidValueError, "'taus' is 0"),
    ]
    for change, error, match in cases:
        for fn in ("simulate", "run"):
            with pytest.raises(error, match=match):
                call(change, fn)


def test_a_loss_returning_a_wrong_shape_is_refused_before_the_backward_pass(net, monkeypatch):
    x = _x()

    def ran(*args, **kwargs):
        raise AssertionError("the backward kernel ran")
    for name in ("backward", "backward_blocks"):
        monkeypatch.setattr(net.bptt.module, name, ran)
    with pytest.raises(ShapeError, match=r"dL/dz \(steps, samples, neurons\)"):
        net.bptt.run(*_run_args(net, x), lambda s, z: (0.0, None, np.zeros((12, 4, 6))),
                     states_needed=False)
    with pytest.raises(ShapeError, match="dL/dz left factor"):
        net.bptt.run(*_run_args(net, x),
                     lambda s, z: (0.0, None, (np.zeros((12, 3, 2)), np.zeros((5, 2)))),
                     states_needed=False)
    with pytest.raises(ShapeError, match="dL/ds"):
        net.bptt.run(*_run_args(net, x),
                     lambda s, z: (0.0, np.zeros((12, 4, 5, 1)), np.zeros(z.shape)))


def test_memory_bytes_checks_its_sizes(net):
    with pytest.raises(InvalidValueError, match="batch"):
        net.bptt.memory_bytes(10, 0, 5)
    with pytest.raises(InvalidValueError, match="checkpoint_every"):
        net.bptt.memory_bytes(10, 2, 5, checkpoint_every=0)
    assert net.bptt.memory_bytes(10, 2, 5) > 0


# -- checkpoints ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    """A checkpoint of ``net`` after one epoch, and the trainer that wrote it."""
    trainer = Trainer(net, batch_size=2, seed=5)
    trainer.fit(_x(), np.array([0, 1, 2, 0]), 1)
    path = tmp_path_factory.mktemp("ckpt") / "net.npz"
    trainer.save(path)
    return path, trainer


def _state(trainer):
    net = trainer.net
    return ({k: v.copy() for k, v in net.weights.items()},
            {k: v.copy() for k, v in net.params.items()},
            {k: (c.indptr.copy(), c.indices.copy()) for k, c in net.csrs.items()},
            trainer.epoch, trainer.opt.t, repr(trainer.rng.bit_generator.state),
            {k: v.copy() for k, v in trainer.opt.m.items()})


def _assert_unchanged(trainer, before):
    after = _state(trainer)
    for a, b in zip(before, after):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                for x, y in zip(np.atleast_1d(a[k]) if not isinstance(a[k], tuple) else a[k],
                                np.atleast_1d(b[k]) if not isinstance(b[k], tuple) else b[k]):
                    np.testing.assert_array_equal(x, y)
        else:
            assert a == b


def _fresh(**kw):
    """A trainer whose state differs from the saved one everywhere (another seed)."""
    return Trainer(_net(seed=7, **kw), batch_size=2, seed=9)


def test_a_checkpoint_loads_into_an_equal_network(saved):
    path, writer = saved
    reader = _fresh()
    reader.load(path)
    for k, v in writer.net.weights.items():
        np.testing.assert_array_equal(reader.net.weights[k], v)
    assert reader.epoch == 1 and reader.opt.t == writer.opt.t


@pytest.mark.parametrize("kw, match", [
    ({"n_hidden": 6}, r"hidden sizes \(n_hidden\) \[5\] differ from this network's \[6\]"),
    ({"n_out": 4}, r"outputs \(n_out\) 3 differ from this network's 4"),
    ({"n_hidden": (5, 4)}, "hidden layers 1 differ from this network's 2"),
    ({"n_in": 7}, r"inputs \(n_in\) 6"),
    ({"trainable_params": ()}, "trained parameters"),
])
def test_a_checkpoint_of_another_shape_is_refused_and_nothing_changes(saved, kw, match):
    reader = _fresh(**kw)
    before = _state(reader)
    with pytest.raises(CheckpointError, match=match):
        reader.load(saved[0])
    _assert_unchanged(reader, before)


def test_a_checkpoint_of_another_model_is_refused(saved, monkeypatch):
    reader = _fresh()
    monkeypatch.setattr(type(LIF), "key", lambda self: "0123456789abcdef")
    with pytest.raises(CheckpointError, match="neuron model 'lif'.*same model"):
        reader.load(saved[0])


def _rewrite(path, out, change):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **arrays)
    return out


@pytest.mark.parametrize("change, match", [
    # an archive without its description (format 1, before this fix) whose readout has 6
    # outputs: used to load into a 3-class network and predict classes 3..5
    (lambda a: (a.pop("meta"), a.__setitem__("weight/w_out", np.zeros((5, 6), np.float32))),
     r"'weight/w_out' has shape \(5, 6\) there, this network's has \(5, 3\)"),
    (lambda a: (a.pop("meta"), a.__setitem__("param/taum", np.zeros(7))),
     r"'param/taum' has shape \(7,\)"),
    (lambda a: (a.pop("meta"), a.pop("adam_t")), "'adam_t' is missing"),
    (lambda a: (a.pop("meta"), a.__setitem__("in_csr/indices", a["in_csr/indices"] + 9)),
     "post neurons must lie in 0 .. 4"),
    (lambda a: (a.pop("meta"), a.__setitem__("weight/w_rec", a["weight/w_rec"] * np.nan)),
     "NaN"),
    (lambda a: (a.pop("meta"), a.__setitem__("rng", np.frombuffer(b"{'x': 1}", np.uint8))),
     "random generator"),
    (lambda a: a.pop("weight/w_in"), "'weight/w_in' is missing"),
    (lambda a: a.__setitem__("meta", np.frombuffer(b"{not json", np.uint8)), "meta"),
])
def test_damaged_or_mismatching_arrays_are_refused(saved, tmp_path, change, match):
    path = _rewrite(saved[0], tmp_path / "changed.npz", change)
    reader = _fresh()
    before = _state(reader)
    with pytest.raises(CheckpointError, match=match):
        reader.load(path)
    _assert_unchanged(reader, before)


def test_an_archive_without_description_still_loads(saved, tmp_path):
    path = _rewrite(saved[0], tmp_path / "old.npz", lambda a: a.pop("meta"))
    reader = _fresh()
    reader.load(path)
    np.testing.assert_array_equal(reader.net.weights["w_out"], saved[1].net.weights["w_out"])


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_a_truncated_or_foreign_file_is_a_checkpoint_error(saved, tmp_path, cut):
    data = Path(saved[0]).read_bytes()
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(data[:int(len(data) * cut)])
    reader = _fresh()
    before = _state(reader)
    with pytest.raises(CheckpointError, match="cannot be read"):
        reader.load(truncated)
    _assert_unchanged(reader, before)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        reader.load(text)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        reader.load(tmp_path / "missing.npz")
    for path in (None, 3, ""):
        with pytest.raises(InvalidValueError, match="must be a file name"):
            reader.load(path)
        with pytest.raises(InvalidValueError, match="must be a file name"):
            reader.save(path)


def test_save_is_atomic(saved, tmp_path, monkeypatch):
    """A save that fails midway leaves the previous checkpoint intact and no temporary
    file; the archive appears under its final name only once it is complete."""
    path, trainer = saved
    target = tmp_path / "ckpt.npz"
    trainer.save(target)
    good = target.read_bytes()

    def crash(fh, **arrays):
        fh.write(b"PK half an archive")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(CheckpointError, match="No space left.*unchanged"):
        trainer.save(target)
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]
    with pytest.raises(CheckpointError, match="does not exist"):
        trainer.save(tmp_path / "no" / "such" / "folder.npz")


# -- online learning -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def online():
    """An e-prop learner of 5 LIF neurons, 6 inputs, 2 readouts (float64)."""
    from snngen.derive import derive
    from snngen.integrate import discretise
    from snngen.train.online import CompiledEprop, OnlineLearner
    lm = derive(discretise(LIF), inputs=["I"])
    in_csr, rec_csr = build_csr(AllToAll(), 6, 5, 0), build_csr(AllToAll(), 5, 5, 1)
    rng = np.random.default_rng(0)
    weights = {"w_in": rng.normal(0, 1, 30), "w_rec": rng.normal(0, 0.3, 25),
               "w_out": rng.normal(0, 0.5, (5, 2))}
    return OnlineLearner(CompiledEprop(lm, "float64"), PARAMS, 1e-3, in_csr, rec_csr,
                         weights, 0.9)


@pytest.fixture
def no_online_kernels(online, monkeypatch):
    def ran(*args, **kwargs):
        raise AssertionError("an online kernel ran on data that should have been refused")
    for name in ("run", "run_factorised"):
        monkeypatch.setattr(online.kernel.module, name, ran)


@pytest.mark.parametrize("x_shape, t_shape, mask, error, match", [
    ((8, 2, 7), (8, 2, 2), None, ShapeError, r"7 channels.*in_csr has 6 rows"),
    ((8, 2, 5), (8, 2, 2), None, ShapeError, "5 channels"),
    ((8, 2, 6), (8, 2, 3), None, ShapeError, r"targets .* must have shape \(8, 2, 2\)"),
    ((8, 2, 6), (7, 2, 2), None, ShapeError, "targets"),
    ((8, 2, 6), (8, 2, 2), np.ones(3), ShapeError, r"mask .* must broadcast to \(8, 2\)"),
])
def test_online_feed_checks_its_data_before_any_step(online, no_online_kernels, x_shape,
                                                     t_shape, mask, error, match):
    w_before = {k: v.copy() for k, v in online.weights.items()}
    with pytest.raises(error, match=match):
        online.feed(np.zeros(x_shape), np.zeros(t_shape), mask=mask)
    for k, v in w_before.items():
        np.testing.assert_array_equal(online.weights[k], v)


def test_online_feed_refuses_a_learn_flag_that_is_not_a_bool(online, no_online_kernels):
    with pytest.raises(InvalidValueError, match="learn must be True or False"):
        online.feed(np.zeros((8, 2, 6)), np.zeros((8, 2, 2)), learn=np.nan)


def test_online_feed_refuses_nan(online, no_online_kernels):
    x = np.zeros((8, 2, 6))
    x[5, 1, 2] = np.nan
    with pytest.raises(InvalidValueError, match=r"index \(5, 1, 2\)"):
        online.feed(x, np.zeros((8, 2, 2)))
    with pytest.raises(InvalidValueError, match="targets"):
        online.feed(np.zeros((8, 2, 6)), np.full((8, 2, 2), np.inf))


def test_online_step_refuses_a_state_of_other_tables_or_trials(online, no_online_kernels):
    kernel, w = online.kernel, online.weights
    st = kernel.state(PARAMS, 1e-3, 2, 5, online.in_csr, online.rec_csr, 2)
    other = build_csr(sg.connectivity.FixedProbability(0.5), 6, 5, 3)
    with pytest.raises(ShapeError, match="not the table this online state was made for"):
        kernel.step(st, np.zeros((4, 2, 6)), np.zeros((4, 2, 2)), other,
                    np.zeros(other.n_synapses), online.rec_csr, w["w_rec"], w["w_out"], 0.9)
    with pytest.raises(ShapeError, match="3 trials"):
        kernel.step(st, np.zeros((4, 3, 6)), np.zeros((4, 3, 2)), online.in_csr, w["w_in"],
                    online.rec_csr, w["w_rec"], w["w_out"], 0.9)
    with pytest.raises(ShapeError, match="w_out"):
        kernel.step(st, np.zeros((4, 2, 6)), np.zeros((4, 2, 2)), online.in_csr, w["w_in"],
                    online.rec_csr, w["w_rec"], np.zeros((4, 2)), 0.9)
    with pytest.raises(InvalidValueError, match="kappa"):
        kernel.step(st, np.zeros((4, 2, 6)), np.zeros((4, 2, 2)), online.in_csr, w["w_in"],
                    online.rec_csr, w["w_rec"], w["w_out"], np.nan)


def test_online_learner_arguments(online):
    from snngen.train.online import OnlineLearner
    args = (online.kernel, PARAMS, 1e-3, online.in_csr, online.rec_csr)
    bad_w = dict(online.weights, w_in=np.zeros(29))
    with pytest.raises(ShapeError, match="w_in"):
        OnlineLearner(*args, bad_w, 0.9)
    with pytest.raises(InvalidValueError, match="kappa"):
        OnlineLearner(*args, online.weights, 1.5)
    with pytest.raises(InvalidValueError, match="update_every"):
        OnlineLearner(*args, online.weights, 0.9, update_every=0)
    with pytest.raises(SnngenError, match="taus"):
        online.kernel.state({"taum": 0.01}, 1e-3, 2, 5, online.in_csr, online.rec_csr, 2)


# -- the CUDA kernels (host emulation) ------------------------------------------------------

def test_cuda_bptt_checks_inputs_and_reads_counts_as_one_spike(net):
    from snngen.backends.cuda import compiler
    if not compiler.shutil.which("g++"):
        pytest.skip("needs g++")
    from snngen.train.cuda_bptt import CudaBPTT
    cuda = CudaBPTT(net.lm, "float64", device="host")
    args = _run_args(net, _x(7))
    with pytest.raises(ShapeError, match="w_in_csr has 6 rows"):
        cuda.simulate(*args)
    args = _run_args(net, _x(steps=40))
    args[1] += 0.25
    s0 = args[1].copy()
    args[4] = np.full(net.in_csr.n_synapses, 0.5)  # fires, and would fire more at twice
    counts = args[2] * 2  # an events_raster bin with two events: one spike, as on Numba
    z1, _ = cuda.simulate(*args)
    np.testing.assert_array_equal(args[1], s0)  # the kernels wrote the caller's s0
    args[2] = counts
    z2, _ = cuda.simulate(*args)
    assert np.asarray(z1).any()
    np.testing.assert_array_equal(z1, z2)


# -- data sets and initialisation --------------------------------------------------------------

def test_dataset_arguments():
    from snngen.datasets import events_raster, latency_raster, randman
    with pytest.raises(InvalidValueError, match="alpha"):
        randman(2, 3, 2, alpha=np.nan)
    with pytest.raises(InvalidValueError, match="seed"):
        randman(2, 3, 2, seed=-1)
    with pytest.raises(InvalidValueError, match=">= 0"):
        latency_raster(np.array([[-0.002, np.nan]]), 1e-3, 5)
    np.testing.assert_array_equal(latency_raster(np.array([[0.002, np.nan]]), 1e-3, 5)[:, 0],
                                  [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]])
    times, units = [np.array([0.001, np.nan])], [np.array([0, 1])]
    with pytest.raises(InvalidValueError, match="non-finite"):
        events_raster(times, units, 2, 1e-3, 5)
    with pytest.raises(ShapeError, match="one unit per spike time"):
        events_raster([np.array([0.001])], [np.array([0, 1])], 2, 1e-3, 5)
    with pytest.raises(InvalidValueError, match="channel 3"):
        events_raster([np.array([0.001])], [np.array([3])], 2, 1e-3, 5)


def test_a_damaged_shd_file_is_explained(tmp_path):
    h5py = pytest.importorskip("h5py")
    from snngen.datasets import load_shd
    good = tmp_path / "shd.h5"
    with h5py.File(good, "w") as fh:
        fh.create_dataset("labels", data=np.zeros(2000, np.int64))
        fh.create_dataset("spikes/times", data=np.zeros((2000, 3)))
        fh.create_dataset("spikes/units", data=np.zeros((2000, 3), np.int64))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(InvalidValueError, match="cannot be read as an SHD file"):
        load_shd(cut)


def test_fluctuation_driven_arguments(net):
    from snngen.train import fluctuation_driven
    with pytest.raises(InvalidValueError, match="rate"):
        fluctuation_driven(net.lm, PARAMS, 1e-3, 10, np.nan, 0.0, 0.5)
    with pytest.raises(InvalidValueError, match="n_inputs"):
        fluctuation_driven(net.lm, PARAMS, 1e-3, 0, 5.0, 0.0, 0.5)


def test_a_run_leaves_the_callers_initial_state_alone():
    """With one state variable the (B, n, 1) -> (B, 1, n) view of s0 is contiguous and was
    handed to the kernels as it was: they wrote the final state into the caller's s0."""
    from snngen.derive import derive
    from snngen.integrate import discretise
    from snngen.train.bptt import CompiledBPTT
    one = sg.NeuronModel("dv/dt = -v / taum : 1", threshold="v > 1", reset="v = 0",
                         name="one_state")
    bptt = CompiledBPTT(derive(discretise(one), inputs=["v"]), "float64")
    in_csr, rec_csr = build_csr(AllToAll(), 6, 5, 0), build_csr(AllToAll(), 5, 5, 1)
    s0 = np.full((4, 5, 1), 0.5)
    args = ({"taum": 0.01}, s0, _x(), in_csr, np.full(30, 0.4), rec_csr, np.zeros(25), 1e-3)
    z, final = bptt.simulate(*args)
    assert not np.array_equal(final, s0)
    np.testing.assert_array_equal(s0, 0.5)
    bptt.run(*args, lambda s, z: (0.0, None, np.zeros(z.shape)), states_needed=False)
    np.testing.assert_array_equal(s0, 0.5)
