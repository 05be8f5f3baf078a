"""Run and sweep files into pandas / xarray / ArviZ, CSV and netCDF export, sweep info.

Every file here is a real one made by spinicl (a sweep through spinicl.sweep in this
process, a run through spinicl.runner.run_sample); expected values are read back
independently with h5py.
"""

import json
import os
import shutil
import warnings

import h5py
import numpy as np
import pytest

from spinicl.analysis import diagnostics
from spinicl.config import ConfigError, SampleConfig, TaskConfig
from spinicl.io.loaders import (
    MissingExtraError,
    export_file,
    file_kind,
    format_sweep_info,
    format_value,
    is_sweep_file,
    load_run,
    load_sweep,
    run_summary,
    sweep_info,
    to_inference_data,
)
from spinicl.io.run import create_layout, open_run, read_checkpoint
from spinicl.io.sweep_file import SweepWriter
from spinicl.runner import run_sample
from spinicl.sweep import parse_sweep, run_point, run_sweep

pd = pytest.importorskip("pandas")
xr = pytest.importorskip("xarray")

SAMPLE_TOML = """
[sweep]
mode = "sample"
name = "export-test"

[task]
D = 3
N = 8
lam = 0.05
test_prompts = 80

[grid]
P = [60, 200]
seed = [0, 1]

[sampler]
sampler = "mala"
temps = "1e-3:1e-1:3"
copies = 2
steps = 300
burn_in = 100
record_every = 10
"""

THEORY_TOML = """
[sweep]
mode = "theory"
name = "export-theory"

[task]
D = 4
N = 10
test_prompts = 100

[grid]
alpha = [0.5, 2.0]
seed = [0, 1]

[sampler]
temps = "1e-4:1e-1:5"
"""

# a point that fails (ULA far above its stability bound: refused, or diverges)
DIVERGING_TOML = """
[sweep]
mode = "sample"
name = "diverges"

[task]
D = 3
N = 8
P = 150
lam = 0.05
test_prompts = 80

[grid]
seed = [0]

[sampler]
sampler = "ula"
step = 50.0
temps = "1e-3:1e-1:3"
copies = 2
steps = 200
burn_in = 0
record_every = 10
"""

BURN_IN = 500


def run_config() -> SampleConfig:
    return SampleConfig(task=TaskConfig(D=3, N=8, P=150, lam=0.05, test_prompts=100, seed=3),
                        temperatures=(1e-3, 1e-2, 1e-1), copies=3, steps=2000,
                        burn_in=BURN_IN, record_every=5, flush_every=50)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    out = {}
    for name, text in (("sample", SAMPLE_TOML), ("theory", THEORY_TOML),
                       ("diverging", DIVERGING_TOML)):
        path = str(d / f"{name}.h5")
        run_sweep(parse_sweep(text), path, workers=1, progress=False)
        out[name] = path
    # a sweep still running: its writer has merged one point of four
    cfg = parse_sweep(SAMPLE_TOML.replace('name = "export-test"', 'name = "partial"'))
    partial = str(d / "partial.h5")
    writer = SweepWriter(partial, cfg)
    writer.add(run_point(cfg.points[2]))
    writer.flush()
    out["partial"] = partial
    # one point failed (edited copy of the complete sweep: what the writer stores then)
    failed = str(d / "one_failed.h5")
    shutil.copyfile(out["sample"], failed)
    with h5py.File(failed, "r+") as f:
        del f["points/1"]
        f["grid/status"][1] = "failed"
        f["grid/message"][1] = "RuntimeError: diverged: made up for the test"
    out["one_failed"] = failed
    run = str(d / "run.h5")
    res = run_sample(run_config(), run, progress=False)
    assert res.status == "complete"
    out["run"] = run
    out["dir"] = str(d)
    return out


def raw_sweep(path):
    """Grid columns and per-point summaries, read with h5py alone."""
    with h5py.File(path, "r") as f:
        grid = {}
        for k in f["grid"]:
            v = f[f"grid/{k}"][...]
            if v.dtype == object:
                v = np.array([x.decode() if isinstance(x, bytes) else x for x in v])
            grid[k] = v
        points = {}
        for pid in f["points"]:
            g = f[f"points/{pid}"]
            points[int(pid)] = {
                "T": g["ladder/T"][...],
                "summary": {(o, s): g[f"summary/{o}/{s}"][...]
                            for o in g["summary"] for s in g[f"summary/{o}"]}}
    return grid, points


