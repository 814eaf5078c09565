"""IDW core: brute-force equality, exact samples, nulls, search limits, threads, cancel, and gdal_grid."""

import numpy as np
import pytest
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.idw import IdwSettings, idw_grid

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
    result = idw_grid(points, values, GRID, settings, dtype=np.float64)
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
    expected = idw_grid(merged_points, merged_values, grid, settings, dtype=np.float64)
    rng = np.random.default_rng(11)
    results = []
    for _ in range(4):
        order = rng.permutation(len(points))
        results.append(idw_grid(points[order], values[order], grid, settings, dtype=np.float64))
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


def test_values_stay_within_the_sample_range(samples):
    points, values = samples
    result = idw_grid(points, values[:, 0], GRID, IdwSettings(max_points=0))[0]
    assert values[:, 0].min() - 1e-4 <= result.min() and result.max() <= values[:, 0].max() + 1e-4


def test_thread_count_does_not_change_the_result(samples):
    points, values = samples
    big = GridSpec.from_extent(0, 0, 100, 100, 0.5, "EPSG:32650")
    one = idw_grid(points, values, big, workers=1)
    two = idw_grid(points, values, big, workers=2)
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
