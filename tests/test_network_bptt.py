"""BPTT of declared networks (issue 20): gradients of whole ``sg.Network`` graphs equal an
independent PyTorch autodiff implementation written here from the equations (float64,
1e-9 relative), and the driver's checks.

Each PyTorch network is the same graph written by hand: the same synapses and initial values
(read from the trainer's tables), Brian2's order within a step (update, threshold, synaptic
input of the spikes due, reset), a spike whose derivative is the fast-sigmoid surrogate.
"""

import numpy as np
import pytest
import sympy as sp

import snngen as sg
from snngen.errors import InvalidValueError, ShapeError, SnngenError

torch = pytest.importorskip("torch", reason="torch==2.13.0 (CPU) is the autodiff reference")

# the hard spike whose derivative is the fast-sigmoid surrogate (beta = 10)
from test_gradients_torch import FastSigmoidSpike as Spike  # noqa: E402

DT = 1e-3
# the same gradients on every backend that runs here: the CUDA kernels through the host
# shim need a C++ compiler
from snngen.backends.cuda import compiler  # noqa: E402

BACKENDS = ["numba", pytest.param("cuda-host", marks=pytest.mark.skipif(
    not compiler.shutil.which("g++"), reason="the cuda-host backend needs g++"))]


def dense(fit, proj, values, delays=None):
    """{delay: (n_pre, n_post) tensor} of a projection's per-synapse ``values`` (a tensor in
    CSR order), one matrix per distinct delay."""
    table = fit.tables[proj]
    csr = table["csr"]
    pre, post = csr.pre_indices(), csr.indices
    d = table["delays"] if delays is None else delays
    out = {}
    for k in np.unique(d):
        sel = np.flatnonzero(d == k)
        m = torch.zeros(csr.n_pre, csr.n_post, dtype=torch.float64)
        m = m.index_put((torch.as_tensor(pre[sel]), torch.as_tensor(post[sel])), values[sel])
        out[int(k)] = m
    return out


def delivered(zs, t, mats):
    """The input of step t from spikes zs (list of (B, n_pre)) through {delay: matrix}."""
    total = 0.0
    for d, m in mats.items():
        if t - d >= 0:
            total = total + zs[t - d] @ m
    return total


def lif_propagators(tau, taus):
    """exp(A dt) of dv/dt = (I - v)/tau, dI/dt = -I/taus, per neuron (differentiable)."""
    n = tau.shape[0]
    a = torch.zeros(n, 2, 2, dtype=torch.float64)
    a[:, 0, 0] = -1 / tau
    a[:, 0, 1] = 1 / tau
    a[:, 1, 1] = -1 / taus
    return torch.linalg.matrix_exp(a * DT)


def trained(fit):
    return {k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=True)
            for k, v in fit.params.items()}


def compare(fit, params, loss, inputs, labels):
    value, grads = fit.loss_and_grads(inputs, labels)
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-10)
    checked, failures = 0, []
    for k, p in params.items():
        ref = p.grad.numpy()
        scale = max(np.abs(ref).max(), 1e-12)
        if np.abs(grads[k] - ref).max() > 1e-9 * scale:
            failures.append((k, np.abs(grads[k] - ref).max() / scale))
        assert np.abs(ref).max() > 0, f"{k}: no gradient reaches it (a vacuous check)"
        checked += 1
    assert not failures
    return checked


LIF = sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1\nvt : 1",
                     threshold="v > vt", reset="v = 0", name="lif")
ADAPT = sg.NeuronModel("dv/dt = (-v - b) / tau2 : 1\ndb/dt = -b / taub : 1",
                       threshold="v > 1", reset="v = 0; b += 0.3", name="adaptive")
LEAKY = sg.NeuronModel("dv/dt = -v / tau : 1", name="leaky")


def two_population_net(seed=3, batch=3):
    """x -> h1 (LIF, recurrent with a delay of one step, per-neuron trained tau and
    threshold) -> h2 (adaptive, Euler, delay 2 steps) -> readout o; and a skip x -> o."""
    net = sg.Network(dt=DT, batch=batch, dtype="float64", seed=seed)
    x = net.input("x", 6)
    h1 = net.population("h1", LIF, 10, params={
        "tau": sg.Trainable(np.linspace(0.015, 0.03, 10), per_neuron=True), "taus": 0.005,
        "vt": sg.Trainable(1.0, per_neuron=True)})
    h2 = net.population("h2", ADAPT, 7, params={"tau2": 0.02, "taub": 0.1}, method="euler")
    o = net.population("o", LEAKY, 3, params={"tau": sg.Trainable(0.03)})
    net.connect(x, h1, "I += w", sg.FixedProbability(0.7), w=sg.Trainable(sg.Normal(3.0, 2.0)),
                name="in")
    net.connect(h1, h1, "I += w", sg.FixedProbability(0.5),
                w=sg.Trainable(sg.Normal(0.0, 1.0)), delay=DT, name="rec")
    net.connect(h1, h2, "v += w", w=sg.Trainable(sg.Normal(0.4, 0.3)), delay=2 * DT,
                name="ff")
    net.connect(h2, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    net.connect(x, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.3)), name="skip")
    return net, o


