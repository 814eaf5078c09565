"""deepprospect:ensemblecompare — prospective area of ensemble members and rules by known ground (he2024 Table 2)."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsWkbTypes,
)

from ..compat import (
    FAST_INSERT,
    FIELD_DOUBLE,
    FIELD_STRING,
    GEOMETRY_POLYGON,
    SOURCE_POINT,
    SOURCE_POLYGON,
    SOURCE_RASTER,
    WKB_NO_GEOMETRY,
)
from ..core.errors import InputError
from ..core.mapping.ensemble_compare import ENSEMBLE, MEMBER, compare_areas, table_rows
from ..core.raster_io import read_grid_spec
from ..core.sampling.labels import study_area_mask
from .base import DeepProspectAlgorithm
from .parameters import explained
from .qgis_io import crs_from_string, feedback_callbacks, point_parameter
from .study_area import add_study_area, study_area_cells
from .threshold import ProbabilityThreshold
from .vector_io import read_geometries

TEXT_FIELDS = ("group", "map", "rule", "statistic")


class EnsembleCompare(ProbabilityThreshold, DeepProspectAlgorithm):
    """Member and ensemble maps → table of prospective cells and km² in deposit / other / barren cells, and spread."""

    MAPS, ENSEMBLE_MAPS, DEPOSITS, BARREN, BARREN_AREAS = "MAPS", "ENSEMBLE_MAPS", "DEPOSITS", "BARREN", "BARREN_AREAS"
    OUTPUT = "OUTPUT"
    MEMBERS_MAD, ENSEMBLES_MAD = "MEMBERS_MAD", "ENSEMBLES_MAD"

    NAME = "ensemblecompare"
    DISPLAY_NAME = "Compare ensemble members"
    GROUP = "maps"
    TAGS = ("ensemble", "comparison", "prospective area", "stability", "mean absolute deviation", "voting",
            "averaging", "barren")
    HELP = (
        "Counts the prospective area of each member map and each ensemble map, split into known ground, and how "
        "much it varies within each group, as in he2024 (Table 2), which found that the ensemble rules agree "
        "far more than the single models.<br><br>"
        "<b>Member maps</b> (probabilities 0–1, two or more, one grid) are prospective where probability ≥ the "
        "<i>threshold</i>. <b>Ensemble maps</b> written by 'Ensemble prospectivity' are read by their rule "
        "(recorded in the map): the averages where the mean probability ≥ the threshold, the votes where the "
        "vote share is > 1/2 (majority) or ≥ 1/2 (plurality, weighted), a class raster where it holds 1; a map "
        "without that record is read as probabilities.<br>"
        "<b>Cells</b>: <i>deposit</i> cells hold a deposit point; <i>barren</i> cells hold a barren point or "
        "have their centre in a barren polygon (a cell with a deposit is a deposit cell); <i>other</i> cells are "
        "the rest (unexplored ground). Only cells where every map has a value, inside the optional <i>study "
        "area</i>, count, so every map faces the same ground.<br>"
        "<b>Spread</b> of each group (members, ensemble rules): the mean, the <b>mean absolute deviation</b> "
        "MAD = mean |x − mean| and MAD / mean. he2024 printed these as \"standard deviation\" and "
        "\"coefficient of variation\" (its printed values are the MAD: e.g. 3.83 for areas 49, 58, 45, 43, 49, "
        "45, whose standard deviation is 4.9), so they are computed and named as what they are.<br>"
        "<b>Output</b>: a table (save it as CSV to read elsewhere) with, per map and per statistic, the "
        "prospective cells and km² in all, in deposit, other and barren cells; its first row counts the cells of "
        "each kind. Maps are read block by block, so large maps need little memory."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.MAPS, "Member maps (probabilities, two or more, same grid)", SOURCE_RASTER))
        self.addParameter(explained(QgsProcessingParameterMultipleLayers(
            self.ENSEMBLE_MAPS, "Ensemble maps (same grid)", SOURCE_RASTER, optional=True),
            "Maps written by 'Ensemble prospectivity' (its map or class raster), one per rule."))
        self.addParameter(QgsProcessingParameterFeatureSource(self.DEPOSITS, "Deposits", [SOURCE_POINT]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BARREN, "Barren points (drilled, no deposit)", [SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BARREN_AREAS, "Barren areas (known non-ore ground)", [SOURCE_POLYGON], optional=True))
        self.add_threshold("Threshold (0–1): a member map is prospective where probability ≥")
        add_study_area(self)
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, "Prospective area by map"))
        for key, group in ((self.MEMBERS_MAD, "members"), (self.ENSEMBLES_MAD, "ensemble maps")):
            self.addOutput(QgsProcessingOutputNumber(key, f"Mean absolute deviation of the {group}' prospective "
                                                          "cells"))

    def compute(self, parameters, context, feedback):
        members, ensembles = (self._paths(parameters, key, context) for key in (self.MAPS, self.ENSEMBLE_MAPS))
        if not members:
            raise InputError("Give at least two member maps.")
        grid = read_grid_spec(members[0])
        crs = crs_from_string(grid.crs)
        deposits = point_parameter(self, parameters, self.DEPOSITS, "deposit", crs, context, feedback, required=True)
        barren = point_parameter(self, parameters, self.BARREN, "barren point", crs, context, feedback)
        areas = self.parameterAsSource(parameters, self.BARREN_AREAS, context)
        barren_area = None
        if areas is not None:
            if QgsWkbTypes.geometryType(areas.wkbType()) != GEOMETRY_POLYGON:
                raise InputError(f"The barren areas must be polygons; '{areas.sourceName()}' has "
                                 f"{QgsWkbTypes.displayString(areas.wkbType())} geometries. Give barren points as "
                                 "barren points.")
            polygons, _ = read_geometries(areas, None, crs, context, feedback, "the barren areas")
            barren_area = study_area_mask(polygons, grid)
            feedback.pushInfo(f"Barren areas: {len(polygons)} polygon(s) cover {int(barren_area.sum())} cell centres.")
        study_area = study_area_cells(self, parameters, members[0], context, feedback)
        progress, is_cancelled = feedback_callbacks(feedback)
        comparison = compare_areas(members, ensembles, deposits,
                                   threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
                                   barren_xy=barren, barren_area=barren_area, study_area=study_area,
                                   progress=progress, is_cancelled=is_cancelled)
        for note in comparison.notes:
            feedback.pushWarning(note)
        feedback.pushInfo("Cells where every map has a value: " + ", ".join(
            f"{count} {kind}" for kind, count in comparison.cells.items()) + ".")
        for group, spreads in comparison.spreads.items():
            feedback.pushInfo(f"{group.capitalize()}s: prospective cells " + ", ".join(
                f"{row.name} {row.prospective}" for row in comparison.rows if row.group == group)
                + "; mean absolute deviation " + ", ".join(
                f"{column} {spread.mean_absolute_deviation:.2f} ({spread.relative_mean_absolute_deviation:.2f} of "
                "the mean)" for column, spread in spreads.items()) + ".")
        table = self._write_table(parameters, context, table_rows(comparison))
        mad = {group: spreads["prospective"].mean_absolute_deviation
               for group, spreads in comparison.spreads.items()}
        return {self.OUTPUT: table, self.MEMBERS_MAD: mad[MEMBER], self.ENSEMBLES_MAD: mad.get(ENSEMBLE)}

    def _paths(self, parameters, key, context) -> list[str]:
        layers = self.parameterAsLayerList(parameters, key, context)
        for layer in layers:
            if layer.providerType() != "gdal":
                raise InputError(f"The map '{layer.name()}' must be a file (GDAL) raster, not "
                                 f"{layer.providerType()}.")
        return [layer.source() for layer in layers]

    def _write_table(self, parameters, context, rows: list[dict]) -> str:
        fields = QgsFields()
        for name in rows[0]:
            fields.append(QgsField(name, FIELD_STRING if name in TEXT_FIELDS else FIELD_DOUBLE))
        sink, table = self.parameterAsSink(parameters, self.OUTPUT, context, fields, WKB_NO_GEOMETRY,
                                           QgsCoordinateReferenceSystem())
        for row in rows:
            feature = QgsFeature(fields)
            feature.setAttributes(list(row.values()))
            sink.addFeature(feature, FAST_INSERT)
        return table
