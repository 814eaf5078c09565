"""GridSpec: covering extents, pixel centres and validation."""

import numpy as np
import pytest
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec


def test_extent_of_whole_pixels_gives_exact_shape():
    grid = GridSpec.from_extent(500000, 3300000, 541000, 3341000, 41, "EPSG:32650")
    assert grid.shape == (1000, 1000)
    assert grid.bounds == (500000, 3300000, 541000, 3341000)


def test_partial_pixels_round_up_from_the_upper_left_corner():
    grid = GridSpec.from_extent(0, 0, 10.5, 4.2, 1.0, "EPSG:32650")
    assert (grid.cols, grid.rows) == (11, 5)
    assert grid.x_min == 0 and grid.y_max == 4.2


def test_centres_are_half_a_pixel_inside():
    grid = GridSpec(100.0, 50.0, 10.0, 5.0, 3, 2, "EPSG:32650")
    np.testing.assert_allclose(grid.x_centres(), [105, 115, 125])
    np.testing.assert_allclose(grid.y_centres(), [47.5, 42.5])
    centres = grid.cell_centres()
    np.testing.assert_allclose(centres[:4], [[105, 47.5], [115, 47.5], [125, 47.5], [105, 42.5]])


@pytest.mark.parametrize("pixel", [0.0, -1.0, float("nan")])
def test_pixel_size_must_be_positive(pixel):
    with pytest.raises(InputError, match="pixel size must be greater than zero"):
        GridSpec.from_extent(0, 0, 10, 10, pixel, "EPSG:32650")


def test_empty_extent_is_refused():
    with pytest.raises(InputError, match="extent is empty"):
        GridSpec.from_extent(0, 0, 0, 10, 1, "EPSG:32650")


def test_overlaps():
    grid = GridSpec(0, 10, 1, 1, 10, 10, "EPSG:32650")
    assert grid.overlaps(5, 5, 20, 20)
    assert not grid.overlaps(11, 0, 20, 10)
