"""deepprospect:dualwindow and the pair options of deepprospect:trainmodel through processing.run: the map is the
library's, the sweep table and the draws table are written, predict refuses a pair model, bad input is clear."""

import csv

import numpy as np
import pytest
import rasterio
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.dualwindow import dual_window_map
from deepprospect.models.onnx_io import read_card
from layer_factory import ProgressFeedback, RecordingFeedback, point_layer
from model_factory import GRID, evidence, write_model, write_stack
from qgis.core import QgsProcessingException
from training_factory import easy_set

ALG = "deepprospect:dualwindow"
NAMES = ["Au", "As", "Cu"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dualwindow")
    stack, model = str(folder / "stack.tif"), str(folder / "pair.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(model, "ppf_cnn1d", NAMES, 1, recipe)
    write_model(str(folder / "lenet.onnx"), "lenet", NAMES, 16, recipe)
    return folder, stack, model


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.tags()


def test_map_is_the_library_map_and_the_sweep_table_is_written(run_alg, inputs, tmp_path):
    _, stack, model = inputs
    out, table = str(tmp_path / "d.tif"), str(tmp_path / "sweep.csv")
    x = GRID.x_min + 100.0 * np.array([10.5, 30.5, 44.5])
    y = GRID.y_max - 100.0 * np.array([5.5, 20.5, 33.5])
    deposits = point_layer(list(zip(x, y)), {}, name="deposits")
    feedback = ProgressFeedback()
    result = run_alg(ALG, {"MODEL": model, "STACK": stack, "INNER": 3, "OUTER": 7, "DEVICE": "cpu",
                           "DEPOSITS": deposits, "WINDOWS": "3,5; 1,7", "SWEEP_TABLE": table, "OUTPUT": out},
                     feedback)
    assert result["OUTPUT"] == out and result["SWEEP_TABLE"] == table and result["CELLS"] == 40 * 50
    dual_window_map(model, stack, str(tmp_path / "direct.tif"), inner=3, outer=7, device="cpu")
    values, tags = read(out)
    direct, direct_tags = read(str(tmp_path / "direct.tif"))
    np.testing.assert_array_equal(values, direct)
    assert tags["DEEPPROSPECT_DUAL_WINDOW"] == direct_tags["DEEPPROSPECT_DUAL_WINDOW"]
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["inner"], r["outer"], r["ring_cells"], r["deposits"]) for r in rows] == [
        ("3", "5", "16", "3"), ("1", "7", "48", "3")]
    assert "pairs per cell" in feedback.text and not feedback.steps_back() and max(feedback.progress) <= 100


def test_refusals_are_clear(run_alg, inputs, tmp_path):
    folder, stack, model = inputs
    out = str(tmp_path / "x.tif")
    with pytest.raises(QgsProcessingException, match="not a pixel-pair model"):
        run_alg(ALG, {"MODEL": str(folder / "lenet.onnx"), "STACK": stack, "DEVICE": "cpu", "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="odd number"):
        run_alg(ALG, {"MODEL": model, "STACK": stack, "INNER": 4, "OUTER": 7, "DEVICE": "cpu", "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="deposit"):
        run_alg(ALG, {"MODEL": model, "STACK": stack, "INNER": 3, "OUTER": 5, "DEVICE": "cpu", "OUTPUT": out,
                      "SWEEP_TABLE": str(tmp_path / "t.csv")})
    with pytest.raises(QgsProcessingException, match="Dual-window anomaly"):
        run_alg("deepprospect:predict", {"MODEL": model, "STACK": stack, "DEVICE": "cpu", "OUTPUT": out})
    assert not list(tmp_path.iterdir())


def test_trainmodel_trains_a_pair_model_per_negative_set(run_alg, tmp_path):
    training_set = easy_set(n=120, patch=4)
    negatives = np.flatnonzero(training_set.y == 0)
    training_set.repeat[negatives[::2]] = 1
    path = str(tmp_path / "set.npz")
    save_training_set(path, training_set)
    feedback = RecordingFeedback()
    result = run_alg("deepprospect:trainmodel", {
        "TRAINING_SET": path, "ARCHITECTURE": "ppf_cnn1d", "EPOCHS": 1, "BATCH_SIZE": 64, "LEARNING_RATE": 0.01,
        "EARLY_STOPPING": "off", "MAX_PAIRS": 400, "DEVICE": "cpu",
        "EACH_NEGATIVE_SET": True, "DRAWS_TABLE": str(tmp_path / "draws.csv"), "OUTPUT": str(tmp_path / "m.onnx"),
        "CURVES": None}, feedback)
    card = read_card(result["OUTPUT"])
    assert card["architecture"] == "ppf_cnn1d" and card["input_kind"] == "pair"
    assert card["extra"]["settings"]["epochs"] == 1 and card["extra"]["settings"]["max_pairs"] == 400
    assert card["extra"]["samples"]["train"]["pairs"]["pairs"] == 400
    assert card["extra"]["negative_draws"]["kept"] in (0, 1)
    with open(result["DRAWS_TABLE"], newline="") as handle:
        assert [row["draw"] for row in csv.DictReader(handle)] == ["0", "1"]
    assert "Kept the model of negative draw" in feedback.text
