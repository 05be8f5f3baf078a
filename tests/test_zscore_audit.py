"""Fast version of bench/zscore_audit.py: z-scores of every closed-form observable."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np


def test_quick_zscore_audit():
    """Two cases (exact sampler with 8 copies; ULA against its own law, 4 copies): 162
    z-scores, rms 0.86 measured; the band 1 ± 0.3 holds the rms of 162 unit normals with
    margin for their correlation within a run, and no |z| > 5."""
    path = pathlib.Path(__file__).parents[1] / "bench" / "zscore_audit.py"
    spec = importlib.util.spec_from_file_location("zscore_audit", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.audit(mod.QUICK)
    assert res["n"] >= 150
    assert abs(res["rms"] - 1) < 0.3, res["rms"]
    assert res["max_abs_z"] < 5
    assert np.isfinite(res["rms"])