def check_sweep_frame(df, path):
    grid, points = raw_sweep(path)
    assert len(df) == sum(len(points[i]["T"]) if i in points else 1 for i in grid["id"])
    for i, pid in enumerate(grid["id"]):
        rows = df[df["id"] == pid]
        for col, v in grid.items():
            assert (rows[col].to_numpy() == v[i]).all() or (
                col == "seconds" and np.isnan(v[i]) and rows[col].isna().all()), col
        if pid not in points:
            assert len(rows) == 1 and rows["T"].isna().all() and rows["rung"].isna().all()
            assert all(rows[c].isna().all() for c in df.columns if c.endswith("_mean"))
            continue
        T = points[pid]["T"]
        np.testing.assert_array_equal(rows["T"].to_numpy(), T)
        np.testing.assert_array_equal(rows["beta"].to_numpy(), 1.0 / T)
        np.testing.assert_array_equal(rows["rung"].to_numpy(dtype=int), np.arange(T.size))
        for (obs, stat), v in points[pid]["summary"].items():
            got = rows[f"{obs}_{stat}"].to_numpy()
            if v.size == T.size - 1:  # per neighbouring pair: on the colder rung
                np.testing.assert_array_equal(got[:-1], v)
                assert np.isnan(got[-1])
            else:
                np.testing.assert_array_equal(got, v, err_msg=f"{pid} {obs} {stat}")
    return grid, points


# --------------------------------------------------------------------------- sweeps
def test_load_sweep_sample_mode_equals_the_stored_numbers(files):
    df = load_sweep(files["sample"])
    _, points = check_sweep_frame(df, files["sample"])
    assert len(points) == 4 and len(df) == 4 * 3
    # the grid's axes (the D → ∞ variables alpha_L, kappa, tau after the named ones)
    assert list(df.columns[:14]) == ["id", "D", "N", "P", "K", "alpha", "lam", "seed",
                                     "alpha_L", "kappa", "tau", "rung", "T", "beta"]
    assert list(df.columns[-3:]) == ["status", "message", "seconds"]
    for stat in ("mean", "stderr", "exact", "tau_int", "ess", "rhat"):
        assert f"test_mse_novel_{stat}" in df
    assert (df["status"] == "done").all()
    assert df["energy_mean"].notna().all()


def test_load_sweep_theory_mode(files):
    df = load_sweep(files["theory"])
    check_sweep_frame(df, files["theory"])
    assert len(df) == 4 * 5
    assert "free_energy_mean" in df and "swap_accept_mean" not in df
    assert (df["energy_stderr"] == 0).all() and np.isinf(df["energy_ess"]).all()
    np.testing.assert_array_equal(df["alpha"].unique(), [0.5, 2.0])


def test_load_sweep_of_a_sweep_still_running_keeps_pending_points(files):
    df = load_sweep(files["partial"])
    _, points = check_sweep_frame(df, files["partial"])
    assert list(points) == [2]
    assert len(df) == 3 + 3  # three pending points (one row each), one done (3 rungs)
    assert (df.loc[df["id"] != 2, "status"] == "pending").all()
    assert df.loc[df["id"] == 2, "energy_mean"].notna().all()


def test_load_sweep_keeps_failed_points_with_their_message(files):
    for key in ("one_failed", "diverging"):
        df = load_sweep(files[key])
        check_sweep_frame(df, files[key])
        bad = df[df["status"] == "failed"]
        assert len(bad) == 1 and bad["T"].isna().all() and bad["message"].iloc[0]


# --------------------------------------------------------------------------- runs
def raw_run(path):
    with h5py.File(path, "r", swmr=True) as f:
        return ({k: f[f"trace/{k}"][...] for k in f["trace"]},
                {o: {s: f[f"summary/{o}/{s}"][...] for s in f[f"summary/{o}"]}
                 for o in f["summary"]} if "summary" in f else None,
                {k: f[f"theory/{k}"][...] for k in f["theory"]}, f["ladder/T"][...],
                dict(f.attrs))


