"""Build the graphical models in resources/models/ with the QGIS modeler API (run under QGIS's Python).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_models.py

The .model3 files are committed; this script is how they are made, so a change to a chain is a change here.
Qt's hash seed is fixed so that the XML attributes come out in the same order on every run.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

os.environ["QT_HASH_SEED"] = "0"  # before Qt starts

from qgis.core import (
    QgsApplication,
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QPointF

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "resources" / "models"
Source = QgsProcessingModelChildParameterSource
# Optional outputs of a step that later steps read: the model asks for them, so a headless run cannot skip them.
MANDATORY_OUTPUTS = {"selected_stack"}


def homepage() -> str:
    """The plugin's homepage from metadata.txt (the pipelines' help links to its README section)."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(ROOT / "metadata.txt", encoding="utf-8")
    return metadata["general"]["homepage"]


class ModelBuilder:
    """Small helper around QgsProcessingModelAlgorithm: inputs, steps and outputs laid out left to right."""

    def __init__(self, name: str, help_text: str) -> None:
        self.model = QgsProcessingModelAlgorithm(name, "DeepProspect pipelines", "deepprospectpipelines")
        self.model.setHelpContent({"ALG_DESC": help_text, "ALG_CREATOR": "DeepProspect",
                                   "HELP_URL": f"{homepage()}#pipelines"})
        self._inputs = 0
        self._steps = 0

    def add_input(self, parameter) -> str:
        self.model.addModelParameter(parameter, self._placed(QgsProcessingModelParameter(parameter.name()),
                                                             120, 60 + 70 * self._inputs))
        self._inputs += 1
        return parameter.name()

    def add_step(self, child_id: str, algorithm_id: str, description: str, sources: dict,
                 outputs: dict | None = None) -> str:
        child = QgsProcessingModelChildAlgorithm(algorithm_id)
        child.setChildId(child_id)
        child.setDescription(description)
        for key, value in sources.items():
            child.addParameterSources(key, value if isinstance(value, list) else [value])
        model_outputs = {}
        for output_name, (child_output, label) in (outputs or {}).items():
            output = QgsProcessingModelOutput(output_name, label)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            output.setMandatory(output_name in MANDATORY_OUTPUTS)
            output.setPosition(QPointF(560 + 220 * self._steps, 140 + 90 * self._steps))
            model_outputs[output_name] = output
        child.setModelOutputs(model_outputs)
        self.model.addChildAlgorithm(self._placed(child, 420 + 220 * self._steps, 60 + 90 * self._steps))
        self._steps += 1
        return child_id

    def save(self, file_name: str) -> Path:
        path = MODELS / file_name
        if not self.model.toFile(str(path)):
            raise SystemExit(f"could not write {path}")
        return path

    @staticmethod
    def _placed(item, x: float, y: float):
        item.setPosition(QPointF(x, y))
        return item


def static(value) -> Source:
    return Source.fromStaticValue(value)


def model_input(name: str) -> Source:
    return Source.fromModelParameter(name)


def child_output(child_id: str, output: str = "OUTPUT") -> Source:
    return Source.fromChildOutput(child_id, output)


def expression(text: str) -> Source:
    return Source.fromExpression(text)


