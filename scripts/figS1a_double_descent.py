"""Fig. S1a of Li, Bai & Huang (arXiv:2408.02288): double descent of trained linear attention.

Reproduces the supplement's Fig. S1a — novel-task test MSE against the pre-training load
α = P/D² for the merged (W) and the factored (W = W_qᵀW_k, d_k = D+1) linear-attention
transformer, trained with full-batch Adam from a random start — and draws beside it

* the paper's published points (mean ± s.d. over its 50 repeats; table copied from
  ``docs/paper-reference.md``, "Fig. S1a", read from the authors' released data);
* the exact ground states on the same prompts: the ridge solution m = A⁻¹h at λ = 1e-4
  (merged panel), the nuclear-norm optimum argmin E₀(W) + λ‖W‖_* at λ = 1e-4 (the
  factored model's global minimum, factored panel; first ``--gs-seeds`` seeds only, it is
  the slow part) and the λ = 0 minimum-norm interpolant (both panels).

The interpolation threshold is P = D(D+1) active spins, α = (D+1)/D (1.05 at D = 20): a
dotted vertical line.

Settings (the paper's, see docs/paper-reference.md): D = 20, N = 100, σ_x = σ_w = 1, noiseless
labels, 1000 novel-task test prompts, Adam (β = 0.9, 0.999, ε = 1e-8, bias-corrected),
lr = 0.01, 3000 full-batch epochs, no weight decay (λ = 0 — the paper's trained models
used none), initial entries N(0, 1/(D+1)); α on the paper's 24-point grid; 20 seeds by
default (``--seeds 50`` for the paper's 50 repeats). Seed s draws the task (prompts and
test sets) and the training stream (initial weights) of both models; for one seed the
training sets of different α are nested (prefixes of one stream of prompts). Error bars:
± 1 s.d. over seeds, as the paper's.

``--quick``: D = 16, N = 100, 10 values of α around the threshold α = 17/16, 6 seeds,
3000 epochs, nuclear-norm curve on 2 seeds — still shows the peak (at D = 10 the trained
merged model's peak, ≈ 2.0 against ≈ 1.5 beside it, is hardly above the seed-to-seed
spread of the random start).

Outputs, in ``scripts/output/figS1a/`` (``--out`` to change): ``figS1a.png`` / ``.pdf``
(``figS1a_quick.*`` with ``--quick``), ``figS1a_points.csv`` (every plotted number: one
row per series, model and α with mean, s.d. and count) and ``figS1a_runs.csv`` (one row
per α, seed and model: the raw values behind the means).

Run time (2 cores, ``--jobs 2``, measured): full 8 min (487 s wall; per run 0.5 s of Adam
for the merged and 0.7 s for the factored model; a quarter of the CPU time goes to the
nuclear-norm ground states), ``--quick`` 50 s; ``--seeds 50`` about 15 min (estimated
from the per-run times). ``--replot`` redraws the figure from the saved CSV in seconds.

Usage::

    python scripts/figS1a_double_descent.py [--quick] [--seeds S] [--jobs J] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from spinicl import make_task
from spinicl.models import build_model, mse
from spinicl.theory.gaussian import factored_ground_state, min_norm_ground_state
from spinicl.training import TrainConfig, ridge_ground_state, train

#: Fig. S1a as published: (α, merged mean, merged s.d., factored mean, factored s.d.) —
#: D = 20, N = 100, Adam lr 0.01, 3000 epochs, λ = 0, 50 repeats. Source: the authors'
#: released data, as copied in docs/paper-reference.md ("Fig. S1a").
PAPER_FIG_S1A = np.array([
    (0.10, 2.841, 0.319, 2.159, 0.284),
    (0.20, 2.624, 0.223, 1.951, 0.235),
    (0.30, 2.457, 0.259, 1.808, 0.174),
    (0.40, 2.308, 0.228, 1.660, 0.147),
    (0.50, 2.202, 0.224, 1.624, 0.166),
    (0.60, 2.052, 0.192, 1.572, 0.150),
    (0.70, 2.012, 0.223, 1.564, 0.178),
    (0.80, 2.009, 0.264, 1.704, 0.213),
    (0.85, 2.072, 0.245, 1.837, 0.280),
    (0.90, 2.325, 0.306, 2.100, 0.289),
    (0.95, 2.794, 0.538, 2.669, 0.675),
    (1.00, 4.037, 0.927, 4.586, 1.488),
    (1.05, 4.976, 1.250, 9.153, 3.528),
    (1.10, 3.418, 0.707, 4.023, 1.308),
    (1.15, 2.379, 0.621, 2.393, 0.667),
    (1.20, 1.539, 0.306, 1.559, 0.266),
    (1.30, 0.982, 0.129, 1.027, 0.160),
    (1.40, 0.800, 0.090, 0.754, 0.084),
    (1.50, 0.625, 0.065, 0.631, 0.065),
    (1.60, 0.548, 0.050, 0.546, 0.053),
    (1.70, 0.498, 0.045, 0.489, 0.034),
    (1.80, 0.452, 0.037, 0.457, 0.040),
    (1.90, 0.422, 0.032, 0.418, 0.034),
    (2.00, 0.395, 0.036, 0.385, 0.024),
])
PAPER_SEEDS = 50

FULL = {"D": 20, "N": 100, "alphas": tuple(PAPER_FIG_S1A[:, 0]), "seeds": 20, "gs_seeds": 5,
        "epochs": 3000}
QUICK = {"D": 16, "N": 100,
         "alphas": (0.2, 0.5, 0.8, 0.95, 1.0, 17 / 16, 1.125, 1.2, 1.5, 2.0),
         "seeds": 6, "gs_seeds": 2, "epochs": 3000}
LR = 0.01
LAM_TRAIN = 0.0
LAM_GS = 1e-4
TEST_PROMPTS = 1000
MODELS = ("merged", "factored")
COLORS = {"merged": "#1f5fa8", "factored": "#c2452d"}


# --------------------------------------------------------------------------- one point
def run_point(D: int, N: int, alpha: float, seed: int, epochs: int,
              nuclear: bool) -> list[dict]:
    """Train both models on one task and evaluate the exact ground states.

    Parameters
    ----------
    D, N : int
        Token dimension and context length.
    alpha : float
        Load α = P/D² (P rounded to the nearest integer; the rows carry the exact P/D²).
    seed : int
        Seed of the task and of the training stream.
    epochs : int
        Adam epochs.
    nuclear : bool
        Also solve the factored (nuclear-norm) ground state at λ = LAM_GS.

    Returns
    -------
    list of dict
        One row per quantity (``series``, ``model``, ``alpha``, ``P``, ``seed``,
        ``lam``, ``test_mse_novel``, ``train_mse``, ``seconds``).
    """
    with threadpool_limits(1):
        P = round(alpha * D * D)
        task = make_task(D=D, N=N, P=P, lam=LAM_TRAIN, seed=seed, test_prompts=TEST_PROMPTS)
        base = {"alpha": P / D**2, "P": P, "seed": seed}
        rows = []
        for model in MODELS:
            cfg = TrainConfig(optimizer="adam", lr=LR, epochs=epochs, model=model, seed=seed,
                              record_every=epochs)
            r = train(task, cfg, lam=LAM_TRAIN)
            rows.append({**base, "series": "spinicl_adam", "model": model, "lam": LAM_TRAIN,
                         "test_mse_novel": r.test_mse_novel, "train_mse": r.train_mse,
                         "seconds": r.seconds})
        t0 = time.perf_counter()
        merged = build_model(task, "merged", lam=LAM_GS)
        m = ridge_ground_state(merged)
        rows.append({**base, "series": "ridge_ground_state", "model": "merged", "lam": LAM_GS,
                     "test_mse_novel": float(mse(m[None], task.test_novel)[0]),
                     "train_mse": float(mse(m[None], task.train)[0]),
                     "seconds": time.perf_counter() - t0})
        t0 = time.perf_counter()
        m0 = min_norm_ground_state(build_model(task, "merged", lam=0.0))
        rows.append({**base, "series": "min_norm_interpolant", "model": "merged", "lam": 0.0,
                     "test_mse_novel": float(mse(m0[None], task.test_novel)[0]),
                     "train_mse": float(mse(m0[None], task.train)[0]),
                     "seconds": time.perf_counter() - t0})
        if nuclear:
            t0 = time.perf_counter()
            gs = factored_ground_state(build_model(task, "factored", lam=LAM_GS), tol=1e-8)
            rows.append({**base, "series": "nuclear_norm_ground_state", "model": "factored",
                         "lam": LAM_GS,
                         "test_mse_novel": float(mse(gs.W[None], task.test_novel)[0]),
                         "train_mse": float(mse(gs.W[None], task.train)[0]),
                         "seconds": time.perf_counter() - t0})
    return rows


def _run_star(args: tuple) -> list[dict]:
    return run_point(*args)


# --------------------------------------------------------------------------- aggregate
def aggregate(rows: list[dict]) -> list[dict]:
    """Mean, s.d. (ddof=1) and count per (series, model, α)."""
    groups: dict[tuple, list[float]] = {}
    meta: dict[tuple, dict] = {}
    for r in rows:
        key = (r["series"], r["model"], r["alpha"])
        groups.setdefault(key, []).append(r["test_mse_novel"])
        meta[key] = {"P": r["P"], "lam": r["lam"]}
    out = []
    for key in sorted(groups):
        v = np.asarray(groups[key])
        out.append({"series": key[0], "model": key[1], "alpha": key[2], **meta[key],
                    "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1
                    else float("nan"), "n": int(v.size)})
    return out


def paper_rows(D: int) -> list[dict]:
    out = []
    for a, mm, ms, fm, fs in PAPER_FIG_S1A:
        for model, mean, std in (("merged", mm, ms), ("factored", fm, fs)):
            out.append({"series": "paper_adam", "model": model, "alpha": float(a),
                        "P": round(a * 400), "lam": 0.0, "mean": float(mean),
                        "std": float(std), "n": PAPER_SEEDS})
    return out


def series(points: list[dict], name: str, model: str) -> tuple[np.ndarray, ...]:
    sel = sorted((p for p in points if p["series"] == name and p["model"] == model),
                 key=lambda p: p["alpha"])
    return (np.array([p["alpha"] for p in sel]), np.array([p["mean"] for p in sel]),
            np.array([p["std"] for p in sel]))


def peak(points: list[dict], name: str, model: str) -> tuple[float, float, float]:
    """(α, mean, s.d.) at the largest mean of a series."""
    a, m, s = series(points, name, model)
    i = int(np.argmax(m))
    return float(a[i]), float(m[i]), float(s[i])


# --------------------------------------------------------------------------- figure
def make_figure(points: list[dict], D: int, N: int, seeds: int, gs_seeds: int, epochs: int,
                out: Path, stem: str) -> None:
    """Two panels (merged, factored), linear test-MSE axis as in the paper; PNG + PDF."""
    matplotlib.use("Agg")
    plt.rcParams.update({"font.size": 9, "axes.labelsize": 10, "legend.fontsize": 7.5,
                         "xtick.labelsize": 8.5, "ytick.labelsize": 8.5,
                         "axes.spines.top": False, "axes.spines.right": False,
                         "savefig.dpi": 200, "pdf.fonttype": 42})
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 4.0), sharey=True, constrained_layout=True)
    threshold = (D + 1) / D
    tops = [m + np.nan_to_num(s) for name in ("spinicl_adam", "paper_adam")
            for model in MODELS for _, m, s in [series(points, name, model)]]
    yhi = 1.1 * max(float(np.max(t)) for t in tops)
    titles = {"merged": "(a) merged attention $W$",
              "factored": f"(b) factored $W=W_q^\\top W_k$, $d_k={D + 1}$"}
    for ax, model in zip(axes, MODELS, strict=True):
        col = COLORS[model]
        ax.axvline(threshold, color="0.6", ls=":", lw=1.0, zorder=0)
        ax.text(threshold + 0.03, 0.6 * yhi, "$\\alpha=(D+1)/D$", color="0.4",
                fontsize=7.5, va="center", ha="left")
        a, m, _ = series(points, "min_norm_interpolant", "merged")
        ax.plot(a, m, color="0.55", ls="--", lw=0.9,
                label=r"exact: min-$\|W\|_F$ interpolant, $\lambda=0$")
        for x, y in zip(a[m > yhi], m[m > yhi], strict=True):
            ax.annotate(f"{y:.0f}", (x, yhi), xytext=(x - 0.28, 0.88 * yhi), fontsize=7,
                        color="0.4", va="center",
                        arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.6})
        if model == "merged":
            a, m, _ = series(points, "ridge_ground_state", "merged")
            label = r"exact: ridge ground state $m$, $\lambda=10^{-4}$ (a)"
        else:
            a, m, _ = series(points, "nuclear_norm_ground_state", "factored")
            label = (r"exact: nuclear-norm ground state, $\lambda=10^{-4}$"
                     + f", {gs_seeds} seeds (b)")
        if len(a):
            ax.plot(a, m, color="k" if model == "merged" else "0.25", lw=1.3,
                    ls="-" if model == "merged" else "-.", label=label)
        a, m, s = series(points, "paper_adam", model)
        paper_label = (f"paper: Adam, {PAPER_SEEDS} repeats" if D == 20
                       else f"paper ($D=20$): Adam, {PAPER_SEEDS} repeats")
        ax.errorbar(a, m, yerr=s, fmt="o", ms=5.2, mfc="none", mec="0.15", mew=0.9,
                    ecolor="0.55", elinewidth=0.7, capsize=2.2, lw=0, label=paper_label,
                    zorder=4)
        a, m, s = series(points, "spinicl_adam", model)
        ax.errorbar(a, m, yerr=s, fmt="s-", ms=3.0, color=col, lw=1.2, elinewidth=0.9,
                    capsize=1.6, label=f"spinicl: Adam, {model}, {seeds} seeds", zorder=3)
        ax.set_ylim(0, yhi)
        ax.set_xlim(0, 2.05)
        ax.set_xlabel(r"$\alpha = P/D^2$")
        ax.set_title(titles[model], fontsize=9.5, loc="left")
        ax.grid(True, color="0.93", lw=0.6)
    axes[0].set_ylabel("novel-task test MSE")
    handles: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    rank = ("spinicl: Adam, merged", "spinicl: Adam, factored", "paper", "exact: ridge",
            "exact: nuclear", "exact: min")
    order = sorted(handles, key=lambda lab: [lab.startswith(r) for r in rank].index(True))
    fig.legend([handles[k] for k in order], order, loc="outside lower center", ncol=2,
               frameon=False, handlelength=2.2, columnspacing=1.5)
    settings = (f"$D={D}$, $N={N}$, {TEST_PROMPTS} test prompts. Trained: full-batch Adam, "
                f"lr ${LR:g}$, {epochs} epochs, $\\lambda={LAM_TRAIN:g}$ (no weight decay),\n"
                "initial entries $\\mathcal{N}(0,1/(D+1))$; error bars ±1 s.d. over seeds "
                "(spinicl) or repeats (paper)")
    fig.suptitle(settings, fontsize=8, color="0.2")
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{stem}.{ext}")
    plt.close(fig)


# --------------------------------------------------------------------------- main
def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def read_points(path: Path) -> list[dict]:
    """The plotted numbers back from ``*_points.csv``."""
    with open(path, newline="") as fh:
        return [{**r, "alpha": float(r["alpha"]), "mean": float(r["mean"]),
                 "std": float(r["std"]), "n": int(r["n"])} for r in csv.DictReader(fh)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="D=16, 10 alphas, 6 seeds (~1 min)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per alpha")
    ap.add_argument("--gs-seeds", type=int, default=None,
                    help="seeds of the (slow) nuclear-norm ground state")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--replot", action="store_true",
                    help="redraw the figure from the existing _points.csv (no training)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent / "output" / "figS1a")
    args = ap.parse_args(argv)
    setup = dict(QUICK if args.quick else FULL)
    for key in ("seeds", "gs_seeds", "epochs"):
        if getattr(args, key) is not None:
            setup[key] = getattr(args, key)
    D, N, seeds, gs_seeds, epochs = (setup[k] for k in ("D", "N", "seeds", "gs_seeds",
                                                        "epochs"))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "figS1a_quick" if args.quick else "figS1a"
    if args.replot:
        points = read_points(args.out / f"{stem}_points.csv")
        make_figure(points, D, N, seeds, gs_seeds, epochs, args.out, stem)
        print(f"redrew {args.out}/{stem}.png, .pdf")
        return
    jobs = [(D, N, float(a), s, epochs, s < gs_seeds) for a in setup["alphas"]
            for s in range(seeds)]
    jobs.sort(key=lambda j: -j[2] * (10 if j[5] else 1))  # slow ones first
    t0 = time.perf_counter()
    rows: list[dict] = []
    if args.jobs <= 1:
        for j in jobs:
            rows.extend(_run_star(j))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            for i, part in enumerate(ex.map(_run_star, jobs, chunksize=1)):
                rows.extend(part)
                if (i + 1) % max(1, len(jobs) // 10) == 0:
                    print(f"  {i + 1}/{len(jobs)} points, {time.perf_counter() - t0:.0f} s",
                          flush=True)
    wall = time.perf_counter() - t0
    rows.sort(key=lambda r: (r["series"], r["model"], r["alpha"], r["seed"]))
    points = aggregate(rows) + paper_rows(D)
    write_csv(args.out / f"{stem}_runs.csv", rows)
    write_csv(args.out / f"{stem}_points.csv", points)
    make_figure(points, D, N, seeds, gs_seeds, epochs, args.out, stem)

    print(f"D={D}, N={N}, {len(setup['alphas'])} alphas x {seeds} seeds, {epochs} epochs: "
          f"{wall:.0f} s wall on {args.jobs} process(es)")
    print(f"threshold alpha = (D+1)/D = {(D + 1) / D:.3f}")
    for name in ("spinicl_adam", "paper_adam"):
        for model in MODELS:
            a, m, s = peak(points, name, model)
            a_all, m_all, _ = series(points, name, model)
            end = m_all[np.argmax(a_all)]
            print(f"  {name:13s} {model:8s}: peak {m:.3f} ± {s:.3f} at alpha = {a:g}; "
                  f"at alpha = {a_all.max():g}: {end:.3f}")
    for name, model in (("ridge_ground_state", "merged"), ("min_norm_interpolant", "merged"),
                        ("nuclear_norm_ground_state", "factored")):
        if len(series(points, name, model)[0]):
            a, m, s = peak(points, name, model)
            print(f"  {name:26s}: peak {m:.3f} at alpha = {a:g}")
    if D == 20:
        print("alpha   merged: spinicl / paper      factored: spinicl / paper")
        for a in setup["alphas"]:
            vals = []
            for model in MODELS:
                for name in ("spinicl_adam", "paper_adam"):
                    p = next(p for p in points if p["series"] == name and p["model"] == model
                             and math.isclose(p["alpha"], a))
                    vals.append(f"{p['mean']:.3f}±{p['std']:.3f}")
            print(f"{a:5.2f}   {vals[0]} / {vals[1]}    {vals[2]} / {vals[3]}")
    print(f"wrote {args.out}/{stem}.png, .pdf, _points.csv, _runs.csv")


if __name__ == "__main__":
    main()
