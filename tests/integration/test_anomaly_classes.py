"""deepprospect:anomalyclasses through processing.run: classes, table, ranked targets, study area, styles on load,
bad input."""

import os

import numpy as np
import processing
import pytest
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from layer_factory import ProgressFeedback, centres_inside, point_layer, wkt_layer
from qgis.core import QgsProcessingException, QgsProject, QgsWkbTypes

ALG = "deepprospect:anomalyclasses"
GRID = GridSpec(500000.0, 7006000.0, 100.0, 100.0, 60, 60, "EPSG:32650")  # 0.01 km² cells
BLOBS = [(15, 15, 1.0), (40, 45, 0.8), (45, 10, 0.6)]  # row, col, height


def blob_map(path, grid=GRID, constant=False, scale=1.0):
    """Three Gaussian blobs of falling height, as distinct values (ranks / cells) so class areas are exact."""
    rows, cols = np.mgrid[0:grid.rows, 0:grid.cols]
    field = sum(h * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 30.0) for r, c, h in BLOBS)
    ranks = np.argsort(np.argsort(field.ravel(), kind="stable")).reshape(field.shape)
    values = np.full(field.shape, 0.5) if constant else (ranks + 1) / field.size
    write_geotiff(str(path), scale * values, grid, ["prospectivity"])
    return str(path)


def cell_centre(row, col):
    return GRID.x_min + (col + 0.5) * GRID.pixel_width, GRID.y_max - (row + 0.5) * GRID.pixel_height


def test_classes_table_and_ranked_targets(run_alg, tmp_path):
    deposits = point_layer([cell_centre(r, c) for r, c, _ in BLOBS] + [cell_centre(0, 59)], {})
    result = run_alg(ALG, {"MAP": blob_map(tmp_path / "map.tif"), "DEPOSITS": deposits, "TARGET_CLASSES": 2,
                           "MIN_TARGET_AREA": 0.05, "OUTPUT": str(tmp_path / "classes.tif"),
                           "CLASS_TABLE": "memory:", "TARGETS": "memory:"})
    with rasterio.open(result["OUTPUT"]) as src:
        classes = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and "DEEPPROSPECT_ANOMALY_CLASSES" in src.tags()
    assert np.bincount(classes.ravel(), minlength=4).tolist() == [2520, 180, 360, 540]
    table = [dict(zip(result["CLASS_TABLE"].fields().names(), f.attributes()))
             for f in result["CLASS_TABLE"].getFeatures()]
    assert [row["name"] for row in table] == ["top 5 %", "5–15 %", "15–30 %", "background (30–100 %)"]
    assert [row["area_km2"] for row in table] == pytest.approx([1.8, 3.6, 5.4, 25.2])
    assert [row["deposits"] for row in table] == [3, 0, 0, 1] and table[0]["deposit_pct"] == 75.0  # blob peaks
    targets = result["TARGETS"]
    assert targets.wkbType() == QgsWkbTypes.MultiPolygon and targets.crs().authid() == "EPSG:32650"
    features = sorted(targets.getFeatures(), key=lambda f: f["rank"])
    assert [f["rank"] for f in features] == list(range(1, len(features) + 1)) and len(features) >= 2
    assert [f["mean_prob"] for f in features] == sorted((f["mean_prob"] for f in features), reverse=True)
    assert all(f["area_km2"] >= 0.05 for f in features)
    assert features[0]["deposits"] == 1 and features[0].geometry().contains(features[0].geometry().centroid())
    assert features[0].geometry().area() == pytest.approx(features[0]["cells"] * 1e4)


def test_classes_thresholds_and_targets_from_the_study_area_only(run_alg, tmp_path):
    # rows 10-49, columns 5-34: blob 2 lies outside
    area = wkt_layer(["POLYGON((500520 7001020, 503480 7001020, 503480 7004980, 500520 7004980, 500520 7001020))"])
    inside = centres_inside(area, GRID.x_centres(), GRID.y_centres())
    deposits = point_layer([cell_centre(r, c) for r, c, _ in BLOBS], {})
    map_path = blob_map(tmp_path / "map.tif")
    result = run_alg(ALG, {"MAP": map_path, "DEPOSITS": deposits, "STUDY_AREA": area,
                           "OUTPUT": str(tmp_path / "classes.tif"), "CLASS_TABLE": "memory:", "TARGETS": "memory:"})
    with rasterio.open(result["OUTPUT"]) as src:
        classes = src.read(1)
    with rasterio.open(map_path) as src:
        values = src.read(1)
    assert inside.sum() == 1200 and (classes[~inside] == 255).all()
    assert np.bincount(classes[inside], minlength=4).tolist() == [840, 60, 120, 180]  # 5, 10, 15 % of 1200
    ordered = np.sort(values[inside])[::-1]
    table = {f["class"]: f for f in result["CLASS_TABLE"].getFeatures()}
    assert [table[k]["threshold"] for k in (1, 2, 3)] == pytest.approx([ordered[59], ordered[179], ordered[359]])
    assert table[1]["deposits"] == 2 and table[1]["deposit_pct"] == 100.0  # blob 2's deposit is outside
    polygon = next(area.getFeatures()).geometry()
    assert all(polygon.contains(f.geometry()) for f in result["TARGETS"].getFeatures())


