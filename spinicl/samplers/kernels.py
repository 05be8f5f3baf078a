"""Numba kernels shared by every sampler: energy and gradient of a batch, preconditioning,
the fused local move (ULA, MALA, BAOAB, exact), and the replica-exchange swap.

A block of steps runs entirely in :func:`run_block`, without returning to Python:

* the batch gradient is one BLAS product per step (``np.dot`` inside Numba calls the
  BLAS that scipy ships): ``W @ A0`` for the dense representation, or the two matrix-free
  products ``C @ M`` and ``Cᵀ @ (r ∘ Q)`` (blocked over prompts, memory O(P·D));
* everything else (noise, update, Metropolis test, step-size adaptation, swaps) runs in
  ``prange`` loops over replica slots (or over copies, for swaps); each slot draws from
  its own counter-based stream (:mod:`spinicl.samplers.rng`), so the result does not
  depend on the number of threads.

Conventions
-----------
Slots are laid out ``r = k·copies + a`` (rung k, copy a). The preconditioner is a factor
B with M = BBᵀ: ``pmode`` 0 is B = I, 1 is B = diag(b), 2 is a dense B (for the merged
model B = L⁻ᵀ, A = LLᵀ, so M = A⁻¹). Moves are x ← x + B u and the sampler works with the
*whitened* gradient v = Bᵀ∇E (rows: v = g B). All arrays are row-major batches (R, n).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.samplers.rng import TAG_ACCEPT, TAG_NOISE, TAG_SWAP, fill_normals, uniform

ULA, MALA, BAOAB, EXACT = 0, 1, 2, 3
KIND_CODES = {"ula": ULA, "mala": MALA, "baoab": BAOAB, "exact": EXACT}
PRECOND_CODES = {"none": 0, "diag": 1, "dense": 2}

#: Largest temporary (elements) of the matrix-free products.
_BLOCK_ELEMENTS = 1 << 21

#: Status codes of run_block.
OK, DIVERGED = 0, 1

#: Indices into the int64 counter array.
C_STEP, C_SWAPS, C_ADAPT, C_LADDER = 0, 1, 2, 3


# --------------------------------------------------------------------------- energy
@njit(cache=True, parallel=True)
def _data_dense(Wf, E0, G0, A0, h, e0):
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
def _merged_dense(X, E, G, A0, h, e0, lam):
    """Merged model, dense Gram: E and G = X A0 − h + λX in one GEMM (into G) and one pass."""
    np.dot(X, A0, G)
    R, n = X.shape
    for r in prange(R):
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for i in range(n):
            x = X[r, i]
            t = G[r, i]
            s1 += x * t
            s2 += x * h[i]
            s3 += x * x
            G[r, i] = t - h[i] + lam * x
        E[r] = 0.5 * s1 - s2 + e0 + 0.5 * lam * s3


@njit(cache=True, parallel=True)
def _data_matrix_free(Wf, E0, G0, C, Q, y, d1):
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
    bs = max(1, _BLOCK_ELEMENTS // w)
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


@njit(cache=True, parallel=True)
def energy_grad(gmode, X, E, G, A0, h, e0, lam, C, Q, y, dk, d1):
    """Energy E (R,) and gradient G (R, n) of a batch of spins X (R, n), in place.

    ``gmode``: 0 merged/dense, 1 merged/matrix-free, 2 factored/dense,
    3 factored/matrix-free. For the factored model X = (vec W_q, vec W_k) with factors
    of shape (dk, d1) and W = W_qᵀW_k.
    """
    if gmode == 0:
        _merged_dense(X, E, G, A0, h, e0, lam)
        return
    R, n = X.shape
    n0 = d1 * d1
    factored = gmode >= 2
    if factored:
        half = dk * d1
        Wf = np.empty((R, n0))
        for r in prange(R):
            for a in range(d1):
                for b in range(d1):
                    s = 0.0
                    for i in range(dk):
                        s += X[r, i * d1 + a] * X[r, half + i * d1 + b]
                    Wf[r, a * d1 + b] = s
    else:
        half = 0
        Wf = X
    E0 = np.empty(R)
    G0 = np.empty((R, n0))
    if gmode % 2 == 0:
        _data_dense(Wf, E0, G0, A0, h, e0)
    else:
        _data_matrix_free(Wf, E0, G0, C, Q, y, d1)
    if not factored:
        for r in prange(R):
            s = 0.0
            for i in range(n):
                s += X[r, i] * X[r, i]
                G[r, i] = G0[r, i] + lam * X[r, i]
            E[r] = E0[r] + 0.5 * lam * s
    else:
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


# --------------------------------------------------------------------------- precondition
@njit(cache=True, parallel=True)
def whiten(pmode, G, V, bdiag, B):
    """Whitened gradient V = G B (rows), in place."""
    R, n = G.shape
    if pmode == 2:
        V[:, :] = np.dot(G, B)
    elif pmode == 1:
        for r in prange(R):
            for i in range(n):
                V[r, i] = G[r, i] * bdiag[i]
    else:
        for r in prange(R):
            for i in range(n):
                V[r, i] = G[r, i]


@njit(cache=True, parallel=True)
def move(pmode, X, U, out, bdiag, BT):
    """out = X + U Bᵀ (rows)."""
    R, n = X.shape
    if pmode == 2:
        D = np.dot(U, BT)
        for r in prange(R):
            for i in range(n):
                out[r, i] = X[r, i] + D[r, i]
    elif pmode == 1:
        for r in prange(R):
            for i in range(n):
                out[r, i] = X[r, i] + U[r, i] * bdiag[i]
    else:
        for r in prange(R):
            for i in range(n):
                out[r, i] = X[r, i] + U[r, i]


@njit(cache=True, inline="always")
def _propose(pmode, X, Xp, U, bdiag, r, i, u):
    """Move u (whitened) of spin i of slot r: X' = X + B u for B = I or diag(b); for a
    dense B only store u (the move is one GEMM afterwards, :func:`move`)."""
    if pmode == 0:
        Xp[r, i] = X[r, i] + u
    elif pmode == 1:
        Xp[r, i] = X[r, i] + u * bdiag[i]
    else:
        U[r, i] = u


# --------------------------------------------------------------------------- swaps
@njit(cache=True, parallel=True)
def swap_event(X, E, V, betas, copies, swap_keys, event, labels, direction, round_trips,
               att, acc, prob, lad_att, lad_prob):
    """One even/odd (DEO) round of neighbour swaps within every copy.

    Event ``event`` attempts the pairs (k, k+1) with k ≡ event (mod 2). A swap exchanges
    the configurations (and their cached energy and gradient) of two slots with
    probability min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))). Statistics are pooled over
    copies; walker labels track round trips (cold end → hot end → cold end).
    """
    nt = betas.shape[0]
    n = X.shape[1]
    parity = event % 2
    npairs = nt - 1
    acc_pc = np.zeros((npairs, copies), dtype=np.int64)
    att_pc = np.zeros((npairs, copies), dtype=np.int64)
    prob_pc = np.zeros((npairs, copies))
    for a in prange(copies):
        for k in range(parity, npairs, 2):
            i = k * copies + a
            j = (k + 1) * copies + a
            loga = (betas[k] - betas[k + 1]) * (E[i] - E[j])
            if loga >= 0.0:
                p = 1.0
            elif np.isfinite(loga):
                p = np.exp(loga)
            else:
                p = 0.0
            att_pc[k, a] = 1
            prob_pc[k, a] = p
            u = uniform(swap_keys[a], event, (TAG_SWAP << 40) + k)
            if u < p:
                acc_pc[k, a] = 1
                for m in range(n):
                    t = X[i, m]
                    X[i, m] = X[j, m]
                    X[j, m] = t
                    t = V[i, m]
                    V[i, m] = V[j, m]
                    V[j, m] = t
                t = E[i]
                E[i] = E[j]
                E[j] = t
                lt = labels[k, a]
                labels[k, a] = labels[k + 1, a]
                labels[k + 1, a] = lt
        # round trips: cold end (k = 0) -> hot end (k = nt-1) -> cold end
        lab = labels[0, a]
        if direction[lab] == 1:
            round_trips[a] += 1
        direction[lab] = 0
        lab = labels[nt - 1, a]
        if direction[lab] == 0:
            direction[lab] = 1
    for k in range(npairs):
        for a in range(copies):
            att[k] += att_pc[k, a]
            acc[k] += acc_pc[k, a]
            prob[k] += prob_pc[k, a]
            lad_att[k] += att_pc[k, a]
            lad_prob[k] += prob_pc[k, a]


# --------------------------------------------------------------------------- block
@njit(cache=True, parallel=True)
def run_block(kind, gmode, pmode, X, Pm, E, V, betas, eta, gamma, copies, keys, swap_keys,
              labels, direction, round_trips, counters, accepted, sw_att, sw_acc, sw_prob,
              lad_att, lad_prob, A0, h, e0, lam, C, Q, y, dk, d1, bdiag, B, BT, mean, Linv,
              e_ground, n_steps, swap_every, burn_in, target, e_limit):
    """Advance the batch by ``n_steps`` steps in place.

    Parameters
    ----------
    kind : int
        0 ULA, 1 MALA, 2 BAOAB, 3 exact.
    gmode, pmode : int
        Energy mode (see :func:`energy_grad`) and preconditioner mode.
    X, Pm, V : ndarray, shape (R, n)
        Spins, momenta (BAOAB, whitened coordinates) and whitened gradient (cache).
    E : ndarray, shape (R,)
        Energies of X (cache).
    betas, eta : ndarray, shape (n_temps,)
        Inverse temperatures and step sizes per rung; ``eta`` adapts in place (MALA,
        ``burn_in``).
    counters : ndarray of int64, shape (4,)
        step, swap events, adaptation steps, swap events since the last ladder update.
    accepted : ndarray of int64, shape (R,)
        Cumulative accepted moves per slot.
    sw_att, sw_acc, sw_prob, lad_att, lad_prob : ndarray, shape (n_temps - 1,)
        Cumulative swap statistics (attempts, accepts, summed acceptance probability),
        the ``lad_*`` pair since the last ladder update.
    mean, Linv, e_ground : ndarray, ndarray, float
        Exact sampler: ridge mean m (n,), L⁻¹ (n, n) and E(m). The exact sampler does
        not update the gradient cache V (it never uses it).
    e_limit : float
        An energy above this (or NaN/Inf) is a divergence.

    Returns
    -------
    status : int
        0 done, 1 diverged (the failing step is not committed: X, E, ... hold the last
        finite state and ``counters[0]`` its step).
    done : int
        Steps completed.
    bad : int
        The first slot that diverged (-1 if none).
    """
    R, n = X.shape
    nt = betas.shape[0]
    XI = np.empty((R, n))
    U = np.empty((R if pmode == 2 else 1, n))          # move before B (dense B only)
    Xp = np.empty((R, n))
    Gp = np.empty((R if pmode != 0 else 1, n))          # gradient before whitening
    Vp = np.empty((R, n))
    Ep = np.empty(R)
    Pn = np.empty((R if kind == BAOAB else 1, n))
    accp = np.empty(R)
    for s in range(n_steps):
        t = counters[C_STEP]
        for r in prange(R):
            fill_normals(keys[r], t, TAG_NOISE, XI[r])
        if kind == EXACT:
            for r in prange(R):
                sc = 1.0 / np.sqrt(betas[r // copies])
                for i in range(n):
                    XI[r, i] *= sc
            Z = np.dot(XI, Linv)
            for r in prange(R):
                zz = 0.0
                for i in range(n):
                    Xp[r, i] = mean[i] + Z[r, i]
                    zz += XI[r, i] * XI[r, i]
                # E(m + L^-T z / sqrt(beta)) = E(m) + |z|^2 / (2 beta)  (XI holds z/sqrt(beta))
                Ep[r] = e_ground + 0.5 * zz
        elif kind == BAOAB:
            for r in prange(R):
                k = r // copies
                hh = eta[k]
                c1 = np.exp(-gamma * hh)
                sig = np.sqrt((1.0 - c1 * c1) / betas[k])
                for i in range(n):
                    p1 = Pm[r, i] - 0.5 * hh * V[r, i]
                    p2 = c1 * p1 + sig * XI[r, i]
                    Pn[r, i] = p2
                    _propose(pmode, X, Xp, U, bdiag, r, i, 0.5 * hh * (p1 + p2))
        else:
            for r in prange(R):
                k = r // copies
                et = eta[k]
                c = np.sqrt(2.0 * et / betas[k])
                for i in range(n):
                    _propose(pmode, X, Xp, U, bdiag, r, i, -et * V[r, i] + c * XI[r, i])
        if kind != EXACT and pmode == 2:
            move(pmode, X, U, Xp, bdiag, BT)
        if kind != EXACT:
            if pmode == 0:      # no preconditioner: the whitened gradient is the gradient
                energy_grad(gmode, Xp, Ep, Vp, A0, h, e0, lam, C, Q, y, dk, d1)
            else:
                energy_grad(gmode, Xp, Ep, Gp, A0, h, e0, lam, C, Q, y, dk, d1)
                whiten(pmode, Gp, Vp, bdiag, B)
        if kind == MALA:
            for r in prange(R):
                k = r // copies
                et = eta[k]
                c = np.sqrt(2.0 * et / betas[k])
                sf = 0.0
                sr = 0.0
                for i in range(n):
                    sf += XI[r, i] * XI[r, i]
                    z = (et * (V[r, i] + Vp[r, i]) - c * XI[r, i]) / c
                    sr += z * z
                loga = -betas[k] * (Ep[r] - E[r]) - 0.5 * sr + 0.5 * sf
                if not np.isfinite(loga):
                    p = 0.0
                elif loga >= 0.0:
                    p = 1.0
                else:
                    p = np.exp(loga)
                accp[r] = p
                u = uniform(keys[r], t, TAG_ACCEPT << 40)
                if u < p:
                    accepted[r] += 1
                    E[r] = Ep[r]
                    for i in range(n):
                        X[r, i] = Xp[r, i]
                        V[r, i] = Vp[r, i]
            if burn_in:
                gain = 1.0 / (counters[C_ADAPT] + 10.0) ** 0.6
                for k in range(nt):
                    m = 0.0
                    for a in range(copies):
                        m += accp[k * copies + a]
                    m /= copies
                    eta[k] *= np.exp(gain * (m - target))
                counters[C_ADAPT] += 1
            for r in range(R):
                if not np.isfinite(E[r]) or E[r] > e_limit:
                    return DIVERGED, s, r
        else:
            for r in range(R):
                if not np.isfinite(Ep[r]) or Ep[r] > e_limit:
                    return DIVERGED, s, r
            for r in prange(R):
                accepted[r] += 1
                E[r] = Ep[r]
                for i in range(n):
                    X[r, i] = Xp[r, i]
                if kind == BAOAB:
                    hh = eta[r // copies]
                    for i in range(n):
                        V[r, i] = Vp[r, i]
                        Pm[r, i] = Pn[r, i] - 0.5 * hh * Vp[r, i]
                elif kind != EXACT:
                    for i in range(n):
                        V[r, i] = Vp[r, i]
        counters[C_STEP] = t + 1
        if nt > 1 and (t + 1) % swap_every == 0:
            swap_event(X, E, V, betas, copies, swap_keys, counters[C_SWAPS], labels,
                       direction, round_trips, sw_att, sw_acc, sw_prob, lad_att, lad_prob)
            counters[C_SWAPS] += 1
            counters[C_LADDER] += 1
    return OK, n_steps, -1
