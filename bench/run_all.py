"""Run every benchmark and regenerate ``bench/RESULTS.md``.

    python bench/run_all.py                 # everything (~15 minutes on 2 cores)
    python bench/run_all.py --quick         # smaller budgets (~6 minutes)
    python bench/run_all.py --only amp ess  # some of them (the others' JSON is reused,
                                            # RESULTS.md lists the partial re-run)
    python bench/run_all.py --render-only   # rebuild RESULTS.md from bench/results/*.json

Each benchmark runs as its own subprocess (``bench/bench_<name>.py``), prints its ratios
and writes ``bench/results/<name>.json``; this script then renders RESULTS.md from those
files, the machine description (CPU model, cores, memory, library versions, BLAS, load
average) and the hand-written analysis in ``bench/NOTES.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import HERE, RESULTS, load_average, machine_info, say

BENCHES: dict[str, tuple[list[str], list[str], float]] = {
    # name: (full arguments, quick arguments, timeout in seconds)
    "throughput": ([], ["--rounds", "5"], 400),
    "ess": (["--budget", "4"], ["--budget", "2"], 600),
    "baoab_scan": ([], ["--budget", "1"], 400),
    "amp": ([], [], 200),
    "theory": ([], ["--skip-mf-100"], 600),
    "memory": ([], ["--D", "20", "60", "200"], 900),
    "sweep": ([], ["--reduced"], 600),
    "peers": ([], [], 600),
    "suite": (["--seconds", "2", "--peer-timeout", "100"],
              ["--seconds", "1", "--peer-timeout", "60"], 2400),
}


def run_bench(name: str, extra: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-u", str(HERE / f"bench_{name}.py"), *extra]
    say(f"\n=== {name}: {' '.join(cmd[2:])}")
    t0 = time.perf_counter()
    load0 = load_average()
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          cwd=HERE.parent) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line)
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                    lines.append(f"killed after {timeout:.0f} s\n")
                    break
        finally:
            rc = proc.wait()
    (RESULTS / f"{name}.log").write_text("".join(lines))
    return {"name": name, "args": extra, "returncode": rc, "seconds": time.perf_counter() - t0,
            "load_before": load0, "load_after": load_average()}


# --------------------------------------------------------------------------- rendering
def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    with open(path) as fh:
        return json.load(fh)


def _g(v: Any, fmt: str = ".3g") -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return format(v, fmt)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_g(c) if not isinstance(c, str) else c for c in r) + " |"
            for r in rows]
    return out


def _load_note(d: dict | None) -> str:
    if not d:
        return ""
    la = d.get("machine", {}).get("load_average")
    return f"(load average at the start of this benchmark: {la[0]:.2f}, {la[1]:.2f}, " \
           f"{la[2]:.2f})" if la else ""


def render_machine(m: dict, run: dict | None) -> list[str]:
    v = m["versions"]
    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b['architecture']}, "
                     f"{b['num_threads']} threads, {Path(b['filepath']).parent.parent.name})"
                     for b in m["blas"])
    rows = [
        ["date", m["date"]], ["CPU", (f"{m['cpu_model']} ({m['cpu_count']} cores, "
                                     f"{m['cpus_usable']} usable)")],
        ["memory", f"{m['memory_gb']} GiB"], ["platform", m["platform"]],
        ["python", v["python"]],
        ["libraries", ", ".join(f"{k} {v[k]}" for k in ("spinicl", "numpy", "scipy",
                                                         "numba", "h5py", "dask"))],
        ["BLAS", blas], ["Numba threads", str(m["numba_threads"])],
        ["absent (optional)", ", ".join(k for k in ("jax", "blackjax", "numpyro", "torch")
                                        if v.get(k) == "not installed") or "none"],
    ]
    if run:
        rows.append(["load average", (f"{run['load_start'][0]:.2f} at the start, "
                                     f"{run['load_end'][0]:.2f} at the end (1-minute; "
                                     "per benchmark below)")])
        rows.append(["run_all time", f"{run['seconds'] / 60:.1f} min"])
        for rr in run.get("reruns", []):
            rows.append(["re-run", (f"{', '.join(rr['benches'])} on {rr['date']} (load "
                                   f"{rr['load_start'][0]:.2f}, {rr['seconds'] / 60:.1f} min)")])
    return _table(["", ""], rows)


def render_targets(data: dict[str, dict | None]) -> list[str]:
    rows = []
    for name, d in data.items():
        if name == "suite":
            rows += _suite_target_rows(d)
            continue
        for t in (d or {}).get("targets", []):
            state = ("skipped" if t.get("met") is None else
                     "**met**" if t["met"] else "**missed**")
            val = t.get("value")
            goal = t.get("goal")
            unit = " MB" if name == "memory" else "x" if name != "ess" else "x exact"
            extra = (f"; projected with 2 free cores: {t['projected_free_cores']:.2f}x"
                     if t.get("projected_free_cores") else "")
            rows.append([t["name"] + (f" (best: {t['best']})" if t.get("best") else "") + extra,
                         "–" if val is None else f"{val:.3g}{unit}",
                         f"{'<=' if name == 'memory' else '>='} {goal:g}{unit}", state])
    return _table(["target", "measured", "goal", "status"], rows)


def render_throughput(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"D = {s['D']}, N = {s['N']}, P = {s['P']}, λ = {s['lam']}, β = {s['beta']:g} "
           f"({s['representation']}, n = {s['n_spins']}); fastest of {s['rounds']} "
           f"interleaved rounds per item. *× GEMM bound* = time of `W @ A0` alone (same "
           "shapes, same BLAS threads) / time of the whole step; *× numpy* = time of the "
           "naive numpy step / spinicl's. " + _load_note(d), ""]
    rows = []
    for res in d["results"]:
        for r in res["rows"]:
            rows.append([r["sampler"], r["R"], r["blas_threads"], r["numba_threads"],
                         _g(1e3 * r["step_s"], ".3f"), _g(1e3 * r["gemm_s"], ".3f"),
                         _g(r["gemm_fraction"], ".2f"),
                         _g(r.get("numpy_step_s") and 1e3 * r["numpy_step_s"], ".3f"),
                         _g(r.get("speedup_vs_numpy"), ".2f"),
                         _g(r["chain_steps_per_s"], ".4g")])
    out += _table(["sampler", "R", "BLAS thr", "Numba thr", "step ms", "GEMM ms",
                   "× GEMM bound", "numpy ms", "× numpy", "chain-steps/s"], rows)
    b = d.get("breakdown")
    if b:
        out += ["", (f"MALA step at R = {b['R']} (1 thread): {1e3 * b['step_s']:.3f} ms = "
                f"energy+gradient kernel {1e3 * b['energy_grad_s']:.3f} ms (of which the "
                f"GEMM {1e3 * b['gemm_numba_s']:.3f} ms) + {b['R']}×n normals "
                f"{1e3 * b['normals_s']:.3f} ms + the rest {1e3 * b['rest_s']:.3f} ms "
                "(proposal, Metropolis test, copies, call).")]
    return out


def _ess_rows(rows: list[dict], label: str = "") -> list[list[Any]]:
    out = []
    for r in rows:
        name = f"{r['sampler']}/{r['precondition']}" + (f" ({label})" if label else "")
        if r["status"] != "ok":
            out.append([name, r["status"], "", "", "", "", "", "", ""])
            continue
        out.append([name, _g(r["chain_steps_per_s"], ".3g"), _g(r["ess_per_s_energy"], ".3g"),
                    _g(r["ess_per_s_slowest"], ".3g"), _g(r["ratio_energy"], ".3f"),
                    _g(r["ratio_slowest"], ".3f"), _g(r["tau_int_energy"], ".3g"),
                    _g(r["tau_int_slowest"], ".3g"), _g(r["acceptance"], ".2f")
                    + ("" if r["tau_reliable"] else " †")])
    return out


def render_ess(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"D = {s['D']}, N = {s['N']}, λ = {s['lam']}, β = {s['beta']:g}, R = "
           f"{s['replicas']} chains, {s['budget_seconds']:g} s per row (`spinicl.bench."
           "bench_samplers`, protocol in its docstring). *E/exact*, *slow/exact*: ESS per "
           "second of the energy / of the slowest-mode projection over the exact sampler's "
           "independent samples per second, same run. † τ uncertain (relative error > 20 % "
           "or run < 20 τ). " + _load_note(d)]
    head = ["sampler/precond", "chain-steps/s", "ESS/s E", "ESS/s slow", "E/exact",
            "slow/exact", "τ E", "τ slow", "accept"]
    for run in d["runs"]:
        rows = _ess_rows(run["rows"])
        rows += _ess_rows(run.get("matrix_free_rows", []), "matrix-free")
        lam1 = run["rows"][0].get("slowest_eigenvalue")
        out += ["", (f"**P = {run['P']}** (slowest active eigenvalue of A: {_g(lam1, '.4g')}; "
                f"best with the library defaults: {run['best']['sampler']}/"
                f"{run['best']['precondition']})"),
                ""]
        out += _table(head, rows)
    return out


def render_baoab_scan(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"BAOAB on the merged model, D = {s['D']}, N = {s['N']}, P = {s['P']}, β = "
           f"{s['beta']:g}, R = {s['replicas']} chains, {s['budget_seconds']:g} s per row; "
           "step as a fraction of the stability bound 2/√λ_max (library default 0.8), "
           "friction γ (default 1). Ratios to the exact sampler's samples/s "
           f"({d.get('exact_rate', d['exact']['chain_steps_per_s']):.4g}/s in this run), "
           "= (median BAOAB throughput of the preconditioner / exact samples/s) / τ: "
           "step and γ do not change the cost of a step. A τ below 1 means "
           "antithetic (negatively correlated) successive samples. " + _load_note(d), ""]
    rows = [[r["precondition"], _g(r["step_fraction"], ".2f"), _g(r["gamma"], ".2f"),
             _g(r["tau_int_energy"], ".2f"), _g(r["tau_int_slowest"], ".2f"),
             _g(r["ratio_energy"], ".3f"), _g(r["ratio_slowest"], ".3f"),
             _g(min(r["ratio_energy"], r["ratio_slowest"]), ".3f")] for r in d["rows"]]
    return out + _table(["precond", "step / bound", "γ", "τ E", "τ slow", "E/exact",
                         "slow/exact", "min"], rows)


def render_amp(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"N = {s['N']}, P = {s['P']}, λ = {s['lam']}, β = {s['beta']:g}, `{s['variant']}` "
           f"variant, damping {s['damping']}; time per sweep, one BLAS thread; every "
           "implementation reaches the same iterate (max relative difference after 3 "
           "sweeps). " + _load_note(d), ""]
    rows = []
    for r in d["results"]:
        agree = max(r["agreement_max_rel_diff"].values())
        rows.append([r["D"], r["n_spins"], _g(1e3 * r["vectorised_s"], ".3f"),
                     _g(1e3 * r["numpy_spin_loop_s"], ".2f"),
                     _g(r["speedup_vs_numpy_spin_loop"], ".1f"),
                     _g(1e3 * r["python_loop_s"], ".1f"),
                     _g(r["speedup_vs_python_loop"], ".0f"),
                     "skipped (no torch)" if r["torch_spin_loop_s"] is None else
                     _g(r["speedup_vs_torch_spin_loop"], ".0f"),
                     _g(agree, ".1e"),
                     (f"{r['paper_solve']['sweeps']} sweeps, "
                     f"{1e3 * r['paper_solve']['seconds']:.1f} ms, "
                     f"{100 * r['paper_solve']['relative_distance_to_m']:.2f} % from m")])
    out += _table(["D", "n", "vectorised ms/sweep", "numpy per-spin loop ms", "×",
                   "python loop ms", "×", "× torch loop", "agreement",
                   "paper rule (vectorised)"], rows)
    return out


def render_theory(d: dict) -> list[str]:
    out = [f"N = {d['settings']['N']}, λ = {d['settings']['lam']}, 2000 test prompts per "
           "test set. " + _load_note(d), ""]
    rows = []
    for key in ("dense_vs_D", "matrix_free_vs_D", "dense_vs_P", "matrix_free_vs_P"):
        for r in d[key]:
            rows.append([r["representation"], r["D"], r["n_spins"], r["P"],
                         _g(r["task_s"], ".2f"), _g(r["model_s"], ".2f"),
                         _g(r["theory_s"], ".2f"), _g(r["total_s"], ".2f")])
    out += _table(["representation", "D", "n", "P", "make_task s", "build_model s",
                   "gaussian_theory s", "total s"], rows)
    sl = d["slopes"]
    out += ["", "Log-log slopes of the (model + theory) time: " + ", ".join(
        f"{k.replace('_', ' ')} {v:.2f}" for k, v in sl.items() if v is not None) + "."]
    c = d["cli"]
    out += ["", f"`{c['command']}` (D = 20, P = 10⁴, with AMP and baselines, interpreter "
            f"start included): {c['seconds']:.2f} s"
            + ("." if c["ok"] else f" — failed: {c['error']}")]
    return out


def render_memory(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"P = {s['P']}, N = {s['N']}, λ = {s['lam']}, {s['sampler'].upper()}, one "
           "subprocess per row, peak resident set (VmHWM) of the whole process. "
           + _load_note(d), ""]
    rows = []
    for r in d["results"]:
        if "error" in r:
            rows.append([r["D"], r["replicas"], r.get("memory_budget") or "auto", "failed",
                         r["error"], "", "", "", ""])
            continue
        st = {x["stage"]: x for x in r["stages"]}
        steps = next(x for x in r["stages"] if x["stage"].endswith("_steps"))
        rows.append([r["D"], r["replicas"], r.get("memory_budget") or "auto",
                     r["representation"], _g(r["peak_rss_mb"], ".0f"),
                     _g(st["make_task"]["peak_rss_mb"], ".0f"),
                     _g(st["build_model"]["seconds"], ".1f"),
                     _g(st["sampler_setup"]["seconds"], ".1f"),
                     _g(1e3 * r["step_seconds"], ".1f")
                     + f" ({steps['stage'].split('_')[0]} steps)"])
    out += _table(["D", "R", "budget", "representation", "peak RSS MB",
                   "peak after make_task MB", "build_model s", "sampler setup s",
                   "ms/step"], rows)
    return out


def render_sweep(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"`demo` preset{' (reduced)' if s['reduced'] else ''}: {s['points']} points. "
           "*CPU s* = CPU time of the worker processes plus the coordinator's (with one "
           "local worker the points run in the coordinator itself); *cores used* = that "
           "CPU time / wall time; *projected with free cores* = workers × (CPU time with "
           "1 worker) / (CPU time with this configuration): an estimate of the speed-up on "
           "otherwise idle cores, not a measurement. "
           + _load_note(d), ""]
    rows = []
    for r in d["results"]:
        if "error" in r:
            rows.append([r["executor"], r["workers"], "failed", r["error"], "", "", "", ""])
            continue
        rows.append([r["executor"], r["workers"], _g(r["wall_s"], ".1f"),
                     _g(r.get("speedup_vs_1"), ".2f"),
                     _g(r.get("projected_speedup_free_cores"), ".2f"),
                     _g(r["sum_point_s"], ".1f"),
                     _g(r["worker_cpu_s"], ".1f"), _g(r["cpu_per_wall"], ".2f"),
                     f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f}"])
    out += _table(["executor", "workers", "wall s", "speed-up vs 1",
                   "projected with free cores", "Σ point s",
                   "CPU s", "cores used", "load (1 min)"], rows)
    return out


def render_peers(d: dict) -> list[str]:
    if d.get("skipped"):
        return [d["skipped"] + "."]
    s, jx = d["settings"], d.get("jax", {})
    thr = ("one thread each (Numba, BLAS and XLA's compute pool: "
           f"{jx.get('xla_compute_threads')} thread)" if s["threads"] == "1" else
           f"every library at its default (XLA compute pool: {jx.get('xla_compute_threads')} "
           "threads)")
    out = [f"Merged model, D = {s['D']}, N = {s['N']}, P = {s['P']}, λ = {s['lam']}, β = "
           f"{s['beta']:g} (n = {s['n_spins']}): the same A, h and β for every library, "
           f"{s['chains']} chains from the same exact draws, {s['budget_seconds']:g} s "
           "timed per row (¼ throughput, ¾ recording). JAX "
           f"{d['machine']['versions'].get('jax')} on {jx.get('backend', 'cpu').upper()}, "
           f"float64 {'on' if jx.get('x64') else 'off'}; {thr}. JAX rows: `lax.scan` blocks "
           f"of {s['block']} steps compiled ahead of time (compile time excluded, column "
           "*compile s*). τ and ESS from `spinicl.analysis.diagnostics.summarize` for every row "
           "(energy and projection on the slowest active mode); ESS/s = ESS per chain-step "
           "× chain-steps/s; *x/exact* = ESS/s over the exact sampler's samples/s. "
           "*grads* = gradient evaluations per chain-step (NUTS: mean over chains; vmapped "
           "NUTS runs each step until the chain with the largest tree is done, on average "
           + _g(next((r.get("grads_per_step_max_over_chains") for r in d["rows"]
                      if r["sampler"] == "numpyro nuts"), None), ".3g")
           + " gradient evaluations). *cores* = process CPU time / wall time of the timed phase. "
           + _load_note(d), ""]
    rows = [[r["sampler"], _g(r["chain_steps_per_s"], ".4g"), _g(r.get("grads_per_step"), ".3g"),
             _g(r.get("acceptance"), ".2f"), _g(r["tau_int_energy"], ".3g"),
             _g(r["tau_int_slowest"], ".3g") + ("" if r.get("tau_reliable", True) else " †"),
             _g(r["ess_per_s_energy"], ".4g"), _g(r["ess_per_s_slowest"], ".4g"),
             _g(r.get("ratio_energy"), ".3f"), _g(r.get("ratio_slowest"), ".3f"),
             _g(r.get("compile_seconds"), ".1f"), _g(r.get("cores_used"), ".2f")]
            for r in d["rows"]]
    out += _table(["sampler", "chain-steps/s", "grads", "accept", "τ E", "τ slow",
                   "ESS/s E", "ESS/s slow", "E/exact", "slow/exact", "compile s",
                   "cores"], rows)
    out += ["", "† τ uncertain (relative error > 20 % or run < 20 τ). Tuning:"]
    out += [f"- {r['sampler']}: {r['tuning']}" + (
            f" ({r['tuning_seconds']:.1f} s)" if r.get("tuning_seconds") else "")
            for r in d["rows"] if r.get("tuning")]
    for t in d.get("targets", []):
        out += ["", (f"{t['name']}: {_g(t['value'], '.2f')}x "
                f"({'met' if t['met'] else 'missed'}; goal {t['goal']:g}x)")]
    if d.get("ratios"):
        out += [", ".join(f"{k}: {v:.2f}x" for k, v in d["ratios"].items()) + "."]
    out += ["", f"Script time {d['seconds']:.0f} s."]
    return out


def _suite_target_rows(d: dict | None) -> list[list[Any]]:
    """The suite's targets for the Targets table (a time, or a ratio with its goal)."""
    rows = []
    for t in (d or {}).get("targets", []):
        state = ("not measured" if t.get("met") is None else
                 "**met**" if t["met"] else "**missed**")
        val = t.get("value")
        if t.get("goal") is None:       # time to the reference: spinicl's against every peer
            peers = ", ".join(f"{k} {'not reached' if v is None else f'{v:.3g} s'}"
                              for k, v in (t.get("peer_times") or {}).items())
            rows.append([f"{t['name']} (best: {t.get('best')})",
                         "not reached" if val is None else f"{val:.3g} s",
                         f"< every peer ({peers})", state])
            continue
        extra = (f"; without the dense preconditioner ({t['best_without_dense']}): "
                 f"{t['without_dense']:.3g}x" if t.get("without_dense") is not None else "")
        rows.append([f"{t['name']} (best: {t.get('best')}"
                     + (f", peer: {t['peer']}" if t.get("peer") else "") + f"){extra}",
                     "–" if val is None else f"{val:.3g}x", f">= {t['goal']:g}x", state])
    return rows


