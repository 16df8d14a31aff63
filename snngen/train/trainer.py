"""Training a recurrent spiking classifier with compiled BPTT (the first trainer).

Network: input spikes -> one or several recurrent populations of any NeuronModel, each
feeding the next (sparse or dense input and recurrent weights, the model's own derived
backward pass) -> leaky-integrator readout of the last one (``y_t = alpha y_{t-1} + z_t
W_out``) -> cross-entropy over max, mean or last of the readout. Weights (and optionally the
model's parameters, per neuron) are trained with Adam.

>>> import snngen as sg
>>> from snngen.train import RecurrentClassifier
>>> lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\\ndI/dt = -I / taus : 1",
...                      threshold="v > 1", reset="v = 0")
>>> net = RecurrentClassifier(lif, "I", n_in=4, n_hidden=8, n_out=2,
...                           params={"tau": 0.02, "taus": 0.005}, seed=0)
>>> sorted(net.weights)
['w_in', 'w_out', 'w_rec']

Several hidden layers: ``n_hidden`` as a sequence. Layer ``l >= 1`` names its weights and
parameters with the suffix ``:l``; its input is the layer below's spikes, all to all:

>>> deep = RecurrentClassifier(lif, "I", n_in=4, n_hidden=(8, 6), n_out=2,
...                            params={"tau": 0.02, "taus": 0.005}, trainable_params=("tau",))
>>> sorted(deep.weights), deep.trainable
(['w_in', 'w_in:1', 'w_out', 'w_rec', 'w_rec:1'], ('tau', 'tau:1'))
"""

from __future__ import annotations

import time

import numpy as np

from .. import connectivity as conn
from ..derive import derive
from ..errors import InvalidValueError, SnngenError, did_you_mean
from ..integrate import discretise
from . import checkpoint
from .bptt import CompiledBPTT
from .checks import (
    as_count,
    as_names,
    as_real,
    check_labels,
    check_model_params,
    check_spikes,
    check_tables_fit,
)
from .losses import cross_entropy
from .optim import Adam, clip_scale, global_norm
from .readout import readout_drive, readout_grad
from .spikes import _gather, spike_batch, spike_raster  # noqa: F401 - spike_batch: API


def layer_key(name: str, layer: int) -> str:
    """The key of a weight or parameter of hidden layer ``layer``: the name itself for the
    first layer (so a one-layer classifier's keys are the plain names), ``name:layer`` above.

    >>> layer_key("w_in", 0), layer_key("tau", 2)
    ('w_in', 'tau:2')
    """
    return name if layer == 0 else f"{name}:{layer}"


def _check_params(lm, params, trainable, where: str) -> tuple:
    """The model's parameter values (one number each, every name the model uses and no
    other) and the names of the trained ones (positive: they are optimised in log space),
    returned as a tuple."""
    from ..runtime.validate import check_parameter_values
    check_model_params(lm, params, where, per_neuron=False)
    check_parameter_values(lm.discrete.model, params, where)
    trainable = as_names(trainable, "trainable_params", where, "('taum',)")
    for p in trainable:
        if p not in params:
            raise InvalidValueError(f"{where}: trainable parameter '{p}' is not a parameter "
                                    f"of the model ({sorted(params)})"
                                    + did_you_mean(p, params))
        if not float(params[p]) > 0:
            raise InvalidValueError(f"{where}: trainable parameter '{p}' must be positive "
                                    f"(got {params[p]}): parameters are optimised in log space")
    if len(set(trainable)) != len(trainable):
        raise InvalidValueError(f"{where}: trainable_params names a parameter twice: "
                                f"{trainable}")
    return trainable


