"""deepprospect:elementscreening — Z_AUC screening of the bands of an evidence stack against deposits."""

from __future__ import annotations

from contextlib import ExitStack

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import (
    FAST_INSERT,
    FIELD_BOOL,
    FIELD_DOUBLE,
    FIELD_INT,
    FIELD_STRING,
    NUMBER_DOUBLE,
    SOURCE_POINT,
    SOURCE_VECTOR,
    WKB_NO_GEOMETRY,
)
from ..core.bands import RasterBands
from ..core.evidence.screening import (
    DEFAULT_CRITICAL_VALUE,
    ScreeningSettings,
    plot_z_scores,
    screen_bands,
    selected_stack_tags,
)
from ..core.outputs import atomic_path, check_writable
from ..core.raster_io import band_labels, read_band_names, read_grid_spec, write_band_subset
from .base import DeepProspectAlgorithm
from .parameters import explained
from .qgis_io import feedback_callbacks, point_parameter, projected_raster
from .styles import StyleOnLoad

COLUMNS = [("band", FIELD_STRING), ("svm_auc", FIELD_DOUBLE), ("roc_auc", FIELD_DOUBLE),
           ("s_auc", FIELD_DOUBLE), ("z", FIELD_DOUBLE), ("p_value", FIELD_DOUBLE),
           ("selected", FIELD_BOOL), ("direction", FIELD_STRING), ("n_deposit", FIELD_INT),
           ("n_background", FIELD_INT)]


