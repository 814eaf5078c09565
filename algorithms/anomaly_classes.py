"""deepprospect:anomalyclasses — anomaly classes by cumulative area and ranked target zones from a map."""

from __future__ import annotations

import math

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingParameterBand,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import (
    FAST_INSERT,
    FIELD_DOUBLE,
    FIELD_INT,
    FIELD_STRING,
    NUMBER_DOUBLE,
    SOURCE_POINT,
    SOURCE_POLYGON,
    SOURCE_VECTOR,
    WKB_MULTIPOLYGON,
    WKB_NO_GEOMETRY,
)
from ..core.errors import InputError
from ..core.mapping.anomaly import class_names, classify, find_targets, parse_class_limits, write_class_raster
from ..core.mapping.maps import check_probability_map
from ..core.mapping.streaming import raster_map
from ..core.outputs import check_writable
from ..core.progress import check_cancelled
from .base import DeepProspectAlgorithm
from .qgis_io import feedback_callbacks, point_parameter
from .study_area import add_study_area, study_area_cells
from .styles import StyleOnLoad

_D, _I, _S = FIELD_DOUBLE, FIELD_INT, FIELD_STRING
TABLE_FIELDS = [("class", _I, "cls"), ("name", _S, "name"), ("from_pct", _D, "from_pct"), ("to_pct", _D, "to_pct"),
                ("threshold", _D, "threshold"), ("min_value", _D, "min_value"), ("max_value", _D, "max_value"),
                ("cells", _I, "cells"), ("area_km2", _D, "area_km2"), ("area_pct", _D, "area_pct"),
                ("deposits", _I, "deposits"), ("deposit_pct", _D, "deposit_pct")]
TARGET_FIELDS = [("rank", _I, "rank"), ("mean_prob", _D, "mean_value"), ("max_prob", _D, "max_value"),
                 ("area_km2", _D, "area_km2"), ("cells", _I, "cells"), ("deposits", _I, "deposits")]