def test_load_run_dims_and_values_equal_the_file(files):
    ds = load_run(files["run"])
    traces, summary, theory, T, attrs = raw_run(files["run"])
    n = traces["step"].shape[0]
    assert dict(ds.sizes) == {"record": n, "temperature": 3, "copy": 3, "pair": 3,
                              "pair_of_rungs": 2}
    np.testing.assert_array_equal(ds["step"].values, traces["step"])
    np.testing.assert_array_equal(ds["T"].values, T)
    np.testing.assert_array_equal(ds["warmup"].values, traces["step"] <= BURN_IN)
    for k, v in traces.items():
        if k == "step":
            continue
        np.testing.assert_array_equal(ds[k].values, v, err_msg=k)
    assert ds["energy"].dims == ("record", "temperature", "copy")
    assert ds["overlap"].dims == ("record", "temperature", "pair")
    assert ds["swap_accept"].dims == ("record", "pair_of_rungs")
    np.testing.assert_array_equal(ds["copy_a"].values, [0, 0, 1])
    np.testing.assert_array_equal(ds["copy_b"].values, [1, 2, 2])
    for o, stats in summary.items():
        for s, v in stats.items():
            np.testing.assert_array_equal(ds[f"{o}_{s}"].values, v, err_msg=f"{o} {s}")
    assert ds["swap_accept_mean"].dims == ("pair_of_rungs",)
    for k, v in theory.items():
        np.testing.assert_array_equal(ds[f"theory_{k}"].values, v)
    assert json.loads(ds.attrs["config"]) == json.loads(attrs["config"])
    assert json.loads(ds.attrs["seeds"]) == json.loads(attrs["seeds"])
    assert ds.attrs["status"] == "complete" and ds.attrs["summary_source"] == "file"


def test_run_summary_table(files):
    df = run_summary(files["run"])
    _, summary, theory, T, _ = raw_run(files["run"])
    assert len(df) == 3
    np.testing.assert_array_equal(df["T"], T)
    np.testing.assert_array_equal(df["energy_stderr"], summary["energy"]["stderr"])
    np.testing.assert_array_equal(df["swap_accept_mean"][:-1], summary["swap_accept"]["mean"])
    np.testing.assert_array_equal(df["theory_test_mse_novel"], theory["test_mse_novel"])


def test_load_run_while_the_writer_holds_it_in_swmr_mode(files, tmp_path):
    """A live SWMR writer: only records up to its last checkpoint are read."""
    from spinicl.io.run import RunWriter

    traces, _, theory, T, _ = raw_run(files["run"])
    with open_run(files["run"]) as f:
        state, _ = read_checkpoint(f)
    path = str(tmp_path / "live.h5")
    names = [k for k in traces]
    create_layout(path, attrs={"config": json.dumps({"burn_in": 0}), "burn_in": 0,
                               "status": "running"},
                  temperatures=T, theory=theory,
                  record_shapes={k: traces[k].shape[1:] for k in names},
                  record_dtypes={k: traces[k].dtype for k in names}, checkpoint=state,
                  snapshot_shape=None)
    writer = RunWriter(path, flush_every=1000, flush_seconds=1e9)
    try:
        for i in range(7):
            writer.append({k: traces[k][i] for k in names})
        writer.flush(state, int(traces["step"][6]))   # records 0..6 + checkpoint
        for i in range(7, 10):
            writer.append({k: traces[k][i] for k in names})
        writer.write_records()                       # written, not yet checkpointed
        writer.f.flush()
        ds = load_run(path)                           # the writer is still open
        assert ds.sizes["record"] == 7 and ds.attrs["status"] == "running"
        np.testing.assert_array_equal(ds["energy"].values, traces["energy"][:7])
        assert ds.attrs["summary_source"] == "computed from 7 records"
        x = traces["energy"][:7, 0, :]                # burn-in 0: every record counts
        assert ds["energy_mean"].values[0] == pytest.approx(
            diagnostics.summarize(x)["mean"], rel=1e-12)
    finally:
        writer.close()


