"""Value transforms applied to samples or bands before gridding or modelling."""

from __future__ import annotations

import numpy as np


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
