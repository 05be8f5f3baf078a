"""Where a trained transformer sits in the sampled Boltzmann distribution (docs/model.md §3).

:func:`compare_run_and_training` takes a run file (``spinicl sample``, format
``spinicl-run``) and a training file (``spinicl train``, format ``spinicl-training``)
made from the same prompts and places the trained weights among the samples, one
temperature at a time:

* the **percentile** of the trained model's energy, training MSE and test MSEs among the
  post-burn-in samples of that temperature (all copies pooled): the fraction of samples
  strictly below the trained value, ties counted half, in %;
* its **z-score** (x − mean)/std against the same samples (std with ddof = 1);
* the **relative distance** ‖W − ⟨W⟩‖_F / ‖⟨W⟩‖_F of the trained effective weights W to
  the Boltzmann mean ⟨W⟩: the mean of the post-burn-in weight snapshots when the run
  has them (``mean_source = "snapshots"``), else the exact mean m = A⁻¹h of the merged
  model (``"exact"``: the Boltzmann law of the merged model is Gaussian with mean m at
  every temperature), else nothing (``"none"``: a factored run without snapshots).
  Reported beside it: the estimated error of the sampled mean (from the spread of the
  per-copy means; a trained W equal to ⟨W⟩ sits at about that distance) and the RMS
  relative distance of the samples themselves to the mean, the scale of thermal
  fluctuations.

The trained energy is the run's Hamiltonian (the run's λ) evaluated at the trained raw
parameters θ (W for the merged model; W_q, W_k for the factored one, whose energy is not
a function of W alone). The two files may use different λ: both are reported and a
warning is added. The task entries that make the prompts (D, N, P, K, seed, σ's, ρ, the
ρ variant and the test-set size) and the model (and d_k) must agree.

:func:`load_pair` reads and checks the two files; the paper's Fig. 2 drawn from such a
pair is :func:`spinicl.plots.fig2.plot_weights_and_losses`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinicl.config import ConfigError, SampleConfig, TaskConfig
from spinicl.io.run import StoreError, open_run, read_attrs
from spinicl.io.training_file import read_training
from spinicl.models import build_model, mse
from spinicl.prompts import make_task
from spinicl.registry import MODELS
from spinicl.training import ridge_ground_state

#: Task entries that decide the prompts (``lam`` does not: it may differ).
PROMPT_KEYS = ("D", "N", "P", "K", "seed", "sigma_x", "sigma_w", "sigma_eps", "rho",
               "rho_variant", "test_prompts")

#: Observables placed among the samples (traces of the run file).
OBSERVABLES = ("energy", "train_mse", "test_mse_novel", "test_mse_in_distribution")

_RUN_ALLOWED = "a spinicl run file (format=spinicl-run)"
_TRAIN_ALLOWED = "a spinicl training file (format=spinicl-training)"


# =========================================================================== loading
@dataclass
class BoltzmannMeans:
    """The Boltzmann mean of the effective weights per temperature (see
    :func:`boltzmann_means`)."""

    means: np.ndarray | None   # (T, (D+1)²) or None
    source: str                # "snapshots" | "exact" | "none"
    exact: np.ndarray | None   # ((D+1)²,) m = A⁻¹h at the run's λ (merged), else None
    spread: np.ndarray         # (T,) RMS of ‖W_s − ⟨W⟩‖/‖⟨W⟩‖ over the samples
    noise: np.ndarray          # (T,) estimated error ‖⟨W⟩_est − ⟨W⟩‖/‖⟨W⟩‖
    n_samples: int             # weight samples behind ⟨W⟩ per temperature (0: exact)


@dataclass
class Pair:
    """A validated run file and training file, with the run's Hamiltonian rebuilt."""

    run_path: str
    train_path: str
    cfg: SampleConfig
    attrs: dict[str, Any]
    temperatures: np.ndarray        # (T,)
    steps: np.ndarray               # (records,)
    traces: dict[str, np.ndarray]   # name -> (records, T, M) (post-burn-in selection later)
    theory: dict[str, np.ndarray]   # name -> (T,)
    snap_range: tuple[int, int] | None  # post-burn-in snapshots [start, stop) of the file
    training: dict[str, Any]
    task: Any
    model: Any
    warnings: list[str]
    means: BoltzmannMeans | None = None



