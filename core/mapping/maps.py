"""Checks of prospectivity map files: one band of probabilities (0–1) on a projected grid, read block by block.

Evaluation, reports, anomaly classes and ensembles all read their maps as probabilities; a map of
percentages, a multi-band stack or a map in degrees would give numbers that look right and mean nothing, so
these checks refuse them before any work is done. Values are read one block (or strip) at a time, so
checking a map needs little memory whatever its size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import rasterio
from rasterio.windows import Window

from ..errors import InputError

RANGE_TOLERANCE = 1e-6  # float32 rounding of probabilities just outside 0–1
DEFAULT_WINDOW_CELLS = 1 << 20
PROBABILITY_FIX = ("Give a map written by 'Prospectivity map' (predict), 'Ensemble prospectivity' or the classical "
                   "baseline, or rescale this one to 0–1 with the Raster calculator (e.g. \"map@1\" / 100 for "
                   "percentages).")


def open_map(path: str):
    """An open rasterio dataset; a file GDAL cannot open is an InputError naming it."""
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(f"Cannot open the map {path}: {error}") from error


def map_windows(src, window_cells: int = DEFAULT_WINDOW_CELLS) -> Iterator[Window]:
    """The raster's own blocks when tiled; for strips, runs of whole strips of at most ``window_cells`` cells."""
    block_rows, block_cols = src.block_shapes[0]
    if block_cols < src.width:
        for _, window in src.block_windows(1):
            yield window
        return
    rows = max(block_rows, (window_cells // src.width) // block_rows * block_rows)
    for row in range(0, src.height, rows):
        yield Window(0, row, src.width, min(rows, src.height - row))


def check_probabilities(name: str, low: float, high: float) -> None:
    """Refuse values from ``low`` to ``high`` in the map ``name`` unless they lie in 0–1."""
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        raise InputError(f"'{name}' has values from {low:g} to {high:g}; a prospectivity map holds probabilities "
                         f"from 0 to 1. {PROBABILITY_FIX}")


def check_threshold(threshold: float) -> None:
    """Refuse a threshold that is not a probability (0–1), NaN included."""
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"The threshold is a probability between 0 and 1 (got {threshold:g}); the maps hold "
                         "probabilities, so choose a threshold in that range, such as 0.5.")


def value_range(path: str, band: int = 1) -> tuple[float, float] | None:
    """(min, max) of the finite values of ``band``, read block by block; None when it has no value."""
    low, high = np.inf, -np.inf
    with open_map(path) as src:
        for window in map_windows(src):
            values = src.read(band, window=window, masked=True).astype(np.float64).filled(np.nan)
            finite = values[np.isfinite(values)]
            if finite.size:
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else None


def check_probability_map(path: str, what: str = "The prospectivity map", band: int | None = 1) -> None:
    """Refuse a map that is not one band of probabilities (0–1) in a projected CRS.

    ``band=None`` means the map must have exactly one band (checked: band 1); a band number checks that band of
    a raster with any number of bands. A map without any value is refused too.
    """
    name = os.path.basename(path)
    with open_map(path) as src:
        count, crs = src.count, src.crs
    if band is None and count != 1:
        raise InputError(f"{what} '{name}' has {count} bands; a prospectivity map is one band of probabilities "
                         "(0–1). Give the one-band map written by 'Prospectivity map' or 'Ensemble prospectivity', "
                         "or extract the band you mean (Raster ▸ Conversion ▸ Translate, band option).")
    if band is not None and not 1 <= band <= count:
        raise InputError(f"{what} '{name}' has {count} band(s); band {band} does not exist.")
    if crs is not None and crs.is_geographic:
        raise InputError(f"{what} '{name}' is in a geographic CRS ({crs.to_string()}): its cells are degrees, so "
                         "areas and distances measured on it are meaningless. Reproject it to a projected CRS "
                         "(Raster ▸ Projections ▸ Warp), e.g. the UTM zone of the study area.")
    found = value_range(path, band or 1)
    if found is None:
        raise InputError(f"{what} '{name}' has no cell with data (every cell is nodata); check the map and its "
                         "nodata value.")
    check_probabilities(name, *found)
