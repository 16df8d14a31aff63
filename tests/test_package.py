"""Packaging and documentation promises: templates ship in the wheel; README code runs."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_templates_are_package_data(tmp_path):
    if not (ROOT / "setup.cfg").exists():
        pytest.skip("not running from a source tree")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("snngen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for tpl in ("numba/program.py.j2", "cuda/program.cu.j2", "cuda/host.py.j2", "cuda/shim.h"):
        assert f"snngen/_templates/{tpl}" in names
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "snngen").rglob("*.py")}
    assert sources <= set(names), f"missing from the wheel: {sorted(sources - set(names))}"


def test_template_lookup_prefers_installed_copy():
    from snngen.backends.templates import template_dir
    found = template_dir()
    assert (found / "numba" / "program.py.j2").is_file()


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has runnable examples"
    namespace: dict = {}
    monkeypatch.chdir(tmp_path)
    for k, block in enumerate(blocks):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
        if k == 0:  # the first network's promise: about 5.5 Hz
            assert 4.95 <= len(namespace["spikes"].i) / 4000 <= 6.05