def add_layer_inputs(builder: ModelBuilder, patch_input: bool = True) -> None:
    """The inputs a geologist has: samples + elements, faults, deposits, barren holes, study area, grid settings."""
    builder.add_input(QgsProcessingParameterFeatureSource("samples", "Geochemical sample points",
                                                          [QgsProcessing.TypeVectorPoint]))
    builder.add_input(QgsProcessingParameterField("elements", "Elements to grid", parentLayerParameterName="samples",
                                                  type=QgsProcessingParameterField.Numeric, allowMultiple=True))
    builder.add_input(QgsProcessingParameterFeatureSource("faults", "Faults (lines)", [QgsProcessing.TypeVectorLine]))
    builder.add_input(QgsProcessingParameterFeatureSource("deposits", "Known deposits",
                                                          [QgsProcessing.TypeVectorPoint]))
    builder.add_input(QgsProcessingParameterFeatureSource("barren", "Barren drill holes (known negatives)",
                                                          [QgsProcessing.TypeVectorPoint], optional=True))
    builder.add_input(QgsProcessingParameterFeatureSource(
        "study_area", "Study area (cells outside are nodata in every step)", [QgsProcessing.TypeVectorPolygon],
        optional=True))
    builder.add_input(QgsProcessingParameterNumber("pixel_size", "Pixel size (map units)",
                                                   QgsProcessingParameterNumber.Double, 100.0, minValue=0.0))
    builder.add_input(QgsProcessingParameterNumber("buffer_distance", "Fault buffer distance (map units)",
                                                   QgsProcessingParameterNumber.Double, 1000.0, minValue=0.0))
    if patch_input:
        builder.add_input(QgsProcessingParameterNumber("patch_size", "Training window size (pixels; 1 = element "
                                                       "vectors)", QgsProcessingParameterNumber.Integer, 16,
                                                       minValue=1))
    builder.add_input(QgsProcessingParameterNumber("negative_ratio", "Negatives per deposit cell (random ground)",
                                                   QgsProcessingParameterNumber.Double, 1.0 if patch_input else 8.0,
                                                   minValue=0.1))
    builder.add_input(QgsProcessingParameterNumber("exclusion_buffer", "No negatives within this distance of a "
                                                   "deposit (map units)", QgsProcessingParameterNumber.Double,
                                                   0.0 if patch_input else 2000.0, minValue=0.0))
    builder.add_input(QgsProcessingParameterNumber("validation_fraction", "Validation fraction of the deposits",
                                                   QgsProcessingParameterNumber.Double, 0.15, minValue=0.0,
                                                   maxValue=0.9))
    builder.add_input(QgsProcessingParameterNumber("test_fraction", "Test (held-out) fraction of the deposits",
                                                   QgsProcessingParameterNumber.Double, 0.15, minValue=0.0,
                                                   maxValue=0.9))
    builder.add_input(QgsProcessingParameterNumber("seed", "Random seed", QgsProcessingParameterNumber.Integer, 42))


