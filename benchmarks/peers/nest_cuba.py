"""F1 peer: the CUBA network of Brian2's example (Vogels & Abbott 2005), built in NEST.

Run inside the NEST peer env (made by benchmarks/peers/setup_peers.sh):

    benchmarks/.peers/nest/bin/python benchmarks/peers/nest_cuba.py --n 4000 --threads 2

The last stdout line is one JSON object (NEST's banner comes before it).

Model mapping. Brian2's CUBA has dv/dt = (ge + gi - (v - El))/taum with ge, gi in volts that
jump by w and decay with taue, taui. NEST's `iaf_psc_exp` has
C_m dV/dt = -C_m (V - E_L)/tau_m + I_ex + I_in, with I_ex, I_in jumping by the weight (pA)
and decaying with tau_syn_ex, tau_syn_in. The two agree when I = ge * C_m / tau_m; with
C_m = 20 pF and tau_m = 20 ms that is I[pA] = ge[mV], so weights are 1.62 pA and -9 pA.
Both clamp only V during the 5 ms refractory period while the currents keep evolving, and both
integrate exactly.
Delay (--delay, default 0.1 ms = one step, NEST's minimum): Brian2's zero delay also shows a
spike's effect at the next update. NEST updates neurons in slices of the minimum delay, so a
larger delay runs faster (2.0 s -> 0.8 s at N = 4k with 1 ms) but changes the model.
Connectivity (--rule bernoulli, default): pairwise Bernoulli with p = 80/N from the first
0.8 N (excitatory) and the last 0.2 N (inhibitory) onto all N, self-connections allowed (as in
Brian2's example). NEST draws one number per pair, so building is O(N^2) (12 s at N = 16k);
--rule indegree (64 excitatory + 16 inhibitory inputs per neuron) builds in O(N) and gives a
slightly lower rate (about 5.2 Hz instead of 5.5-5.8).

Timings: build_s = Create + Connect + Prepare (prepare_s also alone; NEST builds its delivery
structures there); compile_s = 0 (nothing is compiled); run_s = wall time of nest.Run.
peak_rss_mib = ru_maxrss of this process (NEST runs in-process; threads, not children).
"""

import argparse
import json
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--duration", type=float, default=1.0, help="biological time, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="NEST local_num_threads")
    ap.add_argument(
        "--delay",
        type=float,
        default=0.1,
        help="synaptic delay, ms (0.1 matches Brian2; NEST is faster with larger ones)",
    )
    ap.add_argument(
        "--rule",
        choices=["bernoulli", "indegree"],
        default="bernoulli",
        help="p = 80/N per pair (as Brian2; O(N^2) to build) or a fixed in-degree of 80",
    )
    args = ap.parse_args()

    t_import = time.perf_counter()
    import nest

    import_s = time.perf_counter() - t_import
    nest.verbosity = nest.VerbosityLevel.ERROR

    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.SetKernelStatus(
        {"resolution": 0.1, "local_num_threads": args.threads, "rng_seed": args.seed}
    )
    n = args.n
    n_exc = int(0.8 * n)
    params = {
        "C_m": 20.0,
        "tau_m": 20.0,  # C_m/tau_m = 1 nS: a current of x pA moves V like x mV
        "E_L": -49.0,
        "V_th": -50.0,
        "V_reset": -60.0,
        "t_ref": 5.0,
        "tau_syn_ex": 5.0,
        "tau_syn_in": 10.0,
        "I_e": 0.0,
    }
    pop = nest.Create("iaf_psc_exp", n, params=params)
    pop.V_m = nest.random.uniform(-60.0, -50.0)
    if args.rule == "bernoulli":
        rule_e = rule_i = {"rule": "pairwise_bernoulli", "p": 80.0 / n}
    else:
        k_e = round(80 * n_exc / n)  # 64 of the 80 inputs are excitatory
        rule_e = {"rule": "fixed_indegree", "indegree": k_e}
        rule_i = {"rule": "fixed_indegree", "indegree": 80 - k_e}
    syn_e = {"weight": 60 * 0.27 / 10, "delay": args.delay}  # 1.62 pA ~ 1.62 mV
    syn_i = {"weight": -20 * 4.5 / 10, "delay": args.delay}  # -9 pA ~ -9 mV
    nest.Connect(pop[:n_exc], pop, {**rule_e, "allow_autapses": True}, syn_e)
    nest.Connect(pop[n_exc:], pop, {**rule_i, "allow_autapses": True}, syn_i)
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    t1 = time.perf_counter()
    nest.Prepare()
    prepare_s = time.perf_counter() - t1
    build_s = time.perf_counter() - t0

    t2 = time.perf_counter()
    nest.Run(args.duration * 1000.0)  # ms
    run_s = time.perf_counter() - t2
    nest.Cleanup()
    spikes = int(rec.n_events)
    total_s = time.perf_counter() - t0
    out = {
        "impl": "nest",
        "n": n,
        "duration": args.duration,
        "spikes": spikes,
        "mean_rate_hz": spikes / n / args.duration,
        "synapses": int(nest.num_connections) - n,  # less the recorder's n connections
        "build_s": build_s,
        "compile_s": 0.0,
        "run_s": run_s,
        "total_s": total_s,
        "import_s": import_s,
        "prepare_s": prepare_s,
        "threads": args.threads,
        "delay_ms": args.delay,
        "rule": args.rule,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seed": args.seed,
        "nest": nest.__version__,
        "python": sys.version.split()[0],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
