"""Conversions between QGIS layers/parameters and the arrays and grid specs that core/ works on."""

from __future__ import annotations

import math
from contextlib import closing

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingFeatureSource,
    QgsProject,
    QgsRectangle,
    QgsWkbTypes,
)

from ..compat import GEOMETRY_POINT, WKT_GDAL
from ..core.errors import InputError
from ..core.grid import GridSpec
from ..core.progress import check_cancelled
from ..core.raster_io import read_grid_spec

READ_CHUNK = 10_000  # features read between cancel checks, then kept as one float64 array


def feedback_callbacks(feedback):
    """(progress, is_cancelled) callables that forward core progress to a Processing feedback."""
    if feedback is None:
        return None, None
    return feedback.setProgress, feedback.isCanceled


def crs_to_string(crs: QgsCoordinateReferenceSystem) -> str:
    """WKT that GDAL and rasterio read back as the same CRS."""
    return crs.toWkt(WKT_GDAL)


def crs_from_string(crs: str) -> QgsCoordinateReferenceSystem:
    """QGIS CRS from the WKT or authority id stored in a GridSpec."""
    result = QgsCoordinateReferenceSystem.fromWkt(crs)
    if not result.isValid():
        result = QgsCoordinateReferenceSystem(crs)
    return result


def require_projected(
    crs: QgsCoordinateReferenceSystem, what: str, data_crs: QgsCoordinateReferenceSystem, data_extent: QgsRectangle
) -> None:
    """Refuse a geographic or invalid CRS, suggesting the UTM zone that holds the data."""
    if not crs.isValid():
        raise InputError(f"{what} has no valid CRS; set its CRS (Layer Properties ▸ Source) first.")
    if crs.isGeographic():
        raise InputError(
            f"{what} is in a geographic CRS ({crs.authid() or crs.description()}): distances in degrees "
            "are not distances. Choose a projected output CRS (parameter 'Output CRS') or a template raster, "
            f"for example {utm_suggestion(data_crs, data_extent)}."
        )


def utm_suggestion(crs: QgsCoordinateReferenceSystem, extent: QgsRectangle) -> str:
    """The WGS 84 / UTM zone that holds the centre of ``extent``, as 'EPSG:326zz (WGS 84 / UTM zone zzN)'."""
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    centre = extent.center()
    if crs.isValid() and crs != wgs84:
        centre = QgsCoordinateTransform(crs, wgs84, QgsProject.instance()).transform(centre)
    zone = min(60, max(1, math.floor((centre.x() + 180.0) / 6.0) + 1))
    north = centre.y() >= 0
    return f"EPSG:{32600 + zone if north else 32700 + zone} (WGS 84 / UTM zone {zone}{'N' if north else 'S'})"


def grid_from_raster_layer(layer) -> GridSpec:
    """The exact grid of a file-based raster layer (for snapping outputs to a template)."""
    if layer.providerType() != "gdal":
        raise InputError(
            f"The template raster '{layer.name()}' must be a file (GDAL) raster, not {layer.providerType()}."
        )
    return read_grid_spec(layer.source())


def projected_raster(algorithm, parameters, key: str, context, what: str = "The evidence stack"):
    """The file raster of parameter ``key``, refused when it is not a GDAL file or is in a geographic CRS
    (the steps that take it measure distances in map units)."""
    layer = algorithm.parameterAsRasterLayer(parameters, key, context)
    if layer is None or layer.providerType() != "gdal":
        raise InputError(f"{what} must be a file raster (GeoTIFF) that GDAL can open.")
    if layer.crs().isGeographic():
        raise InputError(f"{what} '{layer.name()}' is in a geographic CRS ({layer.crs().authid()}): distances in "
                         "degrees are not distances. Build it on a projected grid (e.g. "
                         f"{utm_suggestion(layer.crs(), layer.extent())}), or warp it (Raster ▸ Projections ▸ Warp).")
    return layer


