"""Beyond the paper: the task-pool axis K — from memorisation to in-context learning.

The paper trains on one fresh task per prompt (K = P). With a finite pool of K task
vectors the spin glass can instead *memorise* the pool: its in-distribution test error
(tasks from the pool) falls below its novel-task (in-context) error. This script sweeps K
at fixed P with ``spinicl.sweep`` in ``theory`` mode (merged attention, exact thermal
averages; the TOML file is written beside the outputs for ``spinicl sweep``) over the
temperature T, and draws

(a) the novel-task test MSE ⟨ε_ICL⟩ and (b) the in-distribution test MSE ⟨ε_ID⟩ over
(K, T); (c) the relative memorisation gap 1 − ⟨ε_ID⟩/⟨ε_ICL⟩ (0 where the model learns in
context only, toward 1 where it has memorised the pool); (d) both errors at the coldest T (the ground state) and at T = 10⁻³ against K, with
two Bayes predictors as reference lines: the Bayes-optimal ridge (posterior mean under the
Gaussian task prior: the best any in-context learner can do on novel tasks) and the
discrete-pool posterior mean "dMMSE" (prior uniform on the K training tasks: the
memorising Bayes predictor; it needs label noise, hence σ_ε = 0.25 here).

Settings: D = 8, N = 20, P = 4000 (α = P/D² = 62.5, far above the interpolation threshold,
so the memorisation is of the pool, not of the prompts), λ = 0.01, σ_x = σ_w = 1,
σ_ε = 0.25, 2000 test prompts per set; K = 1, 2, 4, …, 2048 and K = P = 4000 (one task per
prompt); T ∈ [1e-6, 1e-1] (26 temperatures); 4 seeds. Error bars (d): ± 1 standard error
over seeds.

Outputs (``scripts/output/phase_K_T/``): ``phase_K_T.png``/``.pdf``; ``phase_K_T.csv``
(every plotted number of (a)–(d): observable, K, T, mean, standard error);
``phase_K_T_baselines.csv`` (Bayes ridge and dMMSE per K: mean and standard error over
seeds, both test sets); the sweep file ``phase_K_T.h5`` (not committed) and its TOML.

Run time (2 cores, ``--jobs 2``, measured): full 15 s; ``--quick`` (7 K, 11 T, 2 seeds) 12 s.

Usage::

    python scripts/phase_K_T.py [--quick] [--seeds S] [--jobs J] [--out DIR]
"""

from __future__ import annotations

import shutil
import time

import numpy as np
from _common import (
    aggregate,
    elapsed,
    parser,
    pmap,
    pyplot,
    read_csv,
    save,
    setup,
    single_threaded,
    write_csv,
)

from spinicl import make_task
from spinicl.plots import phase_data
from spinicl.sweep import parse_sweep, run_sweep
from spinicl.theory.baselines import bayes_ridge, dmmse

NAME = "phase_K_T"
FULL = {"D": 8, "N": 20, "P": 4000, "lam": 0.01, "sigma_eps": 0.25, "test_prompts": 2000,
        "Ks": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4000),
        "temps": "1e-6:1e-1:26", "seeds": 4}
QUICK = {**FULL, "Ks": (1, 4, 16, 64, 256, 1024, 4000), "temps": "1e-6:1e-1:11",
         "seeds": 2}
TINY = {"D": 4, "N": 10, "P": 300, "lam": 0.01, "sigma_eps": 0.25, "test_prompts": 300,
        "Ks": (1, 4, 300), "temps": "1e-5:1e-1:5", "seeds": 1}
CUT_T = 1e-3


def toml_text(s: dict) -> str:
    return (f"# {NAME}: task-pool size K against temperature (merged, exact)\n"
            f"[sweep]\nmode = \"theory\"\nname = \"{NAME}\"\n\n"
            f"[task]\nD = {s['D']}\nN = {s['N']}\nP = {s['P']}\nlam = {s['lam']}\n"
            f"sigma_eps = {s['sigma_eps']}\ntest_prompts = {s['test_prompts']}\n\n"
            f"[grid]\nK = {list(s['Ks'])}\nseed = {list(range(s['seeds']))}\n\n"
            f"[sampler]\ntemps = \"{s['temps']}\"\n")


def baseline_job(job: tuple) -> list[dict]:
    """Bayes ridge and dMMSE on the sweep's own test prompts (same task config, seed)."""
    s, K, seed = job
    with single_threaded():
        task = make_task(D=s["D"], N=s["N"], P=s["P"], K=K, lam=s["lam"],
                         sigma_eps=s["sigma_eps"], seed=seed, test_prompts=s["test_prompts"])
        rows = []
        b = bayes_ridge(task)
        # dMMSE over the pool; for K = P the "pool" is the P training tasks themselves
        d = dmmse(task, pool=task.pool)
        for name, r in (("bayes", b), ("dmmse", d)):
            for which in ("novel", "in_distribution"):
                rows.append({"baseline": name, "test_set": which, "K": task.config.pool_size,
                             "seed": seed, "value": getattr(r, f"test_mse_{which}")})
    return rows


