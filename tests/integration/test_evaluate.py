"""deepprospect:evaluate through processing.run: split field, held-out layer in another CRS, study area, outputs,
bad input."""

import errno
import os

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import read_map, write_geotiff
from deepprospect.core.sampling.labels import point_cells
from deepprospect.core.scoring.evaluation import evaluate_map
from layer_factory import ProgressFeedback, RecordingFeedback, centres_inside, point_layer, wkt_layer
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)
from sklearn.metrics import roc_auc_score

ALG = "deepprospect:evaluate"
GRID = GridSpec(400000.0, 3302000.0, 50.0, 50.0, 40, 40, "EPSG:32650")


@pytest.fixture(scope="module")
def halo_map(tmp_path_factory):
    """A map that is high near 15 deposits (10 train, 5 test) with noise and a nodata strip; its path and points."""
    rng = np.random.default_rng(4)
    deposits = np.array([400000.0, 3300000.0]) + rng.uniform(300, 1900, (15, 2))
    centres = GRID.cell_centres().reshape(40, 40, 2)
    near = np.min(np.linalg.norm(centres[:, :, None] - deposits, axis=-1), axis=-1)
    values = np.clip(np.exp(-((near / 150.0) ** 2)) + 0.15 * rng.standard_normal(GRID.shape), 0, 1)
    values[:, :3] = np.nan
    path = str(tmp_path_factory.mktemp("map") / "prospectivity.tif")
    write_geotiff(path, values, GRID, ["prospectivity"])
    barren = np.array([400000.0, 3300000.0]) + rng.uniform(300, 1900, (40, 2))
    return path, deposits, barren, values


def read_table(path):
    layer = QgsVectorLayer(str(path), "metrics", "ogr")
    assert layer.isValid()
    return {(f["deposits"], f["metric"]): float(f["value"]) for f in layer.getFeatures()}  # CSV values are text


def outputs(folder):
    return {"OUTPUT": str(folder / "metrics.csv"), "REPORT": str(folder / "report.html"),
            "ROC_PLOT": str(folder / "roc.png"), "RATE_PLOT": str(folder / "rate.png"),
            "PA_PLOT": str(folder / "pa.png")}


def test_split_field_gives_table_plots_report_and_numbers(run_alg, halo_map, tmp_path):
    path, deposits, barren, values = halo_map
    split = ["train"] * 9 + [None] + ["Test "] * 5  # NULL: training; values match trimmed, any case
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {"split": split}, name="gold"),
                           "SPLIT_FIELD": "split", "BARREN": point_layer(barren, {}, name="holes"),
                           **outputs(tmp_path)}, feedback)
    expected = evaluate_map(values.astype(np.float32), GRID, deposits[:10], deposits[10:], barren)
    rows = read_table(tmp_path / "metrics.csv")
    assert rows[("training", "roc_auc")] == pytest.approx(expected.sets[0].roc.auc)
    assert rows[("held-out", "prediction_rate_auc")] == pytest.approx(expected.sets[1].rate.auc)
    assert rows[("all", "pa_threshold")] == pytest.approx(expected.prediction_area.threshold)
    assert result["ROC_AUC"] == pytest.approx(expected.sets[2].roc.auc) and result["ROC_AUC"] > 0.8
    assert result["SUCCESS_RATE_AUC"] > 0.8 and result["PREDICTION_RATE_AUC"] > 0.8
    assert result["PA_DEPOSITS_PERCENT"] == pytest.approx(expected.prediction_area.deposit_percent_at)
    for key in ("ROC_PLOT", "RATE_PLOT", "PA_PLOT"):
        with open(result[key], "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "gold, split in test: 5 feature(s)" in report and "holes: 40 point(s)" in report
    assert f"{expected.sets[0].roc.auc:.4f}" in report and report.count("data:image/png;base64,") == 3
    assert "barren cells" in report
    for result_set in expected.sets:  # the threshold metrics: CSV, report and log
        (tn, fp), (fn, tp) = result_set.confusion_matrix
        counts = [rows[(result_set.name, name)] for name in ("true_negatives", "false_positives", "false_negatives",
                                                             "true_positives")]
        assert counts == [tn, fp, fn, tp] and tn + fp == result_set.n_negative
        for name in ("precision", "macro_precision", "macro_recall", "macro_f1"):
            assert rows[(result_set.name, name)] == pytest.approx(getattr(result_set, name))
        assert f"TN {tn}</td><td>FP {fp}" in report
        assert f"{result_set.name} deposits: precision {result_set.precision:.4f}" in feedback.text
        assert f"confusion matrix TN {tn}, FP {fp}, FN {fn}, TP {tp}" in feedback.text


def test_held_out_layer_in_another_crs_is_reprojected(run_alg, halo_map, tmp_path):
    path, deposits, _, _ = halo_map
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32650"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    lonlat = [to_wgs84.transform(QgsPointXY(*xy)) for xy in deposits[10:]]
    feedback = RecordingFeedback()
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    a = run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits[:10], {}),
                      "HELD_OUT_DEPOSITS": point_layer([(p.x(), p.y()) for p in lonlat], {}, crs="EPSG:4326"),
                      "OUTPUT": str(first / "m.csv"), "REPORT": str(first / "r.html")}, feedback)
    b = run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {"split": ["a"] * 10 + ["test"] * 5}),
                      "SPLIT_FIELD": "split", "OUTPUT": str(second / "m.csv"), "REPORT": str(second / "r.html")})
    assert "reprojected from EPSG:4326" in feedback.text
    assert read_table(first / "m.csv") == pytest.approx(read_table(second / "m.csv"))
    assert a["PREDICTION_RATE_AUC"] == pytest.approx(b["PREDICTION_RATE_AUC"])
    assert sorted(os.listdir(first)) == ["m.csv", "r.html"]


