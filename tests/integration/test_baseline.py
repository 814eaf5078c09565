"""deepprospect:baseline through processing.run: synthetic survey stack and training set, both methods, bad input."""

import csv
import json
import os
import shutil

import numpy as np
import processing
import pytest
import rasterio
from deepprospect.core.evidence.stack import make_stack, write_evidence_stack
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import idw_grid
from deepprospect.core.raster_io import NODATA
from deepprospect.core.sampling.labels import LabelSettings, build_training_set, read_stack_tags, save_training_set
from deepprospect.core.synthetic import make_survey
from layer_factory import ProgressFeedback, RecordingFeedback
from qgis.core import QgsProcessingException, QgsProject

ALG = "deepprospect:baseline"
ELEMENTS = ["Au", "As", "Sb", "Ni"]


def survey_stack(path, survey, grid, normalise="z-score", names=ELEMENTS):
    columns = [survey.element_names.index(e) for e in ELEMENTS]
    raw = idw_grid(survey.sample_xy, np.log10(survey.values[:, columns]), grid)
    stack, _, recipe = make_stack(raw, ELEMENTS, normalise=normalise)
    write_evidence_stack(str(path), stack, grid, names, recipe)
    return str(path), stack


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A z-scored 4-band stack of the synthetic survey (250 m), its training set (.npz), and the survey/grid."""
    folder = tmp_path_factory.mktemp("baseline")
    survey = make_survey(seed=5)
    grid = GridSpec.from_extent(*survey.bounds, 250.0, survey.crs)
    stack_path, stack = survey_stack(folder / "stack.tif", survey, grid)
    training = build_training_set(stack.astype(np.float32), grid, ELEMENTS, survey.deposit_xy, survey.barren_xy,
                                  settings=LabelSettings(patch_size=1, negative_ratio=3.0, seed=2),
                                  stack_tags=read_stack_tags(stack_path))
    npz = str(folder / "training.npz")
    save_training_set(npz, training)
    return stack_path, npz, survey, grid


def test_random_forest_map_card_and_importances(run_alg, inputs, tmp_path):
    stack, npz, _, _ = inputs
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"TRAINING_SET": npz, "STACK": stack, "TREES": 40, "SEED": 3,
                           "OUTPUT": str(tmp_path / "rf.tif"), "IMPORTANCE": str(tmp_path / "rf.csv")},
                     feedback=feedback)
    with rasterio.open(result["OUTPUT"]) as src:
        values, card = src.read(1), json.loads(src.tags()["DEEPPROSPECT_MODEL_CARD"])
        assert src.descriptions == ("prospectivity",) and src.nodata == NODATA and src.dtypes[0] == "float32"
    valid = values != NODATA
    assert valid.mean() > 0.9 and 0 <= values[valid].min() and values[valid].max() <= 1
    assert card["architecture"] == "random_forest" and card["patch_size"] == 1 and card["seed"] == 3
    assert card["band_names"] == ELEMENTS and card["extra"]["hyperparameters"]["n_estimators"] == 40
    assert card["metrics"]["validation"]["auc"] > 0.7
    with open(result["IMPORTANCE"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["band"] for row in rows] == ELEMENTS
    assert sorted(int(row["rank"]) for row in rows) == [1, 2, 3, 4]
    assert "validation: accuracy" in feedback.text and "importance of Au" in feedback.text


def test_logistic_regression_writes_coefficients(run_alg, inputs, tmp_path):
    stack, npz, _, _ = inputs
    result = run_alg(ALG, {"TRAINING_SET": npz, "STACK": stack, "METHOD": "logistic_regression",
                           "OUTPUT": str(tmp_path / "lr.tif"), "IMPORTANCE": str(tmp_path / "lr.csv")})
    with rasterio.open(result["OUTPUT"]) as src:
        assert json.loads(src.tags()["DEEPPROSPECT_MODEL_CARD"])["architecture"] == "logistic_regression"
    with open(result["IMPORTANCE"], newline="") as handle:
        rows = {row["band"]: float(row["coefficient"]) for row in csv.DictReader(handle)}
    assert rows["Au"] > 0  # gold has a halo around the deposits


def test_loaded_map_gets_the_prospectivity_style(deepprospect_provider, inputs, tmp_path):
    stack, npz, _, _ = inputs
    results = processing.runAndLoadResults(ALG, {"TRAINING_SET": npz, "STACK": stack, "TREES": 5,
                                                 "OUTPUT": str(tmp_path / "map.tif"),
                                                 "IMPORTANCE": str(tmp_path / "weights.csv")})
    try:
        layer = next(layer for layer in QgsProject.instance().mapLayers().values()
                     if layer.source() == results["OUTPUT"])
        renderer = layer.renderer()
        assert renderer.type() == "singlebandpseudocolor"
        assert (renderer.classificationMin(), renderer.classificationMax()) == (0, 1)
    finally:
        QgsProject.instance().removeAllMapLayers()


def empty_copy(stack, path):
    """The stack with every cell nodata (same bands, recipe and grid)."""
    shutil.copy(stack, path)
    with rasterio.open(path, "r+") as dst:
        dst.write(np.full((dst.count, dst.height, dst.width), dst.nodata, dtype=dst.dtypes[0]))
    return str(path)


@pytest.mark.parametrize("case", ["band", "normalisation", "not_a_training_set", "empty"])
def test_bad_input_gives_a_clear_error_and_no_file(run_alg, inputs, tmp_path, case):
    stack, npz, survey, grid = inputs
    message = {"band": "lacks the band.*Ni", "normalisation": "normalised differently",
               "not_a_training_set": "not a DeepProspect training set",
               "empty": "no cell with data in every one of the model's bands .*map would be empty"}[case]
    if case == "band":
        stack, _ = survey_stack(tmp_path / "renamed.tif", survey, grid, names=["Au", "As", "Sb", "Nickel"])
    elif case == "normalisation":
        stack, _ = survey_stack(tmp_path / "minmax.tif", survey, grid, normalise="min-max")
    elif case == "empty":
        stack = empty_copy(stack, tmp_path / "empty.tif")
    else:
        npz = str(tmp_path / "other.npz")
        np.savez(npz, x=np.zeros(3))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {"TRAINING_SET": npz, "STACK": stack, "TREES": 5, "OUTPUT": str(out / "map.tif"),
                      "IMPORTANCE": str(out / "weights.csv")})
    assert os.listdir(out) == []


def test_progress_never_goes_back(run_alg, inputs, tmp_path):
    stack, npz, _, _ = inputs
    feedback = ProgressFeedback()
    run_alg(ALG, {"TRAINING_SET": npz, "STACK": stack, "TREES": 40, "OUTPUT": str(tmp_path / "rf.tif"),
                  "IMPORTANCE": str(tmp_path / "rf.csv")}, feedback)
    assert feedback.progress and feedback.progress[-1] == 100 and feedback.steps_back() == []


@pytest.mark.parametrize("above", [-1, 10, 50])
def test_cancel_leaves_nothing(run_alg, inputs, tmp_path, above):
    stack, npz, _, _ = inputs
    feedback = ProgressFeedback(cancel_above=above)
    with pytest.raises(QgsProcessingException, match="Cancelled by the user"):
        run_alg(ALG, {"TRAINING_SET": npz, "STACK": stack, "TREES": 40, "OUTPUT": str(tmp_path / "rf.tif"),
                      "IMPORTANCE": str(tmp_path / "rf.csv")}, feedback)
    assert os.listdir(tmp_path) == []
