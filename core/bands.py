"""Bands read window by window, from an array in memory or a raster file, so no step holds a whole stack.

A *band source* gives ``count`` bands on a ``rows`` × ``cols`` grid and reads any window of them as float64
with NaN at nodata (the values :func:`.raster_io.read_raster` gives, window by window). On top of it:
:func:`valid_cells` (which cells have a value in every band, window by window), :func:`read_cells` (the
values at a few cells, each tile holding one read once) and :func:`read_padded_windows` (the windows of
:func:`.windows.padded_windows`, read tile by tile with a halo).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

from .errors import InputError
from .progress import CancelFn, ProgressFn, check_cancelled, report
from .raster_io import TILE
from .sampling.windows import padded_windows

# Side of the square windows that whole-grid passes read: four 256-cell GeoTIFF tiles.
WINDOW = 2 * TILE


class BandSource(Protocol):
    """Bands on a grid that can be read window by window."""

    count: int
    rows: int
    cols: int

    def read(self, window: Window) -> np.ndarray:
        """(count, height, width) float64 values of ``window`` (inside the grid), NaN at nodata."""


class ArrayBands:
    """A (bands, rows, cols) array in memory as a band source (NaN = nodata)."""

    def __init__(self, array: np.ndarray) -> None:
        array = np.asarray(array)
        if array.ndim != 3:
            raise InputError(f"Expected a (bands, rows, cols) stack; got shape {array.shape}.")
        self.array = array
        self.count, self.rows, self.cols = array.shape

    def read(self, window: Window) -> np.ndarray:
        rows, cols = window.toslices()
        return self.array[:, rows, cols].astype(np.float64)


class RasterBands:
    """Every band of a raster file as a band source; use it as a context manager (the file stays open)."""

    def __init__(self, path: str) -> None:
        try:
            self._dataset = rasterio.open(path)
        except rasterio.errors.RasterioIOError as error:
            raise InputError(f"Cannot open the raster {path}: {error}") from error
        self.count, self.rows, self.cols = self._dataset.count, self._dataset.height, self._dataset.width

    def read(self, window: Window) -> np.ndarray:
        return self._dataset.read(window=window, masked=True).astype(np.float64).filled(np.nan)

    def close(self) -> None:
        self._dataset.close()

    def __enter__(self) -> RasterBands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def grid_windows(rows: int, cols: int, height: int = WINDOW, width: int = WINDOW) -> Iterator[Window]:
    """Windows of at most ``height`` × ``width`` cells covering a ``rows`` × ``cols`` grid, row by row."""
    for row in range(0, rows, height):
        for col in range(0, cols, width):
            yield Window(col, row, min(width, cols - col), min(height, rows - row))


def valid_cells(source: BandSource, *, window: int = WINDOW, is_cancelled: CancelFn = None) -> np.ndarray:
    """(rows, cols) mask of the cells with a value (not NaN) in every band, read window by window."""
    mask = np.empty((source.rows, source.cols), dtype=bool)
    for part in grid_windows(source.rows, source.cols, window, window):
        check_cancelled(is_cancelled)
        mask[part.toslices()] = ~np.isnan(source.read(part)).any(axis=0)
    return mask


def read_cells(source: BandSource, rows: np.ndarray, cols: np.ndarray, *, tile: int = TILE,
               is_cancelled: CancelFn = None) -> np.ndarray:
    """(bands, n) float64 values at cells ``rows[i], cols[i]`` (all on the grid), NaN at nodata.

    The cells are grouped by the ``tile`` × ``tile`` block holding them, and each block with cells is read once.
    """
    rows, cols = np.asarray(rows, dtype=np.int64).ravel(), np.asarray(cols, dtype=np.int64).ravel()
    values = np.empty((source.count, len(rows)), dtype=np.float64)
    for block, members in _by_block(rows, cols, tile):
        check_cancelled(is_cancelled)
        top, left = block[0] * tile, block[1] * tile
        window = Window(left, top, min(tile, source.cols - left), min(tile, source.rows - top))
        values[:, members] = source.read(window)[:, rows[members] - top, cols[members] - left]
    return values


def read_padded_windows(source: BandSource, rows: np.ndarray, cols: np.ndarray, patch_size: int,
                        out: np.ndarray | None = None, *, tile: int = TILE, is_cancelled: CancelFn = None,
                        progress: ProgressFn = None) -> np.ndarray:
    """The (n, bands, p, p) float32 windows of :func:`.windows.padded_windows` around cells ``rows, cols``.

    Windows whose upper-left cell lies in one ``tile`` × ``tile`` block are cut from one read of that block
    and its halo of p − 1 cells (cells off the grid read NaN, so they are filled as in
    :func:`~.windows.padded_windows`); only blocks holding windows are read. ``out`` receives the windows
    when given; ``progress`` is called with the percentage of blocks read.
    """
    rows, cols = np.asarray(rows, dtype=np.int64).ravel(), np.asarray(cols, dtype=np.int64).ravel()
    if out is None:
        out = np.empty((len(rows), source.count, patch_size, patch_size), dtype=np.float32)
    top_row, left_col = rows - patch_size // 2, cols - patch_size // 2
    blocks = _by_block(top_row, left_col, tile)
    side = tile + patch_size - 1
    for done, (block, members) in enumerate(blocks):
        check_cancelled(is_cancelled)
        top, left = block[0] * tile, block[1] * tile
        region = np.full((source.count, side, side), np.nan, dtype=np.float32)
        r_lo, r_hi = max(top, 0), min(top + side, source.rows)
        c_lo, c_hi = max(left, 0), min(left + side, source.cols)
        if r_lo < r_hi and c_lo < c_hi:
            region[:, r_lo - top:r_hi - top, c_lo - left:c_hi - left] = source.read(
                Window(c_lo, r_lo, c_hi - c_lo, r_hi - r_lo))
        out[members] = padded_windows(region, rows[members] - top, cols[members] - left, patch_size)
        report(progress, 100.0 * (done + 1) / len(blocks))
    return out


def _by_block(rows: np.ndarray, cols: np.ndarray, tile: int) -> list[tuple[tuple[int, int], np.ndarray]]:
    """((block row, block column), indices of the cells in it) for every ``tile`` block holding cells."""
    block_rows, block_cols = np.floor_divide(rows, tile), np.floor_divide(cols, tile)
    keys = np.column_stack([block_rows, block_cols])
    if len(keys) == 0:
        return []
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse.ravel(), minlength=len(unique)))[:-1])
    return [((int(r), int(c)), members) for (r, c), members in zip(unique, groups)]

