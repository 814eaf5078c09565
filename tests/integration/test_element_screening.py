"""deepprospect:elementscreening through processing.run: synthetic and real Murchison data, bad input, cancel."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.evidence.transforms import log10_positive
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import idw_grid
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.synthetic import make_survey
from layer_factory import RecordingFeedback, point_layer
from murchison_rasters import fault_distance_stack
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)

ALG = "deepprospect:elementscreening"



@pytest.fixture(scope="module")
def survey_stack(tmp_path_factory):
    """The default synthetic survey gridded (log10 IDW, 500 m) into a named stack, and the survey."""
    survey = make_survey()
    grid = GridSpec.from_extent(*survey.bounds, 500, survey.crs)
    path = str(tmp_path_factory.mktemp("survey") / "survey_stack.tif")
    logged, _ = log10_positive(survey.values)
    write_geotiff(path, idw_grid(survey.sample_xy, logged, grid), grid, survey.element_names,
                  metadata={"SOURCE": "synthetic"}, band_metadata=[{"UNIT": u} for u in survey.units])
    return path, survey


def read_table(path):
    layer = QgsVectorLayer(str(path), "table", "ogr")
    assert layer.isValid()
    return [dict(zip(layer.fields().names(), f.attributes())) for f in layer.getFeatures()]


def test_synthetic_survey_gives_table_selected_stack_and_chart(run_alg, survey_stack, tmp_path):
    path, survey = survey_stack
    out = {"OUTPUT": str(tmp_path / "table.gpkg"), "SELECTED_STACK": str(tmp_path / "selected.tif"),
           "CHART": str(tmp_path / "z.png")}
    result = run_alg(ALG, {"STACK": path, "DEPOSITS": point_layer(survey.deposit_xy, {}),
                           "BARREN": point_layer(survey.barren_xy, {}), **out})
    rows = read_table(out["OUTPUT"])
    assert [row["band"] for row in rows] == survey.element_names
    assert set(rows[0]) >= {"band", "svm_auc", "roc_auc", "s_auc", "z", "p_value", "selected", "direction",
                            "n_deposit", "n_background"}
    selected = [row["band"] for row in rows if row["selected"]]
    assert {"Au", "As", "Cu"} <= set(selected) and "Ni" not in selected
    assert result["SELECTED_COUNT"] == len(selected) and result["SELECTED_BANDS"] == ",".join(selected)
    assert all(row["z"] > 2.58 for row in rows if row["selected"])
    with rasterio.open(out["SELECTED_STACK"]) as dst, rasterio.open(path) as src:
        assert list(dst.descriptions) == selected and dst.transform == src.transform and dst.crs == src.crs
        assert dst.tags()["SOURCE"] == "synthetic"
        assert json.loads(dst.tags()["DEEPPROSPECT_SCREENING"])["selected"] == selected
        au = survey.element_names.index("Au")
        assert dst.tags(selected.index("Au") + 1)["UNIT"] == "ppb"
        np.testing.assert_array_equal(dst.read(selected.index("Au") + 1), src.read(au + 1))
    with open(out["CHART"], "rb") as chart:
        assert chart.read(8) == b"\x89PNG\r\n\x1a\n"


def test_real_murchison_gold_sits_near_faults(run_alg, data_dir, tmp_path):
    gpkg = str(data_dir / "murchison" / "murchison_copper.gpkg")
    stack = str(tmp_path / "faults.tif")
    fault_distance_stack(gpkg, stack)
    gold = QgsVectorLayer(f"{gpkg}|layername=murchison_gold", "gold", "ogr")
    assert gold.featureCount() == 255
    feedback = RecordingFeedback()
    run_alg(ALG, {"STACK": stack, "DEPOSITS": gold, "OUTPUT": str(tmp_path / "table.gpkg")}, feedback)
    distance, noise = read_table(tmp_path / "table.gpkg")
    assert distance["band"] == "fault_distance" and distance["selected"] and distance["direction"] == "low"
    assert distance["z"] > 10 and distance["roc_auc"] > 0.8
    assert not noise["selected"]
    assert "share a cell" in feedback.text and distance["n_deposit"] < 255


def test_deposits_in_another_crs_are_reprojected_and_logged(run_alg, survey_stack, tmp_path):
    path, survey = survey_stack
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem(survey.crs),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    lonlat = [to_wgs84.transform(QgsPointXY(*xy)) for xy in survey.deposit_xy]
    layer = point_layer([(p.x(), p.y()) for p in lonlat], {}, crs="EPSG:4326")
    feedback = RecordingFeedback()
    run_alg(ALG, {"STACK": path, "DEPOSITS": layer, "OUTPUT": str(tmp_path / "wgs84.gpkg")}, feedback)
    run_alg(ALG, {"STACK": path, "DEPOSITS": point_layer(survey.deposit_xy, {}),
                  "OUTPUT": str(tmp_path / "utm.gpkg")})
    assert "reprojected from EPSG:4326" in feedback.text
    assert read_table(tmp_path / "wgs84.gpkg") == read_table(tmp_path / "utm.gpkg")


def test_stack_without_band_names_gets_derived_names(run_alg, data_dir, tmp_path):
    gpkg = str(data_dir / "murchison" / "murchison_copper.gpkg")
    stack = str(tmp_path / "unnamed.tif")
    fault_distance_stack(gpkg, stack, pixel=4000.0, band_names=None)
    gold = QgsVectorLayer(f"{gpkg}|layername=murchison_gold", "gold", "ogr")
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"STACK": stack, "DEPOSITS": gold, "OUTPUT": str(tmp_path / "t.gpkg"),
                           "SELECTED_STACK": str(tmp_path / "sel.tif")}, feedback)
    assert [row["band"] for row in read_table(tmp_path / "t.gpkg")] == ["unnamed_b1", "unnamed_b2"]
    assert "have no name" in feedback.text and result["SELECTED_BANDS"] == "unnamed_b1"
    with rasterio.open(tmp_path / "sel.tif") as dst:
        assert dst.descriptions == ("unnamed_b1",)


def test_deposits_outside_and_on_nodata_are_reported_and_skipped(run_alg, tmp_path):
    grid = GridSpec(400000.0, 3302000.0, 50.0, 50.0, 40, 40, "EPSG:32650")
    rng = np.random.default_rng(2)
    deposits = np.array([400000.0, 3300000.0]) + rng.uniform(100, 1900, (15, 2))
    centres = grid.cell_centres().reshape(40, 40, 2)
    near = np.min(np.linalg.norm(centres[:, :, None] - deposits, axis=-1), axis=-1)
    band = np.exp(-((near / 150.0) ** 2)) + 0.2 * rng.standard_normal(grid.shape)
    band[:, :5] = np.nan
    stack = str(tmp_path / "halo.tif")
    write_geotiff(stack, band[None], grid, ["halo"])
    extra = np.array([[390000.0, 3301000.0], [400010.0, 3301000.0]])  # outside; on the nodata strip
    feedback = RecordingFeedback()
    run_alg(ALG, {"STACK": stack, "DEPOSITS": point_layer(np.vstack([deposits, extra]), {}),
                  "OUTPUT": str(tmp_path / "t.gpkg")}, feedback)
    assert "1 deposit(s) outside the stack" in feedback.text and "on nodata cells" in feedback.text
    (row,) = read_table(tmp_path / "t.gpkg")
    assert row["selected"] and row["direction"] == "high" and row["n_deposit"] <= 15


def bad_cases(survey):
    far = survey.deposit_xy + 1e6
    return [
        (point_layer(far, {}), "Only 0 deposit cell"),
        (point_layer(survey.deposit_xy[:1], {}), "Only 1 deposit cell"),
        (point_layer(np.zeros((0, 2)), {}), "deposit layer is missing or has no features"),
    ]


@pytest.mark.parametrize("case", range(3))
def test_bad_deposits_give_a_clear_error_and_no_output(run_alg, survey_stack, tmp_path, case):
    path, survey = survey_stack
    layer, message = bad_cases(survey)[case]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {"STACK": path, "DEPOSITS": layer, "OUTPUT": str(out / "t.gpkg"),
                      "SELECTED_STACK": str(out / "s.tif"), "CHART": str(out / "z.png")})
    assert os.listdir(out) == []


def test_cancel_leaves_nothing(run_alg, survey_stack, tmp_path):
    path, survey = survey_stack
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 20 else None)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, {"STACK": path, "DEPOSITS": point_layer(survey.deposit_xy, {}),
                      "OUTPUT": str(tmp_path / "t.gpkg"), "SELECTED_STACK": str(tmp_path / "s.tif"),
                      "CHART": str(tmp_path / "z.png")}, feedback)
    assert os.listdir(tmp_path) == []


def test_no_band_selected_writes_the_table_but_no_stack(run_alg, survey_stack, tmp_path):
    path, survey = survey_stack
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"STACK": path, "DEPOSITS": point_layer(survey.deposit_xy, {}), "CRITICAL_VALUE": 1000,
                           "OUTPUT": str(tmp_path / "t.gpkg"), "SELECTED_STACK": str(tmp_path / "s.tif")}, feedback)
    assert result["SELECTED_COUNT"] == 0 and result["SELECTED_STACK"] is None
    assert "no stack of selected bands was written" in feedback.text
    assert sorted(os.listdir(tmp_path)) == ["t.gpkg"]
    assert not any(row["selected"] for row in read_table(tmp_path / "t.gpkg"))
