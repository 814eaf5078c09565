"""deepprospect:idwgridding through processing.run: outputs, snapping, real data and bad input."""

import os
import shutil

import numpy as np
import pytest
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import IdwSettings, idw_grid
from deepprospect.core.raster_io import write_geotiff
from layer_factory import RecordingFeedback, centres_inside, point_layer, wkt_layer
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer

ALG = "deepprospect:idwgridding"
# a square with a square hole inside the survey (400000–402000, 3300000–3302000); no edge on a 50 m pixel centre
STUDY_AREA = ("POLYGON((400300 3300300, 401700 3300300, 401700 3301700, 400300 3301700, 400300 3300300),"
              "(400800 3300800, 401200 3300800, 401200 3301200, 400800 3301200, 400800 3300800))")


@pytest.fixture
def survey():
    rng = np.random.default_rng(3)
    points = np.array([400000.0, 3300000.0]) + rng.uniform(0, 2000, (80, 2))
    cu = rng.lognormal(3, 0.5, 80)
    au = rng.lognormal(1, 0.9, 80)
    au[[2, 9]] = np.nan
    return points, {"Cu": cu, "Au": au, "lith": ["granite"] * 80, "empty": [None] * 80}


def params(layer, output, **extra):
    base = {"INPUT": layer, "FIELDS": ["Cu", "Au"], "PIXEL_SIZE": 50,
            "EXTENT": "400000,402000,3300000,3302000 [EPSG:32650]", "OUTPUT": str(output)}
    base.update(extra)
    return base


