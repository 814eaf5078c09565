"""Memory polygon layers (study areas) for algorithm tests, and the cells a rectangle's centres cover."""

from __future__ import annotations

import numpy as np
from deepprospect.core.grid import GridSpec
from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer


def rectangle_layer(x_min: float, y_min: float, x_max: float, y_max: float, crs: str = "EPSG:32650"
                    ) -> QgsVectorLayer:
    """A memory layer holding one rectangle."""
    layer = QgsVectorLayer(f"Polygon?crs={crs}", "study area", "memory")
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromWkt(f"POLYGON(({x_min} {y_min}, {x_max} {y_min}, {x_max} {y_max}, "
                                            f"{x_min} {y_max}, {x_min} {y_min}))"))
    layer.dataProvider().addFeatures([feature])
    layer.updateExtents()
    return layer


def rectangle_cells(grid: GridSpec, x_min: float, y_min: float, x_max: float, y_max: float) -> np.ndarray:
    """(rows, cols) bool: the cells of ``grid`` whose centre lies inside the rectangle."""
    x, y = np.meshgrid(grid.x_centres(), grid.y_centres())
    return (x > x_min) & (x < x_max) & (y > y_min) & (y < y_max)
