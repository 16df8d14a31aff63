#!/usr/bin/env bash
# Create the peer simulators' virtual environments under benchmarks/.peers/ (git-ignored).
#
#   bash benchmarks/peers/setup_peers.sh            # brian2 and nest
#   bash benchmarks/peers/setup_peers.sh brian2     # only one of them
#
# Idempotent: an env whose import check already passes is left alone. Peers run in their own
# envs (as subprocesses of benchmarks/forward.py), never in snngen's environment.
# Override the interpreters with PY_BRIAN2=... / PY_NEST=... .
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
peers="$here/.peers"
mkdir -p "$peers"

pick_python() {  # first interpreter in the arguments that actually runs (pyenv shims may not)
    for p in "$@"; do
        if "$p" -c "" >/dev/null 2>&1; then command -v "$p"; return 0; fi
    done
    return 1
}

make_env() {  # make_env NAME PYTHON IMPORT_CHECK PIP_ARGS...
    local name="$1" py="$2" check="$3"; shift 3
    local env="$peers/$name"
    if [ -x "$env/bin/python" ] && "$env/bin/python" -c "$check" >/dev/null 2>&1; then
        echo "[$name] ok: $("$env/bin/python" -c "$check" 2>/dev/null | tail -n 1)"
        return 0
    fi
    echo "[$name] creating $env with $py"
    rm -rf "$env"
    "$py" -m venv "$env" || return 1
    "$env/bin/python" -m pip install -q --upgrade pip || return 1
    "$env/bin/python" -m pip install -q "$@" || { echo "[$name] pip install failed"; return 1; }
    "$env/bin/python" -c "$check" || { echo "[$name] import check failed"; return 1; }
}

want="${*:-brian2 nest}"
status=0
for w in $want; do
    case "$w" in
    brian2)
        # Brian2 2.11 needs Python >= 3.13 (2.10: >= 3.12); on 3.11 only brian2==2.9.0 with numpy<2.
        # Cython and setuptools are what its runtime (Cython) target compiles with; cpp_standalone
        # uses the system g++.
        py="${PY_BRIAN2:-$(pick_python python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 python3.12 /root/.pyenv/versions/3.12*/bin/python3.12)}"
        if [ -n "$py" ]; then
            make_env brian2 "$py" "import brian2, numpy; print('brian2', brian2.__version__, 'numpy', numpy.__version__)" \
                brian2 cython setuptools || status=1
        else
            make_env brian2 "$(pick_python python3.11 python3)" \
                "import brian2, numpy; print('brian2', brian2.__version__, 'numpy', numpy.__version__)" \
                "brian2==2.9.0" "numpy<2" cython setuptools || status=1
        fi
        ;;
    nest)
        py="${PY_NEST:-$(pick_python python3.13 /root/.pyenv/versions/3.13*/bin/python3.13 python3.12 python3.11 python3)}"
        # NEST prints a banner on import; the check's last line is what we show.
        make_env nest "$py" "import nest; print('nest', nest.__version__)" nest-simulator || status=1
        ;;
    *) echo "unknown peer: $w (brian2, nest)"; status=1 ;;
    esac
done
exit $status
