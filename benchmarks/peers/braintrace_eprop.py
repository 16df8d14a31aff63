"""Online-learning peer: braintrace's e-prop on the task of ``benchmarks/online.py --peer``.

Run inside the braintrace peer env (benchmarks/.peers/braintrace: braintrace 0.2.6, JAX on CPU):

    benchmarks/.peers/braintrace/bin/python benchmarks/peers/braintrace_eprop.py --graph one
    benchmarks/.peers/braintrace/bin/python benchmarks/peers/braintrace_eprop.py --graph two \
        --T 1000 --repeats 3

stdout is one JSON line:
  {"peer": "braintrace", "version", "algorithm", "graph", "T", "batch", "n_hidden",
   "median_s_per_sequence", "times", "losses", "rate_hz", "mem_mib", ...}
(--verbose 1 or 2 prints braintrace's compilation report, to stderr).

Task (the same as snngen's side). dt = 1 ms, float32, batch 16, T steps (--T, default 1000).
Input: 100 Poisson channels, spike probability 5 % per step (numpy default_rng(0)), one
pattern used for every sequence. Target: y*(t) = sin(2 pi t dt) for one readout neuron,
broadcast over the batch. Loss: per-step mean squared error, averaged over the T steps.
Hidden neurons: current-based LIF, dv/dt = (I - v)/taum, dI/dt = -I/taus, taum = 20 ms,
taus = 5 ms, spike when v > 1, reset by subtraction (v -= 1); input and recurrent spikes jump
I (I += W x). Readout: leaky integrator dv/dt = -v/tau, tau = 20 ms, jumped by hidden spikes
(v += W_out z). Graphs (--graph):
  one  x(100) -> h (256 LIF, all-to-all recurrent, one step of delay) -> readout (1)
  two  x(100) -> h1 (128 LIF, recurrent) -> h2 (128 LIF, recurrent); h1 and h2 -> readout
(h1 -> h2 carries h1's spikes of the same step). Initial weights (numpy default_rng(--seed)):
x -> h N(0, --w-in = 0.2), h1 -> h2 N(0, --w-hid, default --w-in), recurrent
N(0, --w-rec = 0.03), readout N(0, --w-out = 0.06); no biases. With these defaults h (or h1)
fires at about 1.5 Hz and, in graph two, h2 stays silent (its input, h1's spikes, is too
sparse for std 0.2; --w-hid 1 gives it 0.15 Hz). The cost per step does not depend on
activity (dense matmuls and traces); --w-in 0.5 gives h1 about 16 Hz and h2 about 4 Hz.

One step t-1 -> t (exact propagator for the linear part):
  z_prev = H(v - 1)                       last step's spikes
  v      = a_m (v - z_prev) + c I         reset by subtraction, then the exact propagator
  I      = a_s I + x W_ff + z_prev W_rec  synaptic jumps (the recurrent ones one step late)
  z      = H(v - 1)
  r      = k r + sum_layers z W_out       readout
a_m = exp(-dt/taum), a_s = exp(-dt/taus), c = taus/(taus - taum) (a_s - a_m),
k = exp(-dt/tau). H has a fast-sigmoid surrogate derivative 1/(10|v - 1| + 1)^2
(braintools' InvSquareGrad(alpha=10), snngen's default "fast_sigmoid"). v is stored *before*
its reset, and the reset is applied at the start of the next step (as brainpy.state.LIF does):
the trajectory is that of resetting at the end of the step, and braintrace sees spikes and
reset as functions of its hidden state v. The two states v, I of a layer form one braintrace
hidden group (its per-neuron 2x2 Jacobian is traced); the readout's r is a second group.

Learning rule: ``braintrace.EProp`` (per-parameter eligibility traces, i.e. the
``ParamDimVjpAlgorithm`` engine of D_RTRL: the hidden-to-hidden Jacobian kept per neuron,
cross-neuron recurrence dropped, single-step learning signal dL_t/dh_t), symmetric feedback
(braintrace's random feedback needs a readout as wide as the hidden group), traces low-pass
filtered with kappa = exp(-dt/tau_readout) (Bellec et al. 2020). The readout state is itself
traced, so W_out's trace already is the presynaptic spike train filtered by kappa; that trace's
extra filter is removed (kept with --kappa-readout). --kappa 0 runs braintrace.D_RTRL.
Gradients are accumulated online over the sequence by ``learner.etrace_grad`` (per-step loss,
'mean' reduction), then one Adam step (braintools.optim.Adam, --lr 1e-3). JAX runs on the CPU
in float32 with XLA's default threading (every core).

Measurement. A sequence = reset of every hidden and trace state, T steps with online gradient
accumulation, one Adam step: one jitted function, waited for with block_until_ready. One
sequence compiles and warms up (not timed; compile_s = compilation plus that sequence); then
--repeats sequences are timed.
Reported: median_s_per_sequence and each time (s); each timed sequence's loss (mean over its
steps, before its Adam step); rate_hz, the mean hidden firing rate of the first timed sequence
(all hidden neurons, trials and steps), and layer_rates_hz, the same per hidden layer;
mem_mib = peak RSS (ru_maxrss) at the end minus the RSS after set-up and warm-up (as snngen's
side measures it: what the timed sequences add); mem_from_setup_mib = the same peak minus the
RSS before the warm-up (so it includes XLA's compilation); setup_rss_mib (model, data and
learner built), warm_rss_mib (after the warm-up) and peak_rss_mib beside them.
"""

