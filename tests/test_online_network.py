"""Online rules on declared networks (issue 20, ``sg.Online``): every rule on a graph of two
populations (a recurrent hidden population with a delay, a readout, a skip projection)
equals a NumPy reference written here from the rules' equations (float64, 1e-9), e-prop
with its defaults equals Bellec et al. 2020's equations, and where a rule is exact (a hidden
population without recurrence feeding a linear readout) it equals BPTT.
"""

import numpy as np
import pytest

import snngen as sg
from snngen.errors import InvalidValueError, SnngenError

DT = 1e-3
LIF = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v -= 1", name="lif1")
LEAKY = sg.NeuronModel("dv/dt = -v / tau : 1", name="leaky")
TAU_H, TAU_O = 0.02, 0.03
ES_DECAY = 0.98  # es_d_rtrl's default smoothing


def graph(seed=4, batch=3, delay_out=0):
    """x -> h (LIF, reset by subtraction; recurrent, one step of delay) -> o (leaky
    readout; ``delay_out`` steps of delay), and a skip x -> o: every weight trained."""
    net = sg.Network(dt=DT, batch=batch, dtype="float64", seed=seed)
    x = net.input("x", 5)
    h = net.population("h", LIF, 8, params={"tau": TAU_H})
    o = net.population("o", LEAKY, 3, params={"tau": TAU_O})
    net.connect(x, h, "v += w", sg.FixedProbability(0.8), w=sg.Trainable(sg.Normal(0.6, 0.4)),
                name="in")
    net.connect(h, h, "v += w", sg.FixedProbability(0.5), w=sg.Trainable(sg.Normal(0.0, 0.3)),
                delay=DT, name="rec")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out",
                delay=delay_out * DT)
    net.connect(x, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.3)), name="skip")
    return net, o


def dense(fit, proj):
    """The (n_pre, n_post) matrix of a projection's current weights."""
    table = fit.tables[proj]
    csr = table["csr"]
    m = np.zeros((csr.n_pre, csr.n_post))
    m[csr.pre_indices(), csr.indices] = fit.params[f"{proj}.w"]
    return m


def at_synapses(fit, proj, matrix, shape=None):
    """A dense matrix's entries at the projection's synapses (matrix None: a mask of shape
    ``shape`` that is True there)."""
    csr = fit.tables[proj]["csr"]
    if matrix is None:
        mask = np.zeros(shape, bool)
        mask[csr.pre_indices(), csr.indices] = True
        return mask
    return matrix[csr.pre_indices(), csr.indices]


def fast_sigmoid(g):
    return 1.0 / (10.0 * np.abs(g) + 1.0) ** 2


def bellec(g, gamma=0.3, v_th=1.0):
    """Bellec et al. 2020's pseudo-derivative of z = H(v - v_th), at g = v - v_th."""
    return gamma * np.maximum(0.0, 1.0 - np.abs(g) / v_th)


