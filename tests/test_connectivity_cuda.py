"""Connectivity drawn by the CUDA kernels (templates/cuda/connectivity.cu.j2), run through the
host emulation: the same tables as the Numba draws of snngen.connectivity.build_csr, bit for
bit; the simulator binds them on the device without uploading; the source compiles for the
GPU. (On a GPU: tests/gpu/test_gpu.py draws 1e8 synapses there.)
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from test_connectivity import check_structure

import snngen as sg
from snngen import connectivity as conn
from snngen.backends.cuda import compiler
from snngen.backends.cuda.runner import DeviceArray
from snngen.errors import ConnectivityError, NetworkTooLargeError

pytestmark = pytest.mark.skipif(not compiler.shutil.which(os.environ.get("CXX", "g++")),
                                reason="the host emulation needs g++")

RULES = [
    conn.FixedProbability(0.02), conn.FixedProbability(0.3, allow_self=False),
    conn.FixedProbability(1.0, allow_self=False), conn.FixedProbability(0.0),
    conn.FixedOutDegree(3), conn.FixedOutDegree(12, allow_self=False),  # sparse, many rounds
    conn.FixedOutDegree(30, allow_self=False),  # dense rows: selection sampling
    conn.FixedInDegree(4, allow_self=False), conn.FixedInDegree(25),
    conn.AllToAll(), conn.AllToAll(allow_self=False),
]
SIZES = [(40, 40), (70, 45), (45, 70), (1, 50), (300, 33)]


@pytest.fixture(scope="module")
def device():
    from snngen.backends.cuda.connect import connector
    return connector("host")


def _same(a: conn.CSR, b: conn.CSR):
    assert (a.n_pre, a.n_post) == (b.n_pre, b.n_post)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.indptr.dtype == b.indptr.dtype == np.int64
    assert a.indices.dtype == b.indices.dtype == np.int32


@pytest.mark.parametrize("rule", RULES, ids=repr)
def test_device_tables_equal_numba_tables(device, rule):
    done = 0
    for (n_pre, n_post) in SIZES:
        for seed in (0, 7, 2**63 + 12345):
            try:
                want = conn.build_csr(rule, n_pre, n_post, seed)
            except ConnectivityError:  # e.g. a degree larger than the population
                continue
            got = device.build(rule, n_pre, n_post, seed)
            assert got.device is not None and isinstance(got.device["indices"], DeviceArray)
            _same(got, want)
            check_structure(got)
            if not getattr(rule, "allow_self", True):
                assert not np.any(got.pre_indices() == got.indices)
            done += 1
    assert done >= 6


def test_one_to_one_empty_and_explicit(device):
    _same(device.build("one_to_one", 17, 17, 3), conn.build_csr("one_to_one", 17, 17, 3))
    for rule in (conn.FixedProbability(0.5), conn.FixedOutDegree(0), conn.AllToAll()):
        for n_pre, n_post in ((0, 5), (5, 0), (0, 0)):
            if isinstance(rule, conn.FixedOutDegree) and n_post == 0:
                continue
            empty = device.build(rule, n_pre, n_post, 1)
            assert empty.n_synapses == 0 and empty.indptr.tolist() == [0] * (n_pre + 1)
    explicit = device.build({"i": [2, 0, 2], "j": [1, 1, 0]}, 3, 2, 0)
    assert explicit.device is None and explicit.order.tolist() == [2, 0, 1]  # host-built


def test_device_statistics(device):
    """The device tables' own statistics (not only equality with the Numba ones)."""
    n_pre, n_post, p = 600, 500, 0.04
    csr = device.build(conn.FixedProbability(p, allow_self=False), n_pre, n_post, 99)
    n = n_pre * n_post - n_post
    assert abs(csr.n_synapses - n * p) < 5 * math.sqrt(n * p * (1 - p))
    check_structure(csr)
    assert not np.any(csr.pre_indices() == csr.indices)
    deg = device.build(conn.FixedInDegree(11, allow_self=False), 200, 300, 5)
    assert np.all(np.bincount(deg.indices, minlength=300) == 11)
    check_structure(deg)
    assert not np.any(deg.pre_indices() == deg.indices)
    out = device.build(conn.FixedOutDegree(9), 300, 200, 5)
    assert np.all(np.diff(out.indptr) == 9)
    check_structure(out)


