"""GeoTIFF reading and writing with rasterio: band names, nodata, metadata, and no partial files.

Outputs are written through :func:`.outputs.atomic_path`: to a temporary file beside the target, renamed into
place only when complete (and, inside an :func:`.outputs.output_set`, only when the whole run succeeded).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.transform import Affine
from rasterio.windows import Window

from .errors import InputError, ResourceError
from .grid import GridSpec
from .outputs import atomic_path

NODATA = -9999.0
# Dataset tags of prospectivity maps: the model card of the map's model (JSON), and the ensemble record (JSON).
MODEL_CARD_TAG = "DEEPPROSPECT_MODEL_CARD"
ENSEMBLE_TAG = "DEEPPROSPECT_ENSEMBLE"
TILE = 256  # side of the GeoTIFF tiles DeepProspect writes
CACHE_BYTES = 256 * 2**20
"""GDAL's block cache while a step runs (unless GDAL_CACHEMAX is set): GDAL's default, 5 % of the machine's memory,
fills with the blocks of a large raster read window by window, so a step's memory would grow with the raster and
the machine instead of staying at a few windows."""


class _SharedCacheCap:
    """GDAL's cache size is one setting for the whole process, while QGIS may run several steps at once in
    threads: the first step to start caps it, the last to end puts back what was there before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps = 0
        self._before: Any = None

    def enter(self) -> None:
        with self._lock:
            if self._steps == 0:
                self._before = get_gdal_config("GDAL_CACHEMAX")
                set_gdal_config("GDAL_CACHEMAX", CACHE_BYTES)
            self._steps += 1

    def leave(self) -> None:
        with self._lock:
            self._steps -= 1
            if self._steps == 0:
                set_gdal_config("GDAL_CACHEMAX", self._before)


_CACHE_CAP = _SharedCacheCap()


@contextmanager
def bounded_gdal_cache() -> Iterator[None]:
    """Cap the block cache of the GDAL that rasterio uses at :data:`CACHE_BYTES` while the block runs (in any
    thread), unless the user set ``GDAL_CACHEMAX``; GDAL's own setting comes back when the last such block ends."""
    if "GDAL_CACHEMAX" in os.environ:
        yield
        return
    _CACHE_CAP.enter()
    try:
        yield
    finally:
        _CACHE_CAP.leave()


def geotiff_profile(width: int, height: int, count: int, dtype: str, crs, transform: Affine,
                    nodata: float | None) -> dict:
    """Creation profile of every GeoTIFF DeepProspect writes: deflate, 256-cell tiles when large, BigTIFF if needed."""
    return {
        "driver": "GTiff", "width": width, "height": height, "count": count, "dtype": dtype, "crs": crs,
        "transform": transform, "nodata": nodata, "tiled": width >= TILE and height >= TILE,
        "blockxsize": TILE, "blockysize": TILE, "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2, "BIGTIFF": "IF_SAFER",
    }


def write_geotiff(
    path: str,
    bands: np.ndarray,
    grid: GridSpec,
    band_names: Sequence[str],
    *,
    metadata: Mapping[str, str] | None = None,
    band_metadata: Sequence[Mapping[str, str]] | None = None,
    nodata: float = NODATA,
    dtype: str = "float32",
) -> None:
    """Write a (bands, rows, cols) array as a tiled, compressed GeoTIFF; NaN becomes ``nodata``."""
    bands = np.asarray(bands)
    if bands.ndim == 2:
        bands = bands[None]
    if bands.shape[1:] != grid.shape:
        raise InputError(f"Array shape {bands.shape[1:]} does not match the grid {grid.shape}.")
    if len(band_names) != bands.shape[0]:
        raise InputError(f"{bands.shape[0]} bands but {len(band_names)} band names.")
    with geotiff_writer(path, grid, band_names, metadata=metadata, band_metadata=band_metadata, nodata=nodata,
                        dtype=dtype) as writer:
        for index, band in enumerate(bands, start=1):  # band by band: no stack-sized converted copy
            writer.write(band, band=index)


