"""IDW core: brute-force equality, the fast all-points path against the float64 reference, exact samples, nulls,
search limits, threads, blocks and the windowed writer, memory, cancel."""

import os
import tracemalloc

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding import idw
from deepprospect.core.gridding.idw import IdwSettings, idw_blocks, idw_grid, idw_memory_bytes
from deepprospect.core.raster_io import grid_profile
from deepprospect.core.tiles import write_tiles

GRID = GridSpec.from_extent(0, 0, 100, 80, 7, "EPSG:32650")


def brute_force(points, values, grid, settings):
    """IDW straight from the formula, one pixel at a time (the reference)."""
    out = np.full(grid.shape, np.nan)
    valid = ~np.isnan(values)
    points, values = points[valid], values[valid]
    for r, y in enumerate(grid.y_centres()):
        for c, x in enumerate(grid.x_centres()):
            d = np.hypot(points[:, 0] - x, points[:, 1] - y)
            order = np.argsort(d, kind="stable")
            if settings.radius > 0:
                order = order[d[order] <= settings.radius]
            if settings.max_points:
                order = order[: settings.max_points]
            if order.size < settings.min_points:
                continue
            if d[order[0]] == 0:
                out[r, c] = values[order][d[order] == 0].mean()
                continue
            w = d[order] ** -settings.power
            out[r, c] = (w * values[order]).sum() / w.sum()
    return out


@pytest.fixture
def samples():
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 100, (60, 2))
    values = rng.lognormal(2.0, 0.8, (60, 3))
    values[[3, 17, 40], 1] = np.nan  # field 2 has gaps: its neighbours differ from the others'
    return points, values


@pytest.mark.parametrize("settings", [
    IdwSettings(power=2, max_points=12),
    IdwSettings(power=2, max_points=0),
    IdwSettings(power=3.5, max_points=0, radius=25),
    IdwSettings(power=1.5, max_points=5, radius=20, min_points=3),
    IdwSettings(power=2, max_points=1),
])
def test_equals_brute_force(samples, settings):
    points, values = samples
    result = idw_grid(points, values, GRID, settings, dtype=np.float64, reference=True)
    for field in range(values.shape[1]):
        expected = brute_force(points, values[:, field], GRID, settings)
        np.testing.assert_array_equal(np.isnan(result[field]), np.isnan(expected))
        np.testing.assert_allclose(result[field], expected, rtol=1e-10, equal_nan=True)


def test_sample_on_a_pixel_centre_gives_its_value_exactly():
    grid = GridSpec(0.0, 30.0, 10.0, 10.0, 3, 3, "EPSG:32650")
    points = np.array([[15.0, 15.0], [0.0, 0.0], [30.0, 30.0]])
    values = np.array([42.125, 1.0, 100.0])
    for settings in (IdwSettings(max_points=2), IdwSettings(max_points=0)):
        assert idw_grid(points, values, grid, settings, dtype=np.float64)[0, 1, 1] == 42.125


def test_coincident_samples_are_averaged_without_division_by_zero():
    grid = GridSpec(0.0, 30.0, 10.0, 10.0, 3, 3, "EPSG:32650")
    points = np.array([[15.0, 15.0], [15.0, 15.0], [2.0, 3.0], [2.0, 3.0]])
    values = np.array([10.0, 20.0, 5.0, 7.0])
    for settings in (IdwSettings(max_points=3), IdwSettings(max_points=0)):
        result = idw_grid(points, values, grid, settings, dtype=np.float64)[0]
        assert np.isfinite(result).all()
        assert result[1, 1] == 15.0


@pytest.mark.parametrize("settings", [IdwSettings(max_points=2), IdwSettings(max_points=0)])
def test_coincident_samples_act_as_one_sample_with_the_mean_in_any_order(samples, settings):
    points, values = samples[0][:20], samples[1][:20, :2]
    grid = GridSpec(0.0, 100.0, 10.0, 10.0, 10, 10, "EPSG:32650")
    points[0] = points[1] = points[2] = [35.0, 45.0]  # a pixel centre: three samples there
    values[:3] = [[1.0, 6.0], [2.0, np.nan], [4.0, 9.0]]
    merged_points = points[2:]
    merged_values = np.vstack([[7.0 / 3.0, 7.5], values[3:]])
    expected = idw_grid(merged_points, merged_values, grid, settings, dtype=np.float64, reference=True)
    rng = np.random.default_rng(11)
    results = []
    for _ in range(4):
        order = rng.permutation(len(points))
        results.append(idw_grid(points[order], values[order], grid, settings, dtype=np.float64, reference=True))
        np.testing.assert_array_equal(results[-1], results[0])
    np.testing.assert_allclose(results[0], expected, rtol=1e-12)
    assert results[0][0, 5, 3] == pytest.approx(7.0 / 3.0, abs=1e-15) and results[0][1, 5, 3] == 7.5


