"""Beyond the paper: the factored model's phase diagram through P(q), Binder and C.

The phase diagram over (α, T) and (d_k, T) read through the overlap distribution P(q), the
Binder cumulant and the heat capacity C.

The merged model (W free) is Gaussian at every temperature: its heat capacity is C = n/2
exactly and its overlap ratio q/Q and Binder cumulant change smoothly with T — a
crossover, no transition (docs/model.md §1.4). The factored model W = W_qᵀW_k with
d_k < D+1 rows (docs/model.md §1.5) is quartic, non-convex and rank-constrained, with
several local minima. This script samples it with the exact block heat bath (``gibbs``,
W_q | W_k then W_k | W_q) and replica exchange over a fixed geometric temperature ladder,
≥ 2 copies per rung, through the runner's Python API (``spinicl.runner.run_sample``),
and reads at every rung:

* P(q/Q̄): the distribution of the overlap q_ab = W^a·W^b/n between two copies a, b of one
  rung, divided by that rung's mean self-overlap Q̄ = ⟨‖W‖²/n⟩ (a per-rung constant:
  shape, Binder and bimodality are unchanged, and every rung lives on the same axis,
  q/Q̄ = 1: copies frozen into one state, ≈ 0: unrelated); histograms on fixed edges from
  the recorded overlaps (every record after burn-in, every pair);
* its mean ⟨q⟩/Q̄ (the project's overlap ratio), width sd(q)/Q̄ and Sarle's bimodality
  coefficient BC = (γ² + 1)/κ (γ skewness, κ kurtosis: 1/3 for a Gaussian, 5/9 for a
  uniform, → 1 for two separated peaks; a strongly skewed single peak also raises it),
  errors by a block jackknife over records (blocks of ≥ 5 τ_int, all pairs together),
  and the number of peaks of the histogram (:func:`count_peaks`; the merged model's exact
  draws measure how often noise alone gives two);
* the Binder cumulant g = ½(3 − ⟨q⁴⟩/⟨q²⟩²) of the raw q (g = 1: one sharp peak,
  0: a Gaussian q centred on 0, negative: heavier tails or a mixture; g is 3/2 times the
  B = 1 − ⟨q⁴⟩/(3⟨q²⟩²) of a run file's ``/thermo/binder``), error by the delta method
  with its influence series averaged over the M(M−1)/2 pairs per record first (they share
  copies), then τ_int (Geyer);
* the heat capacity per spin C/n_f, C = β²Var(E) (``spinicl.analysis.thermo``), n_f the
  model's own spins: 2 d_k (D+1) factor entries (merged: (D+1)²). Two exact limits:
  the harmonic one at T → 0 around a minimum of rank r,
  C₀ = [n_f − d_k(d_k−1)/2 + (d_k−r)(d_k−r−1)/2]/2 (the orbit of the rotations
  W_q → RW_q, W_k → RW_k costs no energy), and the quartic one at T → ∞, C → n_f/4;
* ⟨E⟩ − E_ground against the harmonic excess C₀·T at the coldest rungs (E_ground from
  ``spinicl.theory.factored_minima``: exact when the nuclear-norm optimum has rank ≤ d_k,
  else the best of 32 local minimisations).

Equilibration checks: swap acceptance of every neighbouring pair, round trips of every
copy, the two halves of the production records against each other (z-scores of ⟨E⟩, C,
g, ⟨q⟩/Q̄ per rung), and one point sampled a second time with MALA + replica exchange
(more steps) against the heat bath. Merged reference at the same prompts (same task
seed): exact q/Q, Binder (``merged_overlap_moments``) and C = n/2, and the same estimators
as above applied to exact independent draws (random stream: ``SeedSequence(seed,
spawn_key=(MERGED_DRAWS_STREAM,))``), which checks them against the closed forms.

Families (all at N = 3D, λ = 0.01, σ_x = σ_w = 1, noiseless labels, start from the
paper's random initialisation N(0, 1/(D+1)), a fixed ladder of 22 rungs T = 10^-4.5 … 10^-1
(six per decade, the same T at every point), 4 copies per rung = 6 pairs, swaps every
5 sweeps, records every 10):

* (α, T) at d_k = 1, D = 4: α = P/D² ∈ {0.25, 0.5, 1, 1.25, 2, 4, 16};
* (d_k, T) at α = 1.25 = (D+1)/D (the interpolation threshold), D = 4: d_k = 1 … 5;
* sizes: D = 3, 4, 5 at d_k = 1, α = 1.25 (P = 11, 20, 31);
* check: D = 4, d_k = 2, α = 1.25, seed 0 with MALA (4× the sweeps).

Full run: 4 disorder seeds per point, 3000 burn-in + 12 000 production sweeps (1200
records), 52 heat-bath runs + 1 MALA run. Seed averages are means of per-seed values,
error bars ± 1 standard error over seeds (one seed: that run's own error); the
seed-to-seed standard deviation is in the CSV. Cost: the sampling time is proportional to
the number of copies (every copy is one row of the batch); 4 copies cost twice the
2-copy default and give 6 pairs instead of 1. Each run also computes its ground-state
reference (for d_k below the nuclear-norm rank, 32 local minimisations), a few seconds.

Outputs (``scripts/output/factored_phase/``): ``factored_phase.png``/``.pdf``;
``factored_phase_points.csv`` (every plotted curve and map value: model, sampler, D, d_k,
α, T, observable, seed mean, s.d., s.e., seeds, median within-run error);
``factored_phase_pq.csv`` (P(q/Q̄) pooled over the seeds at D = 4, α = 1.25, every d_k,
every rung, and the merged model's); ``factored_phase_pq_seeds.csv`` (P(q/Q̄) of each
seed at d_k = 1 there);
``factored_phase_rungs.csv`` (every run × rung: all statistics with errors and the
halves' z-scores); ``factored_phase_runs.csv`` (per run: ground state, swap acceptance,
round trips, halves, cold-rung checks, wall time); ``factored_phase_crossover.csv``
(per point: T where ⟨q⟩/Q̄ = ½, where g = 0, the C and bimodality maxima, the seeds and
temperatures with two peaks); ``factored_phase_check.csv``
(MALA against the heat bath per rung). ``--quick`` writes ``factored_phase_quick*``.

Run time (2 shared cores, ``--jobs 2``, load average 4–6 from other jobs, measured): full
13.3 min (the runs: 1460 s summed); ``--quick`` (D = 4, α ∈ {0.5, 1.25, 4},
d_k ∈ {1, 2, 5}, 2 seeds, 5000 sweeps, no sizes) 2.1 min.

Usage::

    python scripts/factored_phase.py [--quick] [--seeds S] [--jobs J] [--out DIR] [--replot]
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import elapsed, parser, pmap, pyplot, read_csv, save, setup, write_csv

NAME = "factored_phase"
#: Spawn key (under the task seed) of the exact merged draws; the task uses 0–3, the
#: sampler 7.
MERGED_DRAWS_STREAM = 13
#: Edges of the P(q/Q̄) histograms.
PQ_EDGES = np.linspace(-2.0, 2.0, 101)
#: Jackknife blocks: each ≥ this many τ_int, their number clipped to [10, 50].
BLOCK_TAUS = 5
#: Peaks of a P(q/Q̄) histogram (:func:`count_peaks`): running mean over this many bins,
#: prominence ≥ this fraction of the maximum, peaks at least this far apart in q/Q̄.
PEAK_SMOOTH_BINS = 3
PEAK_PROMINENCE = 0.2
PEAK_SEPARATION = 0.25
#: Statistics of a rung (name → CSV column stem); each has a ``_stderr`` companion.
RUNG_STATS = ("energy", "heat_capacity", "binder", "overlap_ratio", "width", "bimodality")
#: Observables compared between the two halves of a run and between samplers.
CHECKED = ("energy", "heat_capacity", "binder", "overlap_ratio")

FULL = {"D": 4, "N_per_D": 3, "lam": 0.01, "t_min": 10**-4.5, "t_max": 1e-1, "rungs": 22,
        "copies": 4, "steps": 12_000, "burn_in": 3_000, "record_every": 10,
        "swap_every": 5, "alphas": (0.25, 0.5, 1.0, 1.25, 2.0, 4.0, 16.0),
        "map_dk": 1, "dk_alpha": 1.25, "dks": (1, 2, 3, 4, 5), "sizes": (3, 5),
        "seeds": 4, "check_dk": 2, "mala_factor": 4, "merged_draws": 4000}
QUICK = {**FULL, "alphas": (0.5, 1.25, 4.0), "dks": (1, 2, 5), "sizes": (), "seeds": 2,
         "steps": 5000, "burn_in": 1250, "mala_factor": 3, "merged_draws": 2000}
TINY = {**FULL, "D": 3, "t_min": 1e-4, "t_max": 1e-1, "rungs": 7, "steps": 600,
        "burn_in": 200, "alphas": (1.25,), "dks": (2,), "map_dk": 2, "sizes": (),
        "seeds": 1, "check_dk": 2, "mala_factor": 2, "merged_draws": 800}


# =========================================================================== settings
def temperatures(s: dict) -> tuple[float, ...]:
    """The fixed geometric ladder, ascending (the same T at every point and seed)."""
    return tuple(float(t) for t in np.geomspace(s["t_min"], s["t_max"], s["rungs"]))


def prompts(D: int, alpha: float) -> int:
    """P = α D² (rounded), at least 1."""
    return max(1, round(alpha * D * D))


def factored_jobs(s: dict) -> list[dict]:
    """Every factored run: the three families and the sampler check (deduplicated),
    longest first (cost grows with d_k and with MALA's extra sweeps)."""
    D, a0, dk0 = s["D"], s["dk_alpha"], s["map_dk"]
    points = {(D, dk0, a) for a in s["alphas"]} | {(D, dk, a0) for dk in s["dks"]}
    points |= {(d, dk0, a0) for d in s["sizes"]}
    jobs = [{"D": d, "dk": dk, "alpha": a, "seed": seed, "sampler": "gibbs",
             "steps": s["steps"], "burn_in": s["burn_in"]}
            for d, dk, a in sorted(points) for seed in range(s["seeds"])]
    jobs.append({"D": D, "dk": s["check_dk"], "alpha": a0, "seed": 0, "sampler": "mala",
                 "steps": s["steps"] * s["mala_factor"],
                 "burn_in": s["burn_in"] * s["mala_factor"]})
    for j in jobs:
        j["settings"] = s
    return sorted(jobs, key=lambda j: -(j["steps"] * (1 + 3 * (j["sampler"] == "mala"))
                                        * j["dk"] * (j["D"] + 1) ** 2))


def merged_jobs(s: dict) -> list[dict]:
    """One exact merged reference per distinct (D, α, seed) of the factored runs."""
    keys = sorted({(j["D"], j["alpha"], j["seed"]) for j in factored_jobs(s)
                   if j["sampler"] == "gibbs"})
    return [{"D": d, "alpha": a, "seed": seed, "settings": s} for d, a, seed in keys]


def task_config(s: dict, D: int, alpha: float, seed: int):
    from spinicl.config import TaskConfig

    return TaskConfig(D=D, N=s["N_per_D"] * D, P=prompts(D, alpha), lam=s["lam"],
                      seed=seed, test_prompts=100)


def harmonic_heat_capacity(n_factor: int, dk: int, rank: int) -> float:
    """C at T → 0 around a minimum of rank r: half the number of directions that cost
    energy, n_f minus the dimension of the rotation orbit W_q → RW_q, W_k → RW_k (R in
    O(d_k); its stabiliser at rank r is O(d_k − r))."""
    orbit = dk * (dk - 1) // 2 - (dk - rank) * (dk - rank - 1) // 2
    return 0.5 * (n_factor - orbit)


# =========================================================================== estimators
def binder(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binder cumulant g = ½(3 − ⟨q⁴⟩/⟨q²⟩²) per rung and its standard error.

    Parameters
    ----------
    q : ndarray, shape (records, T, pairs)
        Raw overlaps after burn-in.

    Returns
    -------
    g, g_stderr : ndarray, shape (T,)
        The error is the τ-corrected standard error (Geyer) of the delta-method influence
        series −(q⁴ − m₄)/(2m₂²) + m₄(q² − m₂)/m₂³, averaged over the pairs of each record
        first (the pairs share copies, so they are not independent chains).
    """
    from spinicl.analysis.diagnostics import stderr

    q2 = q**2
    q4 = q2**2
    m2 = q2.mean(axis=(0, 2))
    m4 = q4.mean(axis=(0, 2))
    g = 0.5 * (3.0 - m4 / m2**2)
    influence = (-(q4 - m4[None, :, None]) / (2 * m2[None, :, None] ** 2)
                 + m4[None, :, None] * (q2 - m2[None, :, None]) / m2[None, :, None] ** 3
                 ).mean(axis=2)
    se = np.array([float(stderr(influence[:, k:k + 1], chains=True))
                   if np.ptp(influence[:, k]) > 0 else 0.0 for k in range(q.shape[1])])
    return g, se


def shape_statistics(raw_moments: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, width (s.d.) and Sarle's bimodality coefficient from raw moments.

    Parameters
    ----------
    raw_moments : ndarray, shape (..., 4)
        ⟨x⟩, ⟨x²⟩, ⟨x³⟩, ⟨x⁴⟩.

    Returns
    -------
    dict with ``overlap_ratio`` (the mean), ``width`` and ``bimodality`` = (γ² + 1)/κ.
    """
    m1, m2, m3, m4 = np.moveaxis(raw_moments, -1, 0)
    var = m2 - m1**2
    mu3 = m3 - 3 * m1 * m2 + 2 * m1**3
    mu4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"overlap_ratio": m1, "width": np.sqrt(np.maximum(var, 0.0)),
                "bimodality": (mu3**2 / var**3 + 1.0) / (mu4 / var**2)}


def jackknife_shape(x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`shape_statistics` of x per rung with block-jackknife errors.

    Parameters
    ----------
    x : ndarray, shape (records, T, pairs)
        q/Q̄ after burn-in.

    Returns
    -------
    dict name → (value (T,), stderr (T,)). Blocks are runs of consecutive records (all
    pairs together) of ≥ BLOCK_TAUS τ_int of the pair-averaged x², their number clipped
    to [10, 50] (fewer than 10 blocks of 5 τ: the error may be low).
    """
    from spinicl.analysis.diagnostics import tau_int

    n_rec, n_t = x.shape[:2]
    powers = x[..., None] ** np.arange(1, 5)                 # (records, T, pairs, 4)
    per_record = powers.mean(axis=2)                          # (records, T, 4)
    full = shape_statistics(per_record.mean(axis=0))
    out = {k: (v, np.zeros(n_t)) for k, v in full.items()}
    for k in range(n_t):
        series = per_record[:, k, 1]
        tau = float(tau_int(series)) if np.ptp(series) > 0 else 1.0
        blocks = int(np.clip(n_rec // max(math.ceil(BLOCK_TAUS * tau), 1), 10, 50))
        blocks = min(blocks, n_rec)
        edges = np.linspace(0, n_rec, blocks + 1).astype(int)
        sums = np.add.reduceat(per_record[:, k, :], edges[:-1], axis=0)   # (J, 4)
        counts = np.diff(edges)[:, None]
        leave_out = (sums.sum(axis=0) - sums) / (n_rec - counts)
        jack = shape_statistics(leave_out)
        for name, values in jack.items():
            se = math.sqrt((blocks - 1) / blocks * float(np.sum((values - values.mean())
                                                                 ** 2)))
            out[name][1][k] = se
    return out


def count_peaks(counts: np.ndarray) -> np.ndarray:
    """Number of peaks of each P(q/Q̄) histogram.

    Parameters
    ----------
    counts : ndarray, shape (T, bins)
        Histograms on :data:`PQ_EDGES`.

    Returns
    -------
    ndarray of int, shape (T,)
        Local maxima of the histogram smoothed by a running mean over
        :data:`PEAK_SMOOTH_BINS` bins whose prominence is at least
        :data:`PEAK_PROMINENCE` of the highest bin and which lie at least
        :data:`PEAK_SEPARATION` apart (``scipy.signal.find_peaks``). The merged model's
        exact draws (one Gaussian-like peak) measure how often noise alone gives two.
    """
    from scipy.signal import find_peaks

    kernel = np.ones(PEAK_SMOOTH_BINS) / PEAK_SMOOTH_BINS
    distance = max(1, round(PEAK_SEPARATION / float(np.diff(PQ_EDGES)[0])))
    out = np.zeros(counts.shape[0], dtype=int)
    for k, h in enumerate(counts):
        y = np.convolve(np.asarray(h, dtype=float), kernel, mode="same")
        if y.max() > 0:
            out[k] = find_peaks(np.concatenate([[0.0], y, [0.0]]),
                                prominence=PEAK_PROMINENCE * y.max(),
                                distance=distance)[0].size
    return out


def rung_statistics(E: np.ndarray, q: np.ndarray, Q: np.ndarray, temps: Sequence[float]
                    ) -> dict[str, np.ndarray]:
    """Every statistic of :data:`RUNG_STATS` per rung, with errors, and P(q/Q̄).

    Parameters
    ----------
    E : ndarray, shape (records, T, copies)
        Energies after burn-in.
    q : ndarray, shape (records, T, pairs)
        Overlaps between the copies of a rung.
    Q : ndarray, shape (records, T, copies)
        Self-overlaps ‖W‖²/n.
    temps : sequence of float, ascending

    Returns
    -------
    dict of (T,) arrays: ``<stat>`` and ``<stat>_stderr``; ``qbar`` (Q̄);
    ``counts`` (T, bins) on :data:`PQ_EDGES`, ``outside`` (T,) and ``peaks`` (T,)
    (:func:`count_peaks`).
    """
    from spinicl.analysis.diagnostics import summarize
    from spinicl.analysis.thermo import heat_capacity

    betas = 1.0 / np.asarray(temps, dtype=float)
    out: dict[str, np.ndarray] = {}
    energy = [summarize(E[:, k, :]) for k in range(E.shape[1])]
    out["energy"] = np.array([e["mean"] for e in energy])
    out["energy_stderr"] = np.array([e["stderr"] for e in energy])
    out["heat_capacity"], out["heat_capacity_stderr"] = heat_capacity(E, betas)
    out["binder"], out["binder_stderr"] = binder(q)
    qbar = Q.mean(axis=(0, 2))
    x = q / qbar[None, :, None]
    for name, (value, se) in jackknife_shape(x).items():
        out[name], out[f"{name}_stderr"] = value, se
    out["qbar"] = qbar
    flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    out["counts"] = np.array([np.histogram(v, PQ_EDGES)[0] for v in flat])
    out["outside"] = np.sum((flat < PQ_EDGES[0]) | (flat > PQ_EDGES[-1]), axis=1)
    out["peaks"] = count_peaks(out["counts"])
    return out


def halves_z(E: np.ndarray, q: np.ndarray, Q: np.ndarray, temps: Sequence[float]
             ) -> dict[str, np.ndarray]:
    """z-scores (first − second half)/√(se₁² + se₂²) of :data:`CHECKED` per rung."""
    half = E.shape[0] // 2
    a = rung_statistics(E[:half], q[:half], Q[:half], temps)
    b = rung_statistics(E[half:], q[half:], Q[half:], temps)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: (a[name] - b[name]) / np.hypot(a[f"{name}_stderr"],
                                                    b[f"{name}_stderr"])
                for name in CHECKED}


# =========================================================================== workers
def sample_config(job: dict):
    from spinicl.config import SampleConfig

    s = job["settings"]
    return SampleConfig(task=task_config(s, job["D"], job["alpha"], job["seed"]),
                        model="factored", dk=job["dk"], sampler=job["sampler"],
                        temperatures=temperatures(s), copies=s["copies"],
                        steps=job["steps"], burn_in=job["burn_in"],
                        record_every=s["record_every"], swap_every=s["swap_every"],
                        adapt_ladder=False, representation="dense", init="random",
                        flush_every=10_000, flush_seconds=600.0)


def run_factored(job: dict) -> dict:
    """One factored run (in a temporary file, deleted) and its statistics."""
    from spinicl.io.run import open_run, read_attrs, read_traces
    from spinicl.runner import file_info, run_sample

    cfg = sample_config(job)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="factored_phase_") as tmp:
        path = os.path.join(tmp, "run.h5")
        result = run_sample(cfg, path, progress=False, command_line=f"scripts/{NAME}.py")
        if result.status != "complete":
            raise RuntimeError(f"run {job['D'], job['dk'], job['alpha'], job['seed']} "
                               f"{result.status}: {result.message}")
        info = file_info(path)
        with open_run(path) as f:
            traces = read_traces(f)
            temps = f["ladder/T"][...]
            seeds = read_attrs(f)["seeds"]
    seconds = time.perf_counter() - t0
    keep = np.asarray(traces["step"]) > cfg.burn_in
    E, q, Q = (np.asarray(traces[k])[keep] for k in ("energy", "overlap", "self_overlap"))
    stats = rung_statistics(E, q, Q, temps)
    z = halves_z(E, q, Q, temps)
    ground = info["ground_state"]
    n_factor = 2 * job["dk"] * (job["D"] + 1)
    c0 = harmonic_heat_capacity(n_factor, job["dk"], int(ground["rank"]))
    return {"job": {k: v for k, v in job.items() if k != "settings"}, "T": temps,
            "stats": stats, "halves": z, "seconds": seconds, "records": int(keep.sum()),
            "swap": np.asarray(info["swap_accept"], dtype=float),
            "round_trips": list(info["ladder"]["round_trips_per_copy"]),
            "ground": ground, "n_factor": n_factor, "harmonic_c": c0,
            "sampler_seed": seeds["sampler_seed"]}


def run_merged(job: dict) -> dict:
    """Exact merged references at the same prompts: closed forms and the estimators of
    :func:`rung_statistics` on exact independent draws."""
    from spinicl.analysis.thermo import merged_overlap_moments
    from spinicl.models import build_model
    from spinicl.prompts import make_task
    from spinicl.theory.gaussian import gaussian_theory

    s = job["settings"]
    temps = np.array(temperatures(s))
    task = make_task(task_config(s, job["D"], job["alpha"], job["seed"]),
                     keep_test_context=False)
    model = build_model(task, "merged", representation="dense")
    theory = gaussian_theory(model, task)
    n = theory.n_spins
    rng = np.random.default_rng(np.random.SeedSequence(job["seed"],
                                                       spawn_key=(MERGED_DRAWS_STREAM,)))
    draws = s["merged_draws"]
    W = np.stack([theory.sample(1.0 / t, 2 * draws, rng) for t in temps], axis=1)
    W = W.reshape(draws, 2, temps.size, n).transpose(0, 2, 1, 3)    # (draws, T, 2, n)
    E = model.energy(W.reshape(-1, n)).reshape(draws, temps.size, 2)
    q = np.einsum("dti,dti->dt", W[:, :, 0], W[:, :, 1])[:, :, None] / n
    Q = np.einsum("dtci,dtci->dtc", W, W) / n
    stats = rung_statistics(E, q, Q, temps)
    moments = [merged_overlap_moments(theory, 1.0 / t) for t in temps]
    exact = {"energy": np.array([theory.energy_mean(1.0 / t) for t in temps]),
             "heat_capacity": np.full(temps.size, 0.5 * n),
             "binder": np.array([1.5 * m["binder"] for m in moments]),
             "overlap_ratio": np.array([theory.overlap_ratio(1.0 / t) for t in temps])}
    return {"job": {k: v for k, v in job.items() if k != "settings"}, "T": temps,
            "stats": stats, "exact": exact, "n": n, "energy_ground": theory.energy_ground}


# =========================================================================== tables
def rung_rows(fact: list[dict], merged: list[dict], s: dict) -> list[dict]:
    """One row per run × rung (``_rungs.csv``)."""
    rows = []
    for r in fact:
        j, st = r["job"], r["stats"]
        for k, T in enumerate(r["T"]):
            row = {"model": "factored", "sampler": j["sampler"], "D": j["D"], "dk": j["dk"],
                   "alpha": j["alpha"], "P": prompts(j["D"], j["alpha"]),
                   "N": s["N_per_D"] * j["D"], "seed": j["seed"], "rung": k, "T": T,
                   "n_spins": r["n_factor"], "qbar": st["qbar"][k],
                   "peaks": st["peaks"][k]}
            for name in RUNG_STATS:
                row[name] = st[name][k]
                row[f"{name}_stderr"] = st[f"{name}_stderr"][k]
            row["energy_excess"] = st["energy"][k] - r["ground"]["energy_ground"]
            row["heat_capacity_per_spin"] = st["heat_capacity"][k] / r["n_factor"]
            row["harmonic_heat_capacity"] = r["harmonic_c"]
            row["harmonic_energy_excess"] = r["harmonic_c"] * T
            for name in CHECKED:
                row[f"halves_z_{name}"] = r["halves"][name][k]
            row["pq_outside"] = st["outside"][k] / max(st["counts"][k].sum()
                                                       + st["outside"][k], 1)
            rows.append(row)
    for r in merged:
        j, st = r["job"], r["stats"]
        for k, T in enumerate(r["T"]):
            row = {"model": "merged", "sampler": "exact draws", "D": j["D"], "dk": j["D"] + 1,
                   "alpha": j["alpha"], "P": prompts(j["D"], j["alpha"]),
                   "N": s["N_per_D"] * j["D"], "seed": j["seed"], "rung": k, "T": T,
                   "n_spins": r["n"], "qbar": st["qbar"][k], "peaks": st["peaks"][k]}
            for name in RUNG_STATS:
                row[name] = st[name][k]
                row[f"{name}_stderr"] = st[f"{name}_stderr"][k]
            row["energy_excess"] = st["energy"][k] - r["energy_ground"]
            row["heat_capacity_per_spin"] = st["heat_capacity"][k] / r["n"]
            for name in CHECKED:
                row[f"exact_{name}"] = r["exact"][name][k]
            row["exact_heat_capacity_per_spin"] = 0.5
            row["pq_outside"] = st["outside"][k] / max(st["counts"][k].sum()
                                                       + st["outside"][k], 1)
            rows.append(row)
    return rows


POINT_OBSERVABLES = ("binder", "heat_capacity_per_spin", "overlap_ratio", "width",
                     "bimodality", "energy_excess", "two_peaks")
#: The within-run error column of each observable of ``_points.csv``.
WITHIN_ERROR = {"binder": "binder_stderr", "heat_capacity_per_spin": "heat_capacity_stderr",
                "overlap_ratio": "overlap_ratio_stderr", "width": "width_stderr",
                "bimodality": "bimodality_stderr", "energy_excess": "energy_stderr",
                "two_peaks": None}


def _median(v: np.ndarray) -> float:
    return float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")


def point_rows(rungs: list[dict]) -> list[dict]:
    """Seed averages per (model, sampler, D, d_k, α, T) and observable (``_points.csv``);
    for the merged model also the seed mean of the exact values (``exact``)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rungs:
        key = (r["model"], r["sampler"], r["D"], r["dk"], r["alpha"], r["rung"])
        groups.setdefault(key, []).append(r)
    rows = []
    for key in sorted(groups):
        sel = groups[key]
        for obs in POINT_OBSERVABLES:
            if obs == "two_peaks":   # fraction of seeds whose P(q) has ≥ 2 peaks
                v = np.array([float(x["peaks"] >= 2) for x in sel])
                within = np.full(v.size, np.nan)
            else:
                v = np.array([x[obs] for x in sel], dtype=float)
                scale = np.array([x["n_spins"] if obs == "heat_capacity_per_spin" else 1
                                  for x in sel], dtype=float)
                within = np.array([x[WITHIN_ERROR[obs]] for x in sel], dtype=float) / scale
            n = int(np.isfinite(v).sum())
            sd = float(np.nanstd(v, ddof=1)) if n > 1 else float("nan")
            row = {"model": key[0], "sampler": key[1], "D": key[2], "dk": key[3],
                   "alpha": key[4], "rung": key[5], "T": sel[0]["T"], "observable": obs,
                   "mean": float(np.nanmean(v)), "sd": sd,
                   "sem": sd / math.sqrt(n) if n > 1 else _median(within),
                   "seeds": n, "within_stderr": _median(within)}
            exact_col = ("exact_heat_capacity_per_spin" if obs == "heat_capacity_per_spin"
                         else f"exact_{obs}")
            if exact_col in sel[0]:
                row["exact"] = float(np.mean([x[exact_col] for x in sel]))
            if key[0] == "factored" and obs == "heat_capacity_per_spin":
                row["harmonic"] = float(np.mean([x["harmonic_heat_capacity"] / x["n_spins"]
                                                 for x in sel]))
            rows.append(row)
    return rows


def pq_rows(fact: list[dict], merged: list[dict], s: dict) -> list[dict]:
    """P(q/Q̄) pooled over the seeds of each point at D, α = ``dk_alpha`` (every d_k and
    the merged model; density; ``_pq.csv``)."""
    pooled: dict[tuple, dict] = {}
    for model, results in (("factored", fact), ("merged", merged)):
        for r in results:
            j = r["job"]
            if ((model == "factored" and j["sampler"] != "gibbs") or j["D"] != s["D"]
                    or j["alpha"] != s["dk_alpha"]):
                continue
            key = (model, j["D"], j.get("dk", j["D"] + 1), j["alpha"])
            p = pooled.setdefault(key, {"T": r["T"], "counts": 0, "outside": 0})
            p["counts"] = p["counts"] + r["stats"]["counts"]
            p["outside"] = p["outside"] + r["stats"]["outside"]
    rows = []
    width = np.diff(PQ_EDGES)
    for key in sorted(pooled):
        p = pooled[key]
        for k, T in enumerate(p["T"]):
            total = p["counts"][k].sum() + p["outside"][k]
            density = p["counts"][k] / (total * width)
            for b in range(width.size):
                rows.append({"model": key[0], "D": key[1], "dk": key[2], "alpha": key[3],
                             "rung": k, "T": T, "q_low": PQ_EDGES[b],
                             "q_high": PQ_EDGES[b + 1], "density": density[b],
                             "outside": p["outside"][k] / total})
    return rows


def pq_seed_rows(fact: list[dict], merged: list[dict], s: dict) -> list[dict]:
    """P(q/Q̄) of every seed at D, d_k = ``map_dk``, α = ``dk_alpha`` and of the merged
    model there (``_pq_seeds.csv``)."""
    width = np.diff(PQ_EDGES)
    rows = []
    for model, results in (("factored", fact), ("merged", merged)):
        for r in results:
            j = r["job"]
            if (j["D"] != s["D"] or j["alpha"] != s["dk_alpha"]
                    or (model == "factored" and (j["sampler"] != "gibbs"
                                                 or j["dk"] != s["map_dk"]))):
                continue
            counts, outside = r["stats"]["counts"], r["stats"]["outside"]
            for k, T in enumerate(r["T"]):
                density = counts[k] / ((counts[k].sum() + outside[k]) * width)
                for b in range(width.size):
                    rows.append({"model": model, "D": j["D"],
                                 "dk": j.get("dk", j["D"] + 1), "alpha": j["alpha"],
                                 "seed": j["seed"], "rung": k, "T": T,
                                 "peaks": r["stats"]["peaks"][k], "q_low": PQ_EDGES[b],
                                 "q_high": PQ_EDGES[b + 1], "density": density[b]})
    return rows


def run_rows(fact: list[dict], s: dict) -> list[dict]:
    """Per factored run: ground state, ladder, halves and cold-rung checks."""
    rows = []
    for r in fact:
        j, st, g = r["job"], r["stats"], r["ground"]
        zs = np.concatenate([r["halves"][k] for k in CHECKED])
        zs = zs[np.isfinite(zs)]
        excess = st["energy"][0] - g["energy_ground"]
        harm = r["harmonic_c"] * r["T"][0]
        rows.append({
            "sampler": j["sampler"], "D": j["D"], "dk": j["dk"], "alpha": j["alpha"],
            "P": prompts(j["D"], j["alpha"]), "seed": j["seed"],
            "sampler_seed": r["sampler_seed"], "steps": j["steps"],
            "burn_in": j["burn_in"], "records": r["records"], "seconds": r["seconds"],
            "energy_ground": g["energy_ground"],
            "reference_kind": g["factored_reference_kind"], "rank": g["rank"],
            "nuclear_norm_rank": g["nuclear_norm_rank"],
            "distinct_minima": g.get("distinct_minima", 1),
            "swap_min": float(np.min(r["swap"])), "swap_median": float(np.median(r["swap"])),
            "round_trips_min": int(min(r["round_trips"])),
            "round_trips_total": int(sum(r["round_trips"])),
            "halves_max_abs_z": float(np.max(np.abs(zs))) if zs.size else float("nan"),
            "halves_rms_z": float(np.sqrt(np.mean(zs**2))) if zs.size else float("nan"),
            "halves_count": int(zs.size),
            "nuclear_norm_bound": g["nuclear_norm_bound"],
            "cold_T": r["T"][0], "cold_energy": st["energy"][0],
            "cold_energy_excess": excess,
            "cold_energy_excess_stderr": st["energy_stderr"][0],
            "cold_harmonic_excess": harm,
            "cold_excess_z": (excess - harm) / st["energy_stderr"][0],
            "cold_heat_capacity": st["heat_capacity"][0],
            "cold_heat_capacity_stderr": st["heat_capacity_stderr"][0],
            "harmonic_heat_capacity": r["harmonic_c"],
            "cold_heat_capacity_z": (st["heat_capacity"][0] - r["harmonic_c"])
            / st["heat_capacity_stderr"][0],
            "n_spins": r["n_factor"]})
    return rows


def _crossing(T: np.ndarray, y: np.ndarray, level: float) -> float:
    """First T (log-interpolated, from the cold end) where y falls below ``level``."""
    below = np.flatnonzero(y < level)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    k = below[0]
    f = (y[k - 1] - level) / (y[k - 1] - y[k])
    return float(np.exp(np.log(T[k - 1]) + f * (np.log(T[k]) - np.log(T[k - 1]))))


def crossover_rows(rungs: list[dict]) -> list[dict]:
    """Per point: T where ⟨q⟩/Q̄ = ½ and where g = 0 (per seed, then mean ± s.e.), and
    the heat-capacity maximum (``_crossover.csv``)."""
    groups: dict[tuple, dict[int, list[dict]]] = {}
    for r in rungs:
        key = (r["model"], r["sampler"], r["D"], r["dk"], r["alpha"])
        groups.setdefault(key, {}).setdefault(r["seed"], []).append(r)
    rows = []
    for key in sorted(groups):
        per_seed = {"T_half": [], "T_binder_zero": [], "T_heat_peak": [],
                    "heat_peak_per_spin": [], "bimodality_max": [], "T_bimodality_max": [],
                    "T_half_exact": [], "T_binder_zero_exact": []}
        two_peak_T: list[float] = []
        for sel in groups[key].values():
            sel = sorted(sel, key=lambda x: x["rung"])
            T = np.array([x["T"] for x in sel])
            c = np.array([x["heat_capacity_per_spin"] for x in sel])
            per_seed["T_half"].append(_crossing(T, np.array([x["overlap_ratio"]
                                                              for x in sel]), 0.5))
            per_seed["T_binder_zero"].append(_crossing(T, np.array([x["binder"]
                                                                     for x in sel]), 0.0))
            per_seed["T_heat_peak"].append(float(T[np.argmax(c)]))
            per_seed["heat_peak_per_spin"].append(float(np.max(c)))
            bc = np.array([x["bimodality"] for x in sel])
            per_seed["bimodality_max"].append(float(np.nanmax(bc)))
            per_seed["T_bimodality_max"].append(float(T[np.nanargmax(bc)]))
            two_peak_T += [float(t) for t, x in zip(T, sel, strict=True) if x["peaks"] >= 2]
            if key[0] == "merged":
                per_seed["T_half_exact"].append(_crossing(
                    T, np.array([x["exact_overlap_ratio"] for x in sel]), 0.5))
                per_seed["T_binder_zero_exact"].append(_crossing(
                    T, np.array([x["exact_binder"] for x in sel]), 0.0))
        row = {"model": key[0], "sampler": key[1], "D": key[2], "dk": key[3],
               "alpha": key[4], "seeds": len(groups[key]),
               "seeds_two_peaks": sum(any(x["peaks"] >= 2 for x in sel)
                                      for sel in groups[key].values()),
               "T_two_peaks_min": min(two_peak_T, default=float("nan")),
               "T_two_peaks_max": max(two_peak_T, default=float("nan"))}
        for name, v in per_seed.items():
            if not v:
                continue
            a = np.log10(np.array(v, dtype=float)) if name.startswith("T_") else np.array(v)
            n = int(np.isfinite(a).sum())
            mean = float(np.nanmean(a)) if n else float("nan")
            sd = float(np.nanstd(a, ddof=1)) if n > 1 else float("nan")
            stem = f"log10_{name}" if name.startswith("T_") else name
            row.update({stem: mean, f"{stem}_sd": sd,
                        f"{stem}_sem": sd / math.sqrt(n) if n > 1 else float("nan"),
                        f"{stem}_seeds": n})
        rows.append(row)
    return rows


def check_rows(fact: list[dict]) -> list[dict]:
    """MALA + replica exchange against the heat bath at the check point, per rung."""
    mala = [r for r in fact if r["job"]["sampler"] == "mala"]
    rows = []
    for m in mala:
        j = m["job"]
        ref = next(r for r in fact if r["job"]["sampler"] == "gibbs"
                   and all(r["job"][k] == j[k] for k in ("D", "dk", "alpha", "seed")))
        for k, T in enumerate(m["T"]):
            for name in CHECKED:
                a, sa = m["stats"][name][k], m["stats"][f"{name}_stderr"][k]
                b, sb = ref["stats"][name][k], ref["stats"][f"{name}_stderr"][k]
                rows.append({"D": j["D"], "dk": j["dk"], "alpha": j["alpha"],
                             "seed": j["seed"], "rung": k, "T": T, "observable": name,
                             "mala": a, "mala_stderr": sa, "gibbs": b, "gibbs_stderr": sb,
                             "z": (a - b) / math.hypot(sa, sb) if math.hypot(sa, sb) > 0
                             else float("nan"),
                             "mala_round_trips": int(sum(m["round_trips"])),
                             "gibbs_round_trips": int(sum(ref["round_trips"])),
                             "mala_steps": j["steps"], "gibbs_steps": ref["job"]["steps"]})
    return rows


# =========================================================================== figure
def _series(points: list[dict], obs: str, **where: Any) -> tuple[np.ndarray, ...]:
    sel = sorted((p for p in points if p["observable"] == obs
                  and all(p[k] == v for k, v in where.items())), key=lambda p: p["T"])
    return (np.array([p["T"] for p in sel]), np.array([p["mean"] for p in sel]),
            np.array([p["sem"] for p in sel]),
            np.array([p.get("exact", np.nan) for p in sel], dtype=float),
            np.array([p.get("harmonic", np.nan) for p in sel], dtype=float))


def _log_edges(v: np.ndarray) -> np.ndarray:
    lv = np.log(v)
    if v.size == 1:
        return np.exp([lv[0] - 0.5, lv[0] + 0.5])
    mid = 0.5 * (lv[1:] + lv[:-1])
    return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))


