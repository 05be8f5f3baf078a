"""Fig. S4 of Li, Bai & Huang (arXiv:2408.02288): test MSE against the token correlation c.

Reproduces the supplement's Fig. S4 — novel-task test MSE at N = 200 when all N+1 tokens of
a prompt are correlated with a common correlation c (each input coordinate correlated across
tokens, the query token included) — for the two token covariances spinicl can draw
(``make_task(rho=c, rho_variant=...)``):

* ``intended``: covariance C = (1 − c) I + c 11ᵀ (what the paper describes): every token,
  the query included, has unit variance, so Var(y_q) = σ_w² σ_x² = 1 for every c;
* ``paper``: the paper's code multiplies i.i.d. inputs on the right by the Cholesky factor
  L of C, so the realised covariance is LᵀL: the query token's variance is L_mm² ≈ 1 − c
  and Var(y_q) = L_mm² falls to 0.05 at c = 0.95.

For both: the paper's AMP (variant ``paper``, λ = 0.01, β = 100, at most 200 sweeps, stopped
at the 5e-6 change rule of the paper's Fig. S4 code; repeats that miss it are left out as
the paper did), Adam as in Fig. 4b (lr 1e-3, 5000 epochs, torch weight_decay 0.01, i.e.
λ = 0.005), and the exact ground states at λ = 0.01 and λ = 0.005; the paper's AMP and Adam
points (mean over 20 repeats; table in ``docs/paper-reference.md``, "Fig. S4").
Panel (b) divides every MSE by the query label's variance Var(y_q) (exact: 1, or L_mm²;
the paper's points by L_mm², the variance under its own LᵀL), panel (c) shows Var(y_q)
(line: exact; markers: mean y_q² of the test prompts).

Settings (the paper's): D = 20, N = 200, P = 10⁴, 1000 novel-task test prompts,
c = 0.05, 0.10, …, 0.95; 4 seeds per (c, variant) by default (paper: 20 repeats; ``--seeds``
to change). Error bars: ± 1 s.d. over seeds.

Outputs (``scripts/output/figS4/``): ``figS4.png``/``.pdf``; ``figS4_points.csv`` (every
plotted number: variant, series, c, mean, s.d., count, Var(y_q), normalised mean);
``figS4_runs.csv`` (one row per variant, series, c and seed).

Run time (2 cores, ``--jobs 2``, measured on a shared machine): full (19 c × 2 variants ×
4 seeds) 4.8 min (5.9 CPU-min, ≈ 2.3 s per point); ``--quick`` (c = 0.05, 0.2, 0.35, 0.5,
0.65, 0.8, 0.95; 1 seed) 70 s. Drawing the correlated prompts (an (N+1) × (N+1) product per
prompt and coordinate) is about half of the time.

Usage::

    python scripts/figS4_correlated_tokens.py [--quick] [--seeds S] [--jobs J] [--out DIR]
"""

from __future__ import annotations

import math
import time

import numpy as np
from _common import (
    PAPER_FIGS4,
    PAPER_FIGS4_REPEATS,
    aggregate,
    elapsed,
    parser,
    pmap,
    pyplot,
    read_csv,
    save,
    select,
    setup,
    single_threaded,
    write_csv,
)

from spinicl import make_task
from spinicl.models import MergedModel, build_model, mse
from spinicl.prompts import token_cholesky
from spinicl.theory.amp import amp_for_model
from spinicl.theory.gaussian import gaussian_theory
from spinicl.training import TrainConfig, torch_weight_decay_to_lam, train

NAME = "figS4"
LAM = 0.01
LAM_ADAM = torch_weight_decay_to_lam(0.01)  # 0.005
BETA = 100.0
AMP_TOL = 5e-6
AMP_SWEEPS = 200
VARIANTS = ("intended", "paper")
CS = tuple(round(0.05 * k, 2) for k in range(1, 20))
FULL = {"D": 20, "N": 200, "P": 10_000, "cs": CS, "seeds": 4, "test_prompts": 1000,
        "epochs": 5000}
QUICK = {**FULL, "cs": (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95), "seeds": 1}
TINY = {"D": 5, "N": 20, "P": 400, "cs": (0.1, 0.5, 0.9), "seeds": 1, "test_prompts": 300,
        "epochs": 300}
