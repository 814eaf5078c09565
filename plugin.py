"""The QGIS plugin object: registers the DeepProspect Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication


class DeepProspectPlugin:
    """Adds the DeepProspect provider to Processing (desktop, modeler and qgis_process)."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None  # keep a reference: a collected provider loses its algorithms

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API name
        """Called by QGIS desktop and by qgis_process."""
        from .algorithms.provider import DeepProspectProvider, register

        self.provider = DeepProspectProvider()
        register(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API name
        """Register the provider and tell the user about missing packages."""
        self.initProcessing()
        if self.provider.missing_modules and self.iface is not None:
            self.iface.messageBar().pushWarning("DeepProspect", self.provider.missing_message())

    def unload(self) -> None:
        """Remove the provider when the plugin is disabled."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
