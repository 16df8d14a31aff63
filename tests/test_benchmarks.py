"""The T1 benchmark script runs and prints the JSON rows RESULTS.md is built from (a tiny
network: this checks the script, it measures nothing)."""

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"


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
