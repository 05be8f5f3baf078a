"""Merged linear attention W ∈ R^{(D+1)×(D+1)}: E(W) = E₀(W) + (λ/2)‖W‖² (docs/model.md §1.2).

The Boltzmann law p_β ∝ exp(−βE) is Gaussian with precision βA, A = λI + A₀, and mean
m = A⁻¹h. Two compiled energies, one per data representation, both with the shared
signature of :data:`spinicl.models.data.ENERGY_SIG`:

* :func:`energy_dense` — ``M1 = A₀, v1 = h, fp = (e₀, λ)``: one GEMM into G and one pass;
* :func:`energy_matrix_free` — ``M1 = C, M2 = Q, v1 = y, fp = (λ,), ip = (D+1,)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit, prange

from spinicl import linalg
from spinicl.config import ConfigError
from spinicl.models.data import (
    ENERGY_SIG,
    DataTerm,
    DenseData,
    GroundState,
    KernelData,
    active_mask,
    as_batch,
    data_matrix_free,
)

#: Largest n for which set-up factors A although nothing needs the factor (the ridge
#: mean then comes from two triangular solves instead of conjugate gradients).
CHOLESKY_MAX_SPINS = 2048


@njit(ENERGY_SIG, cache=True, parallel=True)
def energy_dense(X, E, G, M1, M2, v1, fp, ip):
    """E and G = X A₀ − h + λX in one GEMM (into G) and one pass."""
    np.dot(X, M1, G)
    e0 = fp[0]
    lam = fp[1]
    R, n = X.shape
    for r in prange(R):
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for i in range(n):
            x = X[r, i]
            t = G[r, i]
            s1 += x * t
            s2 += x * v1[i]
            s3 += x * x
            G[r, i] = t - v1[i] + lam * x
        E[r] = 0.5 * s1 - s2 + e0 + 0.5 * lam * s3


@njit(ENERGY_SIG, cache=True, parallel=True)
def energy_matrix_free(X, E, G, M1, M2, v1, fp, ip):
    """E and G through the prompt factors C, Q and labels y (two GEMMs per block)."""
    lam = fp[0]
    data_matrix_free(X, E, G, M1, M2, v1, ip[0])
    R, n = X.shape
    for r in prange(R):
        s = 0.0
        for i in range(n):
            s += X[r, i] * X[r, i]
            G[r, i] += lam * X[r, i]
        E[r] += 0.5 * lam * s


def kernel_data(data: DataTerm, lam: float, extra_ip: tuple = ()) -> KernelData:
    """The data bundle of a data term (dense: A₀, h, (e₀, λ); matrix-free: C, Q, y, (λ,))."""
    if isinstance(data, DenseData):
        return KernelData.make(M1=data.gram, v1=data.field, fp=(data.e0, lam),
                               ip=extra_ip)
    ps = data.prompts
    return KernelData.make(M1=ps.c, M2=ps.q, v1=ps.y, fp=(lam,),
                           ip=(data.D + 1,) + tuple(extra_ip))


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
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    name = "merged"
    #: The Boltzmann law is Gaussian (exact draws, exact curvature bound).
    gaussian = True

    @property
    def D(self) -> int:
        return self.data.D

    @property
    def n_spins(self) -> int:
        return self.data.n

    @property
    def representation(self) -> str:
        return self.data.kind

    def active_spins(self) -> np.ndarray:
        """Boolean mask (n_spins,): the spins that enter predictions."""
        return active_mask(self.D)

    def effective_weights(self, W: np.ndarray) -> np.ndarray:
        """Merged weights, (R, (D+1)²): the spins themselves."""
        return as_batch(W, self.n_spins)

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (R,) and gradient (R, n) for a batch of spins W (R, n) (numpy)."""
        W = as_batch(W, self.n_spins)
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
        W = as_batch(W, self.n_spins)
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

    # ------------------------------------------------------------ what samplers use
    def kernel(self) -> tuple[Any, KernelData]:
        """The compiled batch energy-and-gradient and its data bundle."""
        if "kernel" not in self._cache:
            fn = energy_dense if isinstance(self.data, DenseData) else energy_matrix_free
            self._cache["kernel"] = (fn, kernel_data(self.data, float(self.lam)))
        return self._cache["kernel"]

    def cholesky(self, required: bool = False) -> np.ndarray | None:
        """Lower Cholesky factor L of A (A = LLᵀ), or None.

        Formed for the dense representation when ``required`` or while cheap
        (n ≤ :data:`CHOLESKY_MAX_SPINS`); ``required`` with the matrix-free
        representation raises :class:`ConfigError`.
        """
        if "chol" in self._cache:
            return self._cache["chol"]
        if not isinstance(self.data, DenseData):
            if required:
                raise ConfigError("representation", "dense (this needs the Cholesky factor "
                                  "of A)", self.representation)
            return None
        if not required and self.n_spins > CHOLESKY_MAX_SPINS:
            return None
        self._cache["chol"] = np.linalg.cholesky(self.precision())
        return self._cache["chol"]

    def ridge_mean(self) -> np.ndarray:
        """m = A⁻¹h (Cholesky when formed, else conjugate gradients), shape (n,)."""
        if "ridge" not in self._cache:
            self._cache["ridge"] = linalg.ridge_mean(
                self.data.field, chol=self.cholesky(), matvec=self.precision_product)
        return self._cache["ridge"]

    def ground_energy(self) -> float:
        """E(m) = e₀ − hᵀm/2, the minimum of E."""
        return float(self.data.e0 - 0.5 * self.data.field @ self.ridge_mean())

    def ground_state(self, required: bool = False) -> GroundState:
        """The exact ground state: for λ > 0 the ridge mean m = A⁻¹h (Cholesky solve when
        dense, conjugate gradients otherwise), for λ = 0 the minimum-norm minimiser of E₀
        (:func:`spinicl.theory.gaussian.min_norm_ground_state`). Always exists."""
        if self.lam > 0:
            W = linalg.ridge_mean(self.field, chol=self.cholesky(
                required=self.representation == "dense"), matvec=self.precision_product)
            kind = "ridge"
        else:
            from spinicl.theory.gaussian import min_norm_ground_state

            W, kind = min_norm_ground_state(self), "min-norm"
        return GroundState(W, float(self.energy(W[None])[0]), kind)

    def with_data(self, data: DataTerm) -> MergedModel:
        """The same model (λ) on another data term (e.g. a minibatch)."""
        return MergedModel(data, self.lam)

    def reference(self) -> np.ndarray:
        """The default start of a chain: the ridge mean."""
        return self.ridge_mean()

    def diag_curvature(self) -> np.ndarray:
        """diag(A), shape (n,): the diagonal preconditioner and the start's widths."""
        if "diag" not in self._cache:
            data = self.data
            if isinstance(data, DenseData):
                d = np.diag(data.gram) + self.lam
            else:
                ps = data.prompts
                d = self.lam + ((ps.c**2).T @ ps.q**2).ravel() / data.P
            self._cache["diag"] = d
        return self._cache["diag"]

    #: The curvature bound is exact (λ_max of A).
    curvature_exact = True

    def curvature(self, betas: np.ndarray, precondition: str = "none") -> np.ndarray:
        """λ_max of the (preconditioned) Hessian per rung (n_temps,): constant, A."""
        key = ("curv", precondition)
        if key not in self._cache:
            n = self.n_spins
            if precondition == "dense":
                self._cache[key] = 1.0
            else:
                b = (1.0 / np.sqrt(self.diag_curvature()) if precondition == "diag"
                     else np.ones(n))
                self._cache[key] = linalg.largest_eigenvalue(
                    lambda v: b * self.precision_product((b * v)[None])[0], n)
        return np.full(np.shape(betas), self._cache[key])
