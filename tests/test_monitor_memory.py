"""Monitors count against the memory limit, long runs say their size, and a run that is
refused or stops early leaves the simulator consistent (issue 18, item 6). Limits are given
with ``max_memory=``: nothing here allocates much."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import snngen as sg
from snngen.errors import NetworkTooLargeError
from snngen.runtime import simulator
from snngen.runtime.allocate import estimate_bytes

DECAY = sg.NeuronModel("dv/dt = (1.5 - v) / tau : 1", threshold="v > 1", reset="v = 0",
                       name="decay")


def network(n=100, batch=1):
    net = sg.Network(dt=1e-4, batch=batch, dtype="float32")
    pop = net.population("P", DECAY, n, params={"tau": 0.01})
    return net, pop


def headroom(sim, extra):
    """A max_memory that allows what ``sim`` holds now plus ``extra`` bytes."""
    sim.max_memory = sim.held_bytes() + extra
    return sim


def test_state_monitor_that_would_not_fit_is_refused_before_the_run():
    net, pop = network(n=100, batch=2)
    mon = net.monitor_state(pop, "v")
    sim = headroom(net.build(), 1_000_000)
    sim.run(1e-3)  # 10 records: 8 kB
    before = mon.v.copy()
    with pytest.raises(NetworkTooLargeError, match=r"monitors would record .*state monitor of "
                                                   r"'P'.*nothing was run.*every="):
        sim.run(1.0)  # 10,000 records x 2 trials x 100 neurons x 4 bytes = 8 MB
    assert sim.step == 10 and np.array_equal(mon.v, before)
    sim.run(1e-3)  # still usable, and what was recorded is kept
    assert sim.step == 20 and mon.v.shape == (2, 20, 100)


def test_every_and_indices_make_a_refused_monitor_fit():
    net, pop = network(n=100)
    mon = net.monitor_state(pop, "v", indices=[0, 5], every=10)
    sim = headroom(net.build(), 1_000_000)
    sim.run(1.0)  # 1,000 records x 2 neurons
    assert mon.v.shape == (1, 1000, 2)


def test_rate_monitor_counts_against_the_limit():
    net, pop = network(n=10)
    net.monitor_rate(pop)
    sim = headroom(net.build(), 100_000)
    with pytest.raises(NetworkTooLargeError, match="rate monitor of 'P'"):
        sim.run(1.0)  # 10,000 steps x (int32 counts + float64 rates)
    assert sim.step == 0


def test_a_run_of_1e10_steps_with_a_state_monitor_is_refused_at_once():
    net, pop = network(n=10)
    net.monitor_state(pop, "v")
    sim = net.build(progress=False)  # the limit is the memory available
    t0 = time.perf_counter()
    with pytest.raises(NetworkTooLargeError, match="10,000,000,000 steps"):
        sim.run(1e10 * 1e-4)
    assert time.perf_counter() - t0 < 1.0 and sim.step == 0


def test_held_data_counts_for_later_runs():
    net, pop = network(n=100)
    net.monitor_state(pop, "v")
    sim = net.build()
    sim.max_memory = sim.held_bytes() + 60 * 100 * 4 * 2  # room for 120 records, with chunks
    sim.run(5e-3)
    with pytest.raises(NetworkTooLargeError):
        sim.run(5e-3)  # 50 more records plus their chunk buffer: over, with the 50 held


def test_records_of_several_runs_equal_one_run_and_can_be_emptied():
    def record(durations):
        net, pop = network(n=5)
        mon = net.monitor_state(pop, "v", every=3)
        rate = net.monitor_rate(pop)
        sim = net.build()
        for d in durations:
            sim.run(d)
        return mon, rate
    one, rate_one = record([0.02])
    parts, rate_parts = record([0.0071, 0.0063, 0.0066])
    np.testing.assert_array_equal(one.v, parts.v)
    np.testing.assert_array_equal(one.t, parts.t)
    np.testing.assert_array_equal(rate_one.rate, rate_parts.rate)
    parts.data = {}
    assert not parts.data and not hasattr(parts, "v")


def test_estimate_counts_monitor_buffers():
    net, pop = network(n=100, batch=2)
    base = estimate_bytes(net, None)
    net.monitor_state(pop, "v", every=2)
    spec = None
    with_mon = estimate_bytes(net, spec)
    assert with_mon == base + 4 * 100  # the recorded indices
    run = estimate_bytes(net, spec, n_steps=1000, chunk=2000)
    assert run - with_mon == 2 * 100 * 4 * (500 + 500)  # the run's records and one chunk's
    net.monitor_spikes(pop)
    assert estimate_bytes(net, spec) - with_mon == 1024 * 16  # the first spike buffers


def spiking(max_extra, backend="numba"):
    net = sg.Network(dt=1e-4, seed=3)
    src = net.poisson("X", 200, "2000*Hz")  # about 40 spikes a step: 1,024 fill in 26 steps
    mon = net.monitor_spikes(src)
    sim = net.build(backend=backend)
    return headroom(sim, max_extra), mon


HOST = pytest.param("cuda-host", marks=pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX", "g++")), reason="the host emulation needs g++"))


@pytest.mark.parametrize("backend", ["numba", HOST])
def test_spike_monitor_growth_respects_the_limit_and_keeps_what_it_recorded(backend):
    sim, mon = spiking(10_000, backend)
    with pytest.raises(NetworkTooLargeError, match=r"spike monitors \('X' .* spikes\) are full"
                                                   r".*stopped at step"):
        sim.run(0.01)
    stopped = sim.step
    assert 0 < stopped < 100
    assert len(mon.i) > 0 and mon.step.max() < stopped  # consistent with the step counter
    full, full_mon = spiking(10**9)
    full.run(stopped * 1e-4)
    np.testing.assert_array_equal(mon.i, full_mon.i)  # nothing recorded was lost
    sim.max_memory = None  # with room again, the run goes on where it stopped
    sim.run(0.01 - stopped * 1e-4)
    full.run(0.01 - stopped * 1e-4)
    for f in ("i", "step", "b"):
        np.testing.assert_array_equal(getattr(mon, f), getattr(full_mon, f))


def test_an_interrupted_run_keeps_steps_and_records_consistent(monkeypatch):
    net, pop = network(n=4)
    mon = net.monitor_state(pop, "v")
    sim = net.build()
    kernel, calls = sim._kernel, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return kernel(*args)
    sim._kernel = interrupted
    monkeypatch.setattr(sim.backend, "chunk_steps", 7, raising=False)
    with pytest.raises(KeyboardInterrupt):
        sim.run(0.01)
    assert sim.step == 14 and mon.v.shape == (1, 14, 4)


def test_long_runs_say_their_size(monkeypatch, capsys):
    monkeypatch.setattr(simulator, "LONG_RUN_STEPS", 10)
    net, pop = network(n=4)
    net.monitor_state(pop, "v")
    net.build().run(2e-3)
    err = capsys.readouterr().err
    assert "running 20 steps (0.002 s simulated" in err and "record 640 B" in err
    net.build(progress=False).run(2e-3)
    assert capsys.readouterr().err == ""