def two_population_reference(fit, data):
    """PyTorch's run of :func:`two_population_net` on ``data`` (steps, batch, 6) with the
    trained values of ``fit``: (those values as leaf tensors, the readout after each step,
    h1's and h2's spikes of each step)."""
    steps, batch = data.shape[:2]
    p = trained(fit)
    xs = torch.as_tensor(data)
    w = {k: dense(fit, k, p[f"{k}.w"]) for k in ("in", "rec", "ff", "out", "skip")}
    phi = lif_propagators(p["h1.tau"], torch.full((10,), 0.005, dtype=torch.float64))
    v1, i1 = torch.zeros(batch, 10, dtype=torch.float64), torch.zeros(batch, 10,
                                                                      dtype=torch.float64)
    v2, b2 = torch.zeros(batch, 7, dtype=torch.float64), torch.zeros(batch, 7,
                                                                     dtype=torch.float64)
    vo = torch.zeros(batch, 3, dtype=torch.float64)
    z1s, z2s, xlist, ys = [], [], [], []
    for t in range(steps):
        xlist.append(xs[t])
        u1 = phi[:, 0, 0] * v1 + phi[:, 0, 1] * i1
        ui = phi[:, 1, 1] * i1
        u2 = v2 + DT * (-v2 - b2) / 0.02
        ub = b2 + DT * (-b2 / 0.1)
        uo = vo * torch.exp(-DT / p["o.tau"])
        z1, z2 = Spike.apply(u1 - p["h1.vt"]), Spike.apply(u2 - 1.0)
        z1s.append(z1)
        z2s.append(z2)
        ui = ui + delivered(xlist, t, w["in"]) + delivered(z1s, t, w["rec"])
        u2 = u2 + delivered(z1s, t, w["ff"])
        vo = uo + delivered(z2s, t, w["out"]) + delivered(xlist, t, w["skip"])
        v1, i1, v2, b2 = u1 * (1 - z1), ui, u2 * (1 - z2), ub + 0.3 * z2
        ys.append(vo)
    return p, ys, z1s, z2s


