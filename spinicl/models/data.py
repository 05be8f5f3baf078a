"""The data term E₀ shared by every model, and the compiled-kernel conventions.

E₀(W) = (1/2P) Σ_μ (y_q^μ − s^μ·W)² of merged weights W (row-major W_ab at index
a·(D+1) + b) has two representations with equal values (to rounding):

* :class:`DenseData` holds the Gram matrix A₀ = SᵀS/P (n × n): a batch gradient is one
  GEMM ``W @ A₀`` of n²R multiply-adds. Best when P > n/2 and n² fits in memory.
* :class:`MatrixFreeData` holds only the factors c, q (P × (D+1) each, memory O(P·D)):
  S W = rowsum((C Wᵀ...)), Sᵀr = Cᵀ diag(r) Q — two GEMMs of P(D+1)²R each.

Compiled energies
-----------------
Every model compiles its batch energy-and-gradient with the one signature
:data:`ENERGY_SIG`, ``f(X, E, G, M1, M2, v1, fp, ip)``: spins X (R, n), outputs E (R,)
and G (R, n), and the model's data as a fixed bundle of two 2-D float arrays, a 1-D float
array, a 1-D float parameter array and a 1-D int parameter array (:class:`KernelData`).
The samplers take the function as a ``numba.types.FunctionType(ENERGY_SIG)`` argument
(:data:`ENERGY_TYPE`), so one compiled sampler serves every model and Numba's on-disk
cache still hits in a new process. ``np.dot`` inside Numba calls scipy's BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit, prange, types

from spinicl import linalg
from spinicl.prompts import PromptSet

#: Largest temporary (elements) the matrix-free products allocate at once.
_BLOCK_ELEMENTS = 1 << 22
#: The same for the compiled matrix-free kernel.
_KERNEL_BLOCK_ELEMENTS = 1 << 21

F2 = types.Array(types.float64, 2, "C")
F1 = types.Array(types.float64, 1, "C")
I1 = types.Array(types.int64, 1, "C")
#: Signature of every model's compiled energy: (X, E, G, M1, M2, v1, fp, ip) -> None.
ENERGY_SIG = types.void(F2, F1, F2, F2, F2, F1, F1, I1)
#: The type a sampler declares for a model's energy argument.
ENERGY_TYPE = types.FunctionType(ENERGY_SIG)


class KernelData(NamedTuple):
    """The data bundle of a compiled energy (unused slots are empty arrays)."""

    M1: np.ndarray      # (a, b) float64
    M2: np.ndarray      # (c, d) float64
    v1: np.ndarray      # (k,) float64
    fp: np.ndarray      # float parameters
    ip: np.ndarray      # int64 parameters

    @classmethod
    def make(cls, M1=None, M2=None, v1=None, fp=(), ip=()) -> KernelData:
        def f2(a):
            return np.zeros((0, 0)) if a is None else np.ascontiguousarray(a, np.float64)

        return cls(f2(M1), f2(M2),
                   np.zeros(0) if v1 is None else np.ascontiguousarray(v1, np.float64),
                   np.asarray(fp, dtype=np.float64).reshape(-1),
                   np.asarray(ip, dtype=np.int64).reshape(-1))


# --------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class GroundState:
    """A model's exact ground state (``model.ground_state()``).

    Attributes
    ----------
    W : ndarray, shape ((D+1)²,) or None
        Effective merged weights of the minimum; None where the model has no exact
        solver at these parameters (``note`` says why).
    energy : float
        E at the minimum (NaN when ``W`` is None).
    kind : str
        How it was found (``ridge``, ``min-norm``, ``nuclear-norm``; ``none``).
    converged : bool
    note : str
        Empty, or why ``W`` is missing or inexact.
    rows : dict
        Model-specific values for the ``theory`` command (e.g. the nuclear norm).
    iterations : int
    """

    W: np.ndarray | None
    energy: float
    kind: str
    converged: bool = True
    note: str = ""
    rows: dict = field(default_factory=dict)
    iterations: int = 0


def as_batch(W: np.ndarray, n: int, name: str = "W") -> np.ndarray:
    """W as a batch of replicas (R, n) in float64 (a single (n,) becomes (1, n));
    ValueError naming ``name`` for another shape."""
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
    W = as_batch(W, d1 * d1)
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

    def largest_eigenvalue(self, tol: float = 1e-12, margin: float = 1.0) -> float:
        """λ_max(A₀) by LAPACK (exact: ``tol`` and ``margin`` unused)."""
        return linalg.largest_eigenvalue(matrix=self.gram)

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

    def largest_eigenvalue(self, tol: float = 1e-12, margin: float = 1.0) -> float:
        """λ_max(A₀) by Lanczos on W ↦ W A₀ to relative accuracy ``tol``, times ``margin``
        (an upper bound where the estimate must not fall short)."""
        return margin * linalg.largest_eigenvalue(
            lambda v: self.gram_product(v.reshape(1, -1))[0], self.n, tol=tol)

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E₀ (R,) and ∇E₀ = −Sᵀ(y − SW)/P (R, n)."""
        r = self.prompts.y[None, :] - predict(W, self.prompts)
        e = 0.5 * np.einsum("rp,rp->r", r, r) / self.P
        return e, -self._transpose_product(r)


DataTerm = DenseData | MatrixFreeData




# --------------------------------------------------------------------------- compiled
@njit(cache=True, parallel=True)
def data_dense(Wf, E0, G0, A0, h, e0):
    """E₀ (R,) and ∇E₀ = W A₀ − h (R, n) of merged weights Wf (R, n), dense Gram."""
    T = np.dot(Wf, A0)
    R, n0 = Wf.shape
    for r in prange(R):
        s1 = 0.0
        s2 = 0.0
        for i in range(n0):
            s1 += Wf[r, i] * T[r, i]
            s2 += Wf[r, i] * h[i]
            G0[r, i] = T[r, i] - h[i]
        E0[r] = 0.5 * s1 - s2 + e0


@njit(cache=True, parallel=True)
def data_matrix_free(Wf, E0, G0, C, Q, y, d1):
    """E₀ and ∇E₀ through the prompt factors, blocked over prompts (memory O(P·D))."""
    R = Wf.shape[0]
    P = C.shape[0]
    w = R * d1
    M = np.empty((d1, w))
    for r in prange(R):
        for a in range(d1):
            for b in range(d1):
                M[a, r * d1 + b] = Wf[r, a * d1 + b]
    acc = np.zeros((d1, w))
    E0[:] = 0.0
    bs = max(1, _KERNEL_BLOCK_ELEMENTS // w)
    for s in range(0, P, bs):
        e = min(P, s + bs)
        Cb = C[s:e]
        T = np.dot(Cb, M)
        m = e - s
        for r in prange(R):
            acc_e = 0.0
            for mu in range(m):
                pred = 0.0
                for b in range(d1):
                    pred += T[mu, r * d1 + b] * Q[s + mu, b]
                res = y[s + mu] - pred
                acc_e += res * res
                for b in range(d1):
                    T[mu, r * d1 + b] = res * Q[s + mu, b]
            E0[r] += 0.5 * acc_e / P
        acc += np.dot(Cb.T, T)
    for r in prange(R):
        for a in range(d1):
            for b in range(d1):
                G0[r, a * d1 + b] = -acc[a, r * d1 + b] / P
