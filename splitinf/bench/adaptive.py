"""``splitinf bench adaptive``: does ``--mode auto`` beat every fixed mode on real cellular traces?

For each trace (every shared Mahimahi uplink trace; ``--trace FILE`` adds more), the device's real-time
policy is replayed by the discrete-event engine with the per-frame costs measured on this machine (device
scaled to a Raspberry Pi 4, see ``splitinf sweep``): once per fixed mode (local, JPEG 300×300 q90, split
with the shipped bottleneck) and once with the adaptive policy choosing per frame — the same
:class:`~splitinf.runtime.policy.AdaptivePolicy` the device runs. Every frame is accounted for (delivered or
stale). Each run draws every frame's device time from the measured ones; ``--seeds`` runs per trace and
mode are averaged, since one run's p95 moves by about a millisecond with those draws alone.

Auto's margin over the best fixed mode is also given per seed (the same draws in both runs) as a mean and a
standard error, so that a difference can be told from noise. ``--save-costs`` / ``--costs`` keep the
measured per-frame costs in a file and replay them: the same numbers on any machine. Costs measured once are
one draw of their own (two runs minutes apart once put auto at +27 and +5 ms on the same trace), so
``--cost-runs K`` measures them K times and seed s replays measurement s mod K: the standard error then covers
that too.

With a variable-rate bottleneck every rate is an operating point (``split:NAME@R``) that auto chooses among and
that is compared as a fixed mode; ``--max-ap-drop`` keeps those (and JPEG) whose AP recorded by ``splitinf
bench rate --record`` is within the budget, and each trace reports the AP points auto's choices cost.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from splitinf.bottleneck.layers import accuracy_drops
from splitinf.experiments.costs import (
    add_engine_arguments,
    exported_for,
    load_costs,
    measure_costs,
    save_costs,
    with_edge_costs,
    within_budget,
)
from splitinf.experiments.pipeline_sim import AUTO, ModeCost, SimResult, simulate
from splitinf.experiments.sweep import DOWNLINK, link, shared_traces
from splitinf.models import build_detector
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.runtime.policy import AdaptivePolicy, ModeEstimate
from splitinf.runtime.setup import DEFAULT_MODEL
from splitinf.weights.checkpoints import default_bottleneck, find_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", action="append", default=[], help="also this Mahimahi trace (repeatable)")
    bottleneck = parser.add_argument("--bottleneck", action="append", default=None, metavar="CKPT",
                                     help="split bottleneck(s), a file or a name (repeatable; default: the "
                                          "shipped one)")
    deprecated_alias(parser, bottleneck, "--checkpoint")
    parser.add_argument("--modes", default="local,jpeg,split",
                        help="modes auto chooses from and the fixed modes it is compared with (default "
                             "local,jpeg,split; 'split' stands for every --bottleneck). local,jpeg keeps within "
                             "1 AP point of the teacher while no bottleneck does")
    parser.add_argument("--seconds", type=float, default=300.0, help="seconds of each trace to replay (default 300)")
    parser.add_argument("--fps", type=float, default=10.0, help="camera rate (default 10)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way propagation delay (default 20)")
    parser.add_argument("--deadline-ms", type=float, default=2000.0,
                        help="a frame older than this is dropped as stale (default 2000)")
    parser.add_argument("--device-slowdown", default="auto", metavar="X|auto",
                        help="scale device compute by X (default auto: the whole model takes 160 ms, a Raspberry "
                             "Pi 4); ignored with --costs")
    parser.add_argument("--seeds", type=int, default=5,
                        help="runs per trace and mode, each drawing device times anew; p95s are averaged (default 5)")
    parser.add_argument("--max-ap-drop", type=float, default=1.0, metavar="POINTS",
                        help="accuracy budget: only the operating points (modes, and rates of a variable-rate "
                             "bottleneck) within POINTS AP points of the unsplit teacher, as recorded in the "
                             "bottleneck's metadata by splitinf bench rate --record (default 1.0; without a "
                             "record, every mode)")
    parser.add_argument("--save-costs", metavar="FILE", help="write the measured per-frame costs to FILE (JSON)")
    parser.add_argument("--costs", metavar="FILE", action="append", default=None,
                        help="replay costs saved by --save-costs instead of measuring them: the same numbers on "
                             "any machine, so that two policies (or two commits) compare exactly (repeatable: "
                             "seeds take the files in turn, as with --cost-runs)")
    parser.add_argument("--cost-runs", type=int, default=1, metavar="K",
                        help="measure the per-frame costs K times, minutes apart; seed s replays measurement s mod K, "
                             "so that the standard error covers what re-measuring the costs moves, not only the "
                             "draws (default 1; --save-costs then writes K files)")
    add_engine_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def run_auto(costs: dict[str, ModeCost], trace: str, args: argparse.Namespace, seed: int = 0) -> SimResult:
    # The policy starts from the measured device times, as a device that has run each mode for a while would.
    modes = [ModeEstimate(c.name, c.device_ms, c.uplink_bytes, c.edge_ms, c.device_samples_ms) for c in costs.values()]
    policy = AdaptivePolicy(modes, base_rtt_ms=2 * args.delay_ms, frame_period_ms=1000 / args.fps)
    return simulate(costs, AUTO, int(args.seconds * args.fps), args.fps, link(trace, args.delay_ms),
                    link(DOWNLINK, args.delay_ms), deadline_ms=args.deadline_ms, policy=policy, seed=seed)


def run_fixed(cost: ModeCost, trace: str, args: argparse.Namespace, seed: int = 0) -> SimResult:
    return simulate({cost.name: cost}, cost.name, int(args.seconds * args.fps), args.fps, link(trace, args.delay_ms),
                    link(DOWNLINK, args.delay_ms), deadline_ms=args.deadline_ms, seed=seed)


def summary(autos: list[SimResult], costs: dict[str, ModeCost], drops: dict[str, float] | None = None) -> dict:
    """Auto's p95 averaged over seeds, what it chose, probed and rescued in all of them, and (with recorded
    accuracies) the AP points its choices cost, weighted by their frames."""
    choices = {m: sum(a.choices.count(m) for a in autos) for m in costs}
    mean_drop = None
    if drops is not None and sum(choices.values()):
        mean_drop = round(sum(drops[m] * n for m, n in choices.items()) / sum(choices.values()), 3)
    return {"auto_p95_ms": round(float(np.mean([a.percentile(95) for a in autos])), 1), "auto_choices": choices,
            "mean_ap_drop": mean_drop, "probes": sum(a.probes for a in autos), "rescued": sum(a.rescued for a in autos)}


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the per-seed differences a − b and its standard error (0 with a single seed)."""
    differences = np.subtract(a, b)
    error = float(np.std(differences, ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else 0.0
    return float(np.mean(differences)), error


def main(args: argparse.Namespace) -> int:
    wanted = set(args.modes.split(","))
    if "local" not in wanted or not wanted <= {"local", "jpeg", "split"}:
        raise ValueError(f"--modes must include local and be among local,jpeg,split, got {args.modes!r}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    checkpoints = [str(find_checkpoint(c)) for c in args.bottleneck] if args.bottleneck is not None \
        else [str(default_bottleneck())]
    if "split" not in wanted:
        checkpoints = []
    if args.cost_runs < 1:
        raise ValueError(f"--cost-runs must be at least 1, got {args.cost_runs}")
    if args.costs:
        runs = [load_costs(Path(path)) for path in args.costs]
    else:
        detector = build_detector(DEFAULT_MODEL, weights="pretrained")
        exported = exported_for(args.engine, args.exported, DEFAULT_MODEL, checkpoints)
        runs = [measure_costs(detector, checkpoints, slowdown=args.device_slowdown, engine=args.engine,
                              exported=exported) for _ in range(args.cost_runs)]
    edge = "this machine"
    if args.edge_costs:
        applied = [with_edge_costs(costs, Path(args.edge_costs)) for costs, _ in runs]
        runs = [(costs, factor) for (costs, _), (_, factor) in zip(applied, runs)]
        edge = applied[0][1]
    if args.save_costs:
        for i, (costs, factor) in enumerate(runs):
            path = Path(args.save_costs)
            save_costs(path if i == 0 else path.with_name(f"{path.stem}-{i + 1}{path.suffix}"), costs, factor)
    drops = accuracy_drops(checkpoints)
    measured = []
    for run_costs, _ in runs:
        run_costs = {name: cost for name, cost in run_costs.items() if name.split(":")[0] in wanted}
        run_costs, left_out = within_budget(run_costs, drops, args.max_ap_drop)
        measured.append(run_costs)
    costs, factor = measured[0], runs[0][1]
    if drops is not None:
        print(f"accuracy budget {args.max_ap_drop} AP points: " + ", ".join(
            f"{n} −{drops[n]:.2f}" if n in drops else f"{n} (no recorded AP)" for n in [*costs, *left_out])
            + (f"; left out: {', '.join(left_out)}" if left_out else ""), flush=True)
    traces = [t for t in shared_traces() if t.endswith(".up")] + args.trace
    seeds = range(args.seeds)
    results, rows = {}, []
    for trace in traces:
        # Each seed draws every frame's device time anew; p95s are averaged over seeds (one run's p95 moves by
        # about a millisecond with the draws alone).
        fixed_runs = {name: [run_fixed(measured[s % len(measured)][name], trace, args, s).percentile(95)
                             for s in seeds] for name in costs}
        fixed_p95 = {name: float(np.mean(p95s)) for name, p95s in fixed_runs.items()}
        best = min(fixed_p95, key=fixed_p95.get)
        autos = [run_auto(measured[s % len(measured)], trace, args, s) for s in seeds]
        margin, error = paired([a.percentile(95) for a in autos], fixed_runs[best])
        frames = sum(a.frames for a in autos)
        accounted = sum(len(a.outcomes) for a in autos)
        results[trace] = {**summary(autos, costs, drops), "best_fixed_p95_ms": round(fixed_p95[best], 1),
                          "best_fixed_mode": best, "accounted": accounted, "frames": frames,
                          "auto_minus_best_ms": round(margin, 2), "standard_error_ms": round(error, 2),
                          "fixed_p95_ms": {name: round(p95, 1) for name, p95 in fixed_p95.items()}}
        rows.append((trace, results[trace]["auto_p95_ms"], best, results[trace]["best_fixed_p95_ms"],
                     f"{margin:+.2f} ± {error:.2f}", *[round(fixed_p95[m], 1) for m in costs], f"{accounted}/{frames}"))
        print(f"{trace}: auto p95 {results[trace]['auto_p95_ms']:.1f} ms vs best fixed {best} "
              f"{fixed_p95[best]:.1f} ms", flush=True)
    print(format_table(["trace", "auto p95", "best fixed", "its p95", "auto − best (± s.e.)",
                        *[f"{m} p95" for m in costs], "accounted"], rows))
    better = sum(r["auto_p95_ms"] < r["best_fixed_p95_ms"] for r in results.values())
    print(f"auto ≤ best fixed on {sum(r['auto_p95_ms'] <= r['best_fixed_p95_ms'] for r in results.values())}"
          f"/{len(results)} traces, strictly better on {better}; p95 averaged over {args.seeds} seeds; "
          f"device slowdown ×{factor:.2f}")
    if args.json:
        print_json_line({"traces": results, "edge": edge, "device_slowdown": round(factor, 3),
                         "max_ap_drop": args.max_ap_drop if drops is not None else None, "cost_runs": len(runs),
                         "ap_drop": {n: drops[n] for n in costs} if drops is not None else None,
                         "left_out": left_out,
                         "edge_ms": {m: round(c.edge_ms, 2) for m, c in costs.items() if not c.local}})
    return 0
