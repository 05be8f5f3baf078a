"""Beyond the paper: (α, T) phase diagrams of the merged and the factored attention spin glass.

The paper fixes β = 100 and studies the ground state; spinicl samples the whole
Boltzmann law p_β ∝ exp(−βE), so the temperature T = 1/β becomes an axis. Two sweeps, made
with ``spinicl.sweep`` (the engine of ``spinicl sweep``; the TOML files are written beside
the outputs, so ``spinicl sweep FILE.toml -o FILE.h5`` reruns either from the shell):

* merged attention W (Gaussian, exact): a ``theory``-mode sweep — every observable is its
  closed-form thermal average (docs/model.md §1.4), on a fine grid of the task diversity
  α = P/D² and of T;
* factored attention W = W_qᵀW_k (d_k = D+1; quartic, non-convex, gauge-symmetric): a
  ``sample``-mode sweep, MALA with replica exchange over the temperature ladder, 2 copies
  per temperature for the overlaps, on a coarser grid.

For each: the novel-task test MSE ⟨ε_ICL⟩, the overlap ratio q/Q = ⟨q_ab⟩/⟨Q⟩ between two
independent replicas (1: frozen into one state; 0: thermal noise dominates), white contour
at q/Q = 1/2, and the alignment ⟨cos(W, I_{D+1})⟩: the thermal average of the alignment
of the samples in both modes (theory mode draws exact Gaussian samples; the mean's
alignment is its T → 0 limit, ``alignment_ground_state``), falling with T as noise grows
(outputs written before this change show the mean's alignment in the merged panel).
The dotted line is the interpolation threshold P = D(D+1), α = (D+1)/D.

Settings: D = 8, N = 20, λ = 0.01, σ_x = σ_w = 1, noiseless labels, 1000 test prompts.
Merged: 30 α in [0.1, 10] (log-spaced) × T ∈ [1e-6, 1e-1] (26 temperatures) × 4 seeds.
Factored (RE = replica exchange): 9 α in [0.25, 5] × T ∈ [1e-5, 1e-1] (13 rungs) × 3 seeds;
1500 burn-in and 6000 production steps (records every 20, swaps every 10). Colour: disorder average over seeds.

Outputs (``scripts/output/phase_alpha_T/``): ``phase_alpha_T.png``/``.pdf``;
``phase_alpha_T.csv`` (every plotted number: model, observable, α, T, mean, standard error
over seeds); the sweep files ``phase_alpha_T_merged.h5``/``_factored.h5`` (not committed)
and the TOML files that made them.

Run time (2 cores, ``--jobs 2``, measured): full 2 min (merged 12 s, factored 90 s);
``--quick`` (merged 12 α × 16 T, 2 seeds; factored 4 α × 8 T, 1 seed, 2000 steps) 20 s.

Usage::

    python scripts/phase_alpha_T.py [--quick] [--jobs J] [--out DIR]
"""

from __future__ import annotations

import time

import numpy as np
from _common import elapsed, parser, pyplot, read_csv, save, setup, write_csv

from spinicl.io.sweep_file import read_grid
from spinicl.plots import phase_data
from spinicl.sweep import parse_sweep, run_sweep

NAME = "phase_alpha_T"
OBSERVABLES = ("test_mse_novel", "overlap_ratio", "alignment")
MODELS = ("merged", "factored")
FULL = {"D": 8, "N": 20, "lam": 0.01, "test_prompts": 1000,
        "merged_alpha": tuple(float(a) for a in np.round(np.geomspace(0.1, 10, 30), 4)),
        "merged_temps": "1e-6:1e-1:26", "merged_seeds": 4,
        "factored_alpha": (0.25, 0.5, 0.75, 1.0, 1.125, 1.5, 2.0, 3.0, 5.0),
        "factored_temps": "1e-5:1e-1:13", "factored_seeds": 3, "steps": 6000,
        "burn_in": 1500, "seeds": None}
QUICK = {**FULL, "merged_alpha": tuple(float(a) for a in np.round(np.geomspace(0.1, 10, 12),
                                                                   4)),
         "merged_temps": "1e-6:1e-1:16", "merged_seeds": 2,
         "factored_alpha": (0.5, 1.125, 2.0, 4.0), "factored_temps": "1e-4:1e-1:8",
         "factored_seeds": 1, "steps": 2000, "burn_in": 500}