@pytest.mark.parametrize("every", [None, 13], ids=["full_tape", "checkpointed"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_populations_with_skip_equal_pytorch(backend, every):
    net, o = two_population_net()
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend,
                  checkpoint_every=every)
    rng = np.random.default_rng(1)
    steps, batch = 40, 3
    data = (rng.random((steps, batch, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1])
    p, ys, z1s, z2s = two_population_reference(fit, data)
    logits = torch.stack(ys).mean(0)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 8
    assert float(torch.stack(z1s).detach().sum()) > 20
    assert float(torch.stack(z2s).detach().sum()) > 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_statements_reading_postsynaptic_state_equal_pytorch(backend):
    """'I += w * (E - v_post)' (E a projection parameter) with a delay of 2 steps: each
    spike adds w (E - v) to I with v as it is after the update of the step the spike
    arrives in (Brian2's order); a second projection into I, a readout. The statement
    splits into the inputs 'w E' (factor 1) and '-w' (factor v)."""
    net = sg.Network(dt=DT, batch=3, dtype="float64", seed=4)
    x = net.input("x", 5)
    h = net.population("h", LIF, 6, params={"tau": sg.Trainable(0.02), "taus": 0.005,
                                            "vt": 1.0})
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    net.connect(x, h, "I += w * (E - v_post)", params={"E": 2.0}, delay=2 * DT,
                w=sg.Trainable(sg.Uniform(0.5, 3.0)), name="cond")
    net.connect(h, h, "I += w", sg.FixedProbability(0.5), w=sg.Trainable(sg.Normal(0, 0.5)),
                delay=DT, name="rec")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    assert [d.slot for d in fit.nlm.deliveries] == [0, 1, 0, 0]  # cond: two inputs of h
    rng = np.random.default_rng(3)
    steps, batch = 40, 3
    data = (rng.random((steps, batch, 5)) < 0.4).astype(float)
    labels = np.array([1, 0, 1])
    p = trained(fit)
    xs = [torch.as_tensor(data[t]) for t in range(steps)]
    w = {k: dense(fit, k, p[f"{k}.w"]) for k in ("cond", "rec", "out")}
    v = torch.zeros(batch, 6, dtype=torch.float64)
    i = torch.zeros_like(v)
    vo = torch.zeros(batch, 2, dtype=torch.float64)
    zs, ys = [], []
    for t in range(steps):
        phi = lif_propagators(p["h.tau"].expand(6), torch.full((6,), 0.005,
                                                               dtype=torch.float64))
        u = phi[:, 0, 0] * v + phi[:, 0, 1] * i
        ui = phi[:, 1, 1] * i
        z = Spike.apply(u - 1.0)
        zs.append(z)
        ui = ui + delivered(xs, t, w["cond"]) * (2.0 - u) + delivered(zs, t, w["rec"])
        vo = vo * np.exp(-DT / 0.02) + delivered(zs, t, w["out"])
        v, i = u * (1 - z), ui
        ys.append(vo)
    logits = torch.stack(ys).mean(0)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 4
    assert float(torch.stack(zs).detach().sum()) > 10


def test_statements_reading_postsynaptic_state_run_as_the_simulation():
    """The trained network's forward pass spikes as the simulator does (which delivers
    each synapse's statement at arrival, in turn, as Brian2 does): the same spikes from a
    spike source in the simulation and fed as an input to training."""
    rng = np.random.default_rng(0)
    steps = 60
    pairs = np.unique(np.stack([rng.integers(0, 50, 80), rng.integers(0, 5, 80)], 1), axis=0)
    times, idx = (pairs[:, 0] + 0.5) * DT, pairs[:, 1]  # at most one spike per neuron and step
    raster = np.zeros((steps, 1, 5))
    raster[np.floor(times / DT + 1e-9).astype(int), 0, idx] = 1

    def build(simulated: bool):
        net = sg.Network(dt=DT, batch=1, dtype="float64", seed=4)
        x = net.spike_source("x", 5, idx, times) if simulated else net.input("x", 5)
        h = net.population("h", LIF, 6, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
        w = 1.5 if simulated else sg.Trainable(1.5)
        net.connect(x, h, "I += w * (E - v_post)", params={"E": 2.0}, delay=2 * DT, w=w,
                    name="cond")
        net.connect(h, h, "I += w", sg.FixedProbability(0.5), w=0.4, delay=DT, name="rec")
        return net, h

    net, h = build(True)
    spikes = net.monitor_spikes(h)
    net.build().run(steps * DT)
    want = sorted(zip(np.round(np.asarray(spikes.t) / DT).astype(int).tolist(),
                      np.asarray(spikes.i).tolist()))
    net, h = build(False)
    fit = sg.BPTT(net, loss=sg.losses.spike_count(h.spikes))
    z = fit._forward({"x": raster}, "test")[2]["z_h"]
    got = sorted(map(tuple, np.argwhere(z[:, 0, :] > 0.5).tolist()))
    assert len(want) > 5 and got == want


DRIVEN = sg.NeuronModel("dv/dt = (I_ext + I - v) / tau : 1\ndI/dt = -I / taus : 1",
                        threshold="v > 1", reset="v = 0", name="driven")


def driven_net(fed: bool, current):
    """x (an input fed per run, or a spike source) -> h, whose neurons also get the
    time-varying current I_ext (a TimedArray of 4 ms rows, per neuron) -> readout o."""
    net = sg.Network(dt=DT, batch=1 if not fed else 2, dtype="float64", seed=6)
    times, idx = (np.arange(0, 40, 3) + 0.5) * DT, np.arange(14) % 4
    x = net.input("x", 4) if fed else net.spike_source("x", 4, idx, times)
    h = net.population("h", DRIVEN, 5, params={
        "tau": sg.Trainable(0.02) if fed else 0.02, "taus": 0.005,
        "I_ext": sg.TimedArray(current, 4 * DT)}, method="euler")
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    w = sg.Trainable(sg.Normal(0.5, 0.3)) if fed else 0.6
    net.connect(x, h, "I += w", w=w, name="in")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    return net, h, o, (times, idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_timed_array_inputs_equal_pytorch(backend):
    """A TimedArray current is a fixed input of each step (its row of the step, held after
    the last): the trained time constant and weights equal PyTorch's gradients."""
    current = np.random.default_rng(7).uniform(0.5, 2.5, (8, 5))  # 32 ms, then the last row
    net, h, o, _ = driven_net(True, current)
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    assert "time-varying inputs: _T_I_ext" in str(fit.nlm)
    steps, batch = 40, 2
    data = (np.random.default_rng(2).random((steps, batch, 4)) < 0.3).astype(float)
    labels = np.array([1, 0])
    p = trained(fit)
    xs = [torch.as_tensor(data[t]) for t in range(steps)]
    w = {k: dense(fit, k, p[f"{k}.w"]) for k in ("in", "out")}
    v = torch.zeros(batch, 5, dtype=torch.float64)
    i = torch.zeros_like(v)
    vo = torch.zeros(batch, 2, dtype=torch.float64)
    zs, ys = [], []
    for t in range(steps):
        ext = torch.as_tensor(current[min(t // 4, 7)])
        u = v + DT * (ext + i - v) / p["h.tau"]
        ui = i - DT * i / 0.005
        z = Spike.apply(u - 1.0)
        zs.append(z)
        ui = ui + delivered(xs, t, w["in"])
        vo = vo * np.exp(-DT / 0.02) + delivered(zs, t, w["out"])
        v, i = u * (1 - z), ui
        ys.append(vo)
    logits = torch.stack(ys).mean(0)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 3
    assert float(torch.stack(zs).detach().sum()) > 10


def test_timed_array_inputs_run_as_the_simulation():
    """The trained network's forward pass spikes as the simulator does with the same
    TimedArray (rows of 4 ms, the last held) and the same input spikes."""
    current = np.random.default_rng(7).uniform(0.5, 2.5, (8, 5))
    net, h, _, (times, idx) = driven_net(False, current)
    spikes = net.monitor_spikes(h)
    net.build().run(50 * DT)
    want = sorted(zip(np.round(np.asarray(spikes.t) / DT).astype(int).tolist(),
                      np.asarray(spikes.i).tolist()))
    net, h, _, _ = driven_net(True, current)
    fit = sg.BPTT(net, loss=sg.losses.spike_count(h.spikes))
    raster = np.zeros((50, 2, 4))
    raster[np.floor(times / DT + 1e-9).astype(int), :, idx] = 1
    fit.params["in.w"][:] = 0.6  # the simulation's weights
    z = fit._forward({"x": raster}, "test")[2]["z_h"]
    got = sorted(map(tuple, np.argwhere(z[:, 0, :] > 0.5).tolist()))
    assert len(want) > 5 and got == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loss_with_a_rate_regulariser_equals_pytorch(backend):
    """cross_entropy(o.v) + rate(h1.spikes, low, high): the rates' penalty reaches every
    weight and parameter through the surrogate of h1's spikes."""
    net, o = two_population_net()
    h1 = net.populations["h1"]
    loss = sg.losses.cross_entropy(o.v, over="mean") + sg.losses.rate(
        h1.spikes, low="30*Hz", high="60*Hz", strength=1e-3)
    fit = sg.BPTT(net, loss=loss, backend=backend)
    rng = np.random.default_rng(1)
    steps, batch = 40, 3
    data = (rng.random((steps, batch, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1])
    p, ys, z1s, z2s = two_population_reference(fit, data)
    rate = torch.stack(z1s).sum(0) / (steps * DT)
    excess = torch.clamp(rate - 30.0, max=0) + torch.clamp(rate - 60.0, min=0)
    loss_ref = torch.nn.functional.cross_entropy(torch.stack(ys).mean(0),
                                                 torch.as_tensor(labels)) + \
        1e-3 * (excess ** 2).mean()
    assert float((excess != 0).sum()) > 5  # the penalty is active for several neurons
    assert compare(fit, p, loss_ref, {"x": data}, labels) == 8


def test_parallel_kernels_give_the_same_gradients_bit_for_bit():
    """parallel=True shares every population's neurons between threads: the same loss and
    gradients, bit for bit (each neuron's update and adjoint are its own)."""
    net, o = two_population_net()
    data = (np.random.default_rng(1).random((40, 3, 6)) < 0.3).astype(float)
    out = [sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), progress=False,
                   parallel=par).loss_and_grads({"x": data}, np.array([0, 2, 1]))
           for par in (False, True)]
    assert out[0][0] == out[1][0]
    for k, g in out[0][1].items():
        assert np.any(g != 0) and np.array_equal(g, out[1][1][k]), k
    with pytest.raises(InvalidValueError, match="parallel must be True or False"):
        sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), parallel="yes")


def test_sums_of_losses_say_what_they_take():
    net, o = two_population_net()
    h1 = net.populations["h1"]
    with pytest.raises(InvalidValueError, match="one loss scored against labels"):
        _ = sg.losses.cross_entropy(o.v) + sg.losses.mse(o.v)
    with pytest.raises(InvalidValueError, match="rate reads spikes"):
        sg.losses.rate(h1.v)
    with pytest.raises(InvalidValueError, match="low <= high"):
        sg.losses.rate(h1.spikes, low=50, high=10)
    with pytest.raises(SnngenError, match="hertz"):
        sg.losses.rate(h1.spikes, high="20*ms")
    total = sg.losses.cross_entropy(o.v) + sg.losses.rate(h1.spikes, high=100)
    assert total.reads == (o.v, h1.spikes) and total.label_axis == 0
    with pytest.raises(InvalidValueError, match="not a sum of per-step losses"):
        sg.Online(net, total, progress=False)
    alone = sg.BPTT(net, loss=sg.losses.rate(h1.spikes, low=80), progress=False)
    data = (np.random.default_rng(1).random((20, 3, 6)) < 0.3).astype(float)
    assert len(alone.fit({"x": data}, None, epochs=1)) == 1  # a regulariser takes no labels


COBA = sg.NeuronModel("""
    dv/dt = (ge * (Ee - v) + gi * (Ei - v) + (El - v)) / tau : 1
    dge/dt = -ge / taue : 1
    dgi/dt = -gi / taui : 1
""", threshold="v > 1", reset="v = 0", refractory="2*ms", name="coba")


def coba_net(recurrent: bool):
    """x -> c (conductance-based, refractory) -> readout o, excitation with per-synapse
    delays; inhibition from the input ('gi += w * w', nonlinear in w) or recurrent through
    a delay of 2 steps ('gi += w')."""
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=5)
    x = net.input("x", 5)
    c = net.population("c", COBA, 8, params={
        "Ee": 3.0, "Ei": -1.0, "El": 0.0, "tau": sg.Trainable(0.02), "taue": 0.005,
        "taui": 0.01}, method="euler")
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    net.connect(x, c, "ge += w", w=sg.Trainable(sg.Uniform(0.5, 2.5)),
                delay="(i - 3 * floor(i / 3)) * ms", name="exc")
    if recurrent:
        net.connect(c, c, "gi += w", sg.FixedProbability(0.5), w=sg.Trainable(0.3),
                    delay="2*ms", name="rec")
    else:
        net.connect(x, c, "gi += w * w", sg.FixedProbability(0.6),
                    w=sg.Trainable(sg.Uniform(0.2, 0.8)), name="inh")
    net.connect(c, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), delay="(j + 1) * ms",
                name="out")
    return net, o


@pytest.mark.parametrize("backend", BACKENDS)
def test_conductance_synapses_heterogeneous_delays_equal_pytorch(backend):
    """Excitatory and inhibitory pathways into one conductance-based population (the
    conductance multiplies (E - v)), per-synapse delays, a statement nonlinear in w, a
    refractory period; loss on the readout and a trained shared time constant."""
    net, o = coba_net(recurrent=False)
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    rng = np.random.default_rng(2)
    steps, batch = 50, 2
    data = (rng.random((steps, batch, 5)) < 0.35).astype(float)
    labels = np.array([1, 0])
    p = trained(fit)
    xs = [torch.as_tensor(data[t]) for t in range(steps)]
    we = dense(fit, "exc", p["exc.w"])
    wi = dense(fit, "inh", p["inh.w"] ** 2)
    wo = dense(fit, "out", p["out.w"])
    v = torch.zeros(batch, 8, dtype=torch.float64)
    ge = torch.zeros_like(v)
    gi = torch.zeros_like(v)
    vo = torch.zeros(batch, 2, dtype=torch.float64)
    last = np.full((batch, 8), -10**9)
    ref = 1  # 2 ms at 1 ms steps: the spike's own step and the next (Brian2's timestep rule)
    zs, ys = [], []
    for t in range(steps):
        refr = torch.as_tensor((t - last) <= ref)
        dv = (ge * (3.0 - v) + gi * (-1.0 - v) + (0.0 - v)) / p["c.tau"]
        u = v + DT * dv  # no "(unless refractory)": v integrates while refractory
        uge, ugi = ge - DT * ge / 0.005, gi - DT * gi / 0.01
        z = torch.where(refr, torch.zeros_like(u), Spike.apply(u - 1.0))
        zs.append(z)
        last = np.where(z.detach().numpy() > 0.5, t, last)
        uge = uge + delivered(xs, t, we)
        ugi = ugi + delivered(xs, t, wi)
        uo = vo * np.exp(-DT / 0.02) + delivered(zs, t, wo)
        v, ge, gi, vo = u * (1 - z), uge, ugi, uo
        ys.append(vo)
    logits = torch.stack(ys).mean(0)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 4
    assert float(torch.stack(zs).detach().sum()) > 10
    assert len(np.unique(fit.tables["exc"]["delays"])) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_on_spikes_and_a_silent_readout_of_states(backend):
    """A spike-count loss: the gradient enters through the spikes' adjoint."""
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=9)
    x = net.input("x", 4)
    h = net.population("h", LIF, 5, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
    net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(4.0, 2.0)), name="in")
    fit = sg.BPTT(net, loss=sg.losses.spike_count(h.spikes), backend=backend)
    data = (np.random.default_rng(4).random((30, 2, 4)) < 0.4).astype(float)
    target = np.full((2, 5), 2.0)
    p = trained(fit)
    w = dense(fit, "in", p["in.w"])
    phi = lif_propagators(torch.full((5,), 0.02, dtype=torch.float64),
                          torch.full((5,), 0.005, dtype=torch.float64))
    v = torch.zeros(2, 5, dtype=torch.float64)
    i = torch.zeros_like(v)
    xs, count = [], 0.0
    for t in range(30):
        xs.append(torch.as_tensor(data[t]))
        u = phi[:, 0, 0] * v + phi[:, 0, 1] * i
        z = Spike.apply(u - 1.0)
        i = phi[:, 1, 1] * i + delivered(xs, t, w)
        v = u * (1 - z)
        count = count + z
    loss = torch.mean((count - torch.as_tensor(target)) ** 2)
    assert compare(fit, p, loss, {"x": data}, target) == 1


