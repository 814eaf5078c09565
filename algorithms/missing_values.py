"""Missing-value codes and below-detection values in numeric fields: parameters and clean-up shared by algorithms."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsProcessingParameterBoolean, QgsProcessingParameterString

from ..core.evidence.transforms import (
    DEFAULT_MISSING_CODES,
    half_below_detection,
    mask_missing_codes,
    parse_missing_codes,
)
from .parameters import explained

NODATA_VALUES = "NODATA_VALUES"
BELOW_DETECTION = "BELOW_DETECTION"


def _written(codes: tuple[float, ...]) -> str:
    return ", ".join(f"{c:g}" for c in codes)


HELP = (
    "<b>Missing-value codes</b> (advanced; comma-separated numbers, default "
    f"{_written(DEFAULT_MISSING_CODES)}; empty = none): values equal to a code are read as "
    "missing, like NULL, and a warning gives their count per field. <b>Negative values are below-detection "
    "codes</b> (advanced, off by default): every other negative value is read as a laboratory's "
    "&quot;&lt; limit&quot; (−5 for &lt; 5) and replaced by half its absolute value (2.5), with a count per "
    "field; off, negative values are used as they are."
)


def add_missing_value_parameters(algorithm, what: str) -> None:
    """Declare NODATA_VALUES and BELOW_DETECTION (advanced) on ``algorithm``; ``what`` names the values."""
    codes = QgsProcessingParameterString(
        NODATA_VALUES, f"Missing-value codes in the {what} (comma-separated; empty = none)",
        defaultValue=_written(DEFAULT_MISSING_CODES), optional=True)
    below = QgsProcessingParameterBoolean(
        BELOW_DETECTION, f"Other negative {what} are below-detection codes (−5 means < 5: read as 2.5)", False)
    algorithm.addParameter(explained(codes, "Values equal to one of these numbers are read as missing (like NULL), "
                                            "with a warning that counts them per field.", advanced=True))
    algorithm.addParameter(explained(below, "On: any other negative value is a laboratory's '< limit' and becomes "
                                            "half the limit; off: negative values are used as they are.",
                                     advanced=True))


def codes_text(algorithm, parameters, context) -> str:
    """The missing-value codes in use, as written in messages and metadata ("none" for an empty list)."""
    codes = parse_missing_codes(algorithm.parameterAsString(parameters, NODATA_VALUES, context))
    return _written(codes) or "none"


def clean_values(algorithm, parameters, context, feedback, values: np.ndarray, names: list[str]) -> np.ndarray:
    """(n, f) values with missing-value codes as NaN and, if asked, negative values as half the detection limit.

    Each field where something was changed gets a warning with the count.
    """
    codes = parse_missing_codes(algorithm.parameterAsString(parameters, NODATA_VALUES, context))
    values, coded = mask_missing_codes(values, codes)
    for name, count in zip(names, coded):
        if count:
            feedback.pushWarning(f"{name}: {count} value(s) equal to a missing-value code "
                                 f"({_written(codes)}) were read as missing.")
    if algorithm.parameterAsBool(parameters, BELOW_DETECTION, context):
        values, halved = half_below_detection(values)
        for name, count in zip(names, halved):
            if count:
                feedback.pushWarning(f"{name}: {count} negative value(s) were read as below detection and "
                                     "replaced by half their absolute value.")
    return values
