"""core.gridding.density: distance, density and buffer-distance density against brute force and closed forms."""

import math

import numpy as np
import pytest
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.density import (
    KERNELS,
    FeatureSet,
    distance_to_features,
    feature_density,
    kernel_value,
    rasterize_features,
)
from scipy.integrate import quad

CRS = "EPSG:32650"


def grid(cols=40, rows=30, pixel=10.0, x_min=0.0, y_max=300.0):
    return GridSpec(x_min, y_max, pixel, pixel, cols, rows, CRS)


def line(*xy):
    return {"type": "LineString", "coordinates": [list(p) for p in xy]}


def centres(g):
    return g.cell_centres().reshape(g.rows, g.cols, 2)


def point_segment_distance(p, a, b):
    """Brute force: distance from points p (..., 2) to segment ab."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1)


def brute_force_distance(g, segments=(), points=(), inside=None):
    """Distance from every pixel centre to the nearest segment or point, 0 where ``inside`` (tiny grids only)."""
    xy = centres(g)
    d = np.min([point_segment_distance(xy, a, b) for a, b in segments]
               + [np.linalg.norm(xy - p, axis=-1) for p in points], axis=0)
    return np.where(inside, 0.0, d) if inside is not None else d


# --- distance -------------------------------------------------------------------------------------------


def test_distance_is_exact_to_the_segments_not_to_the_pixels_they_burn():
    g = grid()
    segments = [((35.0, 42.0), (250.0, 180.0)), ((300.0, 20.0), (330.0, 270.0)), ((12.0, 250.0), (13.0, 251.0))]
    features = FeatureSet.from_geojson([line(*s) for s in segments])
    d = distance_to_features(features, g)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, brute_force_distance(g, segments), rtol=1e-6, atol=1e-4)
    # the distance to the nearest burnt pixel centre (gdal_proximity's) differs by up to a pixel
    burnt = centres(g)[rasterize_features(features, g)]
    to_pixels = np.linalg.norm(centres(g)[:, :, None] - burnt, axis=-1).min(-1)
    assert 0.3 * g.pixel_width < np.abs(d - to_pixels).max() <= g.pixel_width * math.sqrt(2)


def test_distance_counts_features_outside_the_grid():
    g = grid(cols=20, rows=20)
    outside = ((-35.0, -50.0), (-35.0, 400.0))  # a vertical line 35 m left of the grid
    inside = ((180.0, 290.0), (190.0, 280.0))
    far = ((-2000.0, 100.0), (-1900.0, 100.0))
    d = distance_to_features(FeatureSet.from_geojson([line(*outside), line(*inside), line(*far)]), g)
    np.testing.assert_allclose(d[:, 0], 40.0)
    np.testing.assert_allclose(d, brute_force_distance(g, [outside, inside, far]), rtol=1e-6, atol=1e-4)


def test_distance_of_points_and_polygons():
    g = grid(cols=20, rows=20, y_max=200.0)
    ring = [[50, 50], [120, 50], [120, 120], [50, 120], [50, 50]]
    hole = [[70, 70], [100, 70], [100, 100], [70, 100], [70, 70]]
    square = {"type": "Polygon", "coordinates": [ring, hole]}
    features = FeatureSet.from_geojson([square, {"type": "MultiPoint", "coordinates": [[175, 175, 9.0]]}])
    d = distance_to_features(features, g)
    xy = centres(g)
    in_ring = (xy[..., 0] > 50) & (xy[..., 0] < 120) & (xy[..., 1] > 50) & (xy[..., 1] < 120)
    in_hole = (xy[..., 0] > 70) & (xy[..., 0] < 100) & (xy[..., 1] > 70) & (xy[..., 1] < 100)
    edges = [(a, b) for r in (ring, hole) for a, b in zip(r[:-1], r[1:])]
    expected = brute_force_distance(g, edges, [(175.0, 175.0)], in_ring & ~in_hole)
    assert d[13, 6] == 0 and d[11, 8] == 15  # centre (65, 65) in the polygon, (85, 85) in the hole
    np.testing.assert_allclose(d, expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_distance_is_exact_on_a_random_network_with_few_spaced_points(seed, monkeypatch):
    """Fewer spaced points than segments make the bounds loose: the result must stay exact."""
    import deepprospect.core.gridding.density as density

    rng = np.random.default_rng(seed)
    g = grid(cols=37, rows=29, pixel=10.0)
    lines = [rng.uniform(-50, 420, 2) + rng.normal(0, 40, (5, 2)).cumsum(axis=0) for _ in range(12)]
    segments = [(a, b) for xy in lines for a, b in zip(xy[:-1], xy[1:])]
    expected = brute_force_distance(g, segments)
    features = FeatureSet.from_geojson([line(*xy) for xy in lines])
    np.testing.assert_allclose(distance_to_features(features, g), expected, rtol=1e-6, atol=1e-4)
    monkeypatch.setattr(density, "MAX_SAMPLES", 50)
    monkeypatch.setattr(density, "DISTANCE_TILE", 7)
    np.testing.assert_allclose(distance_to_features(features, g), expected, rtol=1e-6, atol=1e-4)


def test_no_feature_near_the_grid_is_an_error():
    g = grid(cols=5, rows=5)
    with pytest.raises(InputError, match="No feature lies on the output grid"):
        distance_to_features(FeatureSet.from_geojson([{"type": "Point", "coordinates": [1e4, 1e4]}]), g)


# --- density -------------------------------------------------------------------------------------------


def test_density_of_a_long_straight_line_is_the_analytic_chord():
    g = grid(cols=60, rows=60, pixel=5.0)
    radius = 40.0
    y_line = 151.3
    features = FeatureSet.from_geojson([line((-500.0, y_line), (900.0, y_line))])
    d = feature_density(features, g, radius)
    offset = np.abs(g.y_centres() - y_line)[:, None]
    expected = 2 * np.sqrt(np.maximum(radius**2 - offset**2, 0)) / (math.pi * radius**2)
    np.testing.assert_allclose(d, np.broadcast_to(expected, d.shape), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
def test_segment_integral_matches_numerical_quadrature(kernel):
    g = grid(cols=12, rows=12, pixel=7.0)
    radius, a, b, weight = 30.0, np.array([20.0, 250.0]), np.array([70.0, 280.0]), 2.5
    features = FeatureSet.from_geojson([line(a, b)], [weight])
    d = feature_density(features, g, radius, kernel)
    length = np.linalg.norm(b - a)
    mass = {"uniform": 1, "triangular": 1 / 3, "epanechnikov": 1 / 2, "quartic": 1 / 3}[kernel]
    for row, col in [(0, 0), (3, 5), (6, 8), (2, 11), (8, 2)]:
        x, y = centres(g)[row, col]

        def integrand(s, x=x, y=y):
            p = a + (b - a) * s / length
            return kernel_value(np.hypot(p[0] - x, p[1] - y), radius, kernel)

        expected = weight * quad(integrand, 0, length, limit=200, points=[length / 2])[0] / (
            mass * math.pi * radius**2)
        assert d[row, col] == pytest.approx(expected, rel=2e-3 if kernel == "uniform" else 1e-4, abs=1e-10)


@pytest.mark.parametrize("kernel", ["triangular", "epanechnikov", "quartic"])
def test_buffer_density_is_zero_beyond_the_buffer_and_integrates_to_the_feature_measure(kernel):
    g = grid(cols=80, rows=80, pixel=5.0, y_max=400.0)
    buffer = 60.0
    a, b = (120.0, 200.0), (260.0, 230.0)
    features = FeatureSet.from_geojson([line(a, b), {"type": "Point", "coordinates": [300.0, 80.0]}])
    d = feature_density(features, g, buffer, kernel)
    near = np.minimum(point_segment_distance(centres(g), a, b),
                      np.linalg.norm(centres(g) - [300.0, 80.0], axis=-1))
    assert (d[near >= buffer] == 0).all() and (d[near < buffer - 5] > 0).all()
    length = math.dist(a, b)
    assert d.sum() * 25.0 == pytest.approx(length + 1.0, rel=2e-3)  # ∫ BDD = Σ w μ(F) (length + one point)


def test_buffer_density_is_larger_where_features_are_denser_and_scales_with_weights():
    g = grid(cols=60, rows=20, pixel=10.0, y_max=200.0)
    one = [line((0.0, 100.0), (250.0, 100.0))]
    many = [line((350.0, y), (600.0, y)) for y in (80.0, 100.0, 120.0)]
    d = feature_density(FeatureSet.from_geojson(one + many), g, 100.0, "triangular")
    assert d[10, 45] > 2.5 * d[10, 12] > 0
    weighted = feature_density(FeatureSet.from_geojson(one + many, [3.0, 1.0, 1.0, 1.0]), g, 100.0, "triangular")
    np.testing.assert_allclose(weighted[:, :25], 3 * d[:, :25], rtol=1e-6)


def test_point_density_counts_points_in_the_disk():
    g = grid(cols=10, rows=10)
    pts = {"type": "MultiPoint", "coordinates": [[50.0, 250.0], [52.0, 252.0], [90.0, 250.0]]}
    d = feature_density(FeatureSet.from_geojson([pts]), g, 30.0)
    xy = centres(g)
    counts = sum((np.linalg.norm(xy - p, axis=-1) < 30.0).astype(float) for p in pts["coordinates"])
    np.testing.assert_allclose(d, counts / (math.pi * 900.0), rtol=1e-6)


def test_polygon_density_is_the_area_fraction_in_the_disk():
    g = grid(cols=30, rows=30, pixel=10.0)
    square = {"type": "Polygon", "coordinates": [[[-500, -500], [150, -500], [150, 800], [-500, 800], [-500, -500]]]}
    d = feature_density(FeatureSet.from_geojson([square]), g, 50.0)
    xs = g.x_centres()
    assert np.allclose(d[:, xs < 95], 1.0, atol=2e-3)  # the disk is inside the polygon
    assert np.allclose(d[:, xs > 205], 0.0)
    # on the edge x = 150 the disk is half inside
    edge = feature_density(FeatureSet.from_geojson([square]), grid(cols=1, rows=1, x_min=145.0, y_max=160.0), 50.0)
    assert edge[0, 0] == pytest.approx(0.5, abs=0.01)
    for kernel in ("triangular", "quartic"):
        inner = feature_density(FeatureSet.from_geojson([square]), g, 50.0, kernel)
        assert np.allclose(inner[:, xs < 95], 1.0, atol=3e-3)


def test_negative_polygon_weights_give_negative_density():
    g = grid(cols=30, rows=30, pixel=10.0)
    square = {"type": "Polygon", "coordinates": [[[-500, -500], [150, -500], [150, 800], [-500, 800], [-500, -500]]]}
    positive = feature_density(FeatureSet.from_geojson([square], [2.0]), g, 50.0)
    negative = feature_density(FeatureSet.from_geojson([square], [-2.0]), g, 50.0)
    assert positive.max() == pytest.approx(2.0, abs=5e-3)
    np.testing.assert_allclose(negative, -positive, atol=1e-6)


def test_bad_input_and_cancel():
    g = grid()
    features = FeatureSet.from_geojson([line((0.0, 0.0), (100.0, 100.0))])
    with pytest.raises(InputError, match="greater than zero"):
        feature_density(features, g, 0.0)
    with pytest.raises(InputError, match="Unknown kernel"):
        feature_density(features, g, 10.0, "gaussian")
    with pytest.raises(InputError, match="no point, line or polygon"):
        FeatureSet.from_geojson([{"type": "LineString", "coordinates": []}])
    with pytest.raises(InputError, match="weights"):
        FeatureSet.from_geojson([line((0.0, 0.0), (1.0, 1.0))], [float("nan")])
    with pytest.raises(Cancelled):
        feature_density(features, g, 10.0, is_cancelled=lambda: True)
    with pytest.raises(Cancelled):
        distance_to_features(features, g, is_cancelled=lambda: True)


def test_synthetic_survey_deposits_sit_where_faults_are_near_and_dense():
    from deepprospect.core.synthetic import make_survey

    survey = make_survey()
    g = GridSpec.from_extent(*survey.bounds, 100.0, survey.crs)
    features = FeatureSet.from_geojson([{"type": "LineString", "coordinates": f.tolist()} for f in survey.faults])
    distance = distance_to_features(features, g)
    bdd = feature_density(features, g, 2000.0, "triangular")
    rows = ((g.y_max - survey.deposit_xy[:, 1]) // g.pixel_height).astype(int)
    cols = ((survey.deposit_xy[:, 0] - g.x_min) // g.pixel_width).astype(int)
    assert np.median(distance[rows, cols]) < np.median(distance)
    assert np.median(bdd[rows, cols]) > np.median(bdd)
    exact = np.min([point_segment_distance(centres(g)[rows, cols], a, b)
                    for f in survey.faults for a, b in zip(f[:-1], f[1:])], axis=0)
    np.testing.assert_allclose(distance[rows, cols], exact, rtol=1e-6, atol=1e-3)