def test_load_run_of_a_failed_run_keeps_its_records(tmp_path, monkeypatch):
    """A run that failed (disk full after three flushes): its flushed records load."""
    import errno

    from spinicl.io import run as store

    real = store.RunWriter.write_records
    calls = {"n": 0}

    def failing(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self)

    monkeypatch.setattr(store.RunWriter, "write_records", failing)
    path = str(tmp_path / "full.h5")
    res = run_sample(run_config().replace(flush_every=4, burn_in=0), path, progress=False)
    assert res.status == "failed"
    traces, summary, *_ = raw_run(path)
    ds = load_run(path)
    assert ds.attrs["status"] == "failed" and "disk full" in ds.attrs["message"]
    assert ds.sizes["record"] == traces["step"].shape[0] == 12
    np.testing.assert_array_equal(ds["energy"].values, traces["energy"])
    np.testing.assert_array_equal(ds["energy_mean"].values, summary["energy"]["mean"])


def test_load_run_cuts_torn_records_of_a_killed_run(files, tmp_path):
    """Killed while writing: traces of unequal length, a resized row still zero."""
    path = str(tmp_path / "killed.h5")
    shutil.copyfile(files["run"], path)
    traces, *_ = raw_run(files["run"])
    n = traces["step"].shape[0]
    with h5py.File(path, "r+") as f:
        f.attrs["status"] = "interrupted"
        for k in ("step", "energy"):
            f[f"trace/{k}"].resize(n + 1, axis=0)  # resized, never written: zeros
    assert load_run(path).sizes["record"] == n
    with h5py.File(path, "r+") as f:
        for k in f["trace"]:
            f[f"trace/{k}"].resize(n + 1, axis=0)
        f.attrs["status"] = "running"
        f["checkpoint/meta"][3] = n - 10
    ds = load_run(path)
    assert ds.sizes["record"] == n - 10
    np.testing.assert_array_equal(ds["overlap"].values, traces["overlap"][: n - 10])


