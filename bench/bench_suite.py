"""The sampler suite: spinicl's samplers and the three peers on every target.

Runs :func:`spinicl.suite.run_suite` on every target of :mod:`spinicl.targets` (the main
group) with each target's default spinicl rows and BlackJAX MALA, BlackJAX HMC and
NumPyro NUTS, R chains from the same starts, one thread each, and writes
``bench/results/suite.json`` and the figure ``bench/results/suite.png``.

Every (target, row set) runs in its own subprocess with a time limit — the spinicl rows
of a target together, each peer alone — so that a peer whose warm-up does not finish
(NUTS on an ill-conditioned or very large target) is recorded as ``timed out`` instead of
stalling the run. Ratios are taken within this one run; the load average is recorded.

Targets checked (``targets`` in the JSON, rendered by ``run_all.py``):

* every merged target: the best spinicl MCMC sampler's ESS/s of the slowest mode ≥ 3 × the
  best peer's, and ≥ 0.25 × the exact sampler's samples/s;
* every factored target: the best spinicl sampler reaches the ground-state reference from
  the random start sooner than every peer, and its ESS/s (slowest observable) ≥ 3 × every
  peer's.

Run: ``python bench/bench_suite.py`` (about 20 minutes on 2 shared cores with
``--seconds 4``); ``--targets merged-well,factored-dk2`` for a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import HERE, RESULTS, load_average, machine_info, say, write_json

PEERS = ("blackjax-mala", "blackjax-hmc", "numpyro-nuts")
GOAL_MERGED_PEER, GOAL_MERGED_EXACT, GOAL_FACTORED_PEER = 3.0, 0.25, 3.0


def _pin_one_thread() -> None:
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _child(args: argparse.Namespace) -> None:
    """One (target, row set) in this process; writes the result JSON to ``args.out``."""
    _pin_one_thread()
    from spinicl.suite import run_suite

    samplers = None if args.peer is None else ()
    peers = () if args.peer is None else (args.peer,)
    res = run_suite([args.target], samplers, peers, budget_seconds=args.seconds,
                    replicas=args.replicas, seed=args.seed, progress=lambda r: say(
                        f"  {r['target']}: {r['sampler']} {r['status']} "
                        f"ESS/s slow {r['ess_per_s_slowest']} t->ref "
                        f"{r['time_to_reference']} {r['note'] or ''}"),
                    notify=say)
    Path(args.out).write_text(json.dumps(res))


def _run_child(target: str, peer: str | None, args: argparse.Namespace,
               timeout: float) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "part.json"
        cmd = [sys.executable, "-u", __file__, "--child", "--target", target, "--out",
               str(out), "--seconds", str(args.seconds), "--replicas", str(args.replicas),
               "--seed", str(args.seed)] + (["--peer", peer] if peer else [])
        try:
            subprocess.run(cmd, timeout=timeout, check=False, cwd=HERE.parent)
        except subprocess.TimeoutExpired:
            return None
        return json.loads(out.read_text()) if out.exists() else None


def _best(rows: list[dict], key: str, kind: str, exclude: tuple[str, ...] = ()
          ) -> dict | None:
    ok = [r for r in rows if r["kind"] == kind and r["status"] == "ok"
          and r.get(key) is not None and r["sampler"] not in exclude]
    return max(ok, key=lambda r: r[key]) if ok else None


def evaluate(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of this benchmark, met or missed, from the merged result."""
    out = []
    for t in result["targets"]:
        rows = [r for r in result["rows"] if r["target"] == t["name"]]
        peers = [r for r in rows if r["kind"] == "peer"]
        if t["model"] == "merged":
            best = _best(rows, "ess_per_s_slowest", "spinicl", ("exact",))
            best_nd = next((r for r in sorted(
                (r for r in rows if r["kind"] == "spinicl" and r["status"] == "ok"
                 and r["sampler"] != "exact" and "/dense" not in r["sampler"]),
                key=lambda r: -(r["ess_per_s_slowest"] or 0))), None)
            peer = _best(rows, "ess_per_s_slowest", "peer")
            exact = next((r for r in rows if r["sampler"] == "exact" and r["status"] == "ok"),
                         None)
            val = (best["ess_per_s_slowest"] / peer["ess_per_s_slowest"]
                   if best and peer else None)
            out.append({"name": f"{t['name']}: best spinicl ESS/s slowest >= 3x best peer",
                        "value": val, "goal": GOAL_MERGED_PEER,
                        "best": best and best["sampler"], "peer": peer and peer["sampler"],
                        "without_dense": (best_nd["ess_per_s_slowest"]
                                          / peer["ess_per_s_slowest"]
                                          if best_nd and peer else None),
                        "best_without_dense": best_nd and best_nd["sampler"],
                        "met": None if val is None else val >= GOAL_MERGED_PEER})
            val = (best["ess_per_s_slowest"] / exact["chain_steps_per_s"]
                   if best and exact else None)
            out.append({"name": f"{t['name']}: best spinicl ESS/s slowest >= 0.25x exact "
                        "samples/s", "value": val, "goal": GOAL_MERGED_EXACT,
                        "best": best and best["sampler"],
                        "without_dense": (best_nd["ess_per_s_slowest"]
                                          / exact["chain_steps_per_s"]
                                          if best_nd and exact else None),
                        "best_without_dense": best_nd and best_nd["sampler"],
                        "met": None if val is None else val >= GOAL_MERGED_EXACT,
                        "why_none": None if exact else "no exact sampler on this target"})
        else:
            sp = [r for r in rows if r["kind"] == "spinicl" and r["status"] == "ok"]
            reached = [r for r in sp if r.get("reached")]
            fastest = min(reached, key=lambda r: r["time_to_reference"]) if reached else None
            beaten = [p for p in peers if p["status"] == "ok" and p.get("reached")
                      and fastest and p["time_to_reference"] <= fastest["time_to_reference"]]
            worst_peer_time = [p.get("time_to_reference") for p in peers]
            out.append({"name": f"{t['name']}: best spinicl reaches the ground-state "
                        "reference sooner than every peer",
                        "value": None if not fastest else fastest["time_to_reference"],
                        "peer_times": {p["sampler"]: p.get("time_to_reference")
                                       for p in peers},
                        "best": fastest and fastest["sampler"], "goal": None,
                        "met": None if not peers or not worst_peer_time else
                        bool(fastest) and not beaten})
            best = _best(rows, "ess_per_s_slowest", "spinicl")
            peer = _best(rows, "ess_per_s_slowest", "peer")
            val = (best["ess_per_s_slowest"] / peer["ess_per_s_slowest"]
                   if best and peer else None)
            out.append({"name": f"{t['name']}: best spinicl ESS/s slowest >= 3x every peer "
                        "(low T)", "value": val, "goal": GOAL_FACTORED_PEER,
                        "best": best and best["sampler"], "peer": peer and peer["sampler"],
                        "met": None if val is None else val >= GOAL_FACTORED_PEER})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="all")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--replicas", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--peer-timeout", type=float, default=240.0,
                    help="seconds allowed to one peer on one target (compile, tuning, "
                         "stationary and relaxation phases)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other targets of the existing suite.json (re-run some)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    ap.add_argument("--peer", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    from spinicl.targets import resolve_targets

    t0 = time.perf_counter()
    load0 = load_average()
    merged: dict[str, Any] = {"targets": [], "rows": [], "messages": [], "timed_out": []}
    peers = [p for p in args.peers.split(",") if p]
    for target in resolve_targets(args.targets):
        say(f"\n=== {target.name}")
        part = _run_child(target.name, None, args, timeout=900)
        if part is None:
            merged["timed_out"].append(f"{target.name}: spinicl rows")
            continue
        for t in part["targets"]:
            t["peers_run"] = peers
            t["peer_timeout"] = args.peer_timeout
        merged["targets"] += part["targets"]
        merged["rows"] += part["rows"]
        merged["settings"] = part["settings"]
        for p in peers:
            res = _run_child(target.name, p, args, timeout=args.peer_timeout)
            if res is None:
                merged["timed_out"].append(f"{target.name}: {p}")
                merged["rows"].append({"target": target.name, "sampler": p, "kind": "peer",
                                       "status": "timed out", "note": (
                                           f"did not finish within {args.peer_timeout:g} s "
                                           "(compile, tuning and both phases)")})
                say(f"  {target.name}: {p} timed out")
                continue
            merged["rows"] += res["rows"]
            merged["messages"] += res["messages"]
        exact = next((r for r in merged["rows"] if r["target"] == target.name
                      and r["sampler"] == "exact" and r["status"] == "ok"), None)
        for r in merged["rows"]:
            if (exact and r["target"] == target.name and r["status"] == "ok"
                    and r.get("ess_per_s_slowest") is not None):
                r["ratio_slowest"] = r["ess_per_s_slowest"] / exact["chain_steps_per_s"]
    merged["settings"] = dict(merged.get("settings", {}), peers=peers,
                              peer_timeout=args.peer_timeout)
    if args.merge and (RESULTS / "suite.json").exists():
        old = json.loads((RESULTS / "suite.json").read_text())
        done = {t["name"] for t in merged["targets"]}
        keep = [t for t in old["suite_targets"] if t["name"] not in done]
        order = [t["name"] for t in old["suite_targets"]] + sorted(done)
        merged["targets"] = sorted(keep + merged["targets"],
                                   key=lambda t: order.index(t["name"]))
        merged["rows"] = sorted([r for r in old["rows"] if r["target"] not in done]
                                + merged["rows"],
                                key=lambda r: order.index(r["target"]))
        merged["timed_out"] = [x for x in old.get("timed_out", [])
                               if x.split(":")[0] not in done] + merged["timed_out"]
        merged["settings"]["merged_from_earlier_run"] = sorted(
            t["name"] for t in keep)
    checked = evaluate(merged)
    from spinicl.suite import format_suite_table, plot_suite

    say("\n" + format_suite_table(merged))
    RESULTS.mkdir(exist_ok=True)
    if merged["rows"]:
        plot_suite(merged, str(RESULTS / "suite.png"))
    # ``targets`` is what run_all renders as met/missed; the suite's targets go apart
    payload = {"machine": machine_info(), "load_before": load0, "load_after": load_average(),
               "seconds": time.perf_counter() - t0, "settings": merged["settings"],
               "suite_targets": merged["targets"], "rows": merged["rows"],
               "messages": merged["messages"], "timed_out": merged["timed_out"],
               "targets": checked}
    write_json("suite", payload)
    for t in payload["targets"]:
        v = t.get("value")
        say(f"{t['name']}: {'-' if v is None else f'{v:.3g}'} "
            f"({'met' if t['met'] else 'missed' if t['met'] is not None else 'not measured'})")
    say(f"\nwrote {RESULTS / 'suite.json'}, {RESULTS / 'suite.png'} "
        f"({(time.perf_counter() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
