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

from spinicl import __version__, registry
from spinicl.config import (
    MAX_DK,
    MAX_REPLICAS,
    ConfigError,
    SampleConfig,
    TaskConfig,
    check_beta,
    check_lam_for_sampling,
)

# --------------------------------------------------------------------------- helpers


class PoolSize(click.ParamType):
    """``--K``: an integer, or ``P`` for one task per prompt (the default)."""

    name = "INTEGER|P"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip()
        if text.upper() == "P":
            return None
        try:
            return int(text)
        except ValueError:
            self.fail(f"{value!r} is not an integer or P", param, ctx)


def _task_options(func):
    """The options that define a task and its energy (shared by every command)."""
    opts = [
        click.option("--D", "D", type=int, default=20, show_default=True,
                     help="Token dimension D (>= 1)."),
        click.option("--N", "N", type=int, default=100, show_default=True,
                     help="Context length N (>= 1)."),
        click.option("--P", "P", type=int, default=10_000, show_default=True,
                     help="Number of pre-training prompts P (>= 1)."),
        click.option("--K", "K", type=PoolSize(), default=None,
                     help="Task diversity: size of the task pool, 1..P, or P [default: P, "
                          "one task per prompt]."),
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
        click.option("--representation", type=click.Choice(list(registry.REPRESENTATIONS)),
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
    """Pop the task options out of ``kw`` and validate them (ranges, the memory the
    prompts need, the memory budget), before any work starts."""
    from spinicl.config import check_prompt_memory, parse_memory

    keys = ("D", "N", "P", "K", "lam", "seed", "sigma_x", "sigma_w", "sigma_eps", "rho",
            "rho_variant", "test_prompts")
    cfg = TaskConfig(**{k: kw.pop(k) for k in keys})
    if kw.get("memory_budget") is not None:
        parse_memory(kw["memory_budget"])
    check_prompt_memory(cfg)
    return cfg


def _positive(name: str, value: float) -> float:
    """A finite number > 0 (checked when the option is parsed, before any work)."""
    from spinicl.config import check_float

    return check_float(name, value, low=0.0, low_open=True)


def _figure_out(out: str | None, force: bool, param: str = "out") -> list[str]:
    """The files a figure for ``out`` will be written to, checked before any work
    (:func:`spinicl.plots.style.check_figure_outputs`: suffix, writable directory, and no
    existing file that spinicl did not write unless ``force``)."""
    from spinicl.plots.style import check_figure_outputs

    if out is None or not str(out).strip():
        raise ConfigError(param, "a file path (not empty)", out)
    return check_figure_outputs(out, force=force, param=param)


def _beta_option(beta: float | None, T: float | None, default: float) -> float:
    """β from ``--beta`` or ``--T`` (not both), each > 0 and finite."""
    from spinicl.config import check_float

    if beta is not None and T is not None:
        raise ConfigError("beta", "given alone (use --beta or --T, not both)", beta)
    if T is not None:
        return 1.0 / check_float("T", T, low=0.0, low_open=True,
                                 note="the temperature T = 1/beta")
    return check_beta(default if beta is None else beta)


#: Help of the ``--force`` of the commands that draw a figure.
_FORCE_FIGURE_HELP = ("replace an existing file (a figure spinicl wrote is replaced "
                      "without it).")


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
@click.option("--model", type=click.Choice(list(registry.model_names())), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=click.IntRange(1, MAX_DK), default=None,
              help="Rank d_k of the factors [default: D+1].")
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
@click.option("--restarts", type=click.IntRange(1, 100_000), default=None,
              help="Factored model with d_k below the nuclear-norm optimum's rank: local "
                   "minimisations behind the best-known ground state [default: 32].")
@click.option("--asymptotic", is_flag=True,
              help="Also print the D → ∞ theory (Lu et al. 2024) at α = N/D, κ = K/D, "
                   "τ = P/D², λ_L = D(1+1/N)²λ beside the finite-D values (merged model).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def theory(beta, T, model, dk, amp_variant, amp_damping, amp_tol, amp_max_sweeps, no_amp,
           no_baselines, restarts, asymptotic, as_json, representation, memory_budget, **kw):
    """Exact solution: ground state, closed-form thermal averages, free energy.

    The merged model is Gaussian (mean m = A⁻¹h, covariance (βA)⁻¹); the factored model's
    ground state is the nuclear-norm problem min E0(W) + λ‖W‖_*.
    """
    from spinicl.models import build_model, choose_representation
    from spinicl.prompts import make_task

    cfg = task_config(kw)
    beta = _beta_option(beta, T, 100.0)
    registry.check_dk(model, dk)
    if cfg.lam <= 0:
        raise ConfigError("lam", "> 0 for the exact Boltzmann distribution", cfg.lam,
                          "with lam = 0 the inactive spins are free")
    # A Gaussian model's theory is its closed form (and AMP, the D → ∞ theory); any
    # other model's is its exact ground state (``model.ground_state()``).
    gaussian = registry.MODELS[model].gaussian
    asym = None
    if asymptotic:
        from spinicl.theory.asymptotic import from_spinicl

        if not gaussian:
            raise ConfigError("model", "merged with --asymptotic (the D -> infinity theory "
                              "is that of the merged linear attention)", model)
        asym = from_spinicl(cfg)
    run_amp = gaussian and not no_amp
    if run_amp and representation == "auto":
        # AMP needs the dense couplings: take them whenever they fit the budget.
        try:
            representation = choose_representation(cfg.D, cfg.P, "dense", memory_budget)
        except ConfigError:
            pass
    rep = choose_representation(cfg.D, cfg.P, representation, memory_budget)
    if run_amp:
        from spinicl.theory.amp import validate_amp_options

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
    from spinicl.theory.gaussian import gaussian_theory

    th = gaussian_theory(merged, task, seed=cfg.seed)
    result: dict[str, Any] = {"spinicl_version": __version__, "model": model,
                              "config": cfg.to_dict(), "seeds": task.seeds,
                              "representation": merged.representation}
    result.update(th.summary(beta))
    if run_amp:
        from spinicl.models import mse as _mse
        from spinicl.theory.amp import amp_for_model

        amp = amp_for_model(merged, beta, variant=amp_variant, damping=amp_damping,
                            tol=amp_tol, max_sweeps=amp_max_sweeps, seed=cfg.seed,
                            m_exact=th.mean)
        result.update(amp.as_dict())
        result["amp_test_mse_novel"] = float(_mse(amp.m[None], task.test_novel)[0])
        result["amp_test_mse_in_distribution"] = float(
            _mse(amp.m[None], task.test_in_distribution)[0])
    if not no_baselines:
        from spinicl.theory.baselines import baselines as _baselines

        result.update(_baselines(task))
    if not gaussian:
        fm = build_model(task, model, dk=dk, representation=representation,
                         memory_budget=memory_budget)
        gs = fm.ground_state(required=True, restarts=restarts)
        from spinicl.models import alignment, gd_cosine, mse

        W = gs.W[None]
        fact = {
            "n_spins": fm.n_spins,
            **gs.rows,
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
    if asym is not None:
        result.update(asym.summary())
    result["seconds"] = time.perf_counter() - t0
    if as_json:
        print_json(result)
    elif not gaussian:
        _print_factored(result, cfg)
    else:
        _print_merged(result, th, cfg, beta)
        if asym is not None:
            click.echo("\n".join(_asymptotic_lines(result, cfg)))


def _asymptotic_lines(r: dict, cfg: TaskConfig) -> list[str]:
    """Rows of ``theory --asymptotic``: the D → ∞ values beside the finite-D ones."""
    k = "∞ (K = P)" if r["kappa_infinite"] else f"{r['kappa']:.4g}"
    out = ["", f"D → ∞ theory (Lu, Letey, Zavatone-Veth, Maiti & Pehlevan, arXiv:2405.11751) "
               f"at α = N/D = {r['alpha']:.4g}, κ = K/D = {k}, τ = P/D² = {r['tau']:.4g}, "
               f"λ_L = D(1+1/N)²λ = {r['lam_asymptotic']:.4g}"
               + (f", ρ = {r['rho_asymptotic']:.4g}" if r["rho_asymptotic"] else ""),
           f"{'':34s}{'D = ' + str(cfg.D):>16s}{'D → ∞, λ→0⁺':>16s}{'D → ∞ at λ_L':>16s}"]
    ridge = r.get("asymptotic_test_mse_novel_ridge")
    out.append(f"  {'test MSE, novel tasks (ICL)':32s}{_fmt(r['test_mse_novel'], 16)}"
               f"{_fmt(r['asymptotic_test_mse_novel'], 16)}"
               f"{_fmt(ridge, 16) if ridge is not None else '(= λ→0⁺)'.rjust(16)}")
    out.append(f"  {'test MSE, in-distribution':32s}"
               f"{_fmt(r['test_mse_in_distribution'], 16)}"
               f"{_fmt(r['asymptotic_test_mse_in_distribution'], 16)}"
               f"{'no formula' if ridge is not None else '(= λ→0⁺)':>16s}")
    out.append(f"  task-diversity threshold κ_c = min(τ, 1) = {r['kappa_c']:.4g}; "
               "finite-D corrections are O(1/D) (often a few tenths at D ≈ 20):")
    out.append("  compare through an extrapolation in 1/D, e.g. spinicl scaling --alpha "
               f"{r['alpha']:.4g} --tau {r['tau']:.4g} --kappa "
               f"{'inf' if r['kappa_infinite'] else format(r['kappa'], '.4g')} --lam "
               f"{max(r['lam_asymptotic'], 1e-6):.3g}")
    return out


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
    bound, rank = r["nuclear_norm_bound"], r["nuclear_norm_rank"]
    if r["factored_reference_kind"] == "exact":
        lines.append(f"ground state (exact): the nuclear-norm optimum min E0(W) + λ‖W‖_*, of "
                     f"rank {rank} ≤ d_k = {r['dk']}, is the factored global minimum")
    else:
        lines.append(f"ground state (best known): d_k = {r['dk']} < rank {rank} of the "
                     f"nuclear-norm optimum (bound E = {bound:.6g}); lowest of "
                     f"{r['restarts']} L-BFGS restarts from N(0, 1/(D+1)) factors "
                     f"({r['failed_restarts']} not converged), "
                     f"{r['distinct_minima']} distinct minima:")
        for k, m in enumerate(r["minima"]):
            gap = m["energy"] - r["energy_ground"]
            lines.append(f"  minimum {k + 1}: E = {m['energy']:.10g} (+{gap:.3g}), rank "
                         f"{m['rank']}, reached {m['count']}×")
    lines.append("")
    rows = [
        ("energy E_fact (" + r["factored_reference_kind"] + ")", r["energy_ground"]),
        ("nuclear-norm bound", bound),
        ("rank of the nuclear-norm optimum", rank),
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
        click.option("--model", type=click.Choice(list(registry.model_names())), default="merged",
                     show_default=True, help="Merged W, or factored W = W_qᵀW_k."),
        click.option("--dk", type=click.IntRange(1, MAX_DK), default=None,
                     help="Rank d_k of the factors "
                     "[default: D+1]."),
        click.option("--sampler", type=click.Choice(list(registry.sampler_names())),
                     default="mala", show_default=True,
                     help="Local move: " + "; ".join(
                         f"{e.name}: {e.help}" for e in registry.SAMPLERS.values()) + "."),
        click.option("--step", type=float, default=None,
                     help="Step size η in units of E (stable below 2/λ_max(A) for ula and "
                          "mala, 2/√λ_max(A) for baoab) [default: from the spectrum]."),
        click.option("--gamma", type=float, default=1.0, show_default=True,
                     help="BAOAB friction γ (> 0)."),
        click.option("--precondition",
                     type=click.Choice(list(registry.preconditioner_names())),
                     default="none", show_default=True,
                     help="Preconditioner: " + "; ".join(
                         f"{e.name}: {e.help}" for e in registry.PRECONDITIONERS.values())
                     + "."),
        click.option("--temps", type=str, default=None,
                     help="Ladder: TMIN:TMAX:auto (geometric; rung count from the model so "
                          "that every pair's predicted swap acceptance is ≥ 0.25: 86 rungs "
                          "at D = 20), TMIN:TMAX:COUNT (fixed geometric) or T1,T2,... "
                          "[default: 1e-5:1e-1:auto; β = 100 is hot, docs/model.md §1.3]."),
        click.option("--beta", type=float, default=None,
                     help="A single inverse temperature instead of a ladder."),
        click.option("--copies", type=int, default=2, show_default=True,
                     help="Replicas per temperature (>= 2 for overlaps)."),
        click.option("--steps", type=int, default=10_000, show_default=True,
                     help="Production steps after burn-in."),
        click.option("--burn-in", type=int, default=2_000, show_default=True,
                     help="Burn-in steps (step sizes and ladder adapt only here)."),
        click.option("--record-every", type=int, default=25, show_default=True,
                     help="Steps between records."),
        click.option("--swap-every", type=int, default=5, show_default=True,
                     help="Steps between replica-exchange rounds."),
        click.option("--adapt-ladder/--no-adapt-ladder", default=None,
                     help="Equalise swap rejection during burn-in (Syed et al. 2021) "
                          "[default: on for the factored model, off for the merged one, "
                          "whose geometric ladder is already exactly equal-rejection]."),
        click.option("--snapshot-every", type=int, default=0, show_default=True,
                     help="Records between weight snapshots (0: none)."),
        click.option("--flush-every", type=int, default=50, show_default=True,
                     help="Records between flushes and checkpoints (also every 5 s)."),
        click.option("--init", type=str, default="ridge", show_default=True,
                     help="Start: ridge (the ridge mean, factored: its balanced factors, "
                          "plus thermal noise), random (every spin N(0, 1/(D+1)), the "
                          "paper's training start, from the run's seed) or FILE.npy / "
                          "FILE.h5 (an (n_spins,) or (R, n_spins) array, or a run file's "
                          "last snapshot)."),
    ]
    for name, (owner, o) in registry.all_sampler_options().items():   # samplers' own
        kind = (click.IntRange(o.low, o.high) if o.kind == "int"
                else click.FloatRange(o.low, o.high))
        opts.append(click.option("--" + name.replace("_", "-"), name, type=kind,
                                 default=None, help=f"{o.help} [{owner} only; default: "
                                 f"{o.default}]"))
    for opt in reversed(opts):
        func = opt(func)
    return func


SAMPLE_KEYS = ("model", "dk", "sampler", "step", "gamma", "precondition", "copies", "steps",
               "burn_in", "record_every", "swap_every", "adapt_ladder", "snapshot_every",
               "flush_every", "representation", "memory_budget", "init")


def _load_toml(path: str, ctx: click.Context, kw: dict) -> None:
    """Fill options not given on the command line from a TOML file (same keys)."""
    import tomllib

    from click.core import ParameterSource

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("config", "a readable TOML file", path, exc.strerror) from None
    except UnicodeDecodeError:
        raise ConfigError("config", "a TOML text file", path, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", "valid TOML", path, str(exc)) from None
    params = {p.name: p for p in ctx.command.params}
    names = set(params)
    for key, value in data.items():
        name = key.replace("-", "_")
        name = {"d": "D", "n": "N", "p": "P", "k": "K"}.get(name, name)
        if name not in names or name in ("config", "out", "force"):
            raise ConfigError("config", f"a TOML file with known keys ({path})", key,
                              "unknown key")
        value = _toml_value(params[name], key, value, path)
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            kw[name] = value


def _toml_value(param: click.Parameter, key: str, value: Any, path: str) -> Any:
    """A TOML value type-checked against its option: no string → bool coercion, no
    float → int truncation; strings are converted by the option's own type (choices)."""
    t = param.type
    flag = getattr(param, "is_flag", False) or isinstance(t, click.types.BoolParamType)
    if flag:
        ok = isinstance(value, bool)
    elif isinstance(t, click.types.IntParamType | click.IntRange):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(t, click.types.FloatParamType | click.FloatRange):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif param.name == "memory_budget":
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
    elif param.name == "K":
        ok = isinstance(value, int | str) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(param.name or key, f"{_type_words(param)} (in {path})", value)
    if isinstance(t, click.IntRange | click.FloatRange | click.Choice):
        try:
            value = t.convert(value, param, None)
        except click.BadParameter as exc:
            raise ConfigError(param.name or key, f"valid ({exc.message}; in {path})",
                              value) from None
    return value


def _type_words(param: click.Parameter) -> str:
    t = param.type
    if getattr(param, "is_flag", False) or isinstance(t, click.types.BoolParamType):
        return "true or false"
    if isinstance(t, click.types.IntParamType | click.IntRange):
        return "an integer"
    if isinstance(t, click.types.FloatParamType | click.FloatRange):
        return "a number"
    return "a string"


def sample_config_from_options(kw: dict) -> SampleConfig:
    from spinicl.config import parse_temperatures

    temps = parse_temperatures(kw.pop("temps"), kw.pop("beta"))
    task = task_config(kw)
    options = {k: v for k in registry.all_sampler_options()
               if (v := kw.pop(k, None)) is not None}
    for key, value in options.items():     # another sampler's option: named here
        owner, opt = registry.all_sampler_options()[key]
        if owner != kw.get("sampler") and value != opt.default:
            raise ConfigError(key, f"used only with --sampler {owner}", value)
    return SampleConfig(task=task, temperatures=temps, options=options,
                        **{k: kw.pop(k) for k in SAMPLE_KEYS})


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

    Records every observable of docs/model.md §1.6 per temperature and copy; Ctrl-C stops
    cleanly (resume with `spinicl resume FILE`); a killed run resumes bit for bit.
    """
    from spinicl.runner import run_sample

    if config_file:
        _load_toml(config_file, ctx, kw)
    cfg = sample_config_from_options(kw)
    from spinicl.config import check_init_file

    check_init_file(cfg)            # an --init file, before any work
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
        if res.status == "complete" and res.message:  # a signal after the last step
            click.echo(f"spinicl: {res.message}", err=True)
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
    """Config, status, progress and a summary table of a run or a sweep file.

    A run: every observable per temperature beside its exact value, with z-scores. A
    sweep: its config, how many points are complete / failed / pending, run times, failed
    points with their messages, and the main observables per point at the coldest and
    hottest temperature.
    """
    from spinicl.io.loaders import format_sweep_info, is_sweep_file, sweep_info
    from spinicl.runner import file_info

    if is_sweep_file(path):
        d = sweep_info(path)
        if as_json:
            print_json(d)
        else:
            click.echo(format_sweep_info(d))
        return
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
        acc = np.asarray(d["swap_accept"], dtype=float)
        low = f" (lowest {np.nanmin(acc):.3f})" if np.any(np.isfinite(acc)) else ""
        lines.append(f"swap acceptance per pair after burn-in{low}: "
                     + " ".join(_fmt(x, 5).strip() for x in d["swap_accept"]))
    lad = d.get("ladder")
    if lad:
        rt = lad.get("round_trips")
        lines.append(
            f"ladder: barrier Λ = {lad['barrier_heat_capacity']:.1f} (heat capacity; Σ "
            f"rejection {lad['barrier']:.1f}), recommended ≈ 2Λ = {lad['recommended_rungs']} "
            f"rungs (acceptance ≈ 0.5) or {lad['rungs_for_target']} for acceptance ≥ "
            f"{lad['target']:g}; round trips {'—' if rt is None else rt}"
            + ("" if rt is None else f" ({', '.join(map(str, lad['round_trips_per_copy']))}"
                                     f" per copy, whole run)"))
    if c["sampler"] in registry.SAMPLERS and registry.stationary_law(c["sampler"]):
        lines.append(f"sampler {c['sampler']}: 'exact' is {c['sampler'].upper()}'s own "
                     "stationary law at its step; the Boltzmann value and the bias are in "
                     "--json (boltzmann, bias)")
    lines.append("")
    lines.append(f"{'observable':26s}{'T':>10s} {'mean':>11s} {'± stderr':>10s} "
                 f"{'exact':>11s} {'z':>6s} {'τ_int':>7s} {'ESS':>8s}")
    for name, rows in d["summary"].items():
        for k, row in enumerate(rows):
            z = row.get("z")
            zs = f"{z:+6.2f}" if z is not None else "".rjust(6)
            tau = f"{row['tau_int']:7.1f}" if np.isfinite(row["tau_int"]) else "—".rjust(7)
            if row.get("tau_ok") == 0.0:
                tau = tau[1:] + "!"
            ess = f"{row['ess']:8.0f}" if np.isfinite(row["ess"]) else "—".rjust(8)
            lines.append(
                f"{(name if k == 0 else ''):26s}{d['temperatures'][k]:10.3g} "
                f"{_fmt(row['mean'], 11)} {_fmt(row['stderr'], 10)} {_fmt(row['exact'], 11)} "
                f"{zs} {tau} {ess}")
    lines.extend(_ground_reference_lines(d))
    from spinicl.runner import format_thermo_lines

    lines.extend(format_thermo_lines(d.get("thermo")))
    worst = d.get("max_abs_z")
    if worst is not None:
        at = d.get("max_abs_z_at") or {}
        where = ""
        if at.get("quantity"):
            t = at.get("T")
            ts = (f"T = {t[0]:.3g} → {t[1]:.3g}" if isinstance(t, list | tuple)
                  else f"T = {t:.3g}")
            where = f" ({at['quantity']}, {ts})"
        lines.append("")
        lines.append(f"largest |z| against the closed forms: {worst:.2f}{where} "
                     f"({'consistent' if worst < 5 else 'INCONSISTENT'} at 5 standard errors)")
    if d.get("too_short"):
        lines.append("τ_int marked '!': run too short for a trustworthy τ (fewer than 50 τ, "
                     "or τ still growing between the halves of the run)")
    for w in d.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def _ground_reference_lines(d: dict) -> list[str]:
    """The factored ground-state reference beside ⟨E⟩ at the two coldest rungs."""
    gs = d.get("ground_state")
    if not gs or "factored_reference_kind" not in gs:
        return []
    kind = gs["factored_reference_kind"]
    what = (f"exact, rank {gs['nuclear_norm_rank']} nuclear-norm optimum" if kind == "exact"
            else f"best known, {gs['distinct_minima']} minima in {gs['restarts']} restarts "
                 f"(reached {', '.join(str(m['count']) for m in gs['minima'])}×); "
                 f"nuclear-norm bound {gs['nuclear_norm_bound']:.6g}")
    out = ["", f"E_ref = {gs['energy_ground']:.6g} ({what})"]
    rows = d["summary"].get("energy") or []
    for k, row in enumerate(rows[:2]):
        out.append(f"  ⟨E⟩ at T = {d['temperatures'][k]:.3g}: {_fmt(row['mean'], 11).strip()}"
                   f" ± {_fmt(row['stderr'], 10).strip()}, ⟨E⟩ − E_ref = "
                   f"{row['mean'] - gs['energy_ground']:+.3g}")
    return out


# --------------------------------------------------------------------------- train
@cli.command()
@_task_options
@click.option("--model", type=click.Choice(list(registry.model_names())), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=click.IntRange(1, MAX_DK), default=None,
              help="Rank d_k of the factors [default: D+1].")
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

    from spinicl.io.run import check_new_file
    from spinicl.io.training_file import write_training
    from spinicl.progress import ProgressLine
    from spinicl.prompts import make_task
    from spinicl.training import (
        TrainConfig,
        compare_to_ground_state,
        torch_weight_decay_to_lam,
    )
    from spinicl.training import train as run_training

    if torch_weight_decay is not None:
        if ctx.get_parameter_source("lam") != ParameterSource.DEFAULT:
            raise ConfigError("torch_weight_decay", "given without --lam (it sets λ = WD/2)",
                              torch_weight_decay)
        kw["lam"] = torch_weight_decay_to_lam(torch_weight_decay)
    cfg = task_config(kw)
    registry.check_dk(model, dk)
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
              help="Also draw the Fig. 2-style figure (heatmaps + loss curves) to this file "
                   "(.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help="With --plot: " + _FORCE_FIGURE_HELP)
@click.option("--temperature", type=float, default=None, callback=lambda c, p, v:
              None if v is None else _positive(p.name, v),
              help="Temperature of the Boltzmann mean in the figure [default: coldest].")
def compare(run_file, train_file, as_json, plot_out, force, temperature):
    """Where a trained model sits in the sampled Boltzmann distribution, per temperature.

    Percentile and z-score of its energy and test MSE among the samples, and its distance
    to the sampled mean (snapshots, or the exact mean m).
    """
    from spinicl.analysis.compare import compare_run_and_training, format_compare_table
    from spinicl.plots.fig2 import plot_weights_and_losses

    if plot_out is not None:
        _figure_out(plot_out, force, "plot")
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
              help="Draw the sweep's figure beside the sweep file when it completes: the "
                   "TOML's [plot] section, else a phase diagram over the sweep's own axes "
                   "(phase.png and .pdf).")
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
        _sweep_figure(out, cfg.plot)
    if res.interrupted:
        sys.exit(130)
    if res.failed:
        sys.exit(1)


def _sweep_figure_out(path: str, spec: dict) -> str:
    """Where :func:`spinicl.plots.plot_sweep` draws a sweep's figure by default:
    ``phase.png`` beside the sweep file, or ``cut.png`` for a cut (a ``[plot]`` section
    with kind = "cut", or a grid that varies nothing but the seed)."""
    import os

    from spinicl.plots.sweep_data import GRID_AXES, read_plot_sweep

    kind = spec.get("kind")
    if kind is None:
        sweep = read_plot_sweep(path, ())

        def varies(k: str) -> bool:
            return k in sweep.grid and np.unique(np.asarray(sweep.grid[k],
                                                            dtype=float)).size > 1

        grid_keys = [k for k in (sweep.config.get("grid") or {}) if k != "seed"]
        varied = any(map(varies, grid_keys)) or any(map(varies, GRID_AXES))
        kind = "phase" if varied else "cut"
    d = os.path.dirname(os.path.abspath(path))
    return os.path.join(d, "cut.png" if kind == "cut" else "phase.png")


def _sweep_figure(path: str, spec: dict) -> None:
    """Draw a finished sweep's figure; a plot problem never fails the sweep itself, and
    an existing file that spinicl did not write is never replaced (the figure is
    skipped with one line instead)."""
    from spinicl.plots import plot_sweep
    from spinicl.plots.style import check_figure_outputs

    notes: list[str] = []
    try:
        out = _sweep_figure_out(path, spec)
        check_figure_outputs(out, force=False, param="plot.out")
        written = plot_sweep(path, out=out, spec=spec, notes=notes)
    except ConfigError as exc:
        name = exc.param if exc.param.startswith("plot.") else f"plot.{exc.param}"
        click.echo(f"spinicl: figure skipped ({exc.message(name)}); the sweep file is "
                   f"complete: draw it with `spinicl plot phase|cut {path} ...`", err=True)
        return
    except Exception as exc:  # noqa: BLE001 - the data are safe; report, don't fail
        click.echo(f"spinicl: figure skipped ({type(exc).__name__}: {exc}); the sweep "
                   f"file is complete", err=True)
        return
    for line in notes:
        click.echo(f"note: {line}", err=True)
    click.echo("figure: " + ", ".join(written))


# --------------------------------------------------------------------------- export
@cli.command("export")
@click.argument("path", type=str)
@click.option("-o", "--out", required=True,
              help="Output: .csv (a table) or .nc (netCDF-4, for xarray and other tools).")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def export_cmd(path, out, force):
    """A run or sweep file as CSV or netCDF, for tools outside Python.

    A sweep: one row per grid point × temperature (grid columns, T, β, and for every
    observable its mean, stderr, τ_int, ESS and exact value; status, message, seconds),
    as CSV or netCDF. A run: .nc holds the traces (record × temperature × copy) and the
    summary, .csv the summary per temperature.
    """
    from spinicl.io.loaders import export_file

    click.echo(f"wrote {export_file(path, out, force=force)}")


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
            raise ConfigError("where", "KEY=VALUE, e.g. --where N=20", it) from None
    return out


def _zmax(text: str) -> float | str | None:
    if text.strip().lower() in ("auto", "none"):
        return None if text.strip().lower() == "none" else "auto"
    try:
        return float(text)
    except ValueError:
        raise ConfigError("zmax", "a number > 0, auto or none", text) from None


def _echo_notes(notes: list[str]) -> None:
    for line in notes:
        click.echo(f"note: {line}", err=True)


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
@click.option("--zmax", default="auto", show_default=True,
              help="Top of the colour scale (larger values in the top colour): a number, "
                   "auto (errors over T: twice the largest value at the coldest T) or "
                   "none.")
@click.option("-o", "--out", default="phase.png", show_default=True,
              help="Output (.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help=_FORCE_FIGURE_HELP.capitalize())
def plot_phase_cmd(sweep_file, x, y, z, where, contours, contour_z, zmax, out, force):
    """Phase diagram of a sweep: z over (x, y), averaged over disorder seeds."""
    from spinicl.plots import plot_phase

    _figure_out(out, force)

    notes: list[str] = []
    written = plot_phase(sweep_file, x=x, y=y, z=z, out=out, where=_where(where),
                         contours=contours or None, contour_z=contour_z, zmax=_zmax(zmax),
                         notes=notes)
    _echo_notes(notes)
    click.echo("wrote " + ", ".join(written))


@plot.command("cut")
@click.argument("sweep_file", type=str)
@click.option("--x", "x", default="alpha", show_default=True, help="Horizontal axis.")
@click.option("--z", "z", multiple=True, default=("test_mse_novel",), show_default=True,
              help="Observable (repeatable: e.g. --z test_mse_novel --z "
                   "test_mse_in_distribution on one figure).")
@click.option("--by", default="T", show_default=True,
              help="One curve per value of this (an axis, or seed).")
@click.option("--where", multiple=True, help="Fix another axis: KEY=VALUE (repeatable).")
@click.option("--by-value", "by_values", type=float, multiple=True,
              help="Only the curves nearest to these values of --by (repeatable).")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Draw the ICL baselines a sweep stored ([sweep] baselines = true).")
@click.option("--seeds/--no-seeds", default=True, show_default=True,
              help="Draw each disorder seed as a faint dot behind the means.")
@click.option("--asymptotic", is_flag=True,
              help="Overlay the D → ∞ theory (Lu et al.) on test-error cuts, and "
                   "κ_c = min(τ, 1) on cuts against K or kappa.")
@click.option("-o", "--out", default="cut.png", show_default=True,
              help="Output (.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help=_FORCE_FIGURE_HELP.capitalize())
def plot_cut_cmd(sweep_file, x, z, by, where, by_values, baselines, seeds, asymptotic, out,
                 force):
    """Curves of z against x, one per value of --by, with error bars and exact values."""
    from spinicl.plots import plot_cut

    _figure_out(out, force)

    notes: list[str] = []
    written = plot_cut(sweep_file, x=x, z=list(z), by=by, out=out, where=_where(where),
                       by_values=by_values or None, baselines=baselines, seeds=seeds,
                       asymptotic=asymptotic, notes=notes)
    _echo_notes(notes)
    click.echo("wrote " + ", ".join(written))


@plot.command("trace")
@click.argument("run_file", type=str)
@click.option("--observable", "observables", multiple=True,
              default=("energy", "test_mse_novel", "overlap"), show_default=True,
              help="Observable to draw (repeatable).")
@click.option("-o", "--out", default="trace.png", show_default=True,
              help="Output (.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help=_FORCE_FIGURE_HELP.capitalize())
def plot_trace_cmd(run_file, observables, out, force):
    """Traces of a run against step, per temperature, with exact values dashed."""
    from spinicl.plots import plot_trace

    _figure_out(out, force)

    written = plot_trace(run_file, observables=tuple(observables), out=out)
    click.echo("wrote " + ", ".join(written))


@plot.command("overlap")
@click.argument("run_file", type=str)
@click.option("--active", is_flag=True, help="The overlap of the active spins.")
@click.option("-o", "--out", default="pq.png", show_default=True,
              help="Output (.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help=_FORCE_FIGURE_HELP.capitalize())
def plot_overlap_cmd(run_file, active, out, force):
    """P(q) of a finished run, one curve per temperature (exact Gaussian dashed: merged)."""
    from spinicl.plots import plot_overlap

    _figure_out(out, force)

    written = plot_overlap(run_file, out=out, active=active)
    click.echo("wrote " + ", ".join(written))


# --------------------------------------------------------------------------- scaling
def _parse_ds(text: str) -> tuple[int, ...]:
    try:
        Ds = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError("D", "a comma-separated list of integers >= 2, e.g. 10,20,40,80",
                          text) from None
    if len(set(Ds)) < 2 or min(Ds) < 2:
        raise ConfigError("D", "at least 2 distinct integers >= 2, e.g. 10,20,40,80", text)
    return Ds


def _parse_kappa(text: str) -> float:
    try:
        k = float(text)
    except ValueError:
        raise ConfigError("kappa", "a number > 0 or inf (K = P)", text) from None
    if not k > 0:
        raise ConfigError("kappa", "a number > 0 or inf (K = P)", text)
    return k


@cli.command()
@click.option("--alpha", type=float, default=None,
              help="α = N/D, context length per dimension (> 0; required). Not spinicl's "
                   "α = P/D².")
@click.option("--tau", type=float, default=None,
              help="τ = P/D², pre-training prompts per parameter (> 0; required).")
@click.option("--kappa", type=str, default="inf", show_default=True,
              help="κ = K/D, task diversity (> 0), or inf for one task per prompt (K = P).")
@click.option("--lam", type=float, default=1e-6, show_default=True,
              help="Ridge λ_L in the theory's normalisation (> 0; spinicl's λ = "
                   "λ_L/(D(1+1/N)²) at each D). 1e-6 stands for λ → 0⁺.")
@click.option("--sigma-eps", type=float, default=0.0, show_default=True,
              help="Label-noise scale σ_ε (the theory's ρ = σ_ε²).")
@click.option("--D", "Ds", type=str, default=None,
              help="Token dimensions, comma-separated [default: 10,20,40,80; --quick: "
                   "10,20,30,40].")
@click.option("--seeds", type=int, default=None,
              help="Disorder samples at the largest D (>= 2); smaller D get up to 16× more "
                   "[default: 8].")
@click.option("--test-prompts", type=int, default=0, show_default=True,
              help="0: exact population test errors (no test noise); N > 0: N sampled "
                   "test prompts per set instead.")
@click.option("--representation", type=click.Choice(list(registry.REPRESENTATIONS)),
              default="auto", show_default=True,
              help="Ground-state solver: dense Cholesky or conjugate gradients (matrix-free); "
                   "auto: dense for D <= 30.")
@click.option("--quick", is_flag=True, help="D = 10,20,30,40 (about 7 s instead of ~1 min).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", "plot_out", type=str, default=None,
              help="Also draw test MSE against 1/D with the fits (PNG and PDF).")
@click.option("--force", is_flag=True, help="With --plot: " + _FORCE_FIGURE_HELP)
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
def scaling(alpha, tau, kappa, lam, sigma_eps, Ds, seeds, test_prompts, representation, quick,
            as_json, plot_out, force, quiet):
    """Finite-size scaling of the exact ground state towards the D → ∞ theory.

    At the point (α, τ, κ, λ_L) of Lu et al.'s asymptotic theory: N = round(αD),
    P = round(τD²), K = round(κD) at each D; exact ground state m and its test MSE
    (novel and in-distribution) over seeds; weighted fit a + b/D (+ c/D² when a χ² test
    rejects the linear fit); the extrapolated D = ∞ value ± s.e. beside the formula.
    """
    from spinicl.analysis.scaling import (
        DEFAULT_DS,
        DEFAULT_SEEDS,
        QUICK_DS,
        QUICK_SEEDS,
        format_scaling,
        plot_scaling,
        realise,
        scaling_study,
        seeds_per_d,
    )
    from spinicl.progress import ProgressLine

    for name, v, what in (("alpha", alpha, "N/D"), ("tau", tau, "P/D^2")):
        if v is None:  # checked here, not by click: a bad value elsewhere is named first
            raise ConfigError(name, f"given: the point's {what} > 0, e.g. --{name} 2")
    D_list = _parse_ds(Ds) if Ds is not None else (QUICK_DS if quick else DEFAULT_DS)
    seeds = (QUICK_SEEDS if quick else DEFAULT_SEEDS) if seeds is None else seeds
    k = _parse_kappa(kappa)
    if seeds < 2:
        raise ConfigError("seeds", ">= 2 (a standard error needs two samples)", seeds)
    if test_prompts < 0:
        raise ConfigError("test_prompts", ">= 0 (0: exact population errors)", test_prompts)
    for name, v in (("alpha", alpha), ("tau", tau), ("lam", lam)):
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(name, "> 0", v)
    if not (math.isfinite(sigma_eps) and sigma_eps >= 0):
        raise ConfigError("sigma_eps", ">= 0", sigma_eps)
    for D in D_list:
        realise(alpha, tau, k, D)  # every size valid before any work
    if plot_out is not None:
        _figure_out(plot_out, force, "plot")
    total = sum(seeds_per_d(tuple(sorted(set(D_list))), seeds).values())
    bar = ProgressLine(total, "ground states", enabled=not quiet)
    res = scaling_study(alpha, tau, k, lam, Ds=D_list, seeds=seeds, sigma_eps=sigma_eps,
                        test_prompts=test_prompts, representation=representation,
                        progress=lambda done, tot, p: bar.update(done, f"D={p['D']}"))
    bar.close()
    d = res.as_dict()
    if plot_out:
        d["figure"] = plot_scaling(res, plot_out)
    if as_json:
        print_json(d)
        return
    click.echo(format_scaling(res))
    if plot_out:
        click.echo("wrote " + ", ".join(d["figure"]))


# --------------------------------------------------------------------------- bench
#: Task options that a suite target fixes (refused together with --suite).
_TASK_OPTION_NAMES = ("D", "N", "P", "K", "lam", "seed", "sigma_x", "sigma_w", "sigma_eps",
                      "rho", "rho_variant", "test_prompts", "representation",
                      "memory_budget", "model", "dk", "precondition", "beta", "T")


@cli.command()
@_task_options
@click.option("--model", type=click.Choice(list(registry.model_names())), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=click.IntRange(1, MAX_DK), default=None,
              help="Rank d_k of the factors [default: D+1].")
@click.option("--samplers", default=None,
              help="Comma-separated samplers to compare (rows in this order): "
                   + ", ".join(registry.sampler_names()) + " [default: exact,mala,ula,baoab]. "
                   "With --suite: NAME[/PRECONDITIONER][+re], e.g. mala/diag+re "
                   "[default: each target's own].")
@click.option("--precondition", default="none", show_default=True,
              help="Comma-separated preconditioners: "
                   + ", ".join(registry.preconditioner_names()) + " (one row each).")
@click.option("--beta", type=float, default=None,
              help="Inverse temperature [default: 1e4; the merged model's mixing per step "
                   "does not depend on β].")
@click.option("--T", "T", type=float, default=None, help="Temperature instead of --beta.")
@click.option("--replicas", type=int, default=16, show_default=True,
              help=f"Independent chains R, 1..{MAX_REPLICAS} (--suite: 2..{MAX_REPLICAS}).")
@click.option("--seconds", "budget", type=float, default=5.0, show_default=True,
              help="Timed wall-clock seconds per row (after an untimed warm-up).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--suite", "suite", is_flag=False, flag_value="all", default=None,
              metavar="[NAMES]",
              help="Run the sampler suite: comma-separated targets or groups (all, tiny); "
                   "alone: every target. See --list-targets.")
@click.option("--list-targets", is_flag=True, help="List the suite's targets and exit.")
@click.option("--sampler", "user_samplers", multiple=True, metavar="MODULE:FACTORY",
              help="Your sampler (repeatable; --suite): a factory following the interface "
                   "of spinicl.user_sampler, e.g. spinicl.examples.rwm:make_sampler.")
@click.option("--peers", default=None, metavar="NAMES",
              help="--suite: peers among blackjax-mala, blackjax-hmc, numpyro-nuts (or all); "
                   "one line per peer whose packages are missing.")
@click.option("--relax-seconds", type=float, default=None,
              help="--suite: budget of the relaxation from a random start [default: "
                   "--seconds].")
@click.option("--plot", "plot_out", type=str, default=None,
              help="--suite: write the figure (ESS/s and time to reference) to this file "
                   "(.png or .pdf: both are written).")
@click.option("--force", is_flag=True, help="--suite --plot: " + _FORCE_FIGURE_HELP)
@click.pass_context
def bench(ctx, model, dk, samplers, precondition, beta, T, replicas, budget, as_json,
          suite, list_targets, user_samplers, peers, relax_seconds, plot_out, force,
          representation, memory_budget, **kw):
    """Which sampler for my D, N, P, T? Effective samples per second, measured.

    Each sampler runs for a fixed wall-clock budget: chain-steps/s, ESS/s of the energy
    and of the slowest mode (W − m projected on the eigenvector of A's smallest active
    eigenvalue), acceptance, peak memory; the exact sampler is the reference row.

    With --suite: every sampler (spinicl's, yours with --sampler, the peers with --peers)
    on fixed targets with known answers (spinicl.targets): ESS/s, bias against the exact
    moments or the ground-state reference, and the time to reach the reference from a
    random start (docs/model.md §6).
    """
    if list_targets:
        from spinicl.suite import format_target_list

        click.echo(format_target_list())
        return
    if suite is not None:
        _bench_suite(ctx, suite, samplers, user_samplers, peers, replicas, budget,
                     relax_seconds, as_json, plot_out, force, kw["seed"])
        return
    for name, given in (("sampler", user_samplers), ("peers", peers), ("plot", plot_out),
                        ("relax_seconds", relax_seconds), ("force", force)):
        if given:
            raise ConfigError(name, "used with --suite (the suite's option)",
                              given if not isinstance(given, tuple) else ",".join(given))
    from spinicl.bench import bench_samplers, format_bench_table
    from spinicl.config import check_int

    check_int("replicas", replicas, 1, MAX_REPLICAS)
    if samplers is not None and not any(x.strip() for x in samplers.split(",")):
        raise ConfigError("samplers", "at least one of " + ", ".join(
            registry.sampler_names()) + " (comma-separated)", samplers)
    cfg = task_config(kw)
    registry.check_dk(model, dk)
    samplers = "exact,mala,ula,baoab" if samplers is None else samplers
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


def _bench_suite(ctx: click.Context, suite: str, samplers: str | None,
                 user_samplers: tuple[str, ...], peers: str | None, replicas: int,
                 budget: float, relax_seconds: float | None, as_json: bool,
                 plot_out: str | None, force: bool, seed: int) -> None:
    """``spinicl bench --suite``: validate everything (user samplers on every target
    included), then run and print."""
    from click.core import ParameterSource

    from spinicl.suite import (
        format_suite_table,
        parse_peers,
        parse_sampler_list,
        plot_suite,
    )
    from spinicl.targets import resolve_targets
    from spinicl.user_sampler import load_sampler

    for name in _TASK_OPTION_NAMES:
        if name != "seed" and ctx.get_parameter_source(name) not in (
                ParameterSource.DEFAULT, None):
            raise ConfigError(name, "left out with --suite (each target fixes its task, "
                              "model and temperature)", ctx.params.get(name))
    if seed < 0:
        raise ConfigError("seed", ">= 0", seed)
    targets = resolve_targets(suite)
    if samplers is not None:
        parse_sampler_list(samplers)
    parse_peers(peers)
    users = [load_sampler(s) for s in user_samplers]
    _positive("seconds", budget)
    if relax_seconds is not None:
        _positive("relax_seconds", relax_seconds)
    if isinstance(replicas, bool) or not 2 <= replicas <= MAX_REPLICAS:
        raise ConfigError("replicas", f"an integer in 2..{MAX_REPLICAS} with --suite "
                          "(τ pools over chains)", replicas)
    if plot_out is not None:
        _figure_out(plot_out, force, "plot")
    elif force:
        raise ConfigError("force", "used with --plot (it replaces an existing figure)", force)
    from spinicl.suite import run_suite

    def progress(r: dict) -> None:
        if not as_json:
            click.echo(f"  {r['target']}: {r['sampler']} {r['status']}", err=True)

    result = run_suite([t.name for t in targets], samplers, peers or (), users,
                       budget_seconds=budget, replicas=replicas, seed=seed,
                       relax_seconds=relax_seconds, progress=progress,
                       notify=lambda m: click.echo(m, err=True))
    if plot_out is not None:
        result["figure"] = plot_suite(result, plot_out)
    if as_json:
        print_json(result)
        return
    click.echo(format_suite_table(result))
    if plot_out is not None:
        click.echo("wrote " + ", ".join(result["figure"]))


# --------------------------------------------------------------------------- export-target
@cli.command("export-target")
@click.argument("name", type=str)
@click.option("-o", "--out", required=True, help="Output HDF5 file (e.g. target.h5).")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def export_target(name, out, force):
    """Write a suite target and its exact references to HDF5, for samplers in any language.

    Merged targets: A (or, matrix-free, the prompt factors C, Q, y), h, the exact mean,
    the covariance diagonal and spectrum; factored: the data Gram, h and the ground-state
    reference. The root attribute log_density states the log density in one line
    (layout: spinicl.io.target_file, docs/model.md §6.4). NAME: see
    `spinicl bench --list-targets`.
    """
    from spinicl.io.target_file import check_target_output, write_target_file
    from spinicl.targets import TARGETS, build_target

    if name not in TARGETS:
        raise click.BadParameter(f"{name!r} is not a target; choose among "
                                 + ", ".join(TARGETS), param_hint="NAME")
    check_target_output(out, force)
    model, refs = build_target(name)
    click.echo(f"wrote {write_target_file(out, TARGETS[name], model, refs, force=force)}")


#: A bridge-weight ESS fraction below this flags rungs that overlap poorly.
POOR_BRIDGE_ESS = 0.1


@cli.command("free-energy")
@_task_options
@click.option("--beta", type=float, default=None,
              help="Inverse temperature β (> 0) [default: 1e4].")
@click.option("--T", "T", type=float, default=None, help="Temperature T = 1/β (> 0).")
@click.option("--model", type=click.Choice(list(registry.model_names())), default="merged",
              show_default=True, help="Merged W, or factored W = W_qᵀW_k.")
@click.option("--dk", type=click.IntRange(1, MAX_DK), default=None,
              help="Rank d_k of the factors [default: D+1].")
@click.option("--sampler", type=click.Choice(list(registry.sampler_names())), default=None,
              help="Sampler at each rung of the path [default: exact for the merged model, "
                   "gibbs for the factored one].")
@click.option("--rungs", type=click.IntRange(3, 400), default=None,
              help="Rungs of the path t = 0 … 1 [default: from the thermodynamic length "
                   "measured by a pilot].")
@click.option("--copies", type=click.IntRange(2, 4096), default=8, show_default=True,
              help="Independent chains per rung.")
@click.option("--records", type=click.IntRange(20, 10**7), default=400, show_default=True,
              help="Records per rung after burn-in.")
@click.option("--every", type=click.IntRange(1, 10**6), default=10, show_default=True,
              help="Steps between records.")
@click.option("--burn-in", type=click.IntRange(0, 10**8), default=1000, show_default=True,
              help="Burn-in steps per rung.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def free_energy(beta, T, model, dk, sampler, rungs, copies, records, every, burn_in, as_json,
                representation, memory_budget, **kw):
    """Absolute free energy F(β) of either model, by switching the data term on.

    Samples E_t = (λ/2)‖θ‖² + t·E_data(θ) from t = 0 (a Gaussian whose log Z is known) to
    t = 1 at the fixed β and sums stepping-stone log Z ratios along t (docs/model.md §1.7);
    thermodynamic integration is the cross-check. For the merged model the exact log Z is
    printed beside it.
    """
    from spinicl.analysis.thermo import merged_log_z, switching_free_energy
    from spinicl.models import build_model
    from spinicl.prompts import make_task

    check_lam_for_sampling(kw["lam"])      # before the task's own check (>= 0)
    cfg = task_config(kw)
    beta = _beta_option(beta, T, 1e4)
    if dk is not None and model != "factored":
        raise ConfigError("dk", "used only with --model factored (the merged model has no "
                          "factors)", dk)
    if sampler is None:
        sampler = "exact" if model == "merged" else "gibbs"
    registry.check(model, sampler, "none", "dense", built=True)
    task = make_task(cfg)
    m = build_model(task, model, dk=dk, representation=representation,
                    memory_budget=memory_budget)
    t0 = time.perf_counter()
    r = switching_free_energy(m, beta, rungs=rungs, sampler=sampler, copies=copies,
                              records=records, every=every, burn_in=burn_in, seed=cfg.seed)
    out = {"model": model, "dk": getattr(m, "dk", None), "beta": beta, "sampler": sampler,
           "n_spins": r.n_spins, "rungs": int(r.t.size),
           "thermodynamic_length": r.thermodynamic_length, "log_z": r.log_z,
           "log_z_stderr": r.log_z_stderr, "log_z_ti": r.log_z_ti,
           "log_z_ti_stderr": r.log_z_ti_stderr,
           "log_z_ti_quadrature": r.log_z_ti_quadrature,
           "log_z_gaussian": r.log_z_gaussian, "free_energy": r.free_energy,
           "free_energy_per_spin": r.free_energy_per_spin,
           "free_energy_per_spin_stderr": r.free_energy_per_spin_stderr,
           "min_bridge_ess": float(np.min(r.weight_ess)) if r.weight_ess.size else None,
           "seed": cfg.seed, "seconds": time.perf_counter() - t0}
    if m.gaussian:
        from spinicl.theory.gaussian import gaussian_theory

        exact = merged_log_z(gaussian_theory(m, task), beta)
        out["log_z_exact"] = exact
        out["z"] = (r.log_z - exact) / r.log_z_stderr if r.log_z_stderr > 0 else None
    if as_json:
        print_json(out)
        return
    lines = [(f"{model} model, D = {cfg.D}, N = {cfg.N}, P = {cfg.P}, λ = {cfg.lam:g}, "
              f"β = {beta:g}; n = {r.n_spins} spins; sampler {sampler}, {copies} copies"),
             (f"path: {r.t.size} rungs in t (thermodynamic length "
              f"{r.thermodynamic_length:.3g}; smallest bridge-weight ESS "
              f"{out['min_bridge_ess']:.2g})"),
             f"  log Z, stepping stone      {r.log_z:.8g} ± {r.log_z_stderr:.2g}",
             (f"  log Z, integration (TI)    {r.log_z_ti:.8g} ± {r.log_z_ti_stderr:.2g} "
              f"(quadrature ≈ {r.log_z_ti_quadrature:.2g})")]
    if "log_z_exact" in out:
        z = out["z"]
        lines.append(f"  log Z, exact (Gaussian)    {out['log_z_exact']:.8g}"
                     + (f"   z = {z:+.2f}" if z is not None else ""))
    lines += [f"  log Z at t = 0 (decay)     {r.log_z_gaussian:.8g}",
              (f"  free energy F = −log Z/β   {r.free_energy:.8g} ± "
               f"{r.log_z_stderr / beta:.2g}"),
              (f"  per spin f = F/n           {r.free_energy_per_spin:.8g} ± "
               f"{r.free_energy_per_spin_stderr:.2g}"),
              f"({out['seconds']:.1f} s; seed {cfg.seed})"]
    if out["min_bridge_ess"] is not None and out["min_bridge_ess"] < POOR_BRIDGE_ESS:
        lines.append(f"warning: the smallest bridge-weight ESS is {out['min_bridge_ess']:.2g}"
                     f" < {POOR_BRIDGE_ESS:g}: neighbouring rungs overlap poorly, so the "
                     "errors are unreliable; rerun with more rungs (--rungs)")
    click.echo("\n".join(lines))


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the click group with one-line errors (exit 2).

    SIGINT/SIGTERM anywhere in the command end it with one line and exit status 130 /
    143 (:mod:`spinicl.signals`).
    """
    from spinicl.signals import Stopped, command_signals

    try:
        with command_signals():
            rv = cli.main(args=argv, prog_name="spinicl", standalone_mode=False)
    except Stopped as exc:
        click.echo(f"spinicl: stopped by {exc}" + (f" {exc.detail}" if exc.detail else ""),
                   err=True)
        sys.exit(exc.exit_code)
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
    except click.Abort:  # before Exception: Abort is a RuntimeError
        click.echo("spinicl: aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # one line for the errors a user can act on
        from spinicl.io.loaders import MissingExtraError
        from spinicl.io.run import StoreError

        if isinstance(exc, StoreError | MissingExtraError):
            click.echo(f"spinicl: error: {exc}", err=True)
            sys.exit(2)
        raise
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