# --------------------------------------------------------------------------- arviz
def test_to_inference_data_works_with_arviz(files):
    az = pytest.importorskip("arviz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces, *_ = raw_run(files["run"])
    post = traces["step"] > BURN_IN
    idata = to_inference_data(files["run"])
    assert {"posterior", "sample_stats", "posterior_pairs", "swap_stats",
            "warmup_posterior"} <= set(idata.groups())
    p = idata.posterior
    assert p["energy"].dims == ("chain", "draw", "temperature")
    assert dict(p.sizes) == {"chain": 3, "draw": int(post.sum()), "temperature": 3}
    np.testing.assert_array_equal(p["energy"].values,
                                  traces["energy"][post].transpose(2, 0, 1))
    np.testing.assert_array_equal(idata.warmup_posterior["test_mse_novel"].values,
                                  traces["test_mse_novel"][~post].transpose(2, 0, 1))
    np.testing.assert_array_equal(idata.sample_stats["accept"].values,
                                  traces["accept"][post].transpose(2, 0, 1))
    np.testing.assert_array_equal(idata.posterior_pairs["overlap"].values,
                                  traces["overlap"][post].transpose(2, 0, 1))
    np.testing.assert_array_equal(idata.swap_stats["swap_accept"].values[0],
                                  traces["swap_accept"][post])
    np.testing.assert_array_equal(p["step"].values, traces["step"][post])
    np.testing.assert_array_equal(p["T"].values, raw_run(files["run"])[3])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.summary(idata, var_names=["energy", "test_mse_novel"])
        assert len(table) == 6 and np.isfinite(table["ess_bulk"]).all()
        az.summary(idata, group="posterior_pairs")
        axes = az.plot_trace(idata, var_names=["energy"])
        assert axes.size >= 2
        plt.close("all")
        ess_mean = az.ess(idata, method="mean")
    # arviz's ESS of the mean and spinicl's estimate the same quantity, n/τ_int over the
    # copies as chains. arviz uses Geyer's initial monotone sequence on split chains with
    # the between-chain variance in the normalisation; spinicl's "geyer" is the same
    # sequence on whole chains: the two differ by O(τ/n) terms (≤ 7% seen here, n = 300
    # draws per chain, τ ≈ 1-3): 15%. spinicl's default (Sokal's window, what the run's
    # summary stores) is another estimator of τ, with a statistical error of its own,
    # tau_int_stderr: the two must agree within 3 of those.
    summ = load_run(files["run"])
    for var in ("energy", "test_mse_novel", "self_overlap", "alignment"):
        x = traces[var][post]
        for k in range(3):
            series = x[:, k, :]
            geyer = diagnostics.ess(series, method="geyer", chains=True)
            sokal = diagnostics.ess(series, chains=True)
            got = float(ess_mean[var].values[k])
            assert got == pytest.approx(geyer, rel=0.15), (var, k, got, geyer)
            rel = diagnostics.tau_int_stderr(series) / diagnostics.tau_int(series, chains=True)
            assert abs(got / sokal - 1) <= 3 * rel, (var, k, got, sokal, rel)
            assert summ[f"{var}_ess"].values[k] == pytest.approx(sokal, rel=1e-12)

    everything = to_inference_data(files["run"], burn_in=False)
    assert everything.posterior.sizes["draw"] == traces["step"].shape[0]
    assert "warmup_posterior" not in everything.groups()


def test_missing_optional_dependency_is_one_line(files, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(MissingExtraError) as info:
        to_inference_data(files["run"])
    msg = str(info.value)
    assert 'pip install "spinicl[export]"' in msg and "\n" not in msg
    assert isinstance(info.value, ImportError)


# --------------------------------------------------------------------------- export
def read_csv(path):
    return pd.read_csv(path, keep_default_na=False, na_values=["NaN", "nan", ""])


def test_export_sweep_round_trips_through_csv_and_netcdf(files, tmp_path):
    df = load_sweep(files["partial"])
    csv = export_file(files["partial"], tmp_path / "sweep.csv")
    back = read_csv(csv)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    for c in df.columns:
        if c in ("status", "message"):
            assert back[c].astype(object).where(back[c].notna(), "").tolist() == \
                df[c].tolist()
        else:
            np.testing.assert_array_equal(back[c].to_numpy(dtype=float),
                                          df[c].to_numpy(dtype=float, na_value=np.nan),
                                          err_msg=c)
    nc = export_file(files["theory"], tmp_path / "sweep.nc")
    df = load_sweep(files["theory"])
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        assert ds.sizes["row"] == len(df)
        for c in df.columns:
            if c in ("status", "message"):
                assert [str(x) for x in ds[c].values] == df[c].tolist()
            else:
                np.testing.assert_array_equal(ds[c].values,
                                              df[c].to_numpy(dtype=float, na_value=np.nan),
                                              err_msg=c)
        assert ds.attrs["format"] == "spinicl-sweep"


def test_export_run_round_trips_through_netcdf_and_csv(files, tmp_path):
    ds = load_run(files["run"])
    nc = export_file(files["run"], str(tmp_path / "run.nc"))
    with xr.open_dataset(nc, engine="h5netcdf") as back:
        back = back.load()
    assert dict(back.sizes) == dict(ds.sizes)
    for k in ds.variables:
        np.testing.assert_array_equal(back[k].values, ds[k].values, err_msg=k)
        assert back[k].dims == ds[k].dims
    assert back.attrs["config"] == ds.attrs["config"]
    csv = export_file(files["run"], str(tmp_path / "run.csv"))
    table = run_summary(files["run"])
    back = read_csv(csv)
    assert list(back.columns) == list(table.columns)
    np.testing.assert_array_equal(back.to_numpy(dtype=float), table.to_numpy(dtype=float))


def test_export_refuses_overwrite_and_unknown_suffix(files, tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("keep me")
    with pytest.raises(ConfigError) as info:
        export_file(files["sample"], out)
    assert "--force" in str(info.value) and "\n" not in str(info.value)
    assert out.read_text() == "keep me"
    export_file(files["sample"], out, force=True)
    assert read_csv(out).shape[0] == 12
    with pytest.raises(ValueError) as info:
        export_file(files["sample"], tmp_path / "t.xlsx")
    assert ".csv or .nc" in str(info.value) and "\n" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["t.csv"]  # no temporary left behind
    with pytest.raises(ConfigError):
        export_file(tmp_path / "t.csv", tmp_path / "u.csv")  # not a spinicl file


def test_file_kind(files, tmp_path):
    assert file_kind(files["run"]) == "run"
    assert file_kind(files["sample"]) == "sweep"
    foreign = str(tmp_path / "foreign.h5")
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(ConfigError):
        file_kind(foreign)
    assert is_sweep_file(files["sample"]) and not is_sweep_file(files["run"])
    assert not is_sweep_file(foreign) and not is_sweep_file(tmp_path / "missing.h5")
    with pytest.raises(ConfigError):
        load_sweep(files["run"])
    with pytest.raises(ConfigError):
        load_run(files["sample"])


# --------------------------------------------------------------------------- info
def width(text, path):
    """The widest line, paths (which may be long) aside."""
    return max(len(line) for line in text.splitlines() if path not in line)


def test_sweep_info_complete_sweep(files):
    d = sweep_info(files["sample"])
    grid, points = raw_sweep(files["sample"])
    assert d["name"] == "export-test" and d["mode"] == "sample"
    assert d["grid"] == {"P": [60, 200], "seed": [0, 1]}
    assert d["counts"] == {"complete": 4, "failed": 0, "pending": 0, "running": 0}
    assert d["seconds"]["total"] == pytest.approx(float(np.sum(grid["seconds"])))
    assert d["seconds"]["max"] == float(np.max(grid["seconds"]))
    row = d["table"][3]["coldest"]
    k = int(np.argmin(points[3]["T"]))
    assert row["energy"]["mean"] == points[3]["summary"][("energy", "mean")][k]
    q = points[3]["summary"][("overlap", "mean")][k]
    Q = points[3]["summary"][("self_overlap", "mean")][k]
    assert row["overlap_ratio"]["mean"] == pytest.approx(q / Q, rel=1e-12)
    text = format_sweep_info(d)
    assert "4 complete, 0 failed, 0 pending" in text
    assert width(text, d["path"]) <= 100
    json.dumps(d, default=float)  # JSON-ready


def test_sweep_info_counts_failed_and_incomplete(files):
    d = sweep_info(files["one_failed"])
    assert d["counts"] == {"complete": 3, "failed": 1, "pending": 0, "running": 0}
    assert d["failed"] == [{"id": 1, "P": 60, "seed": 1,
                            "message": "RuntimeError: diverged: made up for the test"}]
    text = format_sweep_info(d)
    assert "#1 P=60 seed=1: RuntimeError: diverged: made up" in text
    assert width(text, d["path"]) <= 100

    d = sweep_info(files["partial"])
    assert d["counts"] == {"complete": 1, "failed": 0, "pending": 3, "running": 0}
    assert d["sweep_status"] == "running" and d["seconds"]["n"] == 1
    assert [r["coldest"] is None for r in d["table"]] == [True, True, False, True]
    text = format_sweep_info(d)
    assert "1 complete, 0 failed, 3 pending" in text and "pending" in text.splitlines()[-1]

    d = sweep_info(files["diverging"])
    assert d["counts"]["failed"] == 1 and d["failed"][0]["message"]
    assert width(format_sweep_info(d), d["path"]) <= 100


def test_sweep_info_theory_mode_and_row_limit(files):
    d = sweep_info(files["theory"])
    text = format_sweep_info(d, max_points=2)
    assert "theory mode" in text and "… 2 more points" in text
    assert d["table"][0]["coldest"]["energy"]["stderr"] == 0.0


@pytest.mark.parametrize("mean, err, text", [
    (0.012345, 0.00056, "0.01235(56)"),
    (1.2345e-5, 5.6e-7, "1.234(56)e-05"),
    (0.17208, 0.00033, "0.17208(33)"),
    (1234.5, 56.0, "1234(56)"),
    (1234.5, 560.0, "1230(560)"),
    (0.5, 0.0, "0.5"),
    (0.5, float("nan"), "0.5"),
    (float("nan"), 0.1, "—"),
    (2.0, 0.0996, "2.00(10)"),
])
def test_format_value(mean, err, text):
    assert format_value(mean, err) == text