TINY = {"D": 4, "N": 10, "lam": 0.01, "test_prompts": 200,
        "merged_alpha": (0.5, 2.0, 8.0), "merged_temps": "1e-5:1e-1:5", "merged_seeds": 1,
        "factored_alpha": (1.0, 4.0), "factored_temps": "1e-3:1e-1:3", "factored_seeds": 1,
        "steps": 300, "burn_in": 100, "seeds": None}
TITLES = {"test_mse_novel": r"test MSE $\langle\varepsilon_{\rm ICL}\rangle$",
          "overlap_ratio": r"overlap ratio $q/Q$",
          "alignment": r"alignment $\cos(W, I_{D+1})$"}


def toml_text(s: dict, model: str) -> str:
    seeds = list(range(s[f"{model}_seeds"]))
    common = (f"[task]\nD = {s['D']}\nN = {s['N']}\nlam = {s['lam']}\n"
              f"test_prompts = {s['test_prompts']}\n\n"
              f"[grid]\nalpha = {list(s[f'{model}_alpha'])}\nseed = {seeds}\n\n")
    if model == "merged":
        return (f"# {NAME}: merged attention, exact thermal averages (theory mode)\n"
                f"[sweep]\nmode = \"theory\"\nname = \"{NAME}-merged\"\n\n{common}"
                f"[sampler]\ntemps = \"{s['merged_temps']}\"\n")
    return (f"# {NAME}: factored attention W = Wq^T Wk, MALA + replica exchange\n"
            f"[sweep]\nmode = \"sample\"\nname = \"{NAME}-factored\"\n\n{common}"
            f"[sampler]\nmodel = \"factored\"\nsampler = \"mala\"\n"
            f"temps = \"{s['factored_temps']}\"\ncopies = 2\nsteps = {s['steps']}\n"
            f"burn_in = {s['burn_in']}\nrecord_every = 20\nswap_every = 10\n")


def run(s: dict, out, stem: str, jobs: int) -> dict:
    """Run both sweeps (fresh files) and return their wall times."""
    times = {}
    for model in MODELS:
        text = toml_text(s, model)
        toml = out / f"{stem}_{model}.toml"
        toml.write_text(text)
        h5 = out / f"{stem}_{model}.h5"
        for p in (h5, out / f"{stem}_{model}.h5.points"):
            if p.is_dir():
                import shutil

                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        cfg = parse_sweep(text, str(toml))
        t0 = time.perf_counter()
        res = run_sweep(cfg, str(h5), workers=jobs, progress=False,
                        command_line=f"scripts/{NAME}.py")
        times[model] = time.perf_counter() - t0
        print(f"  {model}: {res.done}/{res.total} points done, {res.failed} failed, "
              f"{times[model]:.0f} s  (shell: spinicl sweep {toml.name} -o {h5.name})",
              flush=True)
        if res.failed:
            g = read_grid(str(h5))
            bad = [m for m, st in zip(g["message"], g["status"], strict=True)
                   if st == "failed"]
            print(f"  failed points: {bad[:3]}")
    return times


def table(out, stem: str) -> list[dict]:
    rows = []
    for model in MODELS:
        h5 = out / f"{stem}_{model}.h5"
        for z in OBSERVABLES:
            d = phase_data(str(h5), "alpha", "T", z)
            for j, T in enumerate(d.y):
                for i, a in enumerate(d.x):
                    rows.append({"model": model, "observable": z, "alpha": a, "T": T,
                                 "mean": d.Z[j, i], "stderr": d.Z_stderr[j, i]})
    return rows


def _edges(v: np.ndarray) -> np.ndarray:
    lv = np.log(v)
    if v.size == 1:
        return np.exp([lv[0] - 0.5, lv[0] + 0.5])
    mid = 0.5 * (lv[1:] + lv[:-1])
    return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))


def grid(rows: list[dict], model: str, z: str):
    sel = [r for r in rows if r["model"] == model and r["observable"] == z]
    a = np.array(sorted({r["alpha"] for r in sel}))
    T = np.array(sorted({r["T"] for r in sel}))
    Z = np.full((T.size, a.size), np.nan)
    for r in sel:
        Z[np.searchsorted(T, r["T"]), np.searchsorted(a, r["alpha"])] = r["mean"]
    return a, T, Z


