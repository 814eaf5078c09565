"""Checks of prospectivity map files: range read block by block, one band, projected CRS, threshold."""

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.maps import check_probability_map, check_threshold, value_range
from deepprospect.core.raster_io import write_geotiff

GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 600, 520, "EPSG:32750")  # tiled: 256-cell blocks


def write(path, values, grid=GRID, names=("prospectivity",)):
    write_geotiff(str(path), values, grid, list(names))
    return str(path)


def test_the_range_is_read_block_by_block_and_equals_the_whole_band(tmp_path, monkeypatch):
    values = np.random.default_rng(1).uniform(0.1, 0.9, GRID.shape)
    values[300:, 500:] = np.nan
    values[519, 3], values[2, 599] = 0.01, 0.99  # extremes in different blocks
    path = write(tmp_path / "map.tif", values)
    reads = []
    original = rasterio.io.DatasetReader.read

    def counting(self, *args, **kwargs):
        reads.append(kwargs.get("window"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting)
    low, high = value_range(path)
    assert (low, high) == pytest.approx((0.01, 0.99))
    assert len(reads) == 9 and all(window is not None and window.height <= 256 for window in reads)


def test_maps_that_are_not_one_band_of_probabilities_are_refused(tmp_path):
    values = np.random.default_rng(2).uniform(0, 1, GRID.shape)
    check_probability_map(write(tmp_path / "good.tif", values), band=None)
    with pytest.raises(InputError, match=r"'percent\.tif' has values from .* to .*; a prospectivity map holds "
                                         r"probabilities from 0 to 1\. .*Raster calculator"):
        check_probability_map(write(tmp_path / "percent.tif", 100 * values))
    two = write(tmp_path / "two.tif", np.stack([values, values]), names=("a", "b"))
    with pytest.raises(InputError, match=r"The map 'two\.tif' has 2 bands; a prospectivity map is one band"):
        check_probability_map(two, "The map", band=None)
    check_probability_map(two, band=2)  # a chosen band of a multi-band raster
    with pytest.raises(InputError, match="band 3 does not exist"):
        check_probability_map(two, band=3)
    degrees = GridSpec(117.0, 29.8, 0.001, 0.001, 600, 520, "EPSG:4326")
    with pytest.raises(InputError, match=r"geographic CRS .*meaningless.*projected CRS"):
        check_probability_map(write(tmp_path / "lonlat.tif", values, degrees))
    with pytest.raises(InputError, match="no cell with data"):
        check_probability_map(write(tmp_path / "empty.tif", np.full(GRID.shape, np.nan)))


@pytest.mark.parametrize("threshold", [-0.1, 1.5, 50, float("nan")])
def test_a_threshold_outside_0_1_is_refused_with_its_range(threshold):
    with pytest.raises(InputError, match="between 0 and 1"):
        check_threshold(threshold)
