"""deepprospect:report through processing.run: deposits split by a field, model files, training set, bad input."""

import json

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import read_map, write_geotiff
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.training import TrainSettings, save_model, train_model
from layer_factory import ProgressFeedback, RecordingFeedback, point_layer
from qgis.core import QgsProcessingException
from training_factory import easy_set

ALG = "deepprospect:report"
GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 40, 30, "EPSG:32650")
DEPOSITS_RC = np.array([[5, 5], [8, 30], [20, 12], [25, 33], [15, 20]])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    rows, cols = np.mgrid[: GRID.rows, : GRID.cols]
    values = np.zeros(GRID.shape)
    for r, c in DEPOSITS_RC:
        values = np.maximum(values, np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 20.0))
    values += np.random.default_rng(0).uniform(0, 0.1, GRID.shape)
    ensemble = str(folder / "ensemble.tif")
    write_geotiff(ensemble, np.clip(values, 0, 1)[None], GRID, ["prospectivity"],
                  metadata={"DEEPPROSPECT_ENSEMBLE": json.dumps({"method": "average", "members": []})})
    training_set = easy_set(n=60)
    set_path = str(folder / "set.npz")
    save_training_set(set_path, training_set)
    model = str(folder / "lenet.onnx")
    result = train_model(training_set, TrainSettings(architecture="lenet", epochs=2, batch_size=8, device="cpu"))
    save_model(result, training_set, model)
    xy = np.column_stack([GRID.x_min + (DEPOSITS_RC[:, 1] + 0.5) * 100, GRID.y_max - (DEPOSITS_RC[:, 0] + 0.5) * 100])
    deposits = point_layer(xy, {"split": ["train", "train", "validation", "test", "test"]})
    return ensemble, model, set_path, deposits


def test_report_with_split_field_models_and_training_set(run_alg, study, tmp_path):
    ensemble, model, set_path, deposits = study
    out = tmp_path / "report.html"
    result = run_alg(ALG, {"MAP": ensemble, "MODELS": [model], "TRAINING_SET": set_path, "DEPOSITS": deposits,
                           "SPLIT_FIELD": "split", "HELD_OUT_VALUES": "test", "MIN_TARGET_AREA": 0.01,
                           "TITLE": "Study & test", "OUTPUT": str(out)})
    text = out.read_text(encoding="utf-8")
    assert result["OUTPUT"] == str(out) and result["TARGETS"] >= 1 and 0.5 < result["HELD_OUT_AUC"] <= 1
    for fragment in ("Study &amp; test", "lenet (lenet.onnx)", "Training curves", "patch_size", "held-out deposits"):
        assert fragment in text


def test_bad_input_gives_a_clear_error_and_no_report(run_alg, study, tmp_path):
    ensemble, _, _, deposits = study
    with pytest.raises(QgsProcessingException, match="not a readable ONNX model"):
        foreign = tmp_path / "foreign.onnx"
        foreign.write_bytes(b"")
        run_alg(ALG, {"MAP": ensemble, "MODELS": [str(foreign)], "DEPOSITS": deposits,
                      "OUTPUT": str(tmp_path / "r.html")})
    far = point_layer(np.array([[0.0, 0.0]]), {})
    with pytest.raises(QgsProcessingException, match="No deposit lies on a map cell"):
        run_alg(ALG, {"MAP": ensemble, "DEPOSITS": far, "OUTPUT": str(tmp_path / "r.html")})
    assert not (tmp_path / "r.html").exists()


def test_a_training_sample_layer_counts_only_its_deposit_cells(run_alg, study, tmp_path):
    ensemble, _, _, deposits = study
    base = {"MAP": ensemble, "SPLIT_FIELD": "split", "HELD_OUT_VALUES": "test"}
    plain = run_alg(ALG, {**base, "DEPOSITS": deposits, "OUTPUT": str(tmp_path / "plain.html")})
    xy = np.column_stack([GRID.x_min + (DEPOSITS_RC[:, 1] + 0.5) * 100, GRID.y_max - (DEPOSITS_RC[:, 0] + 0.5) * 100])
    negatives = xy[:3] + 700.0
    samples = point_layer(np.concatenate([xy, negatives]), {
        "split": ["train", "train", "validation", "test", "test", "train", "test", "test"],
        "kind": ["deposit"] * 5 + ["random"] * 3, "label": [1.0] * 5 + [0.0] * 3})
    feedback = RecordingFeedback()
    result = run_alg(ALG, {**base, "DEPOSITS": samples, "OUTPUT": str(tmp_path / "samples.html")}, feedback)
    assert "only its 5 deposit cell(s)" in feedback.text
    assert result["HELD_OUT_AUC"] == pytest.approx(plain["HELD_OUT_AUC"])


def not_probability_maps(ensemble, folder):
    values = read_map(ensemble).values
    percent, stack, lonlat = str(folder / "percent.tif"), str(folder / "stack.tif"), str(folder / "lonlat.tif")
    write_geotiff(percent, 100 * values, GRID, ["prospectivity"])
    write_geotiff(stack, np.stack([values, values]), GRID, ["a", "b"])
    write_geotiff(lonlat, values, GridSpec(117.0, 29.8, 0.001, 0.001, 40, 30, "EPSG:4326"), ["prospectivity"])
    return [
        ({"MAP": percent}, r"'percent\.tif' has values from 0.15.* to 100; a prospectivity map holds probabilities"),
        ({"MAP": ensemble, "MAPS": [stack]}, r"member map 'stack\.tif' has 2 bands"),
        ({"MAP": lonlat}, r"geographic CRS .*Reproject it to a projected CRS"),
        ({"MAP": ensemble, "THRESHOLD": -0.2}, r"between 0 and 1; -0\.2 was given"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_a_map_that_is_not_one_band_of_probabilities_is_refused(run_alg, study, tmp_path, case):
    ensemble, _, _, deposits = study
    parameters, message = not_probability_maps(ensemble, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {"DEPOSITS": deposits, **parameters, "OUTPUT": str(out / "r.html")})
    assert list(out.iterdir()) == []


def test_progress_never_goes_back(run_alg, study, tmp_path):
    ensemble, model, set_path, deposits = study
    feedback = ProgressFeedback()
    barren = point_layer(np.array([[501000.0, 6998000.0]]), {})
    run_alg(ALG, {"MAP": ensemble, "MAPS": [ensemble], "MODELS": [model], "TRAINING_SET": set_path,
                  "DEPOSITS": deposits, "SPLIT_FIELD": "split", "BARREN": barren, "OUTPUT": str(tmp_path / "r.html")},
            feedback)
    assert feedback.progress and feedback.progress[-1] == 100 and feedback.steps_back() == []


@pytest.mark.parametrize("above", [-1, 20, 70])
def test_cancel_leaves_nothing(run_alg, study, tmp_path, above):
    ensemble, _, _, deposits = study
    feedback = ProgressFeedback(cancel_above=above)
    with pytest.raises(QgsProcessingException, match="Cancelled by the user"):
        run_alg(ALG, {"MAP": ensemble, "MAPS": [ensemble], "DEPOSITS": deposits,
                      "OUTPUT": str(tmp_path / "r.html")}, feedback)
    assert list(tmp_path.iterdir()) == []