def make_figure(rows: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    fig, axes = plt.subplots(2, 3, figsize=(11.0, 6.8), constrained_layout=True)
    D = s["D"]
    for i, model in enumerate(MODELS):
        for j, z in enumerate(OBSERVABLES):
            ax = axes[i, j]
            a, T, Z = grid(rows, model, z)
            fin = Z[np.isfinite(Z)]
            if z == "test_mse_novel":
                pos = fin[fin > 0]
                norm = LogNorm(pos.min(), pos.max())
                cmap = "viridis"
            elif z == "overlap_ratio":
                norm, cmap = Normalize(0.0, 1.0), "magma"
            else:
                norm, cmap = Normalize(min(0.0, fin.min()), max(fin.max(), 0.1)), "cividis"
            ax.set_facecolor("0.85")
            mesh = ax.pcolormesh(_edges(a), _edges(T), np.ma.masked_invalid(
                np.clip(Z, norm.vmin, None) if z == "overlap_ratio" else Z), cmap=cmap,
                norm=norm, shading="flat", rasterized=True)
            ax.set_xscale("log")
            ax.set_yscale("log")
            _, _, Zq = grid(rows, model, "overlap_ratio")
            if a.size > 1 and T.size > 1 and np.nanmin(Zq) < 0.5 < np.nanmax(Zq):
                cs = ax.contour(a, T, Zq, levels=[0.5], colors="w", linewidths=1.2)
                if z == "overlap_ratio":
                    ax.clabel(cs, fmt={0.5: "$q/Q=1/2$"}, fontsize=7)
            ax.axvline((D + 1) / D, color="w", ls=(0, (1.5, 1.5)), lw=1.1)
            ax.set_xlabel(r"task diversity $\alpha = P/D^2$")
            ax.set_ylabel(r"temperature $T = 1/\beta$")
            cb = fig.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06)
            cb.set_label(TITLES[z])
            what = "merged, exact" if model == "merged" else "factored, MALA + RE"
            tag = "abcdef"[3 * i + j]
            short = {"test_mse_novel": "test MSE", "overlap_ratio": "$q/Q$",
                     "alignment": "alignment of samples"}[z]
            ticks = [t for t in (0.1, 0.3, 1, 3, 10, 30) if a.min() * 0.7 <= t <= a.max() * 1.4]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FixedFormatter([f"{t:g}" for t in ticks]))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"({tag}) {what}: {short}", fontsize=8.5)
    seeds = f"(merged / factored) {s['merged_seeds']} / {s['factored_seeds']}"
    fig.suptitle(f"top: merged $W$ (exact, theory-mode sweep); bottom: factored "
                 f"$W=W_q^\\top W_k$, $d_k=D+1$ (MALA + replica exchange, sample mode)\n"
                 f"$D={D}$, $N={s['N']}$, $\\lambda={s['lam']:g}$, seeds {seeds}; "
                 "white dotted line: $P=D(D+1)$; white contour: $q/Q=1/2$", fontsize=8.5,
                 color="0.2")
    save(fig, out, stem)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "coarser grids, 1-2 seeds (~1 min)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    if args.seeds is not None:  # --seeds sets both sweeps' disorder samples
        s["merged_seeds"] = s["factored_seeds"] = args.seeds
    if args.replot:
        make_figure(read_csv(out / f"{stem}.csv"), s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    times = run(s, out, stem, args.jobs)
    rows = table(out, stem)
    write_csv(out / f"{stem}.csv", rows)
    make_figure(rows, s, out, stem)
    print(f"D={s['D']}, N={s['N']}, lam={s['lam']}: {elapsed(t0)} on {args.jobs} process(es) "
          f"(merged {times['merged']:.0f} s, factored {times['factored']:.0f} s)")
    for model in MODELS:
        a, T, Zq = grid(rows, model, "overlap_ratio")
        _, _, Ze = grid(rows, model, "test_mse_novel")
        _, _, Za = grid(rows, model, "alignment")
        print(f"{model}: at the coldest T = {T[0]:g}: q/Q {np.nanmin(Zq[0]):.3f} … "
              f"{np.nanmax(Zq[0]):.3f}, test MSE {np.nanmin(Ze[0]):.3f} … {np.nanmax(Ze[0]):.3f}"
              f", alignment {np.nanmin(Za[0]):.3f} … {np.nanmax(Za[0]):.3f}")
        for i, al in enumerate(a):
            col = Zq[:, i]
            half = T[np.argmax(col < 0.5)] if np.any(col < 0.5) else float("nan")
            print(f"   alpha = {al:7.4g}: q/Q < 1/2 above T = {half:.2g}; test MSE "
                  f"{Ze[0, i]:.3f} (coldest) … {Ze[-1, i]:.3g} (hottest)")
    print(f"wrote {out}/{stem}.png, .pdf, .csv (sweep files {stem}_merged.h5, "
          f"{stem}_factored.h5)")


if __name__ == "__main__":
    main()
