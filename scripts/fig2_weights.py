"""Fig. 2 of Li, Bai & Huang (arXiv:2408.02288): the weights — trained, Boltzmann and AMP.

Reproduces the paper's weight pictures — the (D+1) × (D+1) merged attention matrix W is
close to a scaled identity on the token block (the one-step-GD construction) — and sets
side by side, on one task (one seed, the same prompts for all):

(a) W of merged linear attention trained by full-batch Adam exactly as the paper
    (lr 1e-3, 5000 epochs, torch weight_decay 0.01, i.e. λ = 0.005 of E, initial entries
    N(0, 1/(D+1)));
(b) the Boltzmann mean ⟨W⟩ at λ = 0.01, β = 10⁴: the average of MALA samples (spinicl's
    Metropolis-adjusted Langevin, 2 chains, started at W = 0);
(c) the AMP mean, variant ``paper`` (the paper's cavity iteration: λ = 0.01, β = 100,
    its 1e-6 stopping rule);
(d) one single Boltzmann sample at the paper's β = 100, λ = 0.01: the thermal noise at that
    temperature (per-spin s.d. ≈ 0.2–0.4) hides the structure — β = 100 is hot;

with the loss curves (e) of the Adam run (training and novel-task test MSE against epoch,
the exact ground states' values as lines), (f) the MALA chains (test MSE of the samples
against the step at β = 10², 10³, 10⁴, 10⁵, exact thermal averages dashed) and (g) the
deviation of every entry of (a)–(c) from the exact ground state at the same λ.

Settings: D = 20, N = 100, P = 10⁴, 2000 novel-task test prompts, seed 0 (``--seed``).
MALA: temperatures 10⁻⁵ … 10⁻², 2 copies each, 2000 burn-in steps (step size adapted)
then 20000 steps recorded every 20 (2000 samples per temperature; the slowest modes, the
decoupled last column at curvature λ, relax in ≈ 1/(ηλ) ≈ 200 steps).

Outputs (``scripts/output/fig2/``): ``fig2.png``/``.pdf``; ``fig2_weights.csv`` (every
heatmap entry: matrix, row a, column b, value, and the exact m at both λ);
``fig2_loss.csv`` (Adam: epoch, energy, training and test MSE); ``fig2_trace.csv`` (MALA:
step, temperature, test MSE and energy of the samples, mean over copies);
``fig2_summary.csv`` (per matrix: test MSE, alignment, relative distance and cosine to the
ground states).

Run time (one process, measured): full 16 s; ``--quick`` (1000 + 1000 MALA steps, 2000
epochs) 10–20 s.

Usage::

    python scripts/fig2_weights.py [--quick] [--seed S] [--out DIR]
"""

from __future__ import annotations

import time

import numpy as np
from _common import (
    elapsed,
    parser,
    pyplot,
    read_csv,
    save,
    setup,
    single_threaded,
    write_csv,
)

from spinicl import make_task
from spinicl.models import MergedModel, alignment, build_model, mse
from spinicl.samplers import Ladder, make_sampler, sample_trace
from spinicl.theory.amp import amp_for_model
from spinicl.theory.gaussian import gaussian_theory
from spinicl.training import TrainConfig, torch_weight_decay_to_lam, train

NAME = "fig2"
LAM = 0.01
LAM_ADAM = torch_weight_decay_to_lam(0.01)  # 0.005
BETA_AMP = 100.0
BETA_MEAN = 1e4
TEMPS = (1e-5, 1e-4, 1e-3, 1e-2)
FULL = {"D": 20, "N": 100, "P": 10_000, "test_prompts": 2000, "epochs": 5000,
        "burn": 2000, "records": 1000, "every": 20, "seeds": 1}
QUICK = {**FULL, "epochs": 2000, "burn": 1000, "records": 100, "every": 10}
TINY = {"D": 5, "N": 20, "P": 400, "test_prompts": 300, "epochs": 400, "burn": 300,
        "records": 40, "every": 5, "seeds": 1}