def run(s: dict, out, stem: str, jobs: int) -> float:
    text = toml_text(s)
    toml = out / f"{stem}.toml"
    toml.write_text(text)
    h5 = out / f"{stem}.h5"
    if h5.exists():
        h5.unlink()
    shutil.rmtree(out / f"{stem}.h5.points", ignore_errors=True)
    t0 = time.perf_counter()
    res = run_sweep(parse_sweep(text, str(toml)), str(h5), workers=jobs, progress=False,
                    command_line=f"scripts/{NAME}.py")
    print(f"  sweep: {res.done}/{res.total} points, {res.failed} failed, "
          f"{time.perf_counter() - t0:.0f} s (shell: spinicl sweep {toml.name} -o {h5.name})",
          flush=True)
    return time.perf_counter() - t0


def table(h5) -> list[dict]:
    rows = []
    for z in ("test_mse_novel", "test_mse_in_distribution"):
        d = phase_data(str(h5), "K", "T", z)
        for j, T in enumerate(d.y):
            for i, K in enumerate(d.x):
                rows.append({"observable": z, "K": K, "T": T, "mean": d.Z[j, i],
                             "stderr": d.Z_stderr[j, i]})
    nov = {(r["K"], r["T"]): r for r in rows if r["observable"] == "test_mse_novel"}
    for r in [r for r in rows if r["observable"] == "test_mse_in_distribution"]:
        n = nov[(r["K"], r["T"])]
        # relative gap 1 − ε_ID/ε_ICL: 0 = in-context only, → 1 = pure memorisation
        ratio = r["mean"] / n["mean"]
        rel = float(np.hypot(n["stderr"] / n["mean"], r["stderr"] / r["mean"]))
        rows.append({"observable": "memorisation_gap", "K": r["K"], "T": r["T"],
                     "mean": 1.0 - ratio, "stderr": ratio * rel})
    return rows


def grid(rows: list[dict], z: str):
    sel = [r for r in rows if r["observable"] == z]
    K = np.array(sorted({r["K"] for r in sel}))
    T = np.array(sorted({r["T"] for r in sel}))
    Z = np.full((T.size, K.size), np.nan)
    for r in sel:
        Z[np.searchsorted(T, r["T"]), np.searchsorted(K, r["K"])] = r["mean"]
    return K, T, Z


def _edges(v: np.ndarray) -> np.ndarray:
    lv = np.log(v)
    if v.size == 1:
        return np.exp([lv[0] - 0.5, lv[0] + 0.5])
    mid = 0.5 * (lv[1:] + lv[:-1])
    return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))


