#!/usr/bin/env bash
# The GPU checks, for one borrowed machine: environment, the gpu-marked tests, then the G
# benchmarks (benchmarks/gpu.py). Run from anywhere:
#
#     bash tests/gpu/run.sh [OUT]          # OUT defaults to $OUT
#
# Writes OUT/env.txt, OUT/pytest_gpu.txt, OUT/bench.txt and OUT/gpu_results.jsonl (4 files, no
# folders). A failing step does not stop the next one; the exit status is nonzero if the tests
# or the benchmarks failed (or timed out: 240 s and 420 s; benchmarks/gpu.py also exits 1 when
# any of its pieces is an error row). GPU_BENCH_ARGS adds options to benchmarks/gpu.py.
# The whole script keeps within TOTAL_S (default 570 s, under the device's 600 s per command):
# if the tests ran long, the benchmarks get less than 420 s and a matching --budget.
set -u -o pipefail
export PYTHONUNBUFFERED=1
SECONDS=0
total_s="${TOTAL_S:-570}"

out="${1:-${OUT:-}}"
if [ -z "$out" ]; then
    echo "usage: $0 OUT_DIR (or set OUT)" >&2
    exit 2
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/../.." || exit 2
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

# Private caches: nothing compiled earlier on this machine is reused, and nothing is left behind.
scratch="$(mktemp -d -t snngen-gpu-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
export SNNGEN_CACHE_DIR="$scratch/snngen-cache"
export CUPY_CACHE_DIR="$scratch/cupy-cache"

{
    echo "== date: $(date -Is)  host: $(hostname)  dir: $(pwd)"
    echo "== git: $(git rev-parse HEAD 2>/dev/null || echo '?')"
    git status --short 2>/dev/null | head -40
    echo "== nvidia-smi"
    nvidia-smi 2>&1 || echo "(nvidia-smi failed)"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
        --format=csv 2>&1 || true
    echo "== cpu: $(nproc) cores"
    free -g 2>&1 || true
    echo "== python: $(command -v python3) $(python3 --version 2>&1)"
    python3 - <<'EOF' 2>&1
import importlib.metadata as md
for pkg in ("numpy", "cupy-cuda13x", "cupy-cuda12x", "cupy", "numba", "numba-cuda", "llvmlite",
            "sympy", "jinja2", "scipy", "filelock", "tqdm", "platformdirs", "torch", "pytest"):
    try:
        print(f"{pkg} {md.version(pkg)}")
    except md.PackageNotFoundError:
        print(f"{pkg} (not installed)")
try:
    import cupy
    rt = cupy.cuda.runtime
    print("cupy runtime", rt.runtimeGetVersion(), "driver", rt.driverGetVersion(),
          "devices", rt.getDeviceCount())
except Exception as err:
    print("cupy/CUDA not usable:", type(err).__name__, err)
EOF
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

echo "== pytest -m gpu tests/gpu (timeout 240 s)"
timeout -k 10 240 python3 -m pytest -q -rA -m gpu tests/gpu -p no:cacheprovider -o addopts="" 2>&1 \
    | tee "$out/pytest_gpu.txt"
tests_rc=$?
echo "== pytest exit status: $tests_rc (5 = no tests collected, 124 = timed out)" \
    | tee -a "$out/pytest_gpu.txt"

bench_s=$((total_s - SECONDS - 15))
[ "$bench_s" -gt 420 ] && bench_s=420
[ "$bench_s" -lt 60 ] && bench_s=60
echo "== benchmarks/gpu.py (timeout $bench_s s, --budget $((bench_s - 20)))"
# shellcheck disable=SC2086  # GPU_BENCH_ARGS (e.g. "--quick") is split on purpose
timeout -k 10 "$bench_s" python3 benchmarks/gpu.py --out "$out" --budget $((bench_s - 20)) \
    ${GPU_BENCH_ARGS:-} 2>&1 | tee "$out/bench.txt"
bench_rc=$?
echo "== benchmarks exit status: $bench_rc (124 = timed out)" | tee -a "$out/bench.txt"

if [ "$tests_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ]; then
    echo "FAILED: tests $tests_rc, benchmarks $bench_rc"
    exit 1
fi
echo "OK"