def add_evidence_steps(builder: ModelBuilder, patch: Source) -> None:
    """Gridding, fault density and distance, stack, the split, screening on training deposits, training samples.

    The deposits are split first (on the whole stack) and element screening sees only the training split's
    deposits and barren holes, so nothing upstream of a held-out score has seen the held-out deposits. The
    training samples are then drawn again on the selected bands with the same settings and seed: the grid, the
    nodata and the deposits are the same, so the split is the same.
    """
    area = model_input("study_area")
    builder.add_step("idw", "deepprospect:idwgridding", "IDW gridding of the elements (log10)", {
        "INPUT": model_input("samples"), "FIELDS": model_input("elements"), "PIXEL_SIZE": model_input("pixel_size"),
        "POWER": static(2.0), "MAX_POINTS": static(12), "MIN_POINTS": static(1), "RADIUS": static(0.0),
        "LOG10": static(True), "STUDY_AREA": area})
    for child_id, mode, label in (("faultdensity", "bufferdensity", "Fault buffer-distance density"),
                                  ("faultdistance", "distance", "Distance to faults")):
        builder.add_step(child_id, "deepprospect:bufferdensity", label, {
            "INPUT": model_input("faults"), "MODE": static(mode), "RADIUS": model_input("buffer_distance"),
            "DECAY": static("triangular"), "TEMPLATE": child_output("idw"), "STUDY_AREA": area})
    builder.add_step("stack", "deepprospect:evidencestack", "Evidence stack (z-score)", {
        "INPUTS": [child_output("idw"), child_output("faultdensity"), child_output("faultdistance")],
        "TEMPLATE": child_output("idw"), "TRANSFORM": static("none"), "NORMALISE": static("z-score"),
        "STUDY_AREA": area},
        {"evidence_stack": ("OUTPUT", "Evidence stack")})
    labels = {"DEPOSITS": model_input("deposits"), "BARREN": model_input("barren"), "STUDY_AREA": area,
              "PATCH_SIZE": patch, "NEGATIVE_RATIO": model_input("negative_ratio"),
              "EXCLUSION_BUFFER": model_input("exclusion_buffer"),
              "VALIDATION_FRACTION": model_input("validation_fraction"),
              "TEST_FRACTION": model_input("test_fraction"), "SEED": model_input("seed")}
    builder.add_step("split", "deepprospect:traininglabels", "Split of the deposits (all bands)", {
        "STACK": child_output("stack"), **labels})
    for child_id, kind, label in (("train_deposits", "deposit", "Training-split deposits"),
                                  ("train_barren", "barren", "Training-split barren holes")):
        builder.add_step(child_id, "native:extractbyexpression", label, {
            "INPUT": child_output("split", "SAMPLES"),
            "EXPRESSION": static(f"\"kind\" = '{kind}' AND \"split\" = 'train'")})
    builder.add_step("screening", "deepprospect:elementscreening", "Element screening (Z_AUC, training deposits)", {
        "STACK": child_output("stack"), "DEPOSITS": child_output("train_deposits"),
        "BARREN": child_output("train_barren"), "CRITICAL_VALUE": static(2.58), "NEGATIVE_RATIO": static(10.0),
        "EXCLUSION_BUFFER": static(0.0), "FOLDS": static(5), "SEED": model_input("seed")},
        {"screening_table": ("OUTPUT", "Screening table"), "selected_stack": ("SELECTED_STACK", "Selected evidence"),
         "screening_chart": ("CHART", "Screening chart")})
    builder.add_step("labels", "deepprospect:traininglabels", "Training samples from deposits", {
        "STACK": child_output("screening", "SELECTED_STACK"), **labels},
        {"training_set": ("OUTPUT", "Training set"), "training_samples": ("SAMPLES", "Training sample centres")})


def evidence_to_training() -> Path:
    builder = ModelBuilder(
        "Evidence layers to training samples",
        "From sample points, faults and deposits to a training set in one run: IDW gridding of the chosen "
        "elements (log10), fault buffer-distance density and distance on the same grid, a z-scored evidence "
        "stack (all inside the optional study area), a spatial split of the deposits, element screening by Z_AUC "
        "on the training deposits only (only significant bands are kept) and training samples with that split. "
        "Every step is a DeepProspect algorithm; open the model to change any setting.")
    add_layer_inputs(builder)
    add_evidence_steps(builder, model_input("patch_size"))
    return builder.save("evidence_to_training.model3")


# spatialcv's MODEL_TYPES: the MLP seed ensemble, the random forest and the logistic regression
CV_MODELS = ["mlp_ensemble", "random_forest", "logistic_regression"]
MEMBERS = 5


