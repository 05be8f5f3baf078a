"""Reproducibility: same seed, any thread count, and resume from a checkpoint dict."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import spinicl
from spinicl import make_task
from spinicl.models import build_model
from spinicl.samplers import Ladder, Sampler, SamplerState, make_sampler

CASES = [("ula", "merged", "none"), ("mala", "merged", "diag"), ("baoab", "merged", "dense"),
         ("exact", "merged", "none"), ("mala", "factored", "none"),
         ("baoab", "factored", "diag")]


def _model(kind: str):
    task = make_task(D=3, N=10, P=150, lam=0.1, seed=7)
    return build_model(task, kind, representation="dense")


def _run(kind, model_kind, precondition, n1=137, n2=263, resume=False, threads=None):
    model = _model(model_kind)
    s = make_sampler(model, kind, ladder=Ladder.geometric(1e-3, 1e-1, 3), copies=2,
                     precondition=precondition, swap_every=4, adapt_ladder=True, seed=5,
                     threads=threads)
    state = s.init()
    state, _ = s.run(state, n1, burn_in=True)
    if resume:
        d = s.state_to_dict(state)
        assert all(isinstance(v, np.ndarray) for v in d.values())
        state = Sampler.state_from_dict({k: np.array(v) for k, v in d.items()})
    state, _ = s.run(state, n2)
    return state


def assert_states_equal(a: SamplerState, b: SamplerState) -> None:
    for k in SamplerState._fields:
        x, y = np.asarray(getattr(a, k)), np.asarray(getattr(b, k))
        assert x.dtype == y.dtype, k
        np.testing.assert_array_equal(x, y, err_msg=k)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_same_seed_identical_and_resume_bit_identical(case):
    a = _run(*case)
    b = _run(*case)
    assert_states_equal(a, b)
    c = _run(*case, resume=True)
    assert_states_equal(a, c)
    # the state moved, and every field is a numpy array or scalar
    assert int(a.step) == 400
    assert all(isinstance(v, (np.ndarray, np.generic)) for v in a)


def test_different_seed_differs():
    model = _model("merged")
    s1 = make_sampler(model, "mala", ladder=Ladder.geometric(1e-3, 1e-1, 2), seed=1)
    s2 = make_sampler(model, "mala", ladder=Ladder.geometric(1e-3, 1e-1, 2), seed=2)
    a, _ = s1.run(s1.init(), 50)
    b, _ = s2.run(s2.init(), 50)
    assert not np.array_equal(a.W, b.W)


def test_resume_split_anywhere_equals_uninterrupted():
    model = _model("merged")
    s = make_sampler(model, "baoab", ladder=Ladder.geometric(1e-3, 1e-1, 4), copies=2,
                     swap_every=3, seed=8)
    full, _ = s.run(s.init(), 100)
    st = s.init()
    for n in (1, 2, 30, 7, 60):
        st, _ = s.run(st, n)
        st = s.state_from_dict(s.state_to_dict(st))
    assert_states_equal(full, st)


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import numba
    from spinicl import make_task
    from spinicl.models import build_model
    from spinicl.samplers import Ladder, make_sampler
    out = {}
    for kind, mk in [("ula", "merged"), ("mala", "merged"), ("baoab", "merged"),
                     ("exact", "merged"), ("mala", "factored")]:
        model = build_model(make_task(D=3, N=10, P=150, lam=0.1, seed=7), mk,
                            representation="dense")
        s = make_sampler(model, kind, ladder=Ladder.geometric(1e-3, 1e-1, 3), copies=3,
                         swap_every=2, adapt_ladder=True, seed=5,
                         threads=numba.config.NUMBA_NUM_THREADS)
        st, _ = s.run(s.init(), 150, burn_in=True)
        st, _ = s.run(st, 150)
        for k, v in s.state_to_dict(st).items():
            out[kind + mk + k] = v
    out["threads"] = np.array(numba.get_num_threads())
    np.savez(sys.argv[1], **out)
""")


def test_thread_count_does_not_change_trajectories(tmp_path):
    root = str(Path(spinicl.__file__).resolve().parents[1])
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    results = []
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads),
                   PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = tmp_path / f"t{threads}.npz"
        subprocess.run([sys.executable, str(script), str(out)], env=env, check=True,
                       timeout=600)
        results.append(dict(np.load(out)))
    a, b = results
    assert int(a.pop("threads")) == 1 and int(b.pop("threads")) == 2
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_kernel_noise_is_the_documented_stream():
    """The exact sampler's move is m + L⁻ᵀ z/√β with z = normals(keys, step, n).

    Ties the compiled kernel to :func:`spinicl.samplers.rng.normals` (this also catches a
    stale Numba cache: the cache of kernels.py does not notice edits to rng.py).
    """
    from spinicl.samplers.rng import normals

    model = _model("merged")
    betas = np.array([50.0, 5.0])
    s = make_sampler(model, "exact", ladder=Ladder.from_betas(betas), copies=3, seed=11)
    st = s.init()
    st, _ = s.run(st, 4)
    new, _ = s.run(st, 1)
    z = normals(st.keys, int(st.step), s.n_spins)                     # (R, n)
    scale = 1.0 / np.sqrt(np.repeat(betas, 3))[:, None]
    A = model.precision()
    L = np.linalg.cholesky(A)
    m = np.linalg.solve(A, model.field)
    expected = m + np.linalg.solve(L.T, (z * scale).T).T             # rows: m + L⁻ᵀ z/√β
    np.testing.assert_allclose(new.W, expected, rtol=1e-9, atol=1e-12)
