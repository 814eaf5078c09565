"""Value transforms applied to samples or bands before gridding or modelling."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

# Codes that laboratories and databases write for "no value": read as missing unless the user says otherwise.
DEFAULT_MISSING_CODES = (-9999.0, -99999.0, -999999.0, -999.0)


def parse_missing_codes(text: str | None) -> tuple[float, ...]:
    """Numbers of a comma-separated list such as ``"-9999, -99999"``; an empty list means no codes."""
    codes = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            code = float(item)
        except ValueError:
            raise InputError(f"Missing-value code '{item}' is not a number; write numbers separated by "
                             "commas, e.g. -9999, -99999 (or leave the list empty).") from None
        if not math.isfinite(code):
            raise InputError(f"Missing-value code '{item}' is not a finite number.")
        codes.append(code)
    return tuple(codes)


def mask_missing_codes(values: np.ndarray, codes: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Values equal to one of ``codes`` become NaN; returns the new array and, per column, how many did."""
    values = np.array(values, dtype=np.float64)
    coded = np.isin(values, np.asarray(codes, dtype=np.float64))
    values[coded] = np.nan
    return values, np.atleast_1d(coded.sum(axis=0))


def half_below_detection(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Negative values read as below-detection codes (-5 for "< 5") become half their absolute value.

    Returns the new array and, per column, how many values were replaced.
    """
    values = np.array(values, dtype=np.float64)
    negative = values < 0
    values[negative] = -0.5 * values[negative]
    return values, np.atleast_1d(negative.sum(axis=0))


def log10_positive(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log10 of every positive value; zero, negative and NaN become NaN.

    Returns the transformed array and, per column, how many finite values were dropped because they
    were not positive (censored concentrations are often coded as 0 or as negative detection limits).
    """
    values = np.asarray(values, dtype=np.float64)
    positive = values > 0
    dropped = (np.isfinite(values) & ~positive).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.where(positive, np.log10(np.where(positive, values, 1.0)), np.nan)
    return logged, np.atleast_1d(dropped)


def log10_floored(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log10 of (n, f) values, each value ≤ 0 raised first to half its column's smallest positive value.

    The smallest positive value stands for the detection limit, so a value reported as 0 or negative
    (below detection) is taken at half of it. A column without any positive value keeps its values ≤ 0
    as NaN. Returns the transformed array and, per column, how many values were raised and the floor
    (NaN for a column without positive values).
    """
    values = np.asarray(values, dtype=np.float64)
    positive = values > 0
    with np.errstate(invalid="ignore"):
        smallest = np.min(np.where(positive, values, np.inf), axis=0)
    floors = np.where(np.isfinite(smallest), 0.5 * smallest, np.nan)
    low = np.isfinite(values) & ~positive
    values = np.where(low, floors, values)
    logged, _ = log10_positive(values)
    return logged, np.where(np.isfinite(floors), low.sum(axis=0), 0), floors
