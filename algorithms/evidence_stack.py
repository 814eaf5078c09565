"""deepprospect:evidencestack — align rasters to one grid, transform, normalise, write one named multi-band stack."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import NUMBER_DOUBLE, SOURCE_RASTER
from ..core.errors import InputError
from ..core.evidence.stack import (
    DEFAULT_MIN_CLASS_SHARE,
    NORMALISATIONS,
    TRANSFORMS,
    StackInput,
    build_evidence_stack_file,
    read_stack_recipe,
)
from ..core.outputs import check_writable
from .base import DeepProspectAlgorithm
from .parameters import add_scheduler_parameter, explained, named_enum, scheduler_parameter
from .qgis_io import feedback_callbacks, grid_from_raster_layer, require_projected
from .styles import StyleOnLoad
from .vector_io import add_study_area_parameters, read_study_area


class EvidenceStack(DeepProspectAlgorithm):
    """Evidence rasters → one aligned, named, optionally log-ratio transformed and normalised GeoTIFF."""

    INPUTS, CATEGORICAL, TEMPLATE, TRANSFORM = "INPUTS", "CATEGORICAL", "TEMPLATE", "TRANSFORM"
    TRANSFORM_BANDS, NORMALISE, RECIPE_FROM, OUTPUT = "TRANSFORM_BANDS", "NORMALISE", "RECIPE_FROM", "OUTPUT"
    MIN_CLASS_SHARE = "MIN_CLASS_SHARE"

    NAME = "evidencestack"
    DISPLAY_NAME = "Build evidence stack"
    GROUP = "evidence"
    TAGS = (
        "evidence", "stack", "z-score", "normalisation", "log-ratio", "clr", "ilr", "lithology", "geological map",
        "indicator",
    )
    HELP = (
        "Stacks evidence rasters (element grids, distance and density maps, geology classes; single- or "
        "multi-band) into one multi-band GeoTIFF on one grid, ready for screening, training and prediction.<br><br>"
        "<b>Grid</b>: the template raster's CRS, transform and size (default: the first input's). Inputs are "
        "warped onto it — bilinear for continuous rasters, nearest neighbour for <i>categorical</i> ones (class "
        "values are kept). Categorical rasters may be listed in both lists or only in the categorical one. Inputs "
        "in another CRS are reprojected (logged).<br>"
        "<b>Band names</b>: the band descriptions; a band without one is named &lt;layer&gt;_b&lt;n&gt; and a "
        "repeated name gets _2, _3 … (both logged). A cell that is nodata in any band is nodata in every band.<br>"
        "<b>Study area</b> (optional polygons; holes and features whose hole field is TRUE are subtracted): cells "
        "whose centre lies outside are nodata, and every statistic and class share below is taken over the cells "
        "inside only.<br>"
        "<b>Categorical rasters</b> (geological units, class codes) become <i>indicator bands</i> of 0/1: one band "
        "&lt;name&gt;_&lt;class&gt; per class covering at least the <i>minimum class share</i> of the valid cells "
        "(default 0.02 = 2 %), plus one band &lt;name&gt;_other for the rarer classes when there are any (shares "
        "logged). Indicator bands are never transformed or normalised; nodata stays nodata.<br>"
        "<b>Transform</b> of the <i>transform bands</i> (comma-separated names, in the order given; default: every "
        "non-categorical band): log10 (bands log10_&lt;name&gt;), clr (clr_&lt;name&gt;) or ilr in pivot "
        "coordinates (D bands → ilr1 … ilr&lt;D−1&gt;; ilr1 contrasts the first band with all others), for "
        "compositional element data (zhang2021 ilr-transformed 39 elements; Egozcue et al. 2003). Values ≤ 0 are "
        "replaced by 0.65 × the band's smallest positive value (logged). The transformed bands take the place of "
        "the first transform band.<br>"
        "<b>Normalise</b> the continuous bands by z-score or min-max, statistics over the common valid cells "
        "(indicator bands stay 0/1).<br>"
        "<b>Output</b>: the transform, the class lists and the statistics are recorded as JSON in the metadata tag "
        "DEEPPROSPECT_STACK, so training and prediction re-apply exactly them. The statistics are gathered in a "
        "first pass and the float32 stack is written in a second, window by window, so a grid larger than memory "
        "can be stacked.<br>"
        "<b>Re-apply the recipe of a stack</b>: to map a new area (or new data) with a model trained on another "
        "stack, give that stack here: its transform, class lists and statistics are applied to the new inputs (the "
        "transform, normalisation and minimum class share above are then ignored), so the model sees the same "
        "bands and the same kind of values: a class that did not occur in the recipe's stack goes to "
        "&lt;name&gt;_other (logged), a class of the recipe absent here gives an all-zero band."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUTS, "Evidence rasters", SOURCE_RASTER))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.CATEGORICAL, "Categorical rasters (class values; resampled by nearest neighbour)",
            SOURCE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.TEMPLATE, "Template raster (output grid; default: the first evidence raster)", optional=True))
        self.addParameter(explained(named_enum(self.TRANSFORM, "Transform", TRANSFORMS),
                                    "none; log10 of each transform band; clr or ilr: log-ratios over the transform "
                                    "bands, for compositional data (zhang2021)."))
        self.addParameter(QgsProcessingParameterString(
            self.TRANSFORM_BANDS, "Transform bands (comma-separated band names; default: all non-categorical)",
            optional=True))
        self.addParameter(explained(named_enum(self.NORMALISE, "Normalisation", NORMALISATIONS, "z-score"),
                                    "none; z-score: mean 0 and standard deviation 1 per band (what the networks "
                                    "expect); min-max: 0 to 1 per band."))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_CLASS_SHARE, "Minimum class share for an own indicator band (0–1; rarer classes: <name>_other)",
            NUMBER_DOUBLE, defaultValue=DEFAULT_MIN_CLASS_SHARE, minValue=0.0, maxValue=1.0))
        add_study_area_parameters(self, "Study area (cells outside are nodata and out of every statistic; optional)")
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.RECIPE_FROM, "Re-apply the recipe of this stack (e.g. the training stack; optional)",
            optional=True))
        add_scheduler_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Evidence stack"))

    def compute(self, parameters, context, feedback):
        inputs = self._stack_inputs(parameters, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        check_writable(output)
        template = self.parameterAsRasterLayer(parameters, self.TEMPLATE, context) or inputs[0][0]
        require_projected(template.crs(), f"The template raster '{template.name()}'", template.crs(),
                          template.extent())
        grid = grid_from_raster_layer(template)
        area = read_study_area(self, parameters, context, template.crs(), feedback)
        bands = [name.strip() for name in self.parameterAsString(parameters, self.TRANSFORM_BANDS, context).split(",")]
        transform = self.parameterAsEnumString(parameters, self.TRANSFORM, context)
        normalise = self.parameterAsEnumString(parameters, self.NORMALISE, context)
        recipe_layer = self.parameterAsRasterLayer(parameters, self.RECIPE_FROM, context)
        recipe = read_stack_recipe(recipe_layer.source()) if recipe_layer is not None else None
        how = (f"recipe of '{recipe_layer.name()}' re-applied" if recipe is not None
               else f"transform {transform}, normalisation {normalise}")
        feedback.pushInfo(f"Stacking {len(inputs)} raster(s) onto {grid.rows} × {grid.cols} pixels of "
                          f"{grid.pixel_width:g} × {grid.pixel_height:g} ({template.crs().authid()}); {how}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        names, _ = build_evidence_stack_file(
            output, [item for _, item in inputs], grid, transform=transform, transform_bands=[b for b in bands if b],
            normalise=normalise, min_class_share=self.parameterAsDouble(parameters, self.MIN_CLASS_SHARE, context),
            study_area=area.mask(grid) if area is not None else None, recipe=recipe,
            scheduler=scheduler_parameter(self, parameters, context), log=feedback.pushInfo,
            progress=progress, is_cancelled=is_cancelled)
        feedback.pushInfo(f"Bands: {', '.join(names)}.")
        StyleOnLoad.attach(context, output, "grid.qml", stretch=True)
        return {self.OUTPUT: output}

    def _stack_inputs(self, parameters, context) -> list:
        """(layer, StackInput) pairs: the evidence rasters, then categorical rasters not already listed."""
        layers = self.parameterAsLayerList(parameters, self.INPUTS, context)
        categorical = self.parameterAsLayerList(parameters, self.CATEGORICAL, context)
        categorical_sources = {layer.source() for layer in categorical}
        listed = {layer.source() for layer in layers}
        pairs = []
        for layer in layers + [layer for layer in categorical if layer.source() not in listed]:
            if layer.providerType() != "gdal":
                raise InputError(f"The raster '{layer.name()}' must be a file (GDAL) raster, not "
                                 f"{layer.providerType()}; save it as a GeoTIFF first.")
            pairs.append((layer, StackInput(layer.source(), layer.name(), layer.source() in categorical_sources)))
        if not pairs:
            raise InputError("No input rasters: give at least one evidence raster to stack.")
        return pairs