def make_figure(rows: list[dict], base: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.colors import LogNorm, Normalize

    fig, axes = plt.subplots(2, 2, figsize=(9.4, 8.0), constrained_layout=True)
    Kn, Tn, Zn = grid(rows, "test_mse_novel")
    _, _, Zi = grid(rows, "test_mse_in_distribution")
    _, _, Zg = grid(rows, "memorisation_gap")
    fin = np.concatenate([Zn[np.isfinite(Zn)], Zi[np.isfinite(Zi)]])
    lnorm = LogNorm(fin[fin > 0].min(), fin.max())
    for ax, Z, title, norm, cmap, lab in (
            (axes[0, 0], Zn, "(a) novel-task test MSE", lnorm, "viridis",
             r"$\langle\varepsilon_{\rm ICL}\rangle$"),
            (axes[0, 1], Zi, "(b) in-distribution test MSE", lnorm, "viridis",
             r"$\langle\varepsilon_{\rm ID}\rangle$"),
            (axes[1, 0], Zg, "(c) memorisation gap", Normalize(
                min(0.0, np.nanmin(Zg)), max(np.nanmax(Zg), 1e-3)), "magma",
             r"$1-\langle\varepsilon_{\rm ID}\rangle/\langle\varepsilon_{\rm ICL}\rangle$")):
        mesh = ax.pcolormesh(_edges(Kn), _edges(Tn), Z, cmap=cmap, norm=norm, shading="flat",
                             rasterized=True)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"task pool size $K$ ($K=P={s['P']}$: one task per prompt)")
        ax.set_ylabel(r"temperature $T = 1/\beta$")
        ax.set_title(title)
        cb = fig.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06)
        cb.set_label(lab)
        ax.axhline(CUT_T, color="w", ls=":", lw=1.0)

    ax = axes[1, 1]
    sets = (("test_mse_novel", "novel", "#1f5fa8"),
            ("test_mse_in_distribution", "in_distribution", "#c2452d"))
    for z, which, col in sets:
        sel = [r for r in rows if r["observable"] == z]
        Ts = sorted({r["T"] for r in sel})
        for T, ls, mk in ((Ts[0], "-", "o"), (Ts[int(np.argmin(np.abs(np.log(
                np.array(Ts) / CUT_T))))], "--", "s")):
            rr = sorted((r for r in sel if r["T"] == T), key=lambda r: r["K"])
            short = "ICL (novel)" if which == "novel" else "in-distribution"
            ax.errorbar([r["K"] for r in rr], [r["mean"] for r in rr],
                        yerr=[r["stderr"] for r in rr], fmt=mk + ls, ms=3.2, color=col,
                        lw=1.2, elinewidth=0.7, capsize=1.5,
                        label=f"spin glass, {short}, $T=10^{{{round(np.log10(T))}}}$")
        for name, ls2 in (("dmmse", (0, (4, 1.5))), ("bayes", (0, (1, 1)))):
            bb = sorted((b for b in base if b["baseline"] == name and b["test_set"] == which),
                        key=lambda b: b["K"])
            label = {"dmmse": "dMMSE (pool posterior)", "bayes": "Bayes ridge"}[name]
            ax.plot([b["K"] for b in bb], [b["mean"] for b in bb], ls=ls2, color=col,
                    lw=1.0, alpha=0.75, label=f"{label}, {which.replace('_', '-')}")
    ax.axhline(s["sigma_eps"] ** 2, color="0.6", lw=0.8)
    ax.text(Kn[0], s["sigma_eps"] ** 2 * 1.06, r"noise floor $\sigma_\varepsilon^2$",
            fontsize=7, color="0.4")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("task pool size $K$")
    ax.set_ylabel("test MSE")
    ax.set_title("(d) cuts at the coldest $T$ and at $T=10^{-3}$, with baselines")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=7,
               frameon=False, ncol=4, columnspacing=1.0)
    ax.grid(True, color="0.93", lw=0.6, which="both")
    top = max(np.nanmax(Zn[Tn <= CUT_T * 1.01]), max(b["mean"] for b in base))
    ax.set_ylim(0.7 * s["sigma_eps"] ** 2, 1.5 * top)
    fig.suptitle(f"merged attention, exact thermal averages: $D={s['D']}$, $N={s['N']}$, "
                 f"$P={s['P']}$, $\\lambda={s['lam']:g}$, $\\sigma_\\varepsilon="
                 f"{s['sigma_eps']:g}$, {s['seeds']} seeds; dotted white: $T=10^{{-3}}$",
                 fontsize=8.5, color="0.2")
    save(fig, out, stem)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "7 K, 11 T, 2 seeds (~20 s)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    if args.replot:
        make_figure(read_csv(out / f"{stem}.csv"), read_csv(out / f"{stem}_baselines.csv"),
                    s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    t_sweep = run(s, out, stem, args.jobs)
    jobs = [(s, K, seed) for seed in range(s["seeds"]) for K in s["Ks"]]
    braw = [r for part in pmap(baseline_job, jobs, args.jobs, "baseline points") for r in part]
    base = aggregate(braw, ("baseline", "test_set", "K"))
    rows = table(out / f"{stem}.h5")
    write_csv(out / f"{stem}.csv", rows)
    write_csv(out / f"{stem}_baselines.csv", base)
    make_figure(rows, base, s, out, stem)
    print(f"D={s['D']}, N={s['N']}, P={s['P']}, sigma_eps={s['sigma_eps']}: {elapsed(t0)} on "
          f"{args.jobs} process(es) (sweep {t_sweep:.0f} s)")
    K, T, Zn = grid(rows, "test_mse_novel")
    _, _, Zi = grid(rows, "test_mse_in_distribution")
    bb = {(b["baseline"], b["test_set"], b["K"]): b["mean"] for b in base}
    print(f"coldest T = {T[0]:g}:     K   ICL      ID       gap     | dMMSE ICL  dMMSE ID  "
          "Bayes ICL")
    for i, k in enumerate(K):
        print(f"{'':22s}{int(k):5d} {Zn[0, i]:.4f}  {Zi[0, i]:.4f}  {Zn[0, i] - Zi[0, i]:+.4f}"
              f"  | {bb[('dmmse', 'novel', k)]:.4f}     {bb[('dmmse', 'in_distribution', k)]:.4f}"
              f"    {bb[('bayes', 'novel', k)]:.4f}")
    print(f"wrote {out}/{stem}.png, .pdf, .csv, _baselines.csv (sweep file {stem}.h5)")


if __name__ == "__main__":
    main()
