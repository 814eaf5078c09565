"""Inverse-distance-weighted gridding of many sample fields in one pass.

For every pixel centre ``x`` the value of a field is ``sum_i w_i v_i / sum_i w_i`` with
``w_i = 1 / d(x, p_i) ** power`` over the neighbours ``p_i`` chosen by the settings: the
``max_points`` nearest samples (0 = every sample), optionally only those within (≤) ``radius``.
Samples at the same x, y act as one sample whose value is the mean of theirs (per field, ignoring
missing values), whatever their order in the input: they count once among the neighbours. A pixel
whose centre lies on a sample (closer than ``COINCIDENCE_FRACTION`` of a pixel) takes the mean of the
samples there, so a sample on a centre gives its value exactly and never divides by zero. A pixel
with fewer than ``min_points`` neighbours within the radius is NaN.

Fields with missing values (NaN) are interpolated from their own valid samples only. Fields that
share the same set of valid samples share one cKDTree and one neighbour query, so ten complete
fields cost little more than one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import InputError
from .grid import GridSpec
from .progress import CancelFn, ProgressFn, check_cancelled, report

# A sample closer than this fraction of a pixel to a pixel centre is "on" the centre.
COINCIDENCE_FRACTION = 1e-6
# Working memory each thread may use for one block of cells (bytes).
BLOCK_BUDGET_BYTES = 48 * 2**20
# Columns per cache-resident tile in all-points mode.
DENSE_TILE_COLUMNS = 16
# Rows per block in all-points mode: each block recomputes its column tiles, so not too few.
DENSE_BLOCK_ROWS = 32


@dataclass(frozen=True)
class IdwSettings:
    """Search and weighting settings of IDW (the meaning of 0 follows gdal_grid: no limit)."""

    power: float = 2.0
    max_points: int = 12
    min_points: int = 1
    radius: float = 0.0

    def __post_init__(self) -> None:
        if not self.power > 0:
            raise InputError(f"The IDW power must be greater than zero (got {self.power}).")
        if self.max_points < 0:
            raise InputError(f"The maximum number of points must be 0 (all) or more (got {self.max_points}).")
        if self.min_points < 1:
            raise InputError(f"The minimum number of points must be at least 1 (got {self.min_points}).")
        if self.radius < 0:
            raise InputError(f"The search radius must be 0 (unlimited) or more (got {self.radius}).")
        if self.max_points and self.min_points > self.max_points:
            raise InputError(
                f"The minimum number of points ({self.min_points}) is larger than the maximum "
                f"({self.max_points}), so no pixel could ever get a value."
            )


def idw_grid(
    points: np.ndarray,
    values: np.ndarray,
    grid: GridSpec,
    settings: IdwSettings = IdwSettings(),
    *,
    field_names: list[str] | None = None,
    workers: int | None = None,
    dtype: type = np.float32,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> np.ndarray:
    """Grid sample values onto ``grid`` by IDW.

    Args:
        points: (n, 2) sample x, y in the grid's CRS.
        values: (n,) or (n, f) sample values; NaN marks a missing value of that field.
        grid: the output grid; values are evaluated at pixel centres.
        settings: power, neighbour count, minimum count and search radius.
        field_names: names used in error messages (default ``field 1``, ``field 2``, ...).
        workers: threads (default: every CPU).
        dtype: output type; computation is always float64.
        progress: called with 0–100.
        is_cancelled: polled between blocks; a True answer raises :class:`Cancelled`.

    Returns:
        (f, rows, cols) array of ``dtype``, NaN where a pixel has fewer than ``min_points`` neighbours.
    """
    points, values = _merged_coincident(*_validated(points, values))
    names = field_names or [f"field {j + 1}" for j in range(values.shape[1])]
    groups = _groups_by_valid_samples(values, names, settings.min_points)
    out = np.full((values.shape[1], grid.rows, grid.cols), np.nan, dtype=dtype)
    flat_out = out.reshape(values.shape[1], -1)
    total_cells = grid.cell_count * len(groups)
    done_cells = 0
    workers = workers or os.cpu_count() or 1
    for valid, field_idx in groups:
        kernel = _Kernel(points[valid], values[valid][:, field_idx], grid, settings)
        for start, stop, block in _run_blocks(kernel, workers, is_cancelled):
            flat_out[field_idx, start:stop] = block.T
            done_cells += stop - start
            report(progress, 100.0 * done_cells / total_cells)
    return out


def idw_memory_bytes(n_points: int, n_fields: int, grid: GridSpec, workers: int | None = None) -> int:
    """Upper estimate of the memory :func:`idw_grid` needs: output, inputs, tree and thread blocks."""
    workers = workers or os.cpu_count() or 1
    output = 4 * n_fields * grid.cell_count
    inputs = 8 * n_points * (n_fields + 2) * 2
    tree = 64 * n_points
    blocks = 2 * workers * BLOCK_BUDGET_BYTES
    return output + inputs + tree + blocks


def _validated(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"Sample coordinates must be an (n, 2) array (got shape {points.shape}).")
    if values.ndim != 2 or values.shape[0] != points.shape[0]:
        raise InputError(f"There are {points.shape[0]} samples but {values.shape[0]} rows of values.")
    if points.shape[0] == 0:
        raise InputError("There are no samples to interpolate.")
    if not np.isfinite(points).all():
        raise InputError("Some sample coordinates are not finite numbers; remove or fix those points.")
    return points, np.where(np.isfinite(values), values, np.nan)


def _merged_coincident(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One sample per distinct x, y holding the mean of the values there (NaN ignored; all NaN stays NaN).

    Values are summed in sorted order within each location, so the result does not depend on input order.
    """
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    if len(unique) == len(points):
        return points, values
    inverse = inverse.ravel()
    means = np.empty((len(unique), values.shape[1]))
    for j, column in enumerate(values.T):
        order = np.lexsort((column, inverse))
        valid = ~np.isnan(column[order])
        sums = np.zeros(len(unique))
        np.add.at(sums, inverse[order][valid], column[order][valid])
        counts = np.bincount(inverse[order][valid], minlength=len(unique))
        with np.errstate(invalid="ignore"):
            means[:, j] = sums / counts
    return unique, means


