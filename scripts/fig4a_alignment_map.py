"""Fig. 4a of Li, Bai & Huang (arXiv:2408.02288): alignment of the mean weights over (N, P).

Reproduces Fig. 4a — the alignment ("contrast ratio") cos(W, I_{D+1}) =
⟨W, I⟩_F / (‖W‖_F √(D+1)) of the spin-glass mean over context length N and number of
training prompts P at weight decay λ = 1 — side by side for

* the exact mean m = A⁻¹h (the ground state; β-independent), and
* the paper's AMP (``spinicl.theory.amp``, variant ``paper``: no Onsager term, β = 100,
  damping 0.9, N(0, 1) start, stopped when the mean squared undamped change of m plus v
  falls below 1e-6 or after 100 sweeps). As in the paper, a repeat whose AMP did not meet
  the 1e-6 rule is left out before averaging, and a cell where no repeat met it is NaN
  (grey, hatched); panel (c) maps the fraction of repeats that met it.

Panel (d) cuts the maps at the two rows the paper's released array was copied from
(N = 2 and N = 100, at every 7th P; table in ``docs/paper-reference.md``,
"Fig. 4a") and draws the paper's values on them, with the exact mean at λ = 0.1 as a
sensitivity line. At N = 100 the released array lies 0.06–0.11 above spinicl's AMP, and an
independent port of the paper's own Fig. 4a code reproduces spinicl's values, not the array
(``docs/paper-reference.md``, ``scripts/README.md``).

Settings (the paper's): D = 20, N = 2, 4, …, 100 (50 values), P = 20, 40, …, 1000 (50
values), λ = 1, β = 100, 10 repeats (disorder samples), σ_x = σ_w = 1, noiseless labels.
For one seed and N the training sets of the different P are nested (prefixes of one
stream of prompts: ``make_task`` draws prompts in fixed blocks), so one Gram matrix is
accumulated along P. Error bars (d): ± 1 s.d. over repeats.

Outputs (``scripts/output/fig4a/``): ``fig4a.png``/``.pdf``; ``fig4a_cells.csv`` (every
mapped number: N, P, exact mean/s.d., AMP mean/s.d. over converged repeats, number of
converged repeats, fraction, mean sweeps, mean distance of AMP to m); ``fig4a_rows.csv``
(panel (d): spinicl and paper values at the paper's P for N = 2 and 100, with the λ = 0.1
sensitivity: exact alignment and how many repeats of the paper's AMP meet its rule there); with ``--runs`` also ``fig4a_runs.csv`` (one row per N, P and seed; 1.3 MB).

Run time (2 cores, ``--jobs 2``, measured on a shared machine): full (50 × 50 cells, 10
repeats) 4.3–6 min wall, 5.3 CPU-min (0.6 s per (N, seed) for its 50 values of P); ``--quick`` (11 N × 8 P including the paper's rows, 3 repeats) 10 s.

Usage::

    python scripts/fig4a_alignment_map.py [--quick] [--seeds S] [--jobs J] [--out DIR] [--runs]
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg as sla
from _common import (
    PAPER_FIG4A_CELLS,
    PAPER_FIG4A_NAN_CELLS,
    PAPER_FIG4A_P,
    PAPER_FIG4A_REPEATS,
    PAPER_FIG4A_ROWS,
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
from spinicl.models import alignment
from spinicl.theory.amp import amp_solve

NAME = "fig4a"
LAM = 1.0
LAM_SENS = 0.1      # sensitivity line of panel (d)
BETA = 100.0
FULL = {"D": 20, "Ns": tuple(range(2, 101, 2)), "Ps": tuple(range(20, 1001, 20)),
        "seeds": PAPER_FIG4A_REPEATS}
QUICK = {"D": 20, "Ns": (2, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
         "Ps": tuple(int(p) for p in PAPER_FIG4A_P), "seeds": 3}
TINY = {"D": 6, "Ns": (2, 10, 30), "Ps": (20, 60, 200), "seeds": 2}
ROWS_N = (2, 100)


# --------------------------------------------------------------------------- one job
def run_job(job: tuple) -> list[dict]:
    """All P of one (N, seed): exact and AMP alignment at λ = 1 (nested prompt sets)."""
    D, N, Ps, seed, rows_n = job
    Ps = sorted(Ps)
    rows = []
    with single_threaded():
        task = make_task(D=D, N=N, P=Ps[-1], lam=LAM, seed=seed, test_prompts=1)
        c, q, y = task.train.c, task.train.q, task.train.y
        n = (D + 1) ** 2
        G = np.zeros((n, n))
        f = np.zeros(n)
        done = 0
        for P in Ps:
            S = (c[done:P, :, None] * q[done:P, None, :]).reshape(P - done, n)
            G += S.T @ S
            f += S.T @ y[done:P]
            done = P
            A0 = 0.5 * (G + G.T) / P
            h = f / P
            A = A0 + LAM * np.eye(n)
            m = sla.cho_solve(sla.cho_factor(A, lower=True), h)
            r = amp_solve(A, h, BETA, variant="paper", seed=seed * 10**6 + N * 10**3 + P,
                          m_exact=m, v_exact=np.full(n, np.nan))
            row = {"N": N, "P": P, "seed": seed, "align_exact": alignment(m[None])[0],
                   "align_amp": alignment(r.m[None])[0] if np.all(np.isfinite(r.m))
                   else float("nan"),
                   "converged": r.converged, "sweeps": r.sweeps,
                   "rel_dist_to_m": r.relative_distance}
            if N in rows_n:  # sensitivity: the same prompts at λ = 0.1
                As = A0 + LAM_SENS * np.eye(n)
                ms = sla.cho_solve(sla.cho_factor(As, lower=True), h)
                row["align_exact_lam0.1"] = alignment(ms[None])[0]
                rs = amp_solve(As, h, BETA, variant="paper", seed=seed * 10**6 + N * 10**3 + P,
                               m_exact=ms, v_exact=np.full(n, np.nan))
                row["amp_converged_lam0.1"] = rs.converged
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- tables
def make_cells(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["N"], r["P"]), []).append(r)
    cells = []
    for (N, P), rs in sorted(groups.items()):
        ex = np.array([r["align_exact"] for r in rs])
        conv = np.array([bool(r["converged"]) for r in rs])
        amp = np.array([r["align_amp"] for r in rs])[conv]
        dist = np.array([r["rel_dist_to_m"] for r in rs])[conv]
        cell = {"N": N, "P": P, "n": len(rs), "exact_mean": ex.mean(),
                "exact_std": ex.std(ddof=1) if len(rs) > 1 else float("nan"),
                "amp_mean": amp.mean() if amp.size else float("nan"),
                "amp_std": amp.std(ddof=1) if amp.size > 1 else float("nan"),
                "amp_converged": int(conv.sum()), "amp_frac_converged": conv.mean(),
                "amp_sweeps_mean": float(np.mean([r["sweeps"] for r in rs])),
                "amp_rel_dist_mean": dist.mean() if dist.size else float("nan")}
        sens = [r["align_exact_lam0.1"] for r in rs if "align_exact_lam0.1" in r
                and np.isfinite(r["align_exact_lam0.1"])]
        if sens:
            cell["exact_lam0.1_mean"] = float(np.mean(sens))
            cell["amp_converged_lam0.1"] = int(sum(bool(r["amp_converged_lam0.1"]) for r in rs))
        cells.append(cell)
    return cells


def make_rows(cells: list[dict], D: int) -> list[dict]:
    """Panel (d): spinicl at the paper's P for N = 2 and 100, with the paper's values."""
    out = []
    by = {(c["N"], c["P"]): c for c in cells}
    for N in ROWS_N:
        for i, P in enumerate(PAPER_FIG4A_P):
            c = by.get((float(N), float(P))) or by.get((N, int(P)))
            if c is None:
                continue
            paper = PAPER_FIG4A_ROWS[N][i] if D == 20 else float("nan")
            out.append({"N": N, "P": int(P), "paper_amp": paper,
                        "exact_mean": c["exact_mean"], "exact_std": c["exact_std"],
                        "amp_mean": c["amp_mean"], "amp_std": c["amp_std"],
                        "amp_converged": c["amp_converged"], "n": c["n"],
                        "exact_lam0.1_mean": c.get("exact_lam0.1_mean", float("nan")),
                        "amp_converged_lam0.1": c.get("amp_converged_lam0.1", -1),
                        "paper_minus_amp": paper - c["amp_mean"],
                        "paper_minus_exact": paper - c["exact_mean"]})
    return out


def grid(cells: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Ns = np.array(sorted({c["N"] for c in cells}), dtype=float)
    Ps = np.array(sorted({c["P"] for c in cells}), dtype=float)
    Z = np.full((Ns.size, Ps.size), np.nan)
    iN = {v: i for i, v in enumerate(Ns)}
    iP = {v: i for i, v in enumerate(Ps)}
    for c in cells:
        Z[iN[float(c["N"])], iP[float(c["P"])]] = c[key]
    return Ps, Ns, Z


def _edges(v: np.ndarray) -> np.ndarray:
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


# --------------------------------------------------------------------------- figure
def make_figure(cells: list[dict], rows: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(9.0, 8.0), constrained_layout=True)
    gs = fig.add_gridspec(2, 4, width_ratios=[1, 0.045, 1, 0.045])
    axes = np.array([[fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 2])],
                     [fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 2:])]])
    caxes = {(0, 0): fig.add_subplot(gs[0, 1]), (0, 1): fig.add_subplot(gs[0, 3]),
             (1, 0): fig.add_subplot(gs[1, 1])}
    Ps, Ns, Zex = grid(cells, "exact_mean")
    _, _, Zamp = grid(cells, "amp_mean")
    _, _, Zfrac = grid(cells, "amp_frac_converged")
    vmax = float(np.nanmax([np.nanmax(Zex), np.nanmax(Zamp) if np.isfinite(Zamp).any()
                            else 0.0]))
    norm = Normalize(0.0, max(vmax, 0.1))
    xe, ye = _edges(Ps), _edges(Ns)
    for k, Z, title in (((0, 0), Zex, "(a) exact mean $m=A^{-1}h$"),
                        ((0, 1), Zamp, "(b) AMP 'paper', $\\beta=100$ (converged)")):
        ax = axes[k]
        ax.set_facecolor("0.8")
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(Z), cmap="viridis", norm=norm,
                             shading="flat", rasterized=True)
        nan = ~np.isfinite(Z)
        if nan.any():
            ax.pcolor(xe, ye, np.ma.masked_where(~nan, np.ones_like(Z)), hatch="////",
                      cmap="Greys", vmin=0, vmax=4, edgecolor="0.45", lw=0.0,
                      shading="flat")
        ax.set_xlabel("training prompts $P$")
        ax.set_ylabel("context length $N$")
        ax.set_title(title)
        cb = fig.colorbar(mesh, cax=caxes[k])
        cb.set_label(r"alignment $\cos(W, I_{D+1})$")
    n_nan = int((~np.isfinite(Zamp)).sum())
    axes[0, 1].legend(handles=[Patch(facecolor="0.8", edgecolor="0.45", hatch="////",
                                     label=f"no repeat met the 1e-6 rule ({n_nan} of "
                                           f"{Zamp.size} cells)")],
                      loc="upper left", fontsize=7, frameon=True, framealpha=0.9)

    ax = axes[1, 0]
    mesh = ax.pcolormesh(xe, ye, Zfrac, cmap="magma", vmin=0, vmax=1, shading="flat",
                         rasterized=True)
    ax.set_xlabel("training prompts $P$")
    ax.set_ylabel("context length $N$")
    ax.set_title("(c) fraction of repeats whose AMP met the 1e-6 rule\n(within 100 sweeps)")
    cb = fig.colorbar(mesh, cax=caxes[(1, 0)])
    cb.set_label("fraction converged")

    ax = axes[1, 1]
    cols = {2: "#c2452d", 100: "#1f5fa8"}
    for N in ROWS_N:
        sel = [r for r in rows if r["N"] == N]
        if not sel:
            continue
        P = np.array([r["P"] for r in sel], dtype=float)
        col = cols[N]
        ex = np.array([r["exact_mean"] for r in sel])
        ax.errorbar(P, ex, yerr=[r["exact_std"] for r in sel], fmt="-", color=col,
                    lw=1.2, elinewidth=0.7, capsize=1.5, label=f"$N={N}$: exact $m$")
        ax.errorbar(P + 8, [r["amp_mean"] for r in sel], yerr=[r["amp_std"] for r in sel],
                    fmt="s", ms=3.5, color=col, elinewidth=0.7, capsize=1.5, lw=0,
                    label=f"$N={N}$: AMP 'paper' (converged)")
        ax.plot(P, [r["exact_lam0.1_mean"] for r in sel], ":", color=col, lw=1.2,
                label=f"$N={N}$: exact $m$, $\\lambda={LAM_SENS:g}$")
        if s["D"] == 20:
            ax.plot(P - 8, [r["paper_amp"] for r in sel], "o", ms=5.5, mfc="none",
                    mec=col, mew=1.1, label=f"$N={N}$: paper (AMP)")
    ax.set_xlabel("training prompts $P$")
    ax.set_ylabel(r"alignment $\cos(W, I_{D+1})$")
    ax.set_title(f"(d) cuts at $N=2$ and $N=100$ ($\\lambda={LAM:g}$ unless noted)")
    ax.set_ylim(0, 1.0)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=7.5,
               ncol=4, frameon=False, columnspacing=1.2)
    ax.grid(True, color="0.93", lw=0.6)
    fig.suptitle(f"$D={s['D']}$, $\\lambda={LAM:g}$, {s['seeds']} repeats per cell "
                 f"(paper: {PAPER_FIG4A_REPEATS}); error bars ±1 s.d. over repeats",
                 fontsize=8.5, color="0.2")
    save(fig, out, stem)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "11 N x 8 P (the paper's rows), 3 repeats (~15 s)")
    ap.add_argument("--runs", action="store_true",
                    help="also write the per-repeat table _runs.csv (1.3 MB at full size)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    if args.replot:
        cells = read_csv(out / f"{stem}_cells.csv")
        rows = read_csv(out / f"{stem}_rows.csv")
        make_figure(cells, rows, s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    rows_n = tuple(n for n in ROWS_N if n in s["Ns"])
    jobs = [(s["D"], N, s["Ps"], seed, rows_n) for seed in range(s["seeds"])
            for N in sorted(s["Ns"], reverse=True)]
    runs = [r for part in pmap(run_job, jobs, args.jobs, "(N, seed) jobs") for r in part]
    runs.sort(key=lambda r: (r["N"], r["P"], r["seed"]))
    cells = make_cells(runs)
    rows = make_rows(cells, s["D"])
    if args.runs:
        write_csv(out / f"{stem}_runs.csv", runs)
    write_csv(out / f"{stem}_cells.csv", cells)
    write_csv(out / f"{stem}_rows.csv", rows)
    make_figure(cells, rows, s, out, stem)

    n_cells = len(cells)
    nan_cells = sum(c["amp_converged"] == 0 for c in cells)
    conv = sum(bool(r["converged"]) for r in runs)
    amp = np.array([c["amp_mean"] for c in cells])
    ex = np.array([c["exact_mean"] for c in cells])
    print(f"D={s['D']}, {len(s['Ns'])} N x {len(s['Ps'])} P, {s['seeds']} repeats: "
          f"{elapsed(t0)} on {args.jobs} process(es)")
    print(f"exact alignment: range {ex.min():.3f} … {ex.max():.3f}")
    print(f"AMP 'paper': {conv}/{len(runs)} runs met the 1e-6 rule; {nan_cells} of {n_cells} "
          f"cells have no converged repeat (paper: {PAPER_FIG4A_NAN_CELLS} of "
          f"{PAPER_FIG4A_CELLS}); finite range {np.nanmin(amp):.3f} … {np.nanmax(amp):.3f} "
          "(paper: 0.194 … 0.871)")
    both = np.isfinite(amp)
    if both.any():
        d = np.array([c["amp_rel_dist_mean"] for c in cells])[both]
        print(f"where AMP converged: |AMP − exact| alignment ≤ "
              f"{np.max(np.abs(amp[both] - ex[both])):.3f}; its distance to m "
              f"{np.nanmin(d):.3f} … {np.nanmax(d):.3f}")
    if s["D"] == 20 and rows:
        print("   N     P   paper    AMP(spinicl)  exact   exact(lam=0.1)  [AMP conv/rep at "
              "lam = 1, 0.1]")
        for r in rows:
            print(f"{r['N']:4d} {r['P']:5d}   {r['paper_amp']:.3f}    {r['amp_mean']:.3f}       "
                  f"  {r['exact_mean']:.3f}   {r['exact_lam0.1_mean']:.3f}         "
                  f"[{r['amp_converged']}/{r['n']}, {r['amp_converged_lam0.1']}/{r['n']}]")
    print(f"wrote {out}/{stem}.png, .pdf, _cells.csv, _rows.csv"
          + (", _runs.csv" if args.runs else ""))


if __name__ == "__main__":
    main()