def render_suite(d: dict) -> list[str]:
    s = d["settings"]
    out = [f"`python bench/bench_suite.py` (`spinicl.suite.run_suite`, columns in the README's "
           f"\"Benchmark your own sampler\" and docs/model.md §6): R = {s['replicas']} chains "
           f"from the same starts for every row, {s['budget_seconds']:g} s timed per row, "
           f"relaxation budget {s['relax_seconds']:g} s, seed {s['seed']}, one thread each; "
           "each peer in its own process with a time limit (per target below). "
           "*x exact* = ESS/s slow over the exact sampler's samples/s; *bias*: max |z| "
           "against the exact moments (merged) or (⟨E⟩ − E_ref)/(n/2β) (factored); "
           "*t→ref*: seconds from the random start until the lowest chain energy is within "
           "n/(2β) of the reference. † τ uncertain. " + _load_note(d)
           + (f" {d['settings']['runs']}" if d["settings"].get("runs") else "")
           + (f" ({d['load_note']}.)" if d.get("load_note") else "")]
    for t in d.get("suite_targets", []):
        ref = t["references"]
        peers = (f"; peers {', '.join(t['peers_run'])}, each stopped after "
                 f"{t['peer_timeout']:g} s" if t.get("peers_run") else "")
        cond = (f"condition number {_g(ref['condition_number'], '.3g')}, "
                if ref["kind"] == "gaussian" else "")
        out += ["", (f"**{t['name']}** — {t['description']} (n = {ref['n']}, {cond}"
                     f"reference {ref['kind']}, E_ref = {ref['reference_energy']:.6g}"
                     f"{peers})"), ""]
        rows = []
        for r in d["rows"]:
            if r["target"] != t["name"]:
                continue
            if r["status"] != "ok":
                rows.append([r["sampler"], r["status"], "", "", "", "", "", "", ""])
                continue
            bias = (f"{r['max_abs_z']:.2f}" if r.get("max_abs_z") is not None else
                    f"{r['energy_excess_thermal']:+.2f} nT/2"
                    if r.get("energy_excess_thermal") is not None else "–")
            setup = (r.get("setup_seconds") if r["kind"] != "peer" else
                     (r.get("compile_seconds") or 0) + (r.get("tuning_seconds") or 0))
            rows.append([r["sampler"] + ("" if r.get("tau_reliable") else " †"),
                         _g(r["chain_steps_per_s"], ".4g"), _g(r["ess_per_s_energy"], ".4g"),
                         _g(r["ess_per_s_slowest"], ".4g"), _g(r.get("ratio_slowest"), ".3f"),
                         bias, _g(r.get("time_to_reference"), ".3g") if r.get("reached")
                         else "not reached", _g(r.get("acceptance"), ".2f"),
                         _g(setup, ".1f")])
        out += _table(["sampler", "chain-steps/s", "ESS/s E", "ESS/s slow", "x exact",
                       "bias", "t→ref s", "accept", "setup / compile+tune s"], rows)
    if d.get("timed_out"):
        out += ["", "Timed out: " + "; ".join(d["timed_out"]) + "."]
    out += ["", f"Script time {d['seconds']:.0f} s. Figure: `bench/results/suite.png`."]
    return out


