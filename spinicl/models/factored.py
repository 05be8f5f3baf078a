"""Factored attention W = W_qᵀW_k, W_q, W_k ∈ R^{d_k×(D+1)} (docs/model.md §1.5).

Spins θ = (vec W_q, vec W_k), shape (R, 2·d_k·(D+1)), row-major factors;
E(θ) = E₀(W_qᵀW_k) + (λ/2)(‖W_q‖² + ‖W_k‖²). Quartic, non-convex, gauge symmetric;
observables use the effective W. Its compiled energies (shared signature
:data:`spinicl.models.data.ENERGY_SIG`) carry ``ip = (d_k, D+1)`` (dense) or
``ip = (D+1, d_k)`` (matrix-free, after the merged bundle's D+1).

Curvature: the reference point is the balanced factorisation of the ridge mean, where a
finite-difference Hessian gives the diagonal (preconditioner, start widths) and, by
power iteration, λ_max; per rung it grows with the thermal size of the factors:
κ_k = κ_ref + λ_max(A₀)·(T_k/λ)·(√d_k + √(D+1))² (a heuristic: steps derived from it
are conservative at hot rungs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit, prange

from spinicl import linalg
from spinicl.models.data import (
    ENERGY_SIG,
    DataTerm,
    DenseData,
    GroundState,
    KernelData,
    active_mask,
    as_batch,
    data_dense,
    data_matrix_free,
)
from spinicl.models.merged import MergedModel, kernel_data

#: Local minimisations behind the "best known" reference (``ground_state(restarts=...)``
#: or ``spinicl theory --restarts`` ask for more).
REFERENCE_RESTARTS = 32


@njit(cache=True, parallel=True)
def _factored(X, E, G, Wf, E0, G0, lam, dk, d1):
    """E and G of θ from E₀ and G₀ = ∂E₀/∂W at W = W_qᵀW_k."""
    R, n = X.shape
    half = dk * d1
    for r in prange(R):
        s = 0.0
        for i in range(n):
            s += X[r, i] * X[r, i]
        E[r] = E0[r] + 0.5 * lam * s
        for i in range(dk):
            for a in range(d1):
                # dE/dWq[i, a] = sum_b Wk[i, b] G[a, b];  dE/dWk[i, a] = sum_c Wq[i, c] G[c, a]
                gq = 0.0
                gk = 0.0
                for b in range(d1):
                    gq += X[r, half + i * d1 + b] * G0[r, a * d1 + b]
                    gk += X[r, i * d1 + b] * G0[r, b * d1 + a]
                G[r, i * d1 + a] = gq + lam * X[r, i * d1 + a]
                G[r, half + i * d1 + a] = gk + lam * X[r, half + i * d1 + a]


@njit(cache=True, parallel=True)
def _merge(X, dk, d1):
    R = X.shape[0]
    half = dk * d1
    Wf = np.empty((R, d1 * d1))
    for r in prange(R):
        for a in range(d1):
            for b in range(d1):
                s = 0.0
                for i in range(dk):
                    s += X[r, i * d1 + a] * X[r, half + i * d1 + b]
                Wf[r, a * d1 + b] = s
    return Wf


@njit(ENERGY_SIG, cache=True)  # its callees run in parallel
def energy_dense(X, E, G, M1, M2, v1, fp, ip):
    """Factored energy through the dense Gram (M1 = A₀, v1 = h, fp = (e₀, λ), ip = (d_k, D+1))."""
    dk, d1 = ip[0], ip[1]
    R = X.shape[0]
    Wf = _merge(X, dk, d1)
    E0 = np.empty(R)
    G0 = np.empty((R, d1 * d1))
    data_dense(Wf, E0, G0, M1, v1, fp[0])
    _factored(X, E, G, Wf, E0, G0, fp[1], dk, d1)


@njit(ENERGY_SIG, cache=True)  # its callees run in parallel
def energy_matrix_free(X, E, G, M1, M2, v1, fp, ip):
    """Factored energy through the prompt factors (M1 = C, M2 = Q, v1 = y, fp = (λ,),
    ip = (D+1, d_k))."""
    d1, dk = ip[0], ip[1]
    R = X.shape[0]
    Wf = _merge(X, dk, d1)
    E0 = np.empty(R)
    G0 = np.empty((R, d1 * d1))
    data_matrix_free(Wf, E0, G0, M1, M2, v1, d1)
    _factored(X, E, G, Wf, E0, G0, fp[0], dk, d1)


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
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    name = "factored"
    gaussian = False
    #: The curvature bound is a heuristic estimate.
    curvature_exact = False

    @property
    def D(self) -> int:
        return self.data.D

    @property
    def n_spins(self) -> int:
        return 2 * self.dk * (self.D + 1)

    @property
    def representation(self) -> str:
        return self.data.kind

    def active_spins(self) -> np.ndarray:
        """Boolean mask (n_spins,): W_q entirely, W_k without its last column (which
        only builds the decoupled last column of W)."""
        d1 = self.D + 1
        wk = np.ones((self.dk, d1), dtype=bool)
        wk[:, self.D] = False
        return np.concatenate([np.ones(self.dk * d1, dtype=bool), wk.ravel()])

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors (W_q, W_k), each (R, d_k, D+1), as views of θ."""
        theta = as_batch(theta, self.n_spins, "theta")
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
        """Energy (R,) and gradient (R, 2·d_k·(D+1)) (numpy).

        With G = ∂E₀/∂W: ∂E/∂W_q = W_k Gᵀ + λW_q, ∂E/∂W_k = W_q G + λW_k.
        """
        theta = as_batch(theta, self.n_spins, "theta")
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

    # ------------------------------------------------------------ what samplers use
    @property
    def merged(self) -> MergedModel:
        """The merged model of the same data and λ (its ridge mean is the reference)."""
        if "merged" not in self._cache:
            self._cache["merged"] = MergedModel(self.data, self.lam)
        return self._cache["merged"]

    def kernel(self) -> tuple[Any, KernelData]:
        """The compiled batch energy-and-gradient and its data bundle."""
        if "kernel" not in self._cache:
            d1 = self.D + 1
            if isinstance(self.data, DenseData):
                self._cache["kernel"] = (energy_dense, kernel_data(
                    self.data, float(self.lam), (self.dk, d1)))
            else:
                self._cache["kernel"] = (energy_matrix_free, kernel_data(
                    self.data, float(self.lam), (self.dk,)))
        return self._cache["kernel"]

    def cholesky(self, required: bool = False) -> None:
        """No Cholesky factor: the factored law is not Gaussian."""
        if required:
            from spinicl.config import ConfigError

            raise ConfigError("model", "merged (the factored model has no Gaussian "
                              "precision to factor)", self.name)

    def ridge_mean(self) -> np.ndarray:
        """The ridge mean of the merged model (effective weights), shape ((D+1)²,)."""
        return self.merged.ridge_mean()

    def balanced_factors(self, W: np.ndarray) -> np.ndarray:
        """θ with W_q = Σ^{1/2}Uᵀ, W_k = Σ^{1/2}Vᵀ from W = UΣVᵀ (the top d_k modes)."""
        d1, dk = self.D + 1, self.dk
        U, s, Vt = np.linalg.svd(np.asarray(W).reshape(d1, d1))
        r = min(dk, d1)
        Wq = np.zeros((dk, d1))
        Wk = np.zeros((dk, d1))
        Wq[:r] = np.sqrt(s[:r])[:, None] * U.T[:r]
        Wk[:r] = np.sqrt(s[:r])[:, None] * Vt[:r]
        return self.join(Wq[None], Wk[None])[0]

    def reference_state(self, restarts: int | None = None):
        """The ground-state reference at this d_k
        (:func:`spinicl.theory.factored_minima.factored_reference`, seed 0, so it is the
        same on every call and in every process): ``"exact"`` when the nuclear-norm
        optimum's rank is ≤ d_k, else ``"best known"`` from ``restarts`` local
        minimisations (default :data:`REFERENCE_RESTARTS`). Cached per restart count."""
        from spinicl.theory.factored_minima import factored_reference

        restarts = REFERENCE_RESTARTS if restarts is None else restarts
        key = ("reference_state", int(restarts))
        if key not in self._cache:
            self._cache[key] = factored_reference(self, restarts=restarts, seed=0)
        return self._cache[key]

    def ground_state(self, required: bool = False, restarts: int | None = None
                     ) -> GroundState:
        """The ground-state reference for every d_k (:meth:`reference_state`).

        Minimising over factors of rank d_k is minimising E₀(W) + λ‖W‖_* over rank ≤ d_k:
        when the nuclear-norm optimum W* has rank ≤ d_k it is the global minimum (kind
        ``nuclear-norm``, exact); below that rank the reference is the best of
        ``restarts`` local minima (kind ``best known``, no proof of globality). ``rows``
        hold ``factored_reference_kind`` ("exact" | "best known"), the nuclear-norm bound
        and its rank and, for "best known", the distinct minima with their counts.
        ``required`` is accepted for the common interface (a reference always exists).
        """
        ref = self.reference_state(restarts)
        exact = ref.kind == "exact"
        d1 = self.D + 1
        W = ref.W
        rows: dict[str, Any] = {
            "dk": self.dk, "factored_reference_kind": ref.kind, "energy_ground": ref.energy,
            "data_energy_ground": float(self.data.energy_and_grad(W[None])[0][0]),
            "nuclear_norm": float(np.linalg.svd(W.reshape(d1, d1), compute_uv=False).sum()),
            "rank": ref.nuclear_rank if exact else ref.minima[0].rank,
            "nuclear_norm_bound": ref.nuclear_energy, "nuclear_norm_rank": ref.nuclear_rank,
            "gap_to_bound": ref.gap_to_bound, "minima": []}
        if not exact:
            rows.update({
                "restarts": ref.restarts, "failed_restarts": ref.failed,
                "reference_seed": ref.seed, "distinct_minima": len(ref.minima),
                "minima": [{"energy": m.energy, "count": m.count, "rank": m.rank}
                           for m in ref.minima]})
        note = ("" if exact else
                f"best known: lowest of {ref.restarts} local minimisations "
                f"({len(ref.minima)} distinct minima); d_k = {self.dk} < rank "
                f"{ref.nuclear_rank} of the nuclear-norm optimum")
        converged = ref.nuclear_converged and ref.failed == 0
        if not ref.nuclear_converged:
            note = (note + "; " if note else "") + ("the nuclear-norm solver did not meet "
                                                     "its tolerance")
        return GroundState(W.copy(), float(ref.energy),
                           "nuclear-norm" if exact else "best known", converged, note,
                           rows=rows, iterations=ref.nuclear_iterations)

    def with_data(self, data: DataTerm) -> FactoredModel:
        """The same model (λ, d_k) on another data term (e.g. a minibatch)."""
        return FactoredModel(data, self.lam, self.dk)

    def reference(self) -> np.ndarray:
        """The default start of a chain: the balanced factors of the ridge mean."""
        if "ref" not in self._cache:
            self._cache["ref"] = self.balanced_factors(self.ridge_mean())
        return self._cache["ref"]

    def hessian_vec(self, theta: np.ndarray, v: np.ndarray, eps: float = 1e-5) -> np.ndarray:
        """Hessian-vector products at θ for a batch v (R, n), central differences."""
        nv = np.linalg.norm(v, axis=1, keepdims=True)
        nv[nv == 0] = 1.0
        u = v / nv
        e = eps * max(1.0, float(np.linalg.norm(theta)))
        g = self.grad(np.concatenate([theta + e * u, theta - e * u]))
        R = v.shape[0]
        return (g[:R] - g[R:]) / (2 * e) * nv

    def diag_curvature(self) -> np.ndarray:
        """Hessian diagonal at the reference point (floored at λ), shape (n,)."""
        if "diag" not in self._cache:
            theta = self.reference()
            n = theta.shape[0]
            out = np.empty(n)
            chunk = 256
            for s in range(0, n, chunk):
                idx = np.arange(s, min(n, s + chunk))
                V = np.zeros((idx.size, n))
                V[np.arange(idx.size), idx] = 1.0
                out[idx] = self.hessian_vec(theta, V)[np.arange(idx.size), idx]
            self._cache["diag"] = np.maximum(np.abs(out), self.lam)
        return self._cache["diag"]

    def curvature(self, betas: np.ndarray, precondition: str = "none") -> np.ndarray:
        """Estimated λ_max of the (preconditioned) Hessian per rung, (n_temps,)."""
        betas = np.asarray(betas, dtype=np.float64)
        key = ("curv", precondition)
        n = self.n_spins
        if key not in self._cache:
            b = (1.0 / np.sqrt(self.diag_curvature()) if precondition == "diag"
                 else np.ones(n))
            theta = self.reference()
            self._cache[key] = linalg.power_iteration(
                lambda v: b * self.hessian_vec(theta, (b * v)[None])[0], n, iters=60)
        if "a0max" not in self._cache:
            d1 = self.D + 1
            self._cache["a0max"] = linalg.largest_eigenvalue(
                lambda v: self.data.gram_product(v[None])[0], d1 * d1)
        d1 = self.D + 1
        growth = (self._cache["a0max"] * (1.0 / betas) / self.lam
                  * (np.sqrt(self.dk) + np.sqrt(d1)) ** 2)
        if precondition == "diag":
            growth = growth / float(np.min(self.diag_curvature()))
        return self._cache[key] + growth


__all__ = ["FactoredModel", "active_mask"]
