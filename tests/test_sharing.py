"""Weight-sharing rules (Conv2D, Pool2D): their synapse tables, their values in simulation,
and convolutional networks trained by BPTT with gradients summed over shared synapses
(checked against PyTorch's conv2d and pooling, float64, 1e-9)."""

import numpy as np
import pytest

import snngen as sg
from snngen import connectivity as conn
from snngen.errors import ConnectivityError


def _brute_conv(c_in, h, w, out, kernel, stride, pad):
    oh, ow = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    found = set()
    for o in range(out):
        for c in range(c_in):
            for ky in range(kernel):
                for kx in range(kernel):
                    for oy in range(oh):
                        for ox in range(ow):
                            y, x = oy * stride - pad + ky, ox * stride - pad + kx
                            if 0 <= y < h and 0 <= x < w:
                                found.add(((c * h + y) * w + x, (o * oh + oy) * ow + ox,
                                           ((o * c_in + c) * kernel + ky) * kernel + kx))
    return found


@pytest.mark.parametrize("shape, out, kernel, stride, pad", [
    ((1, 5, 5), 2, 3, 1, 1), ((2, 6, 7), 3, 3, 2, 0), ((3, 4, 4), 1, 2, 2, 1)])
def test_conv2d_table_is_the_convolution(shape, out, kernel, stride, pad):
    rule = sg.Conv2D(shape, out, kernel, stride=stride, padding=pad)
    csr = conn.build_csr(rule, rule.n_pre, rule.n_post, seed=0)
    got = set(zip(csr.pre_indices().tolist(), csr.indices.tolist(), csr.shared.tolist()))
    assert got == _brute_conv(*shape, out, kernel, stride, pad)
    assert csr.n_synapses == conn.expected_synapses(rule, rule.n_pre, rule.n_post)


def test_sizes_and_values_are_checked():
    with pytest.raises(ConnectivityError, match="postsynaptic population has 10"):
        conn.build_csr(sg.Conv2D((1, 4, 4), 2, 3, padding=1), 16, 10, seed=0)
    with pytest.raises(ConnectivityError, match="kernel"):
        sg.Conv2D((1, 2, 2), 1, 5)
    with pytest.raises(ConnectivityError, match="in_shape"):
        sg.Pool2D((4, 4), 2)
    net = sg.Network(dt=1e-3)
    src = net.spike_source("s", 16, [0], [0.0])
    lif = sg.NeuronModel("dv/dt = -v / (10*ms) : 1", threshold="v > 1", reset="v = 0")
    post = net.population("p", lif, 32)
    net.connect(src, post, "v += w", sg.Conv2D((1, 4, 4), 2, 3, padding=1), w=np.ones(5))
    with pytest.raises(ConnectivityError, match=r"shares 18 values"):
        net.build()


def test_simulation_reads_the_shared_values():
    """A spike of one pixel moves each output by the kernel entry its synapse shares."""
    net = sg.Network(dt=1e-3, dtype="float64")
    src = net.spike_source("s", 9, [4], [0.0])  # the centre pixel of 3 x 3
    leaky = sg.NeuronModel("dv/dt = -v / (10*ms) : 1")
    post = net.population("p", leaky, 18)
    kernel = np.arange(18, dtype=float)          # (2 channels, 1, 3, 3)
    net.connect(src, post, "v += w", sg.Conv2D((1, 3, 3), 2, 3, padding=1), w=kernel)
    mon = net.monitor_state(post, "v")
    net.build().run(2e-3)
    v = mon.v[0, 1]  # the step after the delivery
    # output (o, oy, ox) sees the centre pixel through tap (1 - oy + 1, 1 - ox + 1)
    expect = np.array([kernel[o * 9 + (2 - oy) * 3 + (2 - ox)]
                       for o in range(2) for oy in range(3) for ox in range(3)])
    assert np.allclose(v / v[4], expect / expect[4])


def conn_host_compiler() -> bool:
    from snngen.backends.cuda import compiler
    return compiler.shutil.which("g++") is not None


torch = pytest.importorskip("torch", reason="torch==2.13.0 (CPU) is the autodiff reference")


