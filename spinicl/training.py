"""Gradient training of linear attention on the Hamiltonian's own objective (docs/model.md §3).

The transformer is trained on exactly the prompts and the objective E of the spin glass,

    merged:    E(W)        = E₀(W) + (λ/2)‖W‖²_F,                    W ∈ R^{(D+1)×(D+1)}
    factored:  E(W_q, W_k) = E₀(W_qᵀW_k) + (λ/2)(‖W_q‖²_F + ‖W_k‖²_F),  W_q, W_k ∈ R^{d_k×(D+1)}

with E₀(W) = (1/2P) Σ_μ (y_q^μ − ŷ^μ(W))² (half the training MSE), through the models'
analytic gradients (:meth:`MergedModel.energy_and_grad`, :meth:`FactoredModel.energy_and_grad`:
one BLAS product per batch gradient). Three optimisers:

``gd``
    Full-batch gradient descent θ ← θ − η∇E. Default step (``lr=None``):
    merged model η = 1/λ_max(A), A = λI + SᵀS/P (the largest stable constant step is
    2/λ_max(A); at 1/λ_max(A) every mode contracts monotonically, and for λ > 0 GD
    converges to the ground state m from any start). Factored model: the energy is quartic, its curvature
    grows with the factors, so the default step is re-evaluated at every step as 1/L(θ) with
    the upper bound on the local Hessian norm

        L(θ) = a (‖W_q‖₂² + ‖W_k‖₂²) + a ‖W‖_F + ‖h‖ + λ,   a = λ_max(SᵀS/P),

    (‖·‖₂ spectral norm, W = W_qᵀW_k, h = Sᵀy/P; a‖W‖_F + ‖h‖ bounds ‖∇_W E₀‖₂, which
    enters the Hessian through the cross term between W_q and W_k). The bound exceeds the
    true largest Hessian eigenvalue by a factor 2.5–3 at a random start and 4.5 at the
    minimum (measured at D = 4 and 8), so this step is safe (in practice the energy
    decreases monotonically) but slower than a tuned one — Adam is faster. A given ``lr``
    is used as a constant step instead.
``sgd``
    Minibatch SGD: each epoch visits the P prompts once in a fresh random order, in
    minibatches of ``batch_size`` (the last one may be smaller); a step follows the
    gradient of E restricted to the minibatch B,
    E_B = (1/2|B|) Σ_{μ∈B} (y_q^μ − ŷ^μ)² + decay (see :func:`minibatch_model`).
    Default step: as ``gd`` with a replaced by a + tr(SᵀS/P)/|B|, a bound on the typical
    curvature of a minibatch (tr(SᵀS/P) = mean_μ ‖s^μ‖²).
``adam``
    Adam (Kingma & Ba) with bias correction, β₁ = 0.9, β₂ = 0.999, ε = 1e-8 and default
    lr = 1e-3 (torch's defaults); full batch unless ``batch_size`` < P. The L2 term is
    coupled, i.e. part of E (λ enters the gradient before the moment estimates), as in
    torch's ``Adam(weight_decay=wd)`` on a mean-squared loss with λ = wd/2
    (:func:`torch_weight_decay_to_lam`); torch's gradient is 2∇E, which changes only the
    relative size of ε.

All randomness (initial weights, minibatch order) comes from ``TrainConfig.seed`` through
``numpy.random.SeedSequence(seed, spawn_key=(11,))``, a stream distinct from the task's
own ``SeedSequence(task_seed).spawn(4)`` children, even when the two seeds are equal. Its
two children drive the initial weights (entries N(0, init_scale²), default
init_scale = 1/√(D+1) as the paper's "initial entries N(0, 1/(D+1))") and the minibatch
order. The same seed gives the same result bit for bit (fixed BLAS threads assumed).

A result is stored in an HDF5 file of format ``spinicl-training`` and read back by
:mod:`spinicl.io.training_file`; :mod:`spinicl.analysis.compare` places it in a sampled
run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from spinicl import linalg
from spinicl.config import ConfigError, check_choice, check_float, check_int
from spinicl.models import (
    MODELS,
    REPRESENTATIONS,
    FactoredModel,
    MatrixFreeData,
    MergedModel,
    Model,
    alignment,
    build_model,
    gd_cosine,
    mse,
)
from spinicl.prompts import PromptSet, Task

OPTIMIZERS = ("gd", "sgd", "adam")

#: ``spawn_key`` of the training stream: SeedSequence(seed, spawn_key=(11,)). The task
#: uses SeedSequence(seed).spawn(4), i.e. keys (0,) .. (3,), so the streams never coincide.
TRAIN_SPAWN_KEY = 11

#: Default learning rate of Adam (torch's default; the paper's Fig. 4b).
DEFAULT_ADAM_LR = 1e-3

#: Default minibatch size of ``sgd`` (capped at P).
DEFAULT_SGD_BATCH = 64

HISTORY_KEYS = ("epoch", "energy", "train_mse", "test_mse_novel", "test_mse_in_distribution")

#: A progress callback: ``progress(epochs_done, epochs_total)``, called after every epoch.
ProgressCallback = Callable[[int, int], Any]


# --------------------------------------------------------------------------- weight decay
def torch_weight_decay_to_lam(weight_decay: float) -> float:
    """λ of E equivalent to torch's ``Adam(weight_decay=wd)`` on a mean-squared loss: wd/2.

    torch's Adam (not AdamW) adds ``wd·θ`` to the gradient of the loss before the moment
    estimates ("coupled" L2). With the mean-squared loss L = (1/P) Σ_μ (y_q^μ − ŷ^μ)² = 2E₀,
    the decayed gradient is ∇L + wd·θ = 2(∇E₀ + (wd/2)θ) = 2∇E with λ = wd/2: torch then
    minimises E at λ = wd/2 (Adam is invariant to the overall factor 2 up to its ε). The
    paper trained at ``weight_decay=0.01``, i.e. λ = 0.005, while its theory used λ = 0.01.

    Parameters
    ----------
    weight_decay : float
        torch's ``weight_decay`` (>= 0, dimensionless like λ).

    Returns
    -------
    float
        λ = weight_decay / 2.
    """
    return check_float("torch_weight_decay", weight_decay, low=0.0) / 2.0


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run except the task and λ.

    Parameters
    ----------
    optimizer : {"gd", "sgd", "adam"}
        Default ``adam`` (as the paper).
    lr : float or None
        Learning rate (> 0). None: the optimiser's default (module docstring): gd
        1/λ_max(A) (merged) or the per-epoch curvature bound (factored); sgd the same
        with the minibatch curvature; adam 1e-3.
    epochs : int
        Passes over the P training prompts (>= 1). A full-batch epoch is one step.
        Default 5000 (the paper's Fig. 4b).
    batch_size : int or None
        Minibatch size, in 1..P (checked against P by :func:`train`). None: P for ``gd``
        and ``adam``, min(64, P) for ``sgd``. ``gd`` is full batch only.
    model : {"merged", "factored"}
    dk : int or None
        Rank of the factors (factored model, >= 1; default D+1). Ignored when merged.
    init_scale : float or None
        Standard deviation of the initial entries of every parameter matrix (>= 0;
        default 1/√(D+1), the paper's N(0, 1/(D+1))). 0 starts at θ = 0 (a saddle of
        the factored energy: it never leaves it).
    seed : int
        Seed of the training stream (initial weights and minibatch order), >= 0.
    record_every : int
        Epochs between records of the history (>= 1); epoch 0 and the last epoch are
        always recorded.
    representation : {"auto", "dense", "matrix-free"}
        Representation of the full-batch data term (minibatches are always matrix-free).
    adam_beta1, adam_beta2 : float
        Adam's moment decay rates, in [0, 1).
    adam_eps : float
        Adam's ε (> 0), added to √v̂.
    """

    optimizer: str = "adam"
    lr: float | None = None
    epochs: int = 5000
    batch_size: int | None = None
    model: str = "merged"
    dk: int | None = None
    init_scale: float | None = None
    seed: int = 0
    record_every: int = 1
    representation: str = "auto"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "optimizer", check_choice("optimizer", self.optimizer, OPTIMIZERS))
        if self.lr is not None:
            set_(self, "lr", check_float("lr", self.lr, low=0.0, low_open=True,
                                         note="the learning rate (step size)"))
        set_(self, "epochs", check_int("epochs", self.epochs, 1))
        if self.batch_size is not None:
            # the range 1..P (and P for gd) is checked against the task by train()
            set_(self, "batch_size", check_int("batch_size", self.batch_size, 1))
        set_(self, "model", check_choice("model", self.model, MODELS))
        if self.dk is not None:
            set_(self, "dk", check_int("dk", self.dk, 1))
        if self.init_scale is not None:
            set_(self, "init_scale", check_float("init_scale", self.init_scale, low=0.0))
        set_(self, "seed", check_int("seed", self.seed, 0, 2**63 - 1))
        set_(self, "record_every", check_int("record_every", self.record_every, 1))
        set_(self, "representation",
             check_choice("representation", self.representation, REPRESENTATIONS))
        set_(self, "adam_beta1", check_float("adam_beta1", self.adam_beta1, low=0.0,
                                             high=1.0, high_open=True))
        set_(self, "adam_beta2", check_float("adam_beta2", self.adam_beta2, low=0.0,
                                             high=1.0, high_open=True))
        set_(self, "adam_eps", check_float("adam_eps", self.adam_eps, low=0.0, low_open=True))

    def resolved_batch_size(self, P: int) -> int:
        """The minibatch size for P training prompts (validated: 1..P; P for ``gd``)."""
        P = int(P)
        if self.batch_size is None:
            return min(DEFAULT_SGD_BATCH, P) if self.optimizer == "sgd" else P
        if not 1 <= self.batch_size <= P:
            raise ConfigError("batch_size", f"an integer in 1..P = {P}", self.batch_size)
        if self.optimizer == "gd" and self.batch_size != P:
            raise ConfigError("batch_size", f"P = {P} (or omitted) for full-batch gd",
                              self.batch_size, "use --optimizer sgd for minibatches")
        return self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def training_seed_sequence(seed: int) -> np.random.SeedSequence:
    """The training stream ``SeedSequence(seed, spawn_key=(11,))`` (module docstring)."""
    return np.random.SeedSequence(int(seed), spawn_key=(TRAIN_SPAWN_KEY,))


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    W : ndarray, shape ((D+1)²,)
        Final effective merged weights (row-major; W_qᵀW_k for the factored model).
    theta : ndarray, shape (n_params,)
        Final raw parameters: W itself (merged, n_params = (D+1)²) or (vec W_q, vec W_k)
        (factored, n_params = 2·d_k·(D+1), row-major factors as ``FactoredModel.join``).
    history : dict of str to ndarray
        Per-record arrays of equal length (``record_every`` epochs apart, epoch 0 and
        the last epoch included): ``epoch`` (int), ``energy`` (E at the training λ, full
        batch), ``train_mse`` (= 2E₀), ``test_mse_novel``, ``test_mse_in_distribution``.
    energy, train_mse, test_mse_novel, test_mse_in_distribution : float
        Final values (the last record).
    seconds : float
        Wall-clock time of the training loop (s), records included, set-up excluded.
    config : TrainConfig
    lam : float
        Weight decay λ of E used in training.
    model : {"merged", "factored"}
    dk : int or None
        Rank of the factors (None for the merged model).
    lr : float or None
        The constant step used (resolved default included); None for the factored
        model's per-epoch curvature step (``step_rule`` says which).
    step_rule : str
        The step rule in words.
    batch_size : int
        Minibatch size used (P for full batch).
    epochs_run : int
        Epochs completed (< ``config.epochs`` only when training diverged).
    diverged : bool
        True when the energy became non-finite; training stopped there.
    seeds : dict
        ``{"seed": ..., "spawn_key": [11]}``: regenerates every random number.
    task_config : dict
        ``task.config.to_dict()`` of the task trained on (identifies the prompts with the
        task seed; its ``lam`` entry is the task's default, ``lam`` above is the one used).
    """

    W: np.ndarray
    theta: np.ndarray
    history: dict[str, np.ndarray]
    energy: float
    train_mse: float
    test_mse_novel: float
    test_mse_in_distribution: float
    seconds: float
    config: TrainConfig
    lam: float
    model: str
    dk: int | None
    lr: float | None
    step_rule: str
    batch_size: int
    epochs_run: int
    diverged: bool
    seeds: dict = field(default_factory=dict)
    task_config: dict = field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        """Final metrics as a flat dict of floats."""
        return {"final_energy": self.energy, "train_mse": self.train_mse,
                "test_mse_novel": self.test_mse_novel,
                "test_mse_in_distribution": self.test_mse_in_distribution}

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: final metrics, settings and timing (no arrays)."""
        return {**self.final, "lam": self.lam, "model": self.model, "dk": self.dk,
                "optimizer": self.config.optimizer, "lr": self.lr,
                "step_rule": self.step_rule, "batch_size": self.batch_size,
                "epochs": self.config.epochs, "epochs_run": self.epochs_run,
                "diverged": self.diverged, "seconds": self.seconds, "seeds": self.seeds}


# --------------------------------------------------------------------------- minibatch
class _SubsetData(MatrixFreeData):
    """Matrix-free data term of a subset of prompts (E₀ restricted to the subset).

    Unlike :class:`MatrixFreeData` it does not compute the field h on construction (a
    minibatch gradient needs only the residuals): the constructor is O(1), and a batch
    gradient costs two GEMMs of |B|·(D+1)²·R.
    """

    def __init__(self, prompts: PromptSet):  # no super().__init__: h is computed lazily
        self.prompts = prompts
        P, d1 = prompts.c.shape
        self.D, self.P, self.n = d1 - 1, P, d1 * d1

    @cached_property
    def field(self) -> np.ndarray:  # type: ignore[override]
        return self._transpose_product(self.prompts.y[None, :])[0]

    @cached_property
    def e0(self) -> float:  # type: ignore[override]
        return 0.5 * float(self.prompts.y @ self.prompts.y) / self.P


def minibatch_model(model: Model, prompts: PromptSet) -> Model:
    """The same model (kind, λ, d_k) with its data term restricted to ``prompts``.

    Its energy is E_B(θ) = (1/2|B|) Σ_{μ∈B} (y_q^μ − ŷ^μ)² + decay, and its
    ``energy_and_grad`` is the minibatch gradient used by ``sgd`` (matrix-free, cost
    O(|B|·(D+1)²) per replica).

    Parameters
    ----------
    model : MergedModel or FactoredModel
    prompts : PromptSet
        The minibatch (factors ``c``, ``q`` of shape (|B|, D+1), labels ``y`` (|B|,)).

    Returns
    -------
    MergedModel or FactoredModel
    """
    return model.with_data(_SubsetData(prompts))


# --------------------------------------------------------------------------- curvature
def data_curvature(model: Model) -> float:
    """λ_max(A₀) of the data term, A₀ = SᵀS/P (dimension 1/(weight²) like E).

    Dense: the top eigenvalue of the Gram matrix (LAPACK, one eigenvalue). Matrix-free:
    Lanczos (ARPACK) on the operator W ↦ W A₀, started from a fixed vector.
    """
    return model.data.largest_eigenvalue(tol=1e-10)


def _mean_feature_norm2(prompts: PromptSet) -> float:
    """tr(SᵀS/P) = mean_μ ‖c^μ‖²‖q^μ‖² (‖s^μ‖² of the feature s = c ⊗ q)."""
    return float(np.mean(np.einsum("pa,pa->p", prompts.c, prompts.c)
                         * np.einsum("pa,pa->p", prompts.q, prompts.q)))


def _factored_step(model: FactoredModel, theta: np.ndarray, curvature: float,
                   field_norm: float) -> float:
    """1/L(θ) with L(θ) = a(‖W_q‖₂² + ‖W_k‖₂²) + a‖W‖_F + ‖h‖ + λ (module docstring)."""
    Wq, Wk = model.split(theta)
    sq = np.linalg.norm(Wq[0], 2) ** 2 + np.linalg.norm(Wk[0], 2) ** 2
    w_norm = np.linalg.norm(Wq[0].T @ Wk[0])
    return 1.0 / (curvature * (sq + w_norm) + field_norm + model.lam)


# --------------------------------------------------------------------------- training
def initial_parameters(task: Task, config: TrainConfig, n_params: int) -> np.ndarray:
    """Initial θ of shape (n_params,): entries N(0, init_scale²) from the training stream."""
    scale = (1.0 / math.sqrt(task.config.D + 1) if config.init_scale is None
             else config.init_scale)
    init_seq, _ = training_seed_sequence(config.seed).spawn(2)
    rng = np.random.Generator(np.random.PCG64(init_seq))
    return scale * rng.standard_normal(n_params)


def train(task: Task, config: TrainConfig | None = None, lam: float | None = None,
          progress: ProgressCallback | None = None, *, theta0: np.ndarray | None = None,
          memory_budget: Any = None) -> TrainResult:
    """Train merged or factored linear attention on the task's prompts, minimising E.

    Parameters
    ----------
    task : Task
        Training prompts ``task.train`` (the objective) and the two test sets (recorded).
    config : TrainConfig, optional
        Optimiser and its settings (default ``TrainConfig()``: Adam, lr 1e-3, 5000 epochs).
    lam : float, optional
        Weight decay λ of E (>= 0; default ``task.config.lam``). For torch's
        ``weight_decay`` use :func:`torch_weight_decay_to_lam`.
    progress : callable, optional
        ``progress(epochs_done, epochs_total)``, called after every epoch (a progress bar).
    theta0 : ndarray, shape (n_params,), optional
        Start here instead of the random initialisation (the minibatch order still comes
        from the seed).
    memory_budget : int, str or None
        For the choice of the full-batch representation (see ``build_model``).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Bad λ, batch size outside 1..P (or < P for ``gd``), d_k < 1, or a bad ``theta0``.
    """
    cfg = config if config is not None else TrainConfig()
    lam = task.config.lam if lam is None else check_float("lam", lam, low=0.0)
    P = task.config.P
    batch = cfg.resolved_batch_size(P)
    model = build_model(task, cfg.model, lam=lam, dk=cfg.dk, representation=cfg.representation,
                        memory_budget=memory_budget)
    # a quadratic (Gaussian) energy has the constant stable step 1/λ_max(A); the others a
    # per-step curvature bound
    factored = not model.gaussian
    n_params = model.n_spins
    if theta0 is None:
        theta = initial_parameters(task, cfg, n_params)
    else:
        theta = np.array(theta0, dtype=np.float64).reshape(-1)
        if theta.shape != (n_params,) or not np.all(np.isfinite(theta)):
            raise ConfigError("theta0", f"a finite array of shape ({n_params},)",
                              np.shape(theta0))
    theta = theta[None, :].copy()  # (1, n_params): a batch of one replica
    _, order_seq = training_seed_sequence(cfg.seed).spawn(2)
    order_rng = np.random.Generator(np.random.PCG64(order_seq))

    # ---------------------------------------------------------------- step rule
    minibatch = batch < P
    curvature = field_norm = float("nan")
    lr: float | None = cfg.lr
    if cfg.optimizer == "adam":
        lr = DEFAULT_ADAM_LR if cfg.lr is None else cfg.lr
        step_rule = f"adam lr={lr:g}"
    elif cfg.lr is not None:
        step_rule = f"constant step {cfg.lr:g}"
    else:
        curvature = data_curvature(model)
        label = "1/lambda_max(A)"
        if cfg.optimizer == "sgd":
            curvature += _mean_feature_norm2(task.train) / batch
            label = "1/(lambda_max(A0) + tr(A0)/B + lam)"
        if factored:
            field_norm = float(np.linalg.norm(model.data.field))
            lr = None
            step_rule = ("per-step curvature bound 1/(a(|Wq|_2^2+|Wk|_2^2+|W|_F)+|h|+lam), "
                         f"a={curvature:.6g}")
        else:
            lr = 1.0 / (curvature + lam)
            step_rule = f"{label} = {lr:.6g}"

    def step_size(th: np.ndarray) -> float:
        if lr is not None:
            return lr
        return _factored_step(model, th, curvature, field_norm)

    # ---------------------------------------------------------------- records
    rec: dict[str, list] = {k: [] for k in HISTORY_KEYS}
    tests = (task.test_novel, task.test_in_distribution)

    def record(epoch: int, energy: float) -> None:
        W = model.effective_weights(theta)
        e0 = energy - 0.5 * lam * float(np.einsum("ri,ri->", theta, theta))
        rec["epoch"].append(epoch)
        rec["energy"].append(energy)
        rec["train_mse"].append(2.0 * e0)
        rec["test_mse_novel"].append(float(mse(W, tests[0])[0]))
        rec["test_mse_in_distribution"].append(float(mse(W, tests[1])[0]))

    b1, b2, eps = cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps
    m1 = np.zeros_like(theta)
    m2 = np.zeros_like(theta)
    t_adam = 0

    def update(grad: np.ndarray) -> None:
        nonlocal t_adam
        if cfg.optimizer == "adam":
            t_adam += 1
            m1[...] = b1 * m1 + (1.0 - b1) * grad
            m2[...] = b2 * m2 + (1.0 - b2) * (grad * grad)
            denom = np.sqrt(m2 / (1.0 - b2**t_adam))
            denom += eps
            theta[...] -= (lr / (1.0 - b1**t_adam)) * m1 / denom
        else:
            theta[...] -= step_size(theta) * grad

    c_all, q_all, y_all = task.train.c, task.train.q, task.train.y
    diverged = False
    epochs_run = 0
    start = time.perf_counter()
    # overflow on the way to a divergence is detected and reported (``diverged``)
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(cfg.epochs):
            if not minibatch:
                e, g = model.energy_and_grad(theta)
                energy = float(e[0])
                if not math.isfinite(energy):
                    diverged = True
                    break
                if epoch % cfg.record_every == 0:
                    record(epoch, energy)
                update(g)
            else:
                if epoch % cfg.record_every == 0:
                    energy = float(model.energy(theta)[0])
                    if not math.isfinite(energy):
                        diverged = True
                        break
                    record(epoch, energy)
                perm = order_rng.permutation(P)
                cp, qp, yp = c_all[perm], q_all[perm], y_all[perm]
                for s in range(0, P, batch):
                    sub = PromptSet(c=cp[s:s + batch], q=qp[s:s + batch], y=yp[s:s + batch],
                                    task_index=perm[s:s + batch])
                    _, g = minibatch_model(model, sub).energy_and_grad(theta)
                    update(g)
                if not np.all(np.isfinite(theta)):
                    diverged = True
                    epochs_run = epoch + 1
                    break
            epochs_run = epoch + 1
            if progress is not None:
                progress(epochs_run, cfg.epochs)
        final_energy = float(model.energy(theta)[0])
        if not math.isfinite(final_energy):
            diverged = True
        if not rec["epoch"] or rec["epoch"][-1] != epochs_run:
            record(epochs_run, final_energy)
    seconds = time.perf_counter() - start

    history = {k: np.asarray(v, dtype=np.int64 if k == "epoch" else np.float64)
               for k, v in rec.items()}
    return TrainResult(
        W=model.effective_weights(theta)[0].copy(), theta=theta[0].copy(), history=history,
        energy=float(history["energy"][-1]), train_mse=float(history["train_mse"][-1]),
        test_mse_novel=float(history["test_mse_novel"][-1]),
        test_mse_in_distribution=float(history["test_mse_in_distribution"][-1]),
        seconds=seconds, config=cfg, lam=lam, model=cfg.model,
        dk=getattr(model, "dk", None), lr=lr, step_rule=step_rule, batch_size=batch,
        epochs_run=epochs_run, diverged=diverged,
        seeds={"seed": cfg.seed, "spawn_key": [TRAIN_SPAWN_KEY]},
        task_config=task.config.to_dict(),
    )


# --------------------------------------------------------------------------- comparison
COMPARE_KEYS = ("final_energy", "train_mse", "test_mse_novel", "test_mse_in_distribution",
                "ground_state_energy", "ground_state_test_mse_novel",
                "relative_distance_to_ground_state", "cosine_to_ground_state", "alignment",
                "gd_cosine")


def ridge_ground_state(model: MergedModel) -> np.ndarray:
    """m = A⁻¹h of a merged model with λ > 0, shape (n,) (the ground state, no traces).

    Dense: Cholesky solve; matrix-free: conjugate gradients to a relative residual 1e-12.
    """
    return linalg.ridge_mean(model.field, chol=model.cholesky(
        required=model.representation == "dense"), matvec=model.precision_product)


def same_prompts(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two task configs (``TaskConfig.to_dict()``) make the same prompts: every
    entry but ``lam`` (which does not enter the prompts) is equal."""
    return {k: v for k, v in a.items() if k != "lam"} == {
        k: v for k, v in b.items() if k != "lam"}


def compare_to_ground_state(task: Task, result: TrainResult,
                            lam: float | None = None) -> dict[str, Any]:
    """Where a trained model sits relative to the exact ground state at λ.

    Ground state: merged model — m = A⁻¹h for λ > 0, the minimum-norm minimiser of E₀
    for λ = 0; factored model — the nuclear-norm optimum argmin E₀(W) + λ‖W‖_*
    (:func:`spinicl.theory.factored_ground_state`), the factored model's global minimum
    when d_k ≥ D+1. For d_k < D+1 no exact reference exists: the ground-state entries
    are NaN and ``ground_state_note`` says why.

    Parameters
    ----------
    task : Task
        The task the model was trained on (same prompts).
    result : TrainResult
    lam : float, optional
        λ of the comparison (default: the training λ, ``result.lam``).

    Raises
    ------
    ConfigError
        (``task``) when ``task`` does not make the prompts the model was trained on.

    Returns
    -------
    dict
        ``final_energy`` (E of the trained θ at λ), ``train_mse``, ``test_mse_novel``,
        ``test_mse_in_distribution`` (of the trained model), ``ground_state_energy``,
        ``ground_state_test_mse_novel``, ``relative_distance_to_ground_state``
        (‖W − W*‖/‖W*‖ on the effective weights), ``cosine_to_ground_state``,
        ``alignment`` and ``gd_cosine`` (cosine with the one-step-GD weights I_D ⊕ 0) of the
        trained W; plus ``lam``, ``ground_state_kind`` (``ridge``, ``min-norm``,
        ``nuclear-norm`` or ``none``) and ``ground_state_note`` (empty unless NaN).
    """
    lam = result.lam if lam is None else check_float("lam", lam, low=0.0)
    if result.task_config and not same_prompts(result.task_config, task.config.to_dict()):
        raise ConfigError("task", "the task the model was trained on (same task config and "
                          "seed)", task.config.to_dict())
    model = build_model(task, result.model, lam=lam, dk=result.dk,
                        representation=result.config.representation)
    W = result.W
    note = ""
    nan = float("nan")
    gs = model.ground_state()
    Wg, kind, e_ground, note = gs.W, gs.kind, gs.energy, gs.note
    if Wg is not None:
        ng = float(np.linalg.norm(Wg))
        dist = float(np.linalg.norm(W - Wg)) / ng if ng > 0 else nan
        nw = float(np.linalg.norm(W))
        cos = float(W @ Wg) / (nw * ng) if nw > 0 and ng > 0 else nan
        gs_test = float(mse(Wg[None], task.test_novel)[0])
    else:
        dist = cos = gs_test = nan
    return {
        "final_energy": float(model.energy(result.theta[None])[0]),
        "train_mse": result.train_mse,
        "test_mse_novel": result.test_mse_novel,
        "test_mse_in_distribution": result.test_mse_in_distribution,
        "ground_state_energy": e_ground,
        "ground_state_test_mse_novel": gs_test,
        "relative_distance_to_ground_state": dist,
        "cosine_to_ground_state": cos,
        "alignment": float(alignment(W[None])[0]),
        "gd_cosine": float(gd_cosine(W[None])[0]),
        "lam": lam,
        "ground_state_kind": kind,
        "ground_state_note": note,
    }
