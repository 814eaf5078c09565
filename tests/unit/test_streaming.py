"""core.mapping.streaming: maps read in tiles, exact order statistics and counts, and zones labelled tile by tile."""

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import InputError, ResourceError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.streaming import (
    DistinctValues,
    LevelCounts,
    MapSource,
    Summary,
    array_map,
    label_zones,
    order_statistics,
    raster_map,
    tile_labels,
    valid_values,
)
from deepprospect.core.raster_io import write_geotiff
from scipy import ndimage

TILES = [(1, 1), (2, 3), (3, 2), (5, 5), (100, 100)]


def grid_of(rows, cols):
    return GridSpec(0.0, 10.0 * rows, 10.0, 10.0, cols, rows, "EPSG:32650")


def awkward_map(seed, rows=17, cols=23):
    """Values with nodata, long runs of ties (zeros, rounded values) and a few tiny distinct values."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (rows, cols))
    kind = seed % 4
    if kind == 1:
        values = np.round(values, 1)
    elif kind == 2:
        values[values < 0.7] = 0.0
    elif kind == 3:
        values = np.where(values < 0.5, 0.0, 1e-300 * rng.integers(1, 4, values.shape))
    values[rng.uniform(size=values.shape) < 0.1] = np.nan
    values[0, 0] = 0.25  # never all nodata
    return values


def summary_of(source):
    summary = Summary()
    for _, block in source.scan():
        summary.add(valid_values(block))
    return summary


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("bins, collect", [(2, 0), (3, 1), (4, 7), (1 << 16, 5), (1 << 16, 1 << 22)])
def test_order_statistics_are_exact_whatever_the_bins_budget_and_ties(seed, bins, collect):
    values = awkward_map(seed)
    source = array_map(values, grid_of(*values.shape), tile_shape=TILES[seed % 4])
    ordered = np.sort(values[~np.isnan(values)])
    ranks = np.r_[0, ordered.size - 1, np.random.default_rng(seed).integers(0, ordered.size, 9)]
    found, less = order_statistics(source, ranks, summary_of(source), bins=bins, collect=collect)
    np.testing.assert_array_equal(found, ordered[ranks])
    np.testing.assert_array_equal(less, np.searchsorted(ordered, ordered[ranks], "left"))


def test_order_statistics_split_crowded_bins_down_to_adjacent_floats():
    a = 0.3
    b, c = np.nextafter(a, 1), np.nextafter(np.nextafter(a, 1), 1)
    values = np.array([[a] * 50 + [b] * 50 + [c] * 30 + [0.1]])  # three neighbouring floats, each too many to collect
    source = array_map(values, grid_of(*values.shape), tile_shape=(1, 7))
    ranks = np.arange(values.size)
    found, less = order_statistics(source, ranks, summary_of(source), bins=2, collect=3)
    ordered = np.sort(values.ravel())
    np.testing.assert_array_equal(found, ordered)
    np.testing.assert_array_equal(less, np.searchsorted(ordered, ordered, "left"))


def test_order_statistics_read_the_map_twice_when_the_bracketing_bins_fit():
    values = np.random.default_rng(0).permutation(2000).reshape(40, 50) / 2000.0
    reads = []
    source = MapSource(grid_of(40, 50), (8, 8), lambda window: reads.append(window) or values[window.toslices()] * 1.0)
    summary = summary_of(source)
    reads.clear()
    found, _ = order_statistics(source, [1899, 1699, 1399], summary, bins=64, collect=100)
    np.testing.assert_array_equal(found, [0.9495, 0.8495, 0.6995])
    assert len(reads) == 2 * len(source.windows())  # a histogram, then the three crowded bins' values


def test_level_counts_and_distinct_values_are_exact():
    values = awkward_map(1)
    source = array_map(values, grid_of(*values.shape), tile_shape=(3, 4))
    valid = np.sort(values[~np.isnan(values)])
    levels = np.r_[valid[::37], -1.0, 2.0, 0.55]
    counts, distinct = LevelCounts(levels), DistinctValues(1000)
    for _, block in source.scan():
        counts.add(valid_values(block))
        distinct.add(valid_values(block))
    below, equal = counts.at(np.unique(levels))
    np.testing.assert_array_equal(below, [np.sum(valid < level) for level in np.unique(levels)])
    np.testing.assert_array_equal(equal, [np.sum(valid == level) for level in np.unique(levels)])
    assert counts.total == valid.size
    expected_values, expected_counts = np.unique(valid, return_counts=True)
    np.testing.assert_array_equal(distinct.values, expected_values)
    np.testing.assert_array_equal(distinct.counts, expected_counts)
    few = DistinctValues(5)
    few.add(valid)
    assert few.overflow and few.values.size == 0
    with pytest.raises(ValueError, match="not counted"):
        counts.at(np.array([0.123456]))


def test_points_are_read_from_the_tiles_that_hold_them_only():
    values = np.arange(60.0).reshape(6, 10)
    reads = []
    source = MapSource(grid_of(6, 10), (2, 3), lambda window: reads.append(window) or values[window.toslices()] * 1.0)
    rows, cols = np.array([0, 5, 1, 0, 5]), np.array([0, 9, 1, 2, 9])
    np.testing.assert_array_equal(source.sample(rows, cols), values[rows, cols])
    assert len(reads) == 2  # tiles (0, 0) and (2, 3); two points share each
    assert source.sample(np.array([], int), np.array([], int)).size == 0


def test_a_raster_file_reads_in_tiles_with_nodata_study_area_and_the_cells_other_maps_lack(tmp_path):
    grid = grid_of(7, 9)
    values = np.random.default_rng(0).uniform(0, 1, grid.shape)
    values[1, 2] = np.nan
    other = np.full(grid.shape, 0.5)
    other[3, 4] = np.nan
    write_geotiff(str(tmp_path / "map.tif"), values, grid, ["p"])
    write_geotiff(str(tmp_path / "other.tif"), other, grid, ["p"])
    inside = np.ones(grid.shape, bool)
    inside[6] = False
    with raster_map(str(tmp_path / "map.tif"), study_area=inside, valid_in=[str(tmp_path / "other.tif")],
                    tile_shape=(2, 4)) as source:
        assert source.band_name == "p" and source.grid.shape == grid.shape and len(source.windows()) == 12
        read = np.full(grid.shape, -1.0)
        for window, block in source.scan():
            assert block.shape == (window.height, window.width) and block.size <= 8
            read[window.toslices()] = block
    expected = values.astype(np.float32).astype(np.float64)
    expected[3, 4] = np.nan
    expected[6] = np.nan
    np.testing.assert_array_equal(read, expected)
    with pytest.raises(InputError, match="band 2 does not exist"), raster_map(str(tmp_path / "map.tif"), 2):
        pass


def test_tiles_of_a_raster_file_are_whole_blocks(tmp_path):
    grid = grid_of(600, 520)
    write_geotiff(str(tmp_path / "tiled.tif"), np.zeros(grid.shape), grid, ["p"])  # 256 × 256 blocks
    with raster_map(str(tmp_path / "tiled.tif"), window_cells=3 * 256 * 256) as source:
        assert source.tile_shape == (256, 256)
    with raster_map(str(tmp_path / "tiled.tif"), window_cells=4 * 256 * 256) as source:
        assert source.tile_shape == (512, 512)
    small = grid_of(100, 120)  # too small to tile: strips
    write_geotiff(str(tmp_path / "strips.tif"), np.zeros(small.shape), small, ["p"])
    with rasterio.open(tmp_path / "strips.tif") as src:
        strip = src.block_shapes[0][0]
    with raster_map(str(tmp_path / "strips.tif"), window_cells=40 * 120) as source:
        assert source.tile_shape == (max(strip, 40 // strip * strip), 120)


def corner_chains():
    """Zones that cross tile corners and edges: diagonal chains, an anti-diagonal, a ring and single cells."""
    mask = np.zeros((12, 13), bool)
    mask[np.arange(12), np.arange(12)] = True  # touches only at corners all the way down
    mask[np.arange(9), 12 - np.arange(9)] = True  # the anti-diagonal crosses the diagonal
    mask[8:11, 1:4] = True
    mask[9, 2] = False  # a ring with a hole
    mask[0, 6] = mask[11, 12] = True
    return mask


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("connectivity", [4, 8])
def test_zones_labelled_tile_by_tile_equal_whole_map_labelling(tile, connectivity):
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    rng = np.random.default_rng(sum(tile) + connectivity)
    for mask in (corner_chains(), rng.uniform(size=(19, 14)) < 0.45, np.ones((3, 4), bool), np.zeros((3, 4), bool)):
        values = np.where(mask, 1.0, 0.0)
        values[rng.uniform(size=mask.shape) < 0.05] = np.nan  # nodata is never in a zone
        source = array_map(values, grid_of(*mask.shape), tile_shape=tile)
        zones = label_zones(source, lambda block: block >= 1.0, connectivity)
        labelled = np.zeros(mask.shape, np.int64)
        for window, _, labels in tile_labels(source, lambda block: block >= 1.0, connectivity):
            labelled[window.toslices()] = zones.zone_of_label[labels]
        expected, count = ndimage.label(values >= 1.0, structure=structure)
        assert zones.count == count
        np.testing.assert_array_equal(labelled, expected)  # same zones, same numbers


def test_joining_more_zone_pieces_than_memory_allows_is_refused(monkeypatch):
    monkeypatch.setattr("deepprospect.core.memory.available_memory_bytes", lambda: 1000)
    source = array_map(np.tile([[1.0, 0.0]], (4, 4)), grid_of(4, 8), tile_shape=(2, 2))
    with pytest.raises(ResourceError, match=r"Joining 8 zone pieces across tiles would need about .* but only "
                                            r"1000 B is available\. Take fewer target classes"):
        label_zones(source, lambda block: block > 0.5)