@pytest.mark.parametrize("backend", ["numba", "cuda-host"])
def test_convolutional_network_gradients_equal_pytorch(backend):
    from test_gradients_torch import FastSigmoidSpike as Spike
    from test_network_bptt import dense, trained
    if backend == "cuda-host" and not conn_host_compiler():
        pytest.skip("the cuda-host backend needs g++")
    dt = 1e-3
    lif = sg.NeuronModel("dv/dt = (I - v) / tau : 1\ndI/dt = -I / taus : 1",
                         threshold="v > 1", reset="v = 0", name="lif")
    leaky = sg.NeuronModel("dv/dt = -v / tau : 1", name="leaky")
    net = sg.Network(dt=dt, batch=2, dtype="float64", seed=2)
    x = net.input("x", 36)
    c = net.population("c", lif, 72, params={"tau": 0.01, "taus": 0.005})
    q = net.population("q", lif, 18, params={"tau": 0.01, "taus": 0.005})
    o = net.population("o", leaky, 3, params={"tau": 0.02})
    net.connect(x, c, "I += w", sg.Conv2D((1, 6, 6), 2, 3, padding=1),
                w=sg.Trainable(sg.Normal(1.5, 1.0)), name="conv")
    net.connect(c, q, "I += w", sg.Pool2D((2, 6, 6), 2), w=sg.Trainable(1.2), name="pool")
    net.connect(q, o, "v += w", w=sg.Trainable(sg.Normal(0, 1.0)), name="out")
    fit = sg.BPTT(net, loss=sg.losses.cross_entropy(o.v, over="mean"), backend=backend)
    assert fit.params["conv.w"].shape == (18,) and fit.params["pool.w"].shape == (1,)
    steps = 30
    data = (np.random.default_rng(5).random((steps, 2, 36)) < 0.35).astype(float)
    labels = np.array([2, 1])
    p = trained(fit)
    kernel = p["conv.w"].reshape(2, 1, 3, 3)
    w_out = dense(fit, "out", p["out.w"])
    decay_v, decay_i = np.exp(-dt / 0.01), np.exp(-dt / 0.005)
    cross = 0.005 / (0.005 - 0.01) * (np.exp(-dt / 0.005) - np.exp(-dt / 0.01))  # exact

    def lif_step(v, i, x):
        u = decay_v * v + cross * i
        z = Spike.apply(u - 1.0)
        return u * (1 - z), decay_i * i + x, z

    vc = torch.zeros(2, 72, dtype=torch.float64)
    ic = torch.zeros_like(vc)
    vq = torch.zeros(2, 18, dtype=torch.float64)
    iq = torch.zeros_like(vq)
    vo = torch.zeros(2, 3, dtype=torch.float64)
    ys, zc_all = [], []
    for t in range(steps):
        img = torch.as_tensor(data[t]).reshape(2, 1, 6, 6)
        x_c = torch.nn.functional.conv2d(img, kernel, padding=1).reshape(2, 72)
        uc = decay_v * vc + cross * ic
        zc = Spike.apply(uc - 1.0)
        zc_all.append(zc)
        pooled = 4 * torch.nn.functional.avg_pool2d(zc.reshape(2, 2, 6, 6), 2).reshape(2, 18)
        vq, iq, zq = lif_step(vq, iq, p["pool.w"] * pooled)
        vc, ic = uc * (1 - zc), decay_i * ic + x_c
        vo = vo * np.exp(-dt / 0.02) + zq @ w_out[0]
        ys.append(vo)
    loss = torch.nn.functional.cross_entropy(torch.stack(ys).mean(0), torch.as_tensor(labels))
    value, grads = fit.loss_and_grads({"x": data}, labels)
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-10)
    for k, t in p.items():
        ref = t.grad.numpy()
        assert np.abs(ref).max() > 0, k
        assert np.abs(grads[k] - ref).max() <= 1e-9 * np.abs(ref).max(), k
    assert float(torch.stack(zc_all).detach().sum()) > 20


@pytest.mark.parametrize("make", [
    lambda: sg.Conv2D((1, 4, 4), 1, 1, stride=2**63),
    lambda: sg.Conv2D((1, 4, 4), 2**40, 1),
    lambda: sg.Conv2D((70000, 70000, 1), 1, 1),
    lambda: sg.Pool2D((1, 4, 4), 2, stride=2**70),
], ids=["stride", "channels", "image", "pool_stride"])
def test_sizes_beyond_int32_are_refused_where_given(make):
    """Found by the fuzz property of the sharing rules: a stride of 2**63 overflowed NumPy
    while counting the synapses."""
    with pytest.raises(ConnectivityError, match="2147483647|neurons"):
        make()