import argparse
import contextlib
import json
import os
import resource
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_enable_x64", False)

import brainstate  # noqa: E402
import braintools  # noqa: E402
import braintrace  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

DT, BATCH, N_IN = 1e-3, 16, 100
TAUM, TAUS, TAU_OUT = 0.02, 0.005, 0.02
A_M, A_S, K_OUT = (float(np.exp(-DT / t)) for t in (TAUM, TAUS, TAU_OUT))
C_VI = TAUS / (TAUS - TAUM) * (A_S - A_M)  # v(t + dt) gains C_VI * I(t)
F32 = np.float32
SPIKE = braintools.surrogate.InvSquareGrad(alpha=10.0)


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _zeros(batch_size, n):
    return jnp.zeros((n,) if batch_size is None else (batch_size, n), F32)


class CubaLIF(brainstate.nn.Module):
    """Current-based LIF layer, all-to-all recurrent with one step of delay.

    Hidden states v (kept before its reset) and I; ``update(x)`` returns this step's spikes.
    """

    def __init__(self, w_ff, w_rec):
        super().__init__()
        self.n = w_rec.shape[0]
        self.w_ff = brainstate.ParamState(jnp.asarray(w_ff))
        self.w_rec = brainstate.ParamState(jnp.asarray(w_rec))

    def init_state(self, batch_size=None, **kwargs):
        self.v = brainstate.HiddenState(_zeros(batch_size, self.n))
        self.I = brainstate.HiddenState(_zeros(batch_size, self.n))

    def reset_state(self, batch_size=None, **kwargs):
        self.v.value = _zeros(batch_size, self.n)
        self.I.value = _zeros(batch_size, self.n)

    def update(self, x):
        v, i = self.v.value, self.I.value
        z_prev = SPIKE(v - 1.0)
        v = A_M * (v - z_prev) + C_VI * i
        i = (A_S * i + braintrace.matmul(x, self.w_ff.value)
             + braintrace.matmul(z_prev, self.w_rec.value))
        self.v.value, self.I.value = v, i
        return SPIKE(v - 1.0)


