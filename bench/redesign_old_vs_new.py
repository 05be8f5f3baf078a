"""Old commit against new tree, in one run: the sampler redesign (issue 15) must not slow
the hot loop.

Measures, for both package trees (the old one checked out in a separate worktree, each
loaded in its own subprocess through PYTHONPATH, rounds interleaved old/new):

* MALA chain-steps/s at D = 20, P = 10⁴, R = 64 (merged, dense, β = 10⁴, no
  preconditioner), the frozen kernel without recording (``spinicl.bench``'s throughput
  phase);
* BAOAB with the diagonal preconditioner: ESS/s of the energy and of the slowest mode
  (``spinicl.bench``'s recorded phase), same model and R.

Each round is one ``bench_samplers`` row per sampler with the same budget; the median
over rounds is reported, with every round kept in the JSON.

Usage::

    git worktree add /tmp/old <old-commit>
    python bench/redesign_old_vs_new.py --old /tmp/old --new . [--rounds 3] [--budget 8]

Writes ``bench/results/redesign_old_vs_new.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import median, say, write_json

WORKER = r"""
import json, sys
import spinicl
from spinicl.config import TaskConfig
from spinicl.bench import bench_samplers
kind, pre, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
cfg = TaskConfig(D=20, N=100, P=10_000, lam=0.01, test_prompts=100, seed=0)
rows = bench_samplers(cfg, (kind,), replicas=64, budget_seconds=budget,
                      precondition=(pre,), representation="dense", seed=0)
r = rows[0]
print(json.dumps({"file": spinicl.__file__, "status": r["status"],
                  "chain_steps_per_s": r["chain_steps_per_s"],
                  "ess_per_s_energy": r["ess_per_s_energy"],
                  "ess_per_s_slowest": r["ess_per_s_slowest"],
                  "acceptance": r["acceptance"], "step_size": r["step_size"],
                  "steps": r["steps"], "seconds": r["seconds"]}))
"""

CASES = (("mala", "none"), ("baoab", "diag"))


def run_one(tree: Path, kind: str, pre: str, budget: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()), NUMBA_NUM_THREADS="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", WORKER, kind, pre, str(budget)], env=env,
                         cwd=str(tree.resolve()),
                         capture_output=True, text=True, check=True, timeout=1800)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert str(tree.resolve()) in res["file"], (tree, res["file"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=8.0)
    args = ap.parse_args()
    trees = {"old": args.old, "new": args.new}
    for name, tree in trees.items():            # compile / load the caches (not timed)
        for kind, pre in CASES:
            run_one(tree, kind, pre, 0.5)
        say(f"warmed {name}")
    rounds: dict[str, dict[str, list[dict]]] = {f"{k}+{p}": {"old": [], "new": []}
                                                for k, p in CASES}
    for i in range(args.rounds):
        for kind, pre in CASES:
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for name in order:
                r = run_one(trees[name], kind, pre, args.budget)
                rounds[f"{kind}+{pre}"][name].append(r)
                say(f"round {i} {kind}+{pre} {name}: {r['chain_steps_per_s']:.0f} "
                    f"chain-steps/s, ESS/s energy {r['ess_per_s_energy']:.1f}, slowest "
                    f"{r['ess_per_s_slowest']:.1f}")
    summary = {}
    for case, by in rounds.items():
        s = {}
        for key in ("chain_steps_per_s", "ess_per_s_energy", "ess_per_s_slowest"):
            old = median([r[key] for r in by["old"]])
            new = median([r[key] for r in by["new"]])
            s[key] = {"old": old, "new": new, "new_over_old": new / old}
        summary[case] = s
        say(case, json.dumps(s, indent=1))
    write_json("redesign_old_vs_new", {
        "D": 20, "P": 10_000, "R": 64, "beta": 1e4,
        "rounds": args.rounds, "budget_seconds": args.budget,
        "old_tree": str(args.old), "new_tree": str(args.new),
        "summary": summary, "rounds_detail": rounds})


if __name__ == "__main__":
    main()
