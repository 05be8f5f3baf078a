"""Command line: ``spinicl theory | ...`` (click). Thin: parse, validate, call, print.

Every bad value ends in one line on stderr naming the parameter and its allowed range,
exit status 2, no traceback, before any work starts.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import click
import numpy as np

from spinicl import __version__
from spinicl.config import ConfigError, SampleConfig, TaskConfig, check_beta

# --------------------------------------------------------------------------- helpers


def _task_options(func):
    """The options that define a task and its energy (shared by every command)."""
    opts = [
        click.option("--D", "D", type=int, default=20, show_default=True,
                     help="Token dimension D (>= 1)."),
        click.option("--N", "N", type=int, default=100, show_default=True,
                     help="Context length N (>= 1)."),
        click.option("--P", "P", type=int, default=10_000, show_default=True,
                     help="Number of pre-training prompts P (>= 1)."),
        click.option("--K", "K", type=int, default=None,
                     help="Task diversity: size of the task pool, 1..P [default: P, one task "
                          "per prompt]."),
        click.option("--lam", type=float, default=0.01, show_default=True,
                     help="Weight decay λ of E = E0 + (λ/2)‖W‖² (> 0 to define a "
                          "distribution)."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Root seed of every random number (>= 0)."),
        click.option("--sigma-x", type=float, default=1.0, show_default=True,
                     help="Input scale σ_x (> 0)."),
        click.option("--sigma-w", type=float, default=1.0, show_default=True,
                     help="Task-vector scale σ_w (> 0)."),
        click.option("--sigma-eps", type=float, default=0.0, show_default=True,
                     help="Label-noise scale σ_ε (>= 0)."),
        click.option("--rho", type=float, default=0.0, show_default=True,
                     help="Correlation between the N+1 tokens of a prompt, in (-1/N, 1)."),
        click.option("--rho-variant", type=click.Choice(["intended", "paper"]),
                     default="intended", show_default=True,
                     help="'intended': token covariance C; 'paper': the paper's code, LᵀL."),
        click.option("--test-prompts", type=int, default=2000, show_default=True,
                     help="Prompts in each test set (novel-task and in-distribution)."),
        click.option("--representation", type=click.Choice(["auto", "dense", "matrix-free"]),
                     default="auto", show_default=True,
                     help="Data term: dense Gram matrix A or matrix-free factors c, q."),
        click.option("--memory-budget", type=str, default=None,
                     help="Memory the representation may use, e.g. 4GB [default: half the "
                          "available RAM]."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def task_config(kw: dict[str, Any]) -> TaskConfig:
    """Pop the task options out of ``kw`` and validate them."""
    keys = ("D", "N", "P", "K", "lam", "seed", "sigma_x", "sigma_w", "sigma_eps", "rho",
            "rho_variant", "test_prompts")
    return TaskConfig(**{k: kw.pop(k) for k in keys})


def _json_clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/Inf → null, numpy scalars/arrays → Python."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_clean(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not math.isfinite(float(obj)) else float(obj)
    return obj


def print_json(obj: Any) -> None:
    click.echo(json.dumps(_json_clean(obj), indent=2))


def _fmt(x: Any, width: int = 12) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—".rjust(width)
    if isinstance(x, (int, np.integer)):
        return str(x).rjust(width)
    ax = abs(x)
    s = f"{x:.4g}" if (ax >= 1e4 or (ax < 1e-3 and ax != 0)) else f"{x:.4f}"
    return s.rjust(width)


# --------------------------------------------------------------------------- group
@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.version_option(__version__, prog_name="spinicl")
def cli() -> None:
    """spinicl: linear attention trained on in-context regression, as a spin glass.

    Li, Bai & Huang, arXiv:2408.02288. E(W) = (1/2P) Σ_μ (y_q − ŷ)² + (λ/2)‖W‖², a mean
    over prompts; p(W) ∝ exp(−βE). Note that β = 100 (the paper's value) is hot: samples
    approach the ground state only for β ≳ 10⁴.
    """


# --------------------------------------------------------------------------- theory
@cli.command()
@_task_options
@click.option("--beta", type=float, default=None,
              help="Inverse temperature β (> 0) [default: 100, the paper's value].")
@click.option("--T", "T", type=float, default=None, help="Temperature T = 1/β (> 0).")
@click.option("--model", type=click.Choice(["merged", "factored"]), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=int, default=None, help="Rank d_k of the factors [default: D+1].")
@click.option("--amp-variant", type=click.Choice(["paper", "onsager"]), default="paper",
              show_default=True, help="AMP/cavity iteration: the paper's (no Onsager term) or "
              "with the Onsager reaction term (fixed point = m).")
@click.option("--amp-damping", type=float, default=0.9, show_default=True,
              help="AMP damping θ in [0, 1): weight of the old iterate.")
@click.option("--amp-tol", type=float, default=None,
              help="AMP tolerance (paper: mean squared change 1e-6; onsager: residual "
                   "‖Am−h‖/‖h‖ 1e-12).")
@click.option("--amp-max-sweeps", type=int, default=None,
              help="AMP sweep limit [paper: 100; onsager: 10⁴].")
@click.option("--no-amp", is_flag=True, help="Skip the AMP iteration.")
@click.option("--no-baselines", is_flag=True, help="Skip the one-step-GD/Bayes baselines.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def theory(beta, T, model, dk, amp_variant, amp_damping, amp_tol, amp_max_sweeps, no_amp,
           no_baselines, as_json, representation, memory_budget, **kw):
    """Exact solution: ground state, closed-form thermal averages, free energy.

    The merged model is Gaussian (mean m = A⁻¹h, covariance (βA)⁻¹); the factored model's
    ground state is the nuclear-norm problem min E0(W) + λ‖W‖_*.
    """
    from spinicl.models import build_model, choose_representation
    from spinicl.prompts import make_task

    cfg = task_config(kw)
    if beta is not None and T is not None:
        raise ConfigError("beta", "given alone (use --beta or --T, not both)", beta)
    if T is not None:
        beta = 1.0 / check_beta(T, "T")
    beta = check_beta(100.0 if beta is None else beta)
    if cfg.lam <= 0:
        raise ConfigError("lam", "> 0 for the exact Boltzmann distribution", cfg.lam,
                          "with lam = 0 the inactive spins are free")
    if model == "factored" and dk is not None and dk < cfg.D + 1:
        raise ConfigError("dk", f">= D+1 = {cfg.D + 1} for the exact factored ground state",
                          dk)
    run_amp = model == "merged" and not no_amp
    if run_amp and representation == "auto":
        # AMP needs the dense couplings: take them whenever they fit the budget.
        try:
            representation = choose_representation(cfg.D, cfg.P, "dense", memory_budget)
        except ConfigError:
            pass
    rep = choose_representation(cfg.D, cfg.P, representation, memory_budget)
    if run_amp:
        from spinicl.amp import validate_amp_options

        validate_amp_options(amp_variant, amp_damping, amp_tol, amp_max_sweeps)
        if rep != "dense":
            raise ConfigError("representation", "dense for AMP (it needs the dense couplings "
                              "J∘J, no matrix-free form; raise --memory-budget or pass "
                              "--no-amp)", rep)
    t0 = time.perf_counter()
    # the raw test contexts (2·test_prompts·N·D doubles) only for the per-prompt baselines
    task = make_task(cfg, keep_test_context=not no_baselines)
    merged = build_model(task, "merged", representation=representation,
                         memory_budget=memory_budget)
    from spinicl.theory import factored_ground_state, gaussian_theory

    th = gaussian_theory(merged, task, seed=cfg.seed)
    result: dict[str, Any] = {"spinicl_version": __version__, "model": model,
                              "config": cfg.to_dict(), "seeds": task.seeds,
                              "representation": merged.representation}
    result.update(th.summary(beta))
    if run_amp:
        from spinicl.amp import amp_for_model
        from spinicl.models import mse as _mse

        amp = amp_for_model(merged, beta, variant=amp_variant, damping=amp_damping,
                            tol=amp_tol, max_sweeps=amp_max_sweeps, seed=cfg.seed,
                            m_exact=th.mean)
        result.update(amp.as_dict())
        result["amp_test_mse_novel"] = float(_mse(amp.m[None], task.test_novel)[0])
        result["amp_test_mse_in_distribution"] = float(
            _mse(amp.m[None], task.test_in_distribution)[0])
    if not no_baselines:
        from spinicl.baselines import baselines as _baselines

        result.update(_baselines(task))
    if model == "factored":
        fm = build_model(task, "factored", dk=dk, representation=representation,
                         memory_budget=memory_budget)
        gs = factored_ground_state(fm)
        from spinicl.models import alignment, gd_cosine, mse

        W = gs.W[None]
        fact = {
            "n_spins": fm.n_spins,
            "dk": fm.dk,
            "energy_ground": gs.energy,
            "data_energy_ground": gs.data_energy,
            "nuclear_norm": gs.nuclear_norm,
            "rank": gs.rank,
            "train_mse": float(mse(W, task.train)[0]),
            "test_mse_novel": float(mse(W, task.test_novel)[0]),
            "test_mse_in_distribution": float(mse(W, task.test_in_distribution)[0]),
            "alignment": float(alignment(W)[0]),
            "gd_cosine": float(gd_cosine(W)[0]),
            "relative_distance_to_merged_ground_state":
                float(np.linalg.norm(gs.W - th.mean) / np.linalg.norm(th.mean)),
            "merged_energy_ground": th.energy_ground,
            "iterations": gs.iterations,
            "converged": gs.converged,
        }
        result = {k: v for k, v in result.items()
                  if k in ("spinicl_version", "model", "config", "seeds", "representation",
                           "beta", "temperature") or k.startswith("baseline_")}
        result.update(fact)
        for k in ("energy_mean", "overlap_mean", "self_overlap_mean", "free_energy"):
            result[k] = float("nan")  # no closed form for the quartic model
    result["seconds"] = time.perf_counter() - t0
    if as_json:
        print_json(result)
    elif model == "factored":
        _print_factored(result, cfg)
    else:
        _print_merged(result, th, cfg, beta)


def _header(cfg: TaskConfig, result: dict) -> list[str]:
    K = "P" if cfg.K is None else str(cfg.K)
    return [
        f"spinicl theory — {result['model']} linear attention   (spinicl {__version__})",
        (f"task: D={cfg.D}  N={cfg.N}  P={cfg.P} (α = P/D² = {cfg.alpha:.3g})  K={K}  "
         f"λ={cfg.lam:g}  σx={cfg.sigma_x:g} σw={cfg.sigma_w:g} σε={cfg.sigma_eps:g}  "
         f"ρ={cfg.rho:g}  seed={cfg.seed}  test prompts={cfg.test_prompts}"),
    ]


def _print_merged(r: dict, th, cfg: TaskConfig, beta: float) -> None:
    lines = _header(cfg, r)
    lines.append(f"spins: n = {r['n_spins']} ({r['n_active']} active; the last column of W "
                 f"never enters a prediction)   representation: {r['representation']}"
                 + ("" if r["traces_exact"] else "   (traces: Hutchinson estimates)"))
    lines.append(f"β = {beta:g}  (T = {1 / beta:.3g})")
    lines.append("")
    lines.append(f"{'':34s}{'ground state m':>16s}{'⟨·⟩ at β':>16s}")
    rows = [
        ("energy E", r["energy_ground"], r["energy_mean"]),
        ("training MSE", r["train_mse"], r["train_mse_mean"]),
        ("test MSE, novel tasks (ICL)", r["test_mse_novel"], r["test_mse_novel_mean"]),
        ("test MSE, in-distribution", r["test_mse_in_distribution"],
         r["test_mse_in_distribution_mean"]),
        ("overlap q_ab / self-overlap Q", r["overlap_mean"], r["self_overlap_mean"]),
        ("q/Q (all spins / active)", r["overlap_ratio"], r["overlap_ratio_active"]),
        ("alignment (cosine with I)", r["alignment"], None),
        ("cosine with one-step GD", r["gd_cosine"], None),
        ("‖W − m‖²/n", 0.0, r["distance_to_ground_state_mean"]),
    ]
    for name, a, b in rows:
        lines.append(f"  {name:32s}{_fmt(a, 16)}{_fmt(b, 16)}")
    lines.append(f"  {'free energy per spin f(β)':32s}{'':16s}{_fmt(r['free_energy'], 16)}")
    lines += _amp_and_baseline_lines(r)
    thermal = r["thermal_energy"]
    lines.append("")
    hot = thermal / max(r["energy_ground"], 1e-300)
    verdict = ("hot: thermal noise dominates; samples approach m only for β ≳ 10⁴"
               if hot > 1 else "cold: samples sit near the ground state" if hot < 0.1
               else "crossover between thermal noise and the ground state")
    lines.append(f"How hot is β = {beta:g}? ⟨E⟩ − E(m) = n/(2β) = {thermal:.4g} against "
                 f"E(m) = {r['energy_ground']:.4g} ({hot:.3g}×) — {verdict}.")
    lines.append(f"({r['seconds']:.2f} s)")
    click.echo("\n".join(lines))


def _amp_and_baseline_lines(r: dict) -> list[str]:
    """Rows comparing the exact ground state, AMP and the ICL baselines."""
    out = ["", f"{'novel-task test MSE (ICL error)':34s}{'value':>16s}{'vs exact m':>16s}"]
    exact = r["test_mse_novel"]

    def row(name, value, note=""):
        if value is None:
            return
        out.append(f"  {name:32s}{_fmt(value, 16)}{_fmt(value - exact, 16)}  {note}")

    row("exact ground state m", exact)
    if "amp_variant" in r:
        conv = "converged" if r["amp_converged"] else "NOT converged"
        row(f"AMP ({r['amp_variant']}, β={r['beta']:g})", r["amp_test_mse_novel"],
            f"{r['amp_iterations']} sweeps, {conv}; ‖m_AMP−m‖/‖m‖ = "
            f"{100 * r['amp_relative_distance']:.2f} %; v vs exact: median "
            f"{100 * r['amp_v_median_relative_error']:.2f} %")
    row("one-step gradient descent", r.get("baseline_gd_test_mse_novel"),
        f"step η = {r.get('baseline_gd_eta', float('nan')):.3f} fitted on the training prompts")
    row("Bayes-optimal ridge (per prompt)", r.get("baseline_bayes_test_mse_novel"),
        "the lower bound for any in-context learner")
    row("discrete-pool posterior (dMMSE)", r.get("baseline_dmmse_test_mse_novel"),
        "the memorising Bayes predictor")
    out.append("  AMP 'paper' is the paper's iteration without the Onsager reaction term: its "
               "fixed point sits a few % from m,")
    out.append("  so its test MSE differs from the exact one; 'onsager' converges to m itself. "
               "The baselines are the algorithms")
    out.append("  in-context learning is said to implement, on the same novel-task prompts.")
    return out


def _print_factored(r: dict, cfg: TaskConfig) -> None:
    lines = _header(cfg, r)
    lines.append(f"spins: 2·d_k·(D+1) = {r['n_spins']} (d_k = {r['dk']})   "
                 f"representation: {r['representation']}")
    lines.append("ground state: min E0(W) + λ‖W‖_* (nuclear norm; = the factored minimum for "
                 "d_k ≥ D+1)")
    lines.append("")
    rows = [
        ("energy E_fact = E0 + λ‖W‖_*", r["energy_ground"]),
        ("data energy E0", r["data_energy_ground"]),
        ("nuclear norm ‖W‖_*", r["nuclear_norm"]),
        ("rank of W", r["rank"]),
        ("training MSE", r["train_mse"]),
        ("test MSE, novel tasks (ICL)", r["test_mse_novel"]),
        ("test MSE, in-distribution", r["test_mse_in_distribution"]),
        ("alignment (cosine with I)", r["alignment"]),
        ("cosine with one-step GD", r["gd_cosine"]),
        ("merged ridge energy E(m)", r["merged_energy_ground"]),
        ("‖W − m‖/‖m‖ (m: merged ridge)", r["relative_distance_to_merged_ground_state"]),
    ]
    for name, a in rows:
        lines.append(f"  {name:34s}{_fmt(a, 14)}")
    lines.append(f"(proximal gradient: {r['iterations']} iterations, "
                 f"{'converged' if r['converged'] else 'NOT converged'}; {r['seconds']:.2f} s)")
    click.echo("\n".join(lines))


# --------------------------------------------------------------------------- sample
def _sampling_options(func):
    opts = [
        click.option("--model", type=click.Choice(["merged", "factored"]), default="merged",
                     show_default=True, help="Merged W, or factored W = W_qᵀW_k."),
        click.option("--dk", type=int, default=None, help="Rank d_k of the factors "
                     "[default: D+1]."),
        click.option("--sampler", type=click.Choice(["mala", "ula", "baoab", "exact"]),
                     default="mala", show_default=True, help="Local move."),
        click.option("--step", type=float, default=None,
                     help="Step size η in units of E (stable below 2/λ_max(A) for ula and "
                          "mala, 2/√λ_max(A) for baoab) [default: from the spectrum]."),
        click.option("--gamma", type=float, default=1.0, show_default=True,
                     help="BAOAB friction γ (> 0)."),
        click.option("--precondition", type=click.Choice(["none", "diag", "dense"]),
                     default="none", show_default=True,
                     help="Preconditioner: none, diagonal, or dense A⁻¹ (merged only)."),
        click.option("--temps", type=str, default=None,
                     help="Ladder: TMIN:TMAX:COUNT (geometric) or T1,T2,... "
                          "[default: 1e-5:1e-1:8; β = 100 is hot, DESIGN §1.3]."),
        click.option("--beta", type=float, default=None,
                     help="A single inverse temperature instead of a ladder."),
        click.option("--copies", type=int, default=2, show_default=True,
                     help="Replicas per temperature (>= 2 for overlaps)."),
        click.option("--steps", type=int, default=20_000, show_default=True,
                     help="Production steps after burn-in."),
        click.option("--burn-in", type=int, default=5_000, show_default=True,
                     help="Burn-in steps (step sizes and ladder adapt only here)."),
        click.option("--record-every", type=int, default=20, show_default=True,
                     help="Steps between records."),
        click.option("--swap-every", type=int, default=10, show_default=True,
                     help="Steps between replica-exchange rounds."),
        click.option("--adapt-ladder/--no-adapt-ladder", default=False, show_default=True,
                     help="Equalise swap rejection during burn-in (Syed et al. 2021)."),
        click.option("--snapshot-every", type=int, default=0, show_default=True,
                     help="Records between weight snapshots (0: none)."),
        click.option("--flush-every", type=int, default=50, show_default=True,
                     help="Records between flushes and checkpoints (also every 5 s)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


SAMPLE_KEYS = ("model", "dk", "sampler", "step", "gamma", "precondition", "copies", "steps",
               "burn_in", "record_every", "swap_every", "adapt_ladder", "snapshot_every",
               "flush_every", "representation", "memory_budget")


def _load_toml(path: str, ctx: click.Context, kw: dict) -> None:
    """Fill options not given on the command line from a TOML file (same keys)."""
    import tomllib

    from click.core import ParameterSource

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("config", "a readable TOML file", path, exc.strerror) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", "valid TOML", path, str(exc)) from None
    names = {p.name for p in ctx.command.params}
    for key, value in data.items():
        name = key.replace("-", "_")
        name = {"d": "D", "n": "N", "p": "P", "k": "K"}.get(name, name)
        if name not in names or name in ("config", "out", "force"):
            raise ConfigError("config", f"a TOML file with known keys ({path})", key,
                              "unknown key")
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            kw[name] = value


def sample_config_from_options(kw: dict) -> SampleConfig:
    from spinicl.config import parse_temperatures

    temps = parse_temperatures(kw.pop("temps"), kw.pop("beta"))
    task = task_config(kw)
    return SampleConfig(task=task, temperatures=temps, **{k: kw.pop(k) for k in SAMPLE_KEYS})


@cli.command()
@_task_options
@_sampling_options
@click.option("--out", "-o", type=str, default="run.h5", show_default=True,
              help="Output HDF5 file.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--config", "config_file", type=str, default=None,
              help="TOML file with the same keys; command-line values override it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.pass_context
def sample(ctx, out, force, config_file, quiet, **kw):
    """Sample the Boltzmann distribution with replica exchange; stream to HDF5.

    Records every observable of DESIGN §1.6 per temperature and copy; Ctrl-C stops
    cleanly (resume with `spinicl resume FILE`); a killed run resumes bit for bit.
    """
    from spinicl.runner import run_sample

    if config_file:
        _load_toml(config_file, ctx, kw)
    cfg = sample_config_from_options(kw)
    cmd = "spinicl " + " ".join(sys.argv[1:])
    res = run_sample(cfg, out, force=force, command_line=cmd, progress=not quiet)
    _finish(res)


def _finish(res) -> None:
    if res.status == "complete":
        click.echo(f"wrote {res.path}: {res.n_records} records, {res.step} steps "
                   f"(status complete). Summary: spinicl info {res.path}")
    else:
        click.echo(f"spinicl: {res.status}: {res.message}", err=True)
        click.echo(f"{res.path}: {res.n_records} records kept", err=True)
    if res.exit_code:
        sys.exit(res.exit_code)


@cli.command()
@click.argument("path", type=str)
@click.option("--steps", type=int, default=None,
              help="New number of production steps (default: the original).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def resume(path, steps, quiet):
    """Continue a run from its last checkpoint (after Ctrl-C, a kill or a crash).

    The resumed run equals an uninterrupted one bit for bit.
    """
    from spinicl.runner import resume_run

    if steps is not None:
        from spinicl.config import check_int

        check_int("steps", steps, 1)
    _finish(resume_run(path, steps, progress=not quiet))


@cli.command()
@click.argument("path", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(path, as_json):
    """Config, status, progress and a summary table (exact values and z-scores)."""
    from spinicl.runner import file_info

    data = file_info(path)
    if as_json:
        print_json(data)
        return
    click.echo(format_info(data))


def format_info(d: dict) -> str:
    c = d["config"]
    t = c["task"]
    lines = [
        f"{d['path']}: spinicl run, status {d['status']}"
        + (f" — {d['message']}" if d.get("message") else ""),
        (f"model {c['model']}, sampler {c['sampler']}, {len(d['temperatures'])} temperatures "
         f"× {c['copies']} copies; D={t['D']} N={t['N']} P={t['P']} λ={t['lam']:g} "
         f"seed={t['seed']}"),
        (f"progress: step {d['step']} of {d['total_steps']} (burn-in {c['burn_in']}), "
         f"{d['n_records']} records"),
    ]
    if d.get("swap_accept") is not None:
        lines.append("swap acceptance per pair: "
                     + " ".join(_fmt(x, 5).strip() for x in d["swap_accept"]))
    lines.append("")
    lines.append(f"{'observable':26s}{'T':>10s} {'mean':>11s} {'± stderr':>10s} "
                 f"{'exact':>11s} {'z':>6s} {'τ_int':>7s} {'ESS':>8s}")
    for name, rows in d["summary"].items():
        for k, row in enumerate(rows):
            z = row.get("z")
            zs = f"{z:+6.2f}" if z is not None else "".rjust(6)
            tau = f"{row['tau_int']:7.1f}" if np.isfinite(row["tau_int"]) else "—".rjust(7)
            ess = f"{row['ess']:8.0f}" if np.isfinite(row["ess"]) else "—".rjust(8)
            lines.append(
                f"{(name if k == 0 else ''):26s}{d['temperatures'][k]:10.3g} "
                f"{_fmt(row['mean'], 11)} {_fmt(row['stderr'], 10)} {_fmt(row['exact'], 11)} "
                f"{zs} {tau} {ess}")
    worst = d.get("max_abs_z")
    if worst is not None:
        lines.append("")
        lines.append(f"largest |z| against the closed forms: {worst:.2f} "
                     f"({'consistent' if worst < 5 else 'INCONSISTENT'} at 5 standard errors)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- train
@cli.command()
@_task_options
@click.option("--model", type=click.Choice(["merged", "factored"]), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=int, default=None, help="Rank d_k of the factors [default: D+1].")
@click.option("--optimizer", type=click.Choice(["gd", "sgd", "adam"]), default="adam",
              show_default=True, help="Full-batch GD, minibatch SGD, or Adam.")
@click.option("--lr", type=float, default=None,
              help="Learning rate (> 0) [default: gd 1/λ_max(A), sgd from the curvature, "
                   "adam 1e-3].")
@click.option("--epochs", type=int, default=5000, show_default=True, help="Epochs (>= 1).")
@click.option("--batch-size", type=int, default=None,
              help="Minibatch size in 1..P (sgd) [default: min(64, P); gd and adam: P].")
@click.option("--init-scale", type=float, default=None,
              help="Std of the initial entries [default: 1/√(D+1), as the paper].")
@click.option("--torch-weight-decay", type=float, default=None,
              help="Convenience: torch's Adam weight_decay WD on a mean-squared loss "
                   "minimises E with λ = WD/2 (the paper's wd = 0.01 is λ = 0.005). Sets "
                   "--lam; give one or the other.")
@click.option("--record-every", type=int, default=1, show_default=True,
              help="Epochs between recorded losses.")
@click.option("--out", "-o", type=str, default="train.h5", show_default=True,
              help="Output HDF5 file (/training).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.pass_context
def train(ctx, model, dk, optimizer, lr, epochs, batch_size, init_scale, torch_weight_decay,
          record_every, out, force, as_json, quiet, representation, memory_budget, **kw):
    """Train linear attention (GD, SGD or Adam) on the same prompts and energy E.

    --lam is always λ of E = E0 + (λ/2)‖W‖² (merged) or E0(W_qᵀW_k) + (λ/2)(‖W_q‖²+‖W_k‖²)
    (factored). Reports where training lands relative to the exact ground state (m for
    the merged model, the nuclear-norm optimum for the factored one).
    """
    from click.core import ParameterSource

    from spinicl.progress import ProgressLine
    from spinicl.prompts import make_task
    from spinicl.store import check_new_file
    from spinicl.training import (
        TrainConfig,
        compare_to_ground_state,
        torch_weight_decay_to_lam,
        write_training,
    )
    from spinicl.training import train as run_training

    if torch_weight_decay is not None:
        if ctx.get_parameter_source("lam") != ParameterSource.DEFAULT:
            raise ConfigError("torch_weight_decay", "given without --lam (it sets λ = WD/2)",
                              torch_weight_decay)
        kw["lam"] = torch_weight_decay_to_lam(torch_weight_decay)
    cfg = task_config(kw)
    tcfg = TrainConfig(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                       model=model, dk=dk, init_scale=init_scale, seed=cfg.seed,
                       record_every=record_every, representation=representation)
    if batch_size is not None and not 1 <= batch_size <= cfg.P:
        raise ConfigError("batch_size", f"an integer in 1..P = {cfg.P}", batch_size)
    check_new_file(out, force)
    task = make_task(cfg, keep_test_context=False)
    bar = ProgressLine(epochs, "epochs", enabled=not quiet)
    result = run_training(task, tcfg, lam=cfg.lam, memory_budget=memory_budget,
                          progress=lambda done, total: bar.update(done))
    bar.update(result.epochs_run, force=True)
    bar.close()
    comp = compare_to_ground_state(task, result, cfg.lam)
    write_training(out, task, result, comp, command_line="spinicl " + " ".join(sys.argv[1:]),
                   force=force)
    data = {"out": out, "lam": cfg.lam, "optimizer": optimizer, "lr": result.lr,
            "epochs": result.epochs_run, "diverged": result.diverged,
            "seconds": result.seconds, **comp}
    if as_json:
        print_json(data)
        return
    rows = [("final energy E", "final_energy"), ("training MSE", "train_mse"),
            ("test MSE, novel tasks", "test_mse_novel"),
            ("test MSE, in-distribution", "test_mse_in_distribution"),
            ("ground-state energy", "ground_state_energy"),
            ("ground-state test MSE (novel)", "ground_state_test_mse_novel"),
            ("‖W − W₀‖/‖W₀‖", "relative_distance_to_ground_state"),
            ("cosine with the ground state", "cosine_to_ground_state"),
            ("alignment (cosine with I)", "alignment"),
            ("cosine with one-step GD", "gd_cosine")]
    lines = [f"spinicl train — {model} attention, {optimizer} (lr {result.lr:.3g}), "
             f"{result.epochs_run} epochs, λ = {cfg.lam:g}, {result.seconds:.1f} s"
             + ("  DIVERGED" if result.diverged else "")]
    lines += [f"  {name:32s}{_fmt(data.get(key), 14)}" for name, key in rows]
    lines.append(f"wrote {out}")
    click.echo("\n".join(lines))


@cli.command()
@click.argument("run_file", type=str)
@click.argument("train_file", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_out", type=str, default=None,
              help="Also draw the Fig. 2-style figure (heatmaps + loss curves) to this PNG.")
@click.option("--temperature", type=float, default=None,
              help="Temperature of the Boltzmann mean in the figure [default: coldest].")
def compare(run_file, train_file, as_json, plot_out, temperature):
    """Where a trained model sits in the sampled Boltzmann distribution, per temperature.

    Percentile and z-score of its energy and test MSE among the samples, and its distance
    to the sampled mean (snapshots, or the exact mean m).
    """
    from spinicl.compare import (
        compare_run_and_training,
        format_compare_table,
        plot_weights_and_losses,
    )

    d = compare_run_and_training(run_file, train_file)
    if plot_out:
        d["figure"] = plot_weights_and_losses(run_file, train_file, out=plot_out,
                                              temperature=temperature)
    if as_json:
        print_json(d)
        return
    click.echo(format_compare_table(d))
    if plot_out:
        click.echo("wrote " + ", ".join(d["figure"]))


# --------------------------------------------------------------------------- sweep
@cli.command()
@click.argument("config_file", required=False, type=str)
@click.option("--preset", type=str, default=None,
              help="A built-in sweep instead of a TOML file: demo, theory-demo.")
@click.option("--out", "-o", type=str, default=None,
              help="Sweep HDF5 file [default: sweep.h5, or PRESET.h5].")
@click.option("--executor", type=click.Choice(["local", "dask", "dask-local"]),
              default="local", show_default=True,
              help="Process pool, an existing Dask cluster, or a Dask LocalCluster.")
@click.option("--workers", type=int, default=None,
              help="Local processes / LocalCluster workers [default: all cores].")
@click.option("--scheduler", type=str, default=None,
              help="Dask scheduler address (with --executor dask), e.g. tcp://host:8786.")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write phase.png (and .pdf) beside the sweep file when it completes.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def sweep(config_file, preset, out, executor, workers, scheduler, plot, quiet):
    """Run a temperature × task-diversity sweep (TOML grid or --preset).

    One grid point = one disorder sample = one run; replica exchange covers the
    temperature axis inside it. Rerunning the same command continues an interrupted sweep
    (completed points are skipped; failed ones are retried).
    """
    from spinicl.sweep import load_sweep, run_sweep

    cfg = load_sweep(config_file, preset)
    if out is None:
        out = f"{preset}.h5" if preset else "sweep.h5"
    cmd = "spinicl " + " ".join(sys.argv[1:])
    res = run_sweep(cfg, out, executor=executor, workers=workers, scheduler=scheduler,
                    progress=not quiet, command_line=cmd)
    click.echo(f"{out}: {res.done} of {res.total} points done, {res.failed} failed"
               + (" (interrupted: rerun the same command to continue)"
                  if res.interrupted else ""))
    if plot and res.done and not res.interrupted:
        from spinicl.plots import plot_phase

        png = os.path.join(os.path.dirname(os.path.abspath(out)), "phase.png")
        z = "test_mse_novel"
        written = plot_phase(out, x="alpha", y="T", z=z, out=png,
                             contours=(0.5,), contour_z="overlap_ratio_active")
        click.echo("phase diagram: " + ", ".join(written))
    if res.interrupted:
        sys.exit(130)
    if res.failed:
        sys.exit(1)


# --------------------------------------------------------------------------- plot
@cli.group()
def plot():
    """Figures: phase diagrams and cuts of a sweep, traces of a run (PNG and PDF)."""


def _where(items: tuple[str, ...]) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for it in items:
        key, sep, val = it.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(val)
        except ValueError:
            raise ConfigError("where", "KEY=VALUE, e.g. N=20", it) from None
    return out


@plot.command("phase")
@click.argument("sweep_file", type=str)
@click.option("--x", "x", default="alpha", show_default=True,
              help="Horizontal axis: alpha, P, K, N, lam.")
@click.option("--y", "y", default="T", show_default=True, help="Vertical axis: T, N, ...")
@click.option("--z", "z", default="test_mse_novel", show_default=True,
              help="Observable: test_mse_novel, overlap_ratio, energy, alignment, ...")
@click.option("--where", multiple=True, help="Fix another axis: KEY=VALUE (repeatable).")
@click.option("--contour", "contours", type=float, multiple=True,
              help="Contour level of --contour-z (repeatable).")
@click.option("--contour-z", default="overlap_ratio_active", show_default=True,
              help="Observable of the contour lines.")
@click.option("-o", "--out", default="phase.png", show_default=True,
              help="Output (.png or .pdf: both are written).")
def plot_phase_cmd(sweep_file, x, y, z, where, contours, contour_z, out):
    """Phase diagram of a sweep: z over (x, y), averaged over disorder seeds."""
    from spinicl.plots import plot_phase

    written = plot_phase(sweep_file, x=x, y=y, z=z, out=out, where=_where(where),
                         contours=contours or None, contour_z=contour_z)
    click.echo("wrote " + ", ".join(written))


@plot.command("cut")
@click.argument("sweep_file", type=str)
@click.option("--x", "x", default="alpha", show_default=True, help="Horizontal axis.")
@click.option("--z", "z", default="test_mse_novel", show_default=True, help="Observable.")
@click.option("--by", default="T", show_default=True, help="One curve per value of this.")
@click.option("--where", multiple=True, help="Fix another axis: KEY=VALUE (repeatable).")
@click.option("-o", "--out", default="cut.png", show_default=True, help="Output file.")
def plot_cut_cmd(sweep_file, x, z, by, where, out):
    """Curves of z against x, one per value of --by, with error bars and exact values."""
    from spinicl.plots import plot_cut

    written = plot_cut(sweep_file, x=x, z=z, by=by, out=out, where=_where(where))
    click.echo("wrote " + ", ".join(written))


@plot.command("trace")
@click.argument("run_file", type=str)
@click.option("--observable", "observables", multiple=True,
              default=("energy", "test_mse_novel", "overlap"), show_default=True,
              help="Observable to draw (repeatable).")
@click.option("-o", "--out", default="trace.png", show_default=True, help="Output file.")
def plot_trace_cmd(run_file, observables, out):
    """Traces of a run against step, per temperature, with exact values dashed."""
    from spinicl.plots import plot_trace

    written = plot_trace(run_file, observables=tuple(observables), out=out)
    click.echo("wrote " + ", ".join(written))


# --------------------------------------------------------------------------- bench
@cli.command()
@_task_options
@click.option("--model", type=click.Choice(["merged", "factored"]), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=int, default=None, help="Rank d_k of the factors [default: D+1].")
@click.option("--samplers", default="exact,mala,ula,baoab", show_default=True,
              help="Comma-separated samplers to compare (rows in this order).")
@click.option("--precondition", default="none", show_default=True,
              help="Comma-separated preconditioners: none, diag, dense (one row each).")
@click.option("--beta", type=float, default=None,
              help="Inverse temperature [default: 1e4; the merged model's mixing per step "
                   "does not depend on β].")
@click.option("--T", "T", type=float, default=None, help="Temperature instead of --beta.")
@click.option("--replicas", type=int, default=16, show_default=True,
              help="Independent chains R.")
@click.option("--seconds", "budget", type=float, default=5.0, show_default=True,
              help="Timed wall-clock seconds per row (after an untimed warm-up).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def bench(model, dk, samplers, precondition, beta, T, replicas, budget, as_json,
          representation, memory_budget, **kw):
    """Which sampler for my D, N, P, T? Effective samples per second, measured.

    Each sampler runs for a fixed wall-clock budget: chain-steps/s, ESS/s of the energy
    and of the slowest mode (W − m projected on the eigenvector of A's smallest active
    eigenvalue), acceptance, peak memory; the exact sampler is the reference row.
    """
    from spinicl.bench import bench_samplers, format_bench_table

    cfg = task_config(kw)
    try:
        rows = bench_samplers(cfg, tuple(x.strip() for x in samplers.split(",") if x.strip()),
                              model=model, dk=dk, beta=beta, temperature=T,
                              replicas=replicas, budget_seconds=budget,
                              precondition=tuple(x.strip() for x in precondition.split(",")),
                              seed=cfg.seed, representation=representation,
                              memory_budget=memory_budget)
    except ConfigError as exc:
        # the library checks each entry as "sampler" and the timing as "budget_seconds";
        # name the options this command has
        option = {"sampler": "samplers", "budget_seconds": "seconds",
                  "temperature": "T"}.get(exc.param)
        if option is None:
            raise
        raise ConfigError(option, exc.allowed, exc.got, exc.note) from None
    if as_json:
        print_json(rows)
    else:
        click.echo(format_bench_table(rows))


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group with one-line errors (exit 2)."""
    try:
        rv = cli.main(args=argv, prog_name="spinicl", standalone_mode=False)
    except ConfigError as exc:
        positional = {"run": "RUN_FILE", "train": "TRAIN_FILE", "path": "FILE"}
        msg = (exc.message(positional[exc.param]) if exc.param in positional
               else exc.cli_message())
        click.echo(f"spinicl: error: {msg}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click >= 8.2
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"spinicl: error: {msg} (see 'spinicl {_subcommand(argv)}--help')",
                   err=True)
        sys.exit(2)
    except Exception as exc:  # one line for the errors a user can act on
        from spinicl.store import StoreError

        if isinstance(exc, StoreError):
            click.echo(f"spinicl: error: {exc}", err=True)
            sys.exit(2)
        raise
    except click.Abort:
        click.echo("spinicl: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


def _subcommand(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    for a in args:
        if not a.startswith("-"):
            return a + " "
    return ""


if __name__ == "__main__":  # pragma: no cover
    main()
