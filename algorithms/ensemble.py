"""deepprospect:ensemble — combine prospectivity maps by averaging or voting (he2024), with an uncertainty map."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..compat import SOURCE_RASTER
from ..core.errors import InputError
from ..core.mapping.ensemble import METHODS, WEIGHT_SOURCES, WEIGHTED, card_weights, ensemble_rasters, parse_weights
from ..core.outputs import check_writable
from .base import DeepProspectAlgorithm
from .parameters import explained, name_list, named_enum
from .qgis_io import feedback_callbacks
from .study_area import add_study_area, study_area_cells
from .styles import StyleOnLoad
from .threshold import ProbabilityThreshold

METHOD_LABELS = ["Simple average", "Weighted average", "Majority voting", "Plurality voting", "Weighted voting"]
WEIGHT_LABELS = ["Validation AUC (model card)", "Validation F1 (model card)", "Given weights",
                 "Validation accuracy (model card; he2024)"]


class Ensemble(ProbabilityThreshold, DeepProspectAlgorithm):
    """N prospectivity maps on one grid → ensemble map, uncertainty map and (optionally) the ensemble class."""

    MAPS, METHOD, WEIGHTS, WEIGHT_METRIC = "MAPS", "METHOD", "WEIGHTS", "WEIGHT_METRIC"
    OUTPUT, UNCERTAINTY, CLASSES = "OUTPUT", "UNCERTAINTY", "CLASSES"

    NAME = "ensemble"
    DISPLAY_NAME = "Ensemble prospectivity"
    GROUP = "maps"
    TAGS = (
        "ensemble", "uncertainty", "voting", "averaging", "prospectivity", "model combination",
    )
    HELP = (
        "Combines prospectivity maps of several models (same grid: predict them on the same evidence stack) "
        "into one map with the five rules of he2024, and maps how much the models disagree.<br><br>"
        "<b>Votes</b>: a model votes prospective where its probability ≥ the <i>threshold</i>.<br>"
        "<b>Simple / weighted average</b>: the map is the (weighted) mean probability; uncertainty is the "
        "population (weighted) standard deviation of the models' probabilities.<br>"
        "<b>Majority / plurality / weighted voting</b>: the map is the share of models voting prospective "
        "(weighted by the model weights for weighted voting); uncertainty is the (weighted) share of models "
        "that disagree with the ensemble class: 0 where all agree, at most 0.5. A cell is prospective by "
        "majority voting when more than half of the models vote for it; plurality voting also gives it a tie "
        "(an even number of models split half and half), so the two differ only on ties; weighted voting "
        "needs at least half of the weight.<br>"
        "<b>Weights</b> (weighted rules only): each map's validation AUC, F1 or accuracy from the model card "
        "that prediction writes into the map (tag DEEPPROSPECT_MODEL_CARD), or given as numbers, one per map in "
        "the maps' order (e.g. 0.9, 0.85, 0.7); they are scaled to sum to 1, so with <i>accuracy</i> a map's "
        "weight is its accuracy over the sum of the maps' accuracies: he2024 weights its models by their "
        "accuracy. The card's <b>validation</b> split is used, never its test split: the test deposits are kept "
        "to judge the ensemble afterwards, and weights read from them would let the deposits that score the "
        "ensemble also shape it. (The validation split still chose each model's kept epoch, so it is not "
        "independent either; judge the ensemble on held-out deposits.) A map without a card or without the "
        "metric stops the run with a message naming it. The weights go to the log and into the outputs' "
        "tag.<br>"
        "A cell that is nodata in any map, or whose centre lies outside the optional <i>study area</i> (polygons "
        "less holes), is nodata "
        "in the outputs and is not counted. Maps are processed block by block, so "
        "large rasters need little memory. The optional <i>ensemble class</i> raster holds 1 where the cell "
        "is prospective by the rule (averages: mean ≥ threshold), 0 elsewhere. The outputs record the rule, "
        "maps and weights in the tag DEEPPROSPECT_ENSEMBLE. The map and the uncertainty load with colour ramps."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.MAPS, "Prospectivity maps (two or more, same grid)", SOURCE_RASTER))
        self.addParameter(explained(named_enum(self.METHOD, "Ensemble rule", METHODS),
                                    name_list(list(zip(METHODS, METHOD_LABELS)))))
        self.addParameter(explained(named_enum(self.WEIGHT_METRIC, "Weights from (weighted rules)", WEIGHT_SOURCES),
                                    name_list(list(zip(WEIGHT_SOURCES, WEIGHT_LABELS)))))
        self.addParameter(QgsProcessingParameterString(
            self.WEIGHTS, "Given weights, one per map in order (e.g. 0.9, 0.85, 0.7)", optional=True))
        self.add_threshold("Threshold (0–1): a model votes prospective where probability ≥")
        add_study_area(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Ensemble prospectivity"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.UNCERTAINTY, "Ensemble uncertainty", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CLASSES, "Ensemble class (1 = prospective)", optional=True, createByDefault=False))

    def compute(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, self.MAPS, context)
        for layer in layers:
            if layer.providerType() != "gdal":
                raise InputError(f"The map '{layer.name()}' must be a file (GDAL) raster, not "
                                 f"{layer.providerType()}.")
        paths = [layer.source() for layer in layers]
        if len(set(paths)) < len(paths):
            feedback.pushWarning("A map is listed more than once; it counts once per listing.")
        method = self.parameterAsEnumString(parameters, self.METHOD, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        uncertainty = self.parameterAsOutputLayer(parameters, self.UNCERTAINTY, context) or None
        classes = self.parameterAsOutputLayer(parameters, self.CLASSES, context) or None
        for path in filter(None, (output, uncertainty, classes)):
            check_writable(path)
        weights = self._weights(parameters, context, paths, method, feedback)
        study_area = study_area_cells(self, parameters, paths[0], context, feedback) if paths else None
        progress, is_cancelled = feedback_callbacks(feedback)
        source = self.parameterAsEnumString(parameters, self.WEIGHT_METRIC, context)
        summary = ensemble_rasters(paths, output, method, weights=weights,
                                   weight_source=WEIGHT_LABELS[WEIGHT_SOURCES.index(source)],
                                   threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
                                   uncertainty=uncertainty, classes=classes, study_area=study_area,
                                   progress=progress, is_cancelled=is_cancelled)
        members = ", ".join(f"{name} {count}" for name, count in zip(summary.members, summary.member_prospective))
        if method in WEIGHTED:
            feedback.pushInfo("Weights (scaled to sum 1): " + ", ".join(
                f"{name} {weight:.4g}" for name, weight in zip(summary.members, summary.weights))
                + f" — from {WEIGHT_LABELS[WEIGHT_SOURCES.index(source)]}.")
        label = METHOD_LABELS[METHODS.index(method)]
        feedback.pushInfo(f"{label} of {len(paths)} maps over {summary.valid_cells} "
                          f"cells with data. Prospective cells per map: {members}; ensemble: "
                          f"{summary.ensemble_prospective}. Mean uncertainty {summary.mean_uncertainty:.4f}.")
        rule = f"Ensemble {label.lower()}"
        StyleOnLoad.attach(context, output, "prospectivity.qml", name=rule)
        StyleOnLoad.attach(context, uncertainty, "uncertainty.qml", name=f"{rule} uncertainty")
        StyleOnLoad.attach(context, classes, "ensemble_class.qml", name=f"{rule} class")
        return {self.OUTPUT: output, self.UNCERTAINTY: uncertainty, self.CLASSES: classes}

    def _weights(self, parameters, context, paths, method, feedback):
        """Weights for the weighted rules (from the cards or the text), None for the others."""
        text = self.parameterAsString(parameters, self.WEIGHTS, context).strip()
        source = self.parameterAsEnumString(parameters, self.WEIGHT_METRIC, context)
        if method not in WEIGHTED:
            if text:
                feedback.pushWarning(f"The given weights are ignored: {method.replace('_', ' ')} does not weight "
                                     "the maps.")
            return None
        if source == "given":
            if not text:
                raise InputError("'Given weights' is chosen but no weights are given: type one number per map.")
            return parse_weights(text)
        if text:
            raise InputError(f"Weights are typed but the weight source is the validation {source.upper()} of the "
                             "model cards: choose 'Given weights' to use them, or clear them.")
        return card_weights(paths, source)
