"""Throughput of ula / mala / baoab against the GEMM bound and a naive numpy step.

Setting (issue 10): D = 20, N = 100, P = 10⁴, λ = 0.01, β = 100 (dense representation,
n = 441 spins), R ∈ {1, 16, 64, 256} replicas at one temperature.

For every R, in the same process and interleaved over ``--rounds`` short rounds (every
item is timed once per round, so a burst of load from elsewhere hits every item alike;
the *fastest* round of each item is reported, as ``timeit`` does — the cost without
interference — and the median-based ratios are stored beside it):

* **GEMM bound**: the batch-gradient matrix product alone, ``W @ A0`` with W (R, n) and
  A0 (n, n), with the BLAS pinned to the sampler's thread count (1). Also given: the
  same product through Numba's ``np.dot`` (the BLAS the kernels call, scipy's OpenBLAS)
  and numpy's product with every core.
* **spinicl step**: ``sampler.run(state, n)`` for ~0.08 s per round, frozen kernel
  (after an untimed burn-in that also adapts the MALA step), with the library's default
  threads (BLAS 1; Numba 1 below R·n = 2¹⁵, else all cores). Where the default uses
  several Numba threads (R = 256) the samplers also run with ``threads=1``.
* **naive numpy step**: the same update written with numpy arrays (normals from
  ``Generator.standard_normal``, the energy and gradient from one ``X @ A0``, the
  Metropolis test for MALA), one BLAS thread.

Printed and stored per (sampler, R): ``gemm_fraction`` = GEMM time / step time (1.0 means
the step costs no more than its matrix product) and ``speedup_vs_numpy`` = numpy step
time / spinicl step time. With ``--blas2`` the samplers also run with 2 BLAS threads at
R ∈ {64, 256} against the 2-thread GEMM. A component breakdown of the
MALA step at R = 64 (gradient kernel, normal draws) is stored under ``breakdown``.

Run: ``python bench/bench_throughput.py`` (about 1–2 minutes).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from _common import median, per_call, say, write_json
from numba import njit
from threadpoolctl import threadpool_limits

from spinicl.config import TaskConfig
from spinicl.models import build_model
from spinicl.prompts import make_task
from spinicl.samplers import Ladder, make_sampler
from spinicl.samplers.rng import normals

D, N, P, LAM, BETA = 20, 100, 10_000, 0.01, 100.0
REPLICAS = (1, 16, 64, 256)
SAMPLERS = ("ula", "mala", "baoab")


@njit(cache=False)
def _numba_dot(W: np.ndarray, A: np.ndarray) -> float:
    T = np.dot(W, A)
    return T[0, 0]


class NumpyStep:
    """The same step as the spinicl kernel, written naively with numpy (one batch)."""

    def __init__(self, kind: str, model, X0: np.ndarray, eta: float, beta: float,
                 gamma: float = 1.0, seed: int = 0):
        self.kind = kind
        self.A0 = model.data.gram
        self.h = model.field
        self.e0 = model.data.e0
        self.lam = model.lam
        self.beta = beta
        self.eta = eta
        self.gamma = gamma
        self.rng = np.random.default_rng(seed)
        self.X = X0.copy()
        self.E, self.G = self._energy_grad(self.X)
        self.p = self.rng.standard_normal(X0.shape) / np.sqrt(beta)
        self.accepted = 0

    def _energy_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = X @ self.A0
        E = (0.5 * np.einsum("ri,ri->r", X, T) - X @ self.h + self.e0
             + 0.5 * self.lam * np.einsum("ri,ri->r", X, X))
        return E, T - self.h + self.lam * X

    def step(self) -> None:
        eta, beta = self.eta, self.beta
        xi = self.rng.standard_normal(self.X.shape)
        if self.kind == "ula":
            self.X = self.X - eta * self.G + np.sqrt(2 * eta / beta) * xi
            self.E, self.G = self._energy_grad(self.X)
        elif self.kind == "mala":
            c = np.sqrt(2 * eta / beta)
            Xp = self.X - eta * self.G + c * xi
            Ep, Gp = self._energy_grad(Xp)
            z = (eta * (self.G + Gp) - c * xi) / c
            loga = (-beta * (Ep - self.E) - 0.5 * np.einsum("ri,ri->r", z, z)
                    + 0.5 * np.einsum("ri,ri->r", xi, xi))
            acc = np.log(self.rng.random(loga.shape)) < loga
            self.X[acc] = Xp[acc]
            self.E[acc] = Ep[acc]
            self.G[acc] = Gp[acc]
            self.accepted += int(acc.sum())
        else:  # baoab, unit mass
            c1 = np.exp(-self.gamma * eta)
            p1 = self.p - 0.5 * eta * self.G
            p2 = c1 * p1 + np.sqrt((1 - c1 * c1) / beta) * xi
            self.X = self.X + 0.5 * eta * (p1 + p2)
            self.E, self.G = self._energy_grad(self.X)
            self.p = p2 - 0.5 * eta * self.G


def _sampler_step_time(sampler, box: list, min_time: float) -> float:
    """Seconds per step of one ~min_time call of the frozen kernel."""
    state, est = box
    n = max(1, int(min_time / est))
    t0 = time.perf_counter()
    state, _ = sampler.run(state, n)
    dt = (time.perf_counter() - t0) / n
    box[0], box[1] = state, dt
    return dt


def bench_replicas(model, R: int, rounds: int, blas2: bool, min_time: float,
                   single_thread: bool) -> dict:
    n = model.n_spins
    A0 = model.data.gram
    rng = np.random.default_rng(1)
    W = rng.standard_normal((R, n))
    out_buf = np.empty((R, n))
    samplers, boxes, steppers = {}, {}, {}
    threads_used = {}
    for kind in SAMPLERS:
        s = make_sampler(model, kind, ladder=Ladder.from_betas([BETA]), copies=R, seed=0)
        st = s.init()
        st, _ = s.run(st, 1, burn_in=True)
        st, _ = s.run(st, 200, burn_in=True)
        t0 = time.perf_counter()
        st, _ = s.run(st, 20)
        samplers[kind] = s
        boxes[kind] = [st, (time.perf_counter() - t0) / 20]
        threads_used[kind] = s.threads
        steppers[kind] = NumpyStep(kind, model, st.W, float(st.step_size[0]), BETA)
    variants = []
    if single_thread and threads_used["mala"] > 1:
        variants.append(("@1t", {"threads": 1}))
    if blas2:
        variants.append(("@2", {"blas_threads": 2}))
    for suffix, kw in variants:
        for kind in SAMPLERS:
            s = make_sampler(model, kind, ladder=Ladder.from_betas([BETA]), copies=R, seed=0,
                             **kw)
            st = s.init(boxes[kind][0].W)
            st, _ = s.run(st, 200, burn_in=True)
            samplers[kind + suffix] = s
            boxes[kind + suffix] = [st, boxes[kind][1]]
    _numba_dot(W, A0)  # compile
    times: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        times.setdefault(key, []).append(value)

    for _ in range(rounds):
        with threadpool_limits(limits=1, user_api="blas"):
            add("gemm", per_call(lambda: np.dot(W, A0, out=out_buf), min_time / 2))
            add("gemm_numba", per_call(lambda: _numba_dot(W, A0), min_time / 2))
            for kind in SAMPLERS:
                add(kind, _sampler_step_time(samplers[kind], boxes[kind], min_time))
                add("numpy_" + kind, per_call(steppers[kind].step, min_time))
                if kind + "@1t" in samplers:
                    add(kind + "@1t", _sampler_step_time(samplers[kind + "@1t"],
                                                         boxes[kind + "@1t"], min_time))
        if blas2:
            with threadpool_limits(limits=2, user_api="blas"):
                add("gemm@2", per_call(lambda: np.dot(W, A0, out=out_buf), min_time / 2))
            for kind in SAMPLERS:
                add(kind + "@2", _sampler_step_time(samplers[kind + "@2"], boxes[kind + "@2"],
                                                    min_time))
    best = {k: min(v) for k, v in times.items()}
    med = {k: median(v) for k, v in times.items()}
    rows = []
    for kind in SAMPLERS:
        rows.append({
            "sampler": kind, "R": R, "blas_threads": 1, "numba_threads": threads_used[kind],
            "step_s": best[kind], "gemm_s": best["gemm"], "gemm_numba_s": best["gemm_numba"],
            "numpy_step_s": best["numpy_" + kind],
            "chain_steps_per_s": R / best[kind],
            "gemm_fraction": best["gemm"] / best[kind],
            "gemm_numba_fraction": best["gemm_numba"] / best[kind],
            "speedup_vs_numpy": best["numpy_" + kind] / best[kind],
            "gemm_fraction_median": med["gemm"] / med[kind],
            "speedup_vs_numpy_median": med["numpy_" + kind] / med[kind],
            "rounds": {k: times[k] for k in (kind, "gemm", "gemm_numba", "numpy_" + kind)},
        })
        for suffix, _ in variants:
            k2 = kind + suffix
            g = "gemm@2" if suffix == "@2" else "gemm"
            rows.append({
                "sampler": kind, "R": R, "blas_threads": samplers[k2].blas_threads,
                "numba_threads": samplers[k2].threads, "step_s": best[k2],
                "gemm_s": best[g], "chain_steps_per_s": R / best[k2],
                "gemm_fraction": best[g] / best[k2],
                "gemm_fraction_median": med[g] / med[k2],
                "rounds": {k: times[k] for k in (k2, g)},
            })
    return {"rows": rows, "gemm_s": best["gemm"], "gemm_numba_s": best["gemm_numba"],
            "gemm_2threads_s": best.get("gemm@2")}


def breakdown(model, R: int = 64, min_time: float = 0.1, rounds: int = 9) -> dict:
    """Where a MALA step's time goes at R replicas (1 BLAS and 1 Numba thread)."""
    s = make_sampler(model, "mala", ladder=Ladder.from_betas([BETA]), copies=R, seed=0)
    st = s.init()
    st, _ = s.run(st, 200, burn_in=True)
    box = [st, 1e-3]
    n = model.n_spins
    X = st.W.copy()
    E = np.empty(R)
    G = np.empty_like(X)
    keys = st.keys
    A0 = model.data.gram
    energy, args = model.kernel()          # the model's compiled energy and data bundle
    numba.set_num_threads(1)
    energy(X, E, G, *args)
    normals(keys, 0, n)
    parts: dict[str, list[float]] = {"step": [], "eg": [], "gemm": [], "gemm_np": [],
                                     "normals": []}
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(rounds):  # interleaved, fastest round of each part
            parts["step"].append(_sampler_step_time(s, box, min_time))
            parts["eg"].append(per_call(lambda: energy(X, E, G, *args), min_time))
            parts["gemm"].append(per_call(lambda: _numba_dot(X, A0), min_time))
            parts["gemm_np"].append(per_call(lambda: np.dot(X, A0), min_time))
            parts["normals"].append(per_call(lambda: normals(keys, 1, n), min_time))
    t_step, t_eg, t_gemm, t_gemm_np, t_norm = (min(parts[k]) for k in (
        "step", "eg", "gemm", "gemm_np", "normals"))
    return {"R": R, "sampler": "mala", "step_s": t_step, "energy_grad_s": t_eg,
            "gemm_numba_s": t_gemm, "gemm_numpy_s": t_gemm_np, "normals_s": t_norm,
            "rest_s": t_step - t_eg - t_norm,
            "note": "energy_grad = the GEMM plus the fused energy/gradient loops; normals = "
                    "R*n counter-based ziggurat draws; rest = proposal, Metropolis test, "
                    "copies of the accepted rows and the call overhead"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--min-time", type=float, default=0.08)
    ap.add_argument("--replicas", type=int, nargs="*", default=list(REPLICAS))
    ap.add_argument("--blas2", action="store_true",
                    help="also run with 2 BLAS threads at R >= 64")
    args = ap.parse_args()
    t_start = time.perf_counter()
    task = make_task(TaskConfig(D=D, N=N, P=P, lam=LAM), keep_test_context=False)
    model = build_model(task, "merged")
    say(f"throughput: D={D} N={N} P={P} lam={LAM} beta={BETA} ({model.representation}, "
        f"n={model.n_spins}); best of {args.rounds} interleaved rounds")
    say(f"{'sampler':8s} {'R':>4s} {'BLAS':>4s} {'thr':>3s} {'step ms':>8s} {'GEMM ms':>8s} "
        f"{'x GEMM bound':>12s} {'numpy ms':>9s} {'x numpy':>8s} {'chain-steps/s':>14s}")
    results = []
    for R in args.replicas:
        res = bench_replicas(model, R, args.rounds, args.blas2 and R >= 64, args.min_time,
                             single_thread=True)
        results.append(res)
        for r in res["rows"]:
            np_ms = f"{1e3 * r['numpy_step_s']:9.3f}" if "numpy_step_s" in r else " " * 9
            sp = f"{r['speedup_vs_numpy']:7.2f}x" if "speedup_vs_numpy" in r else " " * 8
            say(f"{r['sampler']:8s} {R:4d} {r['blas_threads']:4d} {r['numba_threads']:3d} "
                f"{1e3 * r['step_s']:8.3f} "
                f"{1e3 * r['gemm_s']:8.3f} {r['gemm_fraction']:12.3f} {np_ms} {sp} "
                f"{r['chain_steps_per_s']:14.4g}")
    bd = breakdown(model)
    say(f"MALA R=64 breakdown (ms): step {1e3 * bd['step_s']:.3f} = energy_grad "
        f"{1e3 * bd['energy_grad_s']:.3f} (of which GEMM {1e3 * bd['gemm_numba_s']:.3f}) + "
        f"normals {1e3 * bd['normals_s']:.3f} + rest {1e3 * bd['rest_s']:.3f}")
    mala64 = next((r for res in results for r in res["rows"]
                   if r["sampler"] == "mala" and r["R"] == 64 and r["blas_threads"] == 1),
                  None)
    target = None
    if mala64 is not None:
        target = {"name": "MALA D=20 R=64 >= 0.6 x GEMM bound",
                  "value": mala64["gemm_fraction"], "goal": 0.6,
                  "met": bool(mala64["gemm_fraction"] >= 0.6)}
        say(f"target: MALA R=64 at {target['value']:.2f} x the GEMM bound (goal >= 0.6): "
            f"{'met' if target['met'] else 'MISSED'}")
    path = write_json("throughput", {
        "settings": {"D": D, "N": N, "P": P, "lam": LAM, "beta": BETA,
                     "representation": model.representation, "n_spins": model.n_spins,
                     "rounds": args.rounds, "min_time": args.min_time},
        "results": results, "breakdown": bd, "targets": [t for t in [target] if t],
        "seconds": time.perf_counter() - t_start})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
