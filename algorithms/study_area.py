"""The optional study-area polygon parameter of the map algorithms (predict, ensemble, evaluate, anomaly classes)."""

from __future__ import annotations

import json
from contextlib import closing

import numpy as np
from qgis.core import QgsFeatureRequest, QgsProcessing, QgsProcessingParameterFeatureSource

from ..core.labels import study_area_mask
from ..core.raster_io import read_grid_spec
from .qgis_io import crs_from_string


class StudyArea:
    """Mixin for a DeepProspectAlgorithm: the STUDY_AREA parameter and its reading into a cell mask."""

    STUDY_AREA = "STUDY_AREA"

    def add_study_area_parameter(self) -> None:
        """Add the optional STUDY_AREA polygon parameter (in ``initAlgorithm``)."""
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.STUDY_AREA, "Study area (cells whose centre lies outside are nodata and not counted)",
            [QgsProcessing.TypeVectorPolygon], optional=True))

    def read_study_area(self, parameters, raster: str, context, feedback) -> np.ndarray | None:
        """The cells of the grid of the raster file ``raster`` whose centre lies in the STUDY_AREA polygons, as a
        (rows, cols) bool mask; None when no study area is given. Polygons are reprojected to the grid's CRS.
        """
        source = self.parameterAsSource(parameters, self.STUDY_AREA, context)
        if source is None:
            return None
        grid = read_grid_spec(raster)
        crs = crs_from_string(grid.crs)
        request = QgsFeatureRequest().setDestinationCrs(crs, context.transformContext())
        with closing(source.getFeatures(request)) as features:
            polygons = [json.loads(feature.geometry().asJson()) for feature in features if feature.hasGeometry()]
        mask = study_area_mask(polygons, grid)
        if not source.sourceCrs().isValid():
            feedback.pushWarning("The study area layer has no CRS: its coordinates are taken to be in the map's CRS.")
        elif source.sourceCrs() != crs:
            feedback.pushInfo(f"The study area is reprojected from {source.sourceCrs().authid()} to the map's CRS.")
        feedback.pushInfo(f"Study area: {len(polygons)} polygon(s); {int(mask.sum())} of {grid.cell_count} cells "
                          "have their centre inside.")
        return mask