def add_model_steps(builder: ModelBuilder) -> None:
    """Spatial CV of the default models, the MLP seed ensemble trained and mapped, a random-forest baseline."""
    stack = child_output("screening", "SELECTED_STACK")
    area = model_input("study_area")
    builder.add_step("spatialcv", "deepprospect:spatialcv", "Spatial cross-validation (screening in every fold)", {
        "STACK": child_output("stack"), "DEPOSITS": model_input("deposits"), "BARREN": model_input("barren"),
        "STUDY_AREA": area, "FOLD_METHOD": static("kmeans"), "FOLDS": model_input("cv_folds"), "GAP": static(-1.0),
        "REPEATS": model_input("cv_repeats"), "EXCLUSION_BUFFER": model_input("exclusion_buffer"),
        "MODEL_TYPES": static(CV_MODELS), "ENSEMBLES": static([]), "SEED": model_input("seed"), "SCREEN": static(True),
        "EPOCHS": model_input("epochs")},
        {"cv_scores": ("OUTPUT", "Spatial cross-validation scores"),
         "cv_chart": ("CHART", "Spatial cross-validation chart"),
         "cv_out_of_fold": ("OUT_OF_FOLD", "Out-of-fold prospectivity")})
    for member in range(1, MEMBERS + 1):
        builder.add_step(f"train_mlp{member}", "deepprospect:trainmodel", f"Train MLP, seed member {member}", {
            "TRAINING_SET": child_output("labels"), "ARCHITECTURE": static("mlp"), "PRESET": static("none"),
            "EPOCHS": model_input("epochs"), "BATCH_SIZE": static(64), "LEARNING_RATE": static(1e-3),
            "MIN_LEARNING_RATE": static(1e-4), "OPTIMISER": static("adam"), "SCHEDULE": static("cosine"),
            "EARLY_STOPPING": static("off"), "CLASS_WEIGHTING": static(True), "WEIGHT_DECAY": static(1e-3),
            "INPUT_NOISE": static(0.1), "MEMBERS": static(1), "DEVICE": static("auto"),
            "SEED": expression(f"@seed + {member - 1}")},
            {f"mlp{member}_model": ("OUTPUT", f"MLP member {member} model file"),
             f"mlp{member}_curves": ("CURVES", f"MLP member {member} training curves")})
        builder.add_step(f"predict_mlp{member}", "deepprospect:predict", f"Prospectivity map (MLP {member})", {
            "MODEL": child_output(f"train_mlp{member}"), "STACK": stack, "MODE": static("cells"), "STRIDE": static(1),
            "DEVICE": static("auto"), "STUDY_AREA": area},
            {f"mlp{member}_map": ("OUTPUT", f"Prospectivity (MLP member {member})")})
    builder.add_step("baseline", "deepprospect:baseline", "Random-forest baseline", {
        "TRAINING_SET": child_output("labels"), "STACK": stack, "METHOD": static("random_forest"),
        "SEED": model_input("seed"), "TREES": static(300)},
        {"baseline_map": ("OUTPUT", "Prospectivity (random forest)"),
         "baseline_importance": ("IMPORTANCE", "Random-forest band importance")})
    builder.add_step("ensemble", "deepprospect:ensemble", "MLP seed ensemble (average) with its spread", {
        "MAPS": [child_output(f"predict_mlp{m}") for m in range(1, MEMBERS + 1)], "METHOD": static("average"),
        "THRESHOLD": static(0.5), "STUDY_AREA": area},
        {"ensemble_map": ("OUTPUT", "Ensemble prospectivity"), "ensemble_uncertainty": ("UNCERTAINTY", "Uncertainty")})


