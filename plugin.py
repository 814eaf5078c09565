"""The QGIS plugin object: registers the DeepProspect Processing provider and offers to install missing packages."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import QAction, QPushButton

from .compat import MESSAGE_WARNING
from .dependencies import activate, packages_folder

MENU = "DeepProspect"
INSTALLER = "deepprospect:installpackages"


class DeepProspectPlugin:
    """Adds the DeepProspect provider to Processing (desktop, modeler and qgis_process)."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None  # keep a reference: a collected provider loses its algorithms
        self.install_action = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name
        """Called by QGIS desktop and by qgis_process: packages installed from QGIS first, then the provider."""
        from .algorithms.provider import DeepProspectProvider, register

        activate(packages_folder(QgsApplication.qgisSettingsDirPath()))
        self.provider = DeepProspectProvider()
        register(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        """Register the provider, add the installer to the Plugins menu, and offer it when packages are missing."""
        self.initProcessing()
        if self.iface is None:
            return
        self.install_action = QAction("Install Python packages…", self.iface.mainWindow())
        self.install_action.triggered.connect(self.open_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)
        if self.provider.missing_modules:
            bar = self.iface.messageBar()
            message = bar.createMessage("DeepProspect", self.provider.missing_message())
            button = QPushButton("Install packages…")
            button.clicked.connect(self.open_installer)
            message.layout().addWidget(button)
            bar.pushWidget(message, MESSAGE_WARNING)

    def open_installer(self) -> None:
        """The dialog of 'Install Python packages' (progress and pip's log show in it)."""
        import processing

        processing.execAlgorithmDialog(INSTALLER)

    def unload(self) -> None:
        """Remove the provider and the menu entry when the plugin is disabled."""
        if self.install_action is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
