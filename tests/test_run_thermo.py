"""Spin-glass observables of a run file: /thermo, /overlap_histogram, `info`, `plot overlap`.

One real small merged run (exact sampler: independent draws, so every error is the plain
one) on a short ladder whose neighbouring rungs overlap well; its stepping-stone log Z
ratios, heat capacity and Binder cumulant are checked against the merged model's closed
forms, its histograms against the records, and `info` / `plot overlap` / `load_run` read it.
"""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spinicl.analysis import thermo
from spinicl.analysis.diagnostics import stderr
from spinicl.cli import cli
from spinicl.config import SampleConfig, TaskConfig
from spinicl.runner import file_info, run_sample

Z_TOL = 4.5


def _config(**kw) -> SampleConfig:
    base = {"task": TaskConfig(D=3, N=8, P=150, lam=0.05, test_prompts=50, seed=5),
            "temperatures": tuple(np.geomspace(0.01, 0.04, 5)), "copies": 4, "steps": 4000,
            "burn_in": 100, "record_every": 2, "flush_every": 200, "sampler": "exact"}
    base.update(kw)
    return SampleConfig(**base)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("thermo") / "run.h5")
    res = run_sample(_config(), path, progress=False)
    assert res.status == "complete"
    return path


def _thermo(path):
    with h5py.File(path, "r") as f:
        th = {k: f[f"thermo/{k}"][...] for k in f["thermo"]}
        attrs = dict(f["thermo"].attrs)
        hist = {o: {k: f[f"overlap_histogram/{o}/{k}"][...]
                    for k in f[f"overlap_histogram/{o}"]} for o in f["overlap_histogram"]}
        steps = f["trace/step"][...]
        n_pairs = f["trace/overlap"].shape[2]
        n_spins = int(f.attrs["n_spins"])
    return th, attrs, hist, int((steps > 100).sum()), n_pairs, n_spins


def test_thermo_against_merged_closed_forms(run_file):
    th, attrs, _, _, _, n = _thermo(run_file)
    T = 5
    for key, size in (("log_z_ratio", T - 1), ("log_z_ratio_stderr", T - 1),
                      ("log_z_ratio_ti", T - 1), ("log_z_ratio_exact", T - 1),
                      ("log_z", T), ("free_energy", T), ("entropy", T),
                      ("heat_capacity", T), ("binder", T), ("binder_exact", T)):
        assert th[key].shape == (size,), key
    assert th["weight_ess"].shape == (T - 1, 2)
    assert np.all(th["weight_ess"] > 0.5)          # neighbouring rungs overlap well
    assert attrs["reference"].startswith("absolute")
    # stepping stone and TI against the exact log Z ratios
    z = (th["log_z_ratio"] - th["log_z_ratio_exact"]) / th["log_z_ratio_stderr"]
    assert np.all(np.abs(z) < Z_TOL), z
    z_ti = (th["log_z_ratio_ti"] - th["log_z_ratio_exact"]) / th["log_z_ratio_ti_stderr"]
    assert np.all(np.abs(z_ti) < Z_TOL), z_ti
    # absolute log Z, free energy and entropy per spin
    zl = (th["log_z"] - th["log_z_exact"])[:-1] / th["log_z_stderr"][:-1]
    assert np.all(np.abs(zl) < Z_TOL), zl
    assert th["log_z"][-1] == pytest.approx(th["log_z_exact"][-1])
    zs = (th["entropy"] - th["entropy_exact"]) / th["entropy_stderr"]
    assert np.all(np.abs(zs) < Z_TOL), zs
    betas = 1.0 / np.geomspace(0.01, 0.04, 5)
    np.testing.assert_allclose(th["free_energy"], -th["log_z"] / (betas * n))
    # C = β²Var E = n/2
    np.testing.assert_allclose(th["heat_capacity_exact"], n / 2)
    zc = (th["heat_capacity"] - n / 2) / th["heat_capacity_stderr"]
    assert np.all(np.abs(zc) < Z_TOL), zc
    # Binder cumulant against the exact overlap moments
    zb = (th["binder"] - th["binder_exact"]) / th["binder_stderr"]
    assert np.all(np.abs(zb) < Z_TOL), zb


def test_overlap_histograms_count_every_sample(run_file):
    _, _, hist, records, n_pairs, _ = _thermo(run_file)
    assert set(hist) == {"overlap", "overlap_active"}
    with h5py.File(run_file, "r") as f:
        q = f["trace/overlap"][...][f["trace/step"][...] > 100]
        rule = str(f["overlap_histogram"].attrs["edges"])
    assert "per rung" in rule and "quantiles" in rule
    for h in hist.values():
        assert h["edges"].shape == (5, 101)           # one row of fixed edges per rung
        assert h["counts"].shape == (5, 100)
        np.testing.assert_array_equal(h["counts"].sum(axis=1) + h["outside"].sum(axis=1),
                                      records * n_pairs)
        # only tails beyond the 0.1–99.9 % quantile range (widened) can fall outside
        assert np.all(h["outside"].sum(axis=1) <= 0.002 * records * n_pairs)
        assert np.all(np.isfinite(h["exact_mean"])) and np.all(h["exact_var"] > 0)
    np.testing.assert_array_equal(hist["overlap"]["counts"][2],
                                  np.histogram(q[:, 2].ravel(), hist["overlap"]["edges"][2])[0])


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """Three decades of T (exact draws, 3 copies): q at the coldest rung spreads over
    ~1/30 of the hottest rung's range."""
    path = str(tmp_path_factory.mktemp("thermo") / "wide.h5")
    cfg = _config(temperatures=tuple(np.geomspace(1e-4, 1e-1, 4)), copies=3, steps=2000,
                  record_every=1)
    assert run_sample(cfg, path, progress=False).status == "complete"
    return path