def test_training_lowers_the_loss_and_predicts():
    net, o = two_population_net(seed=1, batch=8)
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="max"),
                  optimizer=sg.train.Adam(3e-2))
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 3
    rates = np.array([[0.6, 0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.6, 0.1, 0.1],
                      [0.1, 0.1, 0.1, 0.1, 0.6, 0.6]])
    data = (rng.random((30, 24, 6)) < rates[labels][None]).astype(float)
    before = fit.params["out.w"].copy()
    history = fit.fit({"x": data}, labels, epochs=15)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert not np.array_equal(before, fit.params["out.w"])
    assert np.mean(fit.predict({"x": data}) == labels) > 0.6


def test_checks_name_what_is_wrong():
    net, o = two_population_net()
    with pytest.raises(InvalidValueError, match="sg.losses"):
        sg.BPTT(net, loss="cross_entropy")
    with pytest.raises(InvalidValueError, match="backend must be"):
        sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), backend="gpu")
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v))
    good = np.zeros((10, 3, 6))
    with pytest.raises(InvalidValueError, match="'y' is not an input"):
        fit.loss_and_grads({"x": good, "y": good}, np.zeros(3, int))
    with pytest.raises(ShapeError, match=r"\(steps, batch, 6\)"):
        fit.loss_and_grads({"x": np.zeros((10, 3, 7))}, np.zeros(3, int))
    bad = good.copy()
    bad[2, 1, 3] = 0.5
    with pytest.raises(InvalidValueError, match=r"entry \(2, 1, 3\) is 0.5;"):
        fit.loss_and_grads({"x": bad}, np.zeros(3, int))
    with pytest.raises(ShapeError, match="labels"):
        fit.fit({"x": good}, np.zeros(4, int))
    untrained = sg.Network(dt=DT)
    xi = untrained.input("x", 2)
    hh = untrained.population("h", LIF, 2, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
    untrained.connect(xi, hh, "I += w", w=1.0)
    with pytest.raises(SnngenError, match="nothing is trained"):
        sg.BPTT(untrained, loss=sg.losses.spike_count(hh.spikes))
    with pytest.raises(SnngenError, match="input fed per run"):
        untrained.build()


@pytest.mark.parametrize("statement, match", [
    ("I += w * v_pre", "reads 'v_pre'"),
    ("I += exp(w * v_post)", "not a product of a value of the synapse"),
    ("v += w * v_post", "which synaptic statements into 'h' also change"),
    ("I = w", "'=' is not differentiated"),
    ("tau += w", "not a state variable"),
])
def test_statements_that_cannot_be_differentiated_are_named(statement, match):
    net = sg.Network(dt=DT)
    x = net.input("x", 2)
    h = net.population("h", LIF, 2, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
    net.connect(x, h, statement, w=sg.Trainable(1.0))
    with pytest.raises(SnngenError, match=match) as err:
        sg.BPTT(net, loss=sg.losses.spike_count(h.spikes))
    assert statement in str(err.value)


def test_soft_spike_gradients_of_two_populations_equal_finite_differences():
    """Soft forward spikes make the network smooth: the derived gradients equal central
    finite differences of the loss (float64, 1e-6 relative)."""
    net, o = two_population_net(seed=4, batch=2)
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), soft_beta=4.0)
    data = (np.random.default_rng(6).random((25, 2, 6)) < 0.3).astype(float)
    labels = np.array([2, 0])
    _, grads = fit.loss_and_grads({"x": data}, labels)
    rng = np.random.default_rng(0)
    checked = 0
    for key, value in fit.params.items():
        flat = value.reshape(-1)
        for idx in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            eps = 1e-6 * max(1.0, abs(flat[idx]))
            keep = flat[idx]
            flat[idx] = keep + eps
            up, _ = fit.loss_and_grads({"x": data}, labels)
            flat[idx] = keep - eps
            down, _ = fit.loss_and_grads({"x": data}, labels)
            flat[idx] = keep
            numeric = (up - down) / (2 * eps)
            analytic = grads[key].reshape(-1)[idx]
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9), (key, idx)
            checked += abs(numeric) > 1e-6
    assert checked >= 12


