"""Vector features of any geometry type as GeoJSON-like dicts (plus a weight each), in a target CRS."""

from __future__ import annotations

import json
from contextlib import closing

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeatureRequest,
    QgsProcessingFeatureSource,
    QgsProviderRegistry,
)

from ..core.progress import check_cancelled
from .qgis_io import as_float, feedback_callbacks


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
    request = QgsFeatureRequest()
    field_index = source.fields().lookupField(weight_field) if weight_field else -1
    request.setSubsetOfAttributes([field_index] if field_index >= 0 else [])
    if source.sourceCrs() != target_crs:
        request.setDestinationCrs(target_crs, context.transformContext())
        if feedback is not None:
            feedback.pushInfo(f"Reprojecting {layer_name} from {source.sourceCrs().authid() or 'its CRS'} to "
                              f"{target_crs.authid() or 'the output CRS'}.")
    _, is_cancelled = feedback_callbacks(feedback)
    geometries, weights, no_geometry, no_weight = [], [], 0, 0
    with closing(source.getFeatures(request)) as features:  # closed on cancel too: the source stays usable
        for count, feature in enumerate(features):
            if count % 1000 == 0:
                check_cancelled(is_cancelled)
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty():
                no_geometry += 1
                continue
            weight = as_float(feature.attributes()[field_index]) if field_index >= 0 else 1.0
            if not np.isfinite(weight):
                no_weight += 1
                continue
            geometries.append(json.loads(geometry.asJson()))
            weights.append(weight)
    if feedback is not None:
        if no_geometry:
            feedback.pushWarning(f"{no_geometry} feature(s) without geometry were skipped.")
        if no_weight:
            feedback.pushWarning(f"{no_weight} feature(s) with a NULL or non-numeric weight were skipped.")
    return geometries, np.asarray(weights, dtype=np.float64)


def layer_name(layer, parameter_value) -> str:
    """A layer's name for band names: the GeoPackage layer name when the input was given as a path."""
    if layer is None:
        return "features"
    if isinstance(parameter_value, str):
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        if parts.get("layerName"):
            return parts["layerName"]
    return layer.name()
