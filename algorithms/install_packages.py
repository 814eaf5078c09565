"""Processing adapter: install the Python packages DeepProspect needs into a folder of the QGIS profile."""

from __future__ import annotations

from qgis.core import (
    QgsApplication,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)

from ..compat import FILE_BEHAVIOUR_FOLDER
from ..dependencies import BUILDS, activate, install, packages_folder, requirements
from .base import DeepProspectAlgorithm
from .parameters import explained, name_list, named_enum


class InstallPackages(DeepProspectAlgorithm):
    """pip into <profile>/python/deepprospect-packages, then the algorithms that were missing packages load."""

    NAME = "installpackages"
    DISPLAY_NAME = "Install Python packages"
    GROUP = "setup"
    TAGS = ("install", "packages", "pip", "torch", "onnxruntime", "dependencies", "setup")
    HELP_ANCHOR = "install-into-qgis-desktop"
    BUILD, FOLDER, PACKAGES, FIND_LINKS = "BUILD", "FOLDER", "PACKAGES", "FIND_LINKS"
    OUTPUT, INSTALLED = "OUTPUT", "INSTALLED"
    HELP = (
        "Installs the Python packages the DeepProspect algorithms need (numpy, scipy, rasterio, scikit-learn, "
        "matplotlib, torch, onnx, onnxruntime), at the versions the plugin is tested with, into a folder of your "
        "QGIS profile (<i>python/deepprospect-packages</i>) with pip. No administrator rights are needed, and "
        "nothing outside that folder changes. The log shows pip's output as it runs.<br>"
        "<b>Build</b>: <i>cpu</i> is the small download and runs everywhere; <i>gpu</i> uses an NVIDIA GPU "
        "through CUDA (Linux; on Windows and macOS torch from PyPI is CPU-only, onnxruntime-gpu still uses the "
        "GPU for prediction).<br>The algorithms that were missing packages appear when the install ends, without "
        "restarting QGIS. Restart QGIS when a package was already loaded in another version (the log of the plugin "
        "says which packages were missing when QGIS started).<br><b>Offline</b> (advanced): a folder of wheel "
        "files to install from, without the internet; <b>Packages</b> (advanced): other requirements instead of "
        "the pinned set."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(explained(named_enum(self.BUILD, "Build", list(BUILDS)), name_list(list(BUILDS.items()))))
        self.addParameter(explained(QgsProcessingParameterFile(
            self.FOLDER, "Install into (default: the QGIS profile's python/deepprospect-packages)",
            behavior=FILE_BEHAVIOUR_FOLDER, optional=True),
            "A folder of your own instead of the profile's; the plugin adds only the profile's folder at start-up.",
            advanced=True))
        self.addParameter(explained(QgsProcessingParameterString(
            self.PACKAGES, "Packages (pip requirements separated by spaces; default: the pinned set)", optional=True),
            "For example a newer torch, or a single package that failed.", advanced=True))
        self.addParameter(explained(QgsProcessingParameterFile(
            self.FIND_LINKS, "Offline: install from this folder of wheel files", behavior=FILE_BEHAVIOUR_FOLDER,
            optional=True), "For machines without internet: the wheels downloaded elsewhere with 'pip download'.",
            advanced=True))
        self.addOutput(QgsProcessingOutputString(self.OUTPUT, "Installed into"))
        self.addOutput(QgsProcessingOutputString(self.INSTALLED, "Requirements installed"))

    def compute(self, parameters, context, feedback):
        build = self.parameterAsEnumString(parameters, self.BUILD, context)
        folder = self.parameterAsFile(parameters, self.FOLDER, context) or packages_folder(
            QgsApplication.qgisSettingsDirPath())
        packages = self.parameterAsString(parameters, self.PACKAGES, context).split() or requirements(build)
        find_links = self.parameterAsFile(parameters, self.FIND_LINKS, context) or None
        feedback.pushInfo(f"Installing {len(packages)} requirement(s) into {folder}: {BUILDS[build]}.")
        install(packages, folder, build, find_links, log=feedback.pushConsoleInfo, is_cancelled=feedback.isCanceled)
        if activate(folder):
            feedback.pushInfo(f"{folder} is now on Python's path.")
        return {self.OUTPUT: folder, self.INSTALLED: " ".join(packages)}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802 - QGIS API name
        """Load the algorithms that were missing packages (on the main thread, after the run)."""
        provider = QgsApplication.processingRegistry().providerById("deepprospect")
        if provider is not None and provider.missing_modules:
            provider.refreshAlgorithms()
            still = sorted(provider.missing_modules)
            feedback.pushInfo("Every DeepProspect algorithm is available." if not still else
                              f"Still missing: {', '.join(still)}; restart QGIS, then run this again if needed.")
        return {}
