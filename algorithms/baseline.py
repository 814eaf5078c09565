"""deepprospect:baseline — random forest or logistic regression prospectivity map from a training set."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.errors import InputError
from ..core.sampling.labels import load_training_set
from ..core.scoring.baseline import AUGMENTED_KINDS, METHODS, BaselineSettings, run_baseline
from .base import DeepProspectAlgorithm
from .parameters import explained, named_enum
from .qgis_io import feedback_callbacks
from .styles import StyleOnLoad


class Baseline(DeepProspectAlgorithm):
    """Fit a classical model on the cell vectors of a training set and map it over an evidence stack."""

    TRAINING_SET, STACK, METHOD, SEED, TREES = "TRAINING_SET", "STACK", "METHOD", "SEED", "TREES"
    AUGMENTED, OUTPUT, IMPORTANCE = "AUGMENTED", "OUTPUT", "IMPORTANCE"

    NAME = "baseline"
    DISPLAY_NAME = "Classical baseline (random forest, logistic regression)"
    GROUP = "models"
    TAGS = (
        "random forest", "logistic regression", "machine learning", "baseline", "classifier", "prospectivity",
    )
    MEMORY_HINT = "Use fewer trees (TREES) or a stack with fewer cells"
    HELP = (
        "Trains a random forest (balanced class weights) or a logistic regression (standardised bands, "
        "balanced class weights) on each training sample's own cell vector, scores it and maps it over an "
        "evidence stack: the baseline a deep model has to beat.<br>"
        "<b>Training rows</b>: the training split of the training set (.npz from 'Training samples from "
        "deposits'), every negative set together. Crops and flips are never used (their vector is another "
        "cell); the noise and SMOTE copies only when asked.<br>"
        "<b>Metrics</b> on the real cells of the train, validation and test splits: accuracy, recall and F1 at "
        "probability 0.5, and ROC AUC; they are logged and stored in the map's model card.<br>"
        "<b>Map</b>: the stack's bands are taken by name in the training set's order (extra bands are ignored); "
        "a missing band, or bands transformed or normalised differently from the training stack, stop the run. "
        "Cells with nodata in any band stay nodata. The output is a float32 GeoTIFF band 'prospectivity' "
        "(0–1) whose metadata DEEPPROSPECT_MODEL_CARD holds the method, metrics, bands and seed, so the "
        "ensemble step can weight it.<br><b>Importance</b>: a CSV of each band's impurity importance (forest) "
        "or coefficient per standard deviation (regression), ranked; also in the log. Same inputs and seed give "
        "the same map. A map loaded into QGIS gets the prospectivity colour ramp."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFile(self.TRAINING_SET, "Training set", extension="npz"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack to map"))
        self.addParameter(explained(named_enum(self.METHOD, "Method", METHODS),
                                    "random_forest = random forest with balanced class weights; logistic_regression = "
                                    "logistic regression on standardised bands, balanced class weights."))
        self.addParameter(QgsProcessingParameterNumber(self.SEED, "Random seed", defaultValue=42, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.TREES, "Trees (random forest)", defaultValue=BaselineSettings.n_estimators, minValue=1))
        self.addParameter(explained(
            QgsProcessingParameterBoolean(self.AUGMENTED, "Also train on the noise and SMOTE rows of the training "
                                          "split", False),
            "Crops and flips are never used: their vector is another cell's.", advanced=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Prospectivity map"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.IMPORTANCE, "Band importance / coefficients", "CSV files (*.csv)"))

    def compute(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The evidence stack must be a file raster (GeoTIFF) that GDAL can open.")
        settings = BaselineSettings(
            method=self.parameterAsEnumString(parameters, self.METHOD, context),
            n_estimators=self.parameterAsInt(parameters, self.TREES, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            augmented=AUGMENTED_KINDS if self.parameterAsBool(parameters, self.AUGMENTED, context) else ())
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        importance = self.parameterAsFileOutput(parameters, self.IMPORTANCE, context)
        training_set = load_training_set(self.parameterAsFile(parameters, self.TRAINING_SET, context), patches=False)
        feedback.pushInfo(f"{settings.method.replace('_', ' ').capitalize()} on {training_set.x_vector.shape[1]} "
                          f"band(s): {', '.join(training_set.manifest['band_names'])}.")
        progress, is_cancelled = feedback_callbacks(feedback)
        baseline = run_baseline(training_set, layer.source(), output, importance or None, settings,
                                progress=progress, is_cancelled=is_cancelled)
        feedback.pushInfo(f"Trained on {baseline.card['extra']['training_rows']} row(s).")
        for split, values in baseline.metrics.items():
            feedback.pushInfo(f"{split}: " + ", ".join(
                f"{name} {'n/a' if value is None else value if isinstance(value, list) else f'{value:.3f}'}"
                for name, value in values.items()))  # the confusion matrix is a list
        for name in sorted(baseline.weights, key=lambda band: -abs(baseline.weights[band])):
            feedback.pushInfo(f"{baseline.weight_name} of {name}: {baseline.weights[name]:.4g}")
        StyleOnLoad.attach(context, output, "prospectivity.qml",
                           name=f"Prospectivity ({settings.method.replace('_', ' ')})")
        return {self.OUTPUT: output, self.IMPORTANCE: importance or None}