class RecurrentClassifier:
    """Weights, parameters and the compiled BPTT of a recurrent spiking classifier (one or
    several recurrent hidden layers, see the module docstring)."""

    def __init__(self, model, input_target: str, n_in: int, n_hidden: int, n_out: int,
                 params: dict, dt: float = 1e-3, readout_tau: float = 0.02,
                 recurrent_density: float = 1.0, surrogate="fast_sigmoid",
                 trainable_params=(), seed: int = 0, input_gain: float = 3.0,
                 recurrent_gain: float = 0.5, over: str = "max",
                 input_fan_in: int | None = None, recurrent_fan_in: int | None = None,
                 dtype: str = "float32", cutoff: float = 0.0, backend: str = "numba",
                 checkpoint_every: int | None = None, recurrent_delay: int = 1,
                 fluctuation_init: dict | None = None, hidden_gain: float = 15.0):
        """``fluctuation_init={"rate": Hz, "mu": m, "sigma": s}`` draws the input weights so
        that a hidden neuron's first state variable, driven by inputs firing at ``rate``,
        sits at ``m`` +- ``s`` from rest (Rossbroich, Gygax & Zenke 2022; computed from the
        model's own PSP kernel by :func:`snngen.train.init.fluctuation_driven`), instead of
        ``Normal(0, input_gain / sqrt(fan-in))``.

        ``n_hidden``: an int, or a sequence of ints for several recurrent layers, each the
        input of the next (all to all between layers, with ``Normal(0, hidden_gain /
        sqrt(width below))`` weights: hidden layers fire far less than typical inputs, so
        the gain is larger than ``input_gain``; on 10-class Randman with layers of 128 and
        64 LIF neurons, gains 3, 6, 9, 15 and 24 reached 10, 83, 95, 99.5 and 98.5 % test
        accuracy after 4 epochs; ``recurrent_density``/``recurrent_fan_in``,
        ``recurrent_delay`` and the model's parameter values apply to every layer;
        ``input_fan_in`` and ``fluctuation_init`` to the first). The backward pass of a
        layer hands the layer below its dL/d(spikes) (:meth:`CompiledBPTT.run` with
        ``input_grad``); the gradients are those of the whole stack, exactly.

        Every argument is checked here, before the kernels are compiled (sizes, ranges,
        parameter names and values): see :mod:`snngen.train.checks`."""
        where = "RecurrentClassifier"
        from ..model import NeuronModel
        if not isinstance(model, NeuronModel):
            raise InvalidValueError(f"{where}: model must be a NeuronModel, got "
                                    f"{type(model).__name__}")
        from ..derive.surrogate import SurrogateSpec
        if not isinstance(surrogate, (str, SurrogateSpec)):
            raise InvalidValueError(f"{where}: surrogate must be the name of a surrogate "
                                    f"gradient such as 'fast_sigmoid' or "
                                    f"sg.surrogate('fast_sigmoid', beta=5), got {surrogate!r}")
        if not isinstance(backend, str) or backend not in ("numba", "cuda", "cuda-host"):
            raise SnngenError(f"unknown backend {backend!r}: 'numba', 'cuda' or 'cuda-host'")
        if checkpoint_every is not None and backend != "numba":
            raise SnngenError("checkpoint_every is implemented on the Numba backend only")
        sizes = (n_hidden,) if np.ndim(n_hidden) == 0 else tuple(n_hidden)
        if not sizes:
            raise InvalidValueError(f"{where}: n_hidden must be a positive int or a sequence "
                                    f"of them, got {n_hidden!r}")
        most = conn.MAX_NEURONS  # neuron indices are int32
        self.sizes = tuple(as_count(h, "n_hidden", where, maximum=most) for h in sizes)
        n_in = as_count(n_in, "n_in", where, maximum=most)
        n_out = as_count(n_out, "n_out", where, maximum=most)
        dt = as_real(dt, "dt", where, 0, open_low=True)
        readout_tau = as_real(readout_tau, "readout_tau", where, 0, open_low=True)
        recurrent_density = as_real(recurrent_density, "recurrent_density", where, 0, 1)
        seed = as_count(seed, "seed", where, 0)
        for name, gain in (("input_gain", input_gain), ("recurrent_gain", recurrent_gain),
                           ("hidden_gain", hidden_gain)):
            as_real(gain, name, where, 0)
        if not isinstance(over, str) or over not in ("max", "mean", "last"):
            raise InvalidValueError(f"{where}: over must be 'max', 'mean' or 'last' (how the "
                                    f"readout is reduced over time), got {over!r}")
        if input_fan_in is not None:
            input_fan_in = as_count(input_fan_in, "input_fan_in", where)
        if recurrent_fan_in is not None:
            recurrent_fan_in = as_count(recurrent_fan_in, "recurrent_fan_in", where, 0)
        if checkpoint_every is not None:
            checkpoint_every = as_count(checkpoint_every, "checkpoint_every (steps)", where)
        self.lm = derive(discretise(model), inputs=[input_target], surrogate=surrogate)
        self.input_target = input_target
        self.backend = backend
        self.checkpoint_every = checkpoint_every  # BPTT memory: tape of K steps, recomputed
        self.recurrent_delay = as_count(recurrent_delay, "recurrent_delay (steps)", where)
        # sparse backward: surrogate values below it count as 0
        self.cutoff = as_real(cutoff, "cutoff", where, 0)
        trainable_params = _check_params(self.lm, params, trainable_params, where)
        self.n_in, self.n_hidden, self.n_out, self.dt, self.over = (
            n_in, self.sizes[0] if len(self.sizes) == 1 else self.sizes, n_out, dt, over)
        self.alpha = float(np.exp(-dt / readout_tau))
        rng = np.random.default_rng(seed)
        in_rule = conn.AllToAll() if input_fan_in is None else conn.FixedInDegree(input_fan_in)
        tables = {"in_csr": (in_rule, n_in, self.sizes[0], seed)}  # drawn once all fit
        fans_rec = []
        for layer, h in enumerate(self.sizes):
            if recurrent_fan_in is not None:
                rule = conn.FixedInDegree(recurrent_fan_in, allow_self=False)
                fans_rec.append(recurrent_fan_in)
            else:
                rule = conn.AllToAll() if recurrent_density >= 1 else conn.FixedProbability(
                    recurrent_density, allow_self=False)
                fans_rec.append(max(recurrent_density * h, 1))
            if layer:
                tables[layer_key("in_csr", layer)] = (conn.AllToAll(), self.sizes[layer - 1], h,
                                                      seed + 2 * layer)
            tables[layer_key("rec_csr", layer)] = (rule, h, h, seed + 2 * layer + 1)
        check_tables_fit(tables, {f"w_out {self.sizes[-1]} x {n_out}": 8 * self.sizes[-1] * n_out},
                         where)
        #: the synapses of every layer: "in_csr" and "rec_csr", then "in_csr:1", ...
        self.csrs = {key: conn.build_csr(*table) for key, table in tables.items()}
        fan_in = n_in if input_fan_in is None else input_fan_in
        w_in_mean, w_in_std = 0.0, input_gain / np.sqrt(fan_in)
        if fluctuation_init is not None:
            if not isinstance(fluctuation_init, dict) or \
                    set(fluctuation_init) != {"rate", "mu", "sigma"}:
                raise InvalidValueError("fluctuation_init needs exactly the keys rate (Hz of "
                                        "the inputs), mu and sigma (of the membrane, from "
                                        f"rest); got {fluctuation_init!r}")
            from .init import fluctuation_driven
            w_in_mean, w_in_std = fluctuation_driven(
                self.lm, params, dt, fan_in, fluctuation_init["rate"],
                fluctuation_init["mu"], fluctuation_init["sigma"])
        self.weights = {}
        for layer in range(len(self.sizes)):
            w_in, rec = layer_key("w_in", layer), layer_key("w_rec", layer)
            n_syn = self.csrs[layer_key("in_csr", layer)].n_synapses
            self.weights[w_in] = rng.normal(w_in_mean, w_in_std, n_syn) if layer == 0 else \
                rng.normal(0, hidden_gain / np.sqrt(self.sizes[layer - 1]), n_syn)
            self.weights[rec] = rng.normal(0, recurrent_gain / np.sqrt(fans_rec[layer]),
                                           self.csrs[layer_key("rec_csr", layer)].n_synapses)
        self.weights["w_out"] = rng.normal(0, 1 / np.sqrt(self.sizes[-1]),
                                           (self.sizes[-1], n_out))
        self._names = tuple(params)  # the model's parameters, as given (every layer)
        self.params = {layer_key(k, layer): np.full(h, float(v))
                       for layer, h in enumerate(self.sizes) for k, v in params.items()}
        self._trainable = tuple(trainable_params)  # model names; self.trainable: keys
        self.trainable = tuple(layer_key(p, layer) for layer in range(len(self.sizes))
                               for p in trainable_params)
        self.n_states = len(self.lm.states)
        # compiled last: every argument has been checked and the synapses drawn
        if backend == "numba":
            self.bptt = CompiledBPTT(self.lm, dtype)
        else:
            from .cuda_bptt import CudaBPTT
            self.bptt = CudaBPTT(self.lm, dtype, device="gpu" if backend == "cuda" else "host")
        # weights live in the kernels' precision (no copy per call; Adam's moments follow),
        # on the device for the CUDA backends: gradients stay there and Adam runs there
        self.xp = xp = np if backend == "numba" else self.bptt.xp
        for k in self.weights:
            self.weights[k] = xp.asarray(self.weights[k].astype(dtype))

    @property
    def in_csr(self):
        """The first layer's input synapses (see :attr:`csrs` for every layer)."""
        return self.csrs["in_csr"]

    @property
    def rec_csr(self):
        """The first layer's recurrent synapses."""
        return self.csrs["rec_csr"]

    def _layer_params(self, layer) -> dict:
        """The model's parameter values of hidden layer ``layer``, by the model's names."""
        return {k: self.params[layer_key(k, layer)] for k in self._names}

    def _run_layer(self, layer, inputs, loss_fn, wanted, input_grad, **kw):
        """One hidden layer's forward pass, ``loss_fn`` on its spikes, its backward pass."""
        s0 = np.zeros((inputs.shape[1], self.sizes[layer], self.n_states))
        kw["bool_spikes" if self.backend == "numba" else "loss_on_device"] = True
        if input_grad:
            kw["input_grad"] = True
        return self.bptt.run(self._layer_params(layer), s0, inputs,
                             self.csrs[layer_key("in_csr", layer)],
                             self.weights[layer_key("w_in", layer)],
                             self.csrs[layer_key("rec_csr", layer)],
                             self.weights[layer_key("w_rec", layer)], self.dt, loss_fn,
                             wanted=wanted, states_needed=False, delay=self.recurrent_delay,
                             **kw)

    def calibrate_layers(self, inputs: np.ndarray, mu: float, sigma: float,
                         seed: int = 0) -> list:
        """Data-driven fluctuation initialisation of the layers above the first (Rossbroich,
        Gygax & Zenke 2022, for deep networks): layer by layer, run the stack on ``inputs``
        (T x B x n_in spikes), measure the mean rate of the layer below, and redraw the
        input weights of layer l so that its membranes sit at ``mu`` +- ``sigma`` from rest
        at that rate (:func:`snngen.train.init.fluctuation_driven`, from the model's own PSP
        kernel). Replaces guessing ``hidden_gain``. Returns each layer's mean rate (Hz) after
        calibration; raises if a layer below is silent on these inputs."""
        from .init import fluctuation_driven
        where = "RecurrentClassifier.calibrate_layers"
        self._check_inputs(inputs, where)
        mu, sigma = as_real(mu, "mu", where), as_real(sigma, "sigma", where, 0, open_low=True)
        rng = np.random.default_rng(as_count(seed, "seed", where, 0))
        for layer in range(1, len(self.sizes)):
            rate = self._rates(inputs)[layer - 1]
            if not rate > 0:
                raise SnngenError(
                    f"calibrate_layers: hidden layer {layer - 1} fires no spike on these "
                    "inputs, so the layer above cannot be set from its rate; raise input_gain "
                    "(or give the first layer fluctuation_init), or pass more trials")
            mean, std = fluctuation_driven(self.lm, self._layer_params(layer), self.dt,
                                           self.sizes[layer - 1], rate, float(mu),
                                           float(sigma))
            key = layer_key("w_in", layer)
            w = rng.normal(mean, std, self.weights[key].shape).astype(self.bptt.dtype)
            self.weights[key] = self.xp.asarray(w)
        return self._rates(inputs)

    def _rates(self, inputs) -> list:
        """Mean firing rate (Hz) of every hidden layer on ``inputs`` (forward passes only)."""
        return [float(spikes.mean()) / self.dt for spikes in self._hidden_spikes(inputs)]

    def _check_inputs(self, inputs, where: str) -> tuple:
        """(steps, samples) of input spikes for this network (see
        :func:`snngen.train.checks.check_spikes`)."""
        return check_spikes(inputs, self.n_in, where,
                            f"n_in={self.n_in} given to RecurrentClassifier")

    def hidden_spikes(self, inputs: np.ndarray) -> list:
        """The spikes (T x B x n_l) of every hidden layer on ``inputs`` (T x B x n_in), by
        forward passes alone (no tape, no backward pass: a fraction of a training step's
        time and memory); layer l's spikes are layer l + 1's inputs. Booleans on the Numba
        backend, float 0/1 arrays of the backend's array module on the CUDA ones."""
        self._check_inputs(inputs, "RecurrentClassifier.hidden_spikes")
        return self._hidden_spikes(inputs)

    def _hidden_spikes(self, inputs) -> list:
        out, x = [], inputs
        for layer in range(len(self.sizes)):
            s0 = np.zeros((x.shape[1], self.sizes[layer], self.n_states))
            x, _ = self.bptt.simulate(self._layer_params(layer), s0, x,
                                      self.csrs[layer_key("in_csr", layer)],
                                      self.weights[layer_key("w_in", layer)],
                                      self.csrs[layer_key("rec_csr", layer)],
                                      self.weights[layer_key("w_rec", layer)], self.dt,
                                      delay=self.recurrent_delay)
            out.append(x)
        return out

    def _stack(self, inputs, top_loss, wanted, **kw):
        """Run every layer, each inside the loss of the one below: layer l's loss runs
        layers l + 1 .. and the readout loss ``top_loss``, and returns dL/d(its spikes) =
        the gradient w.r.t. the inputs of layer l + 1. Returns (loss, {layer: grads})."""
        out = {}
        # built from the top down, without a function that refers to itself: such a closure
        # is a reference cycle, and it kept every iteration's gradients (8 MB per T1
        # iteration at H = 1024) alive until the garbage collector happened to run
        loss_fn = top_loss
        for layer in range(len(self.sizes) - 1, 0, -1):
            loss_fn = self._loss_below(layer, loss_fn, wanted, out, kw)
        loss, out[0] = self._run_layer(0, inputs, loss_fn, wanted, False, **kw)
        return loss, out

    def _loss_below(self, layer, loss_above, wanted, out, kw):
        """The loss of layer ``layer - 1``: runs layer ``layer`` on its spikes (with
        ``loss_above``) and returns dL/d(those spikes); the layer's gradients go to out."""
        def fn(states, spikes):
            loss, grads = self._run_layer(layer, spikes, loss_above, wanted, True, **kw)
            out[layer] = grads
            return loss, None, grads.pop("inputs")
        return fn

    def _readout(self, spikes):
        """Leaky-integrator readout of (T x B x n) spikes: (T x B x n_out), on the host.
        The product runs where the spikes are (the device for the CUDA backends)."""
        # one 2-D product (numpy's stacked matmul over (T, B, n) is many times slower), in
        # the spikes' precision: mixed precisions would copy the spikes to float64 first
        w_out = self.weights["w_out"]
        if spikes.dtype == np.bool_:  # Numba backend: event-driven, no float copy
            drive = readout_drive(spikes, w_out)
        else:
            flat = spikes.reshape(-1, spikes.shape[-1])
            drive = _host(flat @ w_out.astype(flat.dtype, copy=False)).astype(
                np.float64).reshape(spikes.shape[:-1] + (-1,))
        return self._scan(drive)

    def _scan(self, drive):
        """The readout's leak over time: y_t = alpha y_{t-1} + drive_t."""
        y = np.zeros_like(drive)
        acc = np.zeros(drive.shape[1:])
        for t in range(drive.shape[0]):
            acc = self.alpha * acc + drive[t]
            y[t] = acc
        return y

    def loss_and_grads(self, inputs: np.ndarray, labels: np.ndarray):
        """Cross-entropy of a batch (inputs: T x B x n_in spikes, labels: B classes) and its
        gradients: one per key of :attr:`weights` and of :attr:`trainable` (and, with one
        hidden layer, the other gradients of :meth:`CompiledBPTT.run` too)."""
        where = "RecurrentClassifier.loss_and_grads"
        _, samples = self._check_inputs(inputs, where)
        return self._loss_and_grads(inputs, check_labels(labels, samples, self.n_out, where))

    def _loss_and_grads(self, inputs, labels):
        """:meth:`loss_and_grads` of checked inputs and labels."""
        captured = {}

        def loss_fn(states, spikes):  # spikes: NumPy, or device arrays on the CUDA backends
            y = self._readout(spikes)
            loss, dy = cross_entropy(y, labels, self.over)
            # reverse scan of the leaky readout: dL/d(drive_t) = sum_t' alpha^(t'-t) dL/dy_t'
            d_drive = np.zeros_like(dy)
            acc = np.zeros(dy.shape[1:])
            for t in range(dy.shape[0] - 1, -1, -1):
                acc = self.alpha * acc + dy[t]
                d_drive[t] = acc
            # everything (T, B, n)-sized in the kernels' precision (a float64 copy of the
            # spikes or of dL/dz would double the peak memory of a training step)
            w_out = self.weights["w_out"]
            low = self.bptt.dtype if spikes.dtype == np.bool_ else spikes.dtype
            d_flat = self.xp.asarray(d_drive.reshape(-1, d_drive.shape[-1]).astype(low))
            if spikes.dtype == np.bool_:
                captured["w_out"] = readout_grad(spikes, d_drive)
            else:  # sum over time and batch as one matrix product (BLAS)
                captured["w_out"] = (spikes.reshape(-1, spikes.shape[-1]).T @ d_flat).astype(
                    w_out.dtype)
            captured["y"] = y
            w_low = w_out.astype(low, copy=False)
            if spikes.dtype == np.bool_:  # Numba event path: dL/dz formed in the kernel
                return loss, None, (d_flat.reshape(d_drive.shape), w_low)
            return loss, None, (d_flat @ w_low.T).reshape(d_drive.shape[:-1] + (-1,))

        kw = {"checkpoint_every": self.checkpoint_every} if self.backend == "numba" else {}
        loss, by_layer = self._stack(inputs, loss_fn, set(self._trainable),
                                     cutoff=self.cutoff, **kw)
        if len(self.sizes) == 1:
            grads = by_layer[0]
        else:
            grads = {layer_key(k, layer): g[k] for layer, g in by_layer.items()
                     for k in ("w_in", "w_rec", *self._trainable)}
        grads["w_out"] = captured["w_out"]
        accuracy = float(np.mean(self._predict(captured["y"]) == labels))
        return loss, grads, accuracy

    def _predict(self, y):
        if self.over == "max":
            return y.max(axis=0).argmax(axis=-1)
        if self.over == "mean":
            return y.mean(axis=0).argmax(axis=-1)
        return y[-1].argmax(axis=-1)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Class predictions for (T x B x n_in) input spikes (forward passes only)."""
        self._check_inputs(inputs, "RecurrentClassifier.predict")
        return self._predict(self._readout(self._hidden_spikes(inputs)[-1]))


class Trainer:
    """Minibatch training with Adam, gradient clipping, a history and exact checkpoints."""

    def __init__(self, net: RecurrentClassifier, lr: float = 2e-3, clip: float | None = 5.0,
                 batch_size: int = 32, seed: int = 0):
        """``clip``: the largest global gradient norm (None or 0: no clipping)."""
        if not isinstance(net, RecurrentClassifier):
            raise InvalidValueError(f"Trainer: net must be a RecurrentClassifier, got "
                                    f"{type(net).__name__}")
        self.net = net
        self.clip = None if clip is None else as_real(clip, "clip", "Trainer", 0)
        self.batch_size = as_count(batch_size, "batch_size", "Trainer")
        self.opt = Adam(lr=as_real(lr, "lr", "Trainer", 0, open_low=True))
        self.rng = np.random.default_rng(as_count(seed, "seed", "Trainer", 0))
        self.history: list[dict] = []
        self.epoch = 0

    def _step(self, grads: dict) -> None:
        """One Adam step. Trainable model parameters (time constants, thresholds...) are
        optimised as log(p): they stay positive and move by relative amounts."""
        params = dict(self.net.weights)
        logs = {f"log_{p}": np.log(self.net.params[p]) for p in self.net.trainable}
        params.update(logs)
        g = {k: grads[k] for k in self.net.weights}
        g.update({f"log_{p}": grads[p] * self.net.params[p] for p in self.net.trainable})
        # clipping is a factor the optimiser applies as it reads the gradients (no pass of
        # its own over them)
        scale = clip_scale(global_norm(g), self.clip) if self.clip else 1.0
        self.opt.step(params, g, scale=scale)
        for p in self.net.trainable:
            self.net.params[p][:] = np.exp(logs[f"log_{p}"])

    def fit(self, inputs: np.ndarray, labels: np.ndarray, epochs: int, progress=None):
        """Train for ``epochs`` more epochs on (T x N x n_in) spikes and N labels (every
        sample and label is checked first, once)."""
        from tqdm import tqdm
        _, n = self.net._check_inputs(inputs, "Trainer.fit")
        labels = check_labels(labels, n, self.net.n_out, "Trainer.fit")
        target = self.epoch + as_count(epochs, "epochs", "Trainer.fit", 0)
        while self.epoch < target:
            t0 = time.perf_counter()
            order = self.rng.permutation(n)
            losses, accs = [], []
            batches = range(0, n, self.batch_size)
            for start in tqdm(batches, desc=f"epoch {self.epoch + 1}", leave=False,
                              disable=not progress):
                idx = order[start:start + self.batch_size]
                loss, grads, acc = self.net._loss_and_grads(_gather(inputs, idx), labels[idx])
                self._step(grads)
                losses.append(loss)
                accs.append(acc)
            self.epoch += 1
            self.history.append({"epoch": self.epoch, "loss": float(np.mean(losses)),
                                 "accuracy": float(np.mean(accs)),
                                 "seconds": time.perf_counter() - t0})
        return self.history

    def save(self, path) -> None:
        """Everything needed to resume exactly (weights, parameters, synapses, Adam state,
        RNG) and a description of the network, written atomically: a failed or interrupted
        save leaves the previous file in place (:mod:`snngen.train.checkpoint`)."""
        checkpoint.save(self, path, _host)

    def load(self, path) -> None:
        """Resume from a checkpoint of :meth:`save`. All of it is checked against this
        trainer's network first (readable, same model, sizes, layers and arrays); a
        :class:`~snngen.errors.CheckpointError` leaves the trainer as it was."""
        checkpoint.load(self, path)


def _host(a):
    """A NumPy copy of a NumPy or device (CuPy) array."""
    return a.get() if hasattr(a, "get") and type(a) is not np.ndarray else np.asarray(a)
