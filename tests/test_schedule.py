"""The order within a step is Brian2's (README, "Order within a step"), on every backend.

Each test builds a network whose numbers can be worked out by hand and checks one
consequence of the schedule: update, threshold, propagation, reset. They run without Brian2
(``tests/test_brian2.py`` compares with Brian2 itself where it is installed) and on the
Numba backend and the CUDA kernels' host emulation.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import snngen as sg
from snngen.errors import InvalidValueError

DT = 1e-4
BACKENDS = ["numba", pytest.param("cuda-host", marks=pytest.mark.skipif(
    not shutil.which(os.environ.get("CXX", "g++")), reason="no C++ compiler for cuda-host"))]

#: v climbs by exactly 1 per step (c dt = 1) unless clamped; spikes above 2.5
RAMP = "dv/dt = c : 1{flag}"


def _ramp(flag="", refractory=None, reset="v = 0"):
    return sg.NeuronModel(RAMP.format(flag=flag), threshold="v > 2.5", reset=reset,
                          refractory=refractory, name="ramp")


def _kick(backend, flag="", refractory=None, kicks=(), steps=12, delay=0.0):
    """One ramp neuron (spikes at steps 2, 5, 8, ... when free) receiving ``v += 10`` from
    input spikes at the given steps; returns (spike steps, v at the start of each step, v
    after the run)."""
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 1, np.zeros(len(kicks), int), np.array(kicks) * DT)
    pop = net.population("P", _ramp(flag, refractory), 1, params={"c": 1.0 / DT})
    net.connect(src, pop, "v += w", "all_to_all", w=10.0, delay=delay)
    spikes = net.monitor_spikes(pop)
    state = net.monitor_state(pop, "v")
    sim = net.build(backend=backend)
    sim.run(steps * DT)
    return spikes.step.tolist(), state.v[0, :, 0], float(sim.state(pop, "v")[0, 0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_record_is_the_initial_state_and_records_are_step_starts(backend):
    _, v, _ = _kick(backend, steps=4)
    # start of step 0: 0; after steps 0, 1: 1, 2; step 2 spikes and resets: 0
    np.testing.assert_array_equal(v, [0.0, 1.0, 2.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_in_the_step_of_a_spike_is_overwritten_by_the_reset(backend):
    """Step 2 spikes (v = 3 > 2.5); the kick of step 2 lands after the threshold and before
    the reset, so the reset wipes it: the neuron goes on as if never kicked."""
    free, _, _ = _kick(backend)
    kicked, _, _ = _kick(backend, kicks=[2])
    assert free == kicked == [2, 5, 8, 11]


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_lands_after_the_threshold_and_acts_at_the_next_step(backend):
    """A kick in step 0 arrives after step 0's threshold (v = 1, no spike) and makes v = 11:
    the neuron spikes in step 1, not step 0."""
    spikes, v, _ = _kick(backend, kicks=[0], steps=3)
    assert spikes[0] == 1
    assert v[1] == 11.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_delay_input_of_the_last_step_acts_before_run_returns(backend):
    _, _, final = _kick(backend, kicks=[3], steps=4)
    assert final == 1.0 + 10.0  # reset to 0 at step 2, v = 1 after step 3, plus the kick


@pytest.mark.parametrize("backend", BACKENDS)
def test_delayed_input_in_flight_at_the_end_arrives_in_the_next_run(backend):
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 1, [0], [3 * DT])
    pop = net.population("P", sg.NeuronModel("dv/dt = 0 : 1"), 1)
    net.connect(src, pop, "v += w", "all_to_all", w=1.0, delay=2 * DT)
    sim = net.build(backend=backend)
    sim.run(4 * DT)  # the spike of step 3 is due in step 5
    assert sim.state(pop, "v")[0, 0] == 0.0
    sim.run(1 * DT)
    assert sim.state(pop, "v")[0, 0] == 0.0
    sim.run(1 * DT)
    assert sim.state(pop, "v")[0, 0] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_unless_refractory_variables_drop_input_while_refractory(backend):
    """Brian2 writes a variable flagged (unless refractory) only where the neuron is not
    refractory, and a neuron is refractory from its threshold on: a kick in the spike step
    or during the refractory period is lost; after it, it counts."""
    ref = 3 * DT  # refractory in steps s+1, s+2 after a spike at s
    base, _, _ = _kick(backend, " (unless refractory)", ref, steps=20)
    assert base[:2] == [2, 7]  # frozen at s+1, s+2, then 3 free steps
    for lost in (2, 3, 4):
        got, _, _ = _kick(backend, " (unless refractory)", ref, kicks=[lost], steps=20)
        assert got == base, lost
    counted, _, _ = _kick(backend, " (unless refractory)", ref, kicks=[5], steps=20)
    assert counted[:2] == [2, 6]
    # without the flag, input during refractoriness is kept (only the threshold is blocked)
    free, _, _ = _kick(backend, "", ref, kicks=[3], steps=20)
    assert free[:2] == [2, 5]


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_synapse_delays_also_drop_input_to_refractory_neurons(backend):
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 2, [0, 1], [0.0, 0.0])
    pop = net.population("P", _ramp(" (unless refractory)", 3 * DT), 1,
                         params={"c": 1.0 / DT})
    # two input synapses, due in step 3 (refractory: dropped) and step 5 (kept)
    net.connect(src, pop, "v += w", "all_to_all", w=10.0, delay=np.array([3 * DT, 5 * DT]))
    spikes = net.monitor_spikes(pop)
    net.build(backend=backend).run(12 * DT)
    assert spikes.step.tolist()[:2] == [2, 6]


def test_spike_times_fall_in_brian2s_bins_and_a_neuron_spikes_once_per_step():
    net = sg.Network(dt=DT, dtype="float64")
    times = np.array([0.0, 0.9, 1.0, 2.5, 3.9999999]) * DT
    src = net.spike_source("S", 5, np.arange(5), times)
    np.testing.assert_array_equal(src.steps, [0, 0, 1, 2, 4])
    with pytest.raises(InvalidValueError, match="more than once in step 1"):
        net.spike_source("T", 2, [1, 1], [1.0 * DT, 1.5 * DT])


def test_delays_and_refractory_periods_round_as_brian2():
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", sg.NeuronModel("dv/dt = 0 : 1"), 4)
    src = net.spike_source("S", 4, [], [])
    proj = net.connect(src, pop, "v += w", "one_to_one", w=1.0,
                       delay=np.array([0.0, 0.5, 1.5, 2.4999]) * DT)
    assert proj.delay_steps.tolist() == [0, 1, 2, 2]
