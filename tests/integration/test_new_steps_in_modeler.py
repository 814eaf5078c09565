"""The papers' new steps (dual window, ensemble comparison) as children of a graphical model, run by processing.run:
every parameter they take can come from the modeler."""

import csv

import numpy as np
import rasterio
from deepprospect.compat import MODEL_SOURCE_STATIC
from deepprospect.core.raster_io import write_geotiff
from deepprospect.models.dualwindow import dual_window_map
from layer_factory import point_layer
from model_factory import GRID, evidence, write_model, write_stack
from qgis.core import (
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
)

NAMES = ["Au", "As", "Cu"]


def one_step_model(algorithm_id: str, values: dict, outputs: list[str]) -> QgsProcessingModelAlgorithm:
    """A graphical model of one child ``algorithm_id`` whose parameters are the modeler's fixed values ``values``
    and whose ``outputs`` are the model's outputs; with the name of the model's (first) destination parameter,
    which QGIS versions name differently."""
    model = QgsProcessingModelAlgorithm("one step", "tests")
    child = QgsProcessingModelChildAlgorithm(algorithm_id)
    child.generateChildId(model)
    child.setDescription(algorithm_id)
    for key, value in values.items():
        source = QgsProcessingModelChildParameterSource.fromStaticValue(value)
        assert source.source() == MODEL_SOURCE_STATIC
        child.addParameterSources(key, [source])
    model_outputs = {}
    for name in outputs:
        output = QgsProcessingModelOutput(name, name)
        output.setChildOutputName(name)
        output.setChildId(child.childId())
        model_outputs[name] = output
    child.setModelOutputs(model_outputs)
    model.addChildAlgorithm(child)
    model.updateDestinationParameters()
    return model, model.destinationParameterDefinitions()[0].name()


def test_dual_window_runs_inside_a_graphical_model(run_alg, tmp_path):
    stack, pair_model = str(tmp_path / "stack.tif"), str(tmp_path / "pair.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(pair_model, "ppf_cnn1d", NAMES, 1, recipe)
    model, destination = one_step_model("deepprospect:dualwindow", {"MODEL": pair_model, "STACK": stack, "INNER": 3,
                                                              "OUTER": 5, "DEVICE": "cpu"}, ["OUTPUT"])
    out = str(tmp_path / "modelled.tif")
    run_alg(model, {destination: out})
    dual_window_map(pair_model, stack, str(tmp_path / "direct.tif"), inner=3, outer=5, device="cpu")
    with rasterio.open(out) as made, rasterio.open(str(tmp_path / "direct.tif")) as direct:
        np.testing.assert_array_equal(made.read(1), direct.read(1))


def test_ensemble_comparison_runs_inside_a_graphical_model(run_alg, tmp_path):
    values = np.random.default_rng(5).uniform(0, 1, (2, *GRID.shape))
    maps = []
    for index, array in enumerate(values):
        maps.append(str(tmp_path / f"member{index}.tif"))
        write_geotiff(maps[-1], array, GRID, ["prospectivity"])
    deposits = point_layer([(GRID.x_min + 150.0, GRID.y_max - 150.0)], {}, name="deposits")
    model, destination = one_step_model("deepprospect:ensemblecompare", {"MAPS": maps, "DEPOSITS": deposits,
                                                                   "THRESHOLD": 0.5}, ["OUTPUT"])
    table = tmp_path / "compare.csv"
    run_alg(model, {destination: str(table)})
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["map"] for row in rows} >= {"member0.tif", "member1.tif"}
