"""QML styles applied to outputs when Processing loads them (resources/styles)."""

from __future__ import annotations

import os
from typing import ClassVar

from qgis.core import QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface

STYLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "styles")


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies a .qml to an output when Processing loads it; relabels paletted classes when given labels."""

    # QGIS keeps only a pointer to a post-processor: Python must hold it until the layer is loaded.
    _alive: ClassVar[dict] = {}

    def __init__(self, qml: str, labels: dict[int, str] | None = None) -> None:
        super().__init__()
        self.qml, self.labels = qml, labels

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API name
        layer.loadNamedStyle(self.qml)
        if self.labels:  # palette colours from the .qml, beyond its last class its last colour; labels from the run
            palette = {int(c.value): c.color for c in layer.renderer().classes()}
            classes = [QgsPalettedRasterRenderer.Class(value, palette.get(value, palette[max(palette)]), label)
                       for value, label in sorted(self.labels.items())]
            layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
        layer.triggerRepaint()

    @classmethod
    def attach(cls, context, output_id, qml: str, labels: dict[int, str] | None = None) -> None:
        """Style ``output_id`` with ``qml`` if it is to be loaded when the algorithm completes."""
        if output_id and context.willLoadLayerOnCompletion(output_id):
            processor = cls(os.path.join(STYLES, qml), labels)
            cls._alive[output_id] = processor
            context.layerToLoadOnCompletionDetails(output_id).setPostProcessor(processor)
