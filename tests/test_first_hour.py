"""A new user's first hour: the install leaves no compiled caches in the package, sweeps
run over any axis (K = "P" included) and draw their own figure, plots say what they chose,
and the small defects a first user meets are gone."""

import io
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import spinicl
from spinicl.cli import cli
from spinicl.config import ConfigError, TaskConfig
from spinicl.plots import phase_data, plot_cut, plot_phase, plot_sweep
from spinicl.progress import ProgressLine
from spinicl.prompts import make_task
from spinicl.sweep import parse_sweep, run_sweep
from spinicl.theory.baselines import baselines

PACKAGE_DIR = os.path.dirname(spinicl.__file__)

K_TOML = """
[sweep]
mode = "sample"
name = "K-sweep"
baselines = true

[task]
D = 3
N = 8
P = 60
lam = 0.05
sigma_eps = 0.1
test_prompts = 80

[grid]
K = [1, 6, "P"]
seed = [0, 1]

[sampler]
temps = "1e-3:1e-1:4"
copies = 2
steps = 400
burn_in = 100
record_every = 10
"""

THEORY_TOML = """
[sweep]
mode = "theory"

[task]
D = 4
N = 10
test_prompts = 100

[grid]
alpha = [0.5, 1.0, 2.0]
seed = [0, 1]

[sampler]
temps = "1e-4:1e-1:5"
"""


# ----------------------------------------------------------------- Numba's cache
TINY_KERNEL = """
from numba import njit

@njit(cache=True)
def twice(x):
    return 2 * x
"""


def _compile_in_subprocess(env: dict[str, str], where) -> None:
    """Import spinicl (which chooses Numba's cache folder), then compile a cached kernel
    that lives in ``where`` (a stand-in for an installed package folder)."""
    (where / "tiny_kernel.py").write_text(TINY_KERNEL)
    code = "import spinicl, tiny_kernel; assert tiny_kernel.twice(2) == 4"
    subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=str(where)),
                   check=True, timeout=300, capture_output=True, cwd=where)


def _cache_files(root) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
            if f.endswith((".nbi", ".nbc"))]


def test_compiled_kernels_never_land_in_the_package():
    """The regression of the README's install order: compiled caches inside
    site-packages/spinicl outlive an uninstall and shadow the next install. Every kernel
    of the package has been compiled (or loaded from the cache) by now."""
    import numba

    import spinicl.samplers  # noqa: F401 - compiles the sampler kernels

    assert numba.config.CACHE_DIR == os.environ["NUMBA_CACHE_DIR"]
    assert not os.path.realpath(numba.config.CACHE_DIR).startswith(
        os.path.realpath(PACKAGE_DIR))
    assert _cache_files(PACKAGE_DIR) == []


def test_numba_cache_goes_to_the_user_cache_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    (tmp_path / "pkg").mkdir()
    _compile_in_subprocess(env, tmp_path / "pkg")
    assert _cache_files(tmp_path / "pkg") == []
    assert _cache_files(tmp_path / "xdg" / "spinicl" / "numba")