MATRICES = ("adam", "boltzmann_mean", "amp_paper", "sample_beta100")
TITLES = {"adam": "(a) Adam-trained $W$, $\\lambda=0.005$",
          "boltzmann_mean": "(b) Boltzmann mean, $\\beta=10^4$",
          "amp_paper": "(c) AMP mean ('paper'), $\\beta=100$",
          "sample_beta100": "(d) one sample, $\\beta=100$"}


def compute(s: dict, seed: int) -> dict:
    """Everything of one task: matrices, loss curves, traces, summary."""
    D = s["D"]
    d1 = D + 1
    with single_threaded():
        task = make_task(D=D, N=s["N"], P=s["P"], lam=LAM, seed=seed,
                         test_prompts=s["test_prompts"], keep_test_context=False)
        model = build_model(task, "merged", lam=LAM, representation="dense")
        th = gaussian_theory(model, task)
        m = th.mean
        m5 = gaussian_theory(MergedModel(model.data, LAM_ADAM), task).mean
        cfg = TrainConfig(optimizer="adam", lr=1e-3, epochs=s["epochs"], model="merged",
                          seed=seed, record_every=max(1, s["epochs"] // 500),
                          representation="dense")
        tr = train(task, cfg, lam=LAM_ADAM)
        amp = amp_for_model(model, BETA_AMP, variant="paper", seed=seed, m_exact=m)
        sampler = make_sampler(model, "mala", ladder=Ladder.from_temperatures(TEMPS),
                               copies=2, seed=seed)
        state = sampler.init(np.zeros(model.n_spins))
        state, info = sampler.run(state, s["burn"], burn_in=True)
        state, trace = sample_trace(sampler, state, s["records"], s["every"])
    temps = 1.0 / trace.betas[-1]  # coldest first
    pos = trace.positions  # (records, T, copies, n)
    k_mean = int(np.argmin(np.abs(temps - 1.0 / BETA_MEAN)))
    k_hot = int(np.argmin(np.abs(temps - 1.0 / BETA_AMP)))
    mats = {"adam": tr.W, "boltzmann_mean": pos[:, k_mean].reshape(-1, pos.shape[-1]).mean(0),
            "amp_paper": amp.m, "sample_beta100": pos[-1, k_hot, 0]}
    err = mse(pos.reshape(-1, pos.shape[-1]), task.test_novel).reshape(pos.shape[:3])
    step0 = int(state.step) - s["records"] * s["every"]
    trace_rows = []
    for i in range(s["records"]):
        for k, T in enumerate(temps):
            trace_rows.append({"step": step0 + (i + 1) * s["every"], "T": T,
                               "beta": 1.0 / T, "test_mse_novel": err[i, k].mean(),
                               "energy": trace.energies[i, k].mean(),
                               "exact_test_mse_novel": th.test_mse_mean(1.0 / T, "novel")})
    weight_rows = []
    for name, W in mats.items():
        Wm = W.reshape(d1, d1)
        for a in range(d1):
            for b in range(d1):
                weight_rows.append({"matrix": name, "a": a, "b": b, "value": Wm[a, b],
                                    "m_lam0.01": m[a * d1 + b], "m_lam0.005": m5[a * d1 + b]})
    loss_rows = [{"epoch": int(e), "energy": en, "train_mse": trm, "test_mse_novel": te}
                 for e, en, trm, te in zip(tr.history["epoch"], tr.history["energy"],
                                           tr.history["train_mse"],
                                           tr.history["test_mse_novel"], strict=True)]
    summary = []
    for name, W in {**mats, "m_lam0.01": m, "m_lam0.005": m5}.items():
        row = {"matrix": name, "test_mse_novel": mse(W[None], task.test_novel)[0],
               "train_mse": mse(W[None], task.train)[0], "alignment": alignment(W[None])[0]}
        for ref_name, ref in (("m_lam0.01", m), ("m_lam0.005", m5)):
            row[f"rel_dist_to_{ref_name}"] = np.linalg.norm(W - ref) / np.linalg.norm(ref)
            row[f"cosine_to_{ref_name}"] = W @ ref / (np.linalg.norm(W) * np.linalg.norm(ref))
        summary.append(row)
    refs = [{"matrix": "ground_state_lam0.01", "test_mse_novel": th.test_mse_ground["novel"],
             "train_mse": th.train_mse_ground},
            {"matrix": "mala_accept", "test_mse_novel": float(np.mean(info.accept))},
            {"matrix": "amp_sweeps", "test_mse_novel": float(amp.sweeps)}]
    return {"weights": weight_rows, "loss": loss_rows, "trace": trace_rows,
            "summary": summary + refs}


# --------------------------------------------------------------------------- figure
def make_figure(res: dict, s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    D = s["D"]
    d1 = D + 1
    fig = plt.figure(figsize=(11.5, 6.6), constrained_layout=True)
    gs = fig.add_gridspec(2, 12, height_ratios=[1.0, 0.95])
    mats = {}
    for r in res["weights"]:
        mats.setdefault(r["matrix"], np.zeros((d1, d1)))[int(r["a"]), int(r["b"])] = r["value"]
    ref = np.zeros((d1, d1))
    for r in res["weights"]:
        if r["matrix"] == "boltzmann_mean":
            ref[int(r["a"]), int(r["b"])] = r["m_lam0.01"]
    vmax = 1.1 * float(np.max(np.abs(ref)))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    ims = []
    axes_top = []
    for i, name in enumerate(MATRICES):
        ax = fig.add_subplot(gs[0, 3 * i:3 * i + 3])
        ims.append(ax.imshow(mats[name], cmap="RdBu_r", norm=norm, interpolation="nearest"))
        ax.set_title(TITLES[name], fontsize=8.5)
        ticks = [0, D // 2, D]
        ax.set_xticks(ticks, [f"{t + 1}" for t in ticks])
        ax.set_yticks(ticks, [f"{t + 1}" for t in ticks])
        ax.set_xlabel("column $b$")
        if i == 0:
            ax.set_ylabel("row $a$")
        axes_top.append(ax)
    cb = fig.colorbar(ims[0], ax=axes_top, fraction=0.02, pad=0.01, shrink=0.9)
    cb.set_label("$W_{ab}$ (colour clipped at $\\pm1.1\\max|m|$)")

    summ = {r["matrix"]: r for r in res["summary"]}
    # (e) Adam loss curves
    ax = fig.add_subplot(gs[1, 0:4])
    ep = np.array([r["epoch"] for r in res["loss"]], dtype=float)
    ax.plot(np.maximum(ep, 1), [r["train_mse"] for r in res["loss"]], color="#d9771e", lw=1.3,
            label="training MSE")
    ax.plot(np.maximum(ep, 1), [r["test_mse_novel"] for r in res["loss"]], color="#7a3b00",
            lw=1.3, ls="--", label="novel-task test MSE")
    ax.axhline(summ["m_lam0.005"]["train_mse"], color="0.4", lw=0.9, ls=":",
               label="ground state $\\lambda=0.005$: train")
    ax.axhline(summ["m_lam0.005"]["test_mse_novel"], color="k", lw=0.9, ls="-.",
               label="ground state $\\lambda=0.005$: test")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Adam epoch")
    ax.set_ylabel("MSE")
    ax.set_title("(e) Adam loss curves (lr $10^{-3}$, full batch)", fontsize=8.5)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.1), fontsize=7, frameon=False)
    ax.grid(True, color="0.93", lw=0.6, which="both")

    # (f) MALA traces
    ax = fig.add_subplot(gs[1, 4:8])
    temps = sorted({r["T"] for r in res["trace"]})
    cmap = plt.get_cmap("plasma")
    for i, T in enumerate(temps):
        col = cmap(0.1 + 0.75 * i / max(1, len(temps) - 1))
        sel = [r for r in res["trace"] if r["T"] == T]
        ax.plot([r["step"] for r in sel], [r["test_mse_novel"] for r in sel], color=col,
                lw=0.8, label=f"$\\beta=10^{{{round(-np.log10(T))}}}$")
        ax.axhline(sel[0]["exact_test_mse_novel"], color=col, lw=1.0, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("MALA step (after burn-in)")
    ax.set_ylabel("test MSE of the sample")
    ax.set_title("(f) Boltzmann samples (dashed: exact $\\langle\\varepsilon\\rangle_\\beta$)",
                 fontsize=8.5)
    ax.legend(loc="center right", fontsize=7, frameon=False, ncol=1)
    ax.grid(True, color="0.93", lw=0.6, which="both")

    # (g) every entry's deviation from the exact ground state on the same prompts
    ax = fig.add_subplot(gs[1, 8:12])
    cols = {"adam": "#d9771e", "boltzmann_mean": "#a11b9b", "amp_paper": "#1f5fa8"}
    ax.axhline(0.0, color="0.6", lw=0.8)
    devs = []
    for name, col in cols.items():
        sel = [r for r in res["weights"] if r["matrix"] == name]
        refk = "m_lam0.005" if name == "adam" else "m_lam0.01"
        dist = summ[name][f"rel_dist_to_{refk}"]
        lab = {"adam": "(a) $-\\,m_{\\lambda=0.005}$", "boltzmann_mean": "(b) $-\\,m_{0.01}$",
               "amp_paper": "(c) $-\\,m_{0.01}$"}[name]
        x = np.array([r[refk] for r in sel])
        dev = np.array([r["value"] for r in sel]) - x
        devs.append(dev)
        ax.plot(x, dev, "o", ms=2.6, color=col, alpha=0.7, mew=0,
                label=f"{lab}:  $\\|W-m\\|/\\|m\\|$ = {dist:.3f}")
    span = float(np.percentile(np.abs(np.concatenate(devs)), 99.5))
    ax.set_ylim(-2.2 * span, 2.2 * span)  # a diverged AMP (tiny sizes) is clipped
    ax.set_xlabel("exact ground state $m_{ab}$")
    ax.set_ylabel("$W_{ab} - m_{ab}$")
    ax.set_title("(g) every entry: deviation from the exact ground state", fontsize=8.5)
    ax.legend(loc="lower center", fontsize=7, frameon=False, markerscale=2)
    ax.grid(True, color="0.93", lw=0.6)
    fig.suptitle(f"$D={D}$, $N={s['N']}$, $P={s['P']}$, one task (seed {s.get('seed', 0)}); "
                 "Boltzmann and AMP at $\\lambda=0.01$; "
                 f"Adam {s['epochs']} epochs; MALA {s['records'] * s['every']} steps "
                 f"after {s['burn']} burn-in", fontsize=8.5, color="0.2")
    save(fig, out, stem)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "fewer MALA steps and 2000 Adam epochs (~15 s)")
    ap.add_argument("--seed", type=int, default=0, help="task seed (one task; --seeds is "
                    "ignored here)")
    args = ap.parse_args(argv)
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    s["seed"] = args.seed
    files = {k: out / f"{stem}_{k}.csv" for k in ("weights", "loss", "trace", "summary")}
    if args.replot:
        make_figure({k: read_csv(p) for k, p in files.items()}, s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    import numba

    numba.set_num_threads(1)
    res = compute(s, args.seed)
    for k, p in files.items():
        write_csv(p, res[k])
    make_figure(res, s, out, stem)
    print(f"D={s['D']}, N={s['N']}, P={s['P']}, seed {args.seed}: {elapsed(t0)}")
    print("matrix            test MSE  alignment  |W-m.01|/|m.01|  |W-m.005|/|m.005|  "
          "cos(W, m.01)")
    for r in res["summary"]:
        if "alignment" not in r:
            continue
        print(f"{r['matrix']:16s}  {r['test_mse_novel']:.4f}    {r['alignment']:.3f}      "
              f"{r['rel_dist_to_m_lam0.01']:.4f}           {r['rel_dist_to_m_lam0.005']:.4f}"
              f"             {r['cosine_to_m_lam0.01']:.4f}")
    print(f"wrote {out}/{stem}.png, .pdf, _weights.csv, _loss.csv, _trace.csv, _summary.csv")


if __name__ == "__main__":
    main()
