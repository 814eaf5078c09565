"""deepprospect:traininglabels — labelled, spatially split (and augmented) training windows from deposits."""

from __future__ import annotations

import json

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import FAST_INSERT, FIELD_INT, FIELD_STRING, FLAG_ADVANCED, SOURCE_POINT, SOURCE_POLYGON, WKB_POINT
from ..core.bands import RasterBands
from ..core.outputs import check_writable
from ..core.raster_io import band_labels, read_band_names, read_grid_spec
from ..core.sampling.augment import AugmentSettings
from ..core.sampling.blocks import BLOCK_NEGATIVES
from ..core.sampling.labels import (
    LABELLING_MODES,
    SPLIT_METHODS,
    UNAUGMENTED,
    LabelSettings,
    build_training_set,
    polygon_cells,
    read_stack_tags,
    save_training_set,
)
from .base import DOUBLE, INT, DeepProspectAlgorithm
from .parameters import explain, explained, named_enum
from .qgis_io import crs_from_string, feedback_callbacks, grid_from_raster_layer, point_parameter, projected_raster
from .styles import StyleOnLoad
from .vector_io import add_study_area_parameters, read_geometries, read_study_area

# key (lower case = settings field; REPEATS = n_repeats), label, type, default, minimum, advanced
_LABEL_NUMBERS = [
    ("PATCH_SIZE", "Patch size (cells; 1 = element vectors only)", INT, 32, 1, False),
    ("POSITIVE_RADIUS", "Positive radius (map units; 0 = one cell diagonal → 3×3)", DOUBLE, 0.0, 0.0, False),
    ("NEGATIVE_RATIO", "Negatives per positive in every split (barren + random)", DOUBLE, 1.0, 0.0, False),
    ("EXCLUSION_BUFFER", "No negatives within this distance of a deposit (map units)", DOUBLE, 0.0, 0.0, False),
    ("REPEATS", "Negative sets (seeds SEED … SEED+N−1)", INT, 1, 1, False),
    ("SPLIT_DISTANCE", "Group linkage distance or block side (map units; 0 = automatic)", DOUBLE, 0.0, 0.0, False),
    ("VALIDATION_FRACTION", "Validation fraction", DOUBLE, 0.15, 0.0, False),
    ("TEST_FRACTION", "Test fraction", DOUBLE, 0.15, 0.0, False),
    ("SEED", "Random seed", INT, 42, 0, False),
]
_BLOCK_NUMBERS = [
    ("BLOCK_SIZE", "Block size (cells; block labels)", INT, 32, 1, False),
    ("BLOCK_STRIDE", "Block stride (cells; 0 = the block size, blocks side by side)", INT, 0, 0, False),
]
_AUGMENT_NUMBERS = [
    ("POSITIVE_CROPS", "Crops per training positive (he2024: N=50; 0 = none)", INT, 0, 0, True),
    ("POSITIVE_SHIFT_X", "Positive crop shift in x, ± cells (he2024: a=12)", INT, 12, 0, True),
    ("POSITIVE_SHIFT_Y", "Positive crop shift in y, ± cells (he2024: b=24)", INT, 24, 0, True),
    ("NEGATIVE_CROPS", "Crops per training negative (he2024: N=10; 0 = none)", INT, 0, 0, True),
    ("NEGATIVE_SHIFT_X", "Negative crop shift in x, ± cells (he2024: a=32)", INT, 32, 0, True),
    ("NEGATIVE_SHIFT_Y", "Negative crop shift in y, ± cells (he2024: b=64)", INT, 64, 0, True),
    ("NOISE_VARIANCE", "Gaussian-noise copy, variance (gao2023: 0.01; 0 = none)", DOUBLE, 0.0, 0.0, True),
]


