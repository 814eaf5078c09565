"""deepprospect:traininglabels through processing.run: synthetic survey, real Murchison gold, bad input."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import idw_grid
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.sampling.labels import check_no_leakage, load_training_set
from deepprospect.core.synthetic import make_survey
from layer_factory import ProgressFeedback, RecordingFeedback, point_layer, wkt_layer
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy import ndimage

ALG = "deepprospect:traininglabels"
ELEMENTS = ["Au", "As", "Sb", "Cu"]
STACK_RECIPE = {"bands": ELEMENTS, "normalisation": "zscore"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 4-band IDW stack of the synthetic survey (with a DEEPPROSPECT_STACK tag), its deposits and barren holes."""
    survey = make_survey(seed=5)
    grid = GridSpec.from_extent(*survey.bounds, 250.0, survey.crs)
    columns = [survey.element_names.index(e) for e in ELEMENTS]
    bands = idw_grid(survey.sample_xy, np.log10(survey.values[:, columns]), grid)
    path = str(tmp_path_factory.mktemp("stack") / "stack.tif")
    write_geotiff(path, bands, grid, ELEMENTS, metadata={"DEEPPROSPECT_STACK": json.dumps(STACK_RECIPE)})
    return path, survey


def params(stack, deposits, out, samples="memory:", **extra):
    return {"STACK": stack, "DEPOSITS": deposits, "PATCH_SIZE": 8, "OUTPUT": str(out), "SAMPLES": samples, **extra}


def test_synthetic_survey_with_barren_holes(run_alg, synthetic, tmp_path):
    stack, survey = synthetic
    out = tmp_path / "set.npz"
    result = run_alg(ALG, params(stack, point_layer(survey.deposit_xy, {}), out,
                                 BARREN=point_layer(survey.barren_xy, {}), REPEATS=2, POSITIVE_CROPS=4,
                                 POSITIVE_SHIFT_X=2, POSITIVE_SHIFT_Y=3, FLIPS=True, SMOTE=True))
    ts = load_training_set(result["OUTPUT"])
    assert ts.x_patch.shape[1:] == (4, 8, 8) and ts.x_patch.dtype == np.float32
    manifest = ts.manifest
    assert manifest["band_names"] == ELEMENTS and manifest["stack_tags"]["DEEPPROSPECT_STACK"] == STACK_RECIPE
    assert manifest["patch_size"] == 8 and manifest["pixel_size"] == [250.0, 250.0]
    assert rasterio.crs.CRS.from_user_input(manifest["crs"]).to_epsg() == 32650
    assert set(ts.split) == {"train", "validation", "test"} and (ts.kind == "barren").any()
    check_no_leakage(ts.window_rc, ts.split, 8)
    layer = result["SAMPLES"]
    unaugmented = np.isin(ts.kind, ["deposit", "neighbour", "barren", "random"])
    assert layer.featureCount() == unaugmented.sum() and layer.crs().authid() == "EPSG:32650"
    assert [f.name() for f in layer.fields()] == ["label", "split", "kind", "repeat"]
    kinds = {f["kind"] for f in layer.getFeatures()}
    assert kinds == {"deposit", "neighbour", "barren", "random"}
    assert sorted(f["label"] for f in layer.getFeatures()) == sorted(ts.y[unaugmented].tolist())


def test_deposits_in_another_crs_are_reprojected_and_logged(run_alg, synthetic, tmp_path):
    stack, survey = synthetic
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32650"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    lonlat = [to_wgs84.transform(QgsPointXY(*xy)) for xy in survey.deposit_xy]
    feedback = RecordingFeedback()
    a = run_alg(ALG, params(stack, point_layer(survey.deposit_xy, {}), tmp_path / "a.npz"))
    b = run_alg(ALG, params(stack, point_layer([(p.x(), p.y()) for p in lonlat], {}, crs="EPSG:4326"),
                            tmp_path / "b.npz"), feedback=feedback)
    np.testing.assert_array_equal(load_training_set(a["OUTPUT"]).window_rc, load_training_set(b["OUTPUT"]).window_rc)
    assert "deposit points are reprojected from EPSG:4326 to EPSG:32650" in feedback.text


