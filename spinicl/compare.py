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

:func:`plot_weights_and_losses` draws the paper's Fig. 2 for such a pair: heatmaps of the
trained W and of the Boltzmann mean (and of m, merged model) on one diverging colour
scale, beside the training and novel-task test MSE per epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from spinicl.config import ConfigError, SampleConfig, TaskConfig
from spinicl.models import MergedModel, build_model, mse
from spinicl.prompts import make_task
from spinicl.store import StoreError, open_run, read_attrs
from spinicl.training import read_training, ridge_ground_state

#: Task entries that decide the prompts (``lam`` does not: it may differ).
PROMPT_KEYS = ("D", "N", "P", "K", "seed", "sigma_x", "sigma_w", "sigma_eps", "rho",
               "rho_variant", "test_prompts")

#: Observables placed among the samples (traces of the run file).
OBSERVABLES = ("energy", "train_mse", "test_mse_novel", "test_mse_in_distribution")

_RUN_ALLOWED = "a spinicl run file (format=spinicl-run)"
_TRAIN_ALLOWED = "a spinicl training file (format=spinicl-training)"


# =========================================================================== loading
@dataclass
class _Means:
    """The Boltzmann mean of the effective weights per temperature (see
    :func:`_boltzmann_means`)."""

    means: np.ndarray | None   # (T, (D+1)²) or None
    source: str                # "snapshots" | "exact" | "none"
    exact: np.ndarray | None   # ((D+1)²,) m = A⁻¹h at the run's λ (merged), else None
    spread: np.ndarray         # (T,) RMS of ‖W_s − ⟨W⟩‖/‖⟨W⟩‖ over the samples
    noise: np.ndarray          # (T,) estimated error ‖⟨W⟩_est − ⟨W⟩‖/‖⟨W⟩‖
    n_samples: int             # weight samples behind ⟨W⟩ per temperature (0: exact)


@dataclass
class _Pair:
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
    means: _Means | None = None


def _load_pair(run_path: str | os.PathLike, train_path: str | os.PathLike) -> _Pair:
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
        except (KeyError, TypeError, ValueError, OSError) as exc:
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
    run_dk = None if cfg.model == "merged" else (cfg.dk or D + 1)
    train_dk = None if training["model"] == "merged" else (training["dk"] or D + 1)
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
    pair = _Pair(run_path, train_path, cfg, attrs, temperatures, steps, traces, theory,
                 snap_range, training, task, model, warnings)
    try:
        pair.means = _boltzmann_means(pair)
    except (KeyError, TypeError, ValueError, OSError, StoreError) as exc:
        raise ConfigError("run", _RUN_ALLOWED, run_path,
                          note=f"corrupt snapshots: {type(exc).__name__}: {exc}"[:200]
                          ) from None
    return pair


def _model_text(model: str, dk: int | None) -> str:
    return model if dk is None else f"{model}, d_k = {dk}"


def _post_burn_in(pair: _Pair) -> np.ndarray:
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


def _boltzmann_means(pair: _Pair, chunk_bytes: int = 1 << 26) -> _Means:
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
    exact = ridge_ground_state(model) if isinstance(model, MergedModel) else None
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
        return _Means(means, "snapshots", exact, spread, noise, S * M)
    if exact is not None:
        d2 = pair.traces.get("distance_to_ground_state")  # ‖W − m‖²/n per sample
        nm = float(np.linalg.norm(exact))
        if d2 is not None and nm > 0:
            keep = _post_burn_in(pair)
            for k in range(T):
                x = d2[keep, k].ravel()
                x = x[np.isfinite(x)]
                if x.size:
                    spread[k] = math.sqrt(float(np.mean(x)) * exact.size) / nm
        return _Means(np.broadcast_to(exact, (T, exact.size)), "exact", exact, spread,
                      np.zeros(T), 0)
    return _Means(None, "none", None, spread, noise, 0)


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
    pair = _load_pair(run_path, train_path)
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
    keep = _post_burn_in(pair)
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
        "dk": None if pair.cfg.model == "merged" else (pair.cfg.dk or pair.cfg.task.D + 1),
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


# =========================================================================== figure
def _pick_temperature(temperatures: np.ndarray, temperature: float | None) -> int:
    if temperature is None:
        return int(np.argmin(temperatures))
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    allowed = ("a temperature of the run's ladder (within a factor 1.5): "
               + ", ".join(f"{x:.4g}" for x in temperatures))
    if not (math.isfinite(t) and t > 0):
        raise ConfigError("temperature", allowed, temperature)
    k = int(np.argmin(np.abs(np.log(temperatures) - math.log(t))))
    if abs(math.log(temperatures[k] / t)) > math.log(1.5):
        raise ConfigError("temperature", allowed, temperature)
    return k