def _histogram_z(counts, edges, exact_mean, exact_var, q):
    """z-scores of the histogram's mean and (Sheppard-corrected) variance of q per rung
    against the exact ones; errors from the τ-corrected standard errors of the
    pair-averaged series q and (q − q̄)² (pairs share copies)."""
    m, v = thermo.histogram_moments(counts, edges)
    zm, zv = [], []
    for k in range(q.shape[1]):
        x = q[:, k, :]
        se_m = stderr(x.mean(axis=1, keepdims=True), chains=True)
        se_v = stderr(((x - x.mean()) ** 2).mean(axis=1, keepdims=True), chains=True)
        zm.append((m[k] - exact_mean[k]) / se_m)
        zv.append((v[k] - exact_var[k]) / se_v)
    return np.array(zm), np.array(zv)


def test_histogram_moments_match_the_exact_overlap_law_at_every_rung(wide_run):
    """Merged model: P(q)'s binned mean and variance against ⟨q⟩ and Var q in closed form
    at every rung, the coldest included. The old shared edges over [−Q̄, Q̄] put the
    coldest rung into one or two bins (its variance off by thousands of errors)."""
    with h5py.File(wide_run, "r") as f:
        h = {k: f[f"overlap_histogram/overlap/{k}"][...] for k in f["overlap_histogram/overlap"]}
        keep = f["trace/step"][...] > 100
        q = f["trace/overlap"][...][keep]
        qbar = float(f["trace/self_overlap"][...][keep].max())
    assert h["edges"].shape == (4, 101)
    assert np.all(h["outside"].sum(axis=1) <= 0.002 * q.shape[0] * q.shape[2])
    assert np.all(np.count_nonzero(h["counts"], axis=1) > 40)   # every rung resolved
    zm, zv = _histogram_z(h["counts"], h["edges"], h["exact_mean"], h["exact_var"], q)
    assert np.all(np.abs(zm) < Z_TOL) and np.all(np.abs(zv) < Z_TOL), (zm, zv)
    old = np.linspace(-qbar, qbar, 101)
    ho = thermo.overlap_histogram(q, old)
    assert np.count_nonzero(ho["counts"][0]) <= 3
    _, zv_old = _histogram_z(ho["counts"], old, h["exact_mean"], h["exact_var"], q)
    assert abs(zv_old[0]) > 100 * Z_TOL, zv_old


