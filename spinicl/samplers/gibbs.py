"""Exact block sweeps of the factored model: W_q | W_k, then W_k | W_q (heat bath or
overrelaxed).

The conditionals
----------------
W = W_qᵀW_k, w = vec W row-major (w_ab at a·(D+1) + b), A₀ the data Gram with entries
A[a,b,c,d] = A₀[a(D+1)+b, c(D+1)+d], h the data field, E₀(w) = ½wᵀA₀w − hᵀw + e₀. With
d₁ = D+1, x = vec W_q (index i·d₁ + a) and F = W_k fixed, w_ab = Σ_i x_ia F_ib is linear in
x, so E = ½xᵀKx − bᵀx + c with

    K[(i,a),(j,c)] = λδ + Σ_{b,d} F_ib A[a,b,c,d] F_jd,   b[(i,a)] = Σ_b h_ab F_ib,
    c = e₀ + (λ/2)‖F‖²,

and W_q | W_k ~ N(μ, (βK)⁻¹), μ = K⁻¹b (a ridge solve; K = λI + Σ_μ f_μf_μᵀ/P,
f_μ = (W_k q_μ) ⊗ c_μ). W_k | W_q is the same with wᵀ: x = vec W_k, F = W_q and the
transposed data A'[b,a,d,c] = A[a,b,c,d], h'_ba = h_ab.

The draw: K = LLᵀ (Cholesky), y = L⁻¹b (so μ = L⁻ᵀy), and with the block's current
value x and z ~ N(0, I)

    x' = L⁻ᵀ(y + u),   u = α(Lᵀx − y) + √(1−α²) z/√β,

i.e. x' = μ + α(x − μ) + √(1−α²) L⁻ᵀz/√β: Adler's overrelaxation (α = ``overrelax``,
default −0.5; α = 0 is the heat bath, x' independent of x). For any α ∈ (−1, 1) this is
a Gaussian AR(1) kernel that leaves N(μ, (βK)⁻¹) invariant (if √β Lᵀ(x − μ) ~ N(0, I)
then so is √β Lᵀ(x' − μ) = α·that + √(1−α²)z), so each half-step, hence the sweep,
leaves the Boltzmann law invariant; every move is accepted. A negative α anticorrelates
successive draws along each conditional and shortens τ of the linear observables (test
MSE, Q) by 2–3× at d_k = 2, at the price of a slower energy (|u| is conserved at
α = −1); measured τ of the slowest observable at β = 10⁴ (bench setting): D = 8, d_k = 2:
4.6 sweeps (α = 0), 2.2 (α = −0.5); D = 20, d_k = 2: 5.9, 2.2; D = 8, d_k = 9: 1.7, 1.3
(α = −0.3)–1.5 (α = −0.5). The energy after the half-step needs no data pass:
E = c − ½‖y‖² + ½‖u‖² (E(μ) = c − ½bᵀK⁻¹b, and ½(x'−μ)ᵀK(x'−μ) = ½‖u‖²). The triangular
solves and Lᵀx run along rows of L (contiguous).

Gauge moves (W_q → GW_q, W_k → G⁻ᵀW_k: W unchanged, unit Jacobian, a symmetric
proposal for G = cayley(εX), X symmetric; Metropolis on the λ-term only) were tried as
the cure for the slow mode and measured not to help: τ of Q and of the test MSE did not
change (D = 20, d_k = 2: 6.2 against 5.9 sweeps; D = 8, d_k = 9: 1.65 against 1.73, gauge
acceptance ≈ 0.5). The slow mode is not the gauge orbit but the size of W (Q, test MSE)
in the bilinear coupling of the two blocks, which the overrelaxation addresses.

Cost per sweep (two half-steps), per replica, with m = d_k·d₁ block spins
---------------------------------------------------------------------------
K is symmetric, so only the pairs a ≥ c of its spatial indices are formed (n_pair =
d₁(d₁+1)/2); K[(i,a),(j,c)] with a < c is K[(j,c),(i,a)]:

* contraction 1, T[(r,i), (d,(a,c))] = Σ_b F_ib A[a,b,c,d], a ≥ c: one GEMM
  (R·d_k × d₁)·(d₁ × d₁·n_pair) for all the replicas of the call, which reads the
  half of A₀ it needs once for all of them: d_k·d₁⁴ flops (≈ half of the full tensor);
* contraction 2, K's lower triangle G[j,(a,c)] = Σ_d F_jd T[(r,i), (d,(a,c))]: per
  replica and factor row i, in-line loops (d_k < 4) or a GEMM (d_k × d₁)·(d₁ × n_pair):
  d_k²·d₁³ flops;
* Cholesky m³/3 (LAPACK; an in-line factor was measured no faster even at m = 18) and
  the two triangular solves and Lᵀx, 3m² flops.

Per half-step ≈ d_k d₁⁴ + d_k² d₁³ + (d_k d₁)³/3 flops; a sweep is twice that. A MALA
step costs ≈ 2d₁⁴ per replica (one GEMM with A₀), so in flops a sweep costs ≈ d_k MALA
steps plus the Choleskys (2(d_k d₁)³/3: dominant for d_k = d₁, ≈ 2d₁⁶/3). Measured
(16 replicas, one thread, per half-step, before → after the half-A₀ contraction): D =
20, d_k = 2: contraction 1 0.98 → 0.52 ms, contraction 2 0.30 → 0.16 ms, Cholesky and
solves 0.30 ms; D = 20, d_k = 21: contraction 1 17 → 4.9 ms, contraction 2 23 → 7.3 ms,
Cholesky 52 ms and solves 3 ms; D = 8, d_k = 2: 0.023 → 0.013, 0.052 → 0.024, 0.042 ms
(mostly LAPACK's per-call cost). Small chunks of replicas draw serially (a parallel
region costs more); a slot's arithmetic is the same either way, and does not depend on
the thread count. The prompts are never touched: only A₀ and h (built once from the
prompts when the model's representation is matrix-free, O(n²) memory).

State: like :mod:`.exact`, the whitened-gradient cache is carried, not updated (this
sampler never uses it); the step size is unused (reported as 0). Randomness: the 2m
normals of a sweep are the slot's stream at the step counter (:mod:`.rng`), the first m
for W_q, the rest for W_k, so runs are thread-count independent and resume bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.models.data import DenseData
from spinicl.samplers.common import STEP_SIG, Kernel
from spinicl.samplers.rng import TAG_NOISE, fill_normals

#: Largest contraction temporary T (elements) per replica chunk.
BLOCK_ELEMENTS = 1 << 22
#: Default overrelaxation α of the block draws (``--overrelax``).
DEFAULT_OVERRELAX = -0.5
#: From this rank on, the second contraction is a BLAS GEMM per factor row (below it,
#: in-line loops beat the call overhead).
GEMM_DK = 4
#: Below this many flops (Cholesky and second contraction) per chunk of replicas the
#: draws run serially.
SERIAL_FLOPS = 1 << 21

@njit(cache=True)
def _assemble(T, row, F, hv, lam, dk, d1, K, bvec, G):
    """Lower triangle of K = λI + Σ_{b,d} F_ib A[a,b,c,d] F_jd and b for one replica.

    T : rows ``row .. row+d_k`` are this replica's first contraction,
        T[(r,i), d·n_pair + (a,c)] = Σ_b F_ib A[a,b,c,d] for a ≥ c only (pair index
        (a,c) = a(a+1)/2 + c); the entries with a < c follow from K = Kᵀ:
        K[(i,a),(j,c)] = K[(j,c),(i,a)].
    G : (d_k, n_pair) scratch, G[j, (a,c)] = Σ_d F_jd T[(r,i), d·n_pair + (a,c)] for one i
        (a GEMM (d_k × d₁)·(d₁ × n_pair) when d_k ≥ ``GEMM_DK``, else in-line loops).
    """
    npair = G.shape[1]
    for i in range(dk):
        Ti = T[row + i]
        if dk >= GEMM_DK:
            np.dot(F, Ti.reshape(d1, npair), G)
        else:
            for j in range(dk):
                Gj = G[j]
                f = F[j, 0]
                for pc in range(npair):
                    Gj[pc] = f * Ti[pc]
                for d in range(1, d1):
                    f = F[j, d]
                    Tid = Ti[d * npair:(d + 1) * npair]
                    for pc in range(npair):
                        Gj[pc] += f * Tid[pc]
        for j in range(dk):
            Gj = G[j]
            pc = 0
            for a in range(d1):
                p = i * d1 + a
                for c in range(a + 1):
                    if i >= j:               # p ≥ q: the lower triangle
                        K[p, j * d1 + c] = Gj[pc]
                    elif a != c:             # p < q: store K[q, p] = K[p, q]
                        K[j * d1 + c, p] = Gj[pc]
                    pc += 1
    for p in range(dk * d1):
        K[p, p] += lam
    for i in range(dk):
        for a in range(d1):
            s = 0.0
            for b in range(d1):
                s += hv[a * d1 + b] * F[i, b]
            bvec[i * d1 + a] = s


@njit(cache=True)
def _draw(L, bvec, xcur, z, sc, alpha, y, u, out):
    """out = L⁻ᵀ(y + u), K = LLᵀ (only the lower triangle of L is read), y = L⁻¹b,
    u = α(Lᵀx − y) + √(1−α²)·z·sc (α = 0: the heat bath; x the current block); returns
    (‖y‖², ‖u‖²). y, u : (m,) scratch."""
    m = bvec.shape[0]
    yy = 0.0
    for p in range(m):                     # forward: L y = b (rows of L)
        s = bvec[p]
        for q in range(p):
            s -= L[p, q] * y[q]
        y[p] = s / L[p, p]
        yy += y[p] * y[p]
    if alpha != 0.0:                       # u = α(Lᵀx − y) + √(1−α²) z sc
        for p in range(m):
            u[p] = 0.0
        for q in range(m):                 # Lᵀx by rows of L
            xq = xcur[q]
            for p in range(q + 1):
                u[p] += L[q, p] * xq
        c = np.sqrt(1.0 - alpha * alpha) * sc
        for p in range(m):
            u[p] = alpha * (u[p] - y[p]) + c * z[p]
    else:
        for p in range(m):
            u[p] = z[p] * sc
    uu = 0.0
    for p in range(m):
        uu += u[p] * u[p]
        y[p] += u[p]
    for p in range(m - 1, -1, -1):         # backward: Lᵀ out = y + u (rows of L)
        o = y[p] / L[p, p]
        out[p] = o
        for q in range(p):
            y[q] -= L[p, q] * o
    return yy, uu


@njit(cache=True)
def _draw_replica(r, row, X, Z, Ep, T, Y, off_upd, hv, lam, e0, dk, d1, betas, copies,
                  alpha, buf):
    """Conditional of slot r (rows ``row..row+d_k`` of Y and T), its draw into X and the
    new energy into Ep. buf : (m² + 4m + d_k·n_pair,) scratch."""
    m = dk * d1
    npair = d1 * (d1 + 1) // 2
    K = buf[:m * m].reshape(m, m)
    bvec = buf[m * m:m * m + m]
    y = buf[m * m + m:m * m + 2 * m]
    u = buf[m * m + 2 * m:m * m + 3 * m]
    out = buf[m * m + 3 * m:m * m + 4 * m]
    G = buf[m * m + 4 * m:m * m + 4 * m + dk * npair].reshape(dk, npair)
    F = Y[row:row + dk]
    _assemble(T, row, F, hv, lam, dk, d1, K, bvec, G)
    L = np.linalg.cholesky(K)                    # LAPACK; reads the lower triangle
    yy, uu = _draw(L, bvec, X[r, off_upd:off_upd + m], Z[r],
                   1.0 / np.sqrt(betas[r // copies]), alpha, y, u, out)
    ff = 0.0
    for p in range(m):
        X[r, off_upd + p] = out[p]
        f = F[p // d1, p % d1]
        ff += f * f
    Ep[r] = e0 + 0.5 * lam * ff - 0.5 * yy + 0.5 * uu


@njit(cache=True, parallel=True)
def _draw_parallel(r0, r1, X, Z, Ep, T, Y, off_upd, hv, lam, e0, dk, d1, betas, copies,
                   alpha, nbuf):
    for r in prange(r0, r1):
        buf = np.empty(nbuf)
        _draw_replica(r, (r - r0) * dk, X, Z, Ep, T, Y, off_upd, hv, lam, e0, dk, d1,
                      betas, copies, alpha, buf)


@njit(cache=True)
def half_sweep(X, Z, Ep, off_fix, off_upd, Amat, hv, lam, e0, dk, d1, betas, copies,
               chunk, alpha):
    """Replace the factor at ``off_upd`` of every slot by a draw from its conditional
    given the factor at ``off_fix`` (in place; α ≠ 0: overrelaxed about the conditional
    mean); Ep ← the new energies.

    Amat : (d₁, d₁·n_pair), Amat[b, d·n_pair + (a,c)] = A[a,b,c,d] (a ≥ c) of the data
        as seen by this factor, n_pair = d₁(d₁+1)/2.
    Z : (R, m) the standard normals of this half-step.

    One GEMM per chunk of replicas reads Amat once for all of them. The replicas' draws
    then run in a parallel loop (one scratch allocation per replica), or, when a chunk
    is below ``SERIAL_FLOPS``, serially with one scratch for all (a parallel region
    costs more than such work); a slot's arithmetic is the same either way.
    """
    R = X.shape[0]
    m = dk * d1
    npair = d1 * (d1 + 1) // 2
    nbuf = m * m + 4 * m + dk * npair
    for r0 in range(0, R, chunk):
        r1 = min(R, r0 + chunk)
        Y = np.empty(((r1 - r0) * dk, d1))
        for r in range(r0, r1):
            for p in range(m):
                Y[(r - r0) * dk + p // d1, p % d1] = X[r, off_fix + p]
        T = np.dot(Y, Amat)          # T[(r,i), d·n_pair + (a,c)] = Σ_b F_ib A[a,b,c,d]
        if (r1 - r0) * (m * m * m // 3 + 2 * dk * dk * d1 * npair) < SERIAL_FLOPS:
            buf = np.empty(nbuf)
            for r in range(r0, r1):
                _draw_replica(r, (r - r0) * dk, X, Z, Ep, T, Y, off_upd, hv, lam, e0,
                              dk, d1, betas, copies, alpha, buf)
        else:
            _draw_parallel(r0, r1, X, Z, Ep, T, Y, off_upd, hv, lam, e0, dk, d1, betas,
                           copies, alpha, nbuf)


@njit(STEP_SIG, cache=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """One sweep, W_q | W_k then W_k | W_q (sp = (λ, e₀, d_k, d₁, chunk, α),
    sv = (h, h'), sm = (Amat_q; Amat_k))."""
    R, n = X.shape
    lam, e0 = sp[0], sp[1]
    dk, d1, chunk = int(sp[2]), int(sp[3]), int(sp[4])
    alpha = sp[5]
    m = dk * d1
    Z = work[0]
    for r in range(R):
        fill_normals(keys[r], t, TAG_NOISE, Z[r])
        for i in range(n):
            Xp[r, i] = X[r, i]
            Vp[r, i] = V[r, i]
        accp[r] = 1.0
    nn = d1 * d1
    half_sweep(Xp, Z[:, :m], Ep, m, 0, sm[:d1], sv[:nn], lam, e0, dk, d1, betas, copies,
               chunk, alpha)
    half_sweep(Xp, Z[:, m:], Ep, 0, m, sm[d1:], sv[nn:], lam, e0, dk, d1, betas, copies,
               chunk, alpha)


def conditional_data(gram: np.ndarray, field: np.ndarray, d1: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(Amat, hv) of the W_q conditional (rows 0..d₁ / first n) stacked over those of the
    W_k conditional (the transposed data): sm (2d₁, d₁·n_pair) and sv (2n,) of the step.

    Amat[b, d·n_pair + (a,c)] = A[a,b,c,d] for a ≥ c (pair index a(a+1)/2 + c): half of
    A₀ suffices since K is symmetric (see :func:`_assemble`).
    """
    A4 = gram.reshape(d1, d1, d1, d1)
    ia, ic = np.tril_indices(d1)                 # row-major: (a, c ≤ a) at a(a+1)/2 + c

    def half(A):                                  # A[a,b,c,d] → [b, d, (a,c)]
        return A.transpose(1, 3, 0, 2)[:, :, ia, ic].reshape(d1, -1)

    H = field.reshape(d1, d1)
    return (np.ascontiguousarray(np.vstack([half(A4), half(A4.transpose(1, 0, 3, 2))])),
            np.ascontiguousarray(np.concatenate([H.ravel(), H.T.ravel()])))


def conditional(model, theta: np.ndarray, block: str = "q"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mean μ and precision-over-β K of one block's conditional at θ (numpy reference).

    ``block`` "q": W_q | W_k; "k": W_k | W_q. The law is N(μ, (βK)⁻¹) over the block's
    row-major entries.
    """
    d1, dk = model.D + 1, model.dk
    data = _dense(model)
    Wq, Wk = model.split(np.asarray(theta)[None])
    A4 = data.gram.reshape(d1, d1, d1, d1)
    H = data.field.reshape(d1, d1)
    if block == "q":
        F = Wk[0]
    else:
        F, A4, H = Wq[0], A4.transpose(1, 0, 3, 2), H.T
    K = np.einsum("ib,abcd,jd->iajc", F, A4, F).reshape(dk * d1, dk * d1)
    K += model.lam * np.eye(dk * d1)
    b = (F @ H.T).ravel()
    return np.linalg.solve(K, b), K


def _dense(model) -> DenseData:
    data = model.data
    if isinstance(data, DenseData):
        return data
    cache = model._cache
    if "gibbs_dense" not in cache:
        cache["gibbs_dense"] = DenseData.from_prompts(data.prompts)
    return cache["gibbs_dense"]


class Gibbs(Kernel):
    """Block heat bath of the factored model (needs nothing but A₀ and h)."""

    name = "gibbs"
    step = staticmethod(step)

    def params(self):
        m = self.model
        d1, dk = m.D + 1, m.dk
        data = _dense(m)
        sm, sv = conditional_data(data.gram, data.field, d1)
        chunk = max(1, BLOCK_ELEMENTS // (dk * d1 * (d1 * (d1 + 1) // 2)))
        o = self.options
        sp = np.array([float(m.lam), data.e0, float(dk), float(d1), float(chunk),
                       float(o.get("overrelax", DEFAULT_OVERRELAX))])
        return sp, sv, sm

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        return np.zeros_like(bound)