def test_numba_cache_dir_is_overridable(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    (tmp_path / "pkg").mkdir()
    _compile_in_subprocess(env, tmp_path / "pkg")
    assert _cache_files(tmp_path / "mine")
    assert _cache_files(tmp_path / "pkg") == []


def test_numba_cache_falls_back_when_the_user_cache_is_unusable(tmp_path):
    """XDG_CACHE_HOME names a file, not a folder: the cache goes to a per-user folder in
    the temporary directory, still never next to the package's sources."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(blocker)
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    (tmp_path / "pkg").mkdir()
    _compile_in_subprocess(env, tmp_path / "pkg")
    assert _cache_files(tmp_path / "pkg") == []
    assert _cache_files(tmp_path / "tmp" / f"spinicl-numba-{os.getuid()}")


# ----------------------------------------------------------------- K = "P"
def test_pool_size_P_means_one_task_per_prompt():
    assert TaskConfig(P=50, K="P") == TaskConfig(P=50, K=None) == TaskConfig(P=50, K=50)
    assert TaskConfig(P=50, K="p").pool_size == 50
    with pytest.raises(ConfigError) as err:
        TaskConfig(P=50, K="Q")
    assert err.value.param == "K" and '"P"' in str(err.value)
    res = CliRunner().invoke(cli, ["theory", "--D", "3", "--N", "5", "--P", "40", "--K", "P",
                                   "--no-amp", "--no-baselines", "--json"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["theory", "--K", "many"])
    assert res.exit_code == 2 and "--K" in res.output


def test_K_grid_accepts_P():
    cfg = parse_sweep(K_TOML)
    assert [p.task.pool_size for p in cfg.points] == [1, 1, 6, 6, 60, 60]


@pytest.mark.parametrize("alpha", ["0", "-1", "inf", "1e300", "nan", "0.001", '"x"', "true"])
def test_bad_alpha_in_a_grid_is_refused(alpha):
    text = THEORY_TOML.replace("alpha = [0.5, 1.0, 2.0]", f"alpha = [0.5, {alpha}]")
    with pytest.raises(ConfigError) as err:
        parse_sweep(text)
    assert err.value.param == "grid.alpha"


@pytest.mark.parametrize("section, param", [
    ('kind = "heatmap"', "plot.kind"),
    ("z = 3", "plot.z"),
    ('contour = "half"', "plot.contour"),
    ("zmax = -1", "plot.zmax"),
    ('where = { N = "twenty" }', "plot.where"),
    ('colour = "red"', "plot.colour"),
])
def test_plot_section_is_type_checked(section, param):
    with pytest.raises(ConfigError) as err:
        parse_sweep(THEORY_TOML + "\n[plot]\n" + section + "\n")
    assert err.value.param == param


def test_plot_section_does_not_change_the_config_hash():
    a = parse_sweep(THEORY_TOML)
    b = parse_sweep(THEORY_TOML + '\n[plot]\nkind = "cut"\nx = "alpha"\n')
    assert a.hash == b.hash and b.plot == {"kind": "cut", "x": "alpha"}


# ----------------------------------------------------------------- a K sweep, end to end
@pytest.fixture(scope="module")
def k_sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("ksweep")
    toml = d / "k.toml"
    toml.write_text(K_TOML)
    res = CliRunner().invoke(cli, ["sweep", str(toml), "-o", str(d / "k.h5"),
                                   "--workers", "1", "--quiet"])
    return d, res


def test_K_sweep_finishes_with_its_own_figure(k_sweep):
    d, res = k_sweep
    assert res.exit_code == 0, res.output
    assert (d / "phase.png").stat().st_size > 10_000
    data = phase_data(d / "k.h5", x="K", y="T")
    assert list(data.x) == [1, 6, 60] and data.Z.shape == (4, 3)


def test_sweep_stores_the_baselines_of_its_prompts(k_sweep):
    d, _ = k_sweep
    cfg = parse_sweep(K_TOML)
    with h5py.File(d / "k.h5", "r") as f:
        for spec in cfg.points[2:4]:
            want = baselines(make_task(spec.task, keep_test_context=True))
            g = f[f"points/{spec.id}/summary"]
            for key in ("baseline_bayes_test_mse_novel", "baseline_gd_test_mse_novel",
                        "baseline_dmmse_test_mse_in_distribution"):
                np.testing.assert_allclose(g[f"{key}/mean"][...], want[key], rtol=1e-12)
                np.testing.assert_allclose(g[f"{key}/stderr"][...], want[key + "_stderr"],
                                           rtol=1e-12)
                assert np.isnan(g[f"{key}/exact"][...]).all()


def test_a_broken_plot_never_fails_a_finished_sweep(tmp_path):
    toml = tmp_path / "t.toml"
    toml.write_text(THEORY_TOML + '\n[plot]\nz = "no_such_observable"\n')
    res = CliRunner().invoke(cli, ["sweep", str(toml), "-o", str(tmp_path / "t.h5"),
                                   "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "figure skipped" in res.output and "plot.z" in res.output
    assert not (tmp_path / "phase.png").exists()


def test_plot_section_chooses_the_figure(tmp_path):
    toml = tmp_path / "t.toml"
    toml.write_text(THEORY_TOML + '\n[plot]\nkind = "cut"\nx = "alpha"\n'
                    'z = ["test_mse_novel", "test_mse_in_distribution"]\n')
    res = CliRunner().invoke(cli, ["sweep", str(toml), "-o", str(tmp_path / "t.h5"),
                                   "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cut.png").exists() and not (tmp_path / "phase.png").exists()


def test_rerun_of_a_finished_sweep_prints_no_progress(tmp_path, capsys):
    cfg = parse_sweep(THEORY_TOML)
    run_sweep(cfg, str(tmp_path / "t.h5"), workers=1, progress=True)
    capsys.readouterr()
    res = run_sweep(cfg, str(tmp_path / "t.h5"), workers=1, progress=True)
    assert res.ran == 0 and "points" not in capsys.readouterr().err


# ----------------------------------------------------------------- plots say what they do
@pytest.fixture(scope="module")
def theory_sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("theory")
    run_sweep(parse_sweep(THEORY_TOML), str(d / "t.h5"), workers=1, progress=False)
    return d / "t.h5"


def test_where_T_says_when_it_snaps(theory_sweep, tmp_path):
    notes: list[str] = []
    plot_cut(theory_sweep, x="alpha", by="seed", where={"T": 3e-3},
             out=tmp_path / "c.png", notes=notes)
    assert len(notes) == 1 and "nearest rung" in notes[0] and "T = 0.003162" in notes[0]
    notes.clear()
    plot_cut(theory_sweep, x="alpha", by="seed", where={"T": 1e-4},
             out=tmp_path / "c.png", notes=notes)
    assert notes == []


def test_errors_use_the_command_line_syntax(theory_sweep):
    res = CliRunner().invoke(cli, ["plot", "cut", str(theory_sweep), "--x", "T",
                                   "--by", "seed"])
    assert isinstance(res.exception, ConfigError)
    assert "e.g. --where alpha=0.5" in str(res.exception) and "{" not in str(res.exception)
    res = CliRunner().invoke(cli, ["plot", "cut", str(theory_sweep), "--where", "N=99"])
    assert isinstance(res.exception, ConfigError) and "'N=99'" in str(res.exception)


def test_cut_by_seed_has_one_curve_per_seed(theory_sweep, tmp_path):
    res = CliRunner().invoke(cli, ["plot", "cut", str(theory_sweep), "--x", "alpha",
                                   "--by", "seed", "--where", "T=1e-4",
                                   "-o", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").exists()


def test_phase_colour_scale_is_capped_at_twice_the_cold_maximum(theory_sweep, tmp_path):
    notes: list[str] = []
    plot_phase(theory_sweep, x="alpha", y="T", out=tmp_path / "p.png", notes=notes)
    data = phase_data(theory_sweep, x="alpha", y="T")
    cap = 2 * np.nanmax(data.Z[0])
    assert np.nanmax(data.Z) > cap  # the hot corner is far above the cold structure
    assert len(notes) == 1 and f"{cap:.4g}" in notes[0]
    notes.clear()
    plot_phase(theory_sweep, x="alpha", y="T", zmax=None, out=tmp_path / "p.png",
               notes=notes)
    assert notes == []


def test_plot_sweep_follows_the_grid_axes(theory_sweep, tmp_path):
    notes: list[str] = []
    written = plot_sweep(theory_sweep, out=tmp_path / "auto.png", notes=notes)
    assert written == [str(tmp_path / "auto.png"), str(tmp_path / "auto.pdf")]


def test_trace_names_the_option_it_checks(tmp_path):
    res = CliRunner().invoke(cli, ["plot", "trace", str(tmp_path / "missing.h5"),
                                   "--observable", "q_over_Q"])
    assert res.exit_code != 0 and "--observables" not in res.output


# ----------------------------------------------------------------- progress line
def test_first_progress_line_has_no_eta_and_set_up_time_does_not_enter_it():
    import time

    out = io.StringIO()
    line = ProgressLine(100, "epochs", stream=out, log_interval=0.0)
    time.sleep(0.3)  # set-up (compile, task) before the first unit of work
    line.update(1, force=True)
    time.sleep(0.05)
    line.update(51, force=True)
    first, second = out.getvalue().splitlines()
    assert "ETA --:--:--" in first
    # 50 units in ~0.05 s: the remaining 49 take about as long, far below the 30 s that
    # the set-up time would have predicted
    assert "ETA 00:00:0" in second


# ----------------------------------------------------------------- sweeps in (α, κ, τ)
ASY_TOML = """
[sweep]
mode = "theory"
[task]
D = 6
lam = 1e-4
test_prompts = 200
[grid]
tau = [0.5, 2.0, 3.0]
kappa = [1.5, "P"]
alpha_L = [2]
seed = [0]
[sampler]
temps = "1e-9:1e-6:3"
"""


def test_sweep_axes_of_the_asymptotic_theory():
    cfg = parse_sweep(ASY_TOML)
    got = [(p.task.P, p.task.pool_size, p.task.N) for p in cfg.points]
    assert got == [(18, 9, 12), (18, 18, 12), (72, 9, 12), (72, 72, 12), (108, 9, 12),
                   (108, 108, 12)]
    rows = [p.row() for p in cfg.points]
    assert [r["kappa"] for r in rows] == [1.5, np.inf] * 3
    assert [r["tau"] for r in rows] == [0.5, 0.5, 2.0, 2.0, 3.0, 3.0]
    with pytest.raises(ConfigError) as err:
        parse_sweep(ASY_TOML.replace("alpha_L = [2]", "alpha_L = [2]\nN = [10]"))
    assert err.value.param == "grid" and "N, alpha_L" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_sweep(ASY_TOML.replace('kappa = [1.5, "P"]', "kappa = [0.01]"))
    assert err.value.param == "grid.kappa"


def test_asymptotic_overlay_is_the_mapped_formula(tmp_path):
    from spinicl.plots import asymptotic_curve
    from spinicl.theory.asymptotic import from_spinicl

    run_sweep(parse_sweep(ASY_TOML), str(tmp_path / "a.h5"), workers=1, progress=False)
    fixed = {"D": 6, "N": 12, "K": 9, "lam": 1e-4}
    taus = np.array([0.5, 2.0, 3.0])
    got = asymptotic_curve(tmp_path / "a.h5", "tau", "test_mse_novel", fixed, taus)
    want = [from_spinicl(TaskConfig(D=6, N=12, P=round(t * 36), K=9, lam=1e-4))
            .test_mse_novel_ridge() for t in taus]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # the in-distribution error exists only where the ridge is negligible
    idg = asymptotic_curve(tmp_path / "a.h5", "tau", "test_mse_in_distribution",
                           {**fixed, "lam": 1e-12}, taus)
    want = [from_spinicl(TaskConfig(D=6, N=12, P=round(t * 36), K=9, lam=1e-12))
            .test_mse_in_distribution() for t in taus]
    np.testing.assert_allclose(idg, want, rtol=1e-10)
    assert np.isnan(asymptotic_curve(tmp_path / "a.h5", "tau", "test_mse_in_distribution",
                                     {**fixed, "lam": 1.0}, taus)).all()
    notes: list[str] = []
    plot_cut(tmp_path / "a.h5", x="tau", z=["test_mse_novel", "test_mse_in_distribution"],
             by="T", where={"kappa": 1.5}, asymptotic=True, out=tmp_path / "c.png",
             notes=notes)
    assert (tmp_path / "c.png").stat().st_size > 10_000
    plot_phase(tmp_path / "a.h5", x="kappa", y="T", where={"tau": 2.0},
               out=tmp_path / "p.png", notes=notes)
    assert any("kappa = ∞" in n for n in notes)
