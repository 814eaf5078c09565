"""The probability threshold parameter (0–1) of the map algorithms; the base class states the range when a value
is outside it."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterNumber

from ..compat import NUMBER_DOUBLE


class ProbabilityThreshold:
    """Mixin of a DeepProspect algorithm: a THRESHOLD parameter bounded to 0–1."""

    THRESHOLD = "THRESHOLD"

    def add_threshold(self, label: str) -> None:
        """Add the threshold parameter (default 0.5, bounds 0–1)."""
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, label, NUMBER_DOUBLE, defaultValue=0.5, minValue=0.0, maxValue=1.0))