def test_show_prints_the_learning_pipeline_of_a_network():
    net, o = two_population_net()
    text = sg.show(net, "learning", file=open("/dev/null", "w"))
    assert "population h2 ('adaptive')" in text and "delivery ff: h1 -> h2.v += w" in text
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v))
    assert sg.show(fit, file=open("/dev/null", "w")) == text
    assert "def backward(" in sg.show(fit, "source", file=open("/dev/null", "w"))


NOISY = sg.NeuronModel("""
    dv/dt = (I - v) / tau + sigma * sqrt(2 / tau) * xi : 1
    dI/dt = -I / taus : 1
""", threshold="v > 1", reset="v = 0", name="noisy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_white_noise_is_a_fixed_input_of_the_run(backend):
    """A noisy LIF (Euler-Maruyama): the run's standard normal draws are a fixed input, the
    noise coefficient sigma*sqrt(2/tau) is differentiated (tau trains through it too)."""
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=8)
    x = net.input("x", 4)
    h = net.population("h", NOISY, 6, params={"tau": sg.Trainable(0.02), "taus": 0.005,
                                              "sigma": sg.Trainable(0.3)})
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 1.0)), name="in")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    assert "noise inputs: _N_xi" in sg.show(fit, file=open("/dev/null", "w"))
    steps = 40
    data = (np.random.default_rng(3).random((steps, 2, 4)) < 0.4).astype(float)
    labels = np.array([1, 0])
    draws = np.random.default_rng([8, 1]).standard_normal((steps, 2, 1, 6))[:, :, 0]
    p = trained(fit)
    w_in, w_out = dense(fit, "in", p["in.w"]), dense(fit, "out", p["out.w"])
    v = torch.zeros(2, 6, dtype=torch.float64)
    i = torch.zeros_like(v)
    vo = torch.zeros(2, 2, dtype=torch.float64)
    xs, zs, ys = [], [], []
    for t in range(steps):
        xs.append(torch.as_tensor(data[t]))
        tau = p["h.tau"]
        u = v + DT * (i - v) / tau + p["h.sigma"] * torch.sqrt(2 / tau) * np.sqrt(DT) \
            * torch.as_tensor(draws[t])
        z = Spike.apply(u - 1.0)
        zs.append(z)
        i = i - DT * i / 0.005 + delivered(xs, t, w_in)
        vo = vo * np.exp(-DT / 0.02) + delivered(zs, t, w_out)
        v = u * (1 - z)
        ys.append(vo)
    loss = torch.nn.functional.cross_entropy(torch.stack(ys).mean(0), torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 4
    # the next run draws new noise: another loss for the same inputs
    again, _ = fit.loss_and_grads({"x": data}, labels)
    assert again != pytest.approx(loss.item(), rel=1e-6)


def test_fit_batches_targets_of_every_loss():
    """mse targets run over samples along axis 1 (steps, samples, neurons), spike counts
    along axis 0: fit slices each along its own axis."""
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=9)
    x = net.input("x", 3)
    h = net.population("h", LIF, 4, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(4.0, 1.0)))
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)))
    data = (np.random.default_rng(0).random((20, 5, 3)) < 0.4).astype(float)
    fit = sg.BPTT(net, loss=sg.losses.mse(o.v), optimizer=sg.Adam(1e-2))
    history = fit.fit({"x": data}, np.full((20, 5, 2), 0.5), epochs=3)
    assert history[-1]["loss"] < history[0]["loss"]
    assert fit.fit({"x": data}, np.full((20, 5, 2), 0.5), epochs=0) == []  # as Trainer.fit
    with pytest.raises(ShapeError, match="axis 1 of the labels"):
        fit.fit({"x": data}, np.zeros((20, 4, 2)))
    counts = sg.BPTT(net, loss=sg.losses.spike_count(h.spikes))
    assert len(counts.fit({"x": data}, np.full((5, 4), 1.0), epochs=1)) == 1