class AnomalyClasses(DeepProspectAlgorithm):
    """Classes of cumulative area (top 5 / 5–15 / 15–30 %), deposits captured, and ranked target polygons."""

    MAP, BAND, DEPOSITS, CLASS_LIMITS = "MAP", "BAND", "DEPOSITS", "CLASS_LIMITS"
    TARGET_CLASSES, MIN_TARGET_AREA = "TARGET_CLASSES", "MIN_TARGET_AREA"
    OUTPUT, CLASS_TABLE, TARGETS = "OUTPUT", "CLASS_TABLE", "TARGETS"

    NAME = "anomalyclasses"
    DISPLAY_NAME = "Anomaly classes and targets"
    GROUP = "maps"
    TAGS = (
        "anomaly", "classes", "targets", "exploration targets", "drill targets", "ranking", "area",
    )
    HELP = (
        "Divides a prospectivity map into classes of cumulative area, as zhang2021 does (the top 5 %, 5–15 % and "
        "15–30 % of the valid area: high, moderate and low anomaly), and outlines ranked target zones.<br>"
        "<b>Classes</b>: class 1 holds the highest values; cells below the last limit are background, class 0; "
        "nodata stays nodata (255). The thresholds come from the map's own values, so each class holds its share "
        "of the valid cells exactly, except where cells with equal values straddle a threshold: equal values are "
        "never split, and the higher class takes them all (a warning gives the real shares).<br>"
        "<b>Study area</b> (optional polygons less holes): cells whose centre lies outside are nodata; the "
        "classes, their thresholds and shares, and the deposits counted come from the cells inside only.<br>"
        "<b>Class table</b>: per class its cumulative-area limits, its value range (threshold = lowest value in "
        "it), cells, area in km² and %, and, with deposits given, the deposits in it and their share of the "
        "deposits on the map (zhang2021: the top 5 % held about 75 %).<br>"
        "<b>Targets</b>: connected zones of classes 1 … k (cells touching at a corner belong together), zones "
        "smaller than the minimum area (km²) dropped, ranked by mean value (larger area first on ties), with "
        "their maximum, area, cell count, deposits inside and centroid (mean of the cell centres).<br>"
        "The map must hold probabilities (0–1) in a projected CRS. Outputs loaded into QGIS are styled: classes "
        "red / yellow / blue with a transparent background, targets outlined and labelled with their rank."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Prospectivity map"))
        # optional: QGIS 3.22 refuses a missing band value instead of taking its default
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band (default 1)", 1, self.MAP, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.DEPOSITS, "Known deposits (to count per class and target)", [SOURCE_POINT],
            optional=True))
        add_study_area(self)
        self.addParameter(QgsProcessingParameterString(
            self.CLASS_LIMITS, "Class limits, cumulative % of area from the highest values", "5,15,30"))
        self.addParameter(QgsProcessingParameterNumber(
            self.TARGET_CLASSES, "Targets from classes 1 … k (k)", defaultValue=1, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_TARGET_AREA, "Minimum target area (km²; 0 = keep all)", NUMBER_DOUBLE,
            defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Anomaly classes"))
        self.addParameter(QgsProcessingParameterFeatureSink(self.CLASS_TABLE, "Class table", SOURCE_VECTOR))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.TARGETS, "Target zones", SOURCE_POLYGON))

    def compute(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.MAP, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The prospectivity map must be a file raster (GeoTIFF) that GDAL can open.")
        limits = parse_class_limits(self.parameterAsString(parameters, self.CLASS_LIMITS, context))
        target_classes = self.parameterAsInt(parameters, self.TARGET_CLASSES, context)
        if target_classes > len(limits):
            raise InputError(f"Targets from classes 1 … {target_classes} asked, but the limits make only "
                             f"{len(limits)} class(es); lower the target classes or add limits.")
        classes_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_writable(classes_path)
        band = self.parameterAsInt(parameters, self.BAND, context) or 1
        check_probability_map(layer.source(), band=band)
        deposits = point_parameter(self, parameters, self.DEPOSITS, "deposit", layer.crs(), context, feedback)
        study_area = study_area_cells(self, parameters, layer.source(), context, feedback)
        progress, is_cancelled = feedback_callbacks(feedback)
        feedback.setProgress(20)
        check_cancelled(is_cancelled)
        with raster_map(layer.source(), band, study_area=study_area) as source:  # read window by window
            grid = source.grid
            result = classify(source, grid, limits, deposits, is_cancelled=is_cancelled,
                              progress=lambda p: progress(20 + 0.3 * p))
            targets, target_notes = find_targets(
                source, grid, result, target_classes, self.parameterAsDouble(parameters, self.MIN_TARGET_AREA, context),
                deposits, is_cancelled=is_cancelled, progress=lambda p: progress(50 + 0.3 * p))
            for note in result.notes + target_notes:
                feedback.pushWarning(note)
            for row in result.table:
                captured = f", {row.deposits} deposit(s) ({row.deposit_pct:.1f} %)" if deposits is not None else ""
                feedback.pushInfo(f"{row.name}: values ≥ {row.threshold:.6g}, {row.area_km2:.4g} km² "
                                  f"({row.area_pct:.2f} %){captured}")
            feedback.pushInfo(f"{len(targets)} target zone(s).")
            write_class_raster(classes_path, source, grid, result, is_cancelled=is_cancelled,
                               progress=lambda p: progress(80 + 0.15 * p))
        table_id = self._write(parameters, self.CLASS_TABLE, context, TABLE_FIELDS, result.table,
                               WKB_NO_GEOMETRY, QgsCoordinateReferenceSystem())
        target_id = self._write(parameters, self.TARGETS, context, TARGET_FIELDS, targets,
                                WKB_MULTIPOLYGON, layer.crs(), centroids=True)
        StyleOnLoad.attach(context, classes_path, "anomaly_classes.qml", class_names(limits))
        StyleOnLoad.attach(context, target_id, "targets.qml")
        return {self.OUTPUT: classes_path, self.CLASS_TABLE: table_id, self.TARGETS: target_id}

    def _write(self, parameters, key, context, columns, rows, geometry_type, crs, centroids=False):
        fields = QgsFields()
        for name, kind, _ in columns + ([("centroid_x", _D, ""), ("centroid_y", _D, "")] if centroids else []):
            fields.append(QgsField(name, kind))
        sink, dest_id = self.parameterAsSink(parameters, key, context, fields, geometry_type, crs)
        if sink is None:
            return None
        for row in rows:
            feature = QgsFeature(fields)
            values = [getattr(row, attribute) for _, _, attribute in columns]
            if centroids:
                values += list(row.centroid)
                feature.setGeometry(_geometry(row.geometry))
            feature.setAttributes([None if isinstance(v, float) and math.isnan(v) else v for v in values])
            sink.addFeature(feature, FAST_INSERT)
        return dest_id


def _geometry(geojson: dict) -> QgsGeometry:
    """A QGIS MultiPolygon from a GeoJSON-like Polygon or MultiPolygon."""
    polygons = [geojson["coordinates"]] if geojson["type"] == "Polygon" else geojson["coordinates"]
    return QgsGeometry.fromMultiPolygonXY([[[QgsPointXY(x, y) for x, y in ring] for ring in polygon]
                                           for polygon in polygons])
