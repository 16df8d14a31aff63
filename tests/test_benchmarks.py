"""The T1 benchmark script runs and prints the JSON rows RESULTS.md is built from (a tiny
network: this checks the script, it measures nothing)."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of an installed wheel")
def test_train_benchmark_runs_t1_declared_as_a_network(tmp_path):
    """``snngen-network``: T1's network through sg.Network and sg.BPTT."""
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--impl", "snngen-network", "--H", "16",
                          "--density", "1,0.5", "--iters", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["impl"], r["density"]) for r in rows] == [("snngen-network", 1.0),
                                                         ("snngen-network", 0.5)]
    assert all(r["iter_s"] > 0 and r["parallel"] is False for r in rows)


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of an installed wheel")
def test_train_benchmark_prints_one_json_row_per_run_with_a_profile(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, str(SCRIPT), "--impl", "snngen,snngen-ckpt4",
                          "--H", "16", "--density", "1", "--iters", "3", "--profile",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["impl"] for r in rows] == ["snngen", "snngen-ckpt4"]
    for row in rows:
        assert row["H"] == 16 and row["density"] == 1.0 and row["iters"] == 1
        assert row["iter_s"] > 0 and row["peak_rss_mib"] > 0
        prof = row["profile"]
        # the kernels run inside the BPTT run, which runs inside the iteration
        assert 0 < prof["forward"] + prof["backward"] + prof.get("weight_grads", 0) \
            <= prof["run"] <= row["iter_s"] * 1.5
        assert prof["step"] > 0
    assert rows[1]["checkpoint_every"] == 4


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of an installed wheel")
def test_round_ratios_compare_each_snngen_run_with_the_peers_of_its_round():
    """--rounds: the speed-up of a round is the fastest peer of that round over snngen, the
    memory ratio snngen over the smallest peer of that round; medians over the rounds."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train
    finally:
        sys.path.remove(str(SCRIPT.parent))

    def row(impl, rnd, seconds, mib, h=1024):
        return {"impl": impl, "H": h, "density": 1.0, "iter_s": seconds,
                "train_mem_mib": mib, "round": rnd}
    rows = [row("snngen-ckpt10", 0, 0.1, 40), row("torch-dense", 0, 0.35, 180),
            row("norse", 0, 0.30, 200), row("snngen-ckpt10", 1, 0.09, 36),
            row("torch-dense", 1, 0.36, 170), row("norse", 1, 0.9, 160),
            row("torch-dense", 2, 0.5, 100, h=256)]  # another case: not compared
    (line,) = train.round_ratios(rows)
    summary = json.loads(line)
    assert summary["summary"] == "snngen-ckpt10" and summary["rounds"] == 2
    assert summary["speedup"] == [3.0, 4.0] and summary["speedup_median"] == 3.5
    assert summary["memory_ratio"] == [0.222, 0.225]


@pytest.mark.skipif(not SCRIPT.exists(), reason="benchmarks/ is not part of an installed wheel")
def test_sparse_torch_peers_train_the_same_network_as_the_masked_one(monkeypatch):
    """The sparse PyTorch peers of T1 (a CSR matrix rebuilt each iteration, an edge list)
    hold the masked dense peer's weights: the same loss, iteration after iteration of Adam."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train
    finally:
        sys.path.remove(str(SCRIPT.parent))
    losses = []
    cross_entropy = torch.nn.functional.cross_entropy

    def recorded(*args, **kwargs):
        loss = cross_entropy(*args, **kwargs)
        losses.append(loss.item())
        return loss
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", recorded)
    runs = {}
    for sparse in (None, "csr", "edges"):
        losses.clear()
        train.run_torch(48, 0.1, 3, sparse=sparse)
        runs[sparse] = list(losses)
    assert len(runs[None]) == 3 and len(set(runs[None])) == 3  # it trains: the loss moves
    for sparse in ("csr", "edges"):
        assert runs[sparse] == pytest.approx(runs[None], rel=1e-5)