def test_network_cuda_source_compiles_for_the_gpu(tmp_path, monkeypatch):
    """The generated CUDA C of a network (refractoriness, noise, conductances, silent
    readout) compiles for the GPU in both precisions (NVRTC or nvcc)."""
    from snngen.backends.cuda.learning import render
    from snngen.derive.network import derive_network
    if not compiler.available():
        pytest.skip("no NVRTC and no nvcc")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    net = sg.Network(dt=DT, batch=2, seed=1)
    x = net.input("x", 4)
    c = net.population("c", COBA, 5, params={"Ee": 3.0, "Ei": -1.0, "El": 0.0, "tau": 0.02,
                                             "taue": 0.005, "taui": 0.01}, method="euler")
    h = net.population("h", NOISY, 5, params={"tau": 0.02, "taus": 0.005, "sigma": 0.1})
    o = net.population("o", LEAKY, 2, params={"tau": 0.02})
    net.connect(x, c, "ge += w", w=sg.Trainable(1.0))
    net.connect(c, h, "I += w", w=sg.Trainable(1.0), delay="(i + 1) * ms")
    net.connect(h, o, "v += w", w=sg.Trainable(1.0))
    nlm = derive_network(net)
    for dtype, online in (("float32", True), ("float64", False)):  # online: the Jacobians too
        source, names = render(nlm, net, dtype, online=online)
        path, new = compiler.compile_cubin(source, "sm_90", dtype)
        assert new and path.stat().st_size > 1000
        assert {"thr_c", "adj_h", "deliver_back"} <= set(names)
        assert ({"jac_c", "jac_h", "jac_o"} <= set(names)) == online


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpointed_runs_give_the_same_gradients(backend):
    """checkpoint_every: the tape of one segment, each recomputed from its checkpoint (the
    state, refractory clocks and inputs in flight through delays): the same loss and
    gradients as the whole run's tape, for segments that cut through delays."""
    net, o = coba_net(recurrent=True)
    data = (np.random.default_rng(2).random((45, 2, 5)) < 0.35).astype(float)
    labels = np.array([1, 0])
    out = []
    for every in (None, 7, 45):
        fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend,
                      checkpoint_every=every)
        out.append(fit.loss_and_grads({"x": data}, labels))
    (l0, g0) = out[0]
    assert sum(g0["exc.w"] != 0) > 3 and np.any(g0["rec.w"] != 0)
    for loss, grads in out[1:]:
        assert loss == pytest.approx(l0, rel=1e-13)
        for k in g0:
            np.testing.assert_allclose(grads[k], g0[k], rtol=1e-12, atol=1e-15, err_msg=k)
    with pytest.raises(InvalidValueError, match="checkpoint_every"):
        sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), checkpoint_every=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_trained_initial_states_equal_pytorch(backend):
    """init={"v": sg.Trainable(...)}: the same initial value in every trial, its gradient
    the adjoint of the state before step 0 summed over trials (and neurons if shared)."""
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=9)
    x = net.input("x", 4)
    h = net.population("h", LIF, 5, params={"tau": 0.02, "taus": 0.005, "vt": 1.0},
                       init={"v": sg.Trainable(0.5)})
    # per neuron: one shared value would shift every class alike (no gradient through softmax)
    o = net.population("o", LEAKY, 2, params={"tau": 0.02},
                       init={"v": sg.Trainable([0.1, -0.2], per_neuron=True)})
    net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(4.0, 2.0)), name="in")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    assert fit.params["h.v0"].shape == () and fit.params["o.v0"].shape == (2,)
    data = (np.random.default_rng(4).random((30, 2, 4)) < 0.4).astype(float)
    labels = np.array([1, 0])
    p = trained(fit)
    w_in, w_out = dense(fit, "in", p["in.w"]), dense(fit, "out", p["out.w"])
    phi = lif_propagators(torch.full((5,), 0.02, dtype=torch.float64),
                          torch.full((5,), 0.005, dtype=torch.float64))
    v = p["h.v0"].expand(2, 5)
    i = torch.zeros(2, 5, dtype=torch.float64)
    vo = p["o.v0"].expand(2, 2)
    xs, zs, ys = [], [], []
    for t in range(30):
        xs.append(torch.as_tensor(data[t]))
        u = phi[:, 0, 0] * v + phi[:, 0, 1] * i
        z = Spike.apply(u - 1.0)
        zs.append(z)
        i = phi[:, 1, 1] * i + delivered(xs, t, w_in)
        v = u * (1 - z)
        vo = vo * np.exp(-DT / 0.02) + delivered(zs, t, w_out)
        ys.append(vo)
    loss = torch.nn.functional.cross_entropy(torch.stack(ys).mean(0), torch.as_tensor(labels))
    assert compare(fit, p, loss, {"x": data}, labels) == 4
    with pytest.raises(InvalidValueError, match="same in every trial"):
        net.population("bad", LEAKY, 2, params={"tau": 0.02},
                       init={"v": sg.Trainable(sg.Normal(0, 1))})


