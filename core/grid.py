"""The output grid: a north-up raster lattice in one projected CRS.

Every raster DeepProspect writes is described by a :class:`GridSpec`, so algorithms that take a
template raster snap to it exactly (same CRS, transform and size) and values are evaluated at pixel
centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

# Extents are rounded up to whole pixels unless they are within this fraction of a pixel of a whole number,
# so an extent of exactly 1000 pixels does not grow a 1001st column through floating-point noise.
_WHOLE_PIXEL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class GridSpec:
    """A north-up grid: upper-left corner, pixel size, shape and CRS (WKT or authority id)."""

    x_min: float
    y_max: float
    pixel_width: float
    pixel_height: float
    cols: int
    rows: int
    crs: str

    def __post_init__(self) -> None:
        if not (self.pixel_width > 0 and self.pixel_height > 0):
            raise InputError(
                f"The pixel size must be greater than zero (got {self.pixel_width} × {self.pixel_height})."
            )
        if self.cols < 1 or self.rows < 1:
            raise InputError(f"The grid must have at least one row and one column (got {self.rows} × {self.cols}).")

    @classmethod
    def from_extent(
        cls, x_min: float, y_min: float, x_max: float, y_max: float, pixel_size: float, crs: str
    ) -> GridSpec:
        """Grid anchored at the extent's upper-left corner that covers the extent with square pixels.

        Columns and rows are rounded up, so the grid may reach up to one pixel beyond the right and
        bottom edges of the extent.
        """
        if not pixel_size > 0:
            raise InputError(f"The pixel size must be greater than zero (got {pixel_size}).")
        width, height = x_max - x_min, y_max - y_min
        if not (width > 0 and height > 0):
            raise InputError(
                f"The extent is empty ({width:g} × {height:g} map units): give an extent with a width and a height."
            )
        return cls(x_min, y_max, pixel_size, pixel_size, _whole_pixels(width / pixel_size),
                   _whole_pixels(height / pixel_size), crs)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.rows, self.cols

    @property
    def cell_count(self) -> int:
        """Number of cells in the grid."""
        return self.rows * self.cols

    @property
    def x_max(self) -> float:
        """Right edge of the grid."""
        return self.x_min + self.cols * self.pixel_width

    @property
    def y_min(self) -> float:
        """Bottom edge of the grid."""
        return self.y_max - self.rows * self.pixel_height

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of the grid's outer edges."""
        return self.x_min, self.y_min, self.x_max, self.y_max

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform of the grid."""
        return self.x_min, self.pixel_width, 0.0, self.y_max, 0.0, -self.pixel_height

    def x_centres(self) -> np.ndarray:
        """X coordinate of every column's pixel centre."""
        return self.x_min + (np.arange(self.cols) + 0.5) * self.pixel_width

    def y_centres(self, row_start: int = 0, row_stop: int | None = None) -> np.ndarray:
        """Y coordinate of the pixel centres of rows ``row_start`` to ``row_stop`` (exclusive)."""
        stop = self.rows if row_stop is None else row_stop
        return self.y_max - (np.arange(row_start, stop) + 0.5) * self.pixel_height

    def cell_centres(self, row_start: int = 0, row_stop: int | None = None) -> np.ndarray:
        """(n, 2) array of x, y pixel centres of a block of whole rows, row-major."""
        xs = self.x_centres()
        ys = self.y_centres(row_start, row_stop)
        return np.column_stack([np.tile(xs, ys.size), np.repeat(ys, xs.size)])

    def overlaps(self, x_min: float, y_min: float, x_max: float, y_max: float) -> bool:
        """Whether a bounding box touches the grid (edges included)."""
        return not (x_max < self.x_min or x_min > self.x_max or y_max < self.y_min or y_min > self.y_max)


def _whole_pixels(count: float) -> int:
    nearest = round(count)
    if abs(count - nearest) <= _WHOLE_PIXEL_TOLERANCE * max(1.0, count):
        return max(1, int(nearest))
    return max(1, math.ceil(count))