def point_xy(source: QgsProcessingFeatureSource, what: str, crs: QgsCoordinateReferenceSystem, context,
             feedback) -> np.ndarray:
    """(n, 2) coordinates of a point source in ``crs``, saying when they are reprojected."""
    xy = read_points(source, [], crs, context, feedback, what)[0]  # refuses non-points and an undefined CRS
    if source.sourceCrs() != crs:
        feedback.pushInfo(f"The {what} points are reprojected from {source.sourceCrs().authid()} to "
                          f"{crs.authid() or crs.description()}.")
    return xy


def point_parameter(algorithm, parameters, key: str, what: str, crs: QgsCoordinateReferenceSystem, context,
                    feedback, required: bool = False) -> np.ndarray | None:
    """The points of the point-layer parameter ``key`` in ``crs``, read the same way for every algorithm.

    A required layer that is missing or empty is an error; an optional one that is unset or empty gives None
    (an empty one is reported).
    """
    source = algorithm.parameterAsSource(parameters, key, context)
    if source is None or source.featureCount() == 0:
        if required:
            raise InputError(f"The {what} layer is missing or has no features; give the {what} points.")
        if source is not None:
            feedback.pushInfo(f"The {what} layer has no features; it is not used.")
        return None
    return point_xy(source, what, crs, context, feedback)


def check_point_source(source: QgsProcessingFeatureSource, what: str) -> None:
    """Refuse a layer that is not points (multipoints are points) or whose CRS is undefined."""
    if QgsWkbTypes.geometryType(source.wkbType()) != GEOMETRY_POINT:
        raise InputError(
            f"The {what} layer '{source.sourceName()}' has {QgsWkbTypes.displayString(source.wkbType())} geometries; "
            f"{what} must be points. Give a point layer (for lines or polygons, Vector geometry ▸ Centroids makes "
            "one).")
    if not source.sourceCrs().isValid():
        raise InputError(f"The {what} layer '{source.sourceName()}' has no CRS, so its coordinates cannot be placed. "
                         "Set it in Layer Properties ▸ Source ▸ Assigned coordinate reference system (or in "
                         "the file's .prj), then run again.")


def read_points(
    source: QgsProcessingFeatureSource,
    field_names: list[str],
    target_crs: QgsCoordinateReferenceSystem,
    context,
    feedback=None,
    what: str = "sample",
    progress_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates in ``target_crs`` and field values as floats (NULL → NaN).

    Multipoint features give one sample per part; features without geometry are skipped and reported.
    The feature iterator is closed even on cancel, so the layer's data source is not left busy. Progress goes
    from 0 to ``progress_share`` % while reading (0: none, for a layer read after the run has moved on).
    """
    check_point_source(source, what)
    field_index = [source.fields().lookupField(name) for name in field_names]
    request = QgsFeatureRequest().setSubsetOfAttributes(field_index)
    request.setDestinationCrs(target_crs, context.transformContext())
    total = max(source.featureCount(), 1)
    rows: list[list[float]] = []  # x, y and the values of the samples read since the last chunk
    chunks: list[np.ndarray] = []  # float64 (samples, 2 + fields): Python floats cost 4 times as much memory
    skipped = 0
    _, is_cancelled = feedback_callbacks(feedback)
    with closing(source.getFeatures(request)) as features:
        for count, feature in enumerate(features):
            if count % READ_CHUNK == 0:
                check_cancelled(is_cancelled)
                if feedback is not None and progress_share:
                    feedback.setProgress(progress_share * count / total)
                if rows:
                    chunks.append(np.array(rows, dtype=np.float64))
                    rows.clear()
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty():
                skipped += 1
                continue
            attributes = feature.attributes()
            values = [as_float(attributes[i]) for i in field_index]
            for part in geometry.asMultiPoint() if geometry.isMultipart() else [geometry.asPoint()]:
                rows.append([part.x(), part.y(), *values])
    if skipped and feedback is not None:
        feedback.pushWarning(f"{skipped} feature(s) without geometry were skipped.")
    chunks.append(np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(field_names)))
    samples = np.concatenate(chunks)
    del chunks
    return np.ascontiguousarray(samples[:, :2]), np.ascontiguousarray(samples[:, 2:])


def as_float(value) -> float:
    """A number from an attribute; NULL, empty and non-numeric values become NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
