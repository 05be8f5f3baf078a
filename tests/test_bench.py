"""Smoke test of spinicl.bench (tiny task, 0.2 s budget per row; timings not checked)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinicl.bench import (
    ROW_KEYS,
    TABLE_COLUMNS,
    bench_samplers,
    format_bench_table,
    slowest_active_mode,
)
from spinicl.config import ConfigError, TaskConfig
from spinicl.models import build_model
from spinicl.prompts import make_task
from spinicl.theory.gaussian import gaussian_theory

TINY = TaskConfig(D=3, N=6, P=60, lam=0.05, test_prompts=20)


@pytest.fixture(scope="module")
def rows():
    return bench_samplers(TINY, ("exact", "mala", "baoab"), replicas=4,
                          budget_seconds=0.2, precondition=("none", "diag"),
                          representation="dense")


def test_rows_and_table(rows):
    assert [(r["sampler"], r["precondition"]) for r in rows] == [
        ("exact", "none"), ("mala", "none"), ("mala", "diag"), ("baoab", "none"),
        ("baoab", "diag")]
    for r in rows:
        assert set(r) == set(ROW_KEYS)
        assert r["status"] == "ok", r["note"]
        assert r["chain_steps_per_s"] > 0
        assert r["ess_per_s_energy"] > 0 and r["ess_per_s_slowest"] > 0
        assert 0 <= r["acceptance"] <= 1
        assert r["peak_memory_mb"] > 0
        assert r["ratio_energy"] is not None and r["speed_ratio"] is not None
    exact = rows[0]
    assert exact["speed_ratio"] == pytest.approx(1.0)
    assert exact["acceptance"] == 1.0
    json.dumps(rows)  # plain JSON types only
    table = format_bench_table(rows)
    lines = table.splitlines()
    assert lines[1].split() == [w for h, _, _ in TABLE_COLUMNS for w in h.split()]
    assert any(line.split()[:2] == ["exact", "none"] for line in lines[3:])


def test_slowest_mode_matches_theory():
    task = make_task(TINY)
    model = build_model(task, representation="dense")
    val, u = slowest_active_mode(model)
    ref_val, ref_u = gaussian_theory(model, task).slowest_mode()
    assert val == pytest.approx(ref_val, rel=1e-10)
    assert abs(u @ ref_u) == pytest.approx(1.0, abs=1e-8)
    mf = build_model(task, representation="matrix-free")
    val_mf, u_mf = slowest_active_mode(mf)
    assert val_mf == pytest.approx(val, rel=1e-6)
    assert abs(u_mf @ u) == pytest.approx(1.0, abs=1e-5)
    assert np.all(u[3::4] == 0)  # inactive spins (last column of W) excluded


def test_skipped_rows_and_factored():
    rows = bench_samplers(TINY, ("exact", "ula"), model="factored", replicas=2,
                          budget_seconds=0.1, precondition=("none", "dense"))
    status = {(r["sampler"], r["precondition"]): r["status"] for r in rows}
    assert status == {("exact", "none"): "skipped", ("ula", "none"): "ok",
                      ("ula", "dense"): "skipped"}
    ok = rows[1]
    assert ok["slowest_observable"] in ("energy", "proj_slowest_mode", "proj_top_mode",
                                        "proj_identity", "Q")
    assert ok["ratio_energy"] is None  # no exact reference for the factored model
    assert "skipped" in format_bench_table(rows)


@pytest.mark.parametrize("kw, param", [
    ({"samplers": ("mala", "nuts")}, "sampler"),
    ({"samplers": ()}, "samplers"),
    ({"budget_seconds": 0}, "budget_seconds"),
    ({"replicas": 0}, "replicas"),
    ({"precondition": ("none", "full")}, "precondition"),
    ({"beta": 1.0, "temperature": 1.0}, "beta"),
    ({"beta": -1.0}, "beta"),
    ({"model": "split"}, "model"),
    ({"representation": "sparse"}, "representation"),
])
def test_bad_input(kw, param):
    with pytest.raises(ConfigError) as err:
        bench_samplers(TINY, **kw)
    assert err.value.param == param


def test_lam_zero_refused():
    with pytest.raises(ConfigError) as err:
        bench_samplers(TINY.replace(lam=0.0))
    assert err.value.param == "lam"