def test_without_held_out_deposits_all_are_training(run_alg, halo_map, tmp_path):
    path, deposits, _, _ = halo_map
    outside = np.vstack([deposits, [[390000.0, 3300000.0]], [[400010.0, 3301000.0]]])  # outside; on nodata
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(outside, {}), "OUTPUT": str(tmp_path / "m.gpkg"),
                           "REPORT": str(tmp_path / "r.html")}, feedback)
    assert result["PREDICTION_RATE_AUC"] is None and result["SUCCESS_RATE_AUC"] > 0.8
    assert "1 training deposit(s) outside the map and 1 on nodata cells were left out" in feedback.text
    assert {name for name, _ in read_table(tmp_path / "m.gpkg")} == {"training", "all"}
    assert "other cells with data" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_study_area_scores_inside_cells_only(run_alg, halo_map, tmp_path):
    path, deposits, _, values = halo_map
    area = wkt_layer(["POLYGON((400420 3300610, 401530 3300610, 401530 3301770, 400420 3301770, 400420 3300610))"])
    inside = centres_inside(area, GRID.x_centres(), GRID.y_centres())
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {}),
                           "STUDY_AREA": area, "OUTPUT": str(tmp_path / "m.csv"),
                           "REPORT": str(tmp_path / "r.html")}, feedback)
    table = read_table(tmp_path / "m.csv")
    stored = values.astype(np.float32).astype(np.float64)
    rows, cols, _ = point_cells(deposits, GRID)
    used = inside[rows, cols]
    deposit_cells = tuple(np.array(sorted(set(zip(rows[used], cols[used])))).T)
    negative = inside & ~np.isnan(stored)
    negative[deposit_cells] = False
    labels = np.r_[np.ones(len(deposit_cells[0])), np.zeros(negative.sum())]
    assert 0 < used.sum() < len(deposits) and table[("training", "negative_cells")] == negative.sum()
    auc = roc_auc_score(labels, np.r_[stored[deposit_cells], stored[negative]])
    assert result["ROC_AUC"] == pytest.approx(auc, abs=1e-9)
    assert table[("all", "valid_cells")] == (inside & ~np.isnan(stored)).sum()
    expected = evaluate_map(stored, GRID, deposits, study_area=inside)
    assert result["SUCCESS_RATE_AUC"] == pytest.approx(expected.sets[0].rate.auc)
    assert result["PA_THRESHOLD"] == pytest.approx(expected.prediction_area.threshold)
    assert f"{(~used).sum()} on nodata cells or outside the study area" in feedback.text
    assert f"{inside.sum()} cells inside" in (tmp_path / "r.html").read_text(encoding="utf-8")