def _plain_log_labels(axis: Any, lo: float, hi: float) -> None:
    """Log-axis labels as plain numbers (0.3, 1, 6): decades always, and 2 and 5 times a
    decade (plus 3 below 1.5 decades) when the axis spans less than 2.5 decades."""
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    mants = (2, 3, 5) if decades < 1.5 else (2, 5) if decades < 2.5 else ()

    def fmt(v: float, _pos: Any = None) -> str:
        if v <= 0:
            return ""
        e = math.floor(math.log10(v) + 1e-9)
        mant = round(v / 10**e, 6)
        if mant != 1 and mant not in mants:
            return ""
        return f"{v:.10g}" if -4 <= e <= 4 else f"${mant:g}\times10^{{{e}}}$"

    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(FuncFormatter(fmt))


def _fast_start(epoch: np.ndarray, loss: np.ndarray) -> bool:
    """True when ``loss`` has made 90 % of its (log) descent within the first 10 % of the
    epochs: the curve would hug the left axis on a linear epoch scale."""
    ok = np.isfinite(loss) & (loss > 0)
    if ok.sum() < 3 or epoch[-1] < 20:
        return False
    x, y = epoch[ok], np.log(loss[ok])
    drop = y[0] - y[-1]
    if drop <= 0:
        return False
    reached = np.flatnonzero(y <= y[0] - 0.9 * drop)
    return bool(reached.size) and x[reached[0]] < 0.1 * epoch[-1]


def _align_loss_panel(fig: Any, heat_axes: list[Any], cax: Any, ax: Any) -> None:
    """Lay the figure out once (constrained), then freeze it with the loss panel given
    the heatmaps' height and moved next to the colour bar's labels."""
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    heat = heat_axes[0].get_position()
    box = ax.get_position()
    inv = fig.transFigure.inverted()
    cbar_right = inv.transform(cax.get_tightbbox().extents.reshape(2, 2))[1, 0]
    label_left = inv.transform(ax.get_tightbbox().extents.reshape(2, 2))[0, 0]
    gap = 0.14 / fig.get_figwidth()  # inches between the colour bar and the y label
    x0 = max(box.x0 - (label_left - cbar_right) + gap, box.x0 - 0.5 * box.width)
    x0 = min(x0, box.x0)
    x1 = box.x1
    for _ in range(3):  # the new width may bring other tick labels: keep them inside
        ax.set_position((x0, heat.y0, x1 - x0, heat.height))
        fig.draw_without_rendering()
        right = inv.transform(ax.get_tightbbox().extents.reshape(2, 2))[1, 0]
        over = right - (1.0 - 0.04 / fig.get_figwidth())
        if over <= 0:
            break
        x1 -= over


