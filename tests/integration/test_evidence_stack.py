"""deepprospect:evidencestack through processing.run: synthetic and real Murchison evidence, recipe, bad input."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.evidence.stack import STACK_TAG, apply_stack_recipe, read_stack_recipe
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import read_raster, write_geotiff
from deepprospect.core.synthetic import make_survey
from layer_factory import RecordingFeedback, centres_inside, point_layer, wkt_layer
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer
from rasterio.warp import transform_bounds
from scipy.spatial import cKDTree

ALG = "deepprospect:evidencestack"
ILR, CLR, ZSCORE, MINMAX = "ilr", "clr", "z-score", "min-max"
ELEMENTS = ["Au", "As", "Sb", "Cu", "Zn"]
# a triangle with a square hole inside the synthetic survey (400–420 km, 3300–3320 km); no edge on a 500 m centre
STUDY_AREA = ("POLYGON((402100 3302100, 418100 3303100, 409100 3318100, 402100 3302100),"
              "(408100 3306100, 411100 3306100, 411100 3309100, 408100 3309100, 408100 3306100))")


@pytest.fixture
def evidence(run_alg, tmp_path):
    """IDW element grids of the synthetic survey, an unnamed fault-distance raster, geology in EPSG:3857."""
    survey = make_survey(seed=7, n_samples=300)
    values = {name: survey.values[:, i] for i, name in enumerate(survey.element_names) if name in ELEMENTS}
    x0, y0, x1, y1 = survey.bounds
    idw = str(tmp_path / "elements.tif")
    run_alg("deepprospect:idwgridding", {"INPUT": point_layer(survey.sample_xy, values), "FIELDS": ELEMENTS,
                                         "PIXEL_SIZE": 500, "EXTENT": f"{x0},{x1},{y0},{y1} [EPSG:32650]",
                                         "OUTPUT": idw})
    coarse = GridSpec.from_extent(x0, y0, x1, y1, 1000.0, survey.crs)
    distance, _ = cKDTree(np.concatenate(survey.faults)).query(coarse.cell_centres())
    faults = str(tmp_path / "fault_distance.tif")
    write_geotiff(faults, distance.reshape(1, *coarse.shape), coarse, [""])
    mx0, my0, mx1, my1 = transform_bounds(survey.crs, "EPSG:3857", *survey.bounds)
    mercator = GridSpec.from_extent(mx0, my0, mx1, my1, 700.0, "EPSG:3857")
    classes = np.where(mercator.x_centres() < (mx0 + mx1) / 2, 1, 2)[None, None].repeat(mercator.rows, 1)
    classes[0, : mercator.rows // 3] = 3
    geology = str(tmp_path / "geology.tif")
    write_geotiff(geology, classes, mercator, ["rock"], nodata=0, dtype="uint8")
    return idw, faults, geology


def test_ilr_stack_of_multiband_unnamed_and_reprojected_inputs(run_alg, evidence, tmp_path):
    idw, faults, geology = evidence
    out = str(tmp_path / "stack.tif")
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"INPUTS": [idw, faults], "CATEGORICAL": [geology], "TRANSFORM": ILR,
                           "TRANSFORM_BANDS": "Cu, Au,As,Sb", "NORMALISE": ZSCORE, "OUTPUT": out}, feedback)
    assert result["OUTPUT"] == out
    log = "\n".join(feedback.lines)
    assert "'fault_distance' has bands without a name" in log
    assert "'geology' is in EPSG:3857; reprojected" in log
    stack, grid, names = read_raster(out)
    _, idw_grid, _ = read_raster(idw)
    assert names == ["ilr1", "ilr2", "ilr3", "Zn", "fault_distance_b1", "rock_1", "rock_2", "rock_3"]
    assert grid.geotransform == idw_grid.geotransform and grid.shape == idw_grid.shape
    valid = ~np.isnan(stack[0])
    assert valid.sum() > 0.8 * valid.size and (np.isnan(stack) == ~valid).all()
    for band in stack[:5]:
        assert abs(band[valid].mean()) < 1e-4 and band[valid].std() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(stack[5:, valid].sum(axis=0), 1.0)  # one indicator band per geology class
    with rasterio.open(out) as src:
        recipe = json.loads(src.tags()[STACK_TAG])
    assert recipe == read_stack_recipe(out)
    assert recipe["transform"]["method"] == "ilr" and recipe["transform"]["bands"] == ["Cu", "Au", "As", "Sb"]
    assert recipe["categorical_bands"] == ["rock"] and "pivot" in recipe["transform"]["basis"]
    assert recipe["indicators"] == {"rock": {"classes": [1, 2, 3], "other_classes": []}}


@pytest.fixture
def units(evidence, tmp_path):
    """Geological unit codes on the element grid: 585 | 81641 inside the study area (one cell of rare unit 12, one
    nodata), 7 outside; returns the raster path, a writer of other unit rasters, the study area and its cells."""
    _, grid, _ = read_raster(evidence[0])
    area = wkt_layer([STUDY_AREA])
    inside = centres_inside(area, grid.x_centres(), grid.y_centres())
    codes = np.where(inside, np.where(grid.x_centres() < 409000, 585, 81641)[None], 7)
    rows, cols = np.nonzero(inside)
    codes[rows[0], cols[0]], codes[rows[-1], cols[-1]] = 12, 0

    def write(name, values):
        path = str(tmp_path / f"{name}.tif")
        write_geotiff(path, values[None], grid, ["unit"], nodata=0, dtype="uint32")
        return path

    return write("units", codes), write, area, inside, codes


def test_unit_codes_become_indicator_bands_that_a_recipe_reproduces_on_a_new_area(run_alg, evidence, units,
                                                                                 tmp_path):
    units_path, write, _, _, codes = units
    out = str(tmp_path / "stack.tif")
    run_alg(ALG, {"INPUTS": [evidence[0]], "CATEGORICAL": [units_path], "NORMALISE": ZSCORE, "OUTPUT": out})
    stack, _, names = read_raster(out)
    assert names == [*ELEMENTS, "unit_7", "unit_585", "unit_81641", "unit_other"]
    valid = codes != 0
    assert (np.isnan(stack) == ~valid).all()  # the unit raster's nodata cell is nodata in every band
    for band, code in zip(stack[5:8], [7, 585, 81641]):
        np.testing.assert_array_equal(band[valid], codes[valid] == code)  # exactly 0/1, not z-scored
    np.testing.assert_array_equal(stack[8][valid], codes[valid] == 12)  # the rare unit (one cell) goes to other
    recipe = read_stack_recipe(out)
    assert recipe["indicators"] == {"unit": {"classes": [7, 585, 81641], "other_classes": [12]}}
    assert set(recipe["normalise"]["statistics"]) == set(ELEMENTS)
    new_codes = np.where(codes == 81641, 99, codes)  # unit 81641 absent, unit 99 never seen in training
    reapplied = str(tmp_path / "reapplied.tif")
    feedback = RecordingFeedback()
    run_alg(ALG, {"INPUTS": [evidence[0]], "CATEGORICAL": [write("new_units", new_codes)], "RECIPE_FROM": out,
                  "OUTPUT": reapplied}, feedback)
    again, _, again_names = read_raster(reapplied)
    assert again_names == names
    np.testing.assert_array_equal(again[7][valid], 0.0)
    np.testing.assert_array_equal(again[8][valid], np.isin(new_codes[valid], [12, 99]))
    assert "'unit': class(es) 99 did not occur where the recipe was made; they go to unit_other" in feedback.text


def test_a_study_area_leaves_outside_cells_nodata_and_out_of_the_statistics(run_alg, evidence, units, tmp_path):
    units_path, _, area, inside, codes = units
    out = str(tmp_path / "stack.tif")
    feedback = RecordingFeedback()
    run_alg(ALG, {"INPUTS": [evidence[0]], "CATEGORICAL": [units_path], "NORMALISE": ZSCORE, "STUDY_AREA": area,
                  "OUTPUT": out}, feedback)
    stack, _, names = read_raster(out)
    raw, _, _ = read_raster(evidence[0])
    valid = inside & (codes != 0) & ~np.isnan(raw).any(axis=0)
    assert 0 < valid.sum() < 0.5 * valid.size and inside[24, 14] and not inside[24, 18]  # a hole
    assert (np.isnan(stack) == ~valid).all()
    recipe = read_stack_recipe(out)
    for index, name in enumerate(ELEMENTS):
        assert recipe["normalise"]["statistics"][name] == pytest.approx(
            {"mean": raw[index][valid].mean(), "std": raw[index][valid].std()}, rel=1e-6)
        assert stack[index][valid].mean() == pytest.approx(0.0, abs=1e-5)
        assert stack[index][valid].std() == pytest.approx(1.0, rel=1e-5)
    # unit 7 covers most of the grid but lies outside the study area only, so it gets no band
    assert names[5:] == ["unit_585", "unit_81641", "unit_other"]
    assert recipe["indicators"] == {"unit": {"classes": [585, 81641], "other_classes": [12]}}
    assert f"{inside.sum()} of {inside.size} cells lie inside the study area" in feedback.text


def test_a_dask_scheduler_writes_the_same_file(run_alg, evidence, units, tmp_path, dask_scheduler):
    """DASK_SCHEDULER (a LocalCluster of 2 worker processes) writes the windows on the cluster: same bits."""
    units_path, _, area, _, _ = units
    base = {"INPUTS": list(evidence[:2]), "CATEGORICAL": [units_path], "TRANSFORM": ILR,
            "TRANSFORM_BANDS": "Cu,Au,As", "NORMALISE": ZSCORE, "STUDY_AREA": area}
    here, there = str(tmp_path / "here.tif"), str(tmp_path / "dask.tif")
    run_alg(ALG, {**base, "OUTPUT": here})
    feedback = RecordingFeedback()
    run_alg(ALG, {**base, "DASK_SCHEDULER": dask_scheduler, "OUTPUT": there}, feedback)
    with rasterio.open(here) as a, rasterio.open(there) as b:
        assert a.read().tobytes() == b.read().tobytes() and a.tags() == b.tags() and a.profile == b.profile
        assert (a.read_masks(1) == 0).any() and (a.read_masks(1) > 0).any()
    assert f"Tiles run on the Dask cluster at {dask_scheduler}" in feedback.text


def test_recipe_reproduces_the_stack_from_the_raw_inputs(run_alg, evidence, tmp_path):
    idw, faults, _ = evidence
    raw = str(tmp_path / "raw.tif")
    run_alg(ALG, {"INPUTS": [idw, faults], "NORMALISE": "none", "OUTPUT": raw})
    out = str(tmp_path / "clr.tif")
    run_alg(ALG, {"INPUTS": [idw, faults], "TRANSFORM": CLR, "TRANSFORM_BANDS": ",".join(ELEMENTS),
                  "NORMALISE": MINMAX, "OUTPUT": out})
    stack, _, names = read_raster(out)
    assert names == [f"clr_{e}" for e in ELEMENTS] + ["fault_distance_b1"]
    raw_stack, _, raw_names = read_raster(raw)
    again, again_names = apply_stack_recipe(raw_stack, raw_names, read_stack_recipe(out))
    assert again_names == names
    np.testing.assert_allclose(stack, again, rtol=1e-5, atol=1e-5, equal_nan=True)
    assert np.nanmin(stack, axis=(1, 2)) == pytest.approx(0, abs=1e-6)
    assert np.nanmax(stack, axis=(1, 2)) == pytest.approx(1, abs=1e-6)


def test_recipe_of_a_training_stack_is_re_applied_to_new_inputs(run_alg, evidence, tmp_path):
    idw, faults, _ = evidence
    training = str(tmp_path / "training.tif")
    run_alg(ALG, {"INPUTS": [idw, faults], "TRANSFORM": CLR, "TRANSFORM_BANDS": ",".join(ELEMENTS),
                  "NORMALISE": ZSCORE, "OUTPUT": training})
    stack, grid, names = read_raster(idw)
    doubled = str(tmp_path / "new_area.tif")
    write_geotiff(doubled, stack * 2.0, grid, names)  # other data: its own statistics would differ
    out = str(tmp_path / "reapplied.tif")
    feedback = RecordingFeedback()
    run_alg(ALG, {"INPUTS": [doubled, faults], "TRANSFORM": ILR, "NORMALISE": MINMAX, "RECIPE_FROM": training,
                  "OUTPUT": out}, feedback)
    assert "recipe of 'training' re-applied" in feedback.text
    assert read_stack_recipe(out) == read_stack_recipe(training)
    reapplied, _, reapplied_names = read_raster(out)
    original, _, original_names = read_raster(training)
    assert reapplied_names == original_names
    # clr is scale-invariant, so doubling every element leaves the clr bands (and their recorded z-scores) unchanged
    np.testing.assert_allclose(reapplied, original, rtol=1e-5, atol=1e-5, equal_nan=True)
    with pytest.raises(QgsProcessingException, match="needs the band"):
        run_alg(ALG, {"INPUTS": [faults], "RECIPE_FROM": training, "OUTPUT": str(tmp_path / "bad.tif")})
    logged = str(tmp_path / "logged.tif")
    write_geotiff(logged, np.log10(stack), grid, names, metadata={"VALUE_TRANSFORM": "log10"})
    with pytest.raises(QgsProcessingException, match=r"Au \(none there, log10 here\).*gridded differently"):
        run_alg(ALG, {"INPUTS": [logged, faults], "RECIPE_FROM": training, "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()


def test_a_recipe_needs_the_same_categorical_rasters(run_alg, evidence, tmp_path):
    idw, faults, geology = evidence
    training = str(tmp_path / "training.tif")
    run_alg(ALG, {"INPUTS": [idw, faults], "CATEGORICAL": [geology], "OUTPUT": training})
    with pytest.raises(QgsProcessingException, match="categorical bands are rock, here none"):
        run_alg(ALG, {"INPUTS": [idw, faults, geology], "RECIPE_FROM": training, "OUTPUT": str(tmp_path / "b.tif")})
    assert not (tmp_path / "b.tif").exists()


def test_output_snaps_to_a_template(run_alg, evidence, tmp_path):
    idw, faults, _ = evidence
    template = str(tmp_path / "template.tif")
    template_grid = GridSpec(402345.0, 3317789.0, 333.0, 333.0, 30, 27, "EPSG:32650")
    write_geotiff(template, np.zeros((1, 27, 30)), template_grid, ["zero"])
    out = str(tmp_path / "snapped.tif")
    run_alg(ALG, {"INPUTS": [idw, faults], "TEMPLATE": template, "OUTPUT": out})
    with rasterio.open(template) as ref, rasterio.open(out) as src:
        assert src.transform == ref.transform and src.shape == ref.shape and src.crs == ref.crs
        assert src.count == 6


def test_repeated_band_names_are_made_unique(run_alg, evidence, tmp_path):
    idw = evidence[0]
    out = str(tmp_path / "twice.tif")
    feedback = RecordingFeedback()
    run_alg(ALG, {"INPUTS": [idw, idw], "NORMALISE": "none", "OUTPUT": out}, feedback)
    assert read_raster(out)[2] == ELEMENTS + [f"{e}_2" for e in ELEMENTS]
    assert any("'Au' of 'elements' is already used; this band is named 'Au_2'" in m for m in feedback.lines)


def test_real_murchison_faults_and_greenstone(run_alg, data_dir, tmp_path):
    gpkg = str(data_dir / "murchison" / "murchison_copper.gpkg")
    # outer rings; holes are burnt back to 0 below. The filter is in the URI: setSubsetString on a GeoPackage
    # layer fails in QGIS 3.22 after an earlier failed run on the same file.
    rings = f"{gpkg}|layername=murchison_greenstone_rings|subset="
    greenstone = QgsVectorLayer(rings + "is_hole_cw = '0'", "greenstone", "ogr")
    extent = greenstone.extent()
    box = f"{extent.xMinimum()},{extent.xMaximum()},{extent.yMinimum()},{extent.yMaximum()} [EPSG:20350]"
    rock = str(tmp_path / "greenstone.tif")
    run_alg("gdal:rasterize", {"INPUT": greenstone, "BURN": 1, "UNITS": 1, "WIDTH": 2000, "HEIGHT": 2000,
                               "EXTENT": box, "INIT": 0, "NODATA": 255, "DATA_TYPE": 0, "OUTPUT": rock})
    holes = QgsVectorLayer(rings + "is_hole_cw = '1'", "holes", "ogr")
    run_alg("gdal:rasterize_over_fixed_value", {"INPUT": holes, "INPUT_RASTER": rock, "BURN": 0})
    faults = QgsVectorLayer(f"{gpkg}|layername=murchison_faults", "faults", "ogr")
    vertices = np.array([[p.x(), p.y()] for f in faults.getFeatures() for p in f.geometry().vertices()])
    grid = GridSpec.from_extent(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum(),
                                4000.0, "EPSG:20350")
    distance = cKDTree(vertices).query(grid.cell_centres())[0].reshape(1, *grid.shape)
    fault_distance = str(tmp_path / "fault_distance.tif")
    write_geotiff(fault_distance, distance, grid, ["fault_distance"])
    out = str(tmp_path / "murchison_stack.tif")
    run_alg(ALG, {"INPUTS": [fault_distance], "CATEGORICAL": [rock], "TEMPLATE": rock, "TRANSFORM": "log10",
                  "OUTPUT": out})
    stack, out_grid, names = read_raster(out)
    assert names == ["log10_fault_distance", "greenstone_b1_0", "greenstone_b1_1"] and out_grid.pixel_width == 2000
    valid = ~np.isnan(stack[0])
    assert valid.mean() > 0.9
    np.testing.assert_array_equal(stack[1][valid], 1.0 - stack[2][valid])
    assert stack[0][valid].std() == pytest.approx(1.0, abs=1e-4)
    gold = QgsVectorLayer(f"{gpkg}|layername=murchison_gold", "gold", "ogr")
    rows, cols = zip(*[(int((out_grid.y_max - f.geometry().asPoint().y()) // 2000),
                        int((f.geometry().asPoint().x() - out_grid.x_min) // 2000)) for f in gold.getFeatures()])
    inside = (np.array(rows) < out_grid.rows) & (np.array(cols) < out_grid.cols)
    on_greenstone = stack[2][np.array(rows)[inside], np.array(cols)[inside]]
    assert np.nanmean(on_greenstone) > np.nanmean(stack[2][valid])  # gold lies in greenstone (real data)


def bad_cases(evidence, tmp_path):
    idw, _, geology = evidence
    far = str(tmp_path / "far.tif")
    write_geotiff(far, np.ones((1, 5, 5)), GridSpec(900000.0, 3000000.0, 100.0, 100.0, 5, 5, "EPSG:32650"), ["x"])
    return [
        ({"INPUTS": []}, "No input rasters"),
        ({"TRANSFORM": CLR, "TRANSFORM_BANDS": "Cu,Ni"}, r"Transform band\(s\) not in the stack: Ni"),
        ({"TRANSFORM": ILR, "TRANSFORM_BANDS": "Cu"}, "needs at least 2 bands"),
        ({"TRANSFORM": CLR, "TRANSFORM_BANDS": "Cu,rock", "CATEGORICAL": [geology]}, "categorical"),
        ({"INPUTS": [idw, far]}, "'far'.*does not overlap the template"),
        ({"STUDY_AREA": wkt_layer(["LINESTRING(400000 3300000, 420000 3320000)"], "LineString")},
         "study area must be a polygon layer"),
        ({"MIN_CLASS_SHARE": 1.5, "CATEGORICAL": [geology]}, "MIN_CLASS_SHARE"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_input_gives_a_clear_error_and_no_file(run_alg, evidence, tmp_path, case):
    overrides, message = bad_cases(evidence, tmp_path)[case]
    out = tmp_path / "out" / "stack.tif"
    out.parent.mkdir()
    parameters = {"INPUTS": list(evidence[:2]), "OUTPUT": str(out), **overrides}
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, parameters)
    assert os.listdir(out.parent) == []


def test_cancel_leaves_nothing(run_alg, evidence, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 0 else None)
    out = tmp_path / "out" / "cancelled.tif"
    out.parent.mkdir()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, {"INPUTS": list(evidence), "OUTPUT": str(out)}, feedback=feedback)
    assert os.listdir(out.parent) == []
