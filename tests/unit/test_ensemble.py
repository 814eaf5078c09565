"""Ensemble core: every rule on 2 × 3 maps computed by hand, uncertainty, weights from cards, grids, windows."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.ensemble import (
    CLASS_NODATA,
    ENSEMBLE_TAG,
    METHODS,
    MODEL_CARD_TAG,
    card_weights,
    check_same_grid,
    combine,
    ensemble_rasters,
    normalise_weights,
    parse_weights,
)
from deepprospect.core.raster_io import NODATA, write_geotiff

GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 3, 2, "EPSG:32750")
A = [[0.9, 0.2, 0.6], [0.4, 0.8, 0.1]]
B = [[0.7, 0.4, 0.4], [0.6, 0.9, 0.3]]
C = [[0.8, 0.3, 0.2], [0.5, 0.7, 0.2]]
D = [[0.1, 0.6, 0.7], [0.2, 0.3, 0.4]]
# votes at threshold 0.5: A 101/010, B 100/110, C 100/110 (0.5 counts), D 011/000


def test_simple_average_and_population_std():
    value, spread, classes = combine(np.array([A, B, C]), "average")
    np.testing.assert_allclose(value, [[0.8, 0.3, 0.4], [0.5, 0.8, 0.2]], atol=1e-12)
    one_step = np.sqrt(0.02 / 3)  # deviations ±0.1 and 0
    np.testing.assert_allclose(spread, [[one_step, one_step, np.sqrt(0.08 / 3)], [one_step] * 3], atol=1e-12)
    np.testing.assert_array_equal(classes, [[1, 0, 0], [1, 1, 0]])  # mean ≥ 0.5


def test_weighted_average_and_weighted_std():
    value, spread, _ = combine(np.array([A, B, C]), "weighted_average", weights=[2, 1, 1])  # 0.5, 0.25, 0.25
    np.testing.assert_allclose(value, [[0.825, 0.275, 0.45], [0.475, 0.8, 0.175]], atol=1e-12)
    # cell (0, 0): deviations 0.075, −0.125, −0.025 → 0.5·0.005625 + 0.25·0.015625 + 0.25·0.000625 = 0.006875
    assert spread[0, 0] == pytest.approx(np.sqrt(0.006875), abs=1e-12)
    # cell (0, 2): deviations 0.15, −0.05, −0.25 → 0.5·0.0225 + 0.25·0.0025 + 0.25·0.0625 = 0.0275
    assert spread[0, 2] == pytest.approx(np.sqrt(0.0275), abs=1e-12)


def test_majority_and_plurality_agree_with_an_odd_number_of_members():
    for method in ("majority_vote", "plurality_vote"):
        share, disagreement, classes = combine(np.array([A, B, C]), method)
        np.testing.assert_allclose(share, [[1, 0, 1 / 3], [2 / 3, 1, 0]], atol=1e-12)
        np.testing.assert_array_equal(classes, [[1, 0, 0], [1, 1, 0]])
        np.testing.assert_allclose(disagreement, [[0, 0, 1 / 3], [1 / 3, 0, 0]], atol=1e-12)


def test_ties_are_not_prospective_by_majority_but_prospective_by_plurality():
    maps = np.array([A, B, C, D])  # yes-votes: 3 1 2 / 2 3 0 of 4
    majority = combine(maps, "majority_vote")
    plurality = combine(maps, "plurality_vote")
    for share, disagreement, _ in (majority, plurality):
        np.testing.assert_allclose(share, [[0.75, 0.25, 0.5], [0.5, 0.75, 0]], atol=1e-12)
        np.testing.assert_allclose(disagreement, [[0.25, 0.25, 0.5], [0.5, 0.25, 0]], atol=1e-12)
    np.testing.assert_array_equal(majority[2], [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(plurality[2], [[1, 0, 1], [1, 1, 0]])


def test_weighted_voting_by_hand():
    share, disagreement, classes = combine(np.array([A, B, C, D]), "weighted_vote", weights=[1, 2, 3, 4])
    # yes-voters: ABC 0.6 | D 0.4 | A+D 0.5 (tie) / B+C 0.5 (tie) | ABC 0.6 | none 0
    np.testing.assert_allclose(share, [[0.6, 0.4, 0.5], [0.5, 0.6, 0.0]], atol=1e-12)
    np.testing.assert_array_equal(classes, [[1, 0, 1], [1, 1, 0]])
    np.testing.assert_allclose(disagreement, [[0.4, 0.4, 0.5], [0.5, 0.4, 0.0]], atol=1e-12)


def test_threshold_moves_the_votes():
    share, _, _ = combine(np.array([A, B, C]), "majority_vote", threshold=0.75)  # yes: A .9 .8, B .9, C .8
    np.testing.assert_allclose(share, [[2 / 3, 0, 0], [0, 2 / 3, 0]], atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_uncertainty_is_zero_when_members_agree(method):
    _, spread, _ = combine(np.array([A, A, A]), method, weights=[1, 2, 3])
    np.testing.assert_allclose(spread, np.zeros((2, 3)), atol=1e-15)  # averages: round-off of the weighted mean


@pytest.mark.parametrize("method", METHODS)
def test_nodata_in_any_member_is_nodata(method):
    b = np.array(B)
    b[1, 2] = np.nan
    outputs = combine(np.array([A, b, C]), method, weights=[1, 1, 1])
    for array in outputs:
        assert np.isnan(array[1, 2]) and np.isfinite(np.delete(array.ravel(), 5)).all()


def test_weights_are_checked_and_parsed():
    np.testing.assert_allclose(normalise_weights([1, 3], 2), [0.25, 0.75])
    assert parse_weights("0.9, 0.8;0.7 1") == [0.9, 0.8, 0.7, 1.0]
    with pytest.raises(InputError, match="2 weight"):
        normalise_weights([1, 2], 3)
    with pytest.raises(InputError, match="≥ 0"):
        normalise_weights([1, -1], 2)
    with pytest.raises(InputError, match="All weights are 0"):
        normalise_weights([0, 0], 2)
    with pytest.raises(InputError, match="numbers separated"):
        parse_weights("0.9, high")
    with pytest.raises(InputError, match="at least two maps"):
        combine(np.array([A]), "average")
    with pytest.raises(InputError, match="Unknown ensemble method"):
        combine(np.array([A, B]), "median")


def write_map(path, values, grid=GRID, card=None, **extra_tags):
    tags = {MODEL_CARD_TAG: json.dumps(card)} if card is not None else {}
    write_geotiff(str(path), np.asarray(values, dtype=np.float64), grid, ["prospectivity"],
                  metadata={**tags, **extra_tags})
    return str(path)


def card(auc, f1):
    return {"architecture": "lenet", "metrics": {"validation": {"accuracy": 0.9, "recall": 0.8, "f1": f1, "auc": auc},
                                                 "train": {"accuracy": 1.0, "recall": 1.0, "f1": 1.0, "auc": 1.0}}}


def test_weights_from_model_cards(tmp_path):
    paths = [write_map(tmp_path / f"{n}.tif", m, card=card(a, f)) for n, m, a, f in
             (("a", A, 0.9, 0.6), ("b", B, 0.8, None))]
    assert card_weights(paths, "auc") == [0.9, 0.8]
    with pytest.raises(InputError, match=r"'b\.tif' records no validation F1"):
        card_weights(paths, "f1")
    bare = write_map(tmp_path / "bare.tif", C)
    with pytest.raises(InputError, match=r"'bare\.tif' has no model card"):
        card_weights([paths[0], bare], "auc")


def test_weights_by_validation_accuracy_not_test_accuracy(tmp_path):
    cards = [card(0.9, 0.6), card(0.8, 0.5), card(0.7, 0.4)]
    for model_card, validation, test in zip(cards, (0.96, 0.97, 0.94), (0.5, 0.9, 0.1)):
        model_card["metrics"]["validation"]["accuracy"] = validation
        model_card["metrics"]["test"] = {"accuracy": test}
    paths = [write_map(tmp_path / f"{n}.tif", m, card=c) for n, m, c in zip("abc", (A, B, C), cards)]
    assert card_weights(paths, "accuracy") == [0.96, 0.97, 0.94]
    out = tmp_path / "ensemble.tif"
    summary = ensemble_rasters(paths, str(out), "weighted_vote", weights=card_weights(paths, "accuracy"),
                               weight_source="validation accuracy")
    assert summary.weights == pytest.approx([0.96 / 2.87, 0.97 / 2.87, 0.94 / 2.87])
    with rasterio.open(out) as dst:
        record = json.loads(dst.tags()[ENSEMBLE_TAG])
    assert record["weights"] == pytest.approx(summary.weights) and record["weights_from"] == "validation accuracy"
    old = card(0.9, 0.6)
    del old["metrics"]["validation"]["accuracy"]  # a card without the metric
    paths[1] = write_map(tmp_path / "old.tif", B, card=old)
    with pytest.raises(InputError, match=r"model card of 'old\.tif' has no validation accuracy"):
        card_weights(paths, "accuracy")


def test_weighted_average_of_files_uses_the_card_weights(tmp_path):
    paths = [write_map(tmp_path / f"{n}.tif", m, card=card(a, 0.5)) for n, m, a in
             (("a", A, 1.0), ("b", B, 0.5), ("c", C, 0.5))]
    out = tmp_path / "ensemble.tif"
    summary = ensemble_rasters(paths, str(out), "weighted_average", weights=card_weights(paths, "auc"))
    with rasterio.open(out) as dst:
        np.testing.assert_allclose(dst.read(1), [[0.825, 0.275, 0.45], [0.475, 0.8, 0.175]], atol=1e-6)
        record = json.loads(dst.tags()[ENSEMBLE_TAG])
        assert dst.descriptions == ("prospectivity",) and dst.nodata == NODATA
        assert dst.tags()["DEEPPROSPECT_ALGORITHM"] == "ensemble"
    assert record["members"] == ["a.tif", "b.tif", "c.tif"] and record["weights"] == [0.5, 0.25, 0.25]
    assert summary.weights == [0.5, 0.25, 0.25] and summary.valid_cells == 6


def test_files_give_map_uncertainty_classes_and_counts(tmp_path):
    b = np.array(B)
    b[0, 1] = np.nan
    paths = [write_map(tmp_path / f"{n}.tif", m) for n, m in (("a", A), ("b", b), ("c", C), ("d", D))]
    out, spread, classes = (str(tmp_path / name) for name in ("ens_p.tif", "ens_u.tif", "ens_c.tif"))
    summary = ensemble_rasters(paths, out, "plurality_vote", uncertainty=spread, classes=classes)
    with rasterio.open(out) as p, rasterio.open(spread) as u, rasterio.open(classes) as c:
        np.testing.assert_allclose(p.read(1), [[0.75, NODATA, 0.5], [0.5, 0.75, 0]])
        np.testing.assert_allclose(u.read(1), [[0.25, NODATA, 0.5], [0.5, 0.25, 0]])
        np.testing.assert_array_equal(c.read(1), [[1, CLASS_NODATA, 1], [1, 1, 0]])
        assert c.dtypes[0] == "uint8" and u.descriptions == ("uncertainty",)
        assert "disagreeing" in u.tags(1)["QUANTITY"]
    only_classes = str(tmp_path / "only_classes.tif")
    ensemble_rasters(paths, str(tmp_path / "p2.tif"), "majority_vote", classes=only_classes)
    with rasterio.open(only_classes) as c:
        np.testing.assert_array_equal(c.read(1), [[1, CLASS_NODATA, 0], [0, 1, 0]])  # ties are not prospective
    # prospective cells (p ≥ 0.5) per member, on the 5 cells with data, and for the ensemble (he2024 Table 2)
    assert summary.member_prospective == [3, 3, 3, 1] and summary.ensemble_prospective == 4
    assert summary.valid_cells == 5 and summary.mean_uncertainty == pytest.approx(1.5 / 5)


def random_members(tmp_path, shape, strip_rows=None, count=3, seed=0):
    """Seeded maps with 1 % nodata: tiled when 256 × 256 or more, else in strips of ``strip_rows`` rows."""
    grid = GridSpec(500000.0, 7000000.0, 50.0, 50.0, shape[1], shape[0], "EPSG:32750")
    rng = np.random.default_rng(seed)
    maps = rng.uniform(0, 1, (count, *shape))
    maps[rng.uniform(size=maps.shape) < 0.01] = np.nan
    paths = [write_map(tmp_path / f"m{i}.tif", m, grid) for i, m in enumerate(maps)]
    if strip_rows:
        for path, values in zip(paths, maps):
            with rasterio.open(path) as src:
                profile = {**src.profile, "blockysize": strip_rows}
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(np.where(np.isnan(values), NODATA, values).astype("float32"), 1)
    return paths, maps


@pytest.mark.parametrize(("shape", "strip_rows", "window_cells"), [((300, 260), None, 1 << 20), ((120, 50), 8, 500)])
def test_windows_give_the_whole_array_result(tmp_path, shape, strip_rows, window_cells):
    paths, maps = random_members(tmp_path, shape, strip_rows)
    with rasterio.open(paths[0]) as src:
        assert src.block_shapes[0] == ((256, 256) if strip_rows is None else (strip_rows, 50))
    maps = maps.astype(np.float32).astype(np.float64)  # as stored
    for method in METHODS:
        expected = combine(maps, method, weights=[3, 1, 2], threshold=0.4)
        steps = []
        out, spread = str(tmp_path / f"{method}.tif"), str(tmp_path / f"{method}_u.tif")
        ensemble_rasters(paths, out, method, weights=[3, 1, 2], threshold=0.4, uncertainty=spread,
                         window_cells=window_cells, progress=steps.append)
        assert len(steps) > 1 and steps[-1] == 100  # several windows
        for path, array in ((out, expected[0]), (spread, expected[1])):
            with rasterio.open(path) as dst:
                got = dst.read(1, masked=True).filled(np.nan)
            np.testing.assert_allclose(got, array.astype(np.float32), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize(("shape", "strip_rows", "window_cells"), [((300, 260), None, 1 << 20), ((120, 50), 8, 500)])
def test_cells_outside_the_study_area_are_nodata_in_every_window_and_not_counted(tmp_path, shape, strip_rows,
                                                                                  window_cells):
    paths, maps = random_members(tmp_path, shape, strip_rows)
    maps = maps.astype(np.float32).astype(np.float64)  # as stored
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    inside = (rows - shape[0] / 2) ** 2 + (cols - shape[1] / 2) ** 2 < (shape[1] / 3) ** 2  # a disc across windows
    out, classes = str(tmp_path / "e.tif"), str(tmp_path / "c.tif")
    summary = ensemble_rasters(paths, out, "plurality_vote", classes=classes, window_cells=window_cells,
                               study_area=inside)
    value, uncertainty, expected = combine(np.where(inside, maps, np.nan), "plurality_vote")
    with rasterio.open(out) as dst, rasterio.open(classes) as c:
        got = dst.read(1, masked=True).filled(np.nan)
        assert np.isnan(got[~inside]).all() and (c.read(1)[~inside] == CLASS_NODATA).all()
        assert json.loads(dst.tags()[ENSEMBLE_TAG])["study_area"] is True
    np.testing.assert_allclose(got, value.astype(np.float32), rtol=1e-6, equal_nan=True)
    has_data = inside & ~np.isnan(maps).any(axis=0)
    assert summary.valid_cells == has_data.sum() < inside.sum()
    assert summary.member_prospective == [int(((m >= 0.5) & has_data).sum()) for m in maps]
    assert summary.ensemble_prospective == int((expected == 1).sum())
    assert summary.mean_uncertainty == pytest.approx(np.nanmean(uncertainty))
    with pytest.raises(InputError, match=r"study area mask \(\d+, \d+\) does not match the grid"):
        ensemble_rasters(paths, str(tmp_path / "bad.tif"), "average", study_area=inside[1:])
    assert not (tmp_path / "bad.tif").exists()


def test_grid_mismatch_says_what_differs(tmp_path):
    a = write_map(tmp_path / "a.tif", A)
    bigger = write_map(tmp_path / "bigger.tif", np.zeros((3, 3)), GridSpec(500000.0, 7000000.0, 100.0, 100.0, 3, 3,
                                                                              "EPSG:32750"))
    shifted = write_map(tmp_path / "shifted.tif", B, GridSpec(500050.0, 7000000.0, 100.0, 100.0, 3, 2, "EPSG:32750"))
    other_crs = write_map(tmp_path / "crs.tif", B, GridSpec(500000.0, 7000000.0, 100.0, 100.0, 3, 2, "EPSG:32751"))
    with pytest.raises(InputError, match=r"'bigger.tif' has 3 × 3 cells but 'a.tif' has 2 × 3.*same evidence stack"):
        check_same_grid([a, bigger])
    with pytest.raises(InputError, match=r"'shifted\.tif' is not on the grid of 'a\.tif'.*Align Rasters"):
        check_same_grid([a, shifted])
    with pytest.raises(InputError, match=r"'crs\.tif' is in EPSG:32751 but 'a\.tif' in EPSG:32750"):
        check_same_grid([a, other_crs])
    with pytest.raises(InputError, match="at least two maps"):
        check_same_grid([a])


def test_bad_values_and_cancel_leave_no_output(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    a = write_map(inputs / "a.tif", A)
    percent = write_map(inputs / "percent.tif", np.array(B) * 100)
    two_bands = str(inputs / "two.tif")
    write_geotiff(two_bands, np.array([A, B]), GRID, ["p", "q"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"'percent\.tif' has values from 30 to 90"):
        ensemble_rasters([a, percent], str(out / "e.tif"), "average", uncertainty=str(out / "u.tif"))
    with pytest.raises(InputError, match=r"'two\.tif' has 2 bands"):
        ensemble_rasters([a, two_bands], str(out / "e.tif"), "average")
    with pytest.raises(InputError, match="is one of the input maps"):
        ensemble_rasters([a, percent], str(out / "e.tif"), "average", uncertainty=a)
    with pytest.raises(Cancelled):
        ensemble_rasters([a, a], str(out / "e.tif"), "average", is_cancelled=lambda: True)
    with pytest.raises(InputError, match="threshold is a probability"):
        ensemble_rasters([a, a], str(out / "e.tif"), "majority_vote", threshold=50)
    empty = write_map(inputs / "empty.tif", np.full(np.shape(A), np.nan))
    with pytest.raises(InputError, match=r"empty\.tif have no cell with data"):
        ensemble_rasters([a, empty], str(out / "e.tif"), "average", uncertainty=str(out / "u.tif"))
    assert os.listdir(out) == []