class TrainingLabels(DeepProspectAlgorithm):
    """Sample positives, negatives and their windows from an evidence stack, split spatially, augment."""

    STACK, DEPOSITS, BARREN = "STACK", "DEPOSITS", "BARREN"
    SPLIT_METHOD, FLIPS, SMOTE, OUTPUT, SAMPLES = "SPLIT_METHOD", "FLIPS", "SMOTE", "OUTPUT", "SAMPLES"
    LABELLING, BLOCK_NEGATIVES, BARREN_AREAS = "LABELLING", "BLOCK_NEGATIVES", "BARREN_AREAS"

    NAME = "traininglabels"
    DISPLAY_NAME = "Training samples from deposits"
    GROUP = "trainingdata"
    TAGS = (
        "training data", "labels", "deposits", "occurrences", "barren holes", "negatives", "spatial split",
        "augmentation", "SMOTE", "blocks", "block labels",
    )
    MEMORY_HINT = "Use a smaller patch size (PATCH_SIZE) or fewer negatives (NEGATIVE_RATIO)"
    HELP = (
        "Builds a training set (.npz) of windows (n, bands, p, p) and element vectors (n, bands) from an evidence "
        "stack, plus a point layer of the unaugmented sample centres (fields label, split, kind, repeat).<br>"
        "<b>Positives</b> (zhang2021): cells whose centre lies within the positive radius of a deposit's cell "
        "centre (Euclidean); the default radius, one cell diagonal, gives the 3×3 block. <b>Negatives</b>, per "
        "split: barren points plus random cells up to <i>ratio</i> × the split's positives, so train, validation "
        "and test each keep the ratio; random cells come from the split's own region, outside the exclusion "
        "buffer, drawn again for each negative set with seeds SEED…SEED+N−1; a split that would hold positives "
        "but no negative stops the run. Cells outside the study area (holes subtracted: features whose hole "
        "field is TRUE/1/yes) are never sampled. <b>Windows</b> are padded: cells "
        "outside the grid or on nodata read 0.0 (the mean of a z-scored band; prediction pads the same way), so "
        "deposits at the edge keep their windows.<br><b>Spatial split</b> before augmentation: deposit groups "
        "(single linkage at the split distance; default: windows of different groups cannot overlap) or square "
        "blocks. When the deposits form fewer groups than splits (few, clustered deposits) the split falls back: "
        "deposits are regrouped only as far apart as keeps their windows from overlapping (held-out scores are "
        "then more optimistic); if still too few, the validation split is dropped (training then runs every "
        "epoch), then the test split. The log and the manifest say what was done. No validation/test window "
        "overlaps a training window: overlapping barren points are dropped, overlapping positives stop the "
        "run.<br><b>Block labels</b> (labelling = blocks; gao2022, he2024): the grid is cut into blocks of the "
        "block size every block stride cells; a block holding a deposit is positive; negatives are every other "
        "block (all) or only blocks verified barren (barren, he2024: holding a barren point or wholly inside the "
        "barren areas); the rest are unknown and never trained on. A block whose centre cell is on nodata or "
        "outside the study area is not used. Each block's window is the patch-size window centred on the block, "
        "never resized (one window cell = one stack cell, as prediction reads): the block itself when the patch "
        "size equals the block size (gao2022: 256), its central part when smaller (he2024 trimmed blocks "
        "centrally to 32×32). The element vector is the block's centre cell. Counts of positive, negative, "
        "unknown, unusable and dropped blocks are in the manifest.<br><b>Augmentation</b> of the training split: "
        "crop shifts (he2024: N crops moved up to ±a cells in x and ±b in y), a flipped/rotated copy, a "
        "Gaussian-noise copy (gao2023), SMOTE to balance the classes (gao2023). Everything is seeded and listed "
        "in the manifest inside the .npz; repeat = −1 marks samples shared by every negative set (positives, "
        "barren points, blocks)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        point = [SOURCE_POINT]
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack"))
        self.addParameter(QgsProcessingParameterFeatureSource(self.DEPOSITS, "Deposits", point))
        self.addParameter(QgsProcessingParameterFeatureSource(self.BARREN, "Barren points", point, optional=True))
        add_study_area_parameters(self, "Study area")
        self.add_numbers(_LABEL_NUMBERS[:5])
        self.addParameter(explained(named_enum(self.SPLIT_METHOD, "Spatial split by", SPLIT_METHODS),
                                    "groups = deposit groups (linked within the linkage distance); blocks = square "
                                    "spatial blocks."))
        self.add_numbers(_LABEL_NUMBERS[5:])
        self.addParameter(explained(named_enum(self.LABELLING, "Labelling", LABELLING_MODES),
                                    "cells = deposit cells and their neighbours (positive radius) against barren and "
                                    "random cells (zhang2021); blocks = the grid cut into blocks, a block holding a "
                                    "deposit is positive (gao2022, he2024)."))
        self.add_numbers(_BLOCK_NUMBERS)
        self.addParameter(explained(named_enum(self.BLOCK_NEGATIVES, "Block negatives", BLOCK_NEGATIVES),
                                    "Block labels only. all = every block without a deposit (gao2022); barren = only "
                                    "blocks holding a barren point or wholly inside the barren areas, the rest "
                                    "unknown and never trained on (he2024)."))
        self.addParameter(explained(QgsProcessingParameterFeatureSource(
            self.BARREN_AREAS, "Barren areas (block labels)", [SOURCE_POLYGON], optional=True),
            "Polygons verified barren (drilling, trenching): with barren block negatives, a block whose every cell "
            "of valid data lies inside them is a negative."))
        self.add_numbers(_AUGMENT_NUMBERS[:6])
        for key, label in ((self.FLIPS, "Add a flipped/rotated copy of each training window"),
                           (self.SMOTE, "SMOTE: balance the training classes")):
            parameter = QgsProcessingParameterBoolean(key, label, False)
            parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
            self.addParameter(parameter)
        self.add_numbers(_AUGMENT_NUMBERS[6:])
        explain(self, {
            "BLOCK_SIZE": "Side of the label blocks in cells (block labels only; gao2022: 256 cells).",
            "BLOCK_STRIDE": "Step between block starts in cells (block labels only); smaller than the block size "
                            "gives overlapping blocks, 0 = the block size.",
            **{f"{kind.upper()}_CROPS": f"Shifted copies of each training {kind} window (he2024 crops); validation "
                                        "and test windows are never augmented." for kind in ("positive", "negative")},
            **{f"{kind.upper()}_SHIFT_{axis}": f"Largest random shift of a {kind} crop along {axis.lower()}, in cells."
               for kind in ("positive", "negative") for axis in "XY"},
            self.FLIPS: "Adds one flipped or rotated copy of each training window.",
            self.SMOTE: "Adds synthetic samples (SMOTE) to the training split until deposits and negatives balance.",
            "NOISE_VARIANCE": "Adds a copy of each training sample with Gaussian noise of this variance (gao2023).",
        })
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Training set", "DeepProspect training set (*.npz)"))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.SAMPLES, "Sample centres (unaugmented)", SOURCE_POINT))


    def compute(self, parameters, context, feedback):
        layer = projected_raster(self, parameters, self.STACK, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        check_writable(output)
        numbers = self.read_numbers(_LABEL_NUMBERS, parameters, context)
        settings = LabelSettings(split_method=self.parameterAsEnumString(parameters, self.SPLIT_METHOD, context),
                                 n_repeats=numbers.pop("repeats"), **numbers,
                                 labelling=self.parameterAsEnumString(parameters, self.LABELLING, context),
                                 block_negatives=self.parameterAsEnumString(parameters, self.BLOCK_NEGATIVES, context),
                                 **self.read_numbers(_BLOCK_NUMBERS, parameters, context))
        augment = AugmentSettings(flips=self.parameterAsBool(parameters, self.FLIPS, context),
                                  smote=self.parameterAsBool(parameters, self.SMOTE, context),
                                  **self.read_numbers(_AUGMENT_NUMBERS, parameters, context))
        grid = grid_from_raster_layer(layer)
        crs = crs_from_string(grid.crs)
        deposits = point_parameter(self, parameters, self.DEPOSITS, "deposit", crs, context, feedback, required=True)
        barren = point_parameter(self, parameters, self.BARREN, "barren", crs, context, feedback)
        area = read_study_area(self, parameters, context, crs, feedback)
        mask = area.mask(grid) if area is not None else None
        barren_area = self._barren_areas(parameters, context, crs, feedback, grid)
        grid, names = read_grid_spec(layer.source()), band_labels(layer.source(), read_band_names(layer.source()))
        feedback.pushInfo(f"Stack: {len(names)} band(s) {', '.join(names)} on {grid.rows} × {grid.cols} cells.")
        progress, is_cancelled = feedback_callbacks(feedback)
        with RasterBands(layer.source()) as stack:  # read window by window, only around the samples
            result = build_training_set(stack, grid, names, deposits, barren, mask, settings, augment,
                                        read_stack_tags(layer.source()), progress, is_cancelled,
                                        barren_area=barren_area)
        for note in result.manifest["notes"]:
            feedback.pushWarning(note)
        feedback.pushInfo(f"Counts: {json.dumps(result.manifest['counts'])}")
        save_training_set(output, result)
        samples = self._write_samples(parameters, context, crs, result)
        StyleOnLoad.attach(context, samples, "training_samples.qml", name="Training samples")
        return {self.OUTPUT: output, self.SAMPLES: samples}

    def _barren_areas(self, parameters, context, crs, feedback, grid) -> np.ndarray | None:
        """Cells whose centre lies in a BARREN_AREAS polygon (None when the layer is not given or empty)."""
        source = self.parameterAsSource(parameters, self.BARREN_AREAS, context)
        if source is None:
            return None
        polygons, _ = read_geometries(source, None, crs, context, feedback, "the barren areas")
        mask = polygon_cells(polygons, grid)
        if not mask.any():
            feedback.pushWarning("The barren areas cover no cell centre of the stack; no block is barren by area.")
        return mask

    def _write_samples(self, parameters, context, crs, result):
        fields = QgsFields()
        for name, kind in (("label", FIELD_INT), ("split", FIELD_STRING), ("kind", FIELD_STRING),
                           ("repeat", FIELD_INT)):
            fields.append(QgsField(name, kind))
        sink, sink_id = self.parameterAsSink(parameters, self.SAMPLES, context, fields, WKB_POINT, crs)
        if sink is None:
            return None
        for i in np.flatnonzero(np.isin(result.kind, UNAUGMENTED)):
            feature = QgsFeature(fields)
            feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*map(float, result.centre_xy[i]))))
            feature.setAttributes([int(result.y[i]), str(result.split[i]), str(result.kind[i]), int(result.repeat[i])])
            sink.addFeature(feature, FAST_INSERT)
        return sink_id