def add_map_steps(builder: ModelBuilder) -> None:
    """Evaluation against held-out deposits, anomaly classes and targets, and the study report."""
    area = model_input("study_area")
    builder.add_step("deposit_cells", "native:extractbyattribute", "Deposit cells with their split", {
        "INPUT": child_output("labels", "SAMPLES"), "FIELD": static("kind"), "OPERATOR": static(0),
        "VALUE": static("deposit")})
    builder.add_step("test_barren", "native:extractbyexpression", "Barren cells of the test split", {
        "INPUT": child_output("labels", "SAMPLES"), "EXPRESSION": static("\"kind\" = 'barren' AND \"split\" = 'test'")})
    # Scores use only what training never saw: test deposits against test barren cells (or every other cell).
    deposits = {"DEPOSITS": child_output("deposit_cells"), "SPLIT_FIELD": static("split"),
                "HELD_OUT_VALUES": static("test"), "BARREN": child_output("test_barren")}
    builder.add_step("evaluate", "deepprospect:evaluate", "Evaluate the ensemble (held-out = test deposits)", {
        "MAP": child_output("ensemble"), **deposits, "THRESHOLD": static(0.5), "STUDY_AREA": area},
        {"evaluation_metrics": ("OUTPUT", "Evaluation metrics"), "evaluation_report": ("REPORT", "Evaluation"),
         "roc_plot": ("ROC_PLOT", "ROC curves"), "rate_plot": ("RATE_PLOT", "Success/prediction-rate curves"),
         "pa_plot": ("PA_PLOT", "Prediction-area plot")})
    builder.add_step("anomaly", "deepprospect:anomalyclasses", "Anomaly classes (5/15/30 %) and targets", {
        "MAP": child_output("ensemble"), "DEPOSITS": model_input("deposits"), "CLASS_LIMITS": static("5,15,30"),
        "TARGET_CLASSES": static(1), "MIN_TARGET_AREA": model_input("min_target_area"), "STUDY_AREA": area},
        {"anomaly_classes": ("OUTPUT", "Anomaly classes"), "class_table": ("CLASS_TABLE", "Class table"),
         "targets": ("TARGETS", "Targets")})
    members = [f"mlp{m}" for m in range(1, MEMBERS + 1)]
    builder.add_step("report", "deepprospect:report", "Study report", {
        "MAP": child_output("ensemble"), "UNCERTAINTY": child_output("ensemble", "UNCERTAINTY"),
        "MAPS": [child_output(f"predict_{m}") for m in members] + [child_output("baseline")],
        "MODELS": [child_output(f"train_{m}") for m in members], "TRAINING_SET": child_output("labels"),
        **deposits, "SPATIAL_CV": child_output("spatialcv"), "CLASS_LIMITS": static("5,15,30"),
        "TARGET_CLASSES": static(1), "MIN_TARGET_AREA": model_input("min_target_area"),
        "TITLE": static("DeepProspect prospectivity study")},
        {"report": ("OUTPUT", "Study report")})


def full_pipeline() -> Path:
    builder = ModelBuilder(
        "Full prospectivity pipeline",
        "From sample points, faults, deposits and barren holes to a prospectivity study in one run: IDW gridding "
        "(log10), fault buffer-distance density and distance, a z-scored evidence stack (all inside the optional "
        "study area), a spatial split of the deposits (it falls back, and says so, when the deposits form too few "
        "groups), element screening by Z_AUC on the training deposits only, element-vector training samples with "
        "several random negatives per deposit cell, spatial cross-validation of the default models (k-means folds "
        "of the deposits, screening repeated in every fold; the figures the report leads with), the default network "
        "— an MLP seed ensemble (five seeds, weight decay, input noise; it beat the random forest on held-out "
        "deposits of four of five benchmark datasets, not on Kolari with this pipeline's evidence: compare the two "
        "in the report) — trained and mapped, a random-forest baseline, the seeds' average with its spread as "
        "uncertainty, evaluation against the held-out (test) deposits and test barren holes, anomaly classes by area "
        "(5/15/30 %) with ranked targets, and one HTML report. Nothing upstream of a held-out score sees its "
        "deposits. Open the model to change any setting.")
    add_layer_inputs(builder, patch_input=False)
    builder.add_input(QgsProcessingParameterNumber("epochs", "Training epochs per network",
                                                   QgsProcessingParameterNumber.Integer, 40, minValue=1))
    builder.add_input(QgsProcessingParameterNumber("cv_folds", "Spatial cross-validation folds",
                                                   QgsProcessingParameterNumber.Integer, 5, minValue=2))
    builder.add_input(QgsProcessingParameterNumber("cv_repeats", "Spatial cross-validation negative draws",
                                                   QgsProcessingParameterNumber.Integer, 5, minValue=1))
    builder.add_input(QgsProcessingParameterNumber("min_target_area", "Minimum target area (km²)",
                                                   QgsProcessingParameterNumber.Double, 0.1, minValue=0.0))
    add_evidence_steps(builder, static(1))
    add_model_steps(builder)
    add_map_steps(builder)
    return builder.save("full_pipeline.model3")


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    print(evidence_to_training())
    print(full_pipeline())
    app.exitQgis()


if __name__ == "__main__":
    main()
