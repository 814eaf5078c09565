"""deepprospect:predict through Processing: the map equals the library's, has no holes, loads styled 0-1, keeps
to a study area, errors are clear."""

import json

import numpy as np
import pytest
import rasterio
from deepprospect.models.inference import predict_map
from layer_factory import ProgressFeedback, RecordingFeedback, centres_inside, wkt_layer
from model_factory import GRID, evidence, write_model, write_stack
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)

ALG = "deepprospect:predict"
NAMES = ["Au", "As", "Cu"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    stack, model = str(folder / "stack.tif"), str(folder / "lenet.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(model, "lenet", NAMES, 16, recipe)
    return stack, model


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.res, src.tags()


def test_map_is_the_library_map_and_loads_styled(deepprospect_provider, inputs, tmp_path):
    import processing

    stack, model = inputs
    out = str(tmp_path / "map.tif")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    feedback = RecordingFeedback()
    result = processing.runAndLoadResults(ALG, {"MODEL": model, "STACK": stack, "OUTPUT": out}, feedback=feedback,
                                          context=context)
    assert result["OUTPUT"] == out
    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == out]
    try:
        assert len(layers) == 1
        renderer = layers[0].renderer()
        assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0.0, 1.0)
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        assert [item.value for item in (items[0], items[-1])] == [0.0, 1.0]
    finally:
        QgsProject.instance().removeMapLayers([layer.id() for layer in layers])
    predict_map(model, stack, str(tmp_path / "direct.tif"), device="cpu")
    values, _, tags = read(out)
    np.testing.assert_array_equal(values, read(str(tmp_path / "direct.tif"))[0])
    assert (values != -9999.0).all()  # no hole: windows at the stack's edges are padded
    assert json.loads(tags["DEEPPROSPECT_MODEL_CARD"])["model_file"] == "lenet.onnx"
    assert "onnxruntime provider: CPUExecutionProvider" in feedback.text and "Fast scanning" in feedback.text


def test_blocks_stride_and_device(run_alg, inputs, tmp_path):
    stack, model = inputs
    blocks = run_alg(ALG, {"MODEL": model, "STACK": stack, "MODE": "blocks", "DEVICE": "cpu",
                           "OUTPUT": str(tmp_path / "b.tif")})
    values, res, _ = read(blocks["OUTPUT"])
    assert values.shape == (3, 4) and res == (1600.0, 1600.0)
    coarse = run_alg(ALG, {"MODEL": model, "STACK": stack, "STRIDE": 4, "BATCH_SIZE": 3, "DEVICE": "cpu",
                           "OUTPUT": str(tmp_path / "c.tif")})
    values, res, tags = read(coarse["OUTPUT"])
    assert values.shape == (10, 13) and res == (400.0, 400.0)
    assert json.loads(tags["DEEPPROSPECT_PREDICTION"])["stride"] == 4


def test_cells_outside_the_study_area_are_nodata(run_alg, inputs, tmp_path):
    stack, model = inputs
    # rows 5-29, columns 10-39, less a 5 × 5 hole (an inner ring)
    area = wkt_layer(["POLYGON((501000 6997000, 504000 6997000, 504000 6999500, 501000 6999500, 501000 6997000), "
                      "(502000 6998000, 502500 6998000, 502500 6998500, 502000 6998500, 502000 6998000))"])
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "STUDY_AREA": area,
                           "OUTPUT": str(tmp_path / "area.tif")}, feedback)
    values, _, _ = read(result["OUTPUT"])
    inside = centres_inside(area, GRID.x_centres(), GRID.y_centres())
    assert inside.sum() == 25 * 30 - 25 and (values[~inside] == -9999.0).all()
    predict_map(model, stack, str(tmp_path / "direct.tif"), device="cpu", study_area=inside)
    np.testing.assert_array_equal(values, read(str(tmp_path / "direct.tif"))[0])
    assert (values[inside] != -9999.0).all()
    assert "725 of 2000 cells have their centre in the study area" in feedback.text


def test_a_dask_scheduler_writes_the_same_map(run_alg, inputs, tmp_path, dask_scheduler):
    """DASK_SCHEDULER (a LocalCluster of 2 worker processes): the tiles are predicted by the workers, same bits."""
    stack, model = inputs
    here = run_alg(ALG, {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "OUTPUT": str(tmp_path / "here.tif")})
    feedback = RecordingFeedback()
    there = run_alg(ALG, {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "DASK_SCHEDULER": dask_scheduler,
                          "OUTPUT": str(tmp_path / "dask.tif")}, feedback)
    a, _, a_tags = read(here["OUTPUT"])
    b, _, b_tags = read(there["OUTPUT"])
    assert a.tobytes() == b.tobytes() and a_tags == b_tags
    assert f"Tiles run on the Dask cluster at {dask_scheduler}" in feedback.text


def test_errors_reach_the_user_as_messages_and_leave_no_file(run_alg, inputs, tmp_path):
    stack, model = inputs
    other = str(tmp_path / "other.tif")
    write_stack(other, evidence(3, seed=9), ["Au", "As", "Zn"], normalise="z-score")
    out = tmp_path / "map.tif"
    with pytest.raises(QgsProcessingException, match="it lacks Cu"):
        run_alg(ALG, {"MODEL": model, "STACK": other, "OUTPUT": str(out)})
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(QgsProcessingException, match="not a readable ONNX model"):
        run_alg(ALG, {"MODEL": str(broken), "STACK": stack, "OUTPUT": str(out)})
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "OUTPUT": str(out)}, feedback=feedback)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "other.tif"]


def test_progress_never_goes_back(run_alg, inputs, tmp_path):
    stack, model = inputs
    feedback = ProgressFeedback()
    area = wkt_layer(["POLYGON((500500 6997500, 503500 6997500, 503500 6999500, 500500 6999500, 500500 6997500))"])
    run_alg(ALG, {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "STUDY_AREA": area,
                  "OUTPUT": str(tmp_path / "m.tif")}, feedback)
    assert feedback.progress and feedback.progress[-1] == 100 and feedback.steps_back() == []
