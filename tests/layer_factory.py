"""Builders of small QGIS layers, and feedbacks that record the log and the progress, for algorithm tests."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingFeedback, QgsVectorLayer


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every info, warning and error line an algorithm logs, for assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    @property
    def text(self) -> str:
        """The whole log as one string."""
        return "\n".join(self.lines)

    def pushInfo(self, info):  # noqa: N802 - QGIS API name
        self.lines.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802 - QGIS API name
        self.lines.append(warning)
        super().pushWarning(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803 - QGIS API name
        self.lines.append(error)
        super().reportError(error, fatalError)


class ProgressFeedback(RecordingFeedback):
    """Records every progress value a run reports; optionally cancels once progress passes ``cancel_above``."""

    def __init__(self, cancel_above: float | None = None) -> None:
        super().__init__()
        self.progress: list[float] = []
        self.cancel_above = cancel_above
        self.progressChanged.connect(self._record)

    def _record(self, percent: float) -> None:
        self.progress.append(percent)
        if self.cancel_above is not None and percent > self.cancel_above:
            self.cancel()

    def steps_back(self) -> list[tuple[float, float]]:
        """Every (previous, next) pair of progress values where progress went backwards."""
        return [(a, b) for a, b in zip(self.progress, self.progress[1:]) if b < a]


def point_layer(points, fields: dict, crs: str = "EPSG:32650", name: str = "samples") -> QgsVectorLayer:
    """A memory point layer; ``fields`` maps name -> values (floats, None for NULL, or strings)."""
    spec = "&".join(
        f"field={key}:{'string' if any(isinstance(v, str) for v in values) else 'double'}"
        for key, values in fields.items()
    )
    layer = QgsVectorLayer(f"Point?crs={crs}" + (f"&{spec}" if spec else ""), name, "memory")
    features = []
    for i, (x, y) in enumerate(np.asarray(points, dtype=float).reshape(-1, 2)):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(float(x), float(y))))
        feature.setAttributes([_plain(values[i]) for values in fields.values()])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    return layer


def wkt_layer(wkts, geometry: str = "Polygon", crs: str = "EPSG:32650", name: str = "study_area",
              fields: dict | None = None) -> QgsVectorLayer:
    """A memory layer of WKT geometries (e.g. study-area polygons); ``fields`` maps name -> string values."""
    spec = "".join(f"&field={key}:string" for key in (fields or {}))
    layer = QgsVectorLayer(f"{geometry}?crs={crs}{spec}", name, "memory")
    features = []
    for i, wkt in enumerate(wkts):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromWkt(wkt))
        feature.setAttributes([values[i] for values in (fields or {}).values()])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    return layer


def centres_inside(layer: QgsVectorLayer, x_centres, y_centres) -> np.ndarray:
    """(rows, cols) bool: which cell centres lie inside a polygon of ``layer`` (in the layer's CRS), by QGIS."""
    geometries = [feature.geometry() for feature in layer.getFeatures()]
    return np.array([[any(g.contains(QgsGeometry.fromPointXY(QgsPointXY(float(x), float(y)))) for g in geometries)
                      for x in x_centres] for y in y_centres])


def _plain(value):
    if value is None or isinstance(value, str):
        return value
    value = float(value)
    return None if np.isnan(value) else value
