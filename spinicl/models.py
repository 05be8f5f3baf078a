"""Hamiltonians of linear attention over a batch of replicas (docs/model.md §1.2–1.3, §1.5).

Every model works on a batch of R replicas at once: spins ``W`` of shape (R, n_spins).
``energy(W)`` is (R,), ``grad(W)`` is (R, n_spins), and observables are computed on the
effective merged weights ``effective_weights(W)`` of shape (R, (D+1)²), row-major
W_ab at index a·(D+1) + b.

The data term E₀(W) = (1/2P) Σ_μ (y_q^μ − s^μ·W)² has two representations with equal
values (to rounding):

* :class:`DenseData` holds the Gram matrix A₀ = SᵀS/P (n × n): a batch gradient is one
  GEMM ``W @ A₀`` of n²R multiply-adds. Best when P > n/2 and n² fits in memory.
* :class:`MatrixFreeData` holds only the factors c, q (P × (D+1) each, memory O(P·D)):
  S W = rowsum((C Wᵀ...)), Sᵀr = Cᵀ diag(r) Q — two GEMMs of P(D+1)²R each.

:func:`build_model` picks one from a memory budget (``representation="auto"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinicl.config import (
    ConfigError,
    check_choice,
    check_float,
    check_int,
    format_bytes,
    parse_memory,
)
from spinicl.prompts import PromptSet, Task

REPRESENTATIONS = ("auto", "dense", "matrix-free")
MODELS = ("merged", "factored")

#: Largest temporary (elements) the matrix-free products allocate at once.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- helpers
def _as_batch(W: np.ndarray, n: int, name: str = "W") -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] != n:
        raise ValueError(f"{name} must have shape (R, {n}) (got {W.shape})")
    return W


def predict(W: np.ndarray, prompts: PromptSet) -> np.ndarray:
    """Predictions ŷ = cᵀ W q of merged weights on a prompt set.

    Parameters
    ----------
    W : ndarray, shape (R, (D+1)²)
        Merged weights, row-major.
    prompts : PromptSet
        P_t prompts with factors ``c``, ``q`` of shape (P_t, D+1).

    Returns
    -------
    ndarray, shape (R, P_t)
    """
    c, q = prompts.c, prompts.q
    d1 = c.shape[1]
    W = _as_batch(W, d1 * d1)
    R = W.shape[0]
    # M[b, (r, a)] = W_r[a, b]:  (Q @ M)[mu, r, a] = (W_r q_mu)_a
    M = W.reshape(R, d1, d1).transpose(2, 0, 1).reshape(d1, R * d1)
    out = np.empty((R, c.shape[0]))
    block = max(1, _BLOCK_ELEMENTS // (R * d1))
    for s in range(0, c.shape[0], block):
        t = (q[s : s + block] @ M).reshape(-1, R, d1)
        out[:, s : s + block] = np.einsum("pa,pra->rp", c[s : s + block], t)
    return out


def mse(W: np.ndarray, prompts: PromptSet) -> np.ndarray:
    """Mean squared error (1/P_t) Σ_μ (y^μ − ŷ^μ)² of merged weights, shape (R,)."""
    r = prompts.y[None, :] - predict(W, prompts)
    return np.einsum("rp,rp->r", r, r) / prompts.n_prompts


def alignment(W: np.ndarray) -> np.ndarray:
    """The paper's contrast ratio ⟨W, I_{D+1}⟩_F / (‖W‖_F √(D+1)), shape (R,)."""
    W = np.atleast_2d(W)
    d1 = round(np.sqrt(W.shape[1]))
    diag = W[:, :: d1 + 1].sum(axis=1)
    return diag / (np.linalg.norm(W, axis=1) * np.sqrt(d1))


def gd_cosine(W: np.ndarray) -> np.ndarray:
    """Cosine with the one-step-GD weights I_D ⊕ 0, shape (R,)."""
    W = np.atleast_2d(W)
    d1 = round(np.sqrt(W.shape[1]))
    diag = W[:, : (d1 - 1) * (d1 + 1) : d1 + 1].sum(axis=1)
    return diag / (np.linalg.norm(W, axis=1) * np.sqrt(d1 - 1))


