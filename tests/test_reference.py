"""Models written only here, checked against independent reference integrators written here."""

import numpy as np
import pytest
import scipy.linalg

import snngen as sg

# An adaptive quadratic integrate-and-fire neuron with a synaptic current: nonlinear, so
# snngen picks Euler; nothing about it exists in the package.
AQIF = """
    dv/dt = (k * (v - vr) * (v - vt) - u + I) / C : 1
    du/dt = a * (b * (v - vr) - u) : 1
    dI/dt = -I / tauI : 1
"""
P = dict(k=0.7, vr=-60.0, vt=-40.0, C=0.1, a=30.0, b=-2.0, tauI=0.005, vpeak=35.0,
         c=-50.0, d=100.0)


def _reference_aqif(dt, steps, v0, spikes_in, w, n):
    """Plain numpy, Brian2's schedule: Euler step, threshold, delivery (delay 0: the same
    step), reset."""
    v, u, current = v0.copy(), np.zeros(n), np.zeros(n)
    out = []
    by_step = {}
    for s, j in spikes_in:
        by_step.setdefault(s, []).append(j)
    for s in range(steps):
        dv = (P["k"] * (v - P["vr"]) * (v - P["vt"]) - u + current) / P["C"]
        du = P["a"] * (P["b"] * (v - P["vr"]) - u)
        di = -current / P["tauI"]
        v, u, current = v + dt * dv, u + dt * du, current + dt * di
        fired = np.flatnonzero(v > P["vpeak"])
        out += [(s, i) for i in fired]
        for j in by_step.get(s, []):
            current += w[j]
        v[fired] = P["c"]
        u[fired] += P["d"]
    return out, v, u, current


def test_custom_nonlinear_neuron_matches_reference():
    dt, steps, n = 1e-5, 3000, 5
    model = sg.NeuronModel(AQIF, threshold="v > vpeak", reset="v = c; u += d", name="aqif")
    rng = np.random.default_rng(3)
    v0 = rng.uniform(-65, -55, n)
    times = np.sort(rng.uniform(0, steps * dt * 0.8, 40))
    src_idx = rng.integers(0, 3, 40)
    w = np.array([[3000.0, 0, 2000, 0, 500], [0, 4000, 1000, 0, 0], [1000, 0, 0, 6000, 0]])
    net = sg.Network(dt=dt, seed=0, dtype="float64")
    src = net.spike_source("S", 3, src_idx, times)
    pop = net.population("N", model, n, params={k: v for k, v in P.items()}, init={"v": v0})
    i, j = np.nonzero(w)
    net.connect(src, pop, "I += w", {"i": i, "j": j}, w=w[i, j])
    spikes = net.monitor_spikes(pop)
    sim = net.build()
    sim.run(steps * dt)

    steps_in = np.floor((times + 1e-3 * dt) / dt).astype(int)  # Brian2's spike bins
    ref_spikes, v, u, current = _reference_aqif(dt, steps, v0, list(zip(steps_in, src_idx)),
                                                w, n)
    got = sorted(zip(spikes.step.tolist(), spikes.i.tolist()))
    assert got == sorted(ref_spikes)
    assert len(got) > 5  # the test means something only if neurons fire
    np.testing.assert_allclose(sim.state(pop, "v")[0], v, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sim.state(pop, "u")[0], u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sim.state(pop, "I")[0], current, rtol=1e-9, atol=1e-9)


def _reference_lif_network(dt, steps, pre_i, post_j, w, delay_steps, n, ext):
    """Exact LIF (scipy expm propagator), refractoriness, per-synapse delays, external spikes,
    in Brian2's order: update, threshold, delivery of the spikes due, reset."""
    taum, taus, El, Vt, Vr, ref = 0.01, 0.003, 0.0, 1.0, 0.0, 2
    a = np.array([[-1 / taum, 1 / taum], [0, -1 / taus]])
    phi = scipy.linalg.expm(a * dt)
    offset = (phi - np.eye(2)) @ np.linalg.solve(a, np.array([El / taum, 0.0]))
    x = np.zeros((2, n))
    rc = np.zeros(n, int)
    pending = {}
    out = []
    for s in range(steps):
        new = phi @ x + offset[:, None]
        refr = rc > 0
        new[0, refr] = x[0, refr]
        x = new
        fired = np.flatnonzero((x[0] > Vt) & ~refr)
        rc = np.maximum(rc - 1, 0)
        out += [(s, i) for i in fired]
        for i in fired:
            for k in np.flatnonzero(pre_i == i):
                pending.setdefault(s + delay_steps[k], []).append((post_j[k], w[k]))
        for j, amount in pending.pop(s, []):
            x[1, j] += amount
        for j, amount in ext.get(s, []):
            x[1, j] += amount
        x[0, fired] = Vr
        rc[fired] = ref - 1
    return out, x


@pytest.mark.parametrize("per_synapse_delays", [False, True])
def test_recurrent_lif_with_delays_matches_reference(per_synapse_delays):
    dt, steps, n = 1e-4, 1500, 6
    rng = np.random.default_rng(7)
    pre_i = rng.integers(0, n, 20)
    post_j = rng.integers(0, n, 20)
    w = rng.uniform(0.5, 2.0, 20)
    delays = rng.integers(0, 15, 20) * dt if per_synapse_delays else 0.0007
    delay_steps = np.floor(np.broadcast_to(delays, (20,)) / dt + 0.5).astype(int)
    ext_steps = rng.integers(0, steps - 100, 60)
    ext_targets = rng.integers(0, n, 60)
    ext = {}
    for s, j in zip(ext_steps, ext_targets):
        ext.setdefault(s, []).append((j, 3.0))

    model = sg.NeuronModel("""
        dv/dt = (El - v + I) / taum : 1 (unless refractory)
        dI/dt = -I / taus : 1
    """, threshold="v > Vt", reset="v = Vr", refractory="2*dt", name="lif2")
    net = sg.Network(dt=dt, seed=0, dtype="float64")
    ext_src = net.spike_source("X", n, ext_targets, ext_steps * dt)
    pop = net.population("N", model, n, params=dict(taum=0.01, taus=0.003, El=0.0, Vt=1.0,
                                                      Vr=0.0))
    net.connect(ext_src, pop, "I += w", "one_to_one", w=3.0)
    net.connect(pop, pop, "I += w", {"i": pre_i, "j": post_j}, w=w, delay=delays)
    spikes = net.monitor_spikes(pop)
    sim = net.build()
    sim.run(steps * dt)
    ref, x = _reference_lif_network(dt, steps, pre_i, post_j, w, delay_steps, n, ext)
    got = sorted(zip(spikes.step.tolist(), spikes.i.tolist()))
    assert got == sorted(ref)
    assert len(got) > 10
    np.testing.assert_allclose(sim.state(pop, "v")[0], x[0], rtol=1e-9, atol=1e-12)