def plot_weights_and_losses(run_path: str | os.PathLike, train_path: str | os.PathLike,
                            out: str | os.PathLike = "fig2.png",
                            temperature: float | None = None) -> list[str]:
    """The paper's Fig. 2 for a run and a training file: weights side by side, losses.

    Panels, left to right: the trained effective weights W ((D+1)×(D+1), row a, column
    b); the Boltzmann mean ⟨W⟩ at the chosen temperature (mean of the post-burn-in
    snapshots, or the exact m when the run has none — merged model); the exact ground
    state m = A⁻¹h (merged model, when the mean shown is from snapshots) — all on one
    diverging colour scale centred at 0, with a shared colour bar; then the training and
    novel-task test MSE per epoch (log y), with the samples' mean test MSE at the chosen
    temperature and, when known, the exact ground state's as horizontal lines.

    Parameters
    ----------
    run_path, train_path : str or PathLike
        As :func:`compare_run_and_training` (same validation, same errors).
    out : str or PathLike
        ``.png`` or ``.pdf`` (or no suffix) writes both, same stem; ``.svg``/``.eps``
        that file only.
    temperature : float, optional
        A temperature of the run's ladder (nearest rung within a factor 1.5); default the
        coldest.

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    ConfigError
        ``run``, ``train`` (see :func:`compare_run_and_training`), ``temperature`` (not
        near a rung of the ladder), ``out`` (an unsupported suffix).
    """
    from spinicl.plots import STYLE, _fmt_tex, _new_figure, _outputs, save_figure

    _outputs(out)  # validate the suffix before any work
    pair = _load_pair(run_path, train_path)
    k = _pick_temperature(pair.temperatures, temperature)
    temp = float(pair.temperatures[k])
    tr = pair.training
    model = pair.model
    D = pair.cfg.task.D
    d1 = D + 1
    W = model.effective_weights(tr["theta"][None])[0].reshape(d1, d1)
    bm = pair.means
    means, source, exact = bm.means, bm.source, bm.exact
    cfg_train = tr["train_config"]
    epochs = int(tr.get("summary", {}).get("epochs_run", tr["history"]["epoch"][-1]))
    Ttex = _fmt_tex(temp)
    lr = tr.get("summary", {}).get("lr")
    lr_txt = f", lr = {lr:.3g}" if isinstance(lr, (int, float)) else ""
    panels: list[tuple[str, np.ndarray | None, str]] = [
        ("trained " + r"$W$", W, f"{cfg_train.optimizer}, {epochs} epochs"),
    ]
    if source == "snapshots":
        panels.append((r"Boltzmann $\langle W\rangle$", means[k].reshape(d1, d1),
                       f"$T = {Ttex}$, {bm.n_samples} samples"))
        if exact is not None:
            panels.append((r"ground state $m$", exact.reshape(d1, d1),
                           r"$A^{-1}h$, $\langle W\rangle$ at $T \to 0$"))
    elif source == "exact":
        panels.append((r"Boltzmann $\langle W\rangle = m$", exact.reshape(d1, d1),
                       "exact (no snapshots)"))
    else:
        panels.append((r"Boltzmann $\langle W\rangle$", None,
                       f"$T = {Ttex}$"))
    vmax = max(float(np.max(np.abs(p[1]))) for p in panels if p[1] is not None)
    vmax = vmax if vmax > 0 else 1.0
    norm = Normalize(-vmax, vmax)
    cmap = mpl.colormaps["RdBu_r"]

    hist = tr["history"]
    ep = np.asarray(hist["epoch"], dtype=float)
    keep = _post_burn_in(pair)
    eps_samples = pair.traces.get("test_mse_novel")
    eps_mean = (float(np.nanmean(eps_samples[keep, k])) if eps_samples is not None
                and keep.any() else float("nan"))
    gs_eps = tr.get("compare", {}).get("ground_state_test_mse_novel")
    gs_eps = float(gs_eps) if isinstance(gs_eps, (int, float)) else float("nan")
    if exact is not None and not math.isclose(pair.cfg.task.lam, tr["lam"]):
        gs_eps = float("nan")  # the file's ground state is at the training λ: skip
    if exact is not None and not math.isfinite(gs_eps):
        gs_eps = float(mse(exact[None], pair.task.test_novel)[0])

    n_heat = len(panels)
    task = pair.cfg.task
    lam_txt = (f"\\lambda = {_fmt_tex(task.lam)}" if math.isclose(task.lam, tr["lam"])
               else f"\\lambda_{{\\rm run}} = {_fmt_tex(task.lam)},\\ "
               f"\\lambda_{{\\rm train}} = {_fmt_tex(tr['lam'])}")
    head = (f"$D = {D},\\ N = {task.N},\\ P = {_fmt_tex(task.P)}"
            + (f",\\ K = {_fmt_tex(task.K)}" if task.K is not None else "")
            + f",\\ {lam_txt}$, {pair.cfg.model}"
            + (f" ($d_k = {pair.cfg.dk or d1}$)" if pair.cfg.model == "factored" else ""))
    letters = "abcdefg"
    with mpl.rc_context(STYLE):
        fig = _new_figure(1.6 * n_heat + 0.55 + 2.45, 2.3)
        # the colour bar hangs off the last heatmap (inset axes follow its aspect-fixed
        # box, so it has the heatmaps' height); the gridspec column only reserves room
        gs = fig.add_gridspec(1, n_heat + 2, width_ratios=[1.0] * n_heat + [0.22, 1.45])
        heat_axes = []
        for i, (title, mat, sub) in enumerate(panels):
            ax = fig.add_subplot(gs[0, i])
            heat_axes.append(ax)
            ax.set_title(f"({letters[i]}) {title}\n{sub}", fontsize=8)
            ax.set_aspect("equal")
            ax.tick_params(top=False, right=False, direction="out", length=2.5)
            # rows and columns are numbered a, b = 1 … D+1 (as in scripts/fig2_weights.py)
            if mat is None:
                ax.set_xlim(0.5, d1 + 0.5)
                ax.set_ylim(d1 + 0.5, 0.5)
                ax.set_facecolor("0.94")
                ax.text(0.5, 0.5, "not available:\nthe run has\nno snapshots",
                        transform=ax.transAxes, ha="center", va="center", color="0.35",
                        fontsize=7.5)
            else:
                ax.imshow(mat, cmap=cmap, norm=norm, interpolation="nearest",
                          origin="upper", extent=(0.5, d1 + 0.5, d1 + 0.5, 0.5))
            ticks = MaxNLocator(nbins=4, integer=True, min_n_ticks=2).tick_values(1, d1)
            ticks = [int(t) for t in ticks if 1 <= t <= d1]
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.set_xlabel("column $b$", labelpad=1)
            if i == 0:
                ax.set_ylabel("row $a$", labelpad=1)
            else:
                ax.set_yticklabels([])
        spacer = fig.add_subplot(gs[0, n_heat])
        spacer.set_axis_off()
        cax = heat_axes[-1].inset_axes((1.07, 0.0, 0.07, 1.0))
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, cax=cax)
        cb.set_label(r"$W_{ab}$", labelpad=2)
        cb.ax.tick_params(length=2.5, direction="out")
        cb.outline.set_linewidth(0.6)

        ax = fig.add_subplot(gs[0, n_heat + 1])
        c_train, c_test = "#1f5fa8", "#c8452c"
        ax.plot(ep, hist["train_mse"], color=c_train, label="training MSE")
        ax.plot(ep, hist["test_mse_novel"], color=c_test, label="test MSE (novel tasks)")
        handles = [Line2D([], [], color=c_train, label="training"),
                   Line2D([], [], color=c_test, label="test (novel tasks)")]
        if math.isfinite(eps_mean):
            ax.axhline(eps_mean, color=c_test, ls=":", lw=1.1, zorder=3)
            handles.append(Line2D([], [], color=c_test, ls=":", lw=1.1,
                                  label=rf"Boltzmann $\langle\varepsilon\rangle$, $T = {Ttex}$"))
        if math.isfinite(gs_eps):
            ax.axhline(gs_eps, color="0.25", ls="--", lw=0.9)
            handles.append(Line2D([], [], color="0.25", ls="--", lw=0.9,
                                  label="ground state (test)"))
        pos = np.concatenate([np.asarray(hist["train_mse"]),
                              np.asarray(hist["test_mse_novel"]), [eps_mean, gs_eps]])
        pos = pos[np.isfinite(pos) & (pos > 0)]
        if pos.size:
            ax.set_yscale("log")
            lo, hi = float(pos.min()), float(pos.max())
            hi = max(hi, lo * 1.01)
            ax.set_ylim(lo / (hi / lo) ** 0.06, hi * (hi / lo) ** 0.12)
            _plain_log_labels(ax.yaxis, *ax.get_ylim())
        ax.set_xlim(ep[0], ep[-1] if ep[-1] > ep[0] else ep[0] + 1)
        if _fast_start(ep, np.asarray(hist["test_mse_novel"], dtype=float)):
            # most of the fall happens in the first tenth of the epochs: log-like axis
            ax.set_xscale("symlog", linthresh=1.0, linscale=0.6)
            ax.set_xlim(0, ep[-1])
            top = math.floor(math.log10(max(float(ep[-1]), 1.0)))
            ax.xaxis.set_major_locator(FixedLocator([0.0] + [10.0**e for e in range(top + 1)]))
            ax.xaxis.set_major_formatter(FuncFormatter(
                lambda v, _p: "0" if v == 0 else f"{v:g}" if v < 1e4
                else f"$10^{{{round(math.log10(v))}}}$"))
            ax.xaxis.set_minor_locator(FixedLocator(
                [j * 10.0**e for e in range(top + 1) for j in range(2, 10)]))
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        ax.set_title(f"({letters[n_heat]}) training ({cfg_train.optimizer}{lr_txt})",
                     fontsize=8)
        ax.legend(handles=handles, loc="best", fontsize=7, handlelength=1.8)
        fig.suptitle(head, x=0.01, ha="left", fontsize=9)
        _align_loss_panel(fig, heat_axes, cax, ax)
    return save_figure(fig, out)


__all__ = ["OBSERVABLES", "PROMPT_KEYS", "compare_run_and_training", "format_compare_table",
           "percentile_of", "plot_weights_and_losses", "z_score"]
