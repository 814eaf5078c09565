"""Synthetic survey generator: reproducibility, value realism, halos, structural control, geometry."""

import numpy as np
import pytest
from deepprospect.core.errors import InputError
from deepprospect.core.synthetic import correlation_matrix, make_survey
from scipy.spatial import cKDTree


@pytest.fixture(scope="module")
def survey():
    """The default survey (the one bundled as demo data)."""
    return make_survey()


def arrays(s):
    """Every array of a survey, in a fixed order."""
    return [s.sample_xy, s.values, s.deposit_xy, s.barren_xy, *s.faults]


def log_column(s, element):
    """log10 values of one element (NaN where missing)."""
    return np.log10(s.values[:, s.element_names.index(element)])


def fault_points(s, step=25.0):
    """Points every ``step`` metres or closer along every fault."""
    points = []
    for line in s.faults:
        for a, b in zip(line[:-1], line[1:]):
            n = int(np.ceil(np.hypot(*(b - a)) / step)) + 1
            points.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
    return np.concatenate(points)


def test_same_seed_is_bit_identical_and_other_seed_differs(survey):
    again = make_survey()
    for a, b in zip(arrays(survey), arrays(again)):
        np.testing.assert_array_equal(a, b)
    other = make_survey(seed=7)
    assert not np.array_equal(survey.sample_xy, other.sample_xy)
    assert not np.allclose(np.nan_to_num(survey.values), np.nan_to_num(other.values))
    assert not np.array_equal(survey.deposit_xy, other.deposit_xy)


def test_shapes_names_and_read_only(survey):
    n, f = survey.values.shape
    assert n == 1500 == len(survey.sample_xy)
    assert f == len(survey.element_names) == len(survey.units) >= 12
    assert {"Au", "Cu", "Pb", "Zn", "As", "Ni", "K"} <= set(survey.element_names)
    assert set(survey.halo_elements) < set(survey.element_names)
    assert survey.crs == "EPSG:32650"
    assert 20 <= len(survey.faults) == len(survey.fault_names) <= 30
    assert all(line.ndim == 2 and line.shape[1] == 2 and len(line) >= 2 for line in survey.faults)
    assert 20 <= len(survey.deposit_xy) <= 30 and 25 <= len(survey.barren_xy) <= 35
    with pytest.raises(ValueError):
        survey.values[0, 0] = 1.0


def test_values_positive_with_few_missing(survey):
    values = survey.values
    assert np.all(values[~np.isnan(values)] > 0)
    missing = np.isnan(values).mean(axis=0)
    assert 0 < missing.max() <= 0.05
    assert np.count_nonzero(missing) >= 2
    assert np.all(missing < 1)


def test_inter_element_correlations(survey):
    def corr(a, b):
        x, y = log_column(survey, a), log_column(survey, b)
        ok = ~np.isnan(x) & ~np.isnan(y)
        return np.corrcoef(x[ok], y[ok])[0, 1]

    assert corr("Pb", "Zn") > 0.4
    assert corr("Ni", "Cr") > 0.4
    assert corr("Au", "As") > 0.4
    assert abs(corr("Pb", "Ni")) < 0.25
    assert corr("Pb", "Zn") > abs(corr("Pb", "Ni")) + 0.3
    matrix = correlation_matrix()
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert np.linalg.eigvalsh(matrix).min() > 0


def test_neighbouring_samples_correlate(survey):
    ni = log_column(survey, "Ni")
    _, nearest = cKDTree(survey.sample_xy).query(survey.sample_xy, k=2)
    assert np.corrcoef(ni, ni[nearest[:, 1]])[0, 1] > 0.2


def test_halo_elements_are_high_near_deposits_only(survey):
    distance, _ = cKDTree(survey.deposit_xy).query(survey.sample_xy)
    near, far = distance < 500, distance > 3000
    assert near.sum() >= 30 and far.sum() >= 100

    def ratio(element):
        values = log_column(survey, element)
        return 10 ** (np.nanmedian(values[near]) - np.nanmedian(values[far]))

    for element in ("Au", "As", "Sb", "Cu", "Mo"):
        assert element in survey.halo_elements
        assert ratio(element) > 1.8, element
    for element in ("Pb", "Ni", "K"):
        assert element not in survey.halo_elements
        assert 0.7 < ratio(element) < 1.4, element


def test_deposits_are_structurally_controlled(survey):
    tree = cKDTree(fault_points(survey))
    random_xy = np.random.default_rng(0).uniform(survey.bounds[:2], survey.bounds[2:], (2000, 2))
    assert tree.query(survey.deposit_xy)[0].mean() < 0.5 * tree.query(random_xy)[0].mean()


def test_barren_holes_are_far_from_every_deposit(survey):
    assert cKDTree(survey.deposit_xy).query(survey.barren_xy)[0].min() > 1000


def test_everything_is_inside_the_survey_square(survey):
    x_min, y_min, x_max, y_max = survey.bounds
    assert (x_min, y_min, x_max - x_min) == (400000.0, 3300000.0, 20000.0)
    for xy in [survey.sample_xy, survey.deposit_xy, survey.barren_xy, *survey.faults]:
        assert np.all((xy >= [x_min, y_min]) & (xy <= [x_max, y_max]))


def test_small_survey_and_impossible_requests():
    small = make_survey(seed=3, n_samples=200, side_m=8000.0, n_faults=6, n_deposits=5, n_barren=5)
    assert small.values.shape == (200, len(small.element_names))
    assert len(small.faults) == 6 and len(small.deposit_xy) == 5 and len(small.barren_xy) == 5
    with pytest.raises(InputError):
        make_survey(n_samples=0)
    with pytest.raises(InputError):
        make_survey(side_m=3000.0, n_deposits=30, n_barren=30)
