"""Study areas as cell masks that are rasterised a band of rows at a time, so no step holds a mask of the whole grid.

:class:`PolygonCells` answers ``mask[rows, cols]`` (two slices) with the (height, width) bool array of the cells
of that window whose centre lies inside a polygon and outside every hole. The polygons are moved into the grid's
cell coordinates once; the grid is cut into fixed bands of whole rows, each rasterised on its own (GDAL), and a
window is cut from the bands it meets, so every window is exactly that part of the whole mask, whatever its
position and size. (Against one rasterisation of the whole grid in map coordinates, a cell centre lying exactly
on an edge may fall the other way: GDAL's arithmetic differs; everywhere else the two agree.) It also offers the
few whole-grid questions the steps ask (``sum``, ``any``, ``shape``, ``size``) band by band, ``&`` with another
mask or a bool array (lazily), and ``numpy.asarray`` for steps that hold the grid anyway. Steps take either such a
mask or a bool array.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from rasterio.features import rasterize
from rasterio.transform import Affine

from .errors import InputError
from .grid import GridSpec

BAND_CELLS = 1 << 22
"""Cells rasterised at a time when a whole-grid question (count, any) is asked: 4 MB of mask."""


class CellMask(Protocol):
    """What the steps use of a study-area mask: its shape and its windows."""

    shape: tuple[int, int]

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray: ...


class WindowedMask:
    """Whole-grid questions of a mask answered a band of rows at a time, and lazy intersections."""

    shape: tuple[int, int]
    __array_ufunc__ = None  # ``array & mask`` comes to __rand__ instead of making numpy read the whole mask

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        raise NotImplementedError

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def bands(self) -> Iterator[tuple[slice, np.ndarray]]:
        """(rows, mask of those rows) for bands of whole rows, top to bottom."""
        step = max(1, BAND_CELLS // max(self.shape[1], 1))
        for row in range(0, self.shape[0], step):
            rows = slice(row, min(row + step, self.shape[0]))
            yield rows, self[rows, :]

    def sum(self) -> int:
        """How many cells are inside."""
        return sum(int(band.sum()) for _, band in self.bands())

    def any(self) -> bool:
        """Whether any cell is inside."""
        return any(band.any() for _, band in self.bands())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.empty(self.shape, dtype=bool)
        for rows, band in self.bands():
            whole[rows] = band
        return whole if dtype is None else whole.astype(dtype)

    def __and__(self, other: CellMask | np.ndarray) -> Intersection:
        return Intersection(self, other)

    __rand__ = __and__


class PolygonCells(WindowedMask):
    """Cells of ``grid`` whose centre is inside one of ``polygons`` and inside none of ``holes`` (GeoJSON-like
    geometries in the grid's CRS), rasterised band by band.

    The grid is cut into fixed bands of whole rows and a window is read from the bands it meets: each cell is
    always rasterised in the same band, so a cell centre lying exactly on an edge gets the same answer in every
    window (GDAL's scan-line arithmetic depends on where the rasterised block starts). The bands of the last
    window are kept, so tiles read in row order rasterise each band once.
    """

    def __init__(self, polygons: Sequence[Mapping], grid: GridSpec, holes: Sequence[Mapping] = ()) -> None:
        self.shape = grid.shape
        to_cells = ~Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max)
        self.polygons = [_mapped(polygon, to_cells) for polygon in polygons]
        self.holes = [_mapped(hole, to_cells) for hole in holes]
        self.band_rows = max(1, BAND_CELLS // max(self.shape[1], 1))
        self._last_bands: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # the kept bands are shared: threads reading windows take turns

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = (_bounds(part, size) for part, size in zip(key, self.shape))
        if rows[0] == rows[1] or cols[0] == cols[1]:
            return np.zeros((rows[1] - rows[0], cols[1] - cols[0]), dtype=bool)
        needed = range(rows[0] // self.band_rows, (rows[1] - 1) // self.band_rows + 1)
        inside = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=bool)
        with self._lock:
            self._last_bands = {index: self._last_bands[index] for index in needed if index in self._last_bands}
            for index in needed:
                if index not in self._last_bands:
                    self._last_bands[index] = self._band(index)
            for index, band in self._last_bands.items():
                top = index * self.band_rows
                first, stop = max(rows[0], top), min(rows[1], top + band.shape[0])
                inside[first - rows[0]:stop - rows[0]] = band[first - top:stop - top, cols[0]:cols[1]]
        return inside

    def _band(self, index: int) -> np.ndarray:
        """The mask of band ``index`` (rows from ``index * band_rows``, every column), rasterised."""
        top = index * self.band_rows
        shape = (min(self.band_rows, self.shape[0] - top), self.shape[1])
        inside = self._cells(self.polygons, top, shape)
        if self.holes and inside.any():
            inside &= ~self._cells(self.holes, top, shape)
        return inside

    @staticmethod
    def _cells(geometries: list[dict], row: int, shape: tuple[int, int]) -> np.ndarray:
        if not geometries:
            return np.zeros(shape, dtype=bool)
        return rasterize([(g, 1) for g in geometries], out_shape=shape, transform=Affine.translation(0, row),
                         fill=0, dtype="uint8").view(bool)  # 0/1 bytes are bools: no copy


class Intersection(WindowedMask):
    """Cells inside every one of several masks (windowed masks or bool arrays of the same shape)."""

    def __init__(self, *masks: CellMask | np.ndarray) -> None:
        self.shape = tuple(masks[0].shape)
        if any(tuple(mask.shape) != self.shape for mask in masks):
            raise InputError(f"Masks of different shapes cannot be combined: {[tuple(m.shape) for m in masks]}.")
        self.masks = masks

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        inside = np.array(self.masks[0][key], dtype=bool)
        for mask in self.masks[1:]:
            inside &= mask[key]
        return inside


def study_area(polygons: Sequence[Mapping], grid: GridSpec, holes: Sequence[Mapping] = ()) -> PolygonCells:
    """The cells of ``grid`` in a study area (polygons less holes, grid CRS), checked to hold a cell centre."""
    if not polygons:
        raise InputError("The study area layer has no polygons; give a polygon layer or leave the study area empty.")
    cells = PolygonCells(polygons, grid, holes)
    if not cells.any():
        raise InputError("The study area covers no cell centre of the stack; check that it overlaps the stack.")
    return cells


def _bounds(part: slice, size: int) -> tuple[int, int]:
    start, stop, step = part.indices(size)
    if step != 1:
        raise IndexError("A study-area mask is read in windows of consecutive cells (slices without a step).")
    return start, max(start, stop)


def _mapped(geometry: Mapping, transform: Affine) -> dict:
    """A GeoJSON-like geometry with its coordinates mapped by ``transform``."""
    if geometry["type"] == "GeometryCollection":
        return {"type": "GeometryCollection", "geometries": [_mapped(g, transform) for g in geometry["geometries"]]}
    return {"type": geometry["type"], "coordinates": _mapped_coordinates(geometry["coordinates"], transform)}


def _mapped_coordinates(coordinates: Any, transform: Affine) -> Any:
    """Nested coordinate lists mapped by ``transform``: a position, or lists of them (rings, lines), or deeper."""
    if not len(coordinates):
        return []
    if np.isscalar(coordinates[0]):  # one position
        return list(transform * (coordinates[0], coordinates[1]))
    if np.isscalar(coordinates[0][0]):  # a ring or a line: map its positions at once
        xy = np.asarray([position[:2] for position in coordinates], dtype=np.float64)
        x, y = transform * (xy[:, 0], xy[:, 1])
        return np.column_stack([x, y]).tolist()
    return [_mapped_coordinates(part, transform) for part in coordinates]
