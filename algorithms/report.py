"""deepprospect:report — one HTML report of a study: maps, models compared, evaluation, classes, targets."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER, SOURCE_FILE, SOURCE_RASTER
from ..core.errors import InputError
from ..core.mapping.anomaly import parse_class_limits
from ..core.outputs import check_writable
from ..core.raster_io import read_grid_spec
from ..core.sampling.labels import read_training_manifest
from ..core.scoring.cv_report import read_cv_summary
from ..core.scoring.report import ReportInputs, write_report
from ..models.onnx_io import read_card
from .base import DeepProspectAlgorithm
from .deposit_sets import DepositSets
from .qgis_io import crs_from_string, feedback_callbacks
from .threshold import ProbabilityThreshold


class Report(ProbabilityThreshold, DepositSets, DeepProspectAlgorithm):
    """Gather a study's maps, model files and training set into one self-contained HTML report."""

    MAP, UNCERTAINTY, MAPS, MODELS, TRAINING_SET = "MAP", "UNCERTAINTY", "MAPS", "MODELS", "TRAINING_SET"
    CLASS_LIMITS, TARGET_CLASSES, MIN_TARGET_AREA = "CLASS_LIMITS", "TARGET_CLASSES", "MIN_TARGET_AREA"
    TITLE, OUTPUT, SPATIAL_CV = "TITLE", "OUTPUT", "SPATIAL_CV"
    HELD_OUT_AUC, PREDICTION_RATE_AUC, TARGETS = "HELD_OUT_AUC", "PREDICTION_RATE_AUC", "TARGETS"

    NAME = "report"
    DISPLAY_NAME = "Prospectivity report"
    GROUP = "maps"
    TAGS = (
        "report", "HTML", "summary", "study", "provenance", "model cards",
    )
    HELP = (
        "Writes one self-contained HTML report of a prospectivity study (open it in a browser; images are "
        "embedded):<br>"
        "• <b>the headline</b>: spatial cross-validation scores when the score table of 'Spatial "
        "cross-validation' is given (the figures that say what to expect in unexplored ground), then the final "
        "map's scores on the held-out deposits;<br>"
        "• <b>maps</b>: the final (ensemble) map with the ranked targets, its anomaly classes and its uncertainty, "
        "with training and held-out deposits;<br>"
        "• <b>models compared</b>: the final map and every member map (deep models and classical baselines) scored "
        "on the same deposits — held-out ROC AUC, prediction-rate and success-rate AUC, P-A crossing — next to "
        "the validation AUC recorded in each model card;<br>"
        "• <b>evaluation curves</b> of the final map (ROC, success/prediction rate, P-A);<br>"
        "• <b>anomaly classes</b> by cumulative area and the <b>targets</b> table (as 'Anomaly classes and "
        "targets' computes them);<br>"
        "• <b>models and training</b>: per model file, its settings, metrics per split and training curves;<br>"
        "• <b>training data</b> and <b>provenance</b>: the training set's sampling and split, seeds, data hashes "
        "and library versions.<br>"
        "Held-out deposits are given by a split field and its values, or as a second layer. The sample layer of "
        "'Training samples from deposits' works directly: only its deposit cells count, held out by split = test. "
        "For honest held-out scores, give as barren points only those kept out of training."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterRasterLayer(self.MAP, "Final prospectivity map (e.g. the ensemble)"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.UNCERTAINTY, "Uncertainty map", optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.MAPS, "Member maps to compare (deep models, baselines)", SOURCE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.MODELS, "Model files (.onnx)", SOURCE_FILE, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.TRAINING_SET, "Training set", extension="npz", optional=True))
        self.add_deposit_parameters()
        self.addParameter(QgsProcessingParameterFile(
            self.SPATIAL_CV, "Spatial cross-validation scores (CSV of 'Spatial cross-validation')", extension="csv",
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.CLASS_LIMITS, "Anomaly class limits (cumulative % of area)", defaultValue="5,15,30"))
        self.addParameter(QgsProcessingParameterNumber(
            self.TARGET_CLASSES, "Targets from classes 1 … k", NUMBER_INTEGER, 1, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_TARGET_AREA, "Minimum target area (km²)", NUMBER_DOUBLE, 0.0,
            minValue=0.0))
        self.add_threshold("Threshold (0–1) for accuracy, recall, precision and F1")
        self.addParameter(QgsProcessingParameterString(self.TITLE, "Title", defaultValue="Prospectivity report"))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Report", "HTML files (*.html)"))
        for key, label in ((self.HELD_OUT_AUC, "Held-out ROC AUC of the final map"),
                           (self.PREDICTION_RATE_AUC, "Prediction-rate AUC of the final map"),
                           (self.TARGETS, "Number of targets")):
            self.addOutput(QgsProcessingOutputNumber(key, label))

    def compute(self, parameters, context, feedback):
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        check_writable(output)
        layer = self.parameterAsRasterLayer(parameters, self.MAP, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The final map must be a file raster (GeoTIFF) that GDAL can open.")
        crs = crs_from_string(read_grid_spec(layer.source()).crs)
        training, held_out, deposit_lines = self._deposits(parameters, context, crs, feedback)
        barren = self._points(parameters, self.BARREN, context, crs, feedback)
        uncertainty = self.parameterAsRasterLayer(parameters, self.UNCERTAINTY, context)
        members = [member.source() for member in self.parameterAsLayerList(parameters, self.MAPS, context)]
        cards = []
        for path in filter(None, self.parameterAsFileList(parameters, self.MODELS, context)):
            card = read_card(path)
            card.setdefault("model_file", os.path.basename(path))
            cards.append(card)
        training_set = self.parameterAsFile(parameters, self.TRAINING_SET, context)
        cv_table = self.parameterAsFile(parameters, self.SPATIAL_CV, context)
        inputs = ReportInputs(
            ensemble_path=layer.source(), training_xy=training, held_out_xy=held_out,
            barren_xy=None if barren is None else barren[0],
            uncertainty_path=uncertainty.source() if uncertainty is not None else None, member_paths=members,
            cards=cards, training_manifest=read_training_manifest(training_set) if training_set else None,
            class_limits=parse_class_limits(self.parameterAsString(parameters, self.CLASS_LIMITS, context)),
            target_classes=self.parameterAsInt(parameters, self.TARGET_CLASSES, context),
            min_target_area_km2=self.parameterAsDouble(parameters, self.MIN_TARGET_AREA, context),
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
            title=self.parameterAsString(parameters, self.TITLE, context) or "Prospectivity report",
            spatial_cv=read_cv_summary(cv_table) if cv_table else (),
            parameters=[("final map", layer.source()), *deposit_lines,
                        ("member maps", ", ".join(members) or "none"),
                        ("barren points", "none" if barren is None else f"{barren[1]}: {len(barren[0])} point(s)")])
        progress, is_cancelled = feedback_callbacks(feedback)
        summary = write_report(output, inputs, progress=progress, is_cancelled=is_cancelled)
        for note in summary.notes:
            feedback.pushWarning(note)
        feedback.pushInfo(f"Report: {output}")
        return {self.OUTPUT: output, self.HELD_OUT_AUC: summary.held_out_auc,
                self.PREDICTION_RATE_AUC: summary.prediction_rate_auc, self.TARGETS: summary.targets}
