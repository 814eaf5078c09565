"""What every DeepProspect algorithm shares: naming, groups, help, icon and error translation."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import DeepProspectError

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "deepprospect.svg")

# group id -> display name, in pipeline order
GROUPS = {
    "evidence": "1 · Evidence layers",
    "trainingdata": "2 · Training data",
    "models": "3 · Models",
    "maps": "4 · Prospectivity maps",
}


INT, DOUBLE = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double


class DeepProspectAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, GROUP, HELP and implement ``compute``."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    HELP = ""

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802 - QGIS API name
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP])

    def groupId(self) -> str:  # noqa: N802 - QGIS API name
        return self.GROUP

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API name
        return self.tr(self.HELP)

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def createInstance(self) -> DeepProspectAlgorithm:  # noqa: N802 - QGIS API name
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate(type(self).__name__, text)

    def add_numbers(self, table) -> None:
        """Number parameters from rows (KEY, label, INT or DOUBLE, default, minimum, advanced)."""
        for key, label, kind, default, minimum, advanced in table:
            parameter = QgsProcessingParameterNumber(key, label, kind, defaultValue=default, minValue=minimum)
            if advanced:
                parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)

    def read_numbers(self, table, parameters, context) -> dict:
        """The values of :meth:`add_numbers` rows, keyed by the lower-case key (a settings field name)."""
        read = {INT: self.parameterAsInt, DOUBLE: self.parameterAsDouble}
        return {key.lower(): read[kind](parameters, key, context) for key, _, kind, *_ in table}

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API name
        """Run the algorithm; any DeepProspect error reaches the user as a plain message."""
        try:
            return self.compute(parameters, context, feedback)
        except DeepProspectError as error:
            message = str(error)
        # The traceback of what is raised here outlives the run (QGIS keeps it), so it must not reach layers:
        # raised outside the except block (no chained compute() frame) and with this frame's references
        # dropped. A layer kept alive that way outlives QGIS and crashes Python at exit.
        del parameters, context, feedback
        raise QgsProcessingException(message)

    def compute(self, parameters, context, feedback) -> dict:
        """Do the work; raise a DeepProspectError subclass for anything the user must fix."""
        raise NotImplementedError