def per_step_loss(y, labels, t, steps, kind):
    """(value, d value / d y) of step t: softmax cross-entropy averaged over steps and trials,
    or the squared error averaged over every entry."""
    if kind == "mse":
        diff = y - labels[t]
        return (diff ** 2).sum() / (diff.size * steps), 2 * diff / (diff.size * steps)
    p = np.exp(y - y.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(y.shape[0])
    value = -np.log(p[rows, labels]).sum() / (y.shape[0] * steps)
    p[rows, labels] -= 1
    return value, p / (y.shape[0] * steps)


def reference(fit, x, labels, rule, kind="ce", feedback=None, update_every=None, lr=0.0,
              delay_out=0):
    """The rule written from its equations for this graph (h: one state, v(t+1) = alpha v(t)
    + input - z(t), z(t) = H(alpha v(t) - 1); o: y(t+1) = kappa y(t) + input):

    - eligibility vectors of h's synapses, eps(t+1) = J eps(t) + (presynaptic spike), with
      J = alpha (1 - psi) (reset differentiated: ostl, d_rtrl) or alpha (eprop: reset
      detached; rflo, superspike: the leak);
    - traces e = alpha psi eps, carried by the readout's decay (eprop, ostl, rflo), by nothing
      (d_rtrl) or by SuperSpike's two filters, against the signal L = B dl/dy;
    - the readout's synapses: exact, eps_o(t+1) = kappa eps_o(t) + (presynaptic value).

    With ``update_every``, every weight moves by ``-lr`` times its gradient every that many
    steps (not after the last step; the network and the traces run on), and the weights after
    the sequence are returned too (the last gradients applied), as sg.SGD(lr) gives them.

    With ``delay_out`` steps of delay on h -> o, the readout gets h's spikes that much later,
    so each hidden trace e enters the filters that much later (DECOLLE's local readouts
    have no delay)."""
    w = {k: dense(fit, k) for k in ("in", "rec", "out", "skip")}
    mask = {k: at_synapses(fit, k, None, m.shape) for k, m in w.items()}
    w_in, w_rec, w_out, w_skip = w["in"], w["rec"], w["out"], w["skip"]
    alpha, kappa = np.exp(-DT / TAU_H), np.exp(-DT / TAU_O)
    surrogate = bellec if rule == "eprop" else fast_sigmoid
    steps, batch, n_in = x.shape
    n_h, n_o = w_in.shape[1], w_out.shape[1]
    decays = [np.exp(-DT / 5e-3), np.exp(-DT / 10e-3)]
    v, y, z_prev = np.zeros((batch, n_h)), np.zeros((batch, n_o)), np.zeros((batch, n_h))
    arriving = np.zeros((batch, n_h))  # the delayed recurrent input, valued when sent
    eps_in, eps_rec = np.zeros((batch, n_in, n_h)), np.zeros((batch, n_h, n_h))
    f_in = [np.zeros((batch, n_in, n_h)) for _ in range(2)]   # filters (es_d_rtrl: the
    f_rec = [np.zeros((batch, n_h, n_h)) for _ in range(2)]   # traces x_j and ef_i)
    eps_out, eps_skip = np.zeros((batch, n_h, n_o)), np.zeros((batch, n_in, n_o))
    g = {k: 0.0 for k in ("in", "rec", "out", "skip")}
    total = 0.0
    lag = 0 if rule == "decolle" else delay_out
    hist: dict = {}

    def late(key, value, steps_ago=None):
        """``value`` of ``steps_ago`` (default ``lag``) steps ago (zeros before), for the
        series ``key``."""
        back = lag if steps_ago is None else steps_ago
        hist.setdefault(key, []).append(value)
        return hist[key][-1 - back] if len(hist[key]) > back else np.zeros_like(value)

    for t in range(steps):
        u = alpha * v
        z = (u - 1.0 > 0).astype(float)
        jz = alpha * surrogate(u - 1.0)                      # dz(t)/dv(t)
        jac = alpha - jz if rule in ("ostl", "d_rtrl", "es_d_rtrl") else np.full_like(u, alpha)
        v = u + x[t] @ w_in + arriving - z
        z_out = late("z", z, delay_out)  # h's spikes as the readout gets them
        y = kappa * y + z_out @ w_out + x[t] @ w_skip
        value, dly = per_step_loss(y, labels, t, steps, kind)
        total += value
        signal = dly @ (w_out if feedback is None else feedback).T  # (batch, n_h)
        if rule == "decolle":  # the population's own fixed random readout of its spikes
            signal = per_step_loss(z @ feedback, labels, t, steps, kind)[1] @ feedback.T
        traces = []
        for key, (eps, f, pre) in enumerate(((eps_in, f_in, x[t]), (eps_rec, f_rec, z_prev))):
            if rule == "es_d_rtrl":  # eps ~ ef_i x_j: f[0] holds x_j, f[1][:, 0] ef_i
                ef, xj = f[1][:, 0, :], f[0][:, :, 0]
                traces.append(late(key, jz[:, None, :] * ef[:, None, :] * xj[:, :, None]))
                f[1][:, 0, :] = ES_DECAY * jac * ef + (1 - ES_DECAY)
                f[0][:, :, 0] = ES_DECAY * xj + pre
                continue
            e = late(key, jz[:, None, :] * eps)
            eps[...] = jac[:, None, :] * eps + pre[:, :, None]
            if rule in ("eprop", "ostl", "rflo"):
                f[0][...] = kappa * f[0] + e
                traces.append(f[0].copy())
            elif rule in ("d_rtrl", "ottt", "decolle"):  # this step's signal only
                traces.append(e)
            else:  # superspike: the van Rossum kernel, two exponential filters in cascade
                f[0][...] = decays[0] * f[0] + e
                f[1][...] = decays[1] * f[1] + f[0]
                traces.append(f[1].copy())
        g["in"] = g["in"] + (traces[0] * signal[:, None, :]).sum(axis=0)
        g["rec"] = g["rec"] + (traces[1] * signal[:, None, :]).sum(axis=0)
        eps_out = kappa * eps_out + z_out[:, :, None]
        eps_skip = kappa * eps_skip + x[t][:, :, None]
        g["out"] = g["out"] + (eps_out * dly[:, None, :]).sum(axis=0)
        g["skip"] = g["skip"] + (eps_skip * dly[:, None, :]).sum(axis=0)
        z_prev, arriving = z, z @ w_rec
        if update_every and (t + 1) % update_every == 0 and t + 1 < steps:
            for k in w:  # in place: the names above see the new weights
                w[k] -= lr * g[k] * mask[k]
                g[k] = 0.0
    grads = {f"{k}.w": at_synapses(fit, k, m) for k, m in g.items()}
    if update_every:
        return total, grads, {f"{k}.w": at_synapses(fit, k, w[k] - lr * g[k])
                              for k in w}
    return total, grads


def inputs(seed=1, steps=40, batch=3, n=5):
    return (np.random.default_rng(seed).random((steps, batch, n)) < 0.3).astype(float)


def assert_equal(value, grads, ref_value, ref):
    assert value == pytest.approx(ref_value, rel=1e-12)
    for k, r in ref.items():
        scale = np.abs(r).max()
        assert scale > 0, f"{k}: no gradient reaches it (a vacuous check)"
        assert np.abs(grads[k] - r).max() <= 1e-9 * scale, k


@pytest.mark.parametrize("backend", ["numba", "cuda-host"])
@pytest.mark.parametrize("rule", ["eprop", "ostl", "rflo", "superspike", "d_rtrl",
                                  "es_d_rtrl", "ottt", "decolle"])
def test_every_rule_on_two_populations_equals_its_numpy_reference(rule, backend):
    """On the Numba kernels and on the CUDA kernels compiled for the CPU (cuda-host)."""
    net, o = graph()
    loss = sg.losses.cross_entropy(o.v, over="each")
    fit = sg.Online(net, loss, rule=rule, progress=False, backend=backend,
                    surrogate=None if rule == "eprop" else "fast_sigmoid")
    x, labels = inputs(), np.array([0, 2, 1])
    value, grads = fit.loss_and_grads({"x": x}, labels)
    assert_equal(value, grads, *reference(fit, x, labels, rule,
                                          feedback=fit.feedback.get("h")))


@pytest.mark.parametrize("rule, backend", [("eprop", "numba"), ("ostl", "numba"),
                                           ("superspike", "numba"), ("eprop", "cuda-host")])
def test_updates_within_a_sequence_equal_the_reference_with_sgd_steps(rule, backend):
    """update_every=7 over 40 steps: five SGD steps within the sequence and one after it;
    the network and the traces run on with the new weights (symmetric feedback reads them
    too)."""
    net, o = graph()
    loss = sg.losses.cross_entropy(o.v, over="each")
    lr = 0.5
    fit = sg.Online(net, loss, rule=rule, progress=False, optimizer=sg.SGD(lr),
                    update_every=7, backend=backend,
                    surrogate=None if rule == "eprop" else "fast_sigmoid")
    x, labels = inputs(), np.array([0, 2, 1])
    ref_value, _, ref_weights = reference(fit, x, labels, rule, update_every=7, lr=lr)
    still = reference(fit, x, labels, rule, update_every=40, lr=lr)[2]  # one step, after
    history = fit.fit({"x": x}, labels, epochs=1, batch_size=3, shuffle=False)
    assert history[0]["loss"] == pytest.approx(ref_value, rel=1e-12)
    for k, r in ref_weights.items():
        assert np.abs(fit.params[k] - r).max() <= 1e-9 * np.abs(r).max(), k
        assert np.abs(r - still[k]).max() > 1e-3  # the updates within changed the outcome


def test_updates_within_a_sequence_keep_trained_parameters_valid():
    """Per-neuron time constants updated within a sequence: their synapses keep
    per-synapse eligibility (the neurons' Jacobians part), and training runs."""
    net = sg.Network(dt=DT, batch=4, dtype="float64", seed=2)
    x = net.input("x", 5)
    h = net.population("h", LIF, 6, params={"tau": sg.Trainable(TAU_H, per_neuron=True)})
    o = net.population("o", LEAKY, 2, params={"tau": sg.Trainable(TAU_O)})
    net.connect(x, h, "v += w", w=sg.Trainable(sg.Normal(0.6, 0.4)), name="in")
    net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="out")
    loss = sg.losses.cross_entropy(o.v, over="each")
    fit = sg.Online(net, loss, optimizer=sg.Adam(1e-2), update_every=5, progress=False)
    assert fit.layout()["in: v += w"] == "per synapse"
    assert sg.Online(net, loss, progress=False).layout()["in: v += w"] == "presynaptic"
    xs = inputs(seed=3, steps=30, batch=8)
    fit.fit({"x": xs}, np.arange(8) % 2, epochs=2)
    assert np.ptp(fit.params["h.tau"]) > 0 and fit.params["o.tau"] != TAU_O
    with pytest.raises(SnngenError, match="update_every"):
        sg.Online(net, loss, update_every=0, progress=False)
    # a readout decay trained per neuron would part the filter the hidden traces share after
    # one step: refused before any work (it failed in the second batch)
    def readout_tau(tau, rule="eprop"):
        net2 = sg.Network(dt=DT, batch=4, dtype="float64", seed=2)
        x2 = net2.input("x", 5)
        h2 = net2.population("h", LIF, 6, params={"tau": TAU_H})
        o2 = net2.population("o", LEAKY, 2, params={"tau": tau})
        net2.connect(x2, h2, "v += w", w=sg.Trainable(0.5))
        net2.connect(h2, o2, "v += w", w=sg.Trainable(0.5))
        return sg.Online(net2, sg.losses.cross_entropy(o2.v, over="each"), rule=rule,
                         progress=False)
    with pytest.raises(SnngenError, match="tau trains per neuron.*train it shared"):
        readout_tau(sg.Trainable(TAU_O, per_neuron=True))
    readout_tau(sg.Trainable(TAU_O, per_neuron=True), "decolle")  # local: no shared filter
    with pytest.raises(SnngenError, match="decay differs between its neurons"):
        readout_tau(np.array([TAU_O, 2 * TAU_O]))  # fixed, but not one value