class ElementScreening(DeepProspectAlgorithm):
    """Keep the bands whose one-feature SVM separates deposit cells from background (Z_AUC > critical value)."""

    STACK, DEPOSITS, BARREN, CRITICAL_VALUE = "STACK", "DEPOSITS", "BARREN", "CRITICAL_VALUE"
    NEGATIVE_RATIO, EXCLUSION_BUFFER, FOLDS, SEED = "NEGATIVE_RATIO", "EXCLUSION_BUFFER", "FOLDS", "SEED"
    OUTPUT, SELECTED_STACK, CHART = "OUTPUT", "SELECTED_STACK", "CHART"
    SELECTED_COUNT, SELECTED_BANDS = "SELECTED_COUNT", "SELECTED_BANDS"

    NAME = "elementscreening"
    DISPLAY_NAME = "Element screening (Z_AUC)"
    GROUP = "trainingdata"
    TAGS = (
        "screening", "pathfinder elements", "feature selection", "Z_AUC", "AUC", "geochemistry", "significance",
    )
    HELP = (
        "Tests every band of an evidence stack (or of element grids) for a significant association with known "
        "deposits and keeps the significant ones, as gao2022 and gao2023 do before training.<br><br>"
        "<b>Cells</b>: positives are the stack cells holding deposits (one per cell; deposits outside the stack "
        "or on nodata are reported and skipped). Negatives are the cells of the optional barren points plus "
        "<i>background ratio</i> × (deposit cells) random cells (seeded) that have data, are not deposit or "
        "barren cells and lie farther than the <i>exclusion distance</i> (stack CRS units) from every deposit "
        "cell; with the defaults, 30 deposits give 300 random background cells anywhere off the deposits.<br>"
        "<b>SVM AUC</b>: for each band an RBF support vector machine (C = 1, balanced class weights) on the one "
        "standardised value; its AUC comes from decision values of cells left out of training in a seeded "
        "stratified k-fold cross-validation, so a flexible boundary cannot score its own training cells.<br>"
        "<b>Z_AUC</b>: Q1 = AUC/(2−AUC), Q2 = 2AUC²/(1+AUC), S_AUC = √([AUC(1−AUC) + (n_a−1)(Q1−AUC²) + "
        "(n_n−1)(Q2−AUC²)]/(n_a·n_n)), Z = (AUC−0.5)/S_AUC; a band is selected when Z > the critical value "
        "(2.58 in the papers). The p-value is one-sided (normal distribution).<br>"
        "<b>Direction</b>: from the plain ROC AUC of the raw values: <i>high</i> when larger values are more "
        "prospective, <i>low</i> when smaller are (e.g. distance to faults); roc_auc is given in that "
        "direction.<br><b>Outputs</b>: a table (band, svm_auc, roc_auc, s_auc, z, p_value, selected, direction, "
        "n_deposit, n_background), optionally a GeoTIFF of the selected bands only (same grid, band names and "
        "tags kept; not written when no band is selected) and a bar chart (PNG) of Z per band."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack (multi-band raster)"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.DEPOSITS, "Deposit points", [SOURCE_POINT]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BARREN, "Barren points (drilled, no deposit)", [SOURCE_POINT], optional=True))
        self.addParameter(explained(QgsProcessingParameterNumber(
            self.CRITICAL_VALUE, "Critical value of Z_AUC", NUMBER_DOUBLE,
            defaultValue=DEFAULT_CRITICAL_VALUE),
            "A band is kept when its Z_AUC exceeds this: 2.58 is p < 0.01 (two-sided), 1.96 p < 0.05."))
        self.addParameter(QgsProcessingParameterNumber(
            self.NEGATIVE_RATIO, "Random background cells per deposit cell", NUMBER_DOUBLE,
            defaultValue=ScreeningSettings.background_ratio, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.EXCLUSION_BUFFER, "No background cells within this distance of a deposit (stack CRS units)",
            NUMBER_DOUBLE, defaultValue=ScreeningSettings.exclusion_distance, minValue=0.0))
        self.addParameter(explained(QgsProcessingParameterNumber(
            self.FOLDS, "Cross-validation folds", defaultValue=ScreeningSettings.folds, minValue=2),
            "Folds of the cross-validated one-band SVM AUC."))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Random seed", defaultValue=ScreeningSettings.seed, minValue=0))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "Screening table", SOURCE_VECTOR))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.SELECTED_STACK, "Stack of the selected bands", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.CHART, "Z_AUC bar chart", "PNG files (*.png)", optional=True))
        self.addOutput(QgsProcessingOutputNumber(self.SELECTED_COUNT, "Number of selected bands"))
        self.addOutput(QgsProcessingOutputString(self.SELECTED_BANDS, "Selected bands (comma-separated)"))

    def compute(self, parameters, context, feedback):
        layer = projected_raster(self, parameters, self.STACK, context)
        grid = read_grid_spec(layer.source())
        settings = ScreeningSettings(
            critical_value=self.parameterAsDouble(parameters, self.CRITICAL_VALUE, context),
            background_ratio=self.parameterAsDouble(parameters, self.NEGATIVE_RATIO, context),
            exclusion_distance=self.parameterAsDouble(parameters, self.EXCLUSION_BUFFER, context),
            folds=self.parameterAsInt(parameters, self.FOLDS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context))
        stack_path = self.parameterAsOutputLayer(parameters, self.SELECTED_STACK, context)
        chart_path = self.parameterAsFileOutput(parameters, self.CHART, context)
        for path in filter(None, (stack_path, chart_path)):
            check_writable(path)
        deposit_xy = point_parameter(self, parameters, self.DEPOSITS, "deposit", layer.crs(), context, feedback,
                                     required=True)
        barren_xy = point_parameter(self, parameters, self.BARREN, "barren point", layer.crs(), context, feedback)
        descriptions = read_band_names(layer.source())
        names = band_labels(layer.source(), descriptions)
        unnamed = [i + 1 for i, name in enumerate(descriptions) if not name]
        if unnamed:
            feedback.pushInfo(f"Band(s) {', '.join(map(str, unnamed))} have no name; they are called "
                              f"{', '.join(names[i - 1] for i in unnamed)}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        with RasterBands(layer.source()) as stack:  # read window by window: only the scored cells are kept
            result = screen_bands(stack, grid, deposit_xy, names, barren_xy, settings,
                                  progress=lambda p: progress(15 + 0.8 * p), is_cancelled=is_cancelled)
        for note in result.notes:
            feedback.pushWarning(note)
        selected = [names[i] for i in result.selected]
        feedback.pushInfo(f"{len(result.deposit_cells)} deposit cell(s) against {len(result.background_cells)} "
                          f"background cell(s) ({result.n_barren_cells} barren); {len(selected)} of {len(names)} "
                          f"band(s) have Z > {settings.critical_value:g}: {', '.join(selected) or 'none'}.")
        if stack_path and not selected:
            feedback.pushWarning("No band is selected, so no stack of selected bands was written.")
            stack_path = None
        with ExitStack() as outputs:
            if stack_path:
                tags, band_tags = selected_stack_tags(result, settings)
                write_band_subset(layer.source(), outputs.enter_context(atomic_path(stack_path)), result.selected,
                                  metadata=tags, band_metadata=band_tags, band_names=selected)
            if chart_path:
                plot_z_scores(result, outputs.enter_context(atomic_path(chart_path)), settings.critical_value)
        dest_id = self._table(parameters, context, result)
        StyleOnLoad.attach(context, stack_path, "grid.qml", stretch=True,
                           name=f"Selected evidence ({len(selected)} bands)")
        return {self.OUTPUT: dest_id, self.SELECTED_STACK: stack_path or None, self.CHART: chart_path or None,
                self.SELECTED_COUNT: len(selected), self.SELECTED_BANDS: ",".join(selected)}

    def _table(self, parameters, context, result):
        fields = QgsFields()
        for name, kind in COLUMNS:
            fields.append(QgsField(name, kind))
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, WKB_NO_GEOMETRY,
                                             QgsCoordinateReferenceSystem())
        for score in result.scores:
            feature = QgsFeature(fields)
            feature.setAttributes([None if isinstance(v, float) and v != v else v
                                   for v in (getattr(score, name) for name, _ in COLUMNS)])
            sink.addFeature(feature, FAST_INSERT)
        return dest_id