def active_mask(D: int) -> np.ndarray:
    """Boolean mask over the (D+1)² spins: True for the D(D+1) spins b ≤ D that enter
    predictions; False for the last column of W (decoupled, weight decay only)."""
    m = np.ones((D + 1, D + 1), dtype=bool)
    m[:, D] = False
    return m.ravel()


# --------------------------------------------------------------------------- data terms
class DenseData:
    """Data term E₀ through the dense Gram matrix A₀ = SᵀS/P.

    Attributes
    ----------
    gram : ndarray, shape (n, n)
        A₀ = SᵀS/P (symmetric positive semi-definite).
    field : ndarray, shape (n,)
        h = Sᵀy/P.
    e0 : float
        yᵀy/(2P): the energy of W = 0.
    """

    kind = "dense"

    def __init__(self, gram: np.ndarray, field: np.ndarray, e0: float, D: int, P: int):
        self.gram = gram
        self.field = field
        self.e0 = float(e0)
        self.D = D
        self.P = P
        self.n = (D + 1) ** 2

    @classmethod
    def from_prompts(cls, prompts: PromptSet) -> DenseData:
        P, d1 = prompts.c.shape
        n = d1 * d1
        gram = np.zeros((n, n))
        field = np.zeros(n)
        for start, S in prompts.feature_chunks():
            gram += S.T @ S
            field += S.T @ prompts.y[start : start + S.shape[0]]
        gram /= P
        field /= P
        gram = 0.5 * (gram + gram.T)
        return cls(gram, field, 0.5 * float(prompts.y @ prompts.y) / P, d1 - 1, P)

    @staticmethod
    def bytes_needed(D: int, P: int) -> int:
        """Gram matrix, its Cholesky factor and a work copy."""
        n = (D + 1) ** 2
        return 3 * 8 * n * n + 8 * 2048 * n

    def gram_product(self, W: np.ndarray) -> np.ndarray:
        """W A₀ for a batch, shape (R, n): one GEMM."""
        return W @ self.gram

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E₀ (R,) and ∇E₀ = W A₀ − h (R, n)."""
        G = W @ self.gram
        e = 0.5 * np.einsum("ri,ri->r", W, G) - W @ self.field + self.e0
        G -= self.field
        return e, G


class MatrixFreeData:
    """Data term E₀ through the prompt factors c, q (memory O(P·D)).

    Attributes
    ----------
    prompts : PromptSet
        The training prompts (factors c, q and labels y).
    field : ndarray, shape (n,)
        h = Sᵀy/P.
    e0 : float
        yᵀy/(2P).
    """

    kind = "matrix-free"

    def __init__(self, prompts: PromptSet):
        self.prompts = prompts
        P, d1 = prompts.c.shape
        self.D, self.P, self.n = d1 - 1, P, d1 * d1
        self.field = self._transpose_product(prompts.y[None, :])[0]
        self.e0 = 0.5 * float(prompts.y @ prompts.y) / P

    @staticmethod
    def bytes_needed(D: int, P: int) -> int:
        return 8 * 3 * P * (D + 1) + 8 * _BLOCK_ELEMENTS * 2

    def _transpose_product(self, r: np.ndarray) -> np.ndarray:
        """Sᵀ r / P for a batch of residual vectors r (R, P); returns (R, n).

        G_r[a, b] = (1/P) Σ_μ c_μa r_rμ q_μb = (1/P) [Cᵀ (r_r ∘ Q)]_ab.
        """
        c, q = self.prompts.c, self.prompts.q
        d1 = c.shape[1]
        R = r.shape[0]
        out = np.zeros((d1, R * d1))
        block = max(1, _BLOCK_ELEMENTS // (R * d1))
        for s in range(0, self.P, block):
            rq = (r[:, s : s + block].T[:, :, None] * q[s : s + block, None, :]).reshape(
                -1, R * d1
            )
            out += c[s : s + block].T @ rq
        # out[a, (r, b)] -> (r, a, b)
        return out.reshape(d1, R, d1).transpose(1, 0, 2).reshape(R, d1 * d1) / self.P

    def gram_product(self, W: np.ndarray) -> np.ndarray:
        """W A₀ = Sᵀ(S W)/P for a batch, shape (R, n): two GEMMs."""
        return self._transpose_product(predict(W, self.prompts))

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E₀ (R,) and ∇E₀ = −Sᵀ(y − SW)/P (R, n)."""
        r = self.prompts.y[None, :] - predict(W, self.prompts)
        e = 0.5 * np.einsum("rp,rp->r", r, r) / self.P
        return e, -self._transpose_product(r)


