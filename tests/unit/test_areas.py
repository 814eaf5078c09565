"""core.areas: study areas rasterised window by window are the whole-grid rasterisation, bit for bit."""

import numpy as np
import pytest
from deepprospect.core.areas import Intersection, PolygonCells, study_area
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from rasterio.features import rasterize
from rasterio.transform import Affine

GRID = GridSpec(1000.0, 2000.0, 10.0, 7.5, 53, 41, "EPSG:32650")  # 41 rows × 53 columns, cells not square


def ring(rng, cx, cy, radius, vertices=9):
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    points = np.column_stack([cx + radius * rng.uniform(0.4, 1.0, vertices) * np.cos(angles),
                              cy + radius * rng.uniform(0.4, 1.0, vertices) * np.sin(angles)])
    return np.vstack([points, points[:1]]).tolist()


@pytest.fixture
def shapes():
    """A polygon with a hole reaching past the grid, a multipolygon, and a hole polygon; seeded."""
    rng = np.random.default_rng(11)
    polygons = [{"type": "Polygon", "coordinates": [ring(rng, 1200, 1850, 190, 14), ring(rng, 1210, 1840, 60)]},
                {"type": "MultiPolygon", "coordinates": [[ring(rng, 1420, 1790, 70)], [ring(rng, 1490, 1720, 40)]]}]
    holes = [{"type": "Polygon", "coordinates": [ring(rng, 1430, 1790, 30)]}]
    return polygons, holes


def whole_grid(geometries, grid):
    """GDAL's rasterisation of the whole grid in map coordinates (cell centres inside)."""
    transform = Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max)
    return rasterize([(g, 1) for g in geometries], out_shape=grid.shape, transform=transform).astype(bool)


def test_any_window_is_that_part_of_the_whole_grid(shapes):
    polygons, holes = shapes
    cells = PolygonCells(polygons, GRID, holes)
    expected = whole_grid(polygons, GRID) & ~whole_grid(holes, GRID)
    assert 100 < expected.sum() < expected.size - 100 and (expected[:, -1].any() or expected[0].any())
    np.testing.assert_array_equal(np.asarray(cells), expected)
    rng = np.random.default_rng(2)
    for _ in range(60):
        r0, c0 = rng.integers(0, 41), rng.integers(0, 53)
        rows, cols = slice(r0, r0 + rng.integers(1, 20)), slice(c0, c0 + rng.integers(1, 20))  # may pass the edge
        np.testing.assert_array_equal(cells[rows, cols], expected[rows, cols])
    assert cells.sum() == expected.sum() and cells.any() and cells.size == expected.size
    np.testing.assert_array_equal(cells[:, :], expected)


def test_a_cell_centre_on_an_edge_falls_the_same_way_in_every_window():
    """Edges through cell centres (vertices on half cells): GDAL's scan lines depend on where a rasterised block
    starts, so windows are cut from fixed bands and agree with the whole mask cell for cell."""
    grid = GridSpec(-73.3, 0.0, 0.7, 1.0, 40, 40, "EPSG:3857")
    triangle = [[5.5, 29.0], [21.0, 6.0], [47.0, 32.0]]  # (col, row): the long edge passes through cell centres
    xy = [[grid.x_min + c * grid.pixel_width, grid.y_max - r * grid.pixel_height] for c, r in triangle]
    for band_rows in (9, 40):
        cells = PolygonCells([{"type": "Polygon", "coordinates": [[*xy, xy[0]]]}], grid)
        cells.band_rows = band_rows
        whole = cells[:, :]
        for r0, c0 in ((r, c) for r in range(0, 40, 3) for c in range(0, 40, 3)):
            np.testing.assert_array_equal(cells[r0:r0 + 7, c0:c0 + 9], whole[r0:r0 + 7, c0:c0 + 9])


def test_threads_reading_windows_at_once_get_their_own_windows(shapes):
    from concurrent.futures import ThreadPoolExecutor

    cells = PolygonCells(shapes[0], GRID, shapes[1])
    cells.band_rows = 2  # many bands: every window replaces the kept ones
    expected = cells[:, :]
    windows = [(slice(r, r + 5), slice(c, c + 7)) for r in range(0, 41, 3) for c in range(0, 53, 4)] * 4
    with ThreadPoolExecutor(4) as pool:
        for window, got in zip(windows, pool.map(lambda w: cells[w], windows)):
            np.testing.assert_array_equal(got, expected[window])


def test_intersections_stay_windowed_and_match_arrays(shapes, monkeypatch):
    polygons, holes = shapes
    cells = PolygonCells(polygons, GRID, holes)
    other = np.random.default_rng(4).random(GRID.shape) < 0.5
    for both in (cells & other, other & cells, Intersection(cells, PolygonCells(polygons, GRID))):
        assert isinstance(both, Intersection)
    np.testing.assert_array_equal((other & cells)[3:30, 7:50], (other & np.asarray(cells))[3:30, 7:50])
    assert (cells & other).sum() == (np.asarray(cells) & other).sum()
    with pytest.raises(InputError, match="different shapes"):
        Intersection(cells, other[1:])
    with pytest.raises(IndexError, match="consecutive"):
        cells[::2, :]


def test_a_study_area_must_have_polygons_and_cover_a_cell_centre(shapes):
    with pytest.raises(InputError, match="no polygons"):
        study_area([], GRID)
    far = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}
    with pytest.raises(InputError, match="covers no cell centre"):
        study_area([far], GRID)
    assert study_area(*shapes[:1], GRID).sum() == whole_grid(shapes[0], GRID).sum()


def test_whole_grid_questions_hold_a_band_not_the_grid(shapes):
    """Counting the cells of a 64-million-cell study area holds a few MB (one band of rows), not the 64 MB grid."""
    import tracemalloc

    big = GridSpec(1000.0, 2000.0, 0.1, 0.1, 8000, 8000, "EPSG:32650")
    cells = PolygonCells(shapes[0], big)
    tracemalloc.start()
    try:
        count = cells.sum()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0 < count < big.cell_count and peak < 16 * 2**20
