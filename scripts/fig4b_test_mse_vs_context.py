"""Fig. 4b of Li, Bai & Huang (arXiv:2408.02288): novel-task test MSE against context length N.

Reproduces Fig. 4b — the in-context (novel-task) test error of the spin-glass solution and
of trained linear attention against the context length N — and places the paper's two
published columns (table in ``docs/paper-reference.md``, "Fig. 4b": its AMP and
its Adam column, mean ± s.d. over 50 disorder samples) on spinicl's curves, all computed on
the same prompts for each disorder sample (seed):

* the exact ground state m = A⁻¹h (the Boltzmann mean, ridge solution) at λ = 0.01 (the
  paper's theory) and at λ = 0.005 (= torch ``weight_decay`` 0.01 / 2, the paper's Adam);
* the cavity iteration (AMP) at λ = 0.01, β = 100 in both variants: ``paper`` (the paper's
  code: no Onsager term, N(0, 1) start, stopped on its 1e-6 change rule or after 100
  sweeps; its fixed point sits 4–7 % from m) and ``onsager`` (converges to m exactly);
* Boltzmann samples at λ = 0.01 drawn by MALA (spinicl's Metropolis-adjusted Langevin, one
  chain per temperature and copy, started at W = 0): mean test MSE of the samples at
  β = 10⁵, 10⁴, 10³ and 10² (docs/model.md §1.3: the paper's β = 100 is a *hot* temperature —
  its samples have test MSE ≈ 4, twenty times the ground state), with the closed form
  ⟨ε_t⟩ = ε_t(m) + tr(B_t A⁻¹)/β beside them;
* merged linear attention trained by full-batch Adam exactly as the paper: lr 1e-3, 5000
  epochs, torch weight_decay 0.01 (λ = 0.005 of E), initial entries N(0, 1/(D+1));
* the one-step-GD baseline (W = η I_D ⊕ 0, η fitted on the training prompts) and the
  Bayes-optimal ridge on each test context (= 0 for N ≥ D: the labels are noiseless).

Panel (b) shows each curve minus the λ = 0.01 ground state on the same seed (paired), which
resolves the 0.005–0.01 differences that separate the paper's columns from the exact answer.

Settings (the paper's): D = 20, P = 10⁴ training prompts, N = 20, 40, …, 200 (the released
N list), σ_x = σ_w = 1, noiseless labels; 2000 novel-task test prompts (paper: 1000);
20 seeds by default (paper: 50; ``--seeds 50`` for its count). MALA: 2 copies per
temperature, 2000 burn-in steps (step size adapted) then 2000 steps recorded every 20.
Error bars: ± 1 s.d. over seeds in (a) (as the paper's); ± 1 standard error in (b).

Outputs (``scripts/output/fig4b/``): ``fig4b.png``/``.pdf``; ``fig4b_points.csv`` (every
plotted number: series, N, mean, s.d., s.e.m., count, paired difference to the λ = 0.01
ground state with its s.e.m.; the paper's columns as series ``paper_amp``/``paper_adam``);
``fig4b_runs.csv`` (one row per series, N and seed: test MSE and diagnostics — AMP sweeps,
convergence and distance to m, Adam's distance to its ground state, MALA acceptance);
``fig4b_vs_paper.csv`` (the comparison table printed at the end).

Run time (2 cores, ``--jobs 2``, measured on a shared machine with a load average of 4–5):
full (20 seeds) 12 min wall, 7.6 CPU-min (≈ 4 min on 2 idle cores: 2.4 s per (N, seed) —
0.45 s of Adam, 0.9 s of MALA, 0.1–1 s to draw the prompts); ``--quick`` (N = 20, 60, 100,
140, 200; 4 seeds) 1 min; ``--seeds 50`` ≈ 2.5 × the full run.

Usage::

    python scripts/fig4b_test_mse_vs_context.py [--quick] [--seeds S] [--jobs J] [--out DIR]
"""

from __future__ import annotations

import math
import time

