"""The one home of "a count is a whole number >= 1, a scale a positive, finite number"."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from deepcycle_core.data.values import non_negative_int, positive_float, positive_int, positive_number, whole_number


@pytest.mark.parametrize("value", [0, -3, 2.5, math.nan, math.inf, True, "3", None])
def test_whole_number_refuses_naming_the_parameter(value):
    with pytest.raises(ValueError, match=rf"^n must be a whole number >= 1, got {value!r}$"):
        whole_number("n", value)


def test_whole_number_accepts_whole_values_of_any_numeric_type():
    assert whole_number("n", 3) == 3 and whole_number("n", 3.0) == 3 and whole_number("n", np.int64(2)) == 2
    assert whole_number("n", 0, minimum=0) == 0


@pytest.mark.parametrize("value", [0, -1.5, math.nan, math.inf, -math.inf, False, "2"])
def test_positive_number_refuses_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^x must be a positive, finite number, got "):
        positive_number("x", value)
    assert positive_number("x", 0.25) == 0.25


@pytest.mark.parametrize("convert, text", [(positive_int, "0"), (positive_int, "-2"), (positive_int, "1.5"), (positive_int, "x"),
                                           (non_negative_int, "-1"), (positive_float, "nan"), (positive_float, "inf"),
                                           (positive_float, "0"), (positive_float, "-0.001")])
def test_argparse_types_refuse_with_the_text_given(convert, text):
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--flag", type=convert)
    with pytest.raises(argparse.ArgumentError, match=rf"argument --flag: must be .*, got '{text}'"):
        parser.parse_args(["--flag", text])


def test_argparse_types_accept():
    assert positive_int("7") == 7 and non_negative_int("0") == 0 and positive_float("0.5") == 0.5