def test_styles_are_applied_when_outputs_are_loaded(deepprospect_provider, tmp_path):
    project = QgsProject.instance()
    results = processing.runAndLoadResults(ALG, {
        "MAP": blob_map(tmp_path / "map.tif"), "CLASS_LIMITS": "10,20", "OUTPUT": str(tmp_path / "classes.tif"),
        "CLASS_TABLE": str(tmp_path / "table.csv"), "TARGETS": str(tmp_path / "targets.gpkg")})
    loaded = {layer.source().split("|")[0]: layer for layer in project.mapLayers().values()}
    try:
        classes, targets = loaded[results["OUTPUT"]], loaded[str(tmp_path / "targets.gpkg")]
        renderer = classes.renderer()
        assert renderer.type() == "paletted"
        palette = {int(c.value): (c.label, c.color.name(), c.color.alpha()) for c in renderer.classes()}
        assert palette == {0: ("background (20–100 %)", "#000000", 0), 1: ("top 10 %", "#d7191c", 255),
                           2: ("10–20 %", "#ffd92f", 255)}
        assert targets.labelsEnabled() and targets.labeling().settings().fieldName == "rank"
        assert targets.renderer().symbol().symbolLayer(0).properties()["style"] == "no"
    finally:
        project.removeAllMapLayers()


@pytest.mark.parametrize("case", ["constant", "limits", "target_classes", "geographic", "percent"])
def test_bad_input_gives_a_clear_error_and_no_file(run_alg, tmp_path, case):
    map_path = tmp_path / "map.tif"
    grid = GridSpec(100.0, 30.0, 0.01, 0.01, 60, 60, "EPSG:4326") if case == "geographic" else GRID
    blob_map(map_path, grid, constant=case == "constant", scale=100.0 if case == "percent" else 1.0)
    extra = {"limits": {"CLASS_LIMITS": "15,5,30"}, "target_classes": {"TARGET_CLASSES": 4}}.get(case, {})
    message = {"constant": "same value", "limits": "must increase", "target_classes": "only 3 class",
               "geographic": "geographic CRS", "percent": r"values from 0\.02\d* to 100; .* probabilities"}[case]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {"MAP": str(map_path), "OUTPUT": str(out / "classes.tif"),
                      "CLASS_TABLE": str(out / "table.csv"), "TARGETS": str(out / "targets.gpkg"), **extra})
    assert os.listdir(out) == []


def anomaly_outputs(folder):
    return {"OUTPUT": str(folder / "classes.tif"), "CLASS_TABLE": str(folder / "table.csv"),
            "TARGETS": str(folder / "targets.gpkg")}


def test_progress_never_goes_back(run_alg, tmp_path):
    deposits = point_layer([cell_centre(r, c) for r, c, _ in BLOBS], {})
    map_path = blob_map(tmp_path / "map.tif")
    feedback = ProgressFeedback()
    run_alg(ALG, {"MAP": map_path, "DEPOSITS": deposits, "TARGET_CLASSES": 2, **anomaly_outputs(tmp_path)},
            feedback)
    assert feedback.progress and feedback.progress[-1] >= 80 and feedback.steps_back() == []


@pytest.mark.parametrize("above", [-1, 10, 30, 60])
def test_cancel_leaves_nothing(run_alg, tmp_path, above):
    map_path = blob_map(tmp_path / "map.tif")
    out = tmp_path / "out"
    out.mkdir()
    feedback = ProgressFeedback(cancel_above=above)
    with pytest.raises(QgsProcessingException, match="Cancelled by the user"):
        run_alg(ALG, {"MAP": map_path, "DEPOSITS": point_layer([cell_centre(r, c) for r, c, _ in BLOBS], {}),
                      "TARGET_CLASSES": 2, **anomaly_outputs(out)}, feedback)
    assert os.listdir(out) == []