def test_online_cuda_kernels_compile_for_the_gpu(tmp_path, monkeypatch):
    """The model-independent online kernels compile for the GPU in both precisions (NVRTC
    or nvcc); the networks' Jacobian kernels: tests/test_network_bptt.py."""
    from snngen.backends.cuda import compiler
    from snngen.backends.cuda.online_network import render
    if not compiler.available():
        pytest.skip("no NVRTC and no nvcc")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    for dtype in ("float32", "float64"):
        source, names = render(dtype)
        path, new = compiler.compile_cubin(source, "sm_90", dtype)
        assert new and path.stat().st_size > 1000
        assert names == ["elig", "elig_pre", "feedback", "outer"]


@pytest.mark.parametrize("rule, backend", [
    ("eprop", "numba"), ("ostl", "numba"), ("superspike", "numba"), ("d_rtrl", "numba"),
    ("es_d_rtrl", "numba"), ("decolle", "numba"), ("eprop", "cuda-host"),
    ("es_d_rtrl", "cuda-host")])
def test_a_delay_into_the_readout_delays_where_traces_meet_the_signal(rule, backend):
    """h -> o with 3 steps of delay: a hidden spike reaches the readout 3 steps later, so its
    eligibility trace enters the readout's filter 3 steps later (a ring of the last traces);
    the readout's own synapses are exact with the delay."""
    net, o = graph(delay_out=3)
    fit = sg.Online(net, sg.losses.cross_entropy(o.v, over="each"), rule=rule, progress=False,
                    backend=backend, surrogate=None if rule == "eprop" else "fast_sigmoid")
    assert "3 step(s) later" in str(fit.plan) or rule == "decolle"
    x, labels = inputs(), np.array([0, 2, 1])
    value, grads = fit.loss_and_grads({"x": x}, labels)
    assert_equal(value, grads, *reference(fit, x, labels, rule, delay_out=3,
                                          feedback=fit.feedback.get("h")))