def bad_cases(path, deposits, folder):
    constant = str(folder / "constant.tif")
    write_geotiff(constant, np.full(GRID.shape, 0.3), GRID, ["prospectivity"])
    values = read_map(path).values
    percent, stack, lonlat = str(folder / "percent.tif"), str(folder / "stack.tif"), str(folder / "lonlat.tif")
    write_geotiff(percent, 100 * values, GRID, ["prospectivity"])
    write_geotiff(stack, np.stack([values, values]), GRID, ["a", "b"])
    write_geotiff(lonlat, values, GridSpec(117.0, 29.8, 0.0005, 0.0005, 40, 40, "EPSG:4326"), ["prospectivity"])
    split = {"split": ["train"] * 14 + ["test"]}
    return [
        ({"MAP": percent, "DEPOSITS": point_layer(deposits, {})},
         r"'percent\.tif' has values from 0 to 100; a prospectivity map holds probabilities from 0 to 1.*Raster "
         "calculator"),
        ({"MAP": stack, "DEPOSITS": point_layer(deposits, {})}, r"'stack\.tif' has 2 bands; a prospectivity map is"),
        ({"MAP": lonlat, "DEPOSITS": point_layer(deposits, {})}, "geographic CRS .*meaningless.*projected CRS"),
        ({"MAP": path, "DEPOSITS": point_layer(deposits, {}), "THRESHOLD": 50},
         r"\(THRESHOLD\) must be between 0 and 1; 50 was given"),
        ({"MAP": constant, "DEPOSITS": point_layer(deposits, {})}, "constant map cannot rank"),
        ({"MAP": path, "DEPOSITS": point_layer(deposits + 1e5, {})}, "No deposit lies on a map cell"),
        ({"MAP": path, "DEPOSITS": point_layer(np.zeros((0, 2)), {})}, "has no features"),
        ({"MAP": path, "DEPOSITS": point_layer(deposits, split), "SPLIT_FIELD": "split",
          "HELD_OUT_DEPOSITS": point_layer(deposits[:2], {})}, "not both"),
        ({"MAP": path, "DEPOSITS": point_layer(deposits, {}), "BARREN": point_layer(deposits[:3] + 1e5, {})},
         "No barren point lies on a map cell"),
        ({"MAP": path, "DEPOSITS": point_layer(deposits, {}),
          "STUDY_AREA": wkt_layer(["POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))"])}, "study area covers no cell centre"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_input_gives_a_clear_error_and_no_output(run_alg, halo_map, tmp_path, case):
    path, deposits, _, _ = halo_map
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    parameters, message = bad_cases(path, deposits, inputs)[case]
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {**parameters, **outputs(out)})
    assert os.listdir(out) == []


def test_progress_never_goes_back(run_alg, halo_map, tmp_path):
    path, deposits, barren, _ = halo_map
    feedback = ProgressFeedback()
    run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {"split": ["a"] * 10 + ["test"] * 5}),
                  "SPLIT_FIELD": "split", "BARREN": point_layer(barren, {}), **outputs(tmp_path)}, feedback)
    assert feedback.progress and feedback.progress[-1] >= 80 and feedback.steps_back() == []


@pytest.mark.parametrize("above", [-1, 10, 50])
def test_cancel_leaves_nothing(run_alg, halo_map, tmp_path, above):
    path, deposits, _, _ = halo_map
    feedback = ProgressFeedback(cancel_above=above)
    with pytest.raises(QgsProcessingException, match="Cancelled by the user"):
        run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {}), **outputs(tmp_path)}, feedback)
    assert os.listdir(tmp_path) == []


RESOURCE_FAILURES = {
    "memory": (MemoryError(), "ran out of memory"),
    "gpu memory": (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "ran out of GPU memory"),
    "disk full": (OSError(errno.ENOSPC, "No space left on device", "report.html"), "the disk is full"),
}


@pytest.mark.parametrize("failure", RESOURCE_FAILURES)
def test_resource_failures_become_messages_and_leave_nothing(run_alg, halo_map, tmp_path, monkeypatch, failure):
    """Out of memory (RAM or GPU) and a full disk mid-run: a plain message naming the step, and no output."""
    path, deposits, _, _ = halo_map
    error, message = RESOURCE_FAILURES[failure]

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("deepprospect.algorithms.evaluate.evaluate_map", fail)
    with pytest.raises(QgsProcessingException, match=f"Evaluate prospectivity map.*{message}"):
        run_alg(ALG, {"MAP": path, "DEPOSITS": point_layer(deposits, {}), **outputs(tmp_path)})
    assert os.listdir(tmp_path) == []
