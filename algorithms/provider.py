"""The DeepProspect Processing provider (id ``deepprospect``)."""

from __future__ import annotations

import glob
import importlib
import os

from qgis.core import QgsApplication, QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..compat import MESSAGE_WARNING
from ..dependencies import install_hint
from .base import ICON

PIPELINES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "models")

# module in this package -> algorithm class; modules are imported one by one so a missing optional
# package disables only the algorithms that need it.
ALGORITHMS = [
    ("install_packages", "InstallPackages"),
    ("idw_gridding", "IdwGridding"),
    ("buffer_density", "BufferDensity"),
    ("evidence_stack", "EvidenceStack"),
    ("element_screening", "ElementScreening"),
    ("training_labels", "TrainingLabels"),
    ("train_model", "TrainModel"),
    ("baseline", "Baseline"),
    ("spatial_cv", "SpatialCrossValidation"),
    ("predict", "Predict"),
    ("dual_window", "DualWindow"),
    ("ensemble", "Ensemble"),
    ("ensemble_compare", "EnsembleCompare"),
    ("evaluate", "Evaluate"),
    ("anomaly_classes", "AnomalyClasses"),
    ("report", "Report"),
]


class Pipeline(QgsProcessingModelAlgorithm):
    """A graphical model of resources/models, named by its file without underscores (``deepprospect:fullpipeline``).

    A plain model's id is its display name, spaces included; this one keeps the model's name for the Toolbox.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    def name(self) -> str:
        return self._name

    def createInstance(self) -> Pipeline:  # noqa: N802 - QGIS API name
        instance = Pipeline(self._name)
        instance.loadVariant(self.toVariant())
        instance.setSourceFilePath(self.sourceFilePath())
        return instance


def register(provider: QgsProcessingProvider) -> bool:
    """Add ``provider`` to Processing, then load it again so its pipelines can resolve their steps."""
    if not QgsApplication.processingRegistry().addProvider(provider):
        return False
    provider.refreshAlgorithms()
    return True


class DeepProspectProvider(QgsProcessingProvider):
    """Loads every algorithm whose Python dependencies are installed and reports the others."""

    def __init__(self) -> None:
        super().__init__()
        self.missing_modules: dict[str, list[str]] = {}

    def id(self) -> str:
        return "deepprospect"

    def name(self) -> str:
        return "DeepProspect"

    def longName(self) -> str:  # noqa: N802 - QGIS API name
        return "DeepProspect — deep-learning mineral prospectivity mapping"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API name
        return ICON

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API name
        return ["tif"]

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API name
        self.missing_modules = {}
        for module_name, class_name in ALGORITHMS:
            try:
                module = importlib.import_module(f"..{module_name}", __name__)
            except (ImportError, OSError) as error:  # missing, or installed but broken (DLL load failed, ABI)
                package = (getattr(error, "name", None) or "").split(".")[0]
                if package and package in __name__.split("."):
                    raise
                self.missing_modules.setdefault(package or f"a dependency ({error})", []).append(module_name)
                continue
            self.addAlgorithm(getattr(module, class_name)())
        self._load_pipelines()
        if self.missing_modules:
            QgsMessageLog.logMessage(self.missing_message(), "DeepProspect", MESSAGE_WARNING)

    def _load_pipelines(self) -> None:
        """The graphical models in resources/models, as algorithms of this provider (group DeepProspect pipelines).

        ``full_pipeline.model3`` becomes ``deepprospect:fullpipeline``, shown as the model's name.

        A model finds its steps through the Processing registry, so pipelines load only once this provider is
        in it (see :func:`register`). A model needing a disabled algorithm is left out, like that algorithm.
        """
        if QgsApplication.processingRegistry().providerById(self.id()) is not self:
            return
        loaded = {algorithm.name() for algorithm in self.algorithms()}
        for path in sorted(glob.glob(os.path.join(PIPELINES, "*.model3"))):
            model = Pipeline(os.path.splitext(os.path.basename(path))[0].replace("_", ""))
            if not model.fromFile(path):
                QgsMessageLog.logMessage(f"Could not read the pipeline {path}.", "DeepProspect", MESSAGE_WARNING)
                continue
            steps = {child.algorithmId() for child in model.childAlgorithms().values()}
            if all(step.split(":")[-1] in loaded for step in steps if step.startswith(f"{self.id()}:")):
                self.addAlgorithm(model)

    def missing_message(self) -> str:
        """Which packages are missing, which algorithms they disable, and how to install them."""
        modules = sorted(self.missing_modules)
        disabled = sorted({alg for algs in self.missing_modules.values() for alg in algs})
        return (
            f"DeepProspect needs the Python package(s) {', '.join(modules)}; these algorithms are unavailable "
            f"until they are installed: {', '.join(disabled)}. {install_hint(modules)}"
        )