def test_eprop_defaults_follow_bellec_with_random_feedback_and_mse():
    """Bellec et al. 2020, random e-prop: eligibility vectors eps = alpha eps + z_pre (the
    reset not differentiated), traces psi eps with the pseudo-derivative
    0.3 max(0, 1 - |v - v_th| / v_th), low-pass filtered with the readout's kappa, against
    the learning signal B (y - y*)."""
    net, o = graph(seed=6)
    fit = sg.Online(net, sg.losses.mse(o.v), rule="eprop", feedback="random", progress=False)
    assert "Bellec (gamma 0.3)" in str(fit.plan) and "feedback random" in str(fit.plan)
    assert fit.feedback["h"].shape == (8, 3)
    x = inputs(seed=2)
    targets = np.random.default_rng(3).normal(size=(40, 3, 3))
    value, grads = fit.loss_and_grads({"x": x}, targets)
    assert_equal(value, grads, *reference(fit, x, targets, "eprop", "mse", fit.feedback["h"]))


def feedforward(per_neuron, refractory=False, statement="I += w", delay_out=0):
    """x -> h (two states, trained per-neuron or shared time constant; a refractory period
    of 2 ms if asked) -> o (trained tau), with a skip x -> o: no recurrence, so e-prop and
    OSTL are exact."""
    lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1 (unless refractory)\n"
                         "dI/dt = -I / taus : 1", threshold="v > 1", reset="v = 0",
                         refractory="2*ms", name="lif2r") if refractory else \
        sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1",
                       threshold="v > 1", reset="v = 0", name="lif2")
    net = sg.Network(dt=DT, batch=3, dtype="float64", seed=3)
    x = net.input("x", 6)
    net.population("h", lif, 7, params={"tau": sg.Trainable(0.02, per_neuron=per_neuron),
                                        "taus": 0.005})
    o = net.population("o", LEAKY, 3, params={"tau": sg.Trainable(0.02)})
    net.connect(x, net.populations["h"], statement, w=sg.Trainable(sg.Normal(3.0, 2.0)))
    net.connect(net.populations["h"], o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)),
                delay=delay_out * DT)
    net.connect(x, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.2)))
    return net, o


