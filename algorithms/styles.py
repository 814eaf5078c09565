"""QML styles and layer names applied to outputs when Processing loads them (resources/styles)."""

from __future__ import annotations

import os
from typing import ClassVar

from qgis.core import QgsPalettedRasterRenderer, QgsProcessingLayerPostProcessorInterface

STYLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "styles")
# the share of cells below the low end and above the high end of a stretched colour ramp
STRETCH_CUT = (0.02, 0.98)


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies a .qml to an output when Processing loads it; relabels paletted classes when given labels and
    stretches a pseudocolour ramp over the band's values when asked (grids whose range is not known in advance)."""

    # QGIS keeps only a pointer to a post-processor: Python must hold it until the layer is loaded.
    _alive: ClassVar[dict] = {}

    def __init__(self, qml: str, labels: dict[int, str] | None = None, stretch: bool = False) -> None:
        super().__init__()
        self.qml, self.labels, self.stretch = qml, labels, stretch

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API name
        layer.loadNamedStyle(self.qml)
        if self.labels:  # palette colours from the .qml, beyond its last class its last colour; labels from the run
            palette = {int(c.value): c.color for c in layer.renderer().classes()}
            classes = [QgsPalettedRasterRenderer.Class(value, palette.get(value, palette[max(palette)]), label)
                       for value, label in sorted(self.labels.items())]
            layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
        if self.stretch:
            stretch_ramp(layer)
        layer.triggerRepaint()

    @classmethod
    def attach(cls, context, output_id, qml: str, labels: dict[int, str] | None = None, stretch: bool = False,
               name: str | None = None) -> None:
        """Style ``output_id`` with ``qml`` (and name its layer ``name``) if it is loaded when the algorithm ends.

        Without a name Processing names the layer after the output's description, so two maps of one algorithm
        would look alike in the Layers panel; a file output keeps its file name if the user's settings say so.
        """
        if output_id and context.willLoadLayerOnCompletion(output_id):
            processor = cls(os.path.join(STYLES, qml), labels, stretch)
            cls._alive[output_id] = processor
            details = context.layerToLoadOnCompletionDetails(output_id)
            details.setPostProcessor(processor)
            if name:
                details.name = name


def stretch_ramp(layer) -> None:
    """Spread the pseudocolour ramp of ``layer``'s renderer over its band's 2–98 % cumulative cut."""
    renderer = layer.renderer()
    low, high = layer.dataProvider().cumulativeCut(renderer.band(), *STRETCH_CUT)
    function = renderer.shader().rasterShaderFunction()
    items = function.colorRampItemList()
    first, last = items[0].value, items[-1].value
    if not high > low or not last > first:
        return
    for item in items:
        item.value = low + (item.value - first) / (last - first) * (high - low)
        item.label = f"{item.value:.4g}"
    function.setColorRampItemList(items)
    function.setMinimumValue(low)
    function.setMaximumValue(high)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
