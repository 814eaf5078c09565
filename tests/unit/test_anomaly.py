"""core.anomaly: classes by cumulative area (exact shares, ties, deposits) and ranked target zones."""

import math

import numpy as np
import pytest
from deepprospect.core.anomaly import (
    BACKGROUND_CLASS,
    CLASS_NODATA,
    class_names,
    classify,
    find_targets,
    parse_class_limits,
)
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import read_map, write_geotiff
from rasterio.features import rasterize
from rasterio.transform import Affine

GRID = GridSpec(0.0, 1000.0, 10.0, 10.0, 100, 100, "EPSG:32650")  # 100 m² cells = 1e-4 km²
SMALL = GridSpec(0.0, 100.0, 10.0, 10.0, 10, 10, "EPSG:32650")


def distinct_map(seed=0):
    return np.random.default_rng(seed).permutation(10000).reshape(100, 100) / 10000.0


def centre(row, col, grid=GRID):
    return grid.x_min + (col + 0.5) * grid.pixel_width, grid.y_max - (row + 0.5) * grid.pixel_height


def test_distinct_values_give_exactly_5_10_15_percent():
    values = distinct_map()
    result = classify(values, GRID)
    classes = result.classes_of(values)
    counts = np.bincount(classes.ravel(), minlength=4)
    assert counts[1:4].tolist() == [500, 1000, 1500] and counts[BACKGROUND_CLASS] == 7000
    assert result.thresholds == [0.95, 0.85, 0.70]
    assert values[classes == 1].min() == 0.95 and values[classes == 2].max() == 0.9499
    table = {row.cls: row for row in result.table}
    assert [table[k].area_pct for k in (1, 2, 3, 0)] == [5.0, 10.0, 15.0, 70.0]
    assert table[1].area_km2 == pytest.approx(0.05) and table[0].area_km2 == pytest.approx(0.7)
    assert (table[3].from_pct, table[3].to_pct, table[3].min_value, table[3].max_value) == (15.0, 30.0, 0.7, 0.8499)
    assert [row.cls for row in result.table] == [1, 2, 3, 0] and result.notes == []


def test_other_limits_and_nodata_cells_do_not_count():
    values = distinct_map()
    values[:10] = np.nan  # 1000 nodata cells, 9000 valid
    result = classify(values, GRID, parse_class_limits("10; 50"))
    classes = result.classes_of(values)
    assert (classes[:10] == CLASS_NODATA).all() and result.valid_cells == 9000
    assert np.bincount(classes[10:].ravel()).tolist() == [4500, 900, 3600]
    assert class_names((10.0, 50.0)) == {1: "top 10 %", 2: "10–50 %", 0: "background (50–100 %)"}


def test_thresholds_and_shares_come_from_the_study_area_only():
    values = distinct_map(2)
    inside = np.zeros(GRID.shape, bool)
    inside[20:80, 10:60] = True  # 3000 cells
    deposits = [centre(30, 20), centre(50, 50), centre(5, 5), centre(90, 90)]  # two inside, two outside
    result = classify(values, GRID, (5, 15, 30), np.array(deposits), study_area=inside)
    ordered = np.sort(values[inside])[::-1]
    assert result.thresholds == [ordered[149], ordered[449], ordered[899]]  # 5, 15 and 30 % of 3000 cells
    classes = result.classes_of(np.where(inside, values, np.nan))
    assert (classes[~inside] == CLASS_NODATA).all() and (classes[inside] != CLASS_NODATA).all()
    assert result.valid_cells == 3000 and np.bincount(classes[inside]).tolist() == [2100, 150, 300, 450]
    table = {row.cls: row for row in result.table}
    assert table[1].area_pct == 5.0 and table[0].threshold == values[inside].min()
    assert result.deposits_on_map == 2 and sum(row.deposits for row in result.table) == 2
    assert any("2 deposit(s) on nodata cells or outside the study area" in note for note in result.notes)
    with pytest.raises(InputError, match="study area mask"):
        classify(values, GRID, study_area=inside[:50])


def test_ties_at_a_threshold_all_go_to_the_higher_class():
    values = np.arange(100, dtype=float).reshape(10, 10)
    values[values >= 93] = 93.0  # 7 cells share the top value; the top 5 % is 5 cells
    result = classify(values, SMALL, (5, 10, 20))
    classes = result.classes_of(values)
    assert (classes[values == 93] == 1).all()
    assert np.bincount(classes.ravel(), minlength=4)[1:4].tolist() == [7, 3, 10]
    assert any("Class 1 (top 5 %) holds 7 cell(s) instead of 5" in note for note in result.notes)
    for value in np.unique(values):  # equal values never split between classes
        assert len(np.unique(classes[values == value])) == 1


def test_a_class_emptied_by_ties_is_reported_not_an_error():
    values = np.where(np.arange(100).reshape(10, 10) < 85, 0.0, 1.0)  # 15 cells at 1, the rest at 0
    result = classify(values, SMALL, (5, 10, 30))
    assert np.bincount(result.classes_of(values).ravel(), minlength=4).tolist() == [0, 15, 0, 85]
    rows = {row.cls: row for row in result.table}
    assert rows[2].cells == 0 and math.isnan(rows[2].min_value) and rows[BACKGROUND_CLASS].cells == 0


