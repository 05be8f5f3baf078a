"""Spin-glass observables in sweeps: C, Binder, f, s and the log Z ratios of every point
stored in the sweep file (sample mode from each run's /thermo, theory mode from the
closed forms), read by `load_sweep`, drawn by `plot phase` / `plot cut`; sweep files
written before them still load and plot (docs/model.md §4.2, §5)."""

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from spinicl.cli import cli
from spinicl.config import ConfigError
from spinicl.observables import OBSERVABLES
from spinicl.sweep import parse_sweep, run_sweep

Z_TOL = 4.5
THERMO = ("heat_capacity", "binder", "free_energy", "entropy", "log_z_ratio")

SAMPLE_TOML = """
[sweep]
mode = "sample"
name = "thermo"

[task]
D = 3
N = 8
lam = 0.05
test_prompts = 40

[grid]
P = [60, 200]
seed = [0, 1]

[sampler]
sampler = "exact"
temps = "1e-3:1e-2:3"
copies = 3
steps = 600
burn_in = 20
record_every = 2
"""

THEORY_TOML = """
[sweep]
mode = "theory"

[task]
D = 3
N = 8
lam = 0.05
test_prompts = 40

[grid]
alpha = [1.0, 3.0]
seed = [0]

[sampler]
temps = "1e-3:1e-1:4"
"""

N_SPINS = 16   # (D+1)² at D = 3


@pytest.fixture(scope="module")
def sample_sweep(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sw") / "s.h5")
    res = run_sweep(parse_sweep(SAMPLE_TOML), out, workers=1, progress=False)
    assert (res.done, res.failed) == (4, 0)
    return out


def _summary(path, pid, name):
    with h5py.File(path, "r") as f:
        g = f[f"points/{pid}/summary/{name}"]
        return {k: g[k][...] for k in g}


def test_thermo_observables_are_in_the_table():
    for name in THERMO:
        obs = OBSERVABLES[name]
        assert obs.thermo and obs.exact is not None and obs.shape is None
    assert OBSERVABLES["log_z_ratio"].rung_pairs


def test_every_point_stores_them_and_c_is_n_over_2(sample_sweep):
    """Merged model (exact draws): C = β²Var E = n/2 at every point × rung within its
    error; the log Z ratios and the Binder cumulant against their closed forms too."""
    zs = {}
    for pid in range(4):
        for name in THERMO:
            s = _summary(sample_sweep, pid, name)
            assert set(s) == {"mean", "stderr", "exact"}
            width = 2 if name == "log_z_ratio" else 3
            assert s["mean"].shape == (width,) and np.all(np.isfinite(s["mean"]))
            assert np.all(np.isfinite(s["exact"]))
        c = _summary(sample_sweep, pid, "heat_capacity")
        np.testing.assert_array_equal(c["exact"], N_SPINS / 2)
        for name in ("heat_capacity", "binder", "log_z_ratio"):
            s = _summary(sample_sweep, pid, name)
            zs[(pid, name)] = (s["mean"] - s["exact"]) / s["stderr"]
    z = np.concatenate(list(zs.values()))
    assert np.all(np.abs(z) < Z_TOL), zs
    # the hottest rung's f is the exact one (absolute log Z from the merged model)
    f = _summary(sample_sweep, 0, "free_energy")
    assert f["mean"][-1] == pytest.approx(f["exact"][-1], rel=1e-12)


def test_load_sweep_has_the_columns(sample_sweep):
    pytest.importorskip("pandas")
    from spinicl import load_sweep

    df = load_sweep(sample_sweep)
    for name in THERMO:
        for stat in ("mean", "stderr", "exact"):
            assert f"{name}_{stat}" in df.columns
    assert len(df) == 4 * 3
    # per-pair ratios sit on the colder rung of each pair, NaN on the hottest
    hottest = df["rung"] == 2
    assert df.loc[hottest, "log_z_ratio_mean"].isna().all()
    assert df.loc[~hottest, "log_z_ratio_mean"].notna().all()


@pytest.mark.parametrize("z", ["heat_capacity", "binder", "free_energy", "entropy"])
def test_plot_phase_of_thermo_observables(sample_sweep, tmp_path, z):
    out = tmp_path / f"{z}.png"
    res = CliRunner().invoke(cli, ["plot", "phase", sample_sweep, "--x", "P", "--z", z,
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 10_000


def test_plot_cut_of_heat_capacity_and_log_z_ratio(sample_sweep, tmp_path):
    for z in ("heat_capacity", "log_z_ratio"):
        out = tmp_path / f"cut_{z}.png"
        res = CliRunner().invoke(cli, ["plot", "cut", sample_sweep, "--x", "P", "--z", z,
                                       "--by", "T", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert out.stat().st_size > 10_000


def test_old_sweep_file_without_them_still_loads_and_plots(sample_sweep, tmp_path):
    from spinicl.plots import plot_phase

    old = str(tmp_path / "old.h5")
    with h5py.File(sample_sweep, "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            src.copy(src[k], dst, k)
        for pid in dst["points"]:
            for name in THERMO:
                del dst[f"points/{pid}/summary/{name}"]
    assert plot_phase(old, x="P", z="test_mse_novel", out=str(tmp_path / "p.png"))
    with pytest.raises(ConfigError, match="heat_capacity"):
        plot_phase(old, x="P", z="heat_capacity", out=str(tmp_path / "q.png"))
    pytest.importorskip("pandas")
    from spinicl import load_sweep

    df = load_sweep(old)
    assert "test_mse_novel_mean" in df.columns and "heat_capacity_mean" not in df.columns


def test_theory_sweep_has_the_closed_forms(tmp_path):
    out = str(tmp_path / "t.h5")
    run_sweep(parse_sweep(THEORY_TOML), out, workers=1, progress=False)
    c = _summary(out, 0, "heat_capacity")
    np.testing.assert_array_equal(c["mean"], N_SPINS / 2)
    np.testing.assert_array_equal(c["stderr"], 0.0)
    r = _summary(out, 1, "log_z_ratio")
    assert r["mean"].shape == (3,) and np.all(np.isfinite(r["mean"]))
    b = _summary(out, 1, "binder")
    assert np.all((b["mean"] > -2) & (b["mean"] <= 2 / 3))   # B ∈ [−2, 2/3] for q ≠ 0
    f, s = _summary(out, 1, "free_energy"), _summary(out, 1, "entropy")
    e = _summary(out, 1, "energy")
    with h5py.File(out, "r") as fh:
        T = fh["points/1/ladder/T"][...]
    # f = ⟨E⟩/n − T·s per spin, with log Z ratios the differences of −βnf
    np.testing.assert_allclose(f["mean"], e["mean"] / N_SPINS - T * s["mean"], rtol=1e-10)
    lz = -N_SPINS * f["mean"] / T
    np.testing.assert_allclose(r["mean"], lz[:-1] - lz[1:], rtol=1e-10)