def test_old_single_edge_vector_still_plots(wide_run, tmp_path):
    """Files written before per-rung edges hold one (101,) vector: plot overlap reads it."""
    old = str(tmp_path / "old_edges.h5")
    with h5py.File(wide_run, "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            src.copy(src[k], dst, k)
        for o in ("overlap", "overlap_active"):
            g = dst[f"overlap_histogram/{o}"]
            q = src["trace/overlap" if o == "overlap" else "trace/overlap_active"][...]
            edges = np.linspace(-1.2 * np.abs(q).max(), 1.2 * np.abs(q).max(), 101)
            h = thermo.overlap_histogram(q[src["trace/step"][...] > 100], edges)
            for key in ("edges", "counts", "outside"):
                del g[key]
                g[key] = h[key]
    res = CliRunner().invoke(cli, ["plot", "overlap", old, "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.png").stat().st_size > 10_000


def test_info_text_and_json(run_file):
    d = file_info(run_file)
    block = d["thermo"]
    assert block["source"] == "file" and len(block["pairs"]) == 4 and len(block["rungs"]) == 5
    assert all(abs(p["z_stepping_stone"]) < Z_TOL for p in block["pairs"])
    assert all(r["heat_capacity_exact"] == 8.0 for r in block["rungs"])
    res = CliRunner().invoke(cli, ["info", run_file])
    assert res.exit_code == 0, res.output
    assert "thermodynamics (file" in res.output and "stepping st." in res.output
    assert "Binder" in res.output and "C=β²Var E" in res.output
    assert "overlap poorly" not in res.output
    # the largest |z| covers the thermo z-scores and names where it is
    thermo_z = [abs(p[k]) for p in block["pairs"] for k in ("z_stepping_stone", "z_ti")
                if p[k] is not None]
    thermo_z += [abs(r[f"z_{q}"]) for r in block["rungs"]
                 for q in ("heat_capacity", "binder", "log_z", "free_energy", "entropy")
                 if r.get(f"z_{q}") is not None]
    summary_z = [abs(r["z"]) for rows in d["summary"].values() for r in rows
                 if r["z"] is not None]
    assert len(thermo_z) >= 4 * 2 + 5 * 3
    assert d["max_abs_z"] == pytest.approx(max(thermo_z + summary_z))
    at = d["max_abs_z_at"]
    assert at["abs_z"] == d["max_abs_z"] and at["quantity"]
    assert f"largest |z| against the closed forms: {d['max_abs_z']:.2f} ({at['quantity']}, T = " \
        in res.output
    res = CliRunner().invoke(cli, ["info", run_file, "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.output)
    assert js["thermo"]["pairs"][0]["exact"] == pytest.approx(block["pairs"][0]["exact"])
    assert "binder" in js["thermo"]["rungs"][0]
    assert js["max_abs_z_at"]["quantity"] == d["max_abs_z_at"]["quantity"]


def test_plot_overlap_writes_png(run_file, tmp_path):
    out = tmp_path / "pq.png"
    res = CliRunner().invoke(cli, ["plot", "overlap", run_file, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000
    res = CliRunner().invoke(cli, ["plot", "overlap", run_file, "--active", "-o",
                                   str(tmp_path / "pqa.png")])
    assert res.exit_code == 0, res.output


def test_load_run_has_thermo(run_file):
    pytest.importorskip("xarray")
    from spinicl import load_run

    ds = load_run(run_file)
    assert ds["thermo_log_z_ratio"].dims == ("pair_of_rungs",)
    assert ds["thermo_heat_capacity"].dims == ("temperature",)
    assert ds["thermo_weight_ess_colder"].dims == ("pair_of_rungs",)
    assert set(ds.sizes) == {"record", "temperature", "copy", "pair", "pair_of_rungs"}
    with h5py.File(run_file, "r") as f:
        np.testing.assert_array_equal(ds["thermo_binder"].values, f["thermo/binder"][...])
    assert ds.attrs["thermo_reference"].startswith("absolute")


def test_old_file_without_thermo_still_reads(run_file, tmp_path):
    old = str(tmp_path / "old.h5")
    with h5py.File(run_file, "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            if k not in ("thermo", "overlap_histogram"):
                src.copy(src[k], dst, k)
    d = file_info(old)   # computed from the records, relative, no exact values
    assert d["thermo"]["source"].startswith("computed from")
    assert d["thermo"]["pairs"][0]["exact"] is None
    res = CliRunner().invoke(cli, ["info", old])
    assert res.exit_code == 0, res.output
    assert "thermodynamics (computed" in res.output
    res = CliRunner().invoke(cli, ["plot", "overlap", old, "-o", str(tmp_path / "x.png")])
    assert res.exit_code != 0     # ConfigError naming path (main prints it)
    assert "overlap_histogram" in str(res.exception)


def test_too_few_records_write_nan(tmp_path):
    path = str(tmp_path / "short.h5")
    res = run_sample(_config(steps=4, burn_in=100, temperatures=(0.01, 0.02)), path,
                     progress=False)
    assert res.status == "complete"
    th, _, hist, records, _, _ = _thermo(path)
    assert records < 4
    assert np.all(np.isnan(th["log_z_ratio"])) and np.all(np.isnan(th["heat_capacity"]))
    assert np.all(np.isnan(th["binder"]))
    assert np.all(np.isfinite(th["log_z_ratio_exact"]))
    assert hist["overlap"]["counts"].sum() == 0
    assert file_info(path)["thermo"]["pairs"][0]["stepping_stone"] is None


def test_single_copy_single_rung(tmp_path):
    path = str(tmp_path / "one.h5")
    run_sample(_config(steps=200, copies=1, temperatures=(0.02,)), path, progress=False)
    with h5py.File(path, "r") as f:
        assert "thermo/heat_capacity" in f and "thermo/log_z_ratio" not in f
        assert "thermo/binder" not in f and "overlap_histogram" not in f
    res = CliRunner().invoke(cli, ["info", path])
    assert res.exit_code == 0, res.output


def test_overlap_plot_merges_bins_for_short_runs_only():
    from spinicl.plots.overlap import display_bins

    rng = np.random.default_rng(4)
    edges = np.tile(np.linspace(-1.0, 1.0, 101), (3, 1))
    short = np.stack([np.histogram(rng.normal(0, 0.3, 480), edges[0])[0] for _ in range(3)])
    c, e = display_bins(short, edges)
    assert c.shape[1] < 100 and c.shape[1] >= 2 * 480 ** (1 / 3) - 1
    assert e.shape == (3, c.shape[1] + 1) and np.all(c.sum(axis=1) == short.sum(axis=1))
    assert np.array_equal(e[:, [0, -1]], edges[:, [0, -1]])
    long = short * 1000
    c2, e2 = display_bins(long, edges)
    assert c2.shape[1] == 100 and np.array_equal(e2, edges)
