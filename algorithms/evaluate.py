"""deepprospect:evaluate — ROC, success/prediction-rate and P-A evaluation of a prospectivity map, HTML report."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import FAST_INSERT, FIELD_DOUBLE, FIELD_STRING, SOURCE_VECTOR, WKB_NO_GEOMETRY
from ..core.errors import InputError
from ..core.mapping.maps import check_probability_map
from ..core.mapping.streaming import raster_map
from ..core.outputs import check_writable
from ..core.progress import check_cancelled
from ..core.scoring.evaluation import (
    ALL,
    HELD_OUT,
    TRAINING,
    confusion_summary,
    evaluate_map,
    map_description,
    metrics_rows,
    write_outputs,
)
from .base import DeepProspectAlgorithm
from .deposit_sets import DepositSets
from .qgis_io import crs_from_string, feedback_callbacks
from .study_area import add_study_area, study_area_cells
from .threshold import ProbabilityThreshold


class Evaluate(ProbabilityThreshold, DepositSets, DeepProspectAlgorithm):
    """Score a prospectivity map against training and held-out deposits; metrics table, plots and a report."""

    MAP = "MAP"
    OUTPUT, REPORT, ROC_PLOT, RATE_PLOT, PA_PLOT = "OUTPUT", "REPORT", "ROC_PLOT", "RATE_PLOT", "PA_PLOT"
    ROC_AUC, SUCCESS_RATE_AUC, PREDICTION_RATE_AUC = "ROC_AUC", "SUCCESS_RATE_AUC", "PREDICTION_RATE_AUC"
    PA_THRESHOLD, PA_DEPOSITS_PERCENT = "PA_THRESHOLD", "PA_DEPOSITS_PERCENT"

    NAME = "evaluate"
    DISPLAY_NAME = "Evaluate prospectivity map"
    GROUP = "maps"
    TAGS = (
        "evaluation", "ROC", "AUC", "success rate", "prediction rate", "prediction-area", "validation", "accuracy",
    )
    HELP = (
        "Measures how well a prospectivity map (one band of probabilities 0–1, in a projected CRS) ranks known "
        "deposits, and writes a self-contained HTML report for the browser.<br><br>"
        "<b>Deposits</b> are training deposits, except the <i>held-out</i> ones: those whose <i>split field</i> "
        "holds one of the <i>held-out values</i> (comma-separated, case-insensitive, e.g. test or "
        "validation,test), or the points of a separate held-out layer. Deposits outside the map or on nodata "
        "are counted in the log and left out. Points in another CRS are reprojected to the map's.<br>"
        "<b>ROC curve and AUC</b>: positives are the cells holding deposits; negatives are the cells of the "
        "barren points when given, otherwise every other cell with data. <b>Accuracy, recall, precision, F1</b> "
        "of probability ≥ <i>threshold</i> on the same cells (with every cell as negatives, precision is low by "
        "nature: deposits are rare), their <b>macro averages</b> over the deposit and negative classes (the "
        "F1 of gao2022, the mean precision / recall / F1 of he2024) and the <b>confusion matrix</b> of cells "
        "(true negatives, false positives, false negatives, true positives).<br>"
        "<b>Success-rate</b> (training deposits) and <b>prediction-rate</b> (held-out deposits) curves: % of "
        "deposits captured against % of the map's area, cells taken from the most prospective down; their "
        "areas under the curve (0.5 = random).<br>"
        "<b>Prediction–area plot</b> (Yousefi &amp; Carranza 2015), all deposits: % of deposits and % of area "
        "with probability ≥ each threshold; where the curves cross (area axis reversed), P % of the deposits "
        "lie in (100 − P) % of the area.<br>"
        "<b>Study area</b> (optional polygons less holes): only cells whose centre lies inside count: as area, "
        "as negatives and for the deposits; deposits and barren points outside are left out and counted in the "
        "log.<br>"
        "<b>Outputs</b>: a metrics table (deposits = training / held-out / all, metric, value; save it as CSV "
        "to read it elsewhere), the PNG plots (optional) and the HTML report with the plots and the confusion "
        "matrices; the log lists the threshold metrics of each deposit set."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Prospectivity map"))
        self.add_deposit_parameters()
        add_study_area(self)
        self.add_threshold("Threshold (0–1) for accuracy, recall, precision, F1 and the confusion matrix")
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, "Metrics", SOURCE_VECTOR))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, "Report", "HTML files (*.html)"))
        for key, label in ((self.ROC_PLOT, "ROC curves"), (self.RATE_PLOT, "Success- and prediction-rate curves"),
                           (self.PA_PLOT, "Prediction–area plot")):
            self.addParameter(QgsProcessingParameterFileDestination(key, label, "PNG files (*.png)", optional=True))
        for key, label in ((self.ROC_AUC, "ROC AUC, all deposits"), (self.SUCCESS_RATE_AUC, "Success-rate AUC"),
                           (self.PREDICTION_RATE_AUC, "Prediction-rate AUC"), (self.PA_THRESHOLD, "P-A threshold"),
                           (self.PA_DEPOSITS_PERCENT, "P-A: % of deposits at the crossing")):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def compute(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.MAP, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The prospectivity map must be a file raster (GeoTIFF) that GDAL can open.")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        plots = {key: self.parameterAsFileOutput(parameters, name, context)
                 for key, name in (("roc", self.ROC_PLOT), ("rate", self.RATE_PLOT), ("prediction_area", self.PA_PLOT))}
        for path in filter(None, [report, *plots.values()]):
            check_writable(path)
        check_probability_map(layer.source(), band=None)
        with raster_map(layer.source()) as source:  # read window by window, never whole
            grid = source.grid
            crs = crs_from_string(grid.crs)
            training, held_out, labels = self._deposits(parameters, context, crs, feedback)
            barren = self._points(parameters, self.BARREN, context, crs, feedback)
            study_area = study_area_cells(self, parameters, layer.source(), context, feedback)
            threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
            progress, is_cancelled = feedback_callbacks(feedback)
            evaluation = evaluate_map(source, grid, training, held_out, None if barren is None else barren[0],
                                      threshold, study_area=study_area, progress=lambda p: progress(10 + 0.7 * p),
                                      is_cancelled=is_cancelled)
        for note in evaluation.notes:
            feedback.pushWarning(note)
        for result in evaluation.sets:
            feedback.pushInfo(f"At probability ≥ {threshold:g}, {confusion_summary(result)}.")
        inputs = [("map", layer.source()), ("band", source.band_name),
                  ("grid", f"{grid.rows} × {grid.cols} cells of {grid.pixel_width:g} × {grid.pixel_height:g} "
                           f"({layer.crs().authid() or layer.crs().description()}); {evaluation.valid_cells} with "
                           "data"),
                  *map_description(source.tags), *labels,
                  ("barren points", "none" if barren is None else f"{barren[1]}: {len(barren[0])} point(s)"),
                  ("study area", "none" if study_area is None else f"{int(study_area.sum())} cells inside"),
                  ("threshold", f"{threshold:g}")]
        check_cancelled(is_cancelled)
        write_outputs(evaluation, inputs, report, plots)
        table = self._write_table(parameters, context, evaluation)
        return self._results(evaluation, table, report, plots)

    def _write_table(self, parameters, context, evaluation) -> str:
        fields = QgsFields()
        for name, kind in (("deposits", FIELD_STRING), ("metric", FIELD_STRING), ("value", FIELD_DOUBLE)):
            fields.append(QgsField(name, kind))
        sink, table = self.parameterAsSink(parameters, self.OUTPUT, context, fields, WKB_NO_GEOMETRY,
                                           QgsCoordinateReferenceSystem())
        for row in metrics_rows(evaluation):
            feature = QgsFeature(fields)
            feature.setAttributes(list(row))
            sink.addFeature(feature, FAST_INSERT)
        return table

    def _results(self, evaluation, table, report, plots) -> dict:
        by_name = {result.name: result for result in evaluation.sets}
        overall = by_name.get(ALL, evaluation.sets[0])
        training = by_name.get(TRAINING)
        held_out = by_name.get(HELD_OUT)
        return {self.OUTPUT: table, self.REPORT: report, self.ROC_PLOT: plots["roc"] or None,
                self.RATE_PLOT: plots["rate"] or None, self.PA_PLOT: plots["prediction_area"] or None,
                self.ROC_AUC: overall.roc.auc, self.SUCCESS_RATE_AUC: training.rate.auc if training else None,
                self.PREDICTION_RATE_AUC: held_out.rate.auc if held_out else None,
                self.PA_THRESHOLD: evaluation.prediction_area.threshold,
                self.PA_DEPOSITS_PERCENT: evaluation.prediction_area.deposit_percent_at}
