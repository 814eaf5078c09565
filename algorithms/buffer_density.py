"""deepprospect:bufferdensity — distance, density or buffer-distance density of vector features on a grid."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..compat import FIELD_NUMERIC, NUMBER_DOUBLE, SOURCE_ANY_GEOMETRY
from ..core.errors import InputError
from ..core.gridding.density import FeatureSet, density_tiles, distance_tiles, memory_bytes
from ..core.memory import check_memory
from ..core.outputs import check_writable
from ..core.raster_io import grid_profile
from ..core.tiles import write_tiles
from . import missing_values
from .base import DeepProspectAlgorithm
from .grid_params import add_grid_parameters, build_grid, resolve_output_crs
from .parameters import add_scheduler_parameter, explained, name_list, named_enum, scheduler_parameter
from .qgis_io import feedback_callbacks
from .styles import StyleOnLoad
from .vector_io import add_study_area_parameters, layer_name, read_geometries, read_study_area

# (MODE value = band suffix, meaning)
MODES = [
    ("bufferdensity", "Buffer-distance density (influence decaying to zero at the buffer distance; he2024)"),
    ("distance", "Distance to the nearest feature"),
    ("density", "Density within the radius (as qgis:linedensity)"),
]
DECAYS = [
    ("triangular", "Linear: 1 − d/B"),
    ("epanechnikov", "Quadratic: 1 − (d/B)²"),
    ("quartic", "Quartic: (1 − (d/B)²)²"),
]


class BufferDensity(DeepProspectAlgorithm):
    """Turns faults, contacts, veins or alteration zones into a continuous evidence raster."""

    INPUT, MODE, RADIUS, DECAY, WEIGHT, OUTPUT = "INPUT", "MODE", "RADIUS", "DECAY", "WEIGHT", "OUTPUT"

    NAME = "bufferdensity"
    DISPLAY_NAME = "Buffer-distance density"
    GROUP = "evidence"
    TAGS = (
        "faults", "structures", "lineaments", "density", "distance", "proximity", "buffer", "alteration",
        "evidence layer",
    )
    HELP = (
        "Turns point, line or polygon features (faults, contacts, veins, alteration zones) into one "
        "continuous evidence band, named <i>&lt;layer&gt;_&lt;mode&gt;</i>, evaluated at pixel centres x.<br><br>"
        "<b>Buffer-distance density</b> (he2024: continuous buffer distance plus density) with buffer distance "
        "B = <i>radius</i>: BDD(x) = (1/N<sub>B</sub>) Σ<sub>i</sub> w<sub>i</sub> ∫<sub>F<sub>i</sub></sub> "
        "k(|x − s|) dμ<sub>i</sub>(s), with k(d) = 1 − d/B for d &lt; B and 0 beyond (linear decay; "
        "quadratic 1 − (d/B)² and quartic (1 − (d/B)²)² are offered), μ<sub>i</sub> the length of a line, the "
        "area of a polygon or a unit mass per point, w<sub>i</sub> the weight (1 without a weight field) and "
        "N<sub>B</sub> = ∫k over the plane (πB²/3 linear, πB²/2 quadratic, πB²/3 quartic). The influence "
        "falls continuously from each feature to zero at B and adds up where features are many, long or "
        "large. Units: length per area (lines), area fraction (polygons), count per area (points).<br>"
        "<b>Distance</b>: map-unit distance from each pixel centre to the nearest point of the features, exact "
        "(not to the nearest pixel they burn, as gdal_proximity measures, which is up to a pixel diagonal off): "
        "to lines and polygon outlines, 0 inside polygons, and counting features outside the grid.<br>"
        "<b>Density</b>: Σ w<sub>i</sub> |F<sub>i</sub> ∩ disk(x, radius)| / (π radius²), as "
        "qgis:linedensity (which uses a 36-sided polygon for the circle).<br>"
        "<b>Weight field</b> (optional): w<sub>i</sub> per feature; features whose weight is NULL or a "
        "missing-value code are left out. " + missing_values.HELP + "<br>"
        "Lines and points are integrated exactly; polygons on a 4 × 4 sub-pixel raster. Layers in another "
        "CRS than the grid are reprojected.<br><b>Grid</b>: a template raster, or an extent and pixel size; "
        "without either, the extent is the study area's if one is given, else the features'.<br>"
        "<b>Study area</b> (optional polygons; holes and features whose hole field is TRUE are subtracted): pixels "
        "whose centre lies outside are nodata; features outside still count for pixels inside.<br>"
        "<b>Tiles</b>: the grid is computed tile by tile (each with the features within the radius of it), so "
        "memory does not grow with the grid; <i>Dask scheduler</i> (advanced) computes the tiles on the workers of "
        "a Dask cluster, with the same result."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, "Features (points, lines or polygons)", [SOURCE_ANY_GEOMETRY]))
        self.addParameter(explained(named_enum(self.MODE, "Output", [key for key, _ in MODES]), name_list(MODES)))
        self.addParameter(QgsProcessingParameterNumber(
            self.RADIUS, "Buffer distance / search radius (output CRS units; not used for distance)",
            NUMBER_DOUBLE, defaultValue=1000.0, minValue=0.0))
        self.addParameter(explained(
            named_enum(self.DECAY, "Decay with distance (buffer-distance density)", [key for key, _ in DECAYS]),
            name_list(DECAYS)))
        self.addParameter(QgsProcessingParameterField(
            self.WEIGHT, "Weight field (optional)", parentLayerParameterName=self.INPUT,
            type=FIELD_NUMERIC, optional=True))
        missing_values.add_missing_value_parameters(self, "weights")
        add_grid_parameters(self)
        add_study_area_parameters(self, "Study area (pixels outside are nodata; default extent; optional)")
        add_scheduler_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Evidence raster"))

    def compute(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise InputError("The feature layer could not be opened.")
        name = layer_name(self.parameterAsVectorLayer(parameters, self.INPUT, context), parameters.get(self.INPUT))
        if source.featureCount() == 0:
            raise InputError(f"The layer '{name}' has no features.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_writable(output)
        mode = self.parameterAsEnumString(parameters, self.MODE, context)
        kernel = {"bufferdensity": self.parameterAsEnumString(parameters, self.DECAY, context),
                  "density": "uniform"}.get(mode)
        radius = self.parameterAsDouble(parameters, self.RADIUS, context)
        weight_field = self.parameterAsString(parameters, self.WEIGHT, context) or None
        crs, grid = resolve_output_crs(self, parameters, context, source.sourceCrs(), f"The layer '{name}'",
                                       source.sourceExtent())
        geometries, weights = read_geometries(source, weight_field, crs, context, feedback, f"'{name}'")
        if weight_field:
            weights = missing_values.clean_values(self, parameters, context, feedback, weights[:, None],
                                                  [weight_field])[:, 0]
            kept = np.isfinite(weights)
            geometries, weights = [g for g, keep in zip(geometries, kept) if keep], weights[kept]
        if not geometries:
            raise InputError(f"No feature of '{name}' has both a geometry and a weight (not NULL, not a "
                             "missing-value code).")
        features = FeatureSet.from_geojson(geometries, weights)
        area = read_study_area(self, parameters, context, crs, feedback)
        grid = grid or build_grid(self, parameters, context, crs, area.bounds if area is not None else features.bounds)
        check_memory(memory_bytes(features, grid, radius, kernel), f"A {grid.rows} × {grid.cols} grid",
                     "Use a larger pixel size (PIXEL_SIZE) or a smaller extent (EXTENT)")
        inside = area.mask(grid) if area is not None else None
        feedback.pushInfo(f"Computing the {mode} of {len(geometries)} feature(s) of '{name}' on {grid.rows} × "
                          f"{grid.cols} pixels of {grid.pixel_width:g} × {grid.pixel_height:g} in {crs.authid()}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        options = {"scheduler": scheduler_parameter(self, parameters, context), "progress": progress,
                   "is_cancelled": is_cancelled, "log": feedback.pushInfo}
        tiles = (distance_tiles(features, grid, **options) if kernel is None
                 else density_tiles(features, grid, radius, kernel, **options))
        if inside is not None:
            tiles = ((tile, np.where(inside[tile.slices], values, np.nan)) for tile, values in tiles)
        metadata = {"DEEPPROSPECT_ALGORITHM": self.NAME, "MODE": mode, "WEIGHT_FIELD": weight_field or ""}
        if weight_field:
            metadata["MISSING_VALUE_CODES"] = missing_values.codes_text(self, parameters, context)
        if kernel is not None:
            metadata.update({"RADIUS": f"{radius:g}", "KERNEL": kernel})
        write_tiles(output, grid_profile(grid), [f"{name}_{mode}"], metadata, tiles)
        StyleOnLoad.attach(context, output, "grid.qml", stretch=True, name=f"{name}_{mode}")
        return {self.OUTPUT: output}
