"""deepprospect:idwgridding — grid many sample fields by IDW into one multi-band GeoTIFF."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..compat import FIELD_NUMERIC, NUMBER_DOUBLE, SOURCE_POINT
from ..core.areas import CellMask
from ..core.errors import InputError
from ..core.evidence.transforms import log10_floored, log10_positive
from ..core.gridding.idw import IdwSettings, idw_blocks, idw_memory_bytes
from ..core.memory import check_disk, check_memory
from ..core.outputs import check_writable
from ..core.raster_io import grid_profile
from ..core.tiles import Tile, write_tiles
from . import missing_values
from .base import DeepProspectAlgorithm
from .grid_params import add_grid_parameters, build_grid, resolve_output_crs
from .parameters import add_scheduler_parameter, explained, name_list, named_enum, scheduler_parameter
from .qgis_io import feedback_callbacks, read_points
from .styles import StyleOnLoad
from .vector_io import add_study_area_parameters, read_study_area

# (stored name, also the metadata value; meaning) of the NON_POSITIVE choices
NON_POSITIVE_OPTIONS = [
    ("half_detection_limit", "Raise to half the detection limit (the field's smallest positive value)"),
    ("skipped", "Skip (the sample has no value in that field)"),
]


class IdwGridding(DeepProspectAlgorithm):
    """Inverse-distance-weighted gridding of one or many numeric fields in one pass."""

    INPUT, FIELDS, POWER, MAX_POINTS = "INPUT", "FIELDS", "POWER", "MAX_POINTS"
    MIN_POINTS, RADIUS, LOG10, OUTPUT = "MIN_POINTS", "RADIUS", "LOG10", "OUTPUT"
    NON_POSITIVE = "NON_POSITIVE"

    NAME = "idwgridding"
    DISPLAY_NAME = "IDW gridding"
    GROUP = "evidence"
    TAGS = (
        "geochemistry", "interpolation", "IDW", "inverse distance", "gridding", "soil", "stream sediment", "assay",
        "raster",
    )
    HELP = (
        "Grids element concentrations (or any numeric fields) from sample points by inverse distance weighting, "
        "many fields in one pass, into one multi-band GeoTIFF whose band names are the field names.<br><br>"
        "<b>Value</b> at each pixel centre: Σ wᵢvᵢ / Σ wᵢ with wᵢ = 1/dᵢ^power over the <i>maximum points</i> "
        "nearest samples (0 = all samples) within the <i>search radius</i> (0 = unlimited). A pixel with fewer "
        "than <i>minimum points</i> samples within the radius is nodata. A sample on a pixel centre gives its "
        "value exactly; coincident samples are averaged. NULL values are skipped per field, never read as 0.<br>"
        "<b>Grid</b>: a template raster (the output snaps to its CRS, transform and size), or an extent and "
        "pixel size; without either, the extent is the study area's if one is given, else the points'. Points in "
        "a geographic CRS are gridded in a projected output CRS (distances in degrees are never used).<br>"
        "<b>Study area</b> (optional polygons; holes and features whose hole field is TRUE are subtracted): pixels "
        "whose centre lies outside are nodata, so nothing is extrapolated beyond it; samples outside still count "
        "for pixels inside.<br>" + missing_values.HELP + "<br><b>Log10</b>: interpolate log10 of the values, as is "
        "usual for log-normal concentrations. <i>Values ≤ 0</i> (often below-detection results written as 0) are "
        "by default raised to half the detection limit, the detection limit being taken as the field's smallest "
        "positive value; or skipped. Either way a warning gives the count per field.<br>"
        "Every paper behind DeepProspect starts from IDW element grids with power 2 (he2024, gao2022, gao2023, "
        "zhang2021)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, "Sample points", [SOURCE_POINT]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELDS, "Fields to grid (one band each)", parentLayerParameterName=self.INPUT,
            type=FIELD_NUMERIC, allowMultiple=True))
        self.addParameter(explained(QgsProcessingParameterNumber(
            self.POWER, "Power", NUMBER_DOUBLE, defaultValue=2.0, minValue=0.000001),
            "Each sample weighs 1 / distance^power: higher powers give more local, spottier grids; 2 is usual."))
        self.addParameter(QgsProcessingParameterNumber(
            self.MAX_POINTS, "Maximum points (k nearest; 0 = all points)", defaultValue=12, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_POINTS, "Minimum points within the radius (else nodata)", defaultValue=1, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.RADIUS, "Search radius (output CRS units; 0 = unlimited)", NUMBER_DOUBLE,
            defaultValue=0.0, minValue=0.0))
        add_grid_parameters(self)
        add_study_area_parameters(self, "Study area (pixels outside are nodata; default extent; optional)")
        self.addParameter(explained(
            QgsProcessingParameterBoolean(self.LOG10, "Interpolate log10 of the values", False),
            "Grids log10 of each value, as skewed assay data usually need; values at or below 0 are handled as "
            "'Values ≤ 0 with log10' says."))
        self.addParameter(explained(
            named_enum(self.NON_POSITIVE, "Values ≤ 0 with log10", [name for name, _ in NON_POSITIVE_OPTIONS]),
            name_list(NON_POSITIVE_OPTIONS)))
        missing_values.add_missing_value_parameters(self, "field values")
        add_scheduler_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Gridded fields"))

    def compute(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise InputError("The sample point layer could not be opened.")
        if source.featureCount() == 0:
            raise InputError("The sample point layer has no features.")
        fields = self._numeric_fields(source, self.parameterAsFields(parameters, self.FIELDS, context))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_writable(output)
        settings = IdwSettings(
            power=self.parameterAsDouble(parameters, self.POWER, context),
            max_points=self.parameterAsInt(parameters, self.MAX_POINTS, context),
            min_points=self.parameterAsInt(parameters, self.MIN_POINTS, context),
            radius=self.parameterAsDouble(parameters, self.RADIUS, context),
        )
        crs, grid = resolve_output_crs(self, parameters, context, source.sourceCrs(), "The sample point layer",
                                       source.sourceExtent())
        points, values = read_points(source, fields, crs, context, feedback, progress_share=10.0)
        if points.shape[0] == 0:
            raise InputError("No sample point has a geometry.")
        bounds = (*points.min(axis=0), *points.max(axis=0))
        area = read_study_area(self, parameters, context, crs, feedback)
        grid = grid or build_grid(self, parameters, context, crs, area.bounds if area is not None else bounds)
        if not grid.overlaps(*bounds):
            raise InputError(
                f"The output grid {tuple(round(b, 3) for b in grid.bounds)} does not overlap the sample points "
                f"{tuple(round(b, 3) for b in bounds)} in {crs.authid() or 'the output CRS'}; check the extent."
            )
        values = missing_values.clean_values(self, parameters, context, feedback, values, fields)
        if self.parameterAsBool(parameters, self.LOG10, context):
            values = self._log10(values, fields, self._non_positive(parameters, context), feedback)
        check_memory(idw_memory_bytes(values, settings), f"IDW of {len(fields)} field(s) from {len(points)} samples",
                     "Use fewer fields (FIELDS)")
        check_disk(4 * len(fields) * grid.cell_count, output, f"A {grid.rows} × {grid.cols} grid of {len(fields)} "
                   "field(s)", "Use a larger pixel size (PIXEL_SIZE), a smaller extent (EXTENT) or fewer fields "
                   "(FIELDS)")
        inside = area.mask(grid) if area is not None else None
        feedback.pushInfo(f"Gridding {len(fields)} field(s) from {len(points)} samples onto {grid.rows} × "
                          f"{grid.cols} pixels of {grid.pixel_width:g} × {grid.pixel_height:g} in {crs.authid()}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        blocks = idw_blocks(points, values, grid, settings, field_names=fields,
                            scheduler=scheduler_parameter(self, parameters, context),
                            progress=lambda p: progress(10 + 0.85 * p), is_cancelled=is_cancelled,
                            log=feedback.pushInfo)
        write_tiles(output, grid_profile(grid, len(fields)), fields, self._metadata(settings, parameters, context),
                    blocks if inside is None else _blanked_outside(blocks, inside),
                    band_metadata=[{"FIELD": name} for name in fields])
        StyleOnLoad.attach(context, output, "grid.qml", stretch=True, name=f"IDW {', '.join(fields)}")
        return {self.OUTPUT: output}

    def _numeric_fields(self, source, names: list[str]) -> list[str]:
        if not names:
            raise InputError("Choose at least one numeric field to grid.")
        for name in names:
            index = source.fields().lookupField(name)  # the base class has checked that every field exists
            if not source.fields().at(index).isNumeric():
                raise InputError(f"Field '{name}' is not numeric ({source.fields().at(index).typeName()}); "
                                 "convert it to a number (Field Calculator: to_real) or choose another field.")
        return list(names)

    def _non_positive(self, parameters, context) -> str:
        return self.parameterAsEnumString(parameters, self.NON_POSITIVE, context)

    @staticmethod
    def _log10(values: np.ndarray, fields: list[str], non_positive: str, feedback) -> np.ndarray:
        """log10 of the values, values ≤ 0 raised to half the field's detection limit or skipped, with warnings."""
        if non_positive == "skipped":
            logged, dropped = log10_positive(values)
            for name, count in zip(fields, dropped):
                if count:
                    feedback.pushWarning(f"{name}: {count} value(s) ≤ 0 have no log10 and were skipped.")
            return logged
        logged, raised, floors = log10_floored(values)
        for name, count, floor in zip(fields, raised, floors):
            if count:
                feedback.pushWarning(f"{name}: {count} value(s) ≤ 0 were raised to {floor:g}, half the smallest "
                                     "positive value (taken as the detection limit), before log10.")
        return logged

    def _metadata(self, settings: IdwSettings, parameters, context) -> dict[str, str]:
        logged = self.parameterAsBool(parameters, self.LOG10, context)
        return {
            "DEEPPROSPECT_ALGORITHM": self.NAME,
            "IDW_POWER": f"{settings.power:g}",
            "IDW_MAX_POINTS": str(settings.max_points),
            "IDW_MIN_POINTS": str(settings.min_points),
            "IDW_RADIUS": f"{settings.radius:g}",
            "VALUE_TRANSFORM": "log10" if logged else "none",
            "LOG10_NON_POSITIVE": self._non_positive(parameters, context) if logged else "",
            "MISSING_VALUE_CODES": missing_values.codes_text(self, parameters, context),
        }


def _blanked_outside(blocks: Iterator[tuple[Tile, np.ndarray]], inside: CellMask,
                     ) -> Iterator[tuple[Tile, np.ndarray]]:
    """The blocks with NaN in cells outside the study area (``inside`` is the grid's mask)."""
    for tile, block in blocks:
        block[:, ~inside[tile.slices]] = np.nan
        yield tile, block