class GeoTiffWriter:
    """An open GeoTIFF of :func:`geotiff_writer`; values are written whole or window by window."""

    def __init__(self, dataset: rasterio.io.DatasetWriter, path: str) -> None:
        self.dataset, self.path, self.nodata = dataset, path, dataset.nodata
        self.valid = 0  # values written that are not nodata

    def write(self, values: np.ndarray, window: Window | None = None, band: int | None = None) -> None:
        """Write (bands, h, w) values of every band, or the (h, w) values of ``band`` (1-based), into ``window``
        (default: the whole grid); NaN becomes the nodata value."""
        dtype = self.dataset.dtypes[0]
        blank = np.isnan(values)
        self.valid += int(values.size - np.count_nonzero(blank))
        try:
            self.dataset.write(np.where(blank, self.nodata, values).astype(dtype), band, window=window)
        except rasterio.errors.RasterioIOError as error:
            raise ResourceError(f"Could not write {self.path}: {error}") from error


def grid_profile(grid: GridSpec, count: int = 1, dtype: str = "float32", nodata: float | None = NODATA) -> dict:
    """The creation profile (:func:`geotiff_profile`) of a GeoTIFF of ``count`` bands on ``grid``."""
    transform = Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max)
    return geotiff_profile(grid.cols, grid.rows, count, dtype, crs_from_string(grid.crs), transform, nodata)


@contextmanager
def geotiff_writer(
    path: str,
    grid: GridSpec,
    band_names: Sequence[str],
    *,
    metadata: Mapping[str, str] | None = None,
    band_metadata: Sequence[Mapping[str, str]] | None = None,
    nodata: float = NODATA,
    dtype: str = "float32",
) -> Iterator[GeoTiffWriter]:
    """A new tiled, compressed GeoTIFF on ``grid`` with its band names and tags (:func:`profile_writer`)."""
    profile = grid_profile(grid, len(band_names), dtype, nodata)
    with profile_writer(path, profile, band_names, metadata=metadata, band_metadata=band_metadata) as writer:
        yield writer


@contextmanager
def profile_writer(
    path: str,
    profile: Mapping[str, Any],
    band_names: Sequence[str],
    *,
    metadata: Mapping[str, str] | None = None,
    band_metadata: Sequence[Mapping[str, str]] | None = None,
) -> Iterator[GeoTiffWriter]:
    """A new GeoTIFF with creation ``profile`` (:func:`geotiff_profile`), band names and tags, written through
    :func:`atomic_path`: it appears at ``path`` only when the block succeeds."""
    with atomic_path(path) as temporary:
        try:
            dataset = rasterio.open(temporary, "w", **profile)
        except rasterio.errors.RasterioIOError as error:
            raise ResourceError(f"Could not write {path}: {error}") from error
        with dataset:
            for index, name in enumerate(band_names, start=1):
                dataset.set_band_description(index, str(name))
                if band_metadata is not None:
                    dataset.update_tags(index, **band_metadata[index - 1])
            if metadata:
                dataset.update_tags(**metadata)
            yield GeoTiffWriter(dataset, path)


def read_grid_spec(path: str) -> GridSpec:
    """The grid of an existing raster, exactly as stored (for snapping outputs to a template)."""
    try:
        with rasterio.open(path) as src:
            transform, crs, width, height = src.transform, src.crs, src.width, src.height
    except rasterio.errors.RasterioIOError as error:
        raise InputError(f"Cannot open the raster {path}: {error}") from error
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise InputError(f"{path} is rotated or not north-up; warp it to a north-up grid first.")
    if crs is None:
        raise InputError(f"{path} has no CRS; assign one (Raster ▸ Projections ▸ Assign Projection).")
    return GridSpec(transform.c, transform.f, transform.a, -transform.e, width, height, crs.to_wkt())


