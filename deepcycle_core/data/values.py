"""Checked numbers: a count is a whole number >= 1 (or >= 0), a scale a positive, finite number.

One home for the rule that 0, a negative, a fraction where a count is meant, NaN or inf is an error
that names the parameter and the value -- never a ZeroDivisionError, an empty result or a library's
message from deep inside a stage. The checks serve the Python functions (:func:`whole_number`,
:func:`positive_number`, raising ``ValueError``) and the command line alike (:func:`positive_int`,
:func:`non_negative_int`, :func:`positive_float`, argparse ``type=`` functions, so argparse says
``argument --batch-size: must be a whole number >= 1, got '0'``). Standard library only.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

__all__ = ["non_negative_int", "positive_float", "positive_int", "positive_number", "whole_number"]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _whole(value: Any, minimum: int) -> bool:
    number = _number(value)
    return (not isinstance(value, (bool, str)) and number is not None and math.isfinite(number)
            and number.is_integer() and number >= minimum)


def _positive(value: Any) -> bool:
    number = _number(value)
    return not isinstance(value, (bool, str)) and number is not None and math.isfinite(number) and number > 0


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int when it is a whole number >= ``minimum``; else ``ValueError`` naming ``name``."""
    if not _whole(value, minimum):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def positive_number(name: str, value: Any) -> float:
    """``value`` as a float when it is positive and finite; else ``ValueError`` naming ``name``."""
    if not _positive(value):
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}")
    return float(value)


def _cli_type(name: str, parse: Callable[[str], Any], ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``parse(text)`` when ``ok``; else argparse's error names the flag, the rule and the text."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    convert.__name__ = name
    return convert


#: argparse ``type=``: a whole number >= 1 (``--batch-size 0`` is refused naming the flag and the value).
positive_int = _cli_type("positive_int", int, lambda v: _whole(v, 1), "a whole number >= 1")
#: argparse ``type=``: a whole number >= 0.
non_negative_int = _cli_type("non_negative_int", int, lambda v: _whole(v, 0), "a whole number >= 0")
#: argparse ``type=``: a positive, finite number (``nan``, ``inf``, 0 and negatives are refused).
positive_float = _cli_type("positive_float", float, _positive, "a positive, finite number")