def test_null_values_are_skipped_not_zero(samples):
    points, values = samples
    with_gaps = idw_grid(points, values[:, 1], GRID, dtype=np.float64)[0]
    valid = ~np.isnan(values[:, 1])
    without = idw_grid(points[valid], values[valid, 1], GRID, dtype=np.float64)[0]
    np.testing.assert_array_equal(with_gaps, without)
    assert np.nanmin(with_gaps) >= np.nanmin(values[:, 1])  # a 0 read for NULL would pull values down


def test_many_fields_equal_one_field_at_a_time(samples):
    points, values = samples
    together = idw_grid(points, values, GRID, dtype=np.float64)
    for field in range(values.shape[1]):
        alone = idw_grid(points, values[:, field], GRID, dtype=np.float64)[0]
        np.testing.assert_allclose(together[field], alone, rtol=1e-12)


def test_pixels_with_too_few_points_in_radius_are_nodata():
    grid = GridSpec(0.0, 100.0, 10.0, 10.0, 10, 10, "EPSG:32650")
    points = np.array([[5.0, 95.0], [15.0, 95.0]])
    result = idw_grid(points, np.array([1.0, 2.0]), grid, IdwSettings(max_points=0, radius=12, min_points=2))[0]
    assert not np.isnan(result[0, 0]) and not np.isnan(result[0, 1])
    assert np.isnan(result[9, 9]) and np.isnan(result[0, 3])


def test_a_sample_exactly_at_the_radius_counts():
    grid = GridSpec(0.0, 10.0, 10.0, 10.0, 3, 1, "EPSG:32650")  # centres at x = 5, 15, 25
    points, values = np.array([[5.0, 25.0]]), np.array([7.0])  # 20 from the first centre
    for settings in (IdwSettings(max_points=4, radius=20), IdwSettings(max_points=0, radius=20)):
        result = idw_grid(points, values, grid, settings, dtype=np.float64)[0, 0]
        assert result[0] == pytest.approx(7.0, rel=1e-12)
        assert np.isnan(result[1:]).all()  # 22.4 and 28.3 away: beyond the radius


def test_a_sample_one_ulp_past_the_radius_never_counts_whatever_the_blocks():
    """k-d tree queries compare squared distances, so a sample just past the radius can come back; it is dropped
    whether or not another cell of the block leaves room for it."""
    radius = 0.4068960439866572
    points = np.array([[0.19262342716410485, 0.2333841094689753],  # 0.40689604398665724 from the first centre
                       [0.51, 0.5], [1.5, 0.52], [1.5, 0.48], [1.52, 0.5]])
    values = np.array([100.0, 0.0, 1.0, 1.0, 1.0])
    grid = GridSpec(0.0, 1.0, 1.0, 1.0, 2, 1, "EPSG:3857")  # centres (0.5, 0.5) and (1.5, 0.5)
    for block_side in (1, 2):
        blocks = idw_blocks(points, values, grid, IdwSettings(max_points=0, radius=radius), block_side=block_side,
                            dtype=np.float64)
        first = next(values for tile, values in blocks if tile.slices[1].start == 0)
        assert first[0, 0, 0] == 0.0


def test_values_stay_within_the_sample_range(samples):
    points, values = samples
    result = idw_grid(points, values[:, 0], GRID, IdwSettings(max_points=0))[0]
    assert values[:, 0].min() - 1e-4 <= result.min() and result.max() <= values[:, 0].max() + 1e-4


@pytest.mark.parametrize("settings", [IdwSettings(), IdwSettings(max_points=0)])
def test_thread_count_does_not_change_the_result(samples, settings):
    points, values = samples
    big = GridSpec.from_extent(0, 0, 100, 100, 0.5, "EPSG:32650")
    one = idw_grid(points, values, big, settings, workers=1)
    two = idw_grid(points, values, big, settings, workers=2)
    np.testing.assert_array_equal(one, two)


def test_progress_reaches_100_and_cancel_stops(samples):
    points, values = samples
    seen = []
    idw_grid(points, values, GRID, progress=seen.append)
    assert seen[-1] == pytest.approx(100.0)
    with pytest.raises(Cancelled):
        idw_grid(points, values, GRID, is_cancelled=lambda: True)


def test_field_with_too_few_values_is_refused(samples):
    points, values = samples
    values = values.copy()
    values[5:, 2] = np.nan
    with pytest.raises(InputError, match="Zn: only 5 sample"):
        idw_grid(points, values, GRID, IdwSettings(min_points=6), field_names=["Cu", "Pb", "Zn"])
    values[:, 2] = np.nan
    with pytest.raises(InputError, match="Zn: no sample has a value"):
        idw_grid(points, values, GRID, field_names=["Cu", "Pb", "Zn"])


