"""In-context learning baselines on the test prompts: one-step GD, Bayes ridge, dMMSE.

Three predictors that use each test prompt's raw context (x_1, y_1, ..., x_N, y_N) and
its query x_q, to place the spin glass between in-context learning and memorisation:

* **one-step gradient descent** (:func:`one_step_gd`): one step from w = 0 on the
  context's least-squares loss, ŷ = η Σ_{a≤D} c_a q_a with c_a = Σ_i y_i x_{i,a}/(N+1).
  It is the linear attention W_gd = η (I_D ⊕ 0) (the mesa-optimisation construction), so
  ``models.predict(W_gd, prompts)`` gives the same numbers. The step η is fitted on the
  *training* prompts by one-dimensional least squares, η = Σ_μ f_μ y_μ / Σ_μ f_μ², with
  f_μ = Σ_{a≤D} c_a^μ q_a^μ.
  For uncorrelated Gaussian tokens the population-optimal step gives
  (:func:`one_step_gd_theory`, derived in its docstring)

      ε_gd = s + σ² − N s / (N + D + 1 + D σ²/s),   s = σ_x² σ_w²  (label signal variance)

  i.e. (D+1)/(N+D+1) times the label variance for noiseless labels.
* **Bayes-optimal ridge** (:func:`bayes_ridge`): the posterior mean of w under the prior
  N(0, σ_w² I_D) with labels y = w·x/√D + σ_ε ξ, i.e. ridge regression on the context
  with penalty σ_ε²/σ_w² (features x/√D); ŷ = x_q·ŵ/√D. With σ_ε = 0 it is least squares,
  or the minimum-norm interpolant when N < D (the σ_ε → 0 limit of the posterior mean).
  On novel-task prompts it is the best any in-context learner can do.
* **discrete-pool posterior mean** (:func:`dmmse`, "dMMSE"): the Bayes predictor for
  a prior uniform on the K pool vectors of the training tasks — the memorising solution.
  Defined for a finite pool (K < P) and σ_ε > 0.

All are vectorised over prompts (batched solves on stacks of small matrices, processed
in blocks of bounded memory); none loops over prompts in Python.

Each test MSE comes with its standard error, std of the per-prompt squared errors
divided by √P_t (over the test prompts only; it does not include the randomness of the
training set through η).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from spinicl.config import ConfigError, check_float
from spinicl.prompts import PromptSet, Task

#: Largest temporary (elements) a batched solve allocates at once.
_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class SetScore:
    """Test MSE of a predictor on one prompt set.

    Attributes
    ----------
    mse : float
        (1/P_t) Σ_μ (y_q^μ − ŷ^μ)².
    stderr : float
        Standard error of ``mse``: std of the per-prompt squared errors / √P_t (NaN
        when P_t = 1).
    n_prompts : int
        P_t.
    """

    mse: float
    stderr: float
    n_prompts: int


@dataclass(frozen=True, eq=False)
class BaselineResult:
    """A baseline evaluated on both test sets of a task.

    Attributes
    ----------
    name : str
        ``"gd"``, ``"bayes"`` or ``"dmmse"``.
    test_mse_novel, test_mse_in_distribution : float
        Test MSE on the novel-task and in-distribution test prompts.
    test_mse_novel_stderr, test_mse_in_distribution_stderr : float
        Their standard errors.
    eta : float or None
        The fitted step of one-step GD (``gd`` only).
    W : ndarray, shape ((D+1)²,), or None
        The equivalent merged weights η (I_D ⊕ 0), row-major (``gd`` only).
    """

    name: str
    test_mse_novel: float
    test_mse_in_distribution: float
    test_mse_novel_stderr: float
    test_mse_in_distribution_stderr: float
    eta: float | None = None
    W: np.ndarray | None = None


# --------------------------------------------------------------------------- helpers
def score(pred: np.ndarray, prompts: PromptSet) -> SetScore:
    """Test MSE and its standard error of predictions ``pred`` (P_t,) on ``prompts``."""
    err = (np.asarray(pred, dtype=np.float64) - prompts.y) ** 2
    n = err.shape[0]
    stderr = float(np.std(err, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return SetScore(mse=float(np.mean(err)), stderr=stderr, n_prompts=n)


def _need_context(prompts: PromptSet, what: str) -> tuple[np.ndarray, np.ndarray]:
    if prompts.x_context is None or prompts.y_context is None:
        raise ConfigError("prompts", "prompts with their raw contexts (make_task("
                          "keep_test_context=True) for the test sets, keep_train_context="
                          "True for the training prompts)",
                          note=f"{what} needs x_context and y_context")
    return prompts.x_context, prompts.y_context


def _blocks(n_prompts: int, per_prompt: int):
    """Slices of at most ``_BLOCK_ELEMENTS // per_prompt`` prompts."""
    step = max(1, _BLOCK_ELEMENTS // max(1, per_prompt))
    for s in range(0, n_prompts, step):
        yield slice(s, min(s + step, n_prompts))


def _both(task: Task, name: str, fn, **extra: Any) -> BaselineResult:
    novel = fn(task.test_novel)
    ind = fn(task.test_in_distribution)
    return BaselineResult(name=name, test_mse_novel=novel.mse,
                          test_mse_in_distribution=ind.mse,
                          test_mse_novel_stderr=novel.stderr,
                          test_mse_in_distribution_stderr=ind.stderr, **extra)


# --------------------------------------------------------------------------- one-step GD
def gd_feature(prompts: PromptSet) -> np.ndarray:
    """f^μ = Σ_{a≤D} c_a^μ q_a^μ, shape (P,): the one-step-GD prediction at η = 1."""
    return np.einsum("pa,pa->p", prompts.c[:, :-1], prompts.q[:, :-1])


def fit_gd_step(prompts: PromptSet) -> float:
    """Least-squares step η = Σ f y / Σ f² on ``prompts`` (the training prompts)."""
    f = gd_feature(prompts)
    ff = float(f @ f)
    return float(f @ prompts.y) / ff if ff > 0 else 0.0


def gd_weights(eta: float, D: int) -> np.ndarray:
    """Merged weights η (I_D ⊕ 0), flattened row-major, shape ((D+1)²,)."""
    W = np.zeros((D + 1, D + 1))
    W[np.arange(D), np.arange(D)] = eta
    return W.ravel()


def one_step_gd(task: Task, eta: float | None = None) -> BaselineResult:
    """One-step gradient descent from w = 0, step fitted on the training prompts.

    Parameters
    ----------
    task : Task
    eta : float, optional
        Use this step instead of fitting it.

    Returns
    -------
    BaselineResult
        With ``eta`` and ``W`` = η (I_D ⊕ 0), shape ((D+1)²,).
    """
    eta = fit_gd_step(task.train) if eta is None else check_float("eta", eta)

    def fn(ps: PromptSet) -> SetScore:
        return score(eta * gd_feature(ps), ps)

    return _both(task, "gd", fn, eta=eta, W=gd_weights(eta, task.config.D))


def one_step_gd_theory(D: int, N: int, sigma_x: float = 1.0, sigma_w: float = 1.0,
                       sigma_eps: float = 0.0) -> float:
    """Population test MSE of one-step GD at its optimal step (uncorrelated tokens).

    With X the N × D context inputs (entries N(0, σ_x²)), w ~ N(0, σ_w² I_D),
    y_i = w·x_i/√D + σ ε_i and u = Σ_i y_i x_i, the prediction is f = u·x_q/(N+1) (times
    η) and the target y_q = w·x_q/√D + σ ε_q. Using E[(XᵀX)²] = σ_x⁴ N(N+D+1) I_D (Wishart
    fourth moment):

        E[f y_q] = N σ_x⁴ σ_w² / (N+1),
        E[f²]    = σ_x² (σ_x⁴ σ_w² N (N+D+1) + σ_x² σ² N D) / (N+1)²,

    so the optimal η = E[f y_q]/E[f²] and the minimum
    E[y_q²] − E[f y_q]²/E[f²] = s + σ² − N s / (N + D + 1 + D σ²/s) with s = σ_x² σ_w².
    For σ = 0: s (D+1)/(N+D+1) — the 1/(N+1) token normalisation and the 1/√D label
    scale only rescale η.

    Parameters
    ----------
    D, N : int
    sigma_x, sigma_w, sigma_eps : float

    Returns
    -------
    float
    """
    s = sigma_x**2 * sigma_w**2
    noise = sigma_eps**2
    return s + noise - N * s / (N + D + 1 + D * noise / s)


def one_step_gd_optimal_step(D: int, N: int, sigma_x: float = 1.0, sigma_w: float = 1.0,
                             sigma_eps: float = 0.0) -> float:
    """Population-optimal step η* = E[f y_q]/E[f²] = (N+1) / (σ_x² (N + D + 1 + D σ²/s)).

    See :func:`one_step_gd_theory` for the notation; the fitted ``one_step_gd`` step
    tends to it as P grows (uncorrelated tokens).
    """
    s = sigma_x**2 * sigma_w**2
    return (N + 1) / (sigma_x**2 * (N + D + 1 + D * sigma_eps**2 / s))


# --------------------------------------------------------------------------- ridge
def ridge_predict(prompts: PromptSet, sigma_eps: float = 0.0,
                  sigma_w: float = 1.0) -> np.ndarray:
    """Posterior-mean (Bayes ridge) predictions x_q·ŵ/√D, shape (P,).

    ŵ = argmin ‖y − Zw‖² + r‖w‖² with Z = X/√D and r = σ_ε²/σ_w², solved per prompt on
    the smaller of the two equivalent systems: (ZᵀZ + rI)ŵ = Zᵀy (D × D, when N ≥ D) or
    ŵ = Zᵀ(ZZᵀ + rI)⁻¹y (N × N, when N < D; with r = 0 the minimum-norm interpolant).
    Batched ``np.linalg.solve`` over blocks of prompts.

    Parameters
    ----------
    prompts : PromptSet
        With raw contexts: ``x_context`` (P, N, D), ``y_context`` (P, N).
    sigma_eps : float
        Label noise σ_ε >= 0 (0: least squares / minimum-norm interpolation).
    sigma_w : float
        Prior scale σ_w > 0 of the task vector.

    Returns
    -------
    ndarray, shape (P,)
    """
    X, Y = _need_context(prompts, "bayes ridge")
    sigma_eps = check_float("sigma_eps", sigma_eps, low=0.0)
    sigma_w = check_float("sigma_w", sigma_w, low=0.0, low_open=True)
    P, N, D = X.shape
    r = (sigma_eps / sigma_w) ** 2
    xq = prompts.q[:, :D]
    scale = 1.0 / np.sqrt(D)
    out = np.empty(P)
    k = min(N, D)
    for sl in _blocks(P, k * k + N * D):
        Z = X[sl] * scale  # (b, N, D)
        y = Y[sl]
        if N >= D:
            G = np.matmul(Z.transpose(0, 2, 1), Z)  # (b, D, D)
            if r > 0:
                G[:, np.arange(D), np.arange(D)] += r
            w = np.linalg.solve(G, np.einsum("bnd,bn->bd", Z, y)[..., None])[..., 0]
        else:
            G = np.matmul(Z, Z.transpose(0, 2, 1))  # (b, N, N)
            if r > 0:
                G[:, np.arange(N), np.arange(N)] += r
            alpha = np.linalg.solve(G, y[..., None])[..., 0]
            w = np.einsum("bnd,bn->bd", Z, alpha)
        out[sl] = np.einsum("bd,bd->b", xq[sl], w) * scale
    return out


@overload
def bayes_ridge(source: Task, *, sigma_eps: float | None = ...,
                sigma_w: float | None = ...) -> BaselineResult: ...
@overload
def bayes_ridge(source: PromptSet, *, sigma_eps: float | None = ...,
                sigma_w: float | None = ...) -> SetScore: ...
def bayes_ridge(source: Task | PromptSet, *, sigma_eps: float | None = None,
                sigma_w: float | None = None) -> BaselineResult | SetScore:
    """Bayes-optimal ridge (posterior mean under the Gaussian task prior).

    Parameters
    ----------
    source : Task or PromptSet
        A task (both test sets are scored) or one prompt set with raw contexts.
    sigma_eps, sigma_w : float, optional
        Noise and prior scales; default the task's (for a bare PromptSet: 0 and 1).

    Returns
    -------
    BaselineResult (for a Task) or SetScore (for a PromptSet)
    """
    if isinstance(source, Task):
        se = source.config.sigma_eps if sigma_eps is None else sigma_eps
        sw = source.config.sigma_w if sigma_w is None else sigma_w
        return _both(source, "bayes", lambda ps: score(ridge_predict(ps, se, sw), ps))
    se = 0.0 if sigma_eps is None else sigma_eps
    sw = 1.0 if sigma_w is None else sigma_w
    return score(ridge_predict(source, se, sw), source)


# --------------------------------------------------------------------------- dMMSE
def dmmse_predict(prompts: PromptSet, pool: np.ndarray, sigma_eps: float) -> np.ndarray:
    """Discrete-pool posterior-mean predictions, shape (P,).

    Prior uniform on the K pool vectors w_k; likelihood of a context
    ∝ exp(−‖y − X w_k/√D‖² / (2σ_ε²)). Dropping the k-independent ‖y‖², the log posterior
    is (2 w_k·Xᵀy/√D − w_kᵀ XᵀX w_k/D) / (2σ_ε²) + const; the weights are its softmax,
    and ŷ = Σ_k p_k x_q·w_k/√D. The quadratic forms of all prompts and pool vectors are
    one GEMM between the upper triangles of XᵀX and of w_k w_kᵀ; the pool is processed in
    chunks with a running (log-sum-exp) softmax, so memory stays bounded for any K.

    Parameters
    ----------
    prompts : PromptSet
        With raw contexts ``x_context`` (P, N, D), ``y_context`` (P, N).
    pool : ndarray, shape (K, D)
        The task vectors.
    sigma_eps : float
        Label noise, > 0.

    Returns
    -------
    ndarray, shape (P,)
    """
    X, Y = _need_context(prompts, "the discrete-pool posterior")
    sigma_eps = check_float("sigma_eps", sigma_eps, low=0.0, low_open=True,
                            note="the discrete-pool posterior needs label noise")
    pool = np.asarray(pool, dtype=np.float64)
    P, N, D = X.shape
    if pool.ndim != 2 or pool.shape[1] != D:
        raise ValueError(f"pool must have shape (K, {D}) (got {pool.shape})")
    K = pool.shape[0]
    wt = pool / np.sqrt(D)  # (K, D): rows w_k/√D
    iu, ju = np.triu_indices(D)
    T = iu.size
    # upper triangle of w_k w_kᵀ/D, off-diagonal entries doubled: G_u · WW_k = w_kᵀGw_k/D
    WW = wt[:, iu] * wt[:, ju] * np.where(iu == ju, 1.0, 2.0)  # (K, T)
    k_chunk = max(1, min(K, _BLOCK_ELEMENTS // T))
    inv2s2 = 1.0 / (2.0 * sigma_eps**2)
    out = np.empty(P)
    for sl in _blocks(P, T + N * D + 3 * k_chunk):
        Xb = X[sl]
        Gu = np.matmul(Xb.transpose(0, 2, 1), Xb)[:, iu, ju]  # (b, T)
        bvec = np.einsum("bnd,bn->bd", Xb, Y[sl])  # Xᵀy, (b, D)
        xq = prompts.q[sl, :D]
        nb = Gu.shape[0]
        run_max = np.full(nb, -np.inf)
        run_sum = np.zeros(nb)
        run_pred = np.zeros(nb)
        for k0 in range(0, K, k_chunk):
            wk = wt[k0 : k0 + k_chunk]
            logp = (2.0 * (bvec @ wk.T) - Gu @ WW[k0 : k0 + k_chunk].T) * inv2s2  # (b, k)
            new_max = np.maximum(run_max, logp.max(axis=1))
            rescale = np.exp(run_max - new_max)
            e = np.exp(logp - new_max[:, None])
            run_sum = run_sum * rescale + e.sum(axis=1)
            run_pred = run_pred * rescale + np.einsum("bk,bk->b", e, xq @ wk.T)
            run_max = new_max
        out[sl] = run_pred / run_sum
    return out


def dmmse_applies(task: Task) -> bool:
    """True for a finite task pool (K < P) with label noise (σ_ε > 0)."""
    return task.config.K is not None and task.config.sigma_eps > 0


@overload
def dmmse(source: Task, *, pool: np.ndarray | None = ...,
          sigma_eps: float | None = ...) -> BaselineResult: ...
@overload
def dmmse(source: PromptSet, *, pool: np.ndarray | None = ...,
          sigma_eps: float | None = ...) -> SetScore: ...
def dmmse(source: Task | PromptSet, *, pool: np.ndarray | None = None,
          sigma_eps: float | None = None) -> BaselineResult | SetScore:
    """Discrete-pool posterior mean (the memorising Bayes predictor).

    Parameters
    ----------
    source : Task or PromptSet
        A task (its pool and both test sets) or one prompt set (then ``pool`` and
        ``sigma_eps`` are required).
    pool : ndarray, shape (K, D), optional
    sigma_eps : float, optional

    Returns
    -------
    BaselineResult (for a Task) or SetScore (for a PromptSet)

    Raises
    ------
    ConfigError
        For a task with K = P (no finite pool: ``K``) or σ_ε = 0 (``sigma_eps``).
    """
    if isinstance(source, Task):
        cfg = source.config
        if pool is None and cfg.K is None:
            raise ConfigError("K", f"< P = {cfg.P} for the discrete-pool posterior", cfg.P,
                              "with K = P every prompt has its own task: no finite pool")
        pl = source.pool if pool is None else pool
        se = cfg.sigma_eps if sigma_eps is None else sigma_eps
        check_float("sigma_eps", se, low=0.0, low_open=True,
                    note="the discrete-pool posterior needs label noise")
        return _both(source, "dmmse", lambda ps: score(dmmse_predict(ps, pl, se), ps))
    if pool is None or sigma_eps is None:
        raise ValueError("dmmse on a PromptSet needs pool and sigma_eps")
    return score(dmmse_predict(source, pool, sigma_eps), source)


# --------------------------------------------------------------------------- all
def baselines(task: Task) -> dict[str, float]:
    """Every baseline that applies to ``task``, as a flat dict of floats.

    Keys: ``baseline_gd_eta``, ``baseline_gd_test_mse_novel``,
    ``baseline_gd_test_mse_in_distribution``, ``baseline_bayes_test_mse_novel``,
    ``baseline_bayes_test_mse_in_distribution`` and, where :func:`dmmse_applies`
    (K < P and σ_ε > 0), ``baseline_dmmse_test_mse_novel`` and
    ``baseline_dmmse_test_mse_in_distribution``; each test MSE also with a ``_stderr``
    key (std of per-prompt squared errors / √P_t).
    """
    results = [one_step_gd(task), bayes_ridge(task)]
    if dmmse_applies(task):
        results.append(dmmse(task))
    out: dict[str, float] = {}
    for r in results:
        if r.eta is not None:
            out[f"baseline_{r.name}_eta"] = float(r.eta)
        for which in ("novel", "in_distribution"):
            key = f"baseline_{r.name}_test_mse_{which}"
            out[key] = float(getattr(r, f"test_mse_{which}"))
            out[key + "_stderr"] = float(getattr(r, f"test_mse_{which}_stderr"))
    return out