class Readout(brainstate.nn.Module):
    """Leaky integrator r <- k r + sum_l z_l W_l, one weight matrix per hidden layer."""

    def __init__(self, ws):
        super().__init__()
        self.ws = [brainstate.ParamState(jnp.asarray(w)) for w in ws]

    def init_state(self, batch_size=None, **kwargs):
        self.r = brainstate.HiddenState(_zeros(batch_size, 1))

    def reset_state(self, batch_size=None, **kwargs):
        self.r.value = _zeros(batch_size, 1)

    def update(self, zs):
        r = K_OUT * self.r.value
        for z, w in zip(zs, self.ws):
            r = r + braintrace.matmul(z, w.value)
        self.r.value = r
        return r


class Net(brainstate.nn.Module):
    """x -> hidden layers in a chain -> one leaky readout fed by every hidden layer."""

    def __init__(self, sizes, w_in, w_hid, w_rec, w_out, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        pre = [N_IN] + list(sizes[:-1])
        self.layers = [CubaLIF(rng.normal(0, w_in if k == 0 else w_hid, (p, n)).astype(F32),
                               rng.normal(0, w_rec, (n, n)).astype(F32))
                       for k, (p, n) in enumerate(zip(pre, sizes))]
        self.out = Readout([rng.normal(0, w_out, (n, 1)).astype(F32) for n in sizes])

    def update(self, x):
        zs = []
        for layer in self.layers:
            x = layer(x)
            zs.append(x)
        return self.out(zs)


def task(steps):
    """Input spikes (T, batch, 100) and target (T, batch, 1), float32."""
    rng = np.random.default_rng(0)
    xs = (rng.random((steps, BATCH, N_IN)) < 0.05).astype(F32)
    ys = np.broadcast_to(np.sin(2 * np.pi * np.arange(steps) * DT)[:, None, None],
                         (steps, BATCH, 1)).astype(F32)
    return jnp.asarray(xs), jnp.asarray(ys)


def build(args):
    """Model, data, compiled learner, optimiser and the jitted sequence function."""
    sizes = [256] if args.graph == "one" else [128, 128]
    w_hid = args.w_in if args.w_hid is None else args.w_hid
    net = Net(sizes, args.w_in, w_hid, args.w_rec, args.w_out, args.seed)
    xs, ys = task(args.T)
    kappa = K_OUT if args.kappa is None else args.kappa
    if kappa > 0:
        algorithm, options = braintrace.EProp, {"kappa_filter_decay": float(kappa)}
    else:
        algorithm, options = braintrace.D_RTRL, {}
    with contextlib.redirect_stdout(sys.stderr):
        learner = braintrace.compile(net, algorithm, xs[0], batch_size=BATCH,
                                     verbose=args.verbose, **options)
    filtered = "none"
    if kappa > 0:
        filtered = "all"
        if not args.kappa_readout:
            # W_out's raw trace is d r / d W_out = sum_s k^(t-s) z_s, already filtered by the
            # readout leak k = kappa: drop its second filter (the readout gradient is then
            # sum_t (r_t - y*_t) zbar_t, Bellec et al.'s). The filters are keyed like the
            # traces, (id(y_var), hidden group index); a missing key means "unfiltered".
            readout_ws = {id(w) for w in net.out.ws}
            for rel in learner.graph.hidden_param_op_relations:
                if any(id(w) in readout_ws for w in rel.trainable_param_states.values()):
                    for group in rel.hidden_groups:
                        del learner._trace_filters[(id(rel.y_var), group.index)]
            filtered = "hidden weights"
    opt = braintools.optim.Adam(lr=args.lr)
    opt.register_trainable_weights(learner.param_states)

    def step_loss(x, y):
        r = learner(x)
        # this step's spikes per layer, read off the hidden states (v is kept before reset)
        spikes = jnp.stack([jnp.mean(jax.lax.stop_gradient(layer.v.value) > 1.0)
                            for layer in net.layers]).astype(F32)
        return jnp.mean((r - y) ** 2), spikes

    def grads_of_sequence(xs, ys):
        brainstate.nn.reset_all_states(learner, batch_size=BATCH)  # model and traces
        grads, loss, rates = learner.etrace_grad(xs, ys, step_fn=step_loss, has_aux=True,
                                                 loss_output="scalar", return_value=True)
        return grads, loss, jnp.mean(rates, axis=0) / DT  # Hz, per layer

    @brainstate.transform.jit
    def sequence(xs, ys):
        grads, loss, rate = grads_of_sequence(xs, ys)
        opt.update(grads)
        return loss, rate

    return dict(net=net, learner=learner, opt=opt, xs=xs, ys=ys, sizes=sizes,
                algorithm=algorithm, kappa=kappa, filtered=filtered, sequence=sequence,
                grads_of_sequence=grads_of_sequence)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", choices=["one", "two"], default="one")
    ap.add_argument("--T", type=int, default=1000, help="steps per sequence (dt = 1 ms)")
    ap.add_argument("--repeats", type=int, default=3, help="timed sequences")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--seed", type=int, default=1, help="weight seed (the input uses 0)")
    ap.add_argument("--w-in", type=float, default=0.2, help="std of feed-forward weights")
    ap.add_argument("--w-hid", type=float, default=None,
                    help="std of h1 -> h2 weights (graph two; default: --w-in)")
    ap.add_argument("--w-rec", type=float, default=0.03, help="std of recurrent weights")
    ap.add_argument("--w-out", type=float, default=0.06, help="std of readout weights")
    ap.add_argument("--kappa", type=float, default=None,
                    help="eligibility filter (default exp(-dt/tau_readout); 0: D_RTRL)")
    ap.add_argument("--kappa-readout", action="store_true",
                    help="filter W_out's trace too (braintrace EProp's own behaviour)")
    ap.add_argument("--verbose", type=int, default=0, choices=[0, 1, 2],
                    help="print braintrace's compilation report (stderr)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    b = build(args)
    setup_s = time.perf_counter() - t0
    setup_rss = _rss_mib()
    params = list(b["learner"].param_states.values())

    def run():
        loss, rate = b["sequence"](b["xs"], b["ys"])
        jax.block_until_ready([loss, rate] + [p.value for p in params])
        return float(loss), [float(v) for v in rate]

    t0 = time.perf_counter()
    warm_loss, _ = run()  # compiles and warms up
    compile_s = time.perf_counter() - t0
    base = _rss_mib()
    times, losses, rates = [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loss, rate = run()
        times.append(round(time.perf_counter() - t0, 4))
        losses.append(round(loss, 6))
        rates.append(rate)
    peak = _rss_mib()
    kappa = b["kappa"]
    print(json.dumps({
        "peer": "braintrace", "version": braintrace.__version__,
        "algorithm": f"braintrace.{b['algorithm'].__name__}" + (
            f" (symmetric feedback, kappa={kappa:.4f} on {b['filtered']})" if kappa > 0
            else ""),
        "graph": args.graph, "T": args.T, "batch": BATCH, "n_hidden": sum(b["sizes"]),
        "median_s_per_sequence": round(float(np.median(times)), 4) if times else None,
        "times": times, "losses": losses,
        "rate_hz": round(float(np.dot(rates[0], b["sizes"])) / sum(b["sizes"]), 3)
        if rates else None,
        "layer_rates_hz": [round(v, 3) for v in rates[0]] if rates else None,
        "mem_mib": round(peak - base, 2), "mem_from_setup_mib": round(peak - setup_rss, 2),
        "setup_rss_mib": round(setup_rss, 1),
        "warm_rss_mib": round(base, 1), "peak_rss_mib": round(peak, 1),
        "warmup_loss": round(warm_loss, 6), "setup_s": round(setup_s, 3),
        "compile_s": round(compile_s, 3), "lr": args.lr, "jax": jax.__version__,
        "device": str(jax.devices()[0]), "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    sys.exit(main())
