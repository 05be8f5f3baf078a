"""The linear algebra every part of spinicl shares: ridge mean, λ_max, exact Gaussian draws.

One place for what theory, training, the samplers, the benchmarks and AMP all need from
the precision A = λI + A₀ of the merged model (symmetric positive definite for λ > 0):

* :func:`conjugate_gradient` — batched CG for A X = B through a product ``X ↦ X A``;
* :func:`ridge_mean` — m = A⁻¹h, by the Cholesky factor when one is given, else by CG;
* :func:`largest_eigenvalue` — λ_max of a symmetric operator by Lanczos (ARPACK);
  :func:`power_iteration` for operators known only approximately (finite differences);
* :func:`inverse_cholesky` — L⁻¹ of A = LLᵀ; :func:`gaussian_draw` — m + L⁻ᵀz/√β, the
  exact draw from N(m, (βA)⁻¹).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla


def conjugate_gradient(matvec, B: np.ndarray, tol: float = 1e-12, max_iter: int = 10_000,
                       x0: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """Solve A X = B for a batch of right-hand sides (rows of B) by conjugate gradients.

    Parameters
    ----------
    matvec : callable
        ``matvec(X) -> X A`` for X of shape (R, n) (A symmetric positive (semi)definite).
    B : ndarray, shape (R, n)
    tol : float
        Stop when ‖b − A x‖ ≤ tol·‖b‖ for every row.
    max_iter : int
    x0 : ndarray, shape (R, n), optional
        Start (default 0: for a singular A, CG from 0 converges to the minimum-norm
        solution in the range of A).

    Returns
    -------
    X : ndarray, shape (R, n)
    iterations : int
    relative_residual : ndarray, shape (R,)
    """
    B = np.atleast_2d(B)
    X = np.zeros_like(B) if x0 is None else x0.copy()
    Rs = B - matvec(X) if x0 is not None else B.copy()
    Pd = Rs.copy()
    rr = np.einsum("ri,ri->r", Rs, Rs)
    bnorm = np.sqrt(np.einsum("ri,ri->r", B, B))
    bnorm[bnorm == 0] = 1.0
    it = 0
    while it < max_iter and np.any(np.sqrt(rr) > tol * bnorm):
        AP = matvec(Pd)
        pAp = np.einsum("ri,ri->r", Pd, AP)
        alpha = np.where(pAp > 0, rr / np.where(pAp > 0, pAp, 1.0), 0.0)
        X += alpha[:, None] * Pd
        Rs -= alpha[:, None] * AP
        rr_new = np.einsum("ri,ri->r", Rs, Rs)
        beta_cg = np.where(rr > 0, rr_new / np.where(rr > 0, rr, 1.0), 0.0)
        Pd = Rs + beta_cg[:, None] * Pd
        rr = rr_new
        it += 1
    res = np.sqrt(np.einsum("ri,ri->r", B - matvec(X), B - matvec(X))) / bnorm
    return X, it, res


def ridge_mean(h: np.ndarray, *, chol: np.ndarray | None = None, matvec=None,
               tol: float = 1e-12) -> np.ndarray:
    """The ridge mean m = A⁻¹h, shape (n,).

    Parameters
    ----------
    h : ndarray, shape (n,)
    chol : ndarray, shape (n, n), optional
        Lower Cholesky factor L of A (A = LLᵀ): two triangular solves.
    matvec : callable, optional
        ``X ↦ X A`` for a batch (used by conjugate gradients when ``chol`` is None).
    tol : float
        CG relative residual.
    """
    if chol is not None:
        return sla.cho_solve((chol, True), h)
    if matvec is None:
        raise ValueError("ridge_mean needs chol or matvec")
    return conjugate_gradient(matvec, np.asarray(h)[None], tol=tol)[0][0]


def inverse_cholesky(L: np.ndarray) -> np.ndarray:
    """L⁻¹ of a lower-triangular L (so that A⁻¹ = L⁻ᵀL⁻¹), shape (n, n)."""
    return sla.solve_triangular(L, np.eye(L.shape[0]), lower=True)


def gaussian_draw(mean: np.ndarray, L: np.ndarray, z: np.ndarray,
                  beta: float = 1.0) -> np.ndarray:
    """Exact draws m + L⁻ᵀz/√β from N(m, (βA)⁻¹), A = LLᵀ.

    Parameters
    ----------
    mean : ndarray, shape (n,)
    L : ndarray, shape (n, n)
        Lower Cholesky factor of A.
    z : ndarray, shape (n_samples, n)
        Standard normals.
    beta : float

    Returns
    -------
    ndarray, shape (n_samples, n)
    """
    x = sla.solve_triangular(L, np.atleast_2d(z).T, lower=True, trans="T")
    return mean[None, :] + x.T / np.sqrt(beta)


def largest_eigenvalue(matvec=None, n: int | None = None, seed: int = 12345,
                       tol: float = 1e-12, matrix: np.ndarray | None = None) -> float:
    """Largest eigenvalue of a symmetric operator, by Lanczos (ARPACK ``eigsh``), or of a
    dense symmetric ``matrix`` by LAPACK (one eigenvalue).

    Parameters
    ----------
    matvec : callable
        v (n,) -> A v (n,), A symmetric.
    n : int
        Dimension. Below 3 (ARPACK's minimum) the operator is formed densely.
    seed : int
        Seed of the fixed start vector (the result does not depend on the run).
    tol : float
        Relative accuracy of the eigenvalue.
    matrix : ndarray, shape (n, n), optional
        A dense A instead of ``matvec``.

    Returns
    -------
    float
        λ_max(A). A few tens of products, O(n²) each for a dense A, instead of the
        O(n³) of a dense eigen-decomposition.
    """
    if matrix is not None:
        k = matrix.shape[0]
        return float(sla.eigh(matrix, eigvals_only=True, subset_by_index=[k - 1, k - 1])[0])
    if n < 3:
        M = np.column_stack([matvec(e) for e in np.eye(n)])
        return float(np.linalg.eigvalsh(0.5 * (M + M.T))[-1])
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = LinearOperator((n, n), matvec=lambda v: matvec(np.ravel(v)), dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    return float(eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0])


def power_iteration(matvec, n: int, iters: int = 100, seed: int = 12345) -> float:
    """|λ|_max of a symmetric operator by power iteration, ×1.01 (a slight overestimate:
    for operators known only to finite-difference accuracy, where Lanczos is fragile)."""
    v = np.random.default_rng(seed).standard_normal(n)
    lam = 0.0
    for _ in range(iters):
        v /= np.linalg.norm(v)
        w = matvec(v)
        lam = float(v @ w)
        v = w
    return abs(lam) * 1.01