SERIES = {  # name: (label, colour, marker)
    "gs_lam0.01": (r"exact ground state, $\lambda=0.01$", "k", None),
    "gs_lam0.005": (r"exact ground state, $\lambda=0.005$", "0.5", None),
    "amp_paper": (r"AMP 'paper', $\lambda=0.01$, $\beta=100$", "#1f5fa8", "o"),
    "adam": (r"Adam, torch wd 0.01 ($\lambda=0.005$)", "#d9771e", "s"),
}


def label_variance(N: int, c: float, variant: str) -> float:
    """Exact Var(y_q) = σ_x² σ_w² × (query token variance): 1 (C) or L_mm² (LᵀL)."""
    if variant == "intended":
        return 1.0
    L = token_cholesky(N + 1, c)
    return float(L[-1, -1] ** 2)


# --------------------------------------------------------------------------- one point
def run_point(job: tuple) -> list[dict]:
    s, variant, c, seed = job
    t0 = time.perf_counter()
    rows: list[dict] = []
    var = label_variance(s["N"], c, variant)

    with single_threaded():
        task = make_task(D=s["D"], N=s["N"], P=s["P"], lam=LAM, seed=seed, rho=c,
                         rho_variant=variant, test_prompts=s["test_prompts"])
        t_task = time.perf_counter() - t0
        emp_var = float(np.mean(task.test_novel.y ** 2))

        def add(series: str, value: float, **extra) -> None:
            rows.append({"variant": variant, "series": series, "c": c, "seed": seed,
                         "value": float(value), "var_yq": var, "var_yq_empirical": emp_var,
                         "normalised": float(value) / var, **extra})

        model = build_model(task, "merged", lam=LAM, representation="dense")
        th = gaussian_theory(model, task)
        add("gs_lam0.01", th.test_mse_ground["novel"])
        m5 = gaussian_theory(MergedModel(model.data, LAM_ADAM), task).mean
        add("gs_lam0.005", mse(m5[None], task.test_novel)[0])
        r = amp_for_model(model, BETA, variant="paper", tol=AMP_TOL, max_sweeps=AMP_SWEEPS,
                          seed=seed, m_exact=th.mean)
        # the paper left out repeats that missed its rule: NaN here, skipped when averaging
        add("amp_paper", mse(r.m[None], task.test_novel)[0] if r.converged else np.nan,
            sweeps=r.sweeps, converged=r.converged, rel_dist_to_m=r.relative_distance)
        cfg = TrainConfig(optimizer="adam", lr=1e-3, epochs=s["epochs"], model="merged",
                          seed=seed, record_every=s["epochs"], representation="dense")
        tr = train(task, cfg, lam=LAM_ADAM)
        add("adam", tr.test_mse_novel, train_mse=tr.train_mse,
            rel_dist_to_gs=float(np.linalg.norm(tr.W - m5) / np.linalg.norm(m5)))
    for row in rows:
        row["seconds_task"] = t_task
        row["seconds_point"] = time.perf_counter() - t0
    return rows


# --------------------------------------------------------------------------- tables
def make_points(runs: list[dict], N: int) -> list[dict]:
    pts = aggregate(runs, ("variant", "series", "c"))
    norm = {(p["variant"], p["series"], p["c"]): p
            for p in aggregate(runs, ("variant", "series", "c"), "normalised")}
    emp = {(p["variant"], p["c"]): p
           for p in aggregate([r for r in runs if r["series"] == "gs_lam0.01"],
                              ("variant", "c"), "var_yq_empirical")}
    for p in pts:
        q = norm[(p["variant"], p["series"], p["c"])]
        p["var_yq"] = label_variance(N, p["c"], p["variant"])
        p["var_yq_empirical"] = emp[(p["variant"], p["c"])]["mean"]
        p["normalised_mean"], p["normalised_std"] = q["mean"], q["std"]
    for c, amp, adam in PAPER_FIGS4:
        var = label_variance(200, float(c), "paper")
        for name, v in (("paper_amp", amp), ("paper_adam", adam)):
            pts.append({"variant": "paper", "series": name, "c": float(c), "mean": v,
                        "std": float("nan"), "sem": float("nan"), "n": PAPER_FIGS4_REPEATS,
                        "var_yq": var, "var_yq_empirical": float("nan"),
                        "normalised_mean": v / var, "normalised_std": float("nan")})
    return pts