def read_raster(path: str) -> tuple[np.ndarray, GridSpec, list[str]]:
    """All bands of a raster as float64 (bands, rows, cols) with NaN at nodata, its grid and band names.

    Bands without a description are named ``<file stem>_b<number>`` so every band has a usable name.
    """
    grid = read_grid_spec(path)
    with rasterio.open(path) as src:
        data = src.read(masked=True).astype(np.float64).filled(np.nan)
        names = band_labels(path, src.descriptions)
    return data, grid, names


@dataclass(frozen=True)
class MapRaster:
    """One band of a map (float64, NaN at nodata and non-finite values), its grid, name, band count and tags."""

    values: np.ndarray
    grid: GridSpec
    band_name: str
    band_count: int
    tags: dict


def read_map(path: str, band: int = 1) -> MapRaster:
    """Read one band of a map (a prospectivity, uncertainty or class raster) with its grid and tags."""
    grid = read_grid_spec(path)
    with rasterio.open(path) as src:
        if not 1 <= band <= src.count:
            raise InputError(f"The map has {src.count} band(s); band {band} does not exist.")
        values = src.read(band, masked=True).astype(np.float64).filled(np.nan)
        raster = MapRaster(values, grid, src.descriptions[band - 1] or f"band {band}", src.count, src.tags())
    values[~np.isfinite(values)] = np.nan
    return raster


def band_labels(path: str, descriptions: Sequence[str | None]) -> list[str]:
    """Band names as DeepProspect uses them: the descriptions, ``<file stem>_b<number>`` for a band without one."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return [description or f"{stem}_b{index}" for index, description in enumerate(descriptions, start=1)]


def read_band_names(path: str) -> list[str]:
    """Band descriptions of a raster ('' where a band has none)."""
    with rasterio.open(path) as src:
        return [description or "" for description in src.descriptions]


def write_band_subset(
    source: str,
    path: str,
    indices: Sequence[int],
    *,
    metadata: Mapping[str, str] | None = None,
    band_metadata: Sequence[Mapping[str, str]] | None = None,
    band_names: Sequence[str] | None = None,
) -> None:
    """Copy bands ``indices`` (0-based, in that order) of ``source`` into a GeoTIFF on the same grid.

    Values, data type, nodata, band names and the dataset's and bands' tags are kept; ``metadata`` and
    ``band_metadata`` (one mapping per copied band) add or replace tags; ``band_names`` (one per copied
    band) replace the names, e.g. names derived for bands that had none. The bands are copied one block of the
    new file at a time, so a stack larger than memory can be copied.
    """
    if not indices:
        raise InputError("No band to copy.")
    with rasterio.open(source) as src:
        dtype = np.result_type(*[src.dtypes[i] for i in indices]).name
        profile = geotiff_profile(src.width, src.height, len(indices), dtype, src.crs, src.transform, src.nodata)
        with atomic_path(path) as temporary, rasterio.open(temporary, "w", **profile) as dst:
            dst.update_tags(**{**src.tags(), **(metadata or {})})
            for _, window in dst.block_windows(1):
                dst.write(src.read([index + 1 for index in indices], window=window).astype(dtype), window=window)
            for out_index, index in enumerate(indices, start=1):
                name = band_names[out_index - 1] if band_names is not None else src.descriptions[index]
                if name:
                    dst.set_band_description(out_index, name)
                extra = band_metadata[out_index - 1] if band_metadata is not None else {}
                dst.update_tags(out_index, **{**src.tags(index + 1), **extra})


def crs_from_string(crs: str) -> CRS:
    """A rasterio CRS from WKT or an authority id such as ``EPSG:32650``."""
    try:
        return CRS.from_user_input(crs)
    except rasterio.errors.CRSError as error:
        raise InputError(f"Unrecognised coordinate reference system: {crs[:80]}") from error
