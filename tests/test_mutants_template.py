"""Subgroup boundaries in the Numba program's synaptic loops.

Written to kill template mutants that the other tests let through (benchmarks/mutation.py,
tests/RELIABILITY.md): a projection between subgroups (``src[2:4]`` -> ``pop[1:4]``) must
ignore spikes of source neurons outside its slice, including the first one past its end,
and add its post offset, with one delay per projection and with per-synapse delays.
"""

from __future__ import annotations

import numpy as np
import pytest

import snngen as sg

DT = 1e-4
SUM = sg.NeuronModel("dv/dt = r : 1", threshold="v > 1e300", reset="v = 0", name="sum")


@pytest.mark.parametrize("delay", [0.0, 2e-4, "j * 0.1*ms", "(i + j) * 0.1*ms"])
def test_projection_between_subgroups_reads_and_writes_only_its_slices(delay):
    net = sg.Network(dt=DT, dtype="float64")
    src = net.spike_source("S", 6, [0, 1, 2, 3, 4, 5], [0.0, 0.0, 0.0, 1e-4, 2e-4, 2e-4])
    pop = net.population("P", SUM, 5, params={"r": 0.0})
    net.connect(src[2:4], pop[1:4], "v += w", "all_to_all", w=1.0, delay=delay)
    net.connect(src[4:5], pop[0:1], "v += w", "all_to_all", w=10.0, delay=delay)
    sim = net.build()
    sim.run(20 * DT)
    np.testing.assert_array_equal(sim.state(pop, "v")[0], [10.0, 2.0, 2.0, 2.0, 0.0])


def test_every_neuron_of_a_wide_population_spikes_and_resets():
    """The spike scan reads eight neurons per 64-bit word: 37 neurons (five words, the last
    one partial), all spiking together, each listed once and reset."""
    model = sg.NeuronModel("dv/dt = c : 1", threshold="v > 2.5", reset="v = 0", name="ramp")
    net = sg.Network(dt=DT, dtype="float64")
    pop = net.population("P", model, 37, params={"c": 1.0 / DT})
    spikes = net.monitor_spikes(pop)
    sim = net.build()
    sim.run(9 * DT)  # v reaches 3 after steps 2, 5 and 8
    for step in (2, 5, 8):
        assert sorted(spikes.i[spikes.step == step].tolist()) == list(range(37))
    assert len(spikes.i) == 3 * 37
    np.testing.assert_array_equal(sim.state(pop, "v")[0], 0.0)


def test_exprel_of_a_tiny_argument_in_the_kernel():
    """Exponential Euler with |a dt| < 1e-6 takes the kernel's series branch of exprel:
    still exact for a leak with constant drive (to rounding)."""
    net = sg.Network(dt=1e-4, dtype="float64")
    model = sg.NeuronModel("dv/dt = (c - v) / tau : 1", method="exponential_euler",
                           name="slow_leak")
    pop = net.population("P", model, 1, params={"c": 1.0, "tau": 1000.0})
    mon = net.monitor_state(pop, "v")
    net.build().run(200 * 1e-4)
    expected = -np.expm1(-mon.t / 1000.0)
    np.testing.assert_allclose(mon.v[0, :, 0], expected, rtol=1e-11, atol=0)


def test_exprel_of_a_tiny_varying_argument_in_the_kernel():
    """With a coefficient that holds a state (g v), exprel(a dt) is evaluated in the loop by
    the kernel's own _exprel, whose series branch (|a dt| < 1e-6) must stay exact."""
    net = sg.Network(dt=1e-4, dtype="float64")
    model = sg.NeuronModel("dv/dt = (g * (E - v) + (El - v)) / tau : 1\ndg/dt = 0 : 1",
                           name="tiny_conductance")
    pop = net.population("P", model, 1, params={"E": 2.0, "El": 0.5, "tau": 1000.0},
                         init={"g": 1.0, "v": 0.0})
    mon = net.monitor_state(pop, "v")
    net.build().run(200 * 1e-4)
    vinf = (1.0 * 2.0 + 0.5) / 2.0
    expected = vinf * -np.expm1(-2.0 * mon.t / 1000.0)
    np.testing.assert_allclose(mon.v[0, :, 0], expected, rtol=1e-11, atol=0)