SECTIONS = (("throughput", "Throughput against the GEMM bound", render_throughput),
            ("ess", "Effective samples per second against the exact sampler", render_ess),
            ("baoab_scan", "BAOAB step size and friction scan", render_baoab_scan),
            ("amp", "AMP: vectorised sweep against per-spin loops", render_amp),
            ("theory", "Exact theory: time against D and P", render_theory),
            ("memory", "Peak memory with the automatic representation", render_memory),
            ("sweep", "Sweep scaling", render_sweep),
            ("peers", "Peers (optional)", render_peers),
            ("suite", "Sampler suite: spinicl against the peers on every target",
             render_suite))


def render(run: dict | None) -> str:
    data = {name: _load(name) for name, _, _ in SECTIONS}
    first = next((d for d in data.values() if d), None)
    machine = run["machine"] if run else (first or {}).get("machine")
    out = ["# spinicl benchmark results", "",
           ("Generated by `python bench/run_all.py` (this file is overwritten; the analysis "
           "comes from `bench/NOTES.md`). Raw numbers: `bench/results/*.json`, console "
           "output: `bench/results/*.log`. Every ratio is measured within one run on one "
           "machine; absolute timings depend on the machine *and on its load* — this one "
           "was shared with other jobs (see the load averages)."), "", "## Machine", ""]
    if machine:
        out += render_machine(machine, run)
    out += ["", "## Targets", ""] + render_targets(data)
    for name, title, fn in SECTIONS:
        out += ["", f"## {title}", ""]
        d = data[name]
        out += fn(d) if d else ["(not run)"]
    notes = HERE / "NOTES.md"
    if notes.exists():
        out += ["", notes.read_text().strip()]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller budgets")
    ap.add_argument("--only", nargs="*", choices=list(BENCHES), default=None)
    ap.add_argument("--skip", nargs="*", choices=list(BENCHES), default=[])
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    run_path = RESULTS / "run_all.json"
    if args.render_only:
        run = json.loads(run_path.read_text()) if run_path.exists() else None
    else:
        t0 = time.perf_counter()
        run = {"machine": machine_info(), "load_start": load_average(), "quick": args.quick,
               "benches": []}
        for name, (full, quick, timeout) in BENCHES.items():
            if (args.only is not None and name not in args.only) or name in args.skip:
                continue
            run["benches"].append(run_bench(name, quick if args.quick else full, timeout))
        run["load_end"] = load_average()
        run["seconds"] = time.perf_counter() - t0
        partial = args.only is not None or bool(args.skip)
        if partial and run_path.exists():
            # keep the full run's record; note the partial re-run beside it
            full = json.loads(run_path.read_text())
            done = {b["name"] for b in run["benches"]}
            full["benches"] = [b for b in full.get("benches", []) if b["name"] not in done]
            full["benches"] += run["benches"]
            full.setdefault("reruns", []).append(
                {"date": run["machine"]["date"], "benches": sorted(done),
                 "load_start": run["load_start"], "seconds": run["seconds"]})
            run = full
        run_path.write_text(json.dumps(run, indent=1) + "\n")
    text = render(run)
    (HERE / "RESULTS.md").write_text(text)
    say(f"\nwrote {HERE / 'RESULTS.md'}"
        + (f" ({run['seconds'] / 60:.1f} min)" if run and "seconds" in run else ""))
    failed = [b["name"] for b in (run or {}).get("benches", []) if b["returncode"] != 0]
    if failed:
        say("benchmarks that failed: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