def test_real_murchison_gold_in_greenstone_with_holes(run_alg, data_dir, tmp_path):
    gpkg = str(data_dir / "murchison" / "murchison_copper.gpkg")
    crs = QgsCoordinateReferenceSystem("EPSG:20350")
    layers = {}
    for name in ("murchison_gold", "murchison_faults", "murchison_greenstone_rings"):
        layers[name] = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
        layers[name].setCrs(crs)  # the source states no CRS (see tests/data/murchison/SOURCE.txt)
    box = layers["murchison_greenstone_rings"].extent()
    grid = GridSpec.from_extent(box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum(), 2000.0, "EPSG:20350")
    faults = [json.loads(f.geometry().asJson()) for f in layers["murchison_faults"].getFeatures()]
    transform = Affine(grid.pixel_width, 0, grid.x_min, 0, -grid.pixel_height, grid.y_max)
    on_fault = rasterize(faults, out_shape=grid.shape, transform=transform, all_touched=True).astype(bool)
    distance = ndimage.distance_transform_edt(~on_fault, sampling=2000.0)
    stack = str(tmp_path / "fault_distance.tif")
    write_geotiff(stack, np.stack([distance / 1e4, np.log1p(distance / 1e3)]), grid, ["fault_dist", "log_fault_dist"])
    feedback = RecordingFeedback()
    result = run_alg(ALG, {"STACK": stack, "DEPOSITS": layers["murchison_gold"], "PATCH_SIZE": 5,
                           "STUDY_AREA": layers["murchison_greenstone_rings"], "HOLE_FIELD": "is_hole_cw",
                           "SPLIT_DISTANCE": 15000, "REPEATS": 3, "POSITIVE_CROPS": 3,
                           "POSITIVE_SHIFT_X": 1, "POSITIVE_SHIFT_Y": 1, "OUTPUT": str(tmp_path / "gold.npz"),
                           "SAMPLES": "memory:"}, feedback=feedback)
    ts = load_training_set(result["OUTPUT"])
    assert ts.manifest["deposit_cells"] > 100 and set(ts.split) == {"train", "validation", "test"}
    assert "1 polygon" not in feedback.text and "hole(s)" in feedback.text
    check_no_leakage(ts.window_rc, ts.split, 5)
    rings = list(layers["murchison_greenstone_rings"].getFeatures())
    outer = QgsGeometry.unaryUnion([r.geometry() for r in rings if r["is_hole_cw"] != "TRUE"])
    holes = QgsGeometry.unaryUnion([r.geometry() for r in rings if r["is_hole_cw"] == "TRUE"])
    centres = [QgsGeometry.fromPointXY(QgsPointXY(*xy)) for xy in ts.centre_xy]
    assert all(outer.contains(c) and not holes.contains(c) for c in centres)
    assert (ts.kind == "crop").any()
    assert result["SAMPLES"].featureCount() == (ts.kind != "crop").sum()


def test_a_raster_without_band_names_gets_derived_names(run_alg, synthetic, tmp_path):
    _, survey = synthetic
    grid = GridSpec.from_extent(*survey.bounds, 500.0, survey.crs)
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=grid.cols, height=grid.rows, count=2, dtype="float32",
                       crs="EPSG:32650", transform=Affine(500, 0, grid.x_min, 0, -500, grid.y_max)) as dst:
        dst.write(np.random.default_rng(0).normal(size=(2, grid.rows, grid.cols)).astype(np.float32))
    result = run_alg(ALG, params(str(path), point_layer(survey.deposit_xy, {}), tmp_path / "set.npz",
                                 PATCH_SIZE=3, VALIDATION_FRACTION=0, TEST_FRACTION=0))
    assert load_training_set(result["OUTPUT"]).manifest["band_names"] == ["plain_b1", "plain_b2"]