@pytest.mark.parametrize("rule, detach, kind, per_neuron, refractory, backend", [
    ("eprop", True, "ce", True, False, "numba"), ("ostl", False, "mse", False, False, "numba"),
    ("ostl", False, "ce", True, True, "numba"), ("ostl", False, "ce", True, True, "cuda-host"),
    ("eprop", True, "ce", True, False, "cuda-host")])
def test_exact_where_the_rule_is_exact_equals_bptt(rule, detach, kind, per_neuron,
                                                   refractory, backend):
    """A hidden population without recurrence that feeds a linear readout: the rule's
    gradients (weights, hidden and readout time constants) are BPTT's, with a refractory
    period too (its clock enters the Jacobians: one eligibility vector per synapse); on
    the Numba kernels and on the CUDA kernels compiled for the CPU."""
    net, o = feedforward(per_neuron, refractory)
    loss = sg.losses.cross_entropy(o.v, over="each") if kind == "ce" else sg.losses.mse(o.v)
    rng = np.random.default_rng(1)
    x = (rng.random((30, 3, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1]) if kind == "ce" else rng.normal(size=(30, 3, 3))
    online = sg.Online(net, loss, rule=rule, surrogate="fast_sigmoid", detach_reset=detach,
                       progress=False, backend=backend)
    bptt = sg.BPTT(net, loss, surrogate="fast_sigmoid", detach_reset=detach, progress=False)
    value, grads = online.loss_and_grads({"x": x}, labels)
    ref_value, ref = bptt.loss_and_grads({"x": x}, labels)
    assert sorted(grads) == sorted(ref) == ["h.tau", "h_to_o_1.w", "o.tau", "x_to_h_0.w",
                                            "x_to_o_2.w"]
    assert_equal(value, grads, ref_value, ref)


@pytest.mark.parametrize("backend", ["numba", "cuda-host"])
def test_a_delay_into_the_readout_keeps_ostl_exact(backend):
    """Without recurrence OSTL equals BPTT with 2 steps of delay into the readout too:
    weights and the hidden and readout time constants (the parameters' traces are delayed
    like the synapses')."""
    net, o = feedforward(True, delay_out=2)
    loss = sg.losses.cross_entropy(o.v, over="each")
    x = (np.random.default_rng(1).random((30, 3, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1])
    online = sg.Online(net, loss, rule="ostl", surrogate="fast_sigmoid", progress=False,
                       backend=backend)
    value, grads = online.loss_and_grads({"x": x}, labels)
    ref_value, ref = sg.BPTT(net, loss, surrogate="fast_sigmoid",
                             progress=False).loss_and_grads({"x": x}, labels)
    assert "h.tau" in ref
    assert_equal(value, grads, ref_value, ref)


@pytest.mark.parametrize("rule", ["ostl", "d_rtrl"])
def test_statements_reading_postsynaptic_state_train_online_exactly(rule):
    """'I += w * (2 - v_post)': the input's factor enters the Jacobians (d s(t+1)/d v
    holds -x); without recurrence OSTL's gradients are BPTT's, and D-RTRL's readout
    weights (d_rtrl: this step's signal, the hidden weights' gradient differs)."""
    net, o = feedforward(False, statement="I += w * (2 - v_post)")
    loss = sg.losses.cross_entropy(o.v, over="each")
    x = (np.random.default_rng(1).random((30, 3, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1])
    online = sg.Online(net, loss, rule=rule, surrogate="fast_sigmoid", progress=False)
    bptt = sg.BPTT(net, loss, surrogate="fast_sigmoid", progress=False)
    value, grads = online.loss_and_grads({"x": x}, labels)
    ref_value, ref = bptt.loss_and_grads({"x": x}, labels)
    exact = sorted(ref) if rule == "ostl" else ["h_to_o_1.w", "o.tau", "x_to_o_2.w"]
    assert_equal(value, {k: grads[k] for k in exact}, ref_value, {k: ref[k] for k in exact})
    assert np.abs(ref["x_to_h_0.w"]).max() > 0


def test_time_varying_inputs_train_online():
    """A TimedArray current into the hidden population is a fixed input of each step: OSTL
    equals BPTT without recurrence; RFLO's leak (at rest: no drive) runs beside it."""
    model = sg.NeuronModel("dv/dt = (I + I_ext - v) / tau : 1\ndI/dt = -I / taus : 1",
                           threshold="v > 1", reset="v = 0", name="lif2t")
    current = np.random.default_rng(5).uniform(0.0, 1.5, (10, 7))

    def build(tau):
        net = sg.Network(dt=DT, batch=3, dtype="float64", seed=3)
        x = net.input("x", 6)
        h = net.population("h", model, 7, params={"tau": tau, "taus": 0.005,
                                                  "I_ext": sg.TimedArray(current, 3 * DT)})
        o = net.population("o", LEAKY, 3, params={"tau": 0.02})
        net.connect(x, h, "I += w", w=sg.Trainable(sg.Normal(3.0, 2.0)))
        net.connect(h, o, "v += w", w=sg.Trainable(sg.Normal(0.0, 0.5)))
        return net, sg.losses.cross_entropy(o.v, over="each")
    xs = (np.random.default_rng(1).random((30, 3, 6)) < 0.3).astype(float)
    labels = np.array([0, 2, 1])
    net, loss = build(sg.Trainable(0.02))
    value, grads = sg.Online(net, loss, rule="ostl", surrogate="fast_sigmoid",
                             progress=False).loss_and_grads({"x": xs}, labels)
    ref_value, ref = sg.BPTT(net, loss, surrogate="fast_sigmoid",
                             progress=False).loss_and_grads({"x": xs}, labels)
    assert_equal(value, grads, ref_value, ref)
    net, loss = build(0.02)  # RFLO has no parameter eligibility
    _, rflo = sg.Online(net, loss, rule="rflo", progress=False).loss_and_grads({"x": xs},
                                                                               labels)
    assert all(np.all(np.isfinite(g)) and np.any(g != 0) for g in rflo.values())


def test_online_training_lowers_the_loss():
    net, o = graph(seed=8, batch=8)
    fit = sg.Online(net, sg.losses.cross_entropy(o.v, over="each"), rule="eprop",
                    optimizer=sg.Adam(2e-2), progress=False)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 32)
    rates = np.array([[0.6, 0.1, 0.1, 0.4, 0.0], [0.1, 0.6, 0.1, 0.0, 0.4],
                      [0.1, 0.1, 0.6, 0.2, 0.2]])[labels]
    x = (rng.random((30, 32, 5)) < rates[None]).astype(float)
    history = fit.fit({"x": x}, labels, epochs=6)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert (fit.predict({"x": x}) == labels).mean() > 0.6


def refused(build, match, **kw):
    net, loss = build()
    with pytest.raises((SnngenError, InvalidValueError), match=match):
        sg.Online(net, loss, progress=False, **kw)


def test_where_a_rule_does_not_apply_it_says_why():
    def base(readout=LEAKY, hidden_params=None, into_readout=True, delay=0.0):
        net = sg.Network(dt=DT, batch=2, dtype="float64")
        x = net.input("x", 3)
        h = net.population("h", LIF, 4, params=hidden_params or {"tau": TAU_H})
        o = net.population("o", readout, 2, params={"tau": TAU_O})
        net.connect(x, h, "v += w", w=sg.Trainable(0.5))
        if into_readout:
            net.connect(h, o, "v += w", w=sg.Trainable(0.5), delay=delay)
        else:
            net.connect(x, o, "v += w", w=sg.Trainable(0.5))
        return net, o
    ce = lambda o: sg.losses.cross_entropy(o.v, over="each")  # noqa: E731
    refused(lambda: (lambda n, o: (n, sg.losses.cross_entropy(o.v, over="max")))(*base()),
            "not a sum of per-step losses")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base(into_readout=False)),
            "no projection into the readout.*feedback='random'")

    def two_delays():  # h reaches the readout by two delays: no one lag for its traces
        net, o = base(delay=2 * DT)
        net.connect(net.populations["h"], o, "v += w", w=sg.Trainable(0.1), delay=DT,
                    name="late")
        return net, ce(o)
    refused(two_delays, "into the readout have different delays")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base(hidden_params={
        "tau": sg.Trainable(TAU_H)})), "rflo has no parameter eligibility", rule="rflo")
    nonlinear = sg.NeuronModel("dv/dt = -v**3 / tau : 1", name="cubic")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base(readout=nonlinear)), "is not linear")
    spiking = sg.NeuronModel("dv/dt = -v / tau : 1", threshold="v > 1", reset="v = 0")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base(readout=spiking)), "which spikes")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base()), "unknown online rule", rule="bp")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base()), "symmetric feedback", rule="ostl",
            feedback="random")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base()), "feedback must be", feedback="b")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base()), "backend must be", backend="jax")
    refused(lambda: (lambda n, o: (n, ce(o)))(*base()), "DECOLLE's signal", rule="decolle",
            feedback="random")

    def varied():  # per-synapse delays into a hidden population
        net, o = base()
        net.connect(net.populations["h"], net.populations["h"], "v += w",
                    w=sg.Trainable(0.1), delay=np.repeat([1, 2, 3, 4], 4) * DT, name="varied")
        return net, ce(o)
    refused(varied, "different delays per synapse", rule="es_d_rtrl")
    # the random-feedback rule and DECOLLE need no projection into the readout
    net, o = base(into_readout=False)
    fit = sg.Online(net, ce(o), feedback="random", progress=False)
    assert "random feedback" in str(fit.plan)
    fit = sg.Online(net, ce(o), rule="decolle", progress=False)
    assert "its own fixed random readout" in str(fit.plan)
    assert fit.feedback["h"].shape == (4, 2)
    # per-synapse delays train with a per-synapse eligibility where the rule allows it
    net, loss = varied()
    assert sg.Online(net, loss, progress=False).layout()["varied: v += w"] == "per synapse"