# --------------------------------------------------------------------------- figure
def make_figure(points: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 3, figsize=(11.0, 4.2), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1.15, 1.15, 0.8]})
    styles = {"paper": "-", "intended": "--"}
    for ax, key, std_key in ((axes[0], "mean", "std"),
                             (axes[1], "normalised_mean", "normalised_std")):
        for variant in VARIANTS:
            for name, (_, col, mk) in SERIES.items():
                sel = sorted((p for p in points if p["variant"] == variant
                              and p["series"] == name), key=lambda p: p["c"])
                if not sel:
                    continue
                c = np.array([p["c"] for p in sel])
                y = np.array([p[key] for p in sel], dtype=float)
                e = np.array([p[std_key] for p in sel], dtype=float)
                off = {"amp_paper": -0.006, "adam": 0.006}.get(name, 0.0)
                if mk is None:
                    ax.plot(c, y, styles[variant], color=col, lw=1.2)
                else:
                    ax.errorbar(c + off, y, yerr=np.nan_to_num(e), fmt=mk + styles[variant],
                                ms=3.2, color=col, lw=1.0, elinewidth=0.7, capsize=1.5,
                                mfc=col if variant == "paper" else "white")
        tag = "" if s["D"] == 20 and s["N"] == 200 else " ($D=20$, $N=200$)"
        for name, mk, col in (("paper_amp", "o", "#1f5fa8"), ("paper_adam", "D", "#d9771e")):
            c, _, _, _ = select(points, "c", series=name)
            sel = sorted((p for p in points if p["series"] == name), key=lambda p: p["c"])
            ax.plot(c, [p[key] for p in sel], mk, ms=6.5 if mk == "o" else 5.2, mfc="none",
                    mec=col, mew=1.0, alpha=0.9, zorder=5)
        ax.set_xlabel("token correlation $c$")
        ax.grid(True, color="0.93", lw=0.6)
        ax.set_xlim(0, 1)
    missing = sorted(p["c"] for p in points if p["variant"] == "intended"
                     and p["series"] == "amp_paper" and not np.isfinite(float(p["mean"])))
    if missing:
        axes[0].text(0.98, 0.97, f"intended $C$: AMP 'paper' misses its 5e-6 rule\n"
                     f"in every seed for $c\\geq{missing[0]:g}$ (not drawn)",
                     transform=axes[0].transAxes, ha="right", va="top", fontsize=7,
                     color="#1f5fa8")
    axes[0].set_ylabel("novel-task test MSE $\\varepsilon_{\\rm ICL}$")
    axes[0].set_title(f"(a) raw test MSE, $N={s['N']}$")
    axes[1].set_ylabel(r"$\varepsilon_{\rm ICL}\,/\,{\rm Var}(y_q)$")
    axes[1].set_title("(b) divided by the query label's variance")

    ax = axes[2]
    cc = np.linspace(0.01, 0.99, 99)
    for variant in VARIANTS:
        ax.plot(cc, [label_variance(s["N"], c, variant) for c in cc], styles[variant],
                color="k", lw=1.1)
        sel = sorted((p for p in points if p["variant"] == variant
                      and p["series"] == "gs_lam0.01"), key=lambda p: p["c"])
        ax.plot([p["c"] for p in sel], [p["var_yq_empirical"] for p in sel], "o", ms=3.5,
                mfc="white" if variant == "intended" else "k", mec="k", mew=0.8)
    ax.set_xlabel("token correlation $c$")
    ax.set_ylabel(r"${\rm Var}(y_q)$")
    ax.set_title("(c) query label variance")
    ax.set_ylim(0, 1.15)
    ax.set_xlim(0, 1)
    ax.grid(True, color="0.93", lw=0.6)
    ax.text(0.62, 0.93, r"intended $C$: 1", ha="center", fontsize=7.5)
    ax.text(0.08, 0.3, r"paper's $L^\top L$:" "\n" r"$L_{mm}^2\approx 1-c$", fontsize=7.5)

    handles = [Line2D([], [], color=col, lw=1.2, marker=mk, ms=3.5, label=lab)
               for lab, col, mk in SERIES.values()]
    handles += [Line2D([], [], color="0.3", ls="-", label="paper's covariance $L^\\top L$ "
                       "(filled markers)"),
                Line2D([], [], color="0.3", ls="--", label="intended covariance $C$ "
                       "(open markers)"),
                Line2D([], [], ls="", marker="o", mfc="none", mec="#1f5fa8", ms=6.5,
                       label=f"paper: AMP{tag} ({PAPER_FIGS4_REPEATS} repeats)"),
                Line2D([], [], ls="", marker="D", mfc="none", mec="#d9771e", ms=5.2,
                       label=f"paper: Adam{tag}")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False,
               columnspacing=1.4, handlelength=2.4)
    fig.suptitle(f"$D={s['D']}$, $N={s['N']}$, $P={s['P']}$, {s['test_prompts']} test "
                 f"prompts, {s['seeds']} seed(s) per point (error bars ±1 s.d.)",
                 fontsize=8.5, color="0.2")
    save(fig, out, stem)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "7 values of c, 1 seed (~1 min)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    if args.replot:
        make_figure(read_csv(out / f"{stem}_points.csv"), s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    jobs = [(s, v, c, seed) for seed in range(s["seeds"]) for c in s["cs"] for v in VARIANTS]
    runs = [r for part in pmap(run_point, jobs, args.jobs, "(variant, c, seed) points")
            for r in part]
    runs.sort(key=lambda r: (r["variant"], r["series"], r["c"], r["seed"]))
    points = make_points(runs, s["N"])
    write_csv(out / f"{stem}_runs.csv", runs)
    write_csv(out / f"{stem}_points.csv", points)
    make_figure(points, s, out, stem)

    print(f"D={s['D']}, N={s['N']}, P={s['P']}, {len(s['cs'])} c x {len(VARIANTS)} variants "
          f"x {s['seeds']} seeds: {elapsed(t0)} on {args.jobs} process(es)")
    by = {(p["variant"], p["series"], p["c"]): p for p in points}
    print("   c   | LtL: AMP   Adam   gs.01  gs.005 Var(yq) | paper AMP Adam  AMP/Var | "
          "C: AMP   Adam   gs.01")
    for c in s["cs"]:
        def g(v, n, c=c, k="mean"):
            p = by.get((v, n, float(c)))
            return p[k] if p else float("nan")
        print(f" {c:.2f} | {g('paper', 'amp_paper'):.4f} {g('paper', 'adam'):.4f} "
              f"{g('paper', 'gs_lam0.01'):.4f} {g('paper', 'gs_lam0.005'):.4f} "
              f"{label_variance(s['N'], c, 'paper'):.3f}   | "
              f"{g('paper', 'paper_amp'):.4f} {g('paper', 'paper_adam'):.4f} "
              f"{g('paper', 'paper_amp', k='normalised_mean'):.3f}   | "
              f"{g('intended', 'amp_paper'):.4f} {g('intended', 'adam'):.4f} "
              f"{g('intended', 'gs_lam0.01'):.4f}")
    amp = [r for r in runs if r["series"] == "amp_paper"]
    print(f"AMP 'paper': {sum(bool(r['converged']) for r in amp)}/{len(amp)} met the 5e-6 "
          f"rule within {AMP_SWEEPS} sweeps")
    if s["D"] == 20 and s["N"] == 200:
        for paper, ours in (("paper_amp", "amp_paper"), ("paper_adam", "adam"),
                            ("paper_adam", "gs_lam0.005")):
            d = np.array([by[("paper", paper, float(c))]["mean"]
                          - by[("paper", ours, float(c))]["mean"] for c in s["cs"]
                          if ("paper", ours, float(c)) in by])
            rel = np.array([(by[("paper", paper, float(c))]["mean"]
                             / by[("paper", ours, float(c))]["mean"]) - 1 for c in s["cs"]
                            if ("paper", ours, float(c)) in by])
            print(f"paper's LtL points: {paper} − spinicl {ours}: mean {d.mean():+.4f}, "
                  f"max |Δ| {np.abs(d).max():.4f}, max relative {np.nanmax(np.abs(rel)):.1%}")
        pn = [by[("paper", "paper_amp", float(c))]["normalised_mean"] for c in CS if c >= 0.5]
        print(f"paper AMP / L_mm^2 for c >= 0.5: {min(pn):.2f} … {max(pn):.2f}")
    print(f"wrote {out}/{stem}.png, .pdf, _points.csv, _runs.csv")
    if not math.isfinite(sum(p["mean"] for p in points if p["series"] == "gs_lam0.01")):
        raise SystemExit("non-finite ground-state MSE")


if __name__ == "__main__":
    main()
