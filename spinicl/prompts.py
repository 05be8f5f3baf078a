"""Task pool, prompts and test sets of in-context linear regression (docs/model.md §1.1–1.2).

A prompt μ holds N context tokens (x_i, y_i) and a query x_q with its label masked. The
merged linear attention predicts ŷ = cᵀ W q with

    c = X_{D+1,:} Xᵀ / (N+1)  ∈ R^{D+1}   (c_a = Σ_i y_i x_{i,a} / (N+1), c_{D+1} = Σ_i y_i² / (N+1))
    q = (x_q, 0)              ∈ R^{D+1},

so each prompt is stored through its two factors ``c`` and ``q`` (memory O(P·D)); the
feature of the spin (a, b) is s_ab = c_a q_b (row-major, index a·(D+1) + b).

All randomness comes from ``TaskConfig.seed`` through ``numpy.random.SeedSequence``: the
root sequence spawns four independent streams (task pool, training prompts, novel-task
test prompts, in-distribution test prompts), so changing the size of one set never
changes another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spinicl.config import ConfigError, TaskConfig

#: Prompts are generated in blocks of this many (a fixed part of the algorithm, so the
#: random stream, and every number, does not depend on memory). Every block draws a full
#: CHUNK of prompts, so a set of n prompts is the prefix of a larger set with the same seed.
CHUNK = 512

STREAMS = ("task_pool", "train", "test_novel", "test_in_distribution")


@dataclass(frozen=True)
class PromptSet:
    """A set of P prompts in factor form, optionally with their raw contexts.

    Attributes
    ----------
    c : ndarray, shape (P, D+1)
        Label-weighted token average c^μ (see module docstring).
    q : ndarray, shape (P, D+1)
        Query token (x_q, 0).
    y : ndarray, shape (P,)
        Query labels y_q^μ (the targets; masked in the prompt).
    task_index : ndarray of int, shape (P,)
        Index of each prompt's task in the pool, -1 for a fresh (novel) task.
    w : ndarray, shape (P, D) or None
        Task vectors (kept for test sets).
    x_context : ndarray, shape (P, N, D) or None
        Context inputs: kept only on request (``make_task(keep_test_context=True)`` for
        the test sets, which the per-prompt baselines need; ``keep_train_context`` for
        the training prompts). Memory P·N·D.
    y_context : ndarray, shape (P, N) or None
        Context labels (kept with ``x_context``).
    x_query : ndarray, shape (P, D) or None
        Query inputs (equal to ``q[:, :D]``).
    """

    c: np.ndarray
    q: np.ndarray
    y: np.ndarray
    task_index: np.ndarray
    w: np.ndarray | None = None
    x_context: np.ndarray | None = None
    y_context: np.ndarray | None = None

    @property
    def n_prompts(self) -> int:
        return self.c.shape[0]

    @property
    def x_query(self) -> np.ndarray:
        return self.q[:, :-1]

    def features(self) -> np.ndarray:
        """Dense feature matrix S, shape (P, (D+1)²), row-major s_ab = c_a q_b.

        Memory P·(D+1)²: use only for small sets or in chunks (see ``feature_chunks``).
        """
        return (self.c[:, :, None] * self.q[:, None, :]).reshape(self.n_prompts, -1)

    def feature_chunks(self, chunk: int = 2048):
        """Yield ``(start, S_chunk)`` blocks of the feature matrix, rows start..start+len."""
        for start in range(0, self.n_prompts, chunk):
            c = self.c[start : start + chunk]
            q = self.q[start : start + chunk]
            yield start, (c[:, :, None] * q[:, None, :]).reshape(c.shape[0], -1)


@dataclass(frozen=True)
class Task:
    """A complete task instance: pool, training prompts and the two test sets.

    Attributes
    ----------
    config : TaskConfig
    pool : ndarray, shape (K, D)
        Task vectors w_k ~ N(0, sigma_w² I_D).
    train : PromptSet
        The P pre-training prompts (factors only).
    test_novel : PromptSet
        ``config.test_prompts`` prompts with fresh tasks (the ICL test error).
    test_in_distribution : PromptSet
        ``config.test_prompts`` prompts with tasks drawn from the pool (memorisation).
    seeds : dict
        ``{"seed": root seed, "streams": {name: spawn_key}}`` — everything needed to
        regenerate the task.
    """

    config: TaskConfig
    pool: np.ndarray
    train: PromptSet
    test_novel: PromptSet
    test_in_distribution: PromptSet
    seeds: dict = field(default_factory=dict)

    @property
    def D(self) -> int:
        return self.config.D

    @property
    def n_spins(self) -> int:
        return self.config.n_spins


def token_cholesky(n_tokens: int, rho: float) -> np.ndarray:
    """Lower Cholesky factor L of the equicorrelation matrix C = (1-rho) I + rho 11ᵀ.

    Parameters
    ----------
    n_tokens : int
        Number of tokens, N+1.
    rho : float
        Common correlation, in (-1/(n_tokens-1), 1).

    Returns
    -------
    ndarray, shape (n_tokens, n_tokens)
    """
    cov = np.full((n_tokens, n_tokens), rho) + (1.0 - rho) * np.eye(n_tokens)
    return np.linalg.cholesky(cov)


def _draw_tokens(
    rng: np.random.Generator, n: int, cfg: TaskConfig, chol: np.ndarray | None
) -> np.ndarray:
    """Inputs of n prompts, shape (n, N+1, D); token correlation from ``chol``."""
    D, L = cfg.D, cfg.N + 1
    if chol is None:
        return cfg.sigma_x * rng.standard_normal((n, L, D))
    z = rng.standard_normal((n, D, L))
    if cfg.rho_variant == "intended":
        x = z @ chol.T  # each coordinate's token vector has covariance L Lᵀ = C
    else:
        x = z @ chol  # the paper's code: covariance Lᵀ L (not C)
    return cfg.sigma_x * np.ascontiguousarray(x.transpose(0, 2, 1))


def _generate_set(
    rng: np.random.Generator,
    cfg: TaskConfig,
    n_prompts: int,
    pool: np.ndarray | None,
    task_index: np.ndarray,
    keep_context: bool,
    chol: np.ndarray | None,
    keep_w: bool | None = None,
) -> PromptSet:
    """Draw ``n_prompts`` prompts block by block (see module docstring).

    ``keep_context`` keeps the raw contexts (x_context (n, N, D), y_context (n, N));
    ``keep_w`` (default: as ``keep_context``) the task vectors w (n, D). Neither changes
    what is drawn: the random stream, and every number, is the same either way.
    """
    D, N = cfg.D, cfg.N
    keep_w = keep_context if keep_w is None else keep_w
    c = np.empty((n_prompts, D + 1))
    q = np.zeros((n_prompts, D + 1))
    y = np.empty(n_prompts)
    w_all = np.empty((n_prompts, D)) if keep_w else None
    xc_all = np.empty((n_prompts, N, D)) if keep_context else None
    yc_all = np.empty((n_prompts, N)) if keep_context else None
    sqrt_d = np.sqrt(D)
    for start in range(0, n_prompts, CHUNK):
        stop = min(start + CHUNK, n_prompts)
        b = stop - start
        # Always draw a full block and keep the first b prompts: a larger set then extends
        # a smaller one with the same seed (prefix property).
        if pool is None:
            w = cfg.sigma_w * rng.standard_normal((CHUNK, D))[:b]
        else:
            w = pool[task_index[start:stop]]
        x = _draw_tokens(rng, CHUNK, cfg, chol)[:b]  # (b, N+1, D)
        labels = np.einsum("bla,ba->bl", x, w) / sqrt_d
        if cfg.sigma_eps > 0:
            labels += cfg.sigma_eps * rng.standard_normal((CHUNK, N + 1))[:b]
        xc, yc = x[:, :N, :], labels[:, :N]
        c[start:stop, :D] = np.einsum("bl,bla->ba", yc, xc) / (N + 1)
        c[start:stop, D] = np.einsum("bl,bl->b", yc, yc) / (N + 1)
        q[start:stop, :D] = x[:, N, :]
        y[start:stop] = labels[:, N]
        if keep_w:
            w_all[start:stop] = w
        if keep_context:
            xc_all[start:stop] = xc
            yc_all[start:stop] = yc
    return PromptSet(c=c, q=q, y=y, task_index=task_index, w=w_all, x_context=xc_all,
                     y_context=yc_all)


def make_task(config: TaskConfig | None = None, *, keep_train_context: bool = False,
              keep_test_context: bool = True, **overrides) -> Task:
    """Generate the task pool, the training prompts and both test sets.

    Parameters
    ----------
    config : TaskConfig, optional
        Task parameters (defaults: D=20, N=100, P=10⁴, K=P, seed 0). Keyword overrides
        are applied on top, e.g. ``make_task(D=5, N=10, P=200, seed=3)``.
    keep_train_context : bool
        Also keep the raw contexts of the training prompts (memory P·N·D).
    keep_test_context : bool
        Keep the raw contexts of both test sets (memory 2·test_prompts·N·D doubles:
        640 MB at D = 200, N = 100, 2000 prompts each). Only the per-prompt baselines
        (:func:`spinicl.theory.baselines.bayes_ridge`, :func:`spinicl.theory.baselines.dmmse`) need
        them; the test errors of weights (``models.mse``), the theory, sampling and
        training use the factors ``c``, ``q`` only, so callers without baselines pass
        ``False``. Every number is the same either way (same random streams); the test
        sets' task vectors ``w`` are kept in both cases.

    Returns
    -------
    Task
    """
    for name, flag in (("keep_train_context", keep_train_context),
                       ("keep_test_context", keep_test_context)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ConfigError(name, "True or False", flag)
    cfg = (config or TaskConfig()).replace(**overrides) if overrides else (config or TaskConfig())
    root = np.random.SeedSequence(cfg.seed)
    children = dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))
    rngs = {k: np.random.Generator(np.random.PCG64(s)) for k, s in children.items()}
    chol = token_cholesky(cfg.N + 1, cfg.rho) if cfg.rho != 0.0 else None

    K = cfg.pool_size
    pool = cfg.sigma_w * rngs["task_pool"].standard_normal((K, cfg.D))
    if cfg.K is None:
        train_index = np.arange(cfg.P)
    else:
        train_index = rngs["train"].integers(0, K, size=cfg.P)
    train = _generate_set(rngs["train"], cfg, cfg.P, pool, train_index, keep_train_context,
                          chol)
    n_test = cfg.test_prompts
    test_novel = _generate_set(rngs["test_novel"], cfg, n_test, None,
                               np.full(n_test, -1), keep_test_context, chol, keep_w=True)
    in_index = rngs["test_in_distribution"].integers(0, K, size=n_test)
    test_in = _generate_set(rngs["test_in_distribution"], cfg, n_test, pool, in_index,
                            keep_test_context, chol, keep_w=True)
    seeds = {"seed": cfg.seed,
             "streams": {k: list(map(int, s.spawn_key)) for k, s in children.items()}}
    return Task(config=cfg, pool=pool, train=train, test_novel=test_novel,
                test_in_distribution=test_in, seeds=seeds)