import numpy as np
from _common import (
    PAPER_FIG4B,
    PAPER_FIG4B_REPEATS,
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
from spinicl.samplers import Ladder, make_sampler, sample_trace
from spinicl.theory.amp import amp_for_model
from spinicl.theory.baselines import bayes_ridge, one_step_gd
from spinicl.theory.gaussian import gaussian_theory
from spinicl.training import TrainConfig, torch_weight_decay_to_lam, train

NAME = "fig4b"
LAM = 0.01                       # the paper's theory (AMP) λ
TORCH_WD = 0.01                  # the paper's Adam weight_decay
LAM_ADAM = torch_weight_decay_to_lam(TORCH_WD)  # = 0.005
BETA_AMP = 100.0
TEMPS = (1e-5, 1e-4, 1e-3, 1e-2)  # MALA temperatures (β = 1e5 … 100)
BETA_LOW = 1e4                   # the "low temperature" curve of panel (a)

FULL = {"D": 20, "P": 10_000, "Ns": tuple(range(20, 201, 20)), "seeds": 20,
        "test_prompts": 2000, "epochs": 5000, "burn": 2000, "records": 100, "every": 20}
QUICK = {**FULL, "Ns": (20, 60, 100, 140, 200), "seeds": 4}
TINY = {"D": 6, "P": 600, "Ns": (8, 40), "seeds": 2, "test_prompts": 300, "epochs": 300,
        "burn": 300, "records": 20, "every": 10}

SERIES = {  # name: (label, colour)
    "gs_lam0.01": (r"exact ground state $m$, $\lambda=0.01$", "k"),
    "gs_lam0.005": (r"exact ground state $m$, $\lambda=0.005$", "0.45"),
    "amp_paper": (r"AMP 'paper' (no Onsager term), $\lambda=0.01$, $\beta=100$", "#1f5fa8"),
    "amp_onsager": (r"AMP 'onsager', $\lambda=0.01$ (= $m$)", "#7fb2e5"),
    "adam": (r"Adam, torch wd 0.01 ($\lambda=0.005$), 5000 epochs", "#d9771e"),
    "mala_T1e-04": (r"MALA samples, $\lambda=0.01$, $\beta=10^4$", "#a11b9b"),  # plasma(0.35), as in (c)
    "gd": ("one-step GD baseline", "#8e44ad"),
    "bayes": ("Bayes ridge baseline (0 for $N\\geq D$)", "0.6"),
}


def tkey(T: float) -> str:
    return f"T{T:.0e}"


# --------------------------------------------------------------------------- one point
def run_point(job: tuple) -> list[dict]:
    """Every series at one (N, seed): a list of rows (series, N, seed, value, extras)."""
    s, N, seed = job
    t0 = time.perf_counter()
    rows: list[dict] = []

    def add(series: str, value: float, **extra) -> None:
        rows.append({"series": series, "N": N, "seed": seed, "value": float(value), **extra})

    with single_threaded():
        task = make_task(D=s["D"], N=N, P=s["P"], lam=LAM, seed=seed,
                         test_prompts=s["test_prompts"])
        model = build_model(task, "merged", lam=LAM, representation="dense")
        th = gaussian_theory(model, task)
        m = th.mean
        add("gs_lam0.01", th.test_mse_ground["novel"])
        m5 = gaussian_theory(MergedModel(model.data, LAM_ADAM), task).mean  # same data
        add("gs_lam0.005", mse(m5[None], task.test_novel)[0])
        for variant in ("paper", "onsager"):
            r = amp_for_model(model, BETA_AMP, variant=variant, seed=seed, m_exact=m)
            add(f"amp_{variant}", mse(r.m[None], task.test_novel)[0], sweeps=r.sweeps,
                converged=r.converged, rel_dist_to_m=r.relative_distance)
        # Boltzmann samples: MALA from W = 0, burn-in (step adaptation), then records
        sampler = make_sampler(model, "mala", ladder=Ladder.from_temperatures(TEMPS),
                               copies=2, seed=seed)
        state = sampler.init(np.zeros(model.n_spins))
        state, _ = sampler.run(state, s["burn"], burn_in=True)
        state, tr = sample_trace(sampler, state, s["records"], s["every"])
        pos = tr.positions  # (records, T, copies, n), coldest rung first
        err = mse(pos.reshape(-1, pos.shape[-1]), task.test_novel).reshape(pos.shape[:3])
        for k, beta in enumerate(tr.betas[-1]):
            T = 1.0 / beta
            add(f"mala_{tkey(T)}", err[:, k].mean(), beta=beta,
                accept=float(tr.accept[:, k].mean()),
                exact=th.test_mse_mean(beta, "novel"))
            add(f"theory_{tkey(T)}", th.test_mse_mean(beta, "novel"), beta=beta)
        cfg = TrainConfig(optimizer="adam", lr=1e-3, epochs=s["epochs"], model="merged",
                          seed=seed, record_every=s["epochs"], representation="dense")
        tr_res = train(task, cfg, lam=LAM_ADAM)
        add("adam", tr_res.test_mse_novel, train_mse=tr_res.train_mse,
            rel_dist_to_gs=float(np.linalg.norm(tr_res.W - m5) / np.linalg.norm(m5)),
            seconds_train=tr_res.seconds)
        add("gd", one_step_gd(task).test_mse_novel)
        add("bayes", bayes_ridge(task).test_mse_novel)
    gs = rows[0]["value"]
    for r in rows:
        r["diff_to_gs"] = r["value"] - gs
        r["seconds_point"] = time.perf_counter() - t0
    return rows


# --------------------------------------------------------------------------- tables
def make_points(runs: list[dict]) -> list[dict]:
    pts = aggregate(runs, ("series", "N"))
    diffs = {(d["series"], d["N"]): d for d in aggregate(runs, ("series", "N"), "diff_to_gs")}
    for p in pts:
        d = diffs[(p["series"], p["N"])]
        p["diff_mean"], p["diff_sem"] = d["mean"], d["sem"]
    for N, am, asd, dm, dsd in PAPER_FIG4B:
        for name, mean, std in (("paper_amp", am, asd), ("paper_adam", dm, dsd)):
            pts.append({"series": name, "N": float(N), "mean": mean, "std": std,
                        "sem": std / math.sqrt(PAPER_FIG4B_REPEATS),
                        "n": PAPER_FIG4B_REPEATS, "diff_mean": float("nan"),
                        "diff_sem": float("nan")})
    return pts


def compare(points: list[dict]) -> list[dict]:
    """The paper's columns against spinicl's curves at the paper's N values.

    For each pair: Δ = paper − spinicl, Δ/σ_paper (the paper's error bar) and
    z = Δ / √(s.e.m.²_paper + s.e.m.²_spinicl) (the two means' standard errors).
    """
    out = []
    byk = {(p["series"], p["N"]): p for p in points}
    pairs = (("paper_amp", "amp_paper"), ("paper_amp", "gs_lam0.01"),
             ("paper_adam", "gs_lam0.005"), ("paper_adam", "adam"),
             ("paper_adam", "gs_lam0.01"))
    for paper, ours in pairs:
        for N in sorted({p["N"] for p in points if p["series"] == ours}):
            a, b = byk.get((paper, N)), byk.get((ours, N))
            if a is None or b is None:
                continue
            d = a["mean"] - b["mean"]
            se = math.hypot(a["sem"], b["sem"] if math.isfinite(b["sem"]) else 0.0)
            out.append({"paper": paper, "spinicl": ours, "N": N, "paper_mean": a["mean"],
                        "paper_std": a["std"], "spinicl_mean": b["mean"],
                        "spinicl_std": b["std"], "spinicl_n": b["n"], "delta": d,
                        "delta_over_paper_std": d / a["std"], "z": d / se,
                        "within_paper_error_bar": abs(d) <= a["std"]})
    return out


def summary_lines(cmp: list[dict]) -> list[str]:
    lines = []
    for paper, ours in (("paper_amp", "amp_paper"), ("paper_amp", "gs_lam0.01"),
                        ("paper_adam", "gs_lam0.005"), ("paper_adam", "adam"),
                        ("paper_adam", "gs_lam0.01")):
        sel = [c for c in cmp if c["paper"] == paper and c["spinicl"] == ours]
        if not sel:
            continue
        dd = np.array([c["delta"] for c in sel])
        rel = np.array([c["delta_over_paper_std"] for c in sel])
        z = np.array([c["z"] for c in sel])
        inside = sum(c["within_paper_error_bar"] for c in sel)
        lines.append(f"{paper:10s} vs {ours:12s}: mean Δ = {dd.mean():+.4f}, max |Δ| = "
                     f"{np.abs(dd).max():.4f}, max |Δ|/σ_paper = {np.abs(rel).max():.2f}, "
                     f"rms z = {np.sqrt(np.mean(z**2)):.2f}; within the paper's error bar "
                     f"at {inside}/{len(sel)} N")
    return lines


# --------------------------------------------------------------------------- figure
def make_figure(points: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11.0, 4.3), constrained_layout=True)
    ax = axes[0]
    full_d = s["D"] == 20
    for name, (label, col) in SERIES.items():
        N, mean, std, _ = select(points, "N", series=name)
        if not len(N):
            continue
        if name in ("amp_paper", "adam"):
            off = -1.5 if name == "amp_paper" else 1.5
            ax.errorbar(N + off, mean, yerr=std, fmt="-s" if name == "adam" else "-o",
                        ms=3.2, color=col, lw=1.1, elinewidth=0.8, capsize=1.8,
                        label=label, zorder=3)
        elif name.startswith("gs"):
            ax.plot(N, mean, color=col, lw=1.3, ls="-" if name == "gs_lam0.01" else "--",
                    label=label, zorder=2)
        elif name == "amp_onsager":
            ax.plot(N, mean, "x", color=col, ms=4.5, mew=1.0, label=label, zorder=4)
        elif name.startswith("mala"):
            ax.plot(N, mean, "^", color=col, ms=4.0, label=label, zorder=4)
        elif name == "gd":
            ax.plot(N, mean, "-.", color=col, lw=1.1, label=label)
        else:
            ax.plot(N, mean, "-", color=col, lw=0.9, label=label)
    tag = "" if full_d else r" ($D=20$)"
    for name, fmt, off, label in (("paper_amp", "o", -4.0, f"paper: AMP column{tag}"),
                                  ("paper_adam", "D", 4.0, f"paper: Adam column{tag}")):
        N, mean, std, _ = select(points, "N", series=name)
        ax.errorbar(N + off, mean, yerr=std, fmt=fmt, ms=4.6 if fmt == "o" else 3.8,
                    mfc="none", mec="#1f5fa8" if name == "paper_amp" else "#d9771e",
                    mew=1.0, ecolor="0.5", elinewidth=0.7, capsize=2.0, lw=0,
                    label=label, zorder=5)
    ax.set_xlabel("context length $N$")
    ax.set_ylabel("novel-task test MSE $\\varepsilon_{\\rm ICL}$")
    ax.set_ylim(bottom=-0.02)
    ax.set_title("(a) test MSE (error bars: ±1 s.d. over seeds)")
    ax.grid(True, color="0.93", lw=0.6)

    # (b) paired differences to the λ = 0.01 ground state
    ax = axes[1]
    ax.axhline(0.0, color="k", lw=1.3)
    for name in ("gs_lam0.005", "amp_paper", "amp_onsager", "adam"):
        label, col = SERIES[name]
        sel = sorted((p for p in points if p["series"] == name), key=lambda p: p["N"])
        N = np.array([p["N"] for p in sel])
        d = np.array([p["diff_mean"] for p in sel])
        e = np.array([p["diff_sem"] for p in sel])
        if name == "gs_lam0.005":
            ax.plot(N, d, "--", color=col, lw=1.3)
            ax.fill_between(N, d - e, d + e, color=col, alpha=0.2, lw=0)
        elif name == "amp_onsager":
            ax.plot(N, d, "x", color=col, ms=4.5, mew=1.0)
        else:
            ax.errorbar(N, d, yerr=e, fmt="-s" if name == "adam" else "-o", ms=3.2,
                        color=col, lw=1.1, elinewidth=0.8, capsize=1.8, zorder=3)
    gs = {p["N"]: p for p in points if p["series"] == "gs_lam0.01"}
    for name, fmt, off, col in (("paper_amp", "o", -2.0, "#1f5fa8"),
                                ("paper_adam", "D", 2.0, "#d9771e")):
        sel = [p for p in points if p["series"] == name and p["N"] in gs]
        if not sel or not full_d:
            continue
        N = np.array([p["N"] for p in sel])
        d = np.array([p["mean"] - gs[p["N"]]["mean"] for p in sel])
        e = np.array([math.hypot(p["sem"], gs[p["N"]]["sem"]) for p in sel])
        ax.errorbar(N + off, d, yerr=e, fmt=fmt, ms=4.6 if fmt == "o" else 3.8, mfc="none",
                    mec=col, mew=1.0, ecolor="0.5", elinewidth=0.7, capsize=2.0, lw=0,
                    zorder=5)
    ax.set_xlabel("context length $N$")
    ax.set_ylabel(r"$\varepsilon_{\rm ICL} - \varepsilon_{\rm ICL}(m_{\lambda=0.01})$")
    ax.set_title("(b) minus the $\\lambda=0.01$ ground state\n(error bars: ±1 s.e.m.)")
    ax.grid(True, color="0.93", lw=0.6)

    # (c) Boltzmann samples at four temperatures: β = 100 is hot
    ax = axes[2]
    cmap = plt.get_cmap("plasma")
    N, mean, _, _ = select(points, "N", series="gs_lam0.01")
    ax.plot(N, mean, "-", color="k", lw=1.3, label="ground state $m$")
    ax.plot([], [], "-", color="0.5", lw=1.0,
            label=r"exact $\varepsilon(m)+{\rm tr}(B_tA^{-1})/\beta$")
    for i, T in enumerate(TEMPS):
        col = cmap(0.1 + 0.75 * i / (len(TEMPS) - 1))
        N, mean, std, _ = select(points, "N", series=f"mala_{tkey(T)}")
        Nt, mt, _, _ = select(points, "N", series=f"theory_{tkey(T)}")
        ax.plot(Nt, mt, "-", color=col, lw=1.0)
        ax.errorbar(N, mean, yerr=std, fmt="^", ms=4.0, color=col, elinewidth=0.8,
                    capsize=1.5, lw=0,
                    label=f"MALA, $\\beta=10^{{{round(-math.log10(T))}}}$")
    ax.set_yscale("log")
    gs_min = min(p["mean"] for p in points if p["series"] == "gs_lam0.01")
    ax.set_ylim(0.8 * gs_min, 60)
    ax.set_xlabel("context length $N$")
    ax.set_ylabel(r"$\langle\varepsilon_{\rm ICL}\rangle_\beta$ of Boltzmann samples")
    ax.set_title("(c) Boltzmann samples, $\\lambda=0.01$")
    ax.legend(loc="upper center", ncol=2, frameon=False, fontsize=7, columnspacing=1.0,
              handlelength=1.6)
    ax.grid(True, color="0.93", lw=0.6, which="both")

    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False,
               handlelength=2.2, columnspacing=1.4)
    fig.suptitle(f"$D={s['D']}$, $P={s['P']}$, {s['test_prompts']} novel-task test prompts, "
                 f"{s['seeds']} seeds per $N$ (paper: {PAPER_FIG4B_REPEATS})",
                 fontsize=8.5, color="0.2")
    save(fig, out, stem)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "N = 20, 60, 100, 140, 200 and 4 seeds (~1 min)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    if args.replot:
        points = read_csv(out / f"{stem}_points.csv")
        make_figure(points, s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    jobs = [(s, N, seed) for seed in range(s["seeds"]) for N in sorted(s["Ns"], reverse=True)]
    runs = [r for part in pmap(run_point, jobs, args.jobs, "(N, seed) points") for r in part]
    wall = time.perf_counter() - t0
    runs.sort(key=lambda r: (r["series"], r["N"], r["seed"]))
    points = make_points(runs)
    cmp = compare(points) if s["D"] == 20 else []
    write_csv(out / f"{stem}_runs.csv", runs)
    write_csv(out / f"{stem}_points.csv", points)
    if cmp:
        write_csv(out / f"{stem}_vs_paper.csv", cmp)
    make_figure(points, s, out, stem)

    print(f"D={s['D']}, P={s['P']}, N={list(s['Ns'])}, {s['seeds']} seeds: "
          f"{elapsed(t0)} wall ({wall:.0f} s) on {args.jobs} process(es)")
    print("   N   gs(0.01)  gs(0.005)  AMP-paper  AMP-ons   Adam     MALA b=1e4  "
          "MALA b=100  GD      | paper AMP       paper Adam")
    by = {(p["series"], p["N"]): p for p in points}
    for N in sorted(s["Ns"]):
        def g(name, N=N):
            p = by.get((name, float(N))) or by.get((name, N))
            return p["mean"] if p else float("nan")
        pa, pd = by.get(("paper_amp", float(N))), by.get(("paper_adam", float(N)))
        paper = (f"{pa['mean']:.4f}±{pa['std']:.4f} {pd['mean']:.4f}±{pd['std']:.4f}"
                 if pa and s["D"] == 20 else "")
        print(f"{N:4d}  {g('gs_lam0.01'):.4f}   {g('gs_lam0.005'):.4f}     "
              f"{g('amp_paper'):.4f}    {g('amp_onsager'):.4f}   {g('adam'):.4f}   "
              f"{g('mala_' + tkey(1e-4)):.4f}      {g('mala_' + tkey(1e-2)):.3f}      "
              f"{g('gd'):.4f}  | {paper}")
    amp = [r for r in runs if r["series"] == "amp_paper"]
    dist = np.array([r["rel_dist_to_m"] for r in amp])
    print(f"AMP `paper`: {sum(r['converged'] for r in amp)}/{len(amp)} met the 1e-6 rule, "
          f"sweeps {min(r['sweeps'] for r in amp)}–{max(r['sweeps'] for r in amp)}, "
          f"distance to m {dist.min():.3f}–{dist.max():.3f}")
    ad = np.array([r["rel_dist_to_gs"] for r in runs if r["series"] == "adam"])
    print(f"Adam: relative distance to the lambda = 0.005 ground state "
          f"{ad.min():.1e}–{ad.max():.1e}")
    for line in summary_lines(cmp):
        print(line)
    print(f"wrote {out}/{stem}.png, .pdf, _points.csv, _runs.csv"
          + (", _vs_paper.csv" if cmp else ""))


if __name__ == "__main__":
    main()
