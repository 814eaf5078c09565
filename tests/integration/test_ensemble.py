"""deepprospect:ensemble through processing.run: card weights, given weights, study area, outputs, bad input,
cancel."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.ensemble import combine
from deepprospect.core.raster_io import ENSEMBLE_TAG, MODEL_CARD_TAG, write_geotiff
from layer_factory import ProgressFeedback, RecordingFeedback, centres_inside, wkt_layer
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

ALG = "deepprospect:ensemble"
GRID = GridSpec(400000.0, 3302000.0, 100.0, 100.0, 12, 10, "EPSG:32650")
AUC = (0.9, 0.6, 0.75)
ACCURACY = (0.96, 0.97, 0.94)  # validation accuracy; the test accuracy, never used for weights, is 0.5 for all


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """Three seeded probability maps with model cards (validation AUC 0.9, 0.6, 0.75) and a nodata cell."""
    folder = tmp_path_factory.mktemp("maps")
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 1, (3, *GRID.shape))
    values[1, 4, 5] = np.nan
    paths = []
    for i, (array, auc, accuracy) in enumerate(zip(values, AUC, ACCURACY)):
        card = {"architecture": "lenet", "metrics": {"validation": {"auc": auc, "f1": None, "accuracy": accuracy},
                                                     "test": {"accuracy": 0.5}}}
        paths.append(str(folder / f"model{i}.tif"))
        write_geotiff(paths[-1], array, GRID, ["prospectivity"], metadata={MODEL_CARD_TAG: json.dumps(card)})
    return paths, values.astype(np.float32).astype(np.float64)


def read(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.tags()


def test_weighted_average_from_card_auc_with_uncertainty_and_classes(run_alg, maps, tmp_path):
    paths, values = maps
    out = {key: str(tmp_path / name) for key, name in (("OUTPUT", "e.tif"), ("UNCERTAINTY", "u.tif"),
                                                        ("CLASSES", "c.tif"))}
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MAPS": paths, "METHOD": "weighted_average", "WEIGHT_METRIC": "auc", **out}, feedback)
    assert result == out
    expected = combine(values, "weighted_average", AUC)
    for key, array in zip(("OUTPUT", "UNCERTAINTY", "CLASSES"), expected):
        got, tags = read(out[key])
        np.testing.assert_allclose(got, array, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert json.loads(tags[ENSEMBLE_TAG])["weights"] == pytest.approx(np.array(AUC) / sum(AUC))
    assert "Weights (scaled to sum 1): model0.tif 0.4" in feedback.text
    assert "Prospective cells per map" in feedback.text and "119 cells with data" in feedback.text


def test_weighted_vote_by_validation_accuracy_logs_and_records_the_weights(run_alg, maps, tmp_path):
    paths, values = maps
    feedback = RecordingFeedback()
    out = str(tmp_path / "e.tif")
    run_alg(ALG, {"MAPS": paths, "METHOD": "weighted_vote", "WEIGHT_METRIC": "accuracy", "OUTPUT": out}, feedback)
    got, tags = read(out)
    np.testing.assert_allclose(got, combine(values, "weighted_vote", ACCURACY)[0], rtol=1e-6, equal_nan=True)
    record = json.loads(tags[ENSEMBLE_TAG])
    assert record["weights"] == pytest.approx(np.array(ACCURACY) / sum(ACCURACY))
    assert record["weights_from"] == "Validation accuracy (model card; he2024)"
    assert "Weights (scaled to sum 1): model0.tif 0.3345, model1.tif 0.338, model2.tif 0.3275 — from Validation " \
           "accuracy (model card; he2024)." in feedback.text


def test_weighted_voting_with_given_weights_and_default_outputs(run_alg, maps, tmp_path):
    paths, values = maps
    result = run_alg(ALG, {"MAPS": paths, "METHOD": "weighted_vote", "WEIGHT_METRIC": "given", "WEIGHTS": "3, 1; 1",
                           "THRESHOLD": 0.3, "OUTPUT": str(tmp_path / "e.tif"), "UNCERTAINTY": str(tmp_path / "u.tif")})
    share, spread, _ = combine(values, "weighted_vote", [3, 1, 1], threshold=0.3)
    np.testing.assert_allclose(read(result["OUTPUT"])[0], share, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(read(result["UNCERTAINTY"])[0], spread, atol=1e-7, equal_nan=True)
    assert result["CLASSES"] is None and sorted(os.listdir(tmp_path)) == ["e.tif", "u.tif"]


def test_unweighted_rule_ignores_typed_weights_with_a_warning(run_alg, maps, tmp_path):
    paths, values = maps
    feedback = RecordingFeedback()
    run_alg(ALG, {"MAPS": paths, "METHOD": "majority_vote", "WEIGHTS": "1,2,3", "OUTPUT": str(tmp_path / "e.tif")},
            feedback)
    assert "weights are ignored" in feedback.text
    np.testing.assert_allclose(read(tmp_path / "e.tif")[0], combine(values, "majority_vote")[0], equal_nan=True)


def test_cells_outside_the_study_area_are_nodata_and_not_counted(run_alg, maps, tmp_path):
    paths, values = maps
    area = wkt_layer(["POLYGON((400220 3301220, 400980 3301220, 400980 3301900, 400220 3301900, 400220 3301220))"])
    inside = centres_inside(area, GRID.x_centres(), GRID.y_centres())
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MAPS": paths, "METHOD": "average", "STUDY_AREA": area,
                           "OUTPUT": str(tmp_path / "e.tif"), "CLASSES": str(tmp_path / "c.tif")}, feedback)
    mean, _, classes = combine(np.where(inside, values, np.nan), "average")
    got, tags = read(result["OUTPUT"])
    assert np.isnan(got[~inside]).all() and np.isnan(read(result["CLASSES"])[0][~inside]).all()
    np.testing.assert_allclose(got, mean, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert inside.sum() == 8 * 7 and inside[4, 5]  # the nodata cell of map 1 lies inside
    assert json.loads(tags[ENSEMBLE_TAG])["study_area"] is True
    assert "over 55 cells with data" in feedback.text  # 56 inside, one of them nodata in a map
    assert f"ensemble: {int(np.nansum(classes))}." in feedback.text


def bad_cases(paths, folder):
    shifted = str(folder / "shifted.tif")
    write_geotiff(shifted, np.full(GRID.shape, 0.5), GridSpec(400050.0, 3302000.0, 100.0, 100.0, 12, 10,
                                                              "EPSG:32650"), ["prospectivity"])
    bare = str(folder / "bare.tif")
    write_geotiff(bare, np.full(GRID.shape, 0.5), GRID, ["prospectivity"])
    empty = str(folder / "empty.tif")
    write_geotiff(empty, np.full(GRID.shape, np.nan), GRID, ["prospectivity"])
    return [
        ({"MAPS": [paths[0], empty, paths[1]]}, r"empty\.tif have no cell with data.*ensemble would be empty"),
        ({"MAPS": [paths[0], shifted]}, "not on the grid of 'model0.tif'"),
        ({"MAPS": [paths[0]]}, "at least two maps"),
        ({"MAPS": [paths[0], bare], "METHOD": "weighted_average"}, "'bare.tif' has no model card"),
        ({"MAPS": paths, "METHOD": "weighted_average", "WEIGHT_METRIC": "f1"}, "no validation F1"),
        ({"MAPS": paths, "METHOD": "weighted_average", "WEIGHTS": "1,2,3"}, "choose 'Given weights'"),
        ({"MAPS": paths, "METHOD": "weighted_vote", "WEIGHT_METRIC": "given"}, "no weights are given"),
        ({"MAPS": paths, "METHOD": "weighted_average", "WEIGHT_METRIC": "given", "WEIGHTS": "1,2"},
         "2 weight.*for 3 maps"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_bad_input_gives_a_clear_error_and_no_output(run_alg, maps, tmp_path, case):
    paths, _ = maps
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    parameters, message = bad_cases(paths, inputs)[case]
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {**parameters, "OUTPUT": str(out / "e.tif"), "UNCERTAINTY": str(out / "u.tif")})
    assert os.listdir(out) == []


def test_cancel_leaves_nothing(run_alg, maps, tmp_path):
    paths, _ = maps
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, {"MAPS": paths, "OUTPUT": str(tmp_path / "e.tif"), "UNCERTAINTY": str(tmp_path / "u.tif")},
                feedback)
    assert os.listdir(tmp_path) == []


def test_map_and_uncertainty_load_with_their_styles(deepprospect_provider, maps, tmp_path):
    import processing

    paths, _ = maps
    out, uncertainty = str(tmp_path / "e.tif"), str(tmp_path / "u.tif")
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.runAndLoadResults(ALG, {"MAPS": paths, "OUTPUT": out, "UNCERTAINTY": uncertainty},
                                 feedback=QgsProcessingFeedback(), context=context)
    loaded = {layer.source(): layer for layer in QgsProject.instance().mapLayers().values()}
    try:
        ranges = {}
        for path in (out, uncertainty):
            renderer = loaded[path].renderer()
            assert renderer.type() == "singlebandpseudocolor"
            shader = renderer.shader().rasterShaderFunction()
            ranges[path] = (shader.minimumValue(), shader.maximumValue())
        assert ranges == {out: (0.0, 1.0), uncertainty: (0.0, 0.5)}
    finally:
        QgsProject.instance().removeMapLayers([loaded[path].id() for path in (out, uncertainty) if path in loaded])


def test_progress_never_goes_back(run_alg, maps, tmp_path):
    paths, _ = maps
    area = wkt_layer(["POLYGON((400150 3300950, 400850 3300950, 400850 3301750, 400150 3301750, 400150 3300950))"])
    feedback = ProgressFeedback()
    run_alg(ALG, {"MAPS": paths, "STUDY_AREA": area, "OUTPUT": str(tmp_path / "e.tif"),
                  "UNCERTAINTY": str(tmp_path / "u.tif")}, feedback)
    assert feedback.progress and feedback.progress[-1] == 100 and feedback.steps_back() == []
