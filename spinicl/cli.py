"""Command line: ``spinicl theory | ...`` (click). Thin: parse, validate, call, print.

Every bad value ends in one line on stderr naming the parameter and its allowed range,
exit status 2, no traceback, before any work starts.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import click
import numpy as np

from spinicl import __version__
from spinicl.config import ConfigError, TaskConfig, check_beta

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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def theory(beta, T, model, dk, as_json, representation, memory_budget, **kw):
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
    choose_representation(cfg.D, cfg.P, representation, memory_budget)
    t0 = time.perf_counter()
    task = make_task(cfg)
    merged = build_model(task, "merged", representation=representation,
                         memory_budget=memory_budget)
    from spinicl.theory import factored_ground_state, gaussian_theory

    th = gaussian_theory(merged, task, seed=cfg.seed)
    result: dict[str, Any] = {"spinicl_version": __version__, "model": model,
                              "config": cfg.to_dict(), "seeds": task.seeds,
                              "representation": merged.representation}
    result.update(th.summary(beta))
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
                           "beta", "temperature")}
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


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group with one-line errors (exit 2)."""
    try:
        rv = cli.main(args=argv, prog_name="spinicl", standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"spinicl: error: {exc.cli_message()}", err=True)
        sys.exit(2)
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click >= 8.2
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        msg = exc.format_message().replace("\n", " ")
        click.echo(f"spinicl: error: {msg} (see 'spinicl {_subcommand(argv)}--help')",
                   err=True)
        sys.exit(2)
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
