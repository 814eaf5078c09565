"""Vector features of any geometry type as GeoJSON-like dicts (plus a weight each), in a target CRS, and the
optional study-area polygons that several algorithms share."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeatureRequest,
    QgsProcessingFeatureSource,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProviderRegistry,
    QgsWkbTypes,
)
from rasterio.features import bounds as geometry_bounds

from ..compat import GEOMETRY_POLYGON, SOURCE_POLYGON
from ..core.areas import PolygonCells, study_area
from ..core.errors import InputError
from ..core.grid import GridSpec
from ..core.progress import check_cancelled
from .parameters import explained
from .qgis_io import as_float, feedback_callbacks

STUDY_AREA = "STUDY_AREA"
HOLE_FIELD = "HOLE_FIELD"
_HOLE_VALUES = {"true", "1", "yes", "t", "y"}


def read_geometries(
    source: QgsProcessingFeatureSource,
    weight_field: str | None,
    target_crs: QgsCoordinateReferenceSystem,
    context,
    feedback=None,
    layer_name: str = "the layer",
) -> tuple[list[dict], np.ndarray]:
    """Geometries in ``target_crs`` (reprojected and logged when the layer's CRS differs) and their weights.

    Features without geometry, and features whose weight is NULL or not a number, are skipped and reported.
    """
    geometries, values = _geometries_and_values(source, weight_field, target_crs, context, feedback, layer_name)
    weights = np.array([as_float(value) if weight_field else 1.0 for value in values], dtype=np.float64)
    weighted = np.isfinite(weights)
    if feedback is not None and not weighted.all():
        feedback.pushWarning(f"{int((~weighted).sum())} feature(s) with a NULL or non-numeric weight were skipped.")
    return [geometry for geometry, keep in zip(geometries, weighted) if keep], weights[weighted]


def _geometries_and_values(source: QgsProcessingFeatureSource, field_name: str | None,
                           target_crs: QgsCoordinateReferenceSystem, context, feedback,
                           layer_name: str) -> tuple[list[dict], list]:
    """GeoJSON-like geometries in ``target_crs`` and the raw value of ``field_name`` (None without a field) each.

    Reprojection is logged; features without geometry are skipped and reported.
    """
    request = QgsFeatureRequest()
    field_index = source.fields().lookupField(field_name) if field_name else -1
    request.setSubsetOfAttributes([field_index] if field_index >= 0 else [])
    if source.sourceCrs() != target_crs:
        request.setDestinationCrs(target_crs, context.transformContext())
        if feedback is not None:
            feedback.pushInfo(f"Reprojecting {layer_name} from {source.sourceCrs().authid() or 'its CRS'} to "
                              f"{target_crs.authid() or 'the output CRS'}.")
    _, is_cancelled = feedback_callbacks(feedback)
    geometries, values, no_geometry = [], [], 0
    with closing(source.getFeatures(request)) as features:  # closed on cancel too: the source stays usable
        for count, feature in enumerate(features):
            if count % 1000 == 0:
                check_cancelled(is_cancelled)
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty():
                no_geometry += 1
                continue
            geometries.append(json.loads(geometry.asJson()))
            values.append(feature.attributes()[field_index] if field_index >= 0 else None)
    if feedback is not None and no_geometry:
        feedback.pushWarning(f"{no_geometry} feature(s) without geometry were skipped.")
    return geometries, values


def layer_name(layer, parameter_value) -> str:
    """A layer's name for band names: the GeoPackage layer name when the input was given as a path."""
    if layer is None:
        return "features"
    if isinstance(parameter_value, str):
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        if parts.get("layerName"):
            return parts["layerName"]
    return layer.name()


@dataclass(frozen=True)
class StudyAreaPolygons:
    """Study-area polygons and holes (GeoJSON-like, in the output CRS) and the polygons' bounds."""

    polygons: list[dict]
    holes: list[dict]
    bounds: tuple[float, float, float, float]

    def mask(self, grid: GridSpec) -> PolygonCells:
        """Cells of ``grid`` whose centre is inside a polygon and outside every hole, rasterised window by window."""
        return study_area(self.polygons, grid, self.holes)


def add_study_area_parameters(algorithm, label: str) -> None:
    """Declare the optional STUDY_AREA polygon layer and its HOLE_FIELD on ``algorithm``."""
    algorithm.addParameter(explained(QgsProcessingParameterFeatureSource(
        STUDY_AREA, label, [SOURCE_POLYGON], optional=True),
        "Polygons of the area surveyed; cells whose centre lies outside are nodata, so nothing is mapped or counted "
        "where there are no data."))
    algorithm.addParameter(explained(QgsProcessingParameterField(
        HOLE_FIELD, "Study-area field marking holes (TRUE = subtract)", parentLayerParameterName=STUDY_AREA,
        optional=True), "Features whose value is TRUE, 1 or yes are cut out of the study area (lakes, unsurveyed "
                        "ground)."))


def read_study_area(algorithm, parameters, context, crs: QgsCoordinateReferenceSystem,
                    feedback) -> StudyAreaPolygons | None:
    """The STUDY_AREA polygons in ``crs`` (None when not given); features whose HOLE_FIELD is TRUE/1/yes are holes.

    A layer of points or lines is refused; polygon holes (inner rings) are kept as holes.
    """
    source = algorithm.parameterAsSource(parameters, STUDY_AREA, context)
    if source is None:
        return None
    name = f"the study area '{source.sourceName()}'"
    if QgsWkbTypes.geometryType(source.wkbType()) != GEOMETRY_POLYGON:
        raise InputError(f"The study area must be a polygon layer; '{source.sourceName()}' has "
                         f"{QgsWkbTypes.displayString(source.wkbType())} geometries. Give the polygon(s) of the "
                         "area to map, or leave the study area empty.")
    if not source.sourceCrs().isValid():
        feedback.pushWarning(f"The study area layer has no CRS: its coordinates are taken to be in "
                             f"{crs.authid() or crs.description()}.")
    hole_field = algorithm.parameterAsString(parameters, HOLE_FIELD, context) or None
    geometries, values = _geometries_and_values(source, hole_field, crs, context, feedback, name)
    is_hole = [hole_field is not None and str(value).strip().lower() in _HOLE_VALUES for value in values]
    polygons = [geometry for geometry, hole in zip(geometries, is_hole) if not hole]
    holes = [geometry for geometry, hole in zip(geometries, is_hole) if hole]
    if not polygons:
        raise InputError(f"The study area '{source.sourceName()}' has no polygon (only holes or no features); give "
                         "the polygon(s) of the area to map, or leave the study area empty.")
    boxes = np.array([geometry_bounds(polygon) for polygon in polygons])
    feedback.pushInfo(f"Study area: {len(polygons)} polygon(s), {len(holes)} hole(s).")
    return StudyAreaPolygons(polygons, holes, (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)))