def _pq_panel(ax, pq: list[dict], D: int, dk: int, alpha: float, n_curves: int,
              cmap) -> None:
    """Ridgeline of P(q/Q̄) over T (each curve scaled to its maximum), merged dashed."""
    fact = [p for p in pq if p["model"] == "factored" and p["D"] == D and p["dk"] == dk
            and p["alpha"] == alpha]
    merged = [p for p in pq if p["model"] == "merged" and p["D"] == D
              and p["alpha"] == alpha]
    rungs = sorted({p["rung"] for p in fact})
    if not rungs:
        ax.set_visible(False)
        return
    pick = sorted(set(np.linspace(0, len(rungs) - 1, min(n_curves, len(rungs)))
                      .round().astype(int)))
    temps = {p["rung"]: p["T"] for p in fact}
    lt = np.log10([temps[r] for r in rungs])
    for i, idx in enumerate(pick):
        rung = rungs[idx]
        for rows, style in ((merged, {"color": "0.45", "ls": (0, (2, 1.5)), "lw": 0.8}),
                            (fact, None)):
            sel = sorted((p for p in rows if p["rung"] == rung), key=lambda p: p["q_low"])
            if not sel:
                continue
            x = np.array([0.5 * (p["q_low"] + p["q_high"]) for p in sel])
            y = np.array([p["density"] for p in sel])
            y = np.convolve(y, np.ones(3) / 3, mode="same")   # 3-bin running mean
            y = y / y.max() * 0.9 + i
            if style is None:
                c = cmap((np.log10(temps[rung]) - lt.min()) / max(np.ptp(lt), 1e-12))
                ax.fill_between(x, i, y, color=c, alpha=0.35, lw=0)
                ax.plot(x, y, color=c, lw=1.2)
            else:
                ax.plot(x, y, **style)
        ax.text(1.72, i + 0.1, f"T = {temps[rung]:.0e}", fontsize=6.5, va="bottom",
                ha="right", color="0.25")
    ax.axvline(0, color="0.7", lw=0.6)
    ax.axvline(1, color="0.7", lw=0.6)
    ax.set_xlim(-1.0, 1.75)
    ax.set_yticks([])
    ax.set_xlabel(r"$q/\bar Q$")
    ax.set_ylabel(r"$P(q/\bar Q)$, one curve per $T$")