def _factor_rank(model: str, dk: int | None, D: int) -> int | None:
    """The rank d_k of a model's factors (default D+1), None for a model without factors
    (a Gaussian one: W itself is the spin)."""
    return None if MODELS[model].gaussian else (dk or D + 1)

def load_pair(run_path: str | os.PathLike, train_path: str | os.PathLike) -> Pair:
    """Read a run file and a training file, check they share prompts and model, rebuild
    the run's Hamiltonian and compute the Boltzmann means (:func:`boltzmann_means`).

    Raises
    ------
    ConfigError
        ``run`` or ``train``, as :func:`compare_run_and_training`.
    """
    run_path, train_path = os.fspath(run_path), os.fspath(train_path)
    try:
        f = open_run(run_path)
    except StoreError as exc:
        note = str(exc).split(": ", 1)[-1]
        raise ConfigError("run", _RUN_ALLOWED, run_path, note=note) from None
    with f:
        try:
            attrs = read_attrs(f)
            cfg = SampleConfig.from_dict(attrs["config"])
            temperatures = np.asarray(f["ladder/T"][...], dtype=float)
            names = [k for k in OBSERVABLES if f"trace/{k}" in f]
            if "energy" not in names or "trace/step" not in f:
                raise KeyError("trace/energy or trace/step")
            n = min([f["trace/step"].shape[0]] + [f[f"trace/{k}"].shape[0] for k in names])
            steps = np.asarray(f["trace/step"][:n])
            extra = ["distance_to_ground_state"] if "trace/distance_to_ground_state" in f \
                else []
            traces = {k: np.asarray(f[f"trace/{k}"][:n], dtype=float) for k in names + extra}
            theory = {k: np.asarray(f[f"theory/{k}"][...], dtype=float)
                      for k in f.get("theory", [])}
            snap_range = None
            if "snapshots/W" in f and cfg.snapshot_every:
                # snapshot j was taken with record j·snapshot_every (runner._loop)
                every = cfg.snapshot_every
                n_snap = min(f["snapshots/W"].shape[0], -(-n // every))
                snap_steps = steps[np.arange(n_snap) * every]
                keep = np.flatnonzero(snap_steps > cfg.burn_in)
                if keep.size:
                    snap_range = (int(keep[0]), int(n_snap))
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:
            raise ConfigError("run", _RUN_ALLOWED, run_path,
                              note=f"corrupt: {type(exc).__name__}: {exc}"[:200]) from None
    if temperatures.shape != (len(cfg.temperatures),) or traces["energy"].ndim != 3:
        raise ConfigError("run", _RUN_ALLOWED, run_path, note="corrupt: inconsistent shapes")
    try:
        training = read_training(train_path)
    except ConfigError as exc:
        raise ConfigError("train", exc.allowed, exc.got, exc.note) from None

    run_task, train_task = cfg.task.to_dict(), training["task_config"]
    diff = [k for k in PROMPT_KEYS if run_task.get(k) != train_task.get(k)]
    if diff:
        what = ", ".join(f"{k}: run {run_task.get(k)!r} vs train {train_task.get(k)!r}"
                         for k in diff)
        raise ConfigError("train", "a training file made from the run's prompts (same task "
                          "config and seed)", train_path, note=f"they differ in {what}")
    D = cfg.task.D
    run_dk = _factor_rank(cfg.model, cfg.dk, D)
    train_dk = _factor_rank(training["model"], training["dk"], D)
    if (cfg.model, run_dk) != (training["model"], train_dk):
        run_model = _model_text(cfg.model, run_dk)
        raise ConfigError("train", f"a training file of the run's model ({run_model})",
                          train_path, note="it trained the "
                          f"{_model_text(training['model'], train_dk)} model")
    warnings = []
    lam_run, lam_train = cfg.task.lam, training["lam"]
    if not math.isclose(lam_run, lam_train, rel_tol=1e-12, abs_tol=0.0):
        warnings.append(f"different weight decay: the run samples E at lambda = {lam_run:g}, "
                        f"the model was trained at lambda = {lam_train:g}; energies here "
                        f"use the run's lambda")
    task = make_task(TaskConfig(**run_task), keep_test_context=False)
    model = build_model(task, cfg.model, dk=cfg.dk, representation=cfg.representation,
                        memory_budget=cfg.memory_budget)
    if training["theta"].shape != (model.n_spins,):
        raise ConfigError("train", _TRAIN_ALLOWED, train_path,
                          note=f"corrupt: theta has shape {training['theta'].shape}, the "
                          f"run's model has {model.n_spins} parameters")
    pair = Pair(run_path, train_path, cfg, attrs, temperatures, steps, traces, theory,
                 snap_range, training, task, model, warnings)
    try:
        pair.means = boltzmann_means(pair)
    except (KeyError, TypeError, ValueError, OSError, StoreError) as exc:
        raise ConfigError("run", _RUN_ALLOWED, run_path,
                          note=f"corrupt snapshots: {type(exc).__name__}: {exc}"[:200]
                          ) from None
    return pair


def _model_text(model: str, dk: int | None) -> str:
    return model if dk is None else f"{model}, d_k = {dk}"


def post_burn_in(pair: Pair) -> np.ndarray:
    """(records,) True for the records after burn-in."""
    return pair.steps > pair.cfg.burn_in


# =========================================================================== statistics
def percentile_of(samples: np.ndarray, x: float) -> float:
    """Percentile of ``x`` among ``samples``: 100·(#{s < x} + ½#{s = x}) / n.

    Parameters
    ----------
    samples : ndarray, shape (n,)
        Finite values (non-finite ones are dropped).
    x : float

    Returns
    -------
    float
        In [0, 100]; NaN when no finite sample or ``x`` is not finite.
    """
    s = np.asarray(samples, dtype=float).ravel()
    s = s[np.isfinite(s)]
    if not s.size or not math.isfinite(x):
        return float("nan")
    return 100.0 * (np.count_nonzero(s < x) + 0.5 * np.count_nonzero(s == x)) / s.size


def z_score(samples: np.ndarray, x: float) -> float:
    """(x − mean)/std of the finite ``samples`` (ddof = 1); NaN when undefined."""
    s = np.asarray(samples, dtype=float).ravel()
    s = s[np.isfinite(s)]
    if s.size < 2 or not math.isfinite(x):
        return float("nan")
    sd = float(np.std(s, ddof=1))
    return (x - float(np.mean(s))) / sd if sd > 0 else float("nan")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    nb = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / nb if nb > 0 else float("nan")


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite_or_none(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite_or_none(x) for x in v]
    return v


def boltzmann_means(pair: Pair, chunk_bytes: int = 1 << 26) -> BoltzmannMeans:
    """Mean weights per temperature, the samples' spread around them and their error.

    With snapshots (S per copy, M copies) the mean is the average of all S·M effective
    weights, read in chunks of about ``chunk_bytes``. Its error is estimated from the
    spread of the per-chain means W̄_c: ‖W̄ − ⟨W⟩‖² ≈ Σ_c ‖W̄_c − W̄‖² / (C(C−1)), the C = M
    copies being independent chains (autocorrelation included); with one copy, four
    consecutive batches of the snapshot series serve as the chains (batch means). The
    spread is RMS_s ‖W_s − W̄‖ = (mean_s ‖W_s‖² − ‖W̄‖²)^½, relative to ‖W̄‖. The exact
    mean (merged model, no snapshots) has no error; its spread comes from the
    ``distance_to_ground_state`` trace (‖W − m‖²/n per sample).
    """
    model = pair.model
    T = pair.temperatures.size
    exact = ridge_ground_state(model) if model.gaussian else None
    spread = np.full(T, np.nan)
    noise = np.full(T, np.nan)
    if pair.snap_range is not None:
        start, stop = pair.snap_range
        S = stop - start
        with open_run(pair.run_path) as f:
            ds = f["snapshots/W"]
            _, T_, M, n = ds.shape
            nw = (model.D + 1) ** 2
            C = M if M >= 2 else min(4, S)
            sums = np.zeros((T, max(C, 1), nw))
            counts = np.zeros(max(C, 1))
            sumsq = np.zeros(T)
            block = max(1, chunk_bytes // (8 * T_ * M * max(n, nw)))
            for a in range(start, stop, block):
                b = min(stop, a + block)
                X = np.asarray(ds[a:b], dtype=float)
                W = model.effective_weights(X.reshape(-1, n)).reshape(b - a, T_, M, nw)
                sumsq += np.einsum("stmi,stmi->t", W, W)
                if M >= 2:
                    sums += W.sum(axis=0)
                    counts += b - a
                else:
                    batch = (np.arange(a, b) - start) * max(C, 1) // S
                    for c in np.unique(batch):
                        sel = batch == c
                        sums[:, c] += W[sel, :, 0].sum(axis=0)
                        counts[c] += np.count_nonzero(sel)
        means = sums.sum(axis=1) / (S * M)
        norms = np.linalg.norm(means, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.maximum(sumsq / (S * M) - norms**2, 0.0)
            spread = np.where(norms > 0, np.sqrt(var) / norms, np.nan)
            if C >= 2:
                chains = sums / counts[None, :, None] - means[:, None, :]
                ss = np.einsum("tci,tci->t", chains, chains)
                noise = np.where(norms > 0, np.sqrt(ss / (C * (C - 1))) / norms, np.nan)
        return BoltzmannMeans(means, "snapshots", exact, spread, noise, S * M)
    if exact is not None:
        d2 = pair.traces.get("distance_to_ground_state")  # ‖W − m‖²/n per sample
        nm = float(np.linalg.norm(exact))
        if d2 is not None and nm > 0:
            keep = post_burn_in(pair)
            for k in range(T):
                x = d2[keep, k].ravel()
                x = x[np.isfinite(x)]
                if x.size:
                    spread[k] = math.sqrt(float(np.mean(x)) * exact.size) / nm
        return BoltzmannMeans(np.broadcast_to(exact, (T, exact.size)), "exact", exact, spread,
                      np.zeros(T), 0)
    return BoltzmannMeans(None, "none", None, spread, noise, 0)


# =========================================================================== compare
def compare_run_and_training(run_path: str | os.PathLike,
                             train_path: str | os.PathLike) -> dict[str, Any]:
    """Place a trained model in the sampled Boltzmann distribution, per temperature.

    Parameters
    ----------
    run_path : str or PathLike
        A run file (format ``spinicl-run``, complete or not).
    train_path : str or PathLike
        A training file (format ``spinicl-training``) from the same prompts and model.

    Returns
    -------
    dict
        JSON-ready (non-finite numbers are None):

        ``run``, ``train`` (paths); ``model``, ``dk``; ``lam_run``, ``lam_train``;
        ``warnings`` (list of str: e.g. different λ); ``mean_source`` (``"snapshots"``,
        ``"exact"`` or ``"none"``); ``burn_in``; ``temperatures`` (list, ascending);
        ``trained``: the trained model's ``energy`` (run's Hamiltonian, run's λ),
        ``energy_train_lam`` (E at the training λ, from the file), ``train_mse``,
        ``test_mse_novel``, ``test_mse_in_distribution``, ``relative_distance_to_m``
        (merged: ‖W − m‖/‖m‖ at the run's λ), ``optimizer``, ``epochs_run``;
        ``rows``: one dict per temperature with ``T``, ``n_samples`` (post-burn-in
        records × copies), for each observable X of ``energy``, ``train_mse``,
        ``test_mse_novel``, ``test_mse_in_distribution``: ``X_percentile`` (%),
        ``X_z``, ``X_mean``, ``X_std`` of the samples and ``X_exact`` (closed-form
        ⟨X⟩ where known); ``distance_to_mean`` (‖W − ⟨W⟩‖/‖⟨W⟩‖), ``mean_error``
        (estimated error of the sampled ⟨W⟩ in the same units, from the spread of the
        per-copy means; 0 for the exact mean: a trained W equal to the true mean sits
        at ``distance_to_mean`` ≈ ``mean_error``), ``sample_distance_to_mean`` (RMS
        of ‖W_s − ⟨W⟩‖/‖⟨W⟩‖ over the samples: the thermal scale),
        ``n_mean_samples`` (snapshots × copies behind ⟨W⟩; 0 for the exact mean).

    Raises
    ------
    ConfigError
        ``run``: not a readable spinicl run file. ``train``: not a readable spinicl
        training file, made from other prompts, or of another model (or d_k).
    """
    pair = load_pair(run_path, train_path)
    tr = pair.training
    model = pair.model
    theta = tr["theta"]
    W = model.effective_weights(theta[None])[0]
    task = pair.task
    trained = {
        "energy": float(model.energy(theta[None])[0]),
        "train_mse": float(mse(W[None], task.train)[0]),
        "test_mse_novel": float(mse(W[None], task.test_novel)[0]),
        "test_mse_in_distribution": float(mse(W[None], task.test_in_distribution)[0]),
    }
    keep = post_burn_in(pair)
    bm = pair.means
    rows = []
    for k, temp in enumerate(pair.temperatures):
        row: dict[str, Any] = {"T": float(temp)}
        for name in OBSERVABLES:
            data = pair.traces.get(name)
            x = (data[keep, k].ravel() if data is not None else np.empty(0))
            x = x[np.isfinite(x)]
            if name == "energy":
                row["n_samples"] = int(x.size)
            row[f"{name}_percentile"] = percentile_of(x, trained[name])
            row[f"{name}_z"] = z_score(x, trained[name])
            row[f"{name}_mean"] = float(np.mean(x)) if x.size else float("nan")
            row[f"{name}_std"] = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
            ex = pair.theory.get(name)
            row[f"{name}_exact"] = float(ex[k]) if ex is not None and k < ex.size \
                else float("nan")
        row["distance_to_mean"] = (_rel(W, bm.means[k]) if bm.means is not None
                                   else float("nan"))
        row["mean_error"] = float(bm.noise[k])
        row["sample_distance_to_mean"] = float(bm.spread[k])
        row["n_mean_samples"] = bm.n_samples
        rows.append(row)
    summary = tr.get("summary", {})
    trained.update({
        "energy_train_lam": float(tr["history"]["energy"][-1]),
        "relative_distance_to_m": (_rel(W, bm.exact) if bm.exact is not None
                                   else float("nan")),
        "optimizer": tr["train_config"].optimizer,
        "epochs_run": int(summary.get("epochs_run", int(tr["history"]["epoch"][-1]))),
    })
    out = {
        "run": pair.run_path, "train": pair.train_path,
        "model": pair.cfg.model,
        "dk": _factor_rank(pair.cfg.model, pair.cfg.dk, pair.cfg.task.D),
        "lam_run": float(pair.cfg.task.lam), "lam_train": float(tr["lam"]),
        "warnings": list(pair.warnings),
        "mean_source": bm.source,
        "burn_in": int(pair.cfg.burn_in),
        "temperatures": [float(t) for t in pair.temperatures],
        "trained": trained,
        "rows": rows,
    }
    if not keep.any():
        out["warnings"].append("no records after burn-in: the run has not produced "
                               "samples yet")
    return _finite_or_none(out)


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec)


def format_compare_table(d: dict[str, Any]) -> str:
    """A plain-text table of :func:`compare_run_and_training`'s result.

    One line per temperature: samples, then percentile / z-score of the trained model's
    energy and novel-task test MSE among them, then its relative distance to the
    Boltzmann mean beside the samples' own RMS distance.

    Parameters
    ----------
    d : dict
        The result of :func:`compare_run_and_training`.

    Returns
    -------
    str
        Several lines, no trailing newline.
    """
    tr = d["trained"]
    model = d["model"] if d.get("dk") is None else f"{d['model']} (d_k = {d['dk']})"
    lines = [
        f"run:   {d['run']}",
        f"train: {d['train']}  ({tr.get('optimizer')}, {tr.get('epochs_run')} epochs)",
        f"model: {model}   lambda: run {d['lam_run']:g}, train {d['lam_train']:g}",
        ("trained model (run's Hamiltonian): "
         f"E = {_fmt(tr['energy'], '.6g')}, train MSE = {_fmt(tr['train_mse'], '.4g')}, "
         f"test MSE novel = {_fmt(tr['test_mse_novel'], '.4g')}, "
         f"in-distribution = {_fmt(tr['test_mse_in_distribution'], '.4g')}"),
    ]
    if tr.get("relative_distance_to_m") is not None:
        lines.append(f"distance to the ground state m: |W - m|/|m| = "
                     f"{tr['relative_distance_to_m']:.4g}")
    source = {"snapshots": "mean of the weight snapshots",
              "exact": "exact mean m (no snapshots in the run)",
              "none": "not available (no snapshots, no closed form)"}[d["mean_source"]]
    lines.append(f"Boltzmann mean <W>: {source}")
    cols = [("T", 10), ("samples", 8), ("E pct", 7), ("E z", 8), ("E mean", 11),
            ("eps pct", 8), ("eps z", 8), ("eps mean", 10), ("dist", 9), ("+-", 8),
            ("spread", 8)]
    head = " ".join(f"{name:>{w}}" for name, w in cols)
    lines += ["",
              "pct, z: percentile (%) and z-score of the trained model among the post-burn-in",
              "  samples (E: energy with the run's lambda; eps: novel-task test MSE)",
              "dist: |W - <W>|/|<W>| of the trained W; +-: error of the sampled <W>;",
              "  spread: RMS of |W_s - <W>|/|<W>| over the samples W_s",
              head, "-" * len(head)]
    for r in d["rows"]:
        vals = [_fmt(r["T"], ".4g"), _fmt(r["n_samples"], "d"),
                _fmt(r["energy_percentile"], ".1f"), _fmt(r["energy_z"], ".2f"),
                _fmt(r["energy_mean"], ".5g"), _fmt(r["test_mse_novel_percentile"], ".1f"),
                _fmt(r["test_mse_novel_z"], ".2f"), _fmt(r["test_mse_novel_mean"], ".4g"),
                _fmt(r["distance_to_mean"], ".3g"), _fmt(r.get("mean_error"), ".2g"),
                _fmt(r["sample_distance_to_mean"], ".3g")]
        lines.append(" ".join(f"{v:>{w}}" for v, (_, w) in zip(vals, cols, strict=True)))
    for w in d.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


__all__ = [
    "OBSERVABLES",
    "PROMPT_KEYS",
    "BoltzmannMeans",
    "Pair",
    "boltzmann_means",
    "compare_run_and_training",
    "format_compare_table",
    "load_pair",
    "percentile_of",
    "post_burn_in",
    "z_score",
]
