"""core.mapping.anomaly: classes by cumulative area (exact shares, ties, deposits) and ranked target zones."""

import json
import math

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import InputError, ResourceError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.anomaly import (
    BACKGROUND_CLASS,
    CLASS_NODATA,
    class_names,
    classify,
    find_targets,
    parse_class_limits,
    write_class_raster,
)
from deepprospect.core.mapping.streaming import MapSource, array_map
from deepprospect.core.raster_io import read_map, write_geotiff
from deepprospect.core.sampling.labels import point_cells
from rasterio.features import rasterize, shapes
from rasterio.transform import Affine
from scipy import ndimage

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


def whole_map_targets(values, threshold, grid, deposit_xy, min_area_km2):
    """Reference: zones of the whole map at once (scipy.ndimage.label, then rasterio shapes on the rank array)."""
    zones, count = ndimage.label(values >= threshold, structure=np.ones((3, 3), bool))
    index = np.arange(1, count + 1)
    cells = np.bincount(zones.ravel(), minlength=count + 1)[1:]
    means = np.asarray(ndimage.mean(values, zones, index))
    maxima = np.asarray(ndimage.maximum(values, zones, index))
    centres = np.asarray(ndimage.center_of_mass(zones > 0, zones, index)).reshape(-1, 2)
    rows, cols, inside = point_cells(deposit_xy, grid)
    deposits = np.bincount(zones[rows[inside], cols[inside]], minlength=count + 1)[1:]
    area = cells * 1e-4
    order = [i for i in np.lexsort((index, -area, -np.round(means, 12))) if area[i] >= min_area_km2]
    ranks = np.zeros(count + 1, np.int32)
    ranks[np.asarray(order, int) + 1] = np.arange(1, len(order) + 1)
    rank_map = ranks[zones]
    transform = Affine(grid.pixel_width, 0, grid.x_min, 0, -grid.pixel_height, grid.y_max)
    rings = {}
    for geometry, rank in shapes(rank_map, mask=rank_map > 0, connectivity=4, transform=transform):
        rings.setdefault(int(rank), []).append(geometry["coordinates"])
    return [(rank, means[i], maxima[i], cells[i], deposits[i],
             (grid.x_min + (centres[i, 1] + 0.5) * grid.pixel_width, grid.y_max - (centres[i, 0] + 0.5) * 10.0),
             rings[rank]) for rank, i in enumerate(order, start=1)]


def smooth_map(seed, shape=(23, 31)):
    """A smooth map with nodata, ties (rounded values) and zones that cross tile edges and corners."""
    rng = np.random.default_rng(seed)
    values = ndimage.gaussian_filter(rng.uniform(0, 1, shape), 1.2)
    values = (values - values.min()) / (values.max() - values.min())
    if seed % 2:
        values = np.round(values, 2)
    values[np.arange(min(shape)), np.arange(min(shape))] = 0.99  # a diagonal chain across tile corners
    values[rng.uniform(size=shape) < 0.05] = np.nan
    return values


@pytest.mark.parametrize("tile", [(1, 1), (2, 3), (4, 4), (7, 5)])
@pytest.mark.parametrize("seed", range(3))
def test_classes_and_targets_from_tiny_windows_equal_the_whole_map(tile, seed):
    values = smooth_map(seed)
    grid = GridSpec(0.0, 10.0 * values.shape[0], 10.0, 10.0, values.shape[1], values.shape[0], "EPSG:32650")
    inside = np.random.default_rng(seed).uniform(size=values.shape) < 0.9 if seed == 2 else None
    rng = np.random.default_rng(seed + 10)
    deposits = np.column_stack([rng.uniform(0, grid.x_max, 12), rng.uniform(0, grid.y_max, 12)])
    source = array_map(values, grid, inside, tile_shape=tile)
    result = classify(source, grid, (5, 15, 30), deposits)
    masked = values if inside is None else np.where(inside, values, np.nan)
    whole = classify(values, grid, (5, 15, 30), deposits, study_area=inside)
    assert result.thresholds == whole.thresholds and result.table == whole.table and result.notes == whole.notes
    ordered = np.sort(masked[~np.isnan(masked)])[::-1]
    counts = [math.floor(limit * ordered.size / 100 + 0.5) for limit in (5, 15, 30)]
    assert result.thresholds == [ordered[count - 1] for count in counts]
    for k, min_area in ((1, 0.0), (2, 0.0003)):
        targets, _ = find_targets(source, grid, result, k, min_area, deposits)
        expected = whole_map_targets(masked, result.thresholds[k - 1], grid, deposits, min_area)
        assert len(targets) == len(expected) > 0
        for target, (rank, mean, maximum, cells, captured, centroid, rings) in zip(targets, expected):
            assert (target.rank, target.max_value, target.cells, target.deposits) == (rank, maximum, cells, captured)
            assert target.mean_value == pytest.approx(mean, rel=1e-12)
            assert target.area_km2 == pytest.approx(cells * 1e-4)
            assert target.centroid == pytest.approx(centroid, rel=1e-12)
            assert target.geometry["coordinates"] == (rings[0] if len(rings) == 1 else rings)
    from_array, _ = find_targets(values, grid, whole, 2, 0.0003, deposits, study_area=inside)
    assert [(t.rank, t.cells, t.geometry) for t in from_array] == [(t.rank, t.cells, t.geometry) for t in targets]


def test_class_raster_is_written_window_by_window(tmp_path):
    values = smooth_map(1)
    grid = GridSpec(0.0, 230.0, 10.0, 10.0, 31, 23, "EPSG:32650")
    source = array_map(values, grid, tile_shape=(4, 6))
    result = classify(source, grid)
    write_class_raster(str(tmp_path / "classes.tif"), source, grid, result)
    with rasterio.open(tmp_path / "classes.tif") as src:
        np.testing.assert_array_equal(src.read(1), result.classes_of(values))
        assert (src.nodata, src.dtypes[0], src.descriptions[0]) == (CLASS_NODATA, "uint8", "anomaly_class")
        assert json.loads(src.tags()["DEEPPROSPECT_ANOMALY_CLASSES"])["limits_pct"] == [5.0, 15.0, 30.0]


def test_classes_and_targets_never_read_more_than_a_window():
    values = smooth_map(0, (40, 50))
    grid = GridSpec(0.0, 400.0, 10.0, 10.0, 50, 40, "EPSG:32650")
    sizes = []

    def read(window):
        sizes.append(window.width * window.height)
        return values[window.toslices()].astype(float)

    source = MapSource(grid, (8, 8), read)
    result = classify(source, grid, deposit_xy=np.array([centre(3, 3, grid)]))
    targets, _ = find_targets(source, grid, result, 2)
    assert targets and max(sizes) == 64 and len(sizes) > 5 * len(source.windows())


def test_outlining_more_targets_than_memory_allows_is_refused(monkeypatch):
    values = two_blobs()
    classes = classify(values, SMALL, (26,))
    monkeypatch.setattr("deepprospect.core.memory.available_memory_bytes", lambda: 2000)  # joining 3 pieces fits
    with pytest.raises(ResourceError, match=r"Outlining 3 target zone\(s\) would need about 3\.8 KiB of memory, but "
                                            r"only 2\.0 KiB is available\. Raise the minimum target area"):
        find_targets(values, SMALL, classes)  # 32 cell sides on the outlines
    assert [t.cells for t in find_targets(values, SMALL, classes, min_area_km2=0.001)[0]] == [16]  # 16 sides fit