def test_two_deposits_fall_back_and_keep_the_ratio_per_split(run_alg, synthetic, tmp_path):
    stack, survey = synthetic
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(stack, point_layer(survey.deposit_xy[:2], {}), tmp_path / "few.npz",
                                 NEGATIVE_RATIO=2.0), feedback=feedback)
    ts = load_training_set(result["OUTPUT"])
    fallback = ts.manifest["split"]["fallback"]
    assert fallback is not None and "validation" in fallback["dropped_splits"]
    assert "Split fallback" in feedback.text and "validation" not in set(ts.split)
    assert ts.manifest["window_fill"] == 0.0
    for split in set(ts.split):
        assert ((ts.split == split) & (ts.y == 0)).sum() == 2 * ((ts.split == split) & (ts.y == 1)).sum()


@pytest.mark.parametrize("case", ["empty", "outside", "patch", "no_negatives", "buffer"])
def test_bad_input_gives_a_clear_error_and_no_file(run_alg, synthetic, tmp_path, case):
    stack, survey = synthetic
    deposits = {"empty": [], "outside": [(0.0, 0.0)]}.get(case, survey.deposit_xy)
    message = {"empty": "no features", "outside": "No deposit lies on valid stack data",
               "patch": "larger than the", "no_negatives": "train split would hold .* no negative.*negative ratio",
               "buffer": "no negative.*lower the exclusion buffer"}[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    extra = {"patch": {"PATCH_SIZE": 500}, "no_negatives": {"NEGATIVE_RATIO": 0.0},
             "buffer": {"EXCLUSION_BUFFER": 1e6}}.get(case, {})
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, params(stack, point_layer(deposits, {}), out_dir / "set.npz", str(out_dir / "s.gpkg"), **extra))
    assert os.listdir(out_dir) == []


def test_cancel_leaves_nothing(run_alg, synthetic, tmp_path):
    stack, survey = synthetic
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 10 else None)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, params(stack, point_layer(survey.deposit_xy, {}), tmp_path / "set.npz",
                            str(tmp_path / "s.gpkg"), POSITIVE_CROPS=20, POSITIVE_SHIFT_X=3, POSITIVE_SHIFT_Y=3),
                feedback=feedback)
    assert os.listdir(tmp_path) == []



def test_progress_never_goes_back(run_alg, synthetic, tmp_path):
    stack, survey = synthetic
    feedback = ProgressFeedback()
    run_alg(ALG, params(stack, point_layer(survey.deposit_xy, {}), tmp_path / "set.npz",
                        BARREN=point_layer(survey.barren_xy, {}), POSITIVE_CROPS=2), feedback=feedback)
    assert feedback.progress and feedback.progress[-1] >= 90 and feedback.steps_back() == []


@pytest.mark.parametrize("negatives", ["all", "barren"])
def test_block_labels(run_alg, synthetic, tmp_path, negatives):
    stack, survey = synthetic
    extra = {"BARREN": point_layer(survey.barren_xy, {}),
             "BARREN_AREAS": wkt_layer(["POLYGON((400000 3300000, 410000 3300000, 410000 3310000, 400000 3310000, "
                                        "400000 3300000))"], name="barren_areas")} if negatives == "barren" else {}
    result = run_alg(ALG, params(stack, point_layer(survey.deposit_xy, {}), tmp_path / "blocks.npz",
                                 LABELLING="blocks", BLOCK_SIZE=8, BLOCK_STRIDE=4, BLOCK_NEGATIVES=negatives,
                                 **extra))
    ts = load_training_set(result["OUTPUT"])
    labelling = ts.manifest["labelling"]
    assert labelling["mode"] == "blocks" and labelling["block_size"] == 8 and labelling["block_stride"] == 4
    blocks = labelling["blocks"]
    assert blocks["positive"] == int(ts.y.sum()) > 0 and blocks["negative"] == int((ts.y == 0).sum()) > 0
    assert sum(blocks[k] for k in ("positive", "negative", "unknown", "unusable", "dropped")) == blocks["total"]
    assert (blocks["unknown"] > blocks["negative"]) == (negatives == "barren")
    assert set(ts.kind) == {"block"} and result["SAMPLES"].featureCount() == len(ts)
    check_no_leakage(ts.window_rc, ts.split, 8)
