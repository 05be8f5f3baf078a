"""Phase diagrams, cuts and traces from synthetic sweep and run files (spinicl.plots)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import matplotlib.image as mpimg
import numpy as np
import pytest

from spinicl.config import ConfigError
from spinicl.plots import (
    OBSERVABLE_SYMBOLS,
    cut_data,
    phase_data,
    plot_cut,
    plot_phase,
    plot_trace,
)

D, N, LAM = 10, 20, 0.01
PS = np.array([10, 30, 60, 100, 200, 300])          # 6 values of P → α = P/D² in 0.1..3
ALPHAS = PS / D**2
TEMPS = np.geomspace(1e-5, 1e-1, 5)
SEEDS = (0, 1)
FAILED = (2, 1)  # (alpha index, seed) of the failed point


# ----------------------------------------------------------------------- fixtures
def mse(alpha, T, seed):
    """A smooth, positive, MSE-like observable spanning decades."""
    return (0.5 + 1e3 * T) / alpha * (1.0 + 0.1 * seed)


def overlap(alpha, T, seed):
    return 1.0 / (1.0 + 1e3 * T / alpha) * (1.0 + 0.05 * seed)


def self_overlap(alpha, T, seed):
    return 1.0 + 0.2 * seed + 0 * T * alpha


def write_sweep(path: Path, *, Ns=(N,), theory: bool = False, jitter: float = 0.0) -> Path:
    """Sweep file with the documented layout: 6 α × 5 T × 2 seeds, one failed point."""
    rows = []
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "spinicl-sweep"
        f.attrs["format_version"] = 1
        f.attrs["config"] = json.dumps({"mode": "theory" if theory else "sample"})
        pid = 0
        for n_ctx in Ns:
            for ia, P in enumerate(PS):
                for seed in SEEDS:
                    failed = (ia, seed) == FAILED
                    status = "failed" if failed else "done"
                    rows.append((pid, D, n_ctx, P, P, P / D**2, LAM, seed, status,
                                 "boom: NaN energy" if failed else "", 1.5))
                    g = f.create_group(f"points/{pid}")
                    ladder = TEMPS * (1 + jitter * (pid % 3))
                    g["ladder/T"] = ladder
                    scale = 1.0 + 0.01 * (n_ctx - N)
                    for name, fn in (("test_mse_novel", mse), ("overlap", overlap),
                                     ("self_overlap", self_overlap)):
                        m = fn(P / D**2, TEMPS, seed) * scale
                        if failed:  # a failed point's leftovers must be ignored
                            m = np.full_like(m, 1e6)
                        se = np.zeros_like(m) if theory else 0.01 * m
                        ex = m if theory else fn(P / D**2, TEMPS, 0) * scale
                        if name == "overlap" and not theory:
                            ex = np.full_like(m, np.nan)
                        for stat, v in (("mean", m), ("stderr", se), ("tau_int", m * 0 + 2),
                                        ("ess", m * 0 + 50), ("exact", ex)):
                            g[f"summary/{name}/{stat}"] = v
                    pid += 1
        cols = dict(zip(("id", "D", "N", "P", "K", "alpha", "lam", "seed", "status",
                         "message", "seconds"), zip(*rows, strict=True), strict=True))
        for name, col in cols.items():
            if name in ("status", "message"):
                f.create_dataset(f"grid/{name}", data=list(col), dtype=h5py.string_dtype())
            elif name in ("alpha", "lam", "seconds"):
                f[f"grid/{name}"] = np.asarray(col, dtype=np.float64)
            else:
                f[f"grid/{name}"] = np.asarray(col, dtype=np.int64)
    return path


def write_run(path: Path, records: int = 120, M: int = 3, ragged: bool = False) -> Path:
    """Run file: traces (records, T, M), overlap (records, T, M2), theory (T,)."""
    rng = np.random.default_rng(0)
    nT = TEMPS.size
    step = np.arange(1, records + 1) * 10
    relax = np.exp(-step / 200.0)[:, None, None]
    e_exact = 0.1 + 50 * TEMPS
    energy = e_exact[None, :, None] * (1 + 3 * relax) \
        + 0.05 * e_exact[None, :, None] * rng.standard_normal((records, nT, M))
    tmse = 2 * energy
    Q = 1 + TEMPS[None, :, None] * 10 + 0.01 * rng.standard_normal((records, nT, M))
    q = 0.8 + 0.01 * rng.standard_normal((records, nT, M * (M - 1) // 2))
    cfg = {"burn_in": 400, "steps": 800, "temperatures": TEMPS.tolist(), "sampler": "mala",
           "task": {"D": D, "N": N, "P": 100, "K": None, "lam": LAM}}
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["format"] = "spinicl-run"
        f.attrs["format_version"] = 1
        f.attrs["config"] = json.dumps(cfg)
        f.attrs["status"] = "running"
        f["ladder/T"] = TEMPS
        f["trace/step"] = step
        f["trace/energy"] = energy[:-5] if ragged else energy
        f["trace/test_mse_novel"] = tmse
        f["trace/self_overlap"] = Q
        f["trace/overlap"] = q
        f["theory/energy"] = e_exact
        f["theory/test_mse_novel"] = np.full(nT, np.nan)
        f["theory/self_overlap"] = 1 + 10 * TEMPS
        f["theory/overlap"] = np.full(nT, 0.8)
    return path


@pytest.fixture()
def sweep(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "sweep.h5")


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run.h5")


def expected(fn):
    """(T, α) mean and standard error over the finished seeds of ``fn``."""
    Z = np.empty((TEMPS.size, ALPHAS.size))
    S = np.empty_like(Z)
    for ia, a in enumerate(ALPHAS):
        vals = np.array([fn(a, TEMPS, s) for s in SEEDS if (ia, s) != FAILED])
        Z[:, ia] = vals.mean(0)
        S[:, ia] = vals.std(0, ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 \
            else 0.01 * vals[0]
    return Z, S


def check_image(paths: list[str], min_px: int = 400, max_px: int = 3000) -> None:
    assert len(paths) == 2
    png = next(p for p in paths if p.endswith(".png"))
    pdf = next(p for p in paths if p.endswith(".pdf"))
    assert Path(pdf).stat().st_size > 1000
    assert Path(pdf).read_bytes()[:5] == b"%PDF-"
    img = mpimg.imread(png)
    h, w = img.shape[:2]
    assert min_px <= w <= max_px and min_px <= h <= max_px, img.shape
    assert img[..., :3].var() > 1e-3  # not blank


# ----------------------------------------------------------------------- data
def test_phase_data_is_the_disorder_average(sweep: Path) -> None:
    x, y, Z, S = phase_data(sweep, x="alpha", y="T", z="test_mse_novel")
    np.testing.assert_allclose(x, ALPHAS, rtol=1e-12)
    np.testing.assert_allclose(y, TEMPS, rtol=1e-12)
    Ze, Se = expected(mse)
    assert Z.shape == (TEMPS.size, ALPHAS.size)
    np.testing.assert_allclose(Z, Ze, rtol=1e-12)
    np.testing.assert_allclose(S, Se, rtol=1e-10)
    # the failed point's column is the surviving seed alone, with its own stderr
    ia = FAILED[0]
    np.testing.assert_allclose(Z[:, ia], mse(ALPHAS[ia], TEMPS, 1 - FAILED[1]))
    np.testing.assert_allclose(S[:, ia], 0.01 * Z[:, ia])


def test_phase_data_transposes_and_other_axes(sweep: Path) -> None:
    x, y, Z, _ = phase_data(sweep, x="T", y="alpha")
    np.testing.assert_allclose(x, TEMPS)
    np.testing.assert_allclose(y, ALPHAS)
    np.testing.assert_allclose(Z, expected(mse)[0].T, rtol=1e-12)
    x, _, Z, _ = phase_data(sweep, x="P", y="T")
    np.testing.assert_array_equal(x, PS)
    np.testing.assert_allclose(Z, expected(mse)[0], rtol=1e-12)


def test_overlap_ratio_is_derived_per_point(sweep: Path) -> None:
    _, _, Z, S = phase_data(sweep, z="overlap_ratio")

    def ratio(a, T, s):
        return overlap(a, T, s) / self_overlap(a, T, s)

    Ze, Se = expected(ratio)
    np.testing.assert_allclose(Z, Ze, rtol=1e-12)
    np.testing.assert_allclose(S[:, [0, 1, 3]], Se[:, [0, 1, 3]], rtol=1e-10)
    # single seed: error propagation of the two 1 % standard errors
    np.testing.assert_allclose(S[:, FAILED[0]], Z[:, FAILED[0]] * np.sqrt(2) * 0.01,
                               rtol=1e-10)


def test_cut_data_curves_and_exact(sweep: Path) -> None:
    c = cut_data(sweep, x="alpha", z="test_mse_novel", by="T")
    np.testing.assert_allclose(c.by, TEMPS)
    np.testing.assert_allclose(c.Z, expected(mse)[0], rtol=1e-12)
    # exact is the seed-0 function for every seed, so its average is that function
    np.testing.assert_allclose(c.exact, mse(ALPHAS[None, :], TEMPS[:, None], 0), rtol=1e-12)
    c = cut_data(sweep, x="T", z="overlap", by="alpha")
    assert c.Z.shape == (ALPHAS.size, TEMPS.size)
    assert np.isnan(c.exact).all()


def test_ladders_with_tiny_differences_are_merged(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "jitter.h5", jitter=1e-9)
    _, y, Z, _ = phase_data(path)
    assert y.size == TEMPS.size
    np.testing.assert_allclose(Z, expected(mse)[0], rtol=1e-9)


def test_a_varying_parameter_must_be_fixed_with_where(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "twoN.h5", Ns=(N, N + 10))
    with pytest.raises(ConfigError) as err:
        phase_data(path)
    assert err.value.param == "where" and "N" in str(err.value)
    _, _, Z, _ = phase_data(path, where={"N": N + 10})
    np.testing.assert_allclose(Z, expected(mse)[0] * 1.1, rtol=1e-12)
    _, y, Z, _ = phase_data(path, x="alpha", y="N", where={"T": 1e-3})  # nearest rung
    np.testing.assert_array_equal(y, [N, N + 10])
    k = np.argmin(np.abs(np.log(TEMPS) - np.log(1e-3)))
    np.testing.assert_allclose(Z[0], expected(mse)[0][k], rtol=1e-12)
    with pytest.raises(ConfigError) as err:
        phase_data(path, where={"N": 7})
    assert err.value.param == "where"


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "param"), [
    ({"z": "bogus"}, "z"),
    ({"x": "bogus"}, "x"),
    ({"y": "seedling"}, "y"),
    ({"x": "T", "y": "T"}, "y"),
    ({"where": {"colour": 1}}, "where"),
])
def test_bad_phase_arguments_name_the_parameter(sweep: Path, kwargs, param) -> None:
    with pytest.raises(ConfigError) as err:
        phase_data(sweep, **kwargs)
    assert err.value.param == param


def test_bad_inputs_everywhere(sweep: Path, run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        cut_data(sweep, by="bogus")
    assert err.value.param == "by"
    with pytest.raises(ConfigError) as err:
        plot_cut(sweep, z="bogus", out=tmp_path / "c.png")
    assert err.value.param == "z" and "test_mse_novel" in str(err.value)
    with pytest.raises(ConfigError) as err:
        plot_phase(sweep, out=tmp_path / "p.txt")
    assert err.value.param == "out"
    for bad in (tmp_path / "missing.h5", run):
        with pytest.raises(ConfigError) as err:
            plot_phase(bad, out=tmp_path / "p.png")
        assert err.value.param == "path" and "spinicl-sweep" in str(err.value)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ConfigError) as err:
        phase_data(text)
    assert err.value.param == "path"
    with pytest.raises(ConfigError) as err:
        plot_trace(sweep, out=tmp_path / "t.png")
    assert err.value.param == "path" and "spinicl-run" in str(err.value)
    with pytest.raises(ConfigError) as err:
        plot_trace(run, observables=("energy", "bogus"), out=tmp_path / "t.png")
    assert err.value.param == "observable"
    assert not list(tmp_path.glob("*.png"))


# ----------------------------------------------------------------------- figures
def test_plot_phase_writes_png_and_pdf(sweep: Path, tmp_path: Path) -> None:
    paths = plot_phase(sweep, out=tmp_path / "figs" / "phase.png")
    assert paths == [str(tmp_path / "figs" / "phase.png"), str(tmp_path / "figs" / "phase.pdf")]
    check_image(paths)
    paths = plot_phase(sweep, contours=(0.5,), contour_z="overlap_ratio",
                       out=tmp_path / "both")
    assert paths == [str(tmp_path / "both.png"), str(tmp_path / "both.pdf")]
    check_image(paths)


def test_plot_cut_writes_png_and_pdf(sweep: Path, tmp_path: Path) -> None:
    check_image(plot_cut(sweep, x="T", by="alpha", z="overlap_ratio",
                         out=tmp_path / "cut_T.pdf"))
    theory = write_sweep(tmp_path / "theory.h5", theory=True)
    check_image(plot_cut(theory, by_values=(1e-5, 1e-1), out=tmp_path / "cut_th.png"))


def test_plot_trace_writes_png_and_pdf(run: Path, tmp_path: Path) -> None:
    check_image(plot_trace(run, observables=["energy", "test_mse_novel", "overlap_ratio"],
                           spread=True, out=tmp_path / "trace.png"))


def test_plot_trace_reads_a_file_being_written(tmp_path: Path) -> None:
    """Unequal dataset lengths (mid-append) and an open SWMR writer."""
    path = write_run(tmp_path / "live.h5", ragged=True)
    writer = h5py.File(path, "r+", libver="latest")
    writer.swmr_mode = True
    try:
        check_image(plot_trace(path, out=tmp_path / "live.png"))
    finally:
        writer.close()


def test_symbols_cover_the_recorded_observables() -> None:
    from spinicl.observables import SHAPES

    for name in SHAPES:
        if name != "step":
            assert name in OBSERVABLE_SYMBOLS, name
    for name in ("overlap_ratio", "overlap_ratio_active", "free_energy"):
        assert OBSERVABLE_SYMBOLS[name].startswith("$")


# ----------------------------------------------------------------------- outputs
def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command, source", [
    ("phase", "sweep"), ("cut", "sweep"), ("trace", "run"), ("overlap", "run")])
def test_plot_commands_never_replace_a_users_file(command, source, sweep: Path, run: Path,
                                                  tmp_path: Path, capsys) -> None:
    """-o naming a file spinicl did not write: refused before reading the input (one
    line, exit 2, the file untouched); --force replaces it."""
    path = sweep if source == "sweep" else run
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's picture")
    code, lines = _cli(["plot", command, str(tmp_path / "missing.h5"), "-o", str(mine)],
                       capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(
        "spinicl: error: --out must be a new file or a figure spinicl wrote"), lines
    assert mine.read_bytes() == b"the user's picture"
    if command == "overlap":    # the synthetic run has no overlap histogram to draw
        return
    code, lines = _cli(["plot", command, str(path), "-o", str(mine), "--force"], capsys)
    assert code == 0, lines
    assert mine.read_bytes()[:4] == b"\x89PNG"


def test_compare_plot_never_replaces_a_users_file(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "fig.pdf"
    mine.write_bytes(b"%PDF- the user's")
    code, lines = _cli(["compare", "run.h5", "train.h5", "--plot", str(mine)], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(
        "spinicl: error: --plot must be a new file or a figure spinicl wrote"), lines
    assert mine.read_bytes() == b"%PDF- the user's"


def test_sweep_figure_is_skipped_rather_than_overwrite(sweep: Path, capsys) -> None:
    """The end-of-sweep figure (phase.png beside the sweep file) is drawn, redrawn over
    its own earlier output, and skipped with one note over a file of the user's."""
    from spinicl.cli import _sweep_figure
    from spinicl.plots.style import written_by_spinicl

    png, pdf = sweep.parent / "phase.png", sweep.parent / "phase.pdf"
    _sweep_figure(str(sweep), {})
    assert "figure: " + str(png) in capsys.readouterr().out
    assert written_by_spinicl(png) and written_by_spinicl(pdf)
    _sweep_figure(str(sweep), {})                       # spinicl's own: replaced
    assert "figure: " in capsys.readouterr().out
    pdf.write_bytes(b"%PDF- the user's")
    _sweep_figure(str(sweep), {})
    io = capsys.readouterr()
    lines = io.err.strip().splitlines()
    assert io.out == "" and len(lines) == 1, lines
    assert lines[0].startswith("spinicl: figure skipped (plot.out must be a new file")
    assert pdf.read_bytes() == b"%PDF- the user's"
