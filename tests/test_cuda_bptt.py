"""BPTT kernels of the CUDA backend, run on the CPU through the host shim (the same CUDA source
as on a GPU): equal to the Numba backend's compiled BPTT (itself checked against the NumPy
reference, finite differences and PyTorch) in float64, with sparse and dense weights, batch > 1,
refractoriness, a loss on states and spikes, and the sparse cut-off."""

import numpy as np
import pytest
from test_bptt_compiled import MODELS, problem

from snngen.backends.cuda import compiler
from snngen.train.bptt import CompiledBPTT
from snngen.train.cuda_bptt import CudaBPTT

pytestmark = pytest.mark.skipif(not compiler.shutil.which("g++"), reason="needs g++")


def _problem(name, dense, seed=7):
    # seed 7: with the Philox connectivity draws every model and density has neuron-steps the
    # 0.05 cut-off skips (2 to 22 of 2160), so the skipping path is exercised (seed 5 had
    # none for the sparse QIF problem)
    lm, args, _ = problem(name, dense, seed, steps=60)
    return lm, args


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("cutoff", [0.0, 0.05])
def test_cuda_bptt_kernels_equal_numba(name, dense, cutoff):
    lm, args = _problem(name, dense)
    ref_loss, ref = CompiledBPTT(lm, "float64").run(*args, cutoff=cutoff, dense=False)
    cuda = CudaBPTT(lm, "float64", device="host")
    loss, grads = cuda.run(*args, cutoff=cutoff)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert set(grads) == set(ref)
    for key in ref:
        np.testing.assert_allclose(grads[key], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.any(grads["w_rec"] != 0)
    if cutoff:
        assert cuda.skipped > 0


def test_cuda_bptt_source_compiles_for_the_gpu(tmp_path, monkeypatch):
    if not compiler.available():
        pytest.skip("no NVRTC and no nvcc")
    monkeypatch.setenv("SNNGEN_CACHE_DIR", str(tmp_path))
    lm, _ = _problem("lif", False)
    for dtype in ("float32", "float64"):
        source = CudaBPTT._render(lm, dtype)
        for arch in ("sm_80", "sm_90"):
            path, new = compiler.compile_cubin(source, arch, dtype)
            assert new and path.stat().st_size > 1000


@pytest.mark.parametrize("hidden", [25, (25, 12)], ids=["one_layer", "two_layers"])
def test_classifier_on_the_cuda_kernels_equals_numba(hidden):
    """RecurrentClassifier(backend='cuda-host'): same loss, gradients, accuracy and
    predictions as Numba, with one hidden layer and with two (the input gradient)."""
    import snngen as sg
    from snngen.train import RecurrentClassifier
    lif = sg.NeuronModel("dv/dt = (I - v) / tmem : 1\ndI/dt = -I / tsyn : 1",
                         threshold="v > 1", reset="v = 0", name="cuda_t1_lif")
    rng = np.random.default_rng(3)
    x = (rng.random((40, 4, 30)) < 0.1).astype(float)
    y = rng.integers(0, 3, 4)
    out = {}
    for backend in ("numba", "cuda-host"):
        net = RecurrentClassifier(lif, "I", 30, hidden, 3,
                                  params={"tmem": 0.01, "tsyn": 0.005}, input_gain=6.0,
                                  recurrent_density=0.2, seed=1, dtype="float64",
                                  trainable_params=("tmem",), backend=backend)
        out[backend] = net.loss_and_grads(x, y) + (net.predict(x),)
    (l1, g1, a1, p1), (l2, g2, a2, p2) = out["numba"], out["cuda-host"]
    assert l2 == pytest.approx(l1, rel=1e-12) and a1 == a2
    np.testing.assert_array_equal(p1, p2)
    assert set(g1) >= {"w_in", "w_rec", "w_out", "tmem"}
    if not isinstance(hidden, int):
        assert set(g1) == {"w_in", "w_rec", "w_in:1", "w_rec:1", "w_out", "tmem", "tmem:1"}
        assert np.any(g1["w_in"] != 0) and np.any(g1["tmem"] != 0)
    for key in g1:
        np.testing.assert_allclose(g2[key], g1[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_cuda_bptt_kernels_with_recurrent_delay(dense):
    lm, args = _problem("lif", dense)
    ref_loss, ref = CompiledBPTT(lm, "float64").run(*args, delay=4)
    loss, grads = CudaBPTT(lm, "float64", device="host").run(*args, delay=4)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for key in ref:
        np.testing.assert_allclose(grads[key], ref[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_cuda_simulate_equals_numba(dense):
    """The forward pass alone on the CUDA kernels (host emulation): the same spikes and
    final state as the Numba kernels' simulate."""
    lm, args = _problem("lif", dense)
    params, s0, inputs, in_csr, w_in, rec_csr, w_rec, dt, _ = args
    ref_z, ref_s = CompiledBPTT(lm, "float64").simulate(params, s0, inputs, in_csr, w_in,
                                                        rec_csr, w_rec, dt, delay=2)
    z, s = CudaBPTT(lm, "float64", device="host").simulate(params, s0, inputs, in_csr, w_in,
                                                          rec_csr, w_rec, dt, delay=2)
    assert ref_z.any()
    np.testing.assert_array_equal(np.asarray(z) > 0.5, ref_z)
    np.testing.assert_allclose(np.asarray(s), ref_s, rtol=1e-12, atol=1e-12)
