"""core.sampling.windows and core.bands: padded windows equal a manual padding of the stack, at the edge, off the
grid and on nodata, whether cut from the whole stack or read block by block from a band source."""

import numpy as np
import pytest
from deepprospect.core.bands import ArrayBands, RasterBands, read_cells, read_padded_windows, valid_cells
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.sampling.windows import WINDOW_FILL, padded_windows


@pytest.mark.parametrize("patch", [1, 4, 5, 30])
def test_windows_equal_a_manual_padding(patch):
    rng = np.random.default_rng(patch)
    stack = rng.normal(size=(3, 20, 25)).astype(np.float32)
    stack[1, 3, 4] = np.nan
    rows, cols = rng.integers(-30, 53, 300), rng.integers(-30, 58, 300)
    windows = padded_windows(stack, rows, cols, patch)
    margin, h = 80, patch // 2
    padded = np.pad(stack, ((0, 0), (margin, margin), (margin, margin)), constant_values=np.nan)
    padded[np.isnan(padded)] = WINDOW_FILL
    expected = np.stack([padded[:, r - h + margin:r - h + margin + patch, c - h + margin:c - h + margin + patch]
                         for r, c in zip(rows, cols)])
    assert windows.dtype == np.float32 and windows.shape == (300, 3, patch, patch)
    np.testing.assert_array_equal(windows, expected)


def test_fill_is_zero_and_shapes_hold():
    stack = np.ones((2, 4, 4))
    assert WINDOW_FILL == 0.0
    window = padded_windows(stack, [0], [0], 3)[0]
    assert window.dtype == np.float32 and (window[:, 0, :] == 0).all() and (window[:, 1:, 1:] == 1).all()
    assert padded_windows(stack, [], [], 3).shape == (0, 2, 3, 3)
    with pytest.raises(InputError, match="bands, rows, cols"):
        padded_windows(stack[0], [0], [0], 3)


class RecordingBands(ArrayBands):
    """An array band source that records the windows read."""

    def __init__(self, array):
        super().__init__(array)
        self.windows = []

    def read(self, window):
        self.windows.append(window)
        return super().read(window)


@pytest.mark.parametrize(("patch", "tile"), [(1, 3), (4, 5), (5, 8), (30, 7), (6, 256)])
def test_windows_read_block_by_block_equal_the_windows_of_the_whole_stack(patch, tile):
    rng = np.random.default_rng(patch + tile)
    stack = rng.normal(size=(3, 20, 25)).astype(np.float32)
    stack[:, 6:11, 4:14] = np.nan  # nodata across blocks
    rows, cols = rng.integers(-30, 53, 200), rng.integers(-30, 58, 200)
    source = RecordingBands(stack)
    windows = read_padded_windows(source, rows, cols, patch, tile=tile)
    np.testing.assert_array_equal(windows, padded_windows(stack, rows, cols, patch))
    blocks = {((r - patch // 2) // tile, (c - patch // 2) // tile) for r, c in zip(rows, cols)}
    assert len(source.windows) <= len(blocks)  # one read per block holding a window's corner, none off the grid
    assert all(w.height <= tile + patch - 1 and w.width <= tile + patch - 1 for w in source.windows)


def test_a_raster_file_reads_as_its_array_and_cells_are_read_by_block(tmp_path):
    grid = GridSpec(0.0, 2000.0, 100.0, 100.0, 23, 20, "EPSG:32650")
    values = np.random.default_rng(9).normal(size=(2, 20, 23))
    values[1, 4:9, 2:20] = np.nan
    path = str(tmp_path / "stack.tif")
    write_geotiff(path, values, grid, ["a", "b"])
    expected = values.astype(np.float32).astype(np.float64)
    rows, cols = np.array([0, 19, 5, 5, 12]), np.array([0, 22, 3, 3, 17])
    with RasterBands(path) as bands:
        assert (bands.count, bands.rows, bands.cols) == (2, 20, 23)
        np.testing.assert_array_equal(valid_cells(bands, window=6), ~np.isnan(expected).any(axis=0))
        np.testing.assert_array_equal(read_cells(bands, rows, cols, tile=4), expected[:, rows, cols])
        np.testing.assert_array_equal(read_padded_windows(bands, rows, cols, 5, tile=4),
                                      padded_windows(expected, rows, cols, 5))
