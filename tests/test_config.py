"""Parameter validation helpers: accepted types and the one-line errors."""

import numpy as np
import pytest

from spinicl.config import ConfigError, check_float, check_int


@pytest.mark.parametrize("value", [5, 5.0, np.int64(5), np.int32(5), np.float64(5.0)])
def test_check_int_accepts_python_and_numpy_integers(value):
    out = check_int("steps", value, 1)
    assert out == 5 and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 2.5, "3", None, np.float64(2.5)])
def test_check_int_refuses_non_integers(value):
    with pytest.raises(ConfigError) as e:
        check_int("steps", value, 1)
    assert str(e.value).startswith("steps must be")
    assert "\n" not in str(e.value)


def test_check_int_names_the_range():
    with pytest.raises(ConfigError) as e:
        check_int("copies", np.int64(0), 1)
    assert "copies" in str(e.value) and ">= 1" in str(e.value)


def test_check_float_refuses_nan_and_names_the_interval():
    with pytest.raises(ConfigError) as e:
        check_float("beta", float("nan"), low=0.0, low_open=True)
    assert "beta" in str(e.value) and "> 0" in str(e.value)