def test_device_build_checks_like_the_host(device):
    with pytest.raises(ConnectivityError, match=r"FixedOutDegree: k = 6 .* only 5"):
        device.build(conn.FixedOutDegree(6), 10, 5, 0)
    with pytest.raises(ConnectivityError, match="n_pre = 3 and n_post = 4"):
        device.build(conn.OneToOne(), 3, 4, 0)
    with pytest.raises(NetworkTooLargeError, match="synapses"):
        device.build(conn.FixedProbability(0.5), 10**6, 10**6, 0, max_bytes=2**30)


def test_indices_stay_on_the_device_until_read(device):
    csr = device.build(conn.FixedProbability(0.1), 50, 60, 4)
    stand_in = csr.device["indices"]
    assert not stand_in.fetched and csr.device["indptr"].fetched
    assert csr.nbytes == csr.indptr.nbytes + 4 * csr.n_synapses and not stand_in.fetched
    _ = csr.indices
    assert stand_in.fetched
    with pytest.raises(AttributeError, match="read-only"):
        csr.indptr = None


LIF = sg.NeuronModel("""
    dv/dt = (ge - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
""", threshold="v > Vt", reset="v = Vr", refractory="2*ms", name="lif_conn_cuda_test")
PARAMS = {"taum": "20*ms", "taue": "5*ms", "Vt": "-50*mV", "Vr": "-60*mV", "El": "-49*mV"}


def _network():
    net = sg.Network(dt=1e-4, seed=21, dtype="float64")
    pop = net.population("P", LIF, 300, params=PARAMS, init={"v": sg.Uniform(-60e-3, -50e-3)})
    drive = net.poisson("D", 100, rates="40*Hz")
    net.connect(drive, pop, "ge += w", {"k_in": 7}, w="1.5*mV", name="drive")
    net.connect(pop[:240], pop, "ge += w", {"p": 0.08, "allow_self": False}, w="0.4*mV",
                name="exc")
    net.connect(pop[240:], pop, "ge += w", {"k_out": 25}, w="-1.2*mV", name="inh",
                delay="0.5*ms")
    return net, pop


def test_network_with_device_connectivity_reproduces_numba():
    out = {}
    for backend in ("numba", "cuda-host"):
        net, pop = _network()
        spikes = net.monitor_spikes(pop)
        sim = net.build(backend=backend)
        sim.run(0.1)
        out[backend] = sim, net, spikes
    (ref, net_r, a), (emu, net_e, b) = out["numba"], out["cuda-host"]
    assert len(a.i) > 200
    for f in ("i", "step", "b"):
        np.testing.assert_array_equal(getattr(b, f), getattr(a, f))
    runner = emu._kernel
    for name in ("drive", "exc", "inh"):
        csr_e = emu.connectivity(net_e.projections[name])
        assert csr_e.device is not None
        # bound as the array drawn on the device, never uploaded
        assert runner.mirror[f"{name}__indices"][1] is csr_e.device["indices"].dev
        _same(csr_e, ref.connectivity(net_r.projections[name]))
    assert emu.connect_s > 0 and ref.connect_s > 0


COMPILERS = compiler.compilers()


@pytest.mark.skipif(not COMPILERS, reason="no NVRTC and no nvcc")
@pytest.mark.parametrize("using", ["nvrtc", "nvcc"])
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_connectivity_kernels_compile_for_the_gpu(arch, using, tmp_path, monkeypatch):
    if using not in COMPILERS:
        pytest.skip(f"{using} is not installed")
    from snngen.backends.cuda.connect import KERNELS, source
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    path, new = compiler.compile_cubin(source(), arch, "float64", using)
    assert new and path.stat().st_size > 1000
    for kernel in KERNELS:
        assert f'__global__ void {kernel}(' in source()