def _log_axis(ax, values: np.ndarray) -> None:
    """Log x axis with plain tick labels at 0.25, 0.5, 1, 2, 4, … within ``values``."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    ax.set_xscale("log")
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
             if values.min() * 0.8 <= t <= values.max() * 1.25]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{t:g}" for t in ticks]))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _binder_axis(ax) -> None:
    """Binder axis: linear on [−1, 1], logarithmic beyond (hot rungs reach g ≪ −1)."""
    ax.set_yscale("symlog", linthresh=1.0, linscale=2.0)
    ax.set_ylim(-60, 1.15)
    ax.set_yticks([-30, -10, -3, -1, -0.5, 0, 0.5, 1])
    ax.set_yticklabels(["−30", "−10", "−3", "−1", "−0.5", "0", "0.5", "1"])
    ax.axhline(0, color="0.6", lw=0.6)


def _seed_pq_panel(ax, pq_seeds: list[dict], s: dict) -> None:
    """P(q/Q̄) of each seed at the rung where the seeds' P(q) most often has two peaks
    (else the rung of the largest mean bimodality), merged at the same rung dashed."""
    D, dk, a0 = s["D"], s["map_dk"], s["dk_alpha"]
    fact = [p for p in pq_seeds if p["model"] == "factored"]
    if not fact:
        ax.set_visible(False)
        return
    rungs = sorted({int(p["rung"]) for p in fact})
    seeds = sorted({int(p["seed"]) for p in fact})
    two = {k: sum(1 for p in fact if p["rung"] == k and p["peaks"] >= 2
                  and p["q_low"] == PQ_EDGES[0]) for k in rungs}
    best = max(rungs, key=lambda k: (two[k], k))
    T = next(p["T"] for p in fact if p["rung"] == best)
    cols = pyplot().get_cmap("tab10")
    for i, seed in enumerate(seeds):
        for model, style in (("factored", {"lw": 1.3, "color": cols(i)}),
                             ("merged", {"lw": 0.8, "color": cols(i), "ls": (0, (2, 1.5))})):
            sel = sorted((p for p in pq_seeds if p["model"] == model and p["seed"] == seed
                          and p["rung"] == best), key=lambda p: p["q_low"])
            if not sel:
                continue
            x = np.array([0.5 * (p["q_low"] + p["q_high"]) for p in sel])
            y = np.convolve([p["density"] for p in sel], np.ones(3) / 3, mode="same")
            lab = (f"seed {seed}: {int(sel[0]['peaks'])} peak(s)" if model == "factored"
                   else None)
            ax.plot(x, y, label=lab, **style)
    ax.set_xlim(-1.0, 1.75)
    ax.set_xlabel(r"$q/\bar Q$")
    ax.set_ylabel(r"$P(q/\bar Q)$ (density)")
    ax.legend(loc="upper left", frameon=False, title=f"$d_k={dk}$, $D={D}$, "
              f"$\\alpha={a0:g}$", title_fontsize=7.5)
    ax.set_title(f"(m) P(q) per seed, $T={T:.1e}$; dashed: merged", fontsize=8.5)


def make_figure(points: list[dict], pq: list[dict], pq_seeds: list[dict],
                checks: list[dict], s: dict, out, stem: str) -> None:
    plt = pyplot()
    from matplotlib.colors import Normalize, TwoSlopeNorm

    D, a0, dk_map = s["D"], s["dk_alpha"], s["map_dk"]
    fig, axes = plt.subplots(4, 4, figsize=(15.5, 14.5), constrained_layout=True)
    tcmap = plt.get_cmap("plasma_r")
    dks = sorted({int(p["dk"]) for p in points if p["model"] == "factored"
                  and p["D"] == D and p["alpha"] == a0 and p["sampler"] == "gibbs"})
    shown = sorted([dk for dk in dict.fromkeys((1, 2, D + 1, *dks)) if dk in dks][:4])
    # row 1: P(q) over T for up to four d_k
    for i in range(4):
        ax = axes[0, i]
        if i >= len(shown):
            ax.set_visible(False)
            continue
        _pq_panel(ax, pq, D, shown[i], a0, 9, tcmap)
        ax.set_title(f"({'abcd'[i]}) P(q), factored $d_k={shown[i]}$; dashed: merged",
                     fontsize=8.5)
    # row 2: curves against T for every d_k, merged as reference
    kcol = plt.get_cmap("viridis")
    specs = (("binder", r"Binder $g=\frac{1}{2}(3-\langle q^4\rangle/\langle q^2\rangle^2)$"),
             ("heat_capacity_per_spin", r"heat capacity per spin $C/n_f$"),
             ("overlap_ratio", r"overlap ratio $\langle q\rangle/\bar Q$"),
             ("bimodality", r"bimodality $(\gamma^2+1)/\kappa$ of $P(q)$"))
    for col, (obs, label) in enumerate(specs):
        ax = axes[1, col]
        for i, dk in enumerate(dks):
            T, y, se, _, harm = _series(points, obs, model="factored", sampler="gibbs",
                                        D=D, dk=dk, alpha=a0)
            c = kcol(i / max(len(dks) - 1, 1) * 0.9)
            ax.errorbar(T, y, se, color=c, marker="o", ms=2.3, lw=1, capsize=1.5,
                        label=f"factored $d_k={dk}$")
            if obs == "heat_capacity_per_spin" and np.isfinite(harm).any():
                ax.plot([T[0] / 4, T[0] / 1.3], [harm[0]] * 2, color=c, lw=2.5,
                        solid_capstyle="butt")
        T, y, se, ex, _ = _series(points, obs, model="merged", D=D, alpha=a0)
        if obs == "bimodality":
            ax.errorbar(T, y, se, color="k", ls="--", lw=1, capsize=1.5,
                        label="merged (exact draws)")
            for level, text in ((1 / 3, "1/3: Gaussian"), (5 / 9, "5/9: uniform")):
                ax.axhline(level, color="0.6", lw=0.6, ls=":")
                ax.text(T[-1], level + 0.01, text, fontsize=6.5, ha="right", color="0.4")
            ax.set_ylim(0, 1)
            ax.legend(loc="upper left", frameon=False, fontsize=6.5)
        else:
            ax.plot(T, ex, color="k", ls="--", lw=1.1, label="merged (exact)")
        if obs == "binder":
            _binder_axis(ax)
            ax.legend(loc="lower left", frameon=False)
        if obs == "heat_capacity_per_spin":
            ax.axhline(0.25, color="0.6", lw=0.6, ls=":")
            ax.text(T[-1], 0.255, r"quartic limit $n_f/4$", fontsize=6.5, ha="right",
                    va="bottom", color="0.4")
            ax.set_xlim(T[0] / 6, T[-1] * 1.6)
        if obs == "overlap_ratio":
            ax.axhline(0.5, color="0.6", lw=0.6, ls=":")
            ax.set_ylim(-0.05, 1.05)
        ax.set_xscale("log")
        ax.set_xlabel(r"temperature $T$")
        ax.set_ylabel(label)
        short = {"binder": "Binder cumulant", "heat_capacity_per_spin":
                 "heat capacity (thick: harmonic $C_0/n_f$)", "overlap_ratio":
                 "overlap ratio", "bimodality": "bimodality coefficient"}[obs]
        ax.set_title(f"({'efgh'[col]}) {short}, $D={D}$, $\\alpha={a0:g}$", fontsize=8.5)
    # row 3: (α, T) maps at d_k = map_dk
    maps = (("binder", r"Binder $g$", TwoSlopeNorm(0.0, -1.0, 1.0), "RdBu_r"),
            ("heat_capacity_per_spin", r"$C/n_f$", None, "magma"),
            ("bimodality", r"bimodality of $P(q)$", Normalize(0.1, 0.8), "cividis"),
            ("overlap_ratio", r"$\langle q\rangle/\bar Q$", Normalize(0, 1), "viridis"))
    for col, (obs, label, norm, cmap) in enumerate(maps):
        ax = axes[2, col]
        a, T, Z = _map(points, "factored", D, dk_map, obs, "mean")
        if a.size == 0:
            ax.set_visible(False)
            continue
        if norm is None:
            norm = Normalize(0.25, max(0.6, float(np.nanmax(Z))))
        mesh = ax.pcolormesh(_log_edges(a), _log_edges(T), np.ma.masked_invalid(Z),
                             cmap=cmap, norm=norm, shading="flat", rasterized=True)
        cb = fig.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06,
                          extend="both" if obs in ("binder", "bimodality") else "neither")
        cb.set_label(label)
        for model, style in (("factored", "-"), ("merged", "--")):
            am, Tm, Zq = _map(points, model, D, dk_map if model == "factored" else D + 1,
                              "overlap_ratio", "exact" if model == "merged" else "mean")
            if am.size > 1 and np.nanmin(Zq) < 0.5 < np.nanmax(Zq):
                ax.contour(am, Tm, Zq, levels=[0.5], colors="w", linestyles=style,
                           linewidths=1.3)
        ax.axvline((D + 1) / D, color="w", ls=(0, (1.5, 1.5)), lw=1.0)
        _log_axis(ax, a)
        ax.set_yscale("log")
        ax.set_xlabel(r"task diversity $\alpha=P/D^2$")
        ax.set_ylabel(r"temperature $T$")
        ax.set_title(f"({'ijkl'[col]}) factored $d_k={dk_map}$, $D={D}$: {label}",
                     fontsize=8.5)
    # row 4: per-seed P(q), sizes, sampler check
    _seed_pq_panel(axes[3, 0], pq_seeds, s)
    sizes = sorted({int(p["D"]) for p in points if p["model"] == "factored"
                    and p["dk"] == dk_map and p["alpha"] == a0 and p["sampler"] == "gibbs"})
    scol = plt.get_cmap("cividis")
    for col, obs in ((1, "binder"), (2, "heat_capacity_per_spin")):
        ax = axes[3, col]
        for i, d in enumerate(sizes):
            T, y, se, _, _ = _series(points, obs, model="factored", sampler="gibbs", D=d,
                                     dk=dk_map, alpha=a0)
            c = scol(i / max(len(sizes) - 1, 1) * 0.85)
            ax.errorbar(T, y, se, color=c, marker="o", ms=2.3, lw=1, capsize=1.5,
                        label=f"factored $D={d}$ ($P={prompts(d, a0)}$)")
            T, _, _, ex, _ = _series(points, obs, model="merged", D=d, alpha=a0)
            ax.plot(T, ex, color=c, ls="--", lw=0.9)
        ax.set_xscale("log")
        ax.set_xlabel(r"temperature $T$")
        if obs == "binder":
            _binder_axis(ax)
            ax.set_ylabel(r"Binder $g$")
            ax.legend(loc="lower left", frameon=False)
            ax.set_title(f"(n) sizes: Binder, $d_k={dk_map}$, $\\alpha={a0:g}$; dashed: "
                         "merged", fontsize=8.5)
        else:
            ax.axhline(0.25, color="0.6", lw=0.6, ls=":")
            ax.set_ylabel(r"heat capacity per spin $C/n_f$")
            ax.set_title(f"(o) sizes: heat capacity, $d_k={dk_map}$, $\\alpha={a0:g}$; "
                         "dashed: merged", fontsize=8.5)
    ax = axes[3, 3]
    if checks:
        marks = {"energy": "o", "heat_capacity": "s", "binder": "^", "overlap_ratio": "D"}
        for obs, m in marks.items():
            sel = sorted((c for c in checks if c["observable"] == obs), key=lambda c: c["T"])
            ax.plot([c["T"] for c in sel], [c["z"] for c in sel], marker=m, ls="-", lw=0.7,
                    ms=3.5, label={"energy": r"$\langle E\rangle$", "heat_capacity": "$C$",
                                   "binder": "$g$",
                                   "overlap_ratio": r"$\langle q\rangle/\bar Q$"}[obs])
        for level in (-2, 2):
            ax.axhline(level, color="0.6", lw=0.6, ls=":")
        ax.axhline(0, color="0.6", lw=0.6)
        c0 = checks[0]
        ax.set_xscale("log")
        ax.set_xlabel(r"temperature $T$")
        ax.set_ylabel("z = (MALA − heat bath) / combined s.e.")
        top = max(5.0, 1.2 * float(np.nanmax(np.abs([c["z"] for c in checks]))))
        ax.set_ylim(-top, 1.5 * top)
        ax.legend(loc="upper center", frameon=False, ncols=4,
                  title=f"MALA {int(c0['mala_steps'])} sweeps, heat bath "
                  f"{int(c0['gibbs_steps'])}", title_fontsize=7.5)
        ax.set_title(f"(p) MALA vs heat bath (both + RE): $d_k={int(c0['dk'])}$, seed "
                     f"{int(c0['seed'])}", fontsize=8.5)
    else:
        ax.set_visible(False)
    fig.suptitle(
        f"Factored attention $W=W_q^\\top W_k$ sampled by heat bath + replica exchange: "
        f"$N={s['N_per_D']}D$, $\\lambda={s['lam']:g}$, {s['copies']} copies per rung, "
        f"{s['seeds']} seed(s) per point (error bars ± 1 s.e. over seeds; one seed: the "
        "run's own error).\nP(q) curves: each scaled to its maximum, cold at the bottom. "
        "Maps: white $\\langle q\\rangle/\\bar Q=\\frac{1}{2}$ (solid factored, dashed "
        "merged), dotted $\\alpha=(D+1)/D$.", fontsize=9, color="0.2")
    save(fig, out, stem)


def _map(points: list[dict], model: str, D: int, dk: int, obs: str, field: str):
    sel = [p for p in points if p["model"] == model and p["D"] == D and p["dk"] == dk
           and p["observable"] == obs and (model == "merged" or p["sampler"] == "gibbs")]
    a = np.array(sorted({p["alpha"] for p in sel}))
    T = np.array(sorted({p["T"] for p in sel}))
    Z = np.full((T.size, a.size), np.nan)
    for p in sel:
        Z[np.searchsorted(T, p["T"]), np.searchsorted(a, p["alpha"])] = p.get(field, np.nan)
    return a, T, Z


# =========================================================================== main
def report(rungs: list[dict], runs: list[dict], crossover: list[dict], checks: list[dict],
           s: dict) -> None:
    """The numbers the README quotes, on stdout."""
    gibbs = [r for r in runs if r["sampler"] == "gibbs"]
    z = np.array([r["halves_rms_z"] for r in gibbs])
    print(f"equilibration ({len(gibbs)} heat-bath runs): swap acceptance min "
          f"{min(r['swap_min'] for r in gibbs):.3f}, round trips per copy min "
          f"{min(r['round_trips_min'] for r in gibbs)}, halves: mean rms z {np.mean(z):.2f}"
          f", largest |z| {max(r['halves_max_abs_z'] for r in gibbs):.2f} of "
          f"{sum(r['halves_count'] for r in gibbs)}")
    for dk in sorted({r["dk"] for r in gibbs}):
        sel = [r for r in gibbs if r["dk"] == dk]
        print(f"  d_k={dk}: round trips per copy {min(r['round_trips_min'] for r in sel)}"
              f"–{max(r['round_trips_total'] for r in sel) // s['copies']}, swap min "
              f"{min(r['swap_min'] for r in sel):.3f}")
    cz = np.array([r["cold_excess_z"] for r in gibbs])
    hz = np.array([r["cold_heat_capacity_z"] for r in gibbs])
    print(f"coldest rung vs harmonic: (<E> - E_ground - C0 T)/se rms "
          f"{np.sqrt(np.mean(cz**2)):.2f}, max |z| {np.max(np.abs(cz)):.2f}; (C - C0)/se "
          f"rms {np.sqrt(np.mean(hz**2)):.2f}, max |z| {np.max(np.abs(hz)):.2f}")
    if checks:
        zc = np.array([c["z"] for c in checks], dtype=float)
        zc = zc[np.isfinite(zc)]
        print(f"MALA vs heat bath: {zc.size} z-scores, rms {np.sqrt(np.mean(zc**2)):.2f}, "
              f"max |z| {np.max(np.abs(zc)):.2f}; round trips "
              f"{checks[0]['mala_round_trips']} (MALA) / {checks[0]['gibbs_round_trips']}")
    merged = [r for r in rungs if r["model"] == "merged"]
    for obs in ("heat_capacity", "binder", "overlap_ratio"):
        exact = [0.5 * r["n_spins"] if obs == "heat_capacity" else r[f"exact_{obs}"]
                 for r in merged]
        zm = np.array([(r[obs] - e) / r[f"{obs}_stderr"] for r, e in
                       zip(merged, exact, strict=True)])
        print(f"merged exact draws vs closed form, {obs}: {zm.size} z-scores, rms "
              f"{np.sqrt(np.mean(zm**2)):.2f}, max |z| {np.max(np.abs(zm)):.2f}")
    peaks = np.array([r["peaks"] for r in merged])
    print(f"merged P(q) with >= 2 peaks: {int(np.sum(peaks >= 2))} of {peaks.size} "
          "(seed x rung)")
    for c in crossover:
        if c["sampler"] == "mala":
            continue
        v = {k: c.get(k, np.nan) for k in (
            "log10_T_half", "log10_T_half_sem", "log10_T_binder_zero",
            "log10_T_binder_zero_sem", "heat_peak_per_spin", "heat_peak_per_spin_sem",
            "log10_T_heat_peak", "bimodality_max", "bimodality_max_sem")}
        print(f"  {c['model']:8s} D={c['D']} dk={c['dk']} alpha={c['alpha']:g}: "
              f"log10 T(q/Q=1/2) {v['log10_T_half']:.2f} ± {v['log10_T_half_sem']:.2f}, "
              f"log10 T(g=0) {v['log10_T_binder_zero']:.2f} ± "
              f"{v['log10_T_binder_zero_sem']:.2f}, C/n max {v['heat_peak_per_spin']:.3f} "
              f"± {v['heat_peak_per_spin_sem']:.3f} at log10 T {v['log10_T_heat_peak']:.2f}"
              f", BC max {v['bimodality_max']:.2f} ± {v['bimodality_max_sem']:.2f}, two "
              f"peaks in {c['seeds_two_peaks']}/{c['seeds']} seeds (T "
              f"{c['T_two_peaks_min']:.1e}–{c['T_two_peaks_max']:.1e})")


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "D = 4, fewer points, 2 seeds, 5000 sweeps (~2 min)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1 (got {args.jobs})")
    if args.seeds is not None and args.seeds < 1:
        ap.error(f"--seeds must be >= 1 (got {args.seeds})")
    s, out, stem = setup(args, NAME, FULL, QUICK, TINY)
    files = {k: out / f"{stem}_{k}.csv" for k in ("points", "pq", "pq_seeds", "rungs",
                                                   "runs", "crossover", "check")}
    if args.replot:
        make_figure(read_csv(files["points"]), read_csv(files["pq"]),
                    read_csv(files["pq_seeds"]), read_csv(files["check"]), s, out, stem)
        print(f"redrew {out}/{stem}.png, .pdf")
        return
    t0 = time.perf_counter()
    fjobs, mjobs = factored_jobs(s), merged_jobs(s)
    print(f"{len(fjobs)} factored runs ({len(temperatures(s))} rungs × {s['copies']} "
          f"copies, {s['steps']} sweeps), {len(mjobs)} merged references, "
          f"{args.jobs} process(es)", flush=True)
    fact = pmap(run_factored, fjobs, args.jobs, "factored runs")
    t_fact = time.perf_counter() - t0
    merged = pmap(run_merged, mjobs, args.jobs, "merged references")
    rungs = rung_rows(fact, merged, s)
    points = point_rows(rungs)
    pq = pq_rows(fact, merged, s)
    pq_seeds = pq_seed_rows(fact, merged, s)
    runs = run_rows(fact, s)
    crossover = crossover_rows(rungs)
    checks = check_rows(fact)
    for key, rows in (("points", points), ("pq", pq), ("pq_seeds", pq_seeds),
                      ("rungs", rungs), ("runs", runs), ("crossover", crossover),
                      ("check", checks)):
        write_csv(files[key], rows)
    make_figure(points, pq, pq_seeds, checks, s, out, stem)
    report(rungs, runs, crossover, checks, s)
    print(f"{elapsed(t0)} on {args.jobs} process(es) (factored runs {t_fact:.0f} s, "
          f"{sum(r['seconds'] for r in fact):.0f} s summed over runs); wrote {out}/{stem}"
          ".png, .pdf and the CSV files")


if __name__ == "__main__":
    main()