def _groups_by_valid_samples(
    values: np.ndarray, names: list[str], min_points: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group fields by their set of valid samples: each group needs one tree and one query."""
    valid = ~np.isnan(values)
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    groups = []
    for g, pattern in enumerate(patterns):
        field_idx = np.flatnonzero(inverse.ravel() == g)
        count = int(pattern.sum())
        fields = ", ".join(names[j] for j in field_idx)
        if count == 0:
            raise InputError(f"{fields}: no sample has a value (all NULL or missing-value codes, or none positive "
                             "for log10). Remove the field(s) from the list.")
        if count < min_points:
            raise InputError(
                f"{fields}: only {count} sample(s) have a value, fewer than the minimum number of points "
                f"({min_points}). Lower the minimum or choose fields with more values."
            )
        groups.append((pattern, field_idx))
    return groups


def _run_blocks(kernel: _Kernel, workers: int, is_cancelled: CancelFn) -> Iterator[tuple[int, int, np.ndarray]]:
    """Run the kernel over blocks of cells on a thread pool, yielding results in grid order."""
    bounds = kernel.block_bounds()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        next_submit = 0
        try:
            while next_submit < len(bounds) or pending:
                while next_submit < len(bounds) and len(pending) < 2 * workers:
                    start, stop = bounds[next_submit]
                    pending.append((start, stop, pool.submit(kernel.evaluate, start, stop)))
                    next_submit += 1
                check_cancelled(is_cancelled)
                start, stop, future = pending.pop(0)
                yield start, stop, future.result()
        finally:
            for _, _, future in pending:
                future.cancel()


class _Kernel:
    """IDW of one group of fields that share the same valid samples."""

    def __init__(self, points: np.ndarray, values: np.ndarray, grid: GridSpec, settings: IdwSettings) -> None:
        self.grid = grid
        self.settings = settings
        self.values = values
        self.tree = cKDTree(points)
        # Pixels holding a sample get their value from _apply_exact; their division by zero is harmless.
        self.tolerance = COINCIDENCE_FRACTION * min(grid.pixel_width, grid.pixel_height)
        self.exact_cells, self.exact_values = self._coincident_cells(points, values)
        n = points.shape[0]
        if settings.max_points == 0 and settings.radius == 0:
            self.k = n
            self.dense_points = points
        else:
            self.k = min(settings.max_points or n, n)
            if settings.max_points == 0:
                self.k = self._max_count_within_radius()
            self.dense_points = None

    def block_bounds(self) -> list[tuple[int, int]]:
        """Flat cell ranges, each small enough for the per-thread memory budget (whole rows when dense)."""
        n_fields = self.values.shape[1]
        if self.dense_points is not None:
            rows = max(1, min(BLOCK_BUDGET_BYTES // (16 * self.k), DENSE_BLOCK_ROWS))
            return [(r * self.grid.cols, min(r + rows, self.grid.rows) * self.grid.cols)
                    for r in range(0, self.grid.rows, rows)]
        per_cell = 8 * max(self.k, 1) * (3 + n_fields) + 16 * n_fields
        cells = max(1, BLOCK_BUDGET_BYTES // per_cell)
        if cells >= self.grid.cols:
            cells -= cells % self.grid.cols  # whole rows when a row fits
        return _plain_blocks(self.grid.cell_count, cells)

    def evaluate(self, start: int, stop: int) -> np.ndarray:
        """IDW values of cells ``start:stop`` (flat, row-major) as a (cells, fields) array."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.dense_points is not None:
                result = self._dense(start // self.grid.cols, stop // self.grid.cols)
                valid = np.ones(result.shape[0], dtype=bool)
            else:
                result, valid = self._nearest(self._centres(start, stop))
        self._apply_exact(result, start, stop)
        result[~valid] = np.nan
        return result

    def _centres(self, start: int, stop: int) -> np.ndarray:
        flat = np.arange(start, stop)
        rows, cols = np.divmod(flat, self.grid.cols)
        xs = self.grid.x_min + (cols + 0.5) * self.grid.pixel_width
        ys = self.grid.y_max - (rows + 0.5) * self.grid.pixel_height
        return np.column_stack([xs, ys])

    def _nearest(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values from the k nearest samples within the radius, and whether enough were found."""
        radius = self.settings.radius
        # cKDTree's bound is strict; the next float up makes a sample exactly at the radius count (d ≤ r).
        bound = np.nextafter(radius, np.inf) if radius > 0 else np.inf
        dist, idx = self.tree.query(centres, k=self.k, distance_upper_bound=bound, workers=1)
        if self.k == 1:
            dist, idx = dist[:, None], idx[:, None]
        found = idx < self.values.shape[0]
        weights = self._weights(dist * dist)  # missing neighbours have infinite distance: weight 0
        gathered = self.values[np.where(found, idx, 0)]  # (cells, k, fields)
        numerator = np.matmul(weights[:, None, :], gathered)[:, 0, :]
        return numerator / weights.sum(axis=1)[:, None], found.sum(axis=1) >= self.settings.min_points

    def _dense(self, row_start: int, row_stop: int) -> np.ndarray:
        """Every sample contributes to every pixel of whole rows ``row_start:row_stop``.

        Squared distances separate into a column part and a row part, so a tile of columns keeps its
        x part in cache and each row adds its y part: one add, one divide and one BLAS product per
        pixel-sample pair.
        """
        pts, n_fields = self.dense_points, self.values.shape[1]
        weighted = np.column_stack([self.values, np.ones(pts.shape[0])])
        xs = self.grid.x_centres()
        dy2 = np.square(np.subtract.outer(self.grid.y_centres(row_start, row_stop), pts[:, 1]))
        result = np.empty((row_stop - row_start, self.grid.cols, n_fields))
        tile = np.empty((min(DENSE_TILE_COLUMNS, self.grid.cols), pts.shape[0]))
        for c0 in range(0, self.grid.cols, DENSE_TILE_COLUMNS):
            c1 = min(c0 + DENSE_TILE_COLUMNS, self.grid.cols)
            dx2 = np.square(np.subtract.outer(xs[c0:c1], pts[:, 0]))
            buffer = tile[: c1 - c0]
            for r in range(row_stop - row_start):
                np.add(dx2, dy2[r], out=buffer)
                sums = self._weights(buffer, out=buffer) @ weighted
                result[r, c0:c1] = sums[:, :n_fields] / sums[:, n_fields:]
        return result.reshape(-1, n_fields)

    def _weights(self, squared_distance: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        power = self.settings.power
        if power == 2.0:
            return np.divide(1.0, squared_distance, out=out)
        return np.power(squared_distance, -0.5 * power, out=out)

    def _coincident_cells(self, points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cells whose centre holds one or more samples, and the mean of those samples."""
        g = self.grid
        col_f = (points[:, 0] - g.x_min) / g.pixel_width - 0.5
        row_f = (g.y_max - points[:, 1]) / g.pixel_height - 0.5
        col, row = np.rint(col_f), np.rint(row_f)
        on_centre = (
            (np.abs(col_f - col) * g.pixel_width <= self.tolerance)
            & (np.abs(row_f - row) * g.pixel_height <= self.tolerance)
            & (col >= 0) & (col < g.cols) & (row >= 0) & (row < g.rows)
        )
        cell = (row[on_centre] * g.cols + col[on_centre]).astype(np.int64)
        cells, inverse = np.unique(cell, return_inverse=True)
        sums = np.zeros((cells.size, values.shape[1]))
        np.add.at(sums, inverse, values[on_centre])
        counts = np.bincount(inverse, minlength=cells.size)[:, None]
        return cells, sums / np.maximum(counts, 1)

    def _apply_exact(self, result: np.ndarray, start: int, stop: int) -> None:
        lo, hi = np.searchsorted(self.exact_cells, [start, stop])
        result[self.exact_cells[lo:hi] - start] = self.exact_values[lo:hi]

    def _max_count_within_radius(self) -> int:
        """Largest number of samples within the radius of any pixel centre (all-points mode with a radius)."""
        counts = 0
        for start, stop in _plain_blocks(self.grid.cell_count, 1 << 18):
            found = self.tree.query_ball_point(
                self._centres(start, stop), r=self.settings.radius, return_length=True, workers=-1
            )
            counts = max(counts, int(np.max(found)))
        return max(counts, 1)


def _plain_blocks(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, total)) for s in range(0, total, size)]
