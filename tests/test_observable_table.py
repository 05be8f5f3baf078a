"""The one observable table (spinicl.observables.OBSERVABLES) and the theory-mode sweep's
⟨alignment(W)⟩ / ⟨gd_cosine(W)⟩: thermal averages from exact Gaussian draws, the same
quantities a sample-mode point records, with the ground state's values beside them under
their own names (docs/model.md §1.6, §5)."""

import h5py
import numpy as np
import pytest

from spinicl import observables as obs_mod
from spinicl.config import TaskConfig
from spinicl.models import build_model
from spinicl.observables import DERIVED, OBSERVABLES, SHAPES, theory_summaries
from spinicl.prompts import make_task
from spinicl.sweep import parse_sweep, run_sweep
from spinicl.theory.gaussian import gaussian_theory

TASK = """
[task]
D = 3
N = 8
P = 60
lam = 0.05
test_prompts = 80

[grid]
seed = [3]
"""


def test_the_table_is_the_only_description():
    assert not hasattr(obs_mod, "LABELS")
    for name, o in OBSERVABLES.items():
        assert o.name == name and o.kind in obs_mod.KINDS
        assert o.symbol.startswith("$") and o.words
        assert (o.shape is not None) == (o.kind in ("record", "sampler"))
        assert (o.derived_from is not None) == (o.kind == "derived")
    assert SHAPES == {k: o.shape for k, o in OBSERVABLES.items() if o.recorded}
    for a, b in DERIVED.values():
        assert a in SHAPES and b in SHAPES
    for name in ("alignment_ground_state", "gd_cosine_ground_state", "free_energy"):
        assert OBSERVABLES[name].kind == "theory" and OBSERVABLES[name].exact is not None
    for name in ("alignment", "gd_cosine"):
        assert OBSERVABLES[name].exact is None and OBSERVABLES[name].function is not None


def _theory(representation="dense"):
    task = make_task(TaskConfig(D=3, N=8, P=60, lam=0.05, test_prompts=80, seed=3),
                     keep_test_context=False)
    model = build_model(task, "merged", representation=representation)
    return gaussian_theory(model, task, seed=3)


def test_low_temperature_alignment_tends_to_the_ground_state_value():
    th = _theory()
    temps = np.array([1e-10, 1e-6, 1.0])
    s = theory_summaries(th, temps, seed=3)
    for name in ("alignment", "gd_cosine"):
        gs = s[f"{name}_ground_state"]
        value = getattr(th, name)
        np.testing.assert_array_equal(gs["mean"], np.full(3, value))
        np.testing.assert_array_equal(gs["exact"], np.full(3, value))
        row = s[name]
        assert np.isnan(row["exact"]).all() and (row["stderr"] > 0).all()
        assert row["mean"][0] == pytest.approx(value, abs=1e-4)
        assert row["mean"][1] == pytest.approx(value, abs=1e-2)
        # at T = 1 the thermal average is far from the ground state's value
        assert abs(row["mean"][2] - value) > 5 * row["stderr"][2]
    # deterministic: the same seed gives the same draws
    again = theory_summaries(th, temps, seed=3)
    np.testing.assert_array_equal(again["alignment"]["mean"], s["alignment"]["mean"])


def test_matrix_free_theory_has_no_draws():
    th = _theory("matrix-free")
    assert th.chol is None
    s = theory_summaries(th, np.array([1e-3, 1e-1]), seed=3)
    assert np.isnan(s["alignment"]["mean"]).all() and np.isnan(s["gd_cosine"]["stderr"]).all()
    assert np.isfinite(s["alignment_ground_state"]["mean"]).all()


def _point_summary(path, name):
    with h5py.File(path, "r") as f:
        return (f[f"points/0/summary/{name}/mean"][...],
                f[f"points/0/summary/{name}/stderr"][...])


def test_theory_sweep_alignment_agrees_with_a_sample_sweep(tmp_path):
    temps = '"0.03:0.3:2"'
    theory = parse_sweep(f'[sweep]\nmode = "theory"\n{TASK}\n[sampler]\ntemps = {temps}\n')
    sample = parse_sweep(f'[sweep]\nmode = "sample"\n{TASK}\n[sampler]\nsampler = "exact"\n'
                         f'temps = {temps}\ncopies = 4\nsteps = 1500\nburn_in = 0\n'
                         'record_every = 1\n')
    out_t, out_s = str(tmp_path / "t.h5"), str(tmp_path / "s.h5")
    assert run_sweep(theory, out_t, workers=1, progress=False).done == 1
    assert run_sweep(sample, out_s, workers=1, progress=False).done == 1
    for name in ("alignment", "gd_cosine"):
        mt, st = _point_summary(out_t, name)
        ms, ss = _point_summary(out_s, name)
        z = (mt - ms) / np.sqrt(st**2 + ss**2)
        assert (np.abs(z) < 4).all(), (name, mt, ms, z)
        g, _ = _point_summary(out_t, f"{name}_ground_state")
        # the temperatures are high enough that the average is not the ground state's
        assert abs(mt[-1] - g[-1]) > 5 * st[-1]
