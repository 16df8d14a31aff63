"""Shared test setup: a private kernel cache per test session, small shared models."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    # One cache for the whole session: tests share compiled kernels but never see a stale
    # cache from another run (unless SNNGEN_TEST_CACHE names one on purpose).
    # Under pytest-xdist the workers inherit the controller's environment: they share its
    # cache (the cache is safe for concurrent processes), so a kernel compiles once.
    if "SNNGEN_TEST_CACHE" in os.environ:
        os.environ["SNNGEN_CACHE_DIR"] = os.environ["SNNGEN_TEST_CACHE"]
    elif os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("_SNNGEN_SESSION_CACHE"):
        os.environ["SNNGEN_CACHE_DIR"] = os.environ["_SNNGEN_SESSION_CACHE"]
    else:
        import tempfile
        os.environ["SNNGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="snngen-test-cache-")
        os.environ["_SNNGEN_SESSION_CACHE"] = os.environ["SNNGEN_CACHE_DIR"]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SNNGEN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: set SNNGEN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


LIF_EQS = """
    dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
    dge/dt = -ge / taue : volt
    dgi/dt = -gi / taui : volt
"""
CUBA_PARAMS = {"taum": "20*ms", "taue": "5*ms", "taui": "10*ms", "Vt": "-50*mV",
               "Vr": "-60*mV", "El": "-49*mV"}


@pytest.fixture
def cuba_model():
    import snngen as sg
    return sg.NeuronModel(LIF_EQS, threshold="v > Vt", reset="v = Vr", refractory="5*ms",
                          name="lif")