DataTerm = DenseData | MatrixFreeData


# --------------------------------------------------------------------------- models
@dataclass
class MergedModel:
    """Merged linear attention W ∈ R^{(D+1)×(D+1)}: E(W) = E₀(W) + (λ/2)‖W‖².

    The Boltzmann law p_β ∝ exp(−βE) is Gaussian with precision βA, A = λI + A₀, and
    mean m = A⁻¹h (see :mod:`spinicl.theory`).

    Parameters
    ----------
    data : DenseData or MatrixFreeData
    lam : float
        Weight decay λ >= 0.
    """

    data: DataTerm
    lam: float
    name = "merged"

    @property
    def D(self) -> int:
        return self.data.D

    @property
    def n_spins(self) -> int:
        return self.data.n

    @property
    def representation(self) -> str:
        return self.data.kind

    def effective_weights(self, W: np.ndarray) -> np.ndarray:
        """Merged weights, (R, (D+1)²): the spins themselves."""
        return _as_batch(W, self.n_spins)

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (R,) and gradient (R, n) for a batch of spins W (R, n)."""
        W = _as_batch(W, self.n_spins)
        e, g = self.data.energy_and_grad(W)
        e += 0.5 * self.lam * np.einsum("ri,ri->r", W, W)
        g += self.lam * W
        return e, g

    def energy(self, W: np.ndarray) -> np.ndarray:
        return self.energy_and_grad(W)[0]

    def grad(self, W: np.ndarray) -> np.ndarray:
        return self.energy_and_grad(W)[1]

    def precision_product(self, W: np.ndarray) -> np.ndarray:
        """W A = W A₀ + λW, shape (R, n) (A symmetric)."""
        W = _as_batch(W, self.n_spins)
        return self.data.gram_product(W) + self.lam * W

    def precision(self) -> np.ndarray:
        """The dense precision A = λI + SᵀS/P, shape (n, n) (dense representation only)."""
        if not isinstance(self.data, DenseData):
            raise TypeError("the dense precision A needs representation='dense'")
        A = self.data.gram.copy()
        A[np.diag_indices_from(A)] += self.lam
        return A

    @property
    def field(self) -> np.ndarray:
        return self.data.field


@dataclass
class FactoredModel:
    """Factored attention W = W_qᵀ W_k with W_q, W_k ∈ R^{d_k×(D+1)} (docs/model.md §1.5).

    Spins θ = (vec W_q, vec W_k), shape (R, 2·d_k·(D+1)), row-major factors;
    E(θ) = E₀(W_qᵀW_k) + (λ/2)(‖W_q‖² + ‖W_k‖²). Quartic, non-convex, gauge symmetric;
    observables use the effective W.
    """

    data: DataTerm
    lam: float
    dk: int
    name = "factored"

    @property
    def D(self) -> int:
        return self.data.D

    @property
    def n_spins(self) -> int:
        return 2 * self.dk * (self.D + 1)

    @property
    def representation(self) -> str:
        return self.data.kind

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors (W_q, W_k), each (R, d_k, D+1), as views of θ."""
        theta = _as_batch(theta, self.n_spins, "theta")
        R, d1, half = theta.shape[0], self.D + 1, self.dk * (self.D + 1)
        return (theta[:, :half].reshape(R, self.dk, d1),
                theta[:, half:].reshape(R, self.dk, d1))

    @staticmethod
    def join(Wq: np.ndarray, Wk: np.ndarray) -> np.ndarray:
        """Spins θ (R, 2·d_k·(D+1)) from factors of shape (R, d_k, D+1)."""
        R = Wq.shape[0]
        return np.concatenate([Wq.reshape(R, -1), Wk.reshape(R, -1)], axis=1)

    def effective_weights(self, theta: np.ndarray) -> np.ndarray:
        """W = W_qᵀ W_k, shape (R, (D+1)²)."""
        Wq, Wk = self.split(theta)
        return np.matmul(Wq.transpose(0, 2, 1), Wk).reshape(Wq.shape[0], -1)

    def energy_and_grad(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (R,) and gradient (R, 2·d_k·(D+1)).

        With G = ∂E₀/∂W: ∂E/∂W_q = W_k Gᵀ + λW_q, ∂E/∂W_k = W_q G + λW_k.
        """
        theta = _as_batch(theta, self.n_spins, "theta")
        Wq, Wk = self.split(theta)
        R, d1 = theta.shape[0], self.D + 1
        W = np.matmul(Wq.transpose(0, 2, 1), Wk).reshape(R, -1)
        e, G = self.data.energy_and_grad(W)
        G = G.reshape(R, d1, d1)
        gq = np.matmul(Wk, G.transpose(0, 2, 1))
        gk = np.matmul(Wq, G)
        e += 0.5 * self.lam * np.einsum("ri,ri->r", theta, theta)
        g = self.join(gq, gk)
        g += self.lam * theta
        return e, g

    def energy(self, theta: np.ndarray) -> np.ndarray:
        return self.energy_and_grad(theta)[0]

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.energy_and_grad(theta)[1]


Model = MergedModel | FactoredModel


# --------------------------------------------------------------------------- choice
def choose_representation(D: int, P: int, representation: str = "auto",
                          memory_budget=None) -> str:
    """Pick the data representation of E₀ within a memory budget.

    ``auto`` prefers the dense Gram matrix when P > n/2 (one n²R GEMM costs less than the
    two P·n·R matrix-free GEMMs) and it fits the budget; otherwise the matrix-free form.

    Parameters
    ----------
    D, P : int
        Token dimension and number of prompts.
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : int, str or None
        Bytes (or a size such as ``"2GB"``); None means half the available memory.

    Returns
    -------
    str
        ``"dense"`` or ``"matrix-free"``.

    Raises
    ------
    ConfigError
        When the requested (or any) representation does not fit the budget.
    """
    representation = check_choice("representation", representation, REPRESENTATIONS)
    budget = parse_memory(memory_budget)
    need = {"dense": DenseData.bytes_needed(D, P),
            "matrix-free": MatrixFreeData.bytes_needed(D, P)}
    if representation != "auto":
        if need[representation] > budget:
            raise ConfigError(
                "memory_budget", f">= {format_bytes(need[representation])} for the "
                f"{representation} representation at D={D}, P={P}", format_bytes(budget))
        return representation
    n = (D + 1) ** 2
    if P > n / 2 and need["dense"] <= budget:
        return "dense"
    if need["matrix-free"] <= budget:
        return "matrix-free"
    raise ConfigError("memory_budget", f">= {format_bytes(min(need.values()))} at D={D}, "
                      f"P={P}", format_bytes(budget))


def build_data(prompts: PromptSet, representation: str) -> DataTerm:
    """The data term of ``prompts`` in the given representation."""
    if representation == "dense":
        return DenseData.from_prompts(prompts)
    return MatrixFreeData(prompts)


def build_model(task: Task, model: str = "merged", *, lam: float | None = None,
                dk: int | None = None, representation: str = "auto",
                memory_budget=None) -> Model:
    """Build the Hamiltonian of a task.

    Parameters
    ----------
    task : Task
    model : {"merged", "factored"}
    lam : float, optional
        Weight decay λ (default: ``task.config.lam``), >= 0.
    dk : int, optional
        Rank of the factors of the factored model, >= 1 (default D+1).
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : int, str or None

    Returns
    -------
    MergedModel or FactoredModel
    """
    model = check_choice("model", model, MODELS)
    lam = task.config.lam if lam is None else check_float("lam", lam, low=0.0)
    D, P = task.config.D, task.config.P
    rep = choose_representation(D, P, representation, memory_budget)
    if model == "factored":
        dk = D + 1 if dk is None else check_int("dk", dk, 1)
        return FactoredModel(build_data(task.train, rep), lam, dk)
    return MergedModel(build_data(task.train, rep), lam)
