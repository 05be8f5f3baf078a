"""`spinicl bench` from the command line: the table for any task, the exact row first."""

import json
import subprocess
import sys


def test_bench_json_rows_with_the_exact_reference():
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "bench", "--D", "3", "--N", "8",
                        "--P", "200", "--lam", "0.05", "--seconds", "0.3", "--replicas", "4",
                        "--samplers", "exact,mala", "--json"], capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["sampler"] for row in rows] == ["exact", "mala"]
    exact, mala = rows
    # independent draws: the exact sampler's integrated autocorrelation time is ~1
    assert 0.5 < exact["tau_int_energy"] < 2.0
    assert mala["chain_steps_per_s"] > 0 and 0 < mala["acceptance"] < 1


def test_bad_sampler_names_the_cli_option():
    """One line naming --samplers (the option, not the library's per-entry name) and the
    allowed values; exit status 2."""
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "bench", "--samplers",
                        "exact,foo"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("spinicl: error: --samplers must be")
    assert "'foo'" in lines[0]
    for name in ("exact", "mala", "ula", "baoab"):
        assert name in lines[0]


def test_bad_seconds_names_the_cli_option():
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "bench", "--seconds", "0"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["spinicl: error: --seconds must be > 0 (got 0.0)"]
