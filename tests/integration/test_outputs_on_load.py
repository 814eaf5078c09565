"""Outputs loaded by Processing are named after what they hold and styled: maps by model and ensemble rule,
evidence grids stretched over their values, training samples by label and split, ensemble classes."""

import json

import numpy as np
import processing
import pytest
from deepprospect.algorithms.styles import STYLES, StyleOnLoad
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import MODEL_CARD_TAG, write_geotiff
from deepprospect.core.sampling.labels import SPLITS
from model_factory import evidence, write_model, write_stack
from qgis.core import (
    QgsExpression,
    QgsExpressionContext,
    QgsFeature,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

GRID = GridSpec(400000.0, 3302000.0, 100.0, 100.0, 12, 10, "EPSG:32650")
TEMPORARY = "TEMPORARY_OUTPUT"


def run_and_load(algorithm_id: str, parameters: dict) -> dict[str, str]:
    """Run with the outputs loaded into the project as the Toolbox does; {layer name: renderer type}."""
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.runAndLoadResults(algorithm_id, parameters, feedback=QgsProcessingFeedback(), context=context)
    try:
        return {layer.name(): layer.renderer().type() for layer in QgsProject.instance().mapLayers().values()}
    finally:
        QgsProject.instance().removeAllMapLayers()


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("maps")
    paths = []
    for i, array in enumerate(np.random.default_rng(3).uniform(0, 1, (3, *GRID.shape))):
        paths.append(str(folder / f"member{i}.tif"))
        write_geotiff(paths[-1], array, GRID, ["prospectivity"],
                      metadata={MODEL_CARD_TAG: json.dumps({"architecture": "mlp", "metrics": {}})})
    return paths


def test_ensemble_layers_are_named_after_the_rule(deepprospect_provider, maps):
    loaded = run_and_load("deepprospect:ensemble", {"MAPS": maps, "METHOD": "majority_vote", "OUTPUT": TEMPORARY,
                                                    "UNCERTAINTY": TEMPORARY, "CLASSES": TEMPORARY})
    assert loaded == {"Ensemble majority voting": "singlebandpseudocolor",
                      "Ensemble majority voting uncertainty": "singlebandpseudocolor",
                      "Ensemble majority voting class": "paletted"}


def test_prospectivity_map_is_named_after_the_architecture(deepprospect_provider, tmp_path):
    stack, model = str(tmp_path / "stack.tif"), str(tmp_path / "model.onnx")
    _, recipe = write_stack(stack, evidence(3), ["Au", "As", "Cu"], normalise="z-score")
    write_model(model, "lenet", ["Au", "As", "Cu"], 16, recipe)
    loaded = run_and_load("deepprospect:predict", {"MODEL": model, "STACK": stack, "DEVICE": "cpu",
                                                   "OUTPUT": TEMPORARY})
    assert loaded == {"Prospectivity (lenet)": "singlebandpseudocolor"}


def test_grid_style_stretches_the_ramp_over_the_band(tmp_path):
    path = str(tmp_path / "grid.tif")
    write_geotiff(path, np.linspace(100.0, 200.0, GRID.rows * GRID.cols).reshape(GRID.shape), GRID, ["Cu"])
    layer = QgsRasterLayer(path, "Cu")
    StyleOnLoad(f"{STYLES}/grid.qml", stretch=True).postProcessLayer(layer, QgsProcessingContext(),
                                                                     QgsProcessingFeedback())
    renderer = layer.renderer()
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert renderer.type() == "singlebandpseudocolor" and 100 <= items[0].value < items[-1].value <= 200
    assert (renderer.classificationMin(), renderer.classificationMax()) == (items[0].value, items[-1].value)


def test_training_samples_style_has_a_class_for_every_label_and_split():
    layer = QgsVectorLayer("Point?crs=EPSG:32650&field=label:integer&field=split:string&field=kind:string",
                           "samples", "memory")
    assert layer.loadNamedStyle(f"{STYLES}/training_samples.qml")[1]
    renderer = layer.renderer()
    values = {category.value() for category in renderer.categories()}
    expression = QgsExpression(renderer.classAttribute())
    context = QgsExpressionContext()
    for label in (0, 1):
        for split in SPLITS:
            feature = QgsFeature(layer.fields())
            feature.setAttributes([label, split, "deposit" if label else "random"])
            context.setFeature(feature)
            assert expression.evaluate(context) in values
    assert len(values) == 2 * len(SPLITS)


def test_style_on_load_names_the_layer():
    context = QgsProcessingContext()
    details = QgsProcessingContext.LayerDetails("Prospectivity map", QgsProject.instance(), "OUTPUT")
    context.addLayerToLoadOnCompletion("map.tif", details)
    StyleOnLoad.attach(context, "map.tif", "prospectivity.qml", name="Prospectivity (mlp)")
    assert context.layerToLoadOnCompletionDetails("map.tif").name == "Prospectivity (mlp)"