def test_first_use_says_what_it_compiles(capsys, tmp_path, monkeypatch):
    """Kernels not in the cache yet: the first forward and backward passes say on stderr
    what they compile and how long it took; the next BPTT of the same network says nothing."""
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))  # a cold cache, whatever ran before
    lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0", name="compile_message_lif")
    net = sg.Network(dt=DT, batch=1, seed=1)
    x = net.input("x", 2)
    h = net.population("h", lif, 3, params={"tau": 0.02, "taus": 0.005})
    net.connect(x, h, "I += w", w=sg.Trainable(2.0))
    data = np.ones((5, 1, 2))
    sg.BPTT(net, loss=sg.losses.spike_count(h.spikes)).loss_and_grads({"x": data},
                                                                      np.ones((1, 3)))
    err = capsys.readouterr().err
    assert "compiling the forward pass of the BPTT kernels of 1 population(s)" in err
    assert "compiled the backward pass in" in err
    sg.BPTT(net, loss=sg.losses.spike_count(h.spikes)).loss_and_grads({"x": data},
                                                                      np.ones((1, 3)))
    assert capsys.readouterr().err == ""


def test_surrogates_take_their_parameters():
    """sg.surrogate(name, **params) wherever a surrogate name is accepted: the derived
    step uses the given parameters; unknown names and parameters are refused."""
    from snngen.derive import derive
    from snngen.integrate import discretise
    sharp = sg.surrogate("fast_sigmoid", beta=25)
    assert str(sharp) == "fast_sigmoid(beta=25)" and sharp.key == "fast_sigmoid__beta_25"
    lm = derive(discretise(LIF), inputs=["I"], surrogate=sharp)
    g = sp.Symbol("g", real=True)
    from snngen.derive.surrogate import surrogate_function
    assert sp.simplify(surrogate_function(lm.surrogate).expression(g)
                       - 1 / (25 * sp.Abs(g) + 1) ** 2) == 0
    with pytest.raises(SnngenError, match="has no parameter 'gamma'"):
        sg.surrogate("fast_sigmoid", gamma=1)
    with pytest.raises(SnngenError, match="unknown surrogate 'fast_sigmod'.*fast_sigmoid"):
        sg.surrogate("fast_sigmod")
    with pytest.raises(SnngenError, match="finite number > 0"):
        sg.surrogate("triangle", gamma=-1)
    # a network trains with it: its gradients differ from the default beta's
    net, o = two_population_net()
    data = (np.random.default_rng(1).random((20, 3, 6)) < 0.3).astype(float)
    grads = [sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), surrogate=s).loss_and_grads(
        {"x": data}, np.array([0, 2, 1]))[1]["in.w"] for s in ("fast_sigmoid", sharp)]
    assert not np.allclose(grads[0], grads[1])
    # the RecurrentClassifier takes it too
    from snngen.train import RecurrentClassifier
    clf = RecurrentClassifier(LIF, "I", 3, 4, 2, params={"tau": 0.02, "taus": 0.005,
                                                        "vt": 1.0}, surrogate=sharp)
    assert clf.lm.surrogate == sharp