def test_show_prints_the_rule_its_plan_and_the_eligibility_layout():
    """Where the postsynaptic Jacobians are constants shared by the neurons (e-prop's
    detached reset by subtraction, the readout) a synapse's eligibility vector is its
    presynaptic neuron's; OSTL's Jacobian holds the surrogate: one vector per synapse."""
    net, o = graph()
    loss = sg.losses.cross_entropy(o.v, over="each")
    eprop = sg.Online(net, loss, rule="eprop", progress=False)
    text = sg.show(eprop)
    assert "population h ('lif1')" in text and "readout o" in text
    assert "eligibility of in: v += w: presynaptic" in text
    assert eprop.layout()["out: v += w"] == "presynaptic"
    ostl = sg.Online(net, loss, rule="ostl", surrogate="fast_sigmoid", progress=False)
    assert ostl.layout() == {"in: v += w": "per synapse", "rec: v += w": "per synapse",
                             "out: v += w": "presynaptic", "skip: v += w": "presynaptic"}


@pytest.mark.parametrize("rule", ["eprop", "es_d_rtrl"])
def test_subgroups_address_their_neurons(rule):
    """Projections between subgroups (x -> h[:4], x[1:] -> h[3:], h[2:] -> o[1:], h[:5] ->
    o): where e-prop is exact (no recurrence) it equals BPTT, which shows that every
    eligibility kernel reads and writes the subgroups' own neurons; ES-D-RTRL runs its
    factorised path on the same graph and trains the same values."""
    lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v -= 1", name="lif2s")
    net = sg.Network(dt=DT, batch=2, dtype="float64", seed=5)
    x = net.input("x", 5)
    h = net.population("h", lif, 7, params={"tau": 0.02, "taus": 0.005})
    o = net.population("o", LEAKY, 3, params={"tau": TAU_O})
    net.connect(x, h[:4], "I += w", w=sg.Trainable(sg.Normal(3.0, 2.0)), name="a")
    net.connect(x[1:], h[3:], "I += w", w=sg.Trainable(sg.Normal(3.0, 2.0)), name="b")
    net.connect(h[2:], o[1:], "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="c")
    net.connect(h[:5], o, "v += w", w=sg.Trainable(sg.Normal(0.0, 1.0)), name="d")
    loss = sg.losses.cross_entropy(o.v, over="each")
    x_run = inputs(seed=3, steps=30, batch=2)
    labels = np.array([2, 0])
    online = sg.Online(net, loss, rule=rule, surrogate="fast_sigmoid",
                       detach_reset=True, progress=False)
    value, grads = online.loss_and_grads({"x": x_run}, labels)
    if rule == "eprop":
        bptt = sg.BPTT(net, loss, surrogate="fast_sigmoid", detach_reset=True, progress=False)
        assert_equal(value, grads, *bptt.loss_and_grads({"x": x_run}, labels))
    else:
        assert sorted(grads) == ["a.w", "b.w", "c.w", "d.w"]
        assert all(np.any(g != 0) for g in grads.values())


def test_asking_for_the_layout_draws_nothing():
    """A network fed by a Poisson group too: a run after sg.show (which asks for the
    layout) is the run without it (the Poisson spikes are drawn per run)."""
    net, o = graph()
    s = net.poisson("p", 4, 300.0)
    net.connect(s, net.populations["h"], "v += w", w=sg.Trainable(0.5), name="noise")
    loss = sg.losses.cross_entropy(o.v, over="each")
    x, labels = inputs(), np.array([0, 1, 2])
    shown = sg.Online(net, loss, progress=False)
    sg.show(shown)
    plain = sg.Online(net, loss, progress=False)
    one, two = shown.loss_and_grads({"x": x}, labels), plain.loss_and_grads({"x": x}, labels)
    assert one[0] == two[0] and np.array_equal(one[1]["noise.w"], two[1]["noise.w"])
    assert np.any(one[1]["noise.w"] != 0)
