"""BPTT.memory_bytes counts, before a run, the bytes the run then holds; a run that would
not fit is refused before anything is allocated."""

import numpy as np
import pytest

import snngen as sg
from snngen.errors import NetworkTooLargeError
from snngen.train.network_memory import memory_parts

LIF = sg.NeuronModel("dv/dt = (I - v) / tau + 0.1*xi/sqrt(tau) : 1\ndI/dt = -I / taus : 1",
                     threshold="v > 1", reset="v = 0", refractory="2*ms", name="mem_lif")
LEAKY = sg.NeuronModel("dv/dt = -v / tau : 1", name="mem_leaky")


def network(batch=3):
    """Inputs and a Poisson group into a noisy refractory LIF population (recurrent, two
    delays) and a readout, all to all and sparse projections."""
    net = sg.Network(dt=1e-3, batch=batch, dtype="float32", seed=2)
    x = net.input("x", 5)
    p = net.poisson("p", 4, rates=50.0)
    h = net.population("h", LIF, 9, params={"tau": sg.Trainable(0.02), "taus": 0.005})
    o = net.population("o", LEAKY, 3, params={"tau": 0.02})
    net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(2.0, 1.0)))
    net.connect(p, h, "I += w", sg.FixedProbability(0.5), w=sg.Trainable(1.0))
    net.connect(h, h, "I += w", sg.FixedProbability(0.5), w=sg.Trainable(sg.Normal(0, 0.5)),
                delay="3*ms")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0, 0.5)), delay="1*ms")
    return net, h, o


def _held(arrays) -> int:
    return sum(v.nbytes for v in arrays if isinstance(v, np.ndarray))


@pytest.mark.parametrize("every", [None, 4])
def test_the_count_is_what_a_run_holds(every):
    net, h, o = network()
    loss = sg.losses.cross_entropy(o.v) + sg.losses.rate(h.spikes, 0.0, 0.05, 0.1)
    fit = sg.BPTT(net, loss=loss, checkpoint_every=every, progress=False)
    steps, batch = 11, 3
    seen = {}
    forward, backward = fit._forward, fit.kernels.backward

    def spy_forward(*args, **kwargs):
        out = forward(*args, **kwargs)
        seen["records"] = _held(v for k, v in out[4].items() if k.name != "spikes")
        seen["saved"] = _held(v for part in out[5].values() for v in part.values())
        return out

    def spy_backward(t0, t1, steps_, dt, cutoff, args):
        seen["args"] = _held(args.values())
        return backward(t0, t1, steps_, dt, cutoff, args)

    fit._forward, fit.kernels.backward = spy_forward, spy_backward
    data = (np.random.default_rng(0).random((steps, batch, 5)) < 0.4).astype(np.float32)
    fit.loss_and_grads({"x": data}, np.array([0, 1, 2]))
    parts = memory_parts(fit, steps, batch)
    dl = steps * batch * (o.n + h.n) * 8  # the loss's gradients: not held in the arrays seen
    assert parts["checkpoints"] == seen["saved"] and (parts["checkpoints"] > 0) == bool(every)
    assert fit.memory_bytes(steps, batch) == seen["args"] + seen["saved"] + seen["records"] + dl
    assert fit.memory_bytes(steps, batch, backward=False) < fit.memory_bytes(steps, batch)


def test_checkpoints_shrink_the_tape():
    net, h, o = network()
    full = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), progress=False)
    parts = memory_parts(full, 1000, 3)
    net, h, o = network()
    ckpt = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), checkpoint_every=10,
                   progress=False)
    small = memory_parts(ckpt, 1000, 3)
    assert small["tape"] * 100 == parts["tape"]
    assert small["checkpoints"] > 0 and parts["checkpoints"] == 0


def test_a_run_that_does_not_fit_is_refused_before_it_starts():
    net, h, o = network()
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), max_memory=10**5, progress=False)
    data = np.zeros((400, 3, 5), np.float32)
    need = fit.memory_bytes(400, 3)
    assert need > 10**5
    calls = []
    real = fit.kernels.forward
    fit.kernels.forward = lambda *a: calls.append(a) or real(*a)  # nothing may run
    with pytest.raises(NetworkTooLargeError, match="checkpoint_every"):
        fit.loss_and_grads({"x": data}, np.array([0, 1, 2]))
    with pytest.raises(NetworkTooLargeError, match="max_memory"):
        fit.fit({"x": data}, np.array([0, 1, 2]))
    assert not calls
    fit.predict({"x": data[:20]})  # a short run fits
    assert calls


def test_max_memory_is_checked_where_given():
    net, h, o = network()
    with pytest.raises(sg.SnngenError, match="max_memory"):
        sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), max_memory=-1)