def test_deposits_captured_per_class_and_the_ones_left_out():
    values = distinct_map()
    top = np.argwhere(values >= 0.95)[:3]
    low = np.argwhere(values < 0.5)[:1]
    deposits = [centre(*rc) for rc in [*top, *low]] + [(5000.0, 5000.0)]
    values[99, 99] = np.nan
    deposits.append(centre(99, 99))
    result = classify(values, GRID, deposit_xy=np.array(deposits))
    table = {row.cls: row for row in result.table}
    assert (table[1].deposits, table[2].deposits, table[0].deposits) == (3, 0, 1)
    assert table[1].deposit_pct == 75.0 and result.deposits_on_map == 4
    assert any("1 deposit(s) outside the map" in n for n in result.notes)
    assert any("1 deposit(s) on nodata" in n for n in result.notes)


def two_blobs():
    """Background 0.1 with a strong 3×3 blob, a weaker 4×4 blob and a lone strong cell."""
    values = np.full((10, 10), 0.1)
    values[1:4, 1:4] = 0.9
    values[5:9, 5:9] = 0.8
    values[0, 9] = 1.0
    values[9, 0] = 0.05  # keeps the map from being two-valued
    return values


def test_two_blobs_become_two_ranked_polygons_with_their_deposits():
    values = two_blobs()
    classes = classify(values, SMALL, (26,))  # the 26 cells ≥ 0.8
    assert classes.thresholds == [0.8]
    deposits = np.array([centre(2, 2, SMALL), centre(6, 6, SMALL), centre(7, 7, SMALL), centre(0, 0, SMALL)])
    targets, notes = find_targets(values, SMALL, classes, min_area_km2=0.0005, deposit_xy=deposits)
    assert [t.rank for t in targets] == [1, 2] and any("1 of 3 zone(s) smaller" in n for n in notes)
    first, second = targets
    assert (first.mean_value, first.cells, first.deposits) == (pytest.approx(0.9), 9, 1)
    assert (second.mean_value, second.max_value, second.cells, second.deposits) == (pytest.approx(0.8), 0.8, 16, 2)
    assert first.area_km2 == pytest.approx(9e-4) and first.centroid == (25.0, 75.0)
    transform = Affine(10, 0, 0, 0, -10, 100)
    for target, rows, cols in ((first, slice(1, 4), slice(1, 4)), (second, slice(5, 9), slice(5, 9))):
        assert target.geometry["type"] == "Polygon"
        burnt = rasterize([target.geometry], out_shape=(10, 10), transform=transform).astype(bool)
        expected = np.zeros((10, 10), bool)
        expected[rows, cols] = True
        np.testing.assert_array_equal(burnt, expected)
    assert len(find_targets(values, SMALL, classes)[0]) == 3


def test_corner_neighbours_are_one_zone_as_a_multipolygon_and_ties_rank_by_area():
    values = np.full((10, 10), 0.1)
    values[0, 0] = values[1, 1] = 0.9  # touch at a corner: one zone of 2 cells
    values[5, 5] = 0.9  # same mean, 1 cell
    values[9, 9] = 0.05
    targets, _ = find_targets(values, SMALL, classify(values, SMALL, (3,)))
    assert [t.cells for t in targets] == [2, 1]
    assert targets[0].geometry["type"] == "MultiPolygon" and len(targets[0].geometry["coordinates"]) == 2


def test_targets_from_classes_up_to_k():
    values = distinct_map()
    result = classify(values, GRID)
    top_only, _ = find_targets(values, GRID, result, 1)
    up_to_two, _ = find_targets(values, GRID, result, 2)
    assert sum(t.cells for t in top_only) == 500 and sum(t.cells for t in up_to_two) == 1500
    means = [round(t.mean_value, 12) for t in up_to_two]  # means equal to 12 decimals are ties (larger first)
    assert means == sorted(means, reverse=True)
    for before, after in zip(up_to_two, up_to_two[1:]):
        assert round(before.mean_value, 12) > round(after.mean_value, 12) or before.cells >= after.cells
    assert find_targets(values, GRID, classify(values, GRID, (0.001,)))[0] == []  # round(0.1 cell) = 0 cells


@pytest.mark.parametrize("values, message", [
    (np.full((10, 10), 0.3), "same value"),
    (np.full((10, 10), np.nan), "no valid cell"),
])
def test_constant_or_empty_map_is_refused(values, message):
    with pytest.raises(InputError, match=message):
        classify(values, SMALL)


@pytest.mark.parametrize("text, message", [
    ("15,5,30", "must increase"), ("5,15,130", r"\(0, 100\]"), ("0,15", r"\(0, 100\]"), ("5,,x", "not numbers"),
    ("", "at least one"),
])
def test_bad_class_limits(text, message):
    with pytest.raises(InputError, match=message):
        parse_class_limits(text)


def test_geographic_map_and_bad_target_options_are_refused():
    lonlat = GridSpec(100.0, 30.0, 0.01, 0.01, 10, 10, "EPSG:4326")
    with pytest.raises(InputError, match="geographic"):
        classify(two_blobs(), lonlat)
    classes = classify(two_blobs(), SMALL)
    for k in (0, 4):
        with pytest.raises(InputError, match="k ≥ 1 and at most the 3"):
            find_targets(two_blobs(), SMALL, classes, k)
    with pytest.raises(InputError, match="minimum target area"):
        find_targets(two_blobs(), SMALL, classes, 1, -1.0)


def test_read_map_masks_nodata_and_checks_the_band(tmp_path):
    path = str(tmp_path / "map.tif")
    values = two_blobs()
    values[0, 0] = np.nan
    write_geotiff(path, values, SMALL, ["prospectivity"])
    raster = read_map(path)
    read, grid = raster.values, raster.grid
    assert grid.shape == (10, 10) and np.isnan(read[0, 0]) and read[1, 1] == pytest.approx(0.9)
    with pytest.raises(InputError, match="band 2 does not exist"):
        read_map(path, 2)
