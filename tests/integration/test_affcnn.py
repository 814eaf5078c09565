"""he2025's AFFCNN through Processing: trainmodel writes a two-input model file with its stages and options,
predict maps it like per-window torch (and like a tiny-tile library run), and the ensemble takes its map."""

import json

import numpy as np
import pytest
import rasterio
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.inference import predict_map
from deepprospect.models.onnx_io import read_card
from layer_factory import RecordingFeedback
from model_factory import evidence, padded_reference, write_model, write_stack
from training_factory import BANDS, easy_set

NAMES = ["Au", "As", "Cu"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # module scope: set before module fixtures


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """A z-scored stack with a nodata cell, and randomised AFFCNN and LeNet model files for it."""
    folder = tmp_path_factory.mktemp("affcnn")
    raw = evidence(3, seed=2)
    raw[0, 7, 9] = np.nan
    stack, recipe = write_stack(str(folder / "stack.tif"), raw, NAMES, normalise="z-score")
    models = {name: write_model(str(folder / f"{name}.onnx"), name, NAMES, 16, recipe) for name in ("affcnn", "lenet")}
    return {"folder": folder, "stack": stack.astype(np.float32), "stack_path": str(folder / "stack.tif"),
            "models": models}


def read(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.tags()


def test_trainmodel_writes_a_two_input_model_with_its_stages(run_alg, tmp_path):
    path = tmp_path / "easy.npz"
    save_training_set(str(path), easy_set(n=60))
    feedback = RecordingFeedback()
    result = run_alg("deepprospect:trainmodel", {
        "TRAINING_SET": str(path), "ARCHITECTURE": "affcnn", "OPTIONS": "stage_split=1,1,2; aux_weight=0.5",
        "EPOCHS": 4, "MIN_EPOCHS": 1, "BATCH_SIZE": 16, "LEARNING_RATE": 2e-3, "DEVICE": "cpu",
        "OUTPUT": str(tmp_path / "affcnn.onnx"), "CURVES": None}, feedback)
    card = read_card(result["OUTPUT"])
    assert card["architecture"] == "affcnn" and card["input_kind"] == "patch+vector"
    assert [(i["name"], i["kind"], i["band_names"]) for i in card["inputs"]] == [("patch", "patch", BANDS),
                                                                                ("vector", "vector", BANDS)]
    assert card["options"] == {"stage_split": [1, 1, 2], "aux_weight": 0.5}
    selection = card["extra"]["epoch_selection"]
    assert [(s["name"], s["first_epoch"], s["last_epoch"]) for s in selection["stages"]] == [
        ("branches", 1, 1), ("fusion", 2, 2), ("joint", 3, 4)]
    assert selection["min_epochs"] == 3 and card["extra"]["best_epoch"] >= 3
    assert "Stage branches (epochs 1-1)" in feedback.text and "Stage joint (epochs 3-4)" in feedback.text


def test_predict_maps_both_inputs_like_per_window_torch(run_alg, maps, tmp_path):
    model_path = str(maps["folder"] / "affcnn.onnx")
    result = run_alg("deepprospect:predict", {"MODEL": model_path, "STACK": maps["stack_path"], "BATCH_SIZE": 29,
                                              "DEVICE": "cpu", "OUTPUT": str(tmp_path / "map.tif")})
    values, tags = read(result["OUTPUT"])
    expected = padded_reference(maps["models"]["affcnn"], maps["stack"])
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    assert np.isnan(values[7, 9]) and np.count_nonzero(np.isnan(values)) == 1
    assert json.loads(tags["DEEPPROSPECT_MODEL_CARD"])["architecture"] == "affcnn"
    predict_map(model_path, maps["stack_path"], str(tmp_path / "tiles.tif"), tile_size=6, device="cpu")
    np.testing.assert_array_equal(read(str(tmp_path / "tiles.tif"))[0], values)


def test_ensemble_takes_the_two_input_models_map(run_alg, maps, tmp_path):
    paths = {}
    for name in ("affcnn", "lenet"):
        paths[name] = run_alg("deepprospect:predict", {"MODEL": str(maps["folder"] / f"{name}.onnx"),
                                                       "STACK": maps["stack_path"], "DEVICE": "cpu",
                                                       "OUTPUT": str(tmp_path / f"{name}.tif")})["OUTPUT"]
    result = run_alg("deepprospect:ensemble", {"MAPS": [paths["affcnn"], paths["lenet"]], "METHOD": "weighted_average",
                                               "WEIGHT_METRIC": "auc", "OUTPUT": str(tmp_path / "ensemble.tif")})
    ensemble, _ = read(result["OUTPUT"])
    members = [read(paths[name])[0] for name in ("affcnn", "lenet")]
    np.testing.assert_allclose(ensemble, (members[0] + members[1]) / 2, rtol=0, atol=1e-6)  # both cards say AUC 0.75
    assert np.isnan(ensemble[7, 9]) and np.count_nonzero(np.isnan(ensemble)) == 1