@pytest.mark.parametrize("kwargs, message", [
    ({"power": 0}, "power must be greater than zero"),
    ({"max_points": -1}, "maximum number of points"),
    ({"min_points": 0}, "minimum number of points must be at least 1"),
    ({"radius": -5}, "search radius"),
    ({"max_points": 3, "min_points": 4}, "no pixel could ever get a value"),
])
def test_settings_are_validated(kwargs, message):
    with pytest.raises(InputError, match=message):
        IdwSettings(**kwargs)


def test_bad_coordinates_are_refused():
    with pytest.raises(InputError, match="not finite"):
        idw_grid(np.array([[0.0, np.inf]]), np.array([1.0]), GRID)
    with pytest.raises(InputError, match="no samples"):
        idw_grid(np.zeros((0, 2)), np.zeros(0), GRID)


# ---------------------------------------------------------------------------------------------- all points, fast


def survey(n=400, fields=3, seed=5, side=1000.0):
    """Samples over a square, some outside it, some exactly on pixel centres (10 m pixels), fields with gaps."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-50, side + 50, (n, 2))
    points[:20] = (np.floor(rng.uniform(0, side, (20, 2)) / 10) + 0.5) * 10  # on a centre
    values = rng.lognormal(2.0, 0.8, (n, fields))
    values[rng.random((n, fields)) < 0.15] = np.nan
    values[:, 0] = rng.lognormal(2.0, 0.8, n)  # complete
    values[3, 1] = np.nan  # a sample on a centre with a gap
    return points, values


SURVEY_GRID = GridSpec.from_extent(0, 0, 1000, 1000, 10, "EPSG:32650")


@pytest.fixture
def small_pieces(monkeypatch):
    """Split pieces down to the smallest size on small grids, so every level of the fast path runs."""
    monkeypatch.setattr(idw, "LEAF_SAMPLES", 2)


@pytest.mark.parametrize("power", [2.0, 1.5, 3.0, 6.0])
def test_fast_all_points_is_within_a_1e4th_of_the_float64_reference(small_pieces, power):
    points, values = survey()
    settings = IdwSettings(power=power, max_points=0)
    fast = idw_grid(points, values, SURVEY_GRID, settings, dtype=np.float64)
    reference = idw_grid(points, values, SURVEY_GRID, settings, dtype=np.float64, reference=True)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, reference, rtol=1e-4)


@pytest.mark.parametrize("power", [2.0, 8.0])
def test_fast_all_points_with_clustered_samples_and_empty_ground(power):
    """Cells far from every sample get their value from far samples only: their weights must stay accurate
    there even when a high power makes them vary steeply across a piece."""
    rng = np.random.default_rng(1)
    centres = rng.uniform(0, 1, (5, 2))
    cluster = rng.integers(0, 5, 600)
    points = np.column_stack([(centres[cluster, 0] + rng.normal(0, 0.02, 600)) * 200,
                              (centres[cluster, 1] + rng.normal(0, 0.02, 600)) * 90])
    values = rng.lognormal(1, 1, 600)
    grid = GridSpec(0.0, 90.0, 1.0, 1.0, 200, 90, "EPSG:32650")
    settings = IdwSettings(power=power, max_points=0)
    fast = idw_grid(points, values, grid, settings, dtype=np.float64)
    reference = idw_grid(points, values, grid, settings, dtype=np.float64, reference=True)
    np.testing.assert_allclose(fast, reference, rtol=1e-4)


def test_fast_all_points_with_the_default_pieces_on_a_larger_grid():
    points, values = survey(n=3000, fields=2, side=3000.0)
    grid = GridSpec.from_extent(0, 0, 3000, 2900, 10, "EPSG:32650")  # 300 × 290: two blocks across, edges
    settings = IdwSettings(max_points=0)
    fast = idw_grid(points, values, grid, settings, dtype=np.float64)
    reference = idw_grid(points, values, grid, settings, dtype=np.float64, reference=True)
    np.testing.assert_allclose(fast, reference, rtol=1e-4)


def test_fast_all_points_is_exact_at_samples_and_skips_missing_values(small_pieces):
    points, values = survey()
    settings = IdwSettings(max_points=0)
    fast = idw_grid(points, values, SURVEY_GRID, settings, dtype=np.float64)
    rows = ((SURVEY_GRID.y_max - points[:20, 1]) / 10 - 0.5).round().astype(int)
    cols = ((points[:20, 0] - SURVEY_GRID.x_min) / 10 - 0.5).round().astype(int)
    for field in range(values.shape[1]):
        known = ~np.isnan(values[:20, field])
        assert np.array_equal(fast[field, rows, cols][known], values[:20, field][known])  # exactly
        valid = ~np.isnan(values[:, field])
        alone = idw_grid(points[valid], values[valid, field], SURVEY_GRID, settings, dtype=np.float64,
                         reference=True)[0]
        np.testing.assert_allclose(fast[field], alone, rtol=1e-4)  # gaps: only the field's own samples
    assert np.isnan(values[3, 1]) and np.isfinite(fast[1, rows[3], cols[3]])


def test_fast_all_points_with_a_huge_power_falls_back_to_float64():
    points, values = survey(n=50, fields=2)
    grid = GridSpec.from_extent(0, 0, 1000, 1000, 50, "EPSG:32650")
    settings = IdwSettings(power=30, max_points=0)  # weights span far more than float32's range
    fast = idw_grid(points, values, grid, settings, dtype=np.float64)
    reference = idw_grid(points, values, grid, settings, dtype=np.float64, reference=True)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, reference, rtol=1e-4)


# ---------------------------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("settings", [IdwSettings(), IdwSettings(max_points=0, radius=120),
                                      IdwSettings(max_points=0)])
def test_tiny_blocks_equal_the_whole_grid(samples, settings):
    points, values = samples
    grid = GridSpec.from_extent(0, 0, 100, 80, 2.5, "EPSG:32650")  # 40 × 32
    whole = idw_grid(points, values, grid, settings, dtype=np.float64, reference=True)
    seen = np.zeros(grid.shape, dtype=int)
    for tile, block in idw_blocks(points, values, grid, settings, block_side=7, dtype=np.float64):
        assert block.shape[1:] == (min(7, grid.rows - tile.row), min(7, grid.cols - tile.col))
        seen[tile.slices] += 1
        expected = whole[(slice(None), *tile.slices)]
        np.testing.assert_allclose(block, expected, rtol=1e-4 if settings.all_points else 1e-12)
    assert (seen == 1).all()


@pytest.mark.parametrize("settings", [IdwSettings(max_points=5, radius=10, min_points=2), IdwSettings(max_points=0)])
def test_the_windowed_writer_writes_what_the_array_holds(samples, settings, tmp_path):
    points, values = samples
    grid = GridSpec.from_extent(0, 0, 100, 80, 2.5, "EPSG:32650")
    blocks = idw_blocks(points, values, grid, settings, block_side=7)
    path = str(tmp_path / "idw.tif")
    write_tiles(path, grid_profile(grid, 3), ["a", "b", "c"], {"WHAT": "test"}, blocks)
    expected = np.zeros((3, *grid.shape), dtype=np.float32)
    for tile, block in idw_blocks(points, values, grid, settings, block_side=7):
        expected[(slice(None), *tile.slices)] = block
    with rasterio.open(path) as src:
        written = src.read(masked=True).filled(np.nan)
        assert src.descriptions == ("a", "b", "c") and src.tags()["WHAT"] == "test"
    np.testing.assert_array_equal(written, expected)
    assert np.isnan(written).any() == (not settings.all_points)


def test_cancel_between_blocks_leaves_no_file(samples, tmp_path):
    points, values = samples
    polls = []

    def cancel_after_a_few_blocks():
        polls.append(1)
        return len(polls) > 5

    blocks = idw_blocks(points, values, GRID, IdwSettings(max_points=0), block_side=4, workers=1,
                        is_cancelled=cancel_after_a_few_blocks)
    with pytest.raises(Cancelled):
        write_tiles(str(tmp_path / "idw.tif"), grid_profile(GRID, 3), ["a", "b", "c"], {}, blocks)
    assert len(polls) == 6 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("settings", [IdwSettings(), IdwSettings(max_points=0)])
def test_peak_memory_does_not_grow_with_the_grid(samples, settings, tmp_path):
    points, values = samples
    peaks = []
    for pixel in (1.0, 0.125):  # 64 times the cells (room for what other threads of a long session allocate)
        grid = GridSpec.from_extent(0, 0, 100, 80, pixel, "EPSG:32650")
        tracemalloc.start()
        write_tiles(str(tmp_path / f"{pixel}.tif"), grid_profile(grid, 3), ["a", "b", "c"], {},
                    idw_blocks(points, values, grid, settings, block_side=16, workers=1))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]
    assert peaks[1] < 4 * 3 * 800 * 640 / 4  # less than a quarter of the float32 array of the larger grid
    assert peaks[1] < idw_memory_bytes(values, settings, workers=1, block_side=16)