@pytest.mark.parametrize("max_points, radius", [(8, 600), (0, 0)])
def test_bands_are_named_and_equal_the_core_result(run_alg, survey, tmp_path, max_points, radius):
    points, fields = survey
    out = tmp_path / "grid.tif"
    result = run_alg(ALG, params(point_layer(points, fields), out, MAX_POINTS=max_points, RADIUS=radius))
    assert result["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        assert src.descriptions == ("Cu", "Au")
        assert (src.width, src.height, src.res) == (40, 40, (50.0, 50.0))
        assert src.crs.to_epsg() == 32650
        data = src.read(masked=True).astype(np.float64).filled(np.nan)
    grid = GridSpec.from_extent(400000, 3300000, 402000, 3302000, 50, "EPSG:32650")
    expected = idw_grid(points, np.column_stack([fields["Cu"], fields["Au"]]), grid,
                        IdwSettings(max_points=max_points, radius=radius))
    np.testing.assert_allclose(data, expected, rtol=1e-6, equal_nan=True)


def test_output_snaps_exactly_to_a_template(run_alg, survey, tmp_path):
    points, fields = survey
    template_grid = GridSpec(399987.3, 3302011.7, 33.3, 33.3, 57, 61, "EPSG:32650")
    template = str(tmp_path / "template.tif")
    write_geotiff(template, np.zeros((1, 61, 57)), template_grid, ["zero"])
    out = tmp_path / "snapped.tif"
    run_alg(ALG, {"INPUT": point_layer(points, fields), "FIELDS": ["Cu"], "TEMPLATE": template,
                  "OUTPUT": str(out)})
    with rasterio.open(template) as ref, rasterio.open(out) as src:
        assert src.transform == ref.transform and src.shape == ref.shape and src.crs == ref.crs


def test_pixels_outside_the_study_area_are_nodata(run_alg, survey, tmp_path):
    points, fields = survey
    area = wkt_layer([STUDY_AREA])
    plain, clipped = tmp_path / "plain.tif", tmp_path / "clipped.tif"
    run_alg(ALG, params(point_layer(points, fields), plain))
    run_alg(ALG, params(point_layer(points, fields), clipped, STUDY_AREA=area))
    with rasterio.open(plain) as a, rasterio.open(clipped) as b:
        assert a.transform == b.transform  # an explicit extent wins over the study area's
        everywhere, data = a.read(masked=True), b.read(masked=True)
    grid = GridSpec.from_extent(400000, 3300000, 402000, 3302000, 50, "EPSG:32650")
    inside = centres_inside(area, grid.x_centres(), grid.y_centres())
    assert 0 < inside.sum() < inside.size and not inside[20, 20]  # the hole is outside
    for band, full in zip(data, everywhere):
        np.testing.assert_array_equal(band.mask, ~inside | full.mask)
        np.testing.assert_array_equal(band[inside], full[inside])


def test_a_dask_scheduler_writes_the_same_file(run_alg, survey, tmp_path, dask_scheduler):
    """DASK_SCHEDULER (a LocalCluster of 2 worker processes) computes the blocks on the cluster: same bits, study
    area nodata included."""
    points, fields = survey
    base = params(point_layer(points, fields), tmp_path / "here.tif", STUDY_AREA=wkt_layer([STUDY_AREA]))
    run_alg(ALG, base)
    feedback = RecordingFeedback()
    run_alg(ALG, {**base, "DASK_SCHEDULER": dask_scheduler, "OUTPUT": str(tmp_path / "dask.tif")}, feedback)
    with rasterio.open(tmp_path / "here.tif") as a, rasterio.open(tmp_path / "dask.tif") as b:
        assert a.read().tobytes() == b.read().tobytes() and a.tags() == b.tags() and a.profile == b.profile
        assert (a.read_masks(1) == 0).any() and (a.read_masks(1) > 0).any()
    assert f"Tiles run on the Dask cluster at {dask_scheduler}" in feedback.text


def test_the_study_area_sets_the_default_extent(run_alg, survey, tmp_path):
    points, fields = survey
    out = tmp_path / "grid.tif"
    parameters = params(point_layer(points, fields), out, STUDY_AREA=wkt_layer([STUDY_AREA]))
    del parameters["EXTENT"]
    run_alg(ALG, parameters)
    with rasterio.open(out) as src:  # the polygon's bounds, padded by half a pixel as for the points
        assert tuple(src.bounds) == pytest.approx((400275, 3300275, 401725, 3301725))


def test_log10_grids_the_logarithm(run_alg, survey, tmp_path):
    points, fields = survey
    plain, logged = tmp_path / "plain.tif", tmp_path / "log.tif"
    run_alg(ALG, params(point_layer(points, fields), plain, FIELDS=["Cu"], MAX_POINTS=1))
    run_alg(ALG, params(point_layer(points, fields), logged, FIELDS=["Cu"], MAX_POINTS=1, LOG10=True))
    with rasterio.open(plain) as a, rasterio.open(logged) as b:
        np.testing.assert_allclose(np.log10(a.read(1)), b.read(1), rtol=1e-5)
        assert b.tags()["VALUE_TRANSFORM"] == "log10"


def read_band(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.tags()


def test_missing_value_codes_are_missing_not_concentrations(run_alg, survey, tmp_path):
    points, fields = survey
    coded = fields["Cu"].copy()
    coded[[4, 11, 30]] = [-9999, -99999, -9999]
    keep = np.ones(len(points), bool)
    keep[[4, 11, 30]] = False
    feedback = RecordingFeedback()
    run_alg(ALG, params(point_layer(points, {"Cu": coded}), tmp_path / "coded.tif", FIELDS=["Cu"]),
            feedback=feedback)
    run_alg(ALG, params(point_layer(points[keep], {"Cu": coded[keep]}), tmp_path / "without.tif", FIELDS=["Cu"]))
    run_alg(ALG, params(point_layer(points, {"Cu": coded}), tmp_path / "as_values.tif", FIELDS=["Cu"],
                        NODATA_VALUES=""))
    with_codes, tags = read_band(tmp_path / "coded.tif")
    without, _ = read_band(tmp_path / "without.tif")
    as_values, empty_tags = read_band(tmp_path / "as_values.tif")
    np.testing.assert_allclose(with_codes, without, rtol=1e-6)
    assert with_codes.mean() == pytest.approx(without.mean(), rel=1e-6) and with_codes.min() > 0
    assert as_values.mean() < 0  # an empty code list grids -9999 as a concentration
    assert "Cu: 3 value(s) equal to a missing-value code (-9999, -99999, -999999, -999)" in feedback.text
    assert tags["MISSING_VALUE_CODES"] == "-9999, -99999, -999999, -999" and empty_tags["MISSING_VALUE_CODES"] == "none"


def test_negative_values_as_below_detection_are_half_the_limit(run_alg, survey, tmp_path):
    points, fields = survey
    censored = fields["Cu"].copy()
    censored[[1, 8]] = -5.0
    halved = censored.copy()
    halved[[1, 8]] = 2.5
    feedback = RecordingFeedback()
    run_alg(ALG, params(point_layer(points, {"Cu": censored}), tmp_path / "censored.tif", FIELDS=["Cu"],
                        BELOW_DETECTION=True), feedback=feedback)
    run_alg(ALG, params(point_layer(points, {"Cu": halved}), tmp_path / "halved.tif", FIELDS=["Cu"]))
    run_alg(ALG, params(point_layer(points, {"Cu": censored}), tmp_path / "as_is.tif", FIELDS=["Cu"]))
    np.testing.assert_array_equal(read_band(tmp_path / "censored.tif")[0], read_band(tmp_path / "halved.tif")[0])
    assert read_band(tmp_path / "as_is.tif")[0].min() < 0  # off by default: negative values are used as they are
    assert "Cu: 2 negative value(s) were read as below detection" in feedback.text


def test_log10_of_values_at_or_below_zero_on_the_kolari_till(run_alg, data_dir, tmp_path):
    layer = QgsVectorLayer(f"{data_dir / 'kolari_iocg' / 'kolari_iocg.gpkg'}|layername=till_samples", "till", "ogr")
    zr = np.array([f["Zr_ppm_511"] for f in layer.getFeatures()], dtype=float)
    points = np.array([[f.geometry().asPoint().x(), f.geometry().asPoint().y()] for f in layer.getFeatures()])
    assert len(zr) == 1112 and (zr <= 0).sum() == 182
    floor = zr[zr > 0].min() / 2
    base = {"INPUT": layer, "FIELDS": ["Zr_ppm_511"], "PIXEL_SIZE": 2000, "LOG10": True}
    runs = {}
    for mode, name in (("half_detection_limit", "floored"), ("skipped", "skipped")):
        feedback = RecordingFeedback()
        run_alg(ALG, {**base, "NON_POSITIVE": mode, "OUTPUT": str(tmp_path / f"{name}.tif")}, feedback=feedback)
        runs[name] = (*read_band(tmp_path / f"{name}.tif"), feedback.text)
    floored, tags, log = runs["floored"]
    assert f"Zr_ppm_511: 182 value(s) ≤ 0 were raised to {floor:g}, half the smallest positive value" in log
    assert tags["VALUE_TRANSFORM"] == "log10" and tags["LOG10_NON_POSITIVE"] == "half_detection_limit"
    with rasterio.open(tmp_path / "floored.tif") as src:
        grid = GridSpec(src.bounds.left, src.bounds.top, 2000.0, 2000.0, src.width, src.height, "EPSG:3067")
    expected = idw_grid(points, np.log10(np.where(zr > 0, zr, floor)), grid)[0]
    np.testing.assert_allclose(floored, expected, rtol=1e-5)
    skipped, tags, log = runs["skipped"]
    assert "Zr_ppm_511: 182 value(s) ≤ 0 have no log10 and were skipped." in log
    assert tags["LOG10_NON_POSITIVE"] == "skipped"
    assert np.nanmin(skipped) >= np.log10(2 * floor) - 1e-5 and np.nanmean(floored) < np.nanmean(skipped)


def test_real_colorado_survey_in_a_projected_crs(run_alg, data_dir, tmp_path):
    layer = QgsVectorLayer(str(data_dir / "colorado_soil" / "colorado_soil_geochem.gpkg"), "colorado", "ogr")
    assert layer.featureCount() == 959
    elements = [f.name() for f in layer.fields() if f.isNumeric() and f.name() not in ("fid",)]
    elements = [e for e in elements if e not in ("longitude", "latitude")]
    assert len(elements) == 39
    out = tmp_path / "colorado.tif"
    run_alg(ALG, {"INPUT": layer, "FIELDS": elements, "PIXEL_SIZE": 5000, "OUTPUT_CRS": "EPSG:26913",
                  "OUTPUT": str(out)})
    with rasterio.open(out) as src:
        assert list(src.descriptions) == elements and src.crs.to_epsg() == 26913
        assert 100 < src.width < 140 and 70 < src.height < 110  # Colorado is ~600 × 450 km
        data = src.read(masked=True)
    for band, name in zip(data, elements):
        values = np.array([f[name] for f in layer.getFeatures()], dtype=float)
        assert not band.mask.any()
        assert values.min() - 1e-3 * abs(values.min()) <= band.min() <= band.max() <= values.max() * (1 + 1e-6)


def bad_input_cases(tmp_path, survey):
    points, fields = survey
    layer = point_layer(points, fields)
    empty = point_layer(np.zeros((0, 2)), {"Cu": []})
    far = "500000,501000,3500000,3501000 [EPSG:32650]"
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    return [
        ({"INPUT": empty, "FIELDS": ["Cu"]}, "no features"),
        ({"INPUT": layer, "FIELDS": ["Ni"]}, "Ni"),
        ({"INPUT": layer, "FIELDS": ["lith"]}, "not numeric"),
        ({"INPUT": layer, "FIELDS": ["empty"]}, "no sample has a value"),
        ({"INPUT": layer, "MIN_POINTS": 200, "MAX_POINTS": 0}, "fewer than the minimum number of points"),
        ({"INPUT": layer, "EXTENT": far}, "does not overlap the sample points"),
        ({"INPUT": layer, "PIXEL_SIZE": 0}, "pixel size must be greater than zero"),
        ({"INPUT": layer, "PIXEL_SIZE": -5}, "pixel size must be greater than zero"),
        ({"INPUT": layer, "PIXEL_SIZE": 0.001}, "would need about"),
        ({"INPUT": point_layer(points / 1e5, {"Cu": fields["Cu"]}, crs="EPSG:4326"), "FIELDS": ["Cu"],
          "EXTENT": None}, "geographic CRS"),
        ({"INPUT": layer, "OUTPUT": str(not_a_folder / "out.tif")}, "does not exist"),
        ({"INPUT": layer, "STUDY_AREA": wkt_layer(["LINESTRING(400000 3300000, 402000 3302000)"], "LineString")},
         "study area must be a polygon layer"),
        ({"INPUT": layer, "STUDY_AREA": wkt_layer(["POLYGON((0 0, 10 0, 10 10, 0 0))"])}, "covers no cell centre"),
        ({"INPUT": layer, "NODATA_VALUES": "-9999; -99999"}, "'-9999; -99999' is not a number"),
        ({"INPUT": point_layer(points, {"Cu": np.full(80, -9999.0)}), "FIELDS": ["Cu"]}, "missing-value codes"),
    ]


@pytest.mark.parametrize("case", range(15))
def test_bad_input_gives_a_clear_error_and_no_file(run_alg, survey, tmp_path, case):
    (overrides, message) = bad_input_cases(tmp_path, survey)[case]
    out = tmp_path / "out" / "grid.tif"
    out.parent.mkdir()
    parameters = params(overrides["INPUT"], out)
    parameters.update({k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        parameters.pop(key)
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, parameters)
    assert os.listdir(out.parent) == []


def test_cancel_during_the_run_leaves_nothing(run_alg, tmp_path):
    rng = np.random.default_rng(5)
    points = np.array([400000.0, 3300000.0]) + rng.uniform(0, 2000, (3000, 2))
    layer = point_layer(points, {"Cu": rng.lognormal(3, 0.5, 3000)})
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 20 else None)
    out = tmp_path / "cancelled.tif"
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, params(layer, out, FIELDS=["Cu"], PIXEL_SIZE=2, MAX_POINTS=0), feedback=feedback)
    assert os.listdir(tmp_path) == []


def test_provider_lists_the_algorithm(deepprospect_provider):
    assert deepprospect_provider.id() == "deepprospect"
    assert deepprospect_provider.algorithm("idwgridding") is not None
    assert shutil.which("gdal_grid") is not None