def test_a_spike_source_trains_like_the_same_spikes_fed_as_an_input():
    times, idx = np.array([0.0, 0.0021, 0.0035, 0.0102, 0.0199]), np.array([0, 2, 1, 2, 0])
    raster = np.zeros((25, 2, 3))
    for k, t in zip(idx, times):
        raster[int(np.floor(t / DT + 1e-3)), :, k] = 1

    def build(source: bool):
        net = sg.Network(dt=DT, batch=2, dtype="float64", seed=4)
        x = net.input("x", 2)
        s = net.spike_source("s", 3, idx, times) if source else net.input("s", 3)
        h = net.population("h", LIF, 4, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
        net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 1.0)), name="a")
        net.connect(s, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 1.0)), name="b")
        return sg.BPTT(net, loss=sg.losses.spike_count(h.spikes))
    data = (np.random.default_rng(0).random((25, 2, 2)) < 0.3).astype(float)
    target = np.full((2, 4), 2.0)
    l1, g1 = build(True).loss_and_grads({"x": data}, target)
    l2, g2 = build(False).loss_and_grads({"x": data, "s": raster}, target)
    assert l1 == l2 and np.any(g1["b.w"] != 0)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_a_poisson_group_trains_as_its_drawn_spikes_fed_as_an_input():
    """A Poisson group is an input of each run, drawn by fit.poisson_rng (spike when a
    uniform draw < rate * dt): the same gradients as those spikes fed as an input; online
    too; and the draws have the group's rates."""
    rates = np.array([50.0, 200.0, 400.0])

    def build(poisson: bool, trainer=sg.BPTT):
        net = sg.Network(dt=DT, batch=2, dtype="float64", seed=4)
        x = net.input("x", 2)
        s = net.poisson("s", 3, rates) if poisson else net.input("s", 3)
        h = net.population("h", LIF, 4, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
        o = net.population("o", LEAKY, 2, params={"tau": 0.02})
        net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 1.0)), name="a")
        net.connect(s, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 1.0)), name="b")
        net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="c")
        return trainer(net, loss=sg.losses.cross_entropy(o.v, over="each"), progress=False)
    data = (np.random.default_rng(0).random((40, 2, 2)) < 0.3).astype(float)
    labels = np.array([0, 1])
    drawn = (np.random.default_rng([4, 3]).random((40, 2, 3)) < rates * DT).astype(float)
    for trainer in (sg.BPTT, sg.Online):
        fit = build(True, trainer)
        l1, g1 = fit.loss_and_grads({"x": data}, labels)
        l2, g2 = build(False, trainer).loss_and_grads({"x": data, "s": drawn}, labels)
        assert l1 == l2 and np.any(g1["b.w"] != 0)
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])
    many = (fit.poisson_rng.random((20000, 3)) < rates * DT).mean(axis=0) / DT
    np.testing.assert_allclose(many, rates, rtol=0.15)


@pytest.mark.parametrize("targets", ["20*ms", [[1.0, np.nan, 0, 0]], {"a": 1}, None])
def test_targets_of_count_and_mse_losses_are_checked(targets):
    """Found by the fuzz property of sg.BPTT: a quantity string as spike-count targets
    reached NumPy's float conversion (a ValueError)."""
    net = sg.Network(dt=DT, batch=1, seed=3)
    x = net.input("x", 2)
    h = net.population("h", LIF, 4, params={"tau": 0.02, "taus": 0.005, "vt": 1.0})
    net.connect(x, h, "I += w", w=sg.Trainable(1.0))
    loss = sg.losses.spike_count(h.spikes)
    with pytest.raises(InvalidValueError, match="spike_count: targets"):
        loss({h.spikes: np.zeros((3, 1, 4))}, targets)


def test_propagators_of_untrained_populations_are_computed_once(monkeypatch):
    """A population with nothing trained keeps its propagators between runs (a matrix
    exponential per neuron and run otherwise); trained ones and changed values are computed
    again, and the gradients do not change."""
    import snngen.train.network as network
    net, o = two_population_net()
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v), progress=False)
    calls = []
    real = network.propagator_values
    monkeypatch.setattr(network, "propagator_values",
                        lambda lm, *a: calls.append(lm.discrete.model.name) or real(lm, *a))
    data = (np.random.default_rng(0).random((12, 3, 6)) < 0.4).astype(np.float64)
    labels = np.array([0, 1, 2])
    first = fit.loss_and_grads({"x": data}, labels)[1]
    second = fit.loss_and_grads({"x": data}, labels)[1]
    # h1 (tau trained) and o (tau trained) each run; h2 (adaptive, nothing trained) once
    assert sorted(calls) == ["adaptive", "leaky", "leaky", "lif", "lif"]
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
    net.populations["h2"].params["taub"] = 0.05  # a changed value is seen
    fit.loss_and_grads({"x": data}, labels)
    assert calls.count("adaptive") == 2
