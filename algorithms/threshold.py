"""The probability threshold parameter (0–1) of the map algorithms, refused with a message that states the range."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterNumber

from ..core.errors import InputError
from ..core.maps import check_threshold


class ProbabilityThreshold:
    """Mixin of a DeepProspect algorithm: a THRESHOLD parameter bounded to 0–1, checked before the run."""

    THRESHOLD = "THRESHOLD"

    def add_threshold(self, label: str) -> None:
        """Add the threshold parameter (default 0.5, bounds 0–1)."""
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, label, QgsProcessingParameterNumber.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0))

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API name
        """Say the threshold's range when it is out of it (QGIS alone only names the parameter)."""
        try:
            check_threshold(float(parameters.get(self.THRESHOLD, 0.5)))
        except (TypeError, ValueError):
            pass  # not a plain number (an expression, a property): QGIS evaluates and checks it
        except InputError as error:
            return False, str(error)
        return super().checkParameterValues(parameters, context)
