"""Build the graphical models in resources/models/ with the QGIS modeler API (run under QGIS's Python).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_models.py

The .model3 files are committed; this script is how they are made, so a change to a chain is a change here.
"""

from __future__ import annotations

import sys
from pathlib import Path

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

MODELS = Path(__file__).resolve().parents[1] / "resources" / "models"
Source = QgsProcessingModelChildParameterSource


class ModelBuilder:
    """Small helper around QgsProcessingModelAlgorithm: inputs, steps and outputs laid out left to right."""

    def __init__(self, name: str, help_text: str) -> None:
        self.model = QgsProcessingModelAlgorithm(name, "DeepProspect pipelines", "deepprospectpipelines")
        self.model.setHelpContent({"ALG_DESC": help_text, "ALG_CREATOR": "DeepProspect"})
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


def add_layer_inputs(builder: ModelBuilder) -> None:
    """The inputs a geologist has: samples + elements, faults, deposits, barren holes, and grid settings."""
    builder.add_input(QgsProcessingParameterFeatureSource("samples", "Geochemical sample points",
                                                          [QgsProcessing.TypeVectorPoint]))
    builder.add_input(QgsProcessingParameterField("elements", "Elements to grid", parentLayerParameterName="samples",
                                                  type=QgsProcessingParameterField.Numeric, allowMultiple=True))
    builder.add_input(QgsProcessingParameterFeatureSource("faults", "Faults (lines)", [QgsProcessing.TypeVectorLine]))
    builder.add_input(QgsProcessingParameterFeatureSource("deposits", "Known deposits",
                                                          [QgsProcessing.TypeVectorPoint]))
    builder.add_input(QgsProcessingParameterFeatureSource("barren", "Barren drill holes (known negatives)",
                                                          [QgsProcessing.TypeVectorPoint], optional=True))
    builder.add_input(QgsProcessingParameterNumber("pixel_size", "Pixel size (map units)",
                                                   QgsProcessingParameterNumber.Double, 100.0, minValue=0.0))
    builder.add_input(QgsProcessingParameterNumber("buffer_distance", "Fault buffer distance (map units)",
                                                   QgsProcessingParameterNumber.Double, 1000.0, minValue=0.0))
    builder.add_input(QgsProcessingParameterNumber("patch_size", "Training window size (pixels)",
                                                   QgsProcessingParameterNumber.Integer, 16, minValue=4))
    builder.add_input(QgsProcessingParameterNumber("seed", "Random seed", QgsProcessingParameterNumber.Integer, 42))


def add_evidence_steps(builder: ModelBuilder) -> None:
    """Gridding, fault density and distance, stack, screening, training samples."""
    builder.add_step("idw", "deepprospect:idwgridding", "IDW gridding of the elements (log10)", {
        "INPUT": model_input("samples"), "FIELDS": model_input("elements"), "PIXEL_SIZE": model_input("pixel_size"),
        "POWER": static(2.0), "MAX_POINTS": static(12), "MIN_POINTS": static(1), "RADIUS": static(0.0),
        "LOG10": static(True)})
    for child_id, mode, label in (("faultdensity", 0, "Fault buffer-distance density"),
                                  ("faultdistance", 1, "Distance to faults")):
        builder.add_step(child_id, "deepprospect:bufferdensity", label, {
            "INPUT": model_input("faults"), "MODE": static(mode), "RADIUS": model_input("buffer_distance"),
            "DECAY": static(0), "TEMPLATE": child_output("idw")})
    builder.add_step("stack", "deepprospect:evidencestack", "Evidence stack (z-score)", {
        "INPUTS": [child_output("idw"), child_output("faultdensity"), child_output("faultdistance")],
        "TEMPLATE": child_output("idw"), "TRANSFORM": static(0), "NORMALISE": static(1)},
        {"evidence_stack": ("OUTPUT", "Evidence stack")})
    builder.add_step("screening", "deepprospect:elementscreening", "Element screening (Z_AUC)", {
        "STACK": child_output("stack"), "DEPOSITS": model_input("deposits"), "BARREN": model_input("barren"),
        "CRITICAL_VALUE": static(2.58), "BACKGROUND_RATIO": static(10.0), "EXCLUSION_DISTANCE": static(0.0),
        "FOLDS": static(5), "SEED": model_input("seed")},
        {"screening_table": ("OUTPUT", "Screening table"), "selected_stack": ("SELECTED_STACK", "Selected evidence"),
         "screening_chart": ("CHART", "Screening chart")})
    builder.add_step("labels", "deepprospect:traininglabels", "Training samples from deposits", {
        "STACK": child_output("screening", "SELECTED_STACK"), "DEPOSITS": model_input("deposits"),
        "BARREN": model_input("barren"), "PATCH_SIZE": model_input("patch_size"), "SEED": model_input("seed")},
        {"training_set": ("OUTPUT", "Training set"), "training_samples": ("SAMPLES", "Training sample centres")})


def evidence_to_training() -> Path:
    builder = ModelBuilder(
        "Evidence layers to training samples",
        "From sample points, faults and deposits to a training set in one run: IDW gridding of the chosen "
        "elements (log10), fault buffer-distance density and distance on the same grid, a z-scored evidence "
        "stack, element screening by Z_AUC (only significant bands are kept) and training samples with a "
        "spatial split. Every step is a DeepProspect algorithm; open the model to change any setting.")
    add_layer_inputs(builder)
    add_evidence_steps(builder)
    return builder.save("evidence_to_training.model3")


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    print(evidence_to_training())
    app.exitQgis()


if __name__ == "__main__":
    main()
