"""The STUDY_AREA of the map algorithms (predict, ensemble, evaluate, anomaly classes) as cells of the map's grid."""

from __future__ import annotations

import numpy as np

from ..core.raster_io import read_grid_spec
from .qgis_io import crs_from_string
from .vector_io import STUDY_AREA, add_study_area_parameters, read_study_area


def add_study_area(algorithm) -> None:
    """Declare the optional STUDY_AREA polygons (and their HOLE_FIELD) on a map algorithm."""
    add_study_area_parameters(algorithm, "Study area (cells whose centre lies outside are nodata and not counted; "
                                         "optional)")


def study_area_cells(algorithm, parameters, raster: str, context, feedback) -> np.ndarray | None:
    """The cells of the raster file ``raster`` whose centre lies in the study area (polygons less holes), as a
    (rows, cols) bool mask; None when no study area is given (the raster's grid is then not read)."""
    if algorithm.parameterAsSource(parameters, STUDY_AREA, context) is None:
        return None
    grid = read_grid_spec(raster)
    inside = read_study_area(algorithm, parameters, context, crs_from_string(grid.crs), feedback).mask(grid)
    feedback.pushInfo(f"{int(inside.sum())} of {grid.cell_count} cells have their centre in the study area.")
    return inside
