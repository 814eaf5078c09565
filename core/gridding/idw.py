"""Inverse-distance-weighted gridding of many sample fields in one pass, block by block.

For every pixel centre ``x`` the value of a field is ``sum_i w_i v_i / sum_i w_i`` with
``w_i = 1 / d(x, p_i) ** power`` over the neighbours ``p_i`` chosen by the settings: the
``max_points`` nearest samples (0 = every sample), optionally only those within (≤) ``radius``.
Samples at the same x, y act as one sample whose value is the mean of theirs (per field, ignoring
missing values), whatever their order in the input: they count once among the neighbours. A pixel
whose centre lies on a sample (closer than ``COINCIDENCE_FRACTION`` of a pixel) takes the mean of the
samples there, so a sample on a centre gives its value exactly and never divides by zero. A pixel
with fewer than ``min_points`` neighbours within the radius is NaN.

Fields with missing values (NaN) are interpolated from their own valid samples only.

The grid is produced in square blocks (:func:`idw_blocks`), so a caller can write each block and drop it:
the memory needed depends on the samples and the block size, not on the size of the grid. Given a Dask
scheduler address (or :data:`.tiles.SCHEDULER_ENV`) the blocks are computed by its workers through
:func:`.tiles.map_tiles`, each block's pieces one after the other on one thread, which gives the same bits.

Two evaluations:

- **Nearest samples** (a neighbour limit or a radius): fields that share the same set of valid samples
  share one cKDTree and one neighbour query, so ten complete fields cost little more than one.
- **All samples** (no limit, no radius): every field, missing values included, in one matrix product per
  set of cells and samples: their weights times a (columns × samples) matrix holding each field's values
  (0 where missing) and, per pattern of missing values, a row of 0/1 whose product is that pattern's sum
  of weights. Weights are float32 (float64 where float32 could overflow); the partial sums of each chunk of
  samples are added in float64. Blocks are cut in pieces, and those in quarters, recursively: samples
  farther from a piece than ``NEAR_MARGIN`` half-sides of it (more for powers above 2) are summed at its
  ``NODES`` × ``NODES`` Chebyshev nodes, where their weights are smooth, and those node sums are handed down
  to the quarters and interpolated to the cells once; only the samples near the smallest pieces are summed
  at every cell. On the 7,000-sample benchmark this leaves about 100 sample-target pairs per cell instead of
  7,000, within 1e-5 of the exact sums. ``reference=True`` sums every pixel-sample pair in float64 instead
  (slow; what the fast evaluation is tested against).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from typing import NamedTuple, Protocol

import numpy as np
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..grid import GridSpec
from ..progress import CancelFn, LogFn, ProgressFn, check_cancelled, report
from ..tiles import Tile, map_tiles, scheduler_address

# A sample closer than this fraction of a pixel to a pixel centre is "on" the centre.
COINCIDENCE_FRACTION = 1e-6
# Side, in cells, of the blocks idw_blocks yields (the GeoTIFF tile side, so each tile is written once).
BLOCK_SIDE = 256
# Working memory each thread may use for one piece of cells on the nearest-samples path (bytes).
BLOCK_BUDGET_BYTES = 48 * 2**20
# All samples: side of the pieces a thread evaluates at once (each subdivided further; smaller than a block so
# the sums of many fields stay in cache and the threads share the work evenly), samples per matrix product
# (their float32 sums are added in float64), pixel-sample weights held at once (a cache-sized float32 matrix),
# and the side of the pieces the float64 reference evaluates at once.
PIECE_SIDE = 128
POINT_CHUNK = 1024
WEIGHT_ELEMENTS = 2**18
REFERENCE_PIECE_SIDE = 64
# All samples: Chebyshev nodes per axis of a piece, and how far (in half-sides of the piece, beyond it) a
# sample must be to be summed at the nodes, for power 2 (the margin grows in proportion above). Far samples'
# weights are smooth on the piece, so interpolating from 8 nodes per axis is accurate to about 1e-5 of each
# weight (tests check 1e-4 of the result). A piece with at most LEAF_SAMPLES near samples sums them at every
# cell instead of splitting in four.
NODES = 8
NEAR_MARGIN = 2.0
LEAF_SAMPLES = 128
# All samples: float32 weights are used when their range, in decades, plus that of the sample count fits in
# float32 (1e±38) with room to spare; otherwise float64.
FLOAT32_DECADES = 36.0


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

    @property
    def all_points(self) -> bool:
        """Every sample weighs on every pixel (no neighbour limit, no radius)."""
        return self.max_points == 0 and self.radius == 0


class _Window(NamedTuple):
    """A rectangle of grid cells: first row and column, number of rows and columns."""

    row: int
    col: int
    height: int
    width: int

    @property
    def cells(self) -> int:
        return self.height * self.width


def idw_blocks(
    points: np.ndarray,
    values: np.ndarray,
    grid: GridSpec,
    settings: IdwSettings = IdwSettings(),
    *,
    field_names: list[str] | None = None,
    block_side: int = BLOCK_SIDE,
    workers: int | None = None,
    dtype: type = np.float32,
    reference: bool = False,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Grid sample values onto ``grid`` by IDW, one square block of cells at a time.

    Inputs are checked before this returns; the blocks are computed as the iterator is consumed, on
    ``workers`` threads, and come in row-major order, so a writer can store each and let it go. On Dask they
    come in the order they complete.

    Args:
        points: (n, 2) sample x, y in the grid's CRS.
        values: (n,) or (n, f) sample values; NaN marks a missing value of that field.
        grid: the output grid; values are evaluated at pixel centres.
        settings: power, neighbour count, minimum count and search radius.
        field_names: names used in error messages (default ``field 1``, ``field 2``, ...).
        block_side: side of the blocks in cells (those on the right and bottom edges may be smaller).
        workers: threads (default: every CPU).
        dtype: type of the blocks.
        reference: with all samples, sum every pixel-sample pair in float64 (slow; for checking).
        scheduler: a Dask scheduler address (or :data:`.tiles.SCHEDULER_ENV`): its workers compute the blocks;
            None: this process, on ``workers`` threads.
        progress: called with 0–100.
        is_cancelled: polled between pieces of a block (between blocks on Dask); a True answer raises
            :class:`Cancelled`.
        log: messages (which cluster computes the blocks).

    Returns:
        An iterator of (tile, (f, rows, cols) block), NaN where a pixel has fewer than ``min_points``
        neighbours: the form of every tiled step, for :func:`.tiles.write_tiles`.
    """
    if block_side < 1:
        raise InputError(f"The block side must be at least one cell (got {block_side}).")
    points, values = _merged_coincident(*_validated(points, values))
    names = field_names or [f"field {j + 1}" for j in range(values.shape[1])]
    groups = _groups_by_valid_samples(values, names, settings.min_points)
    if settings.all_points:
        kernels: list[_Kernel] = [_AllPointsKernel(points, values, grid, settings.power, reference)]
    else:
        kernels = [_NearestKernel(points[valid], values[valid][:, fields], fields, grid, settings)
                   for valid, fields in groups]
    blocks = [_Window(r, c, min(block_side, grid.rows - r), min(block_side, grid.cols - c))
              for r in range(0, grid.rows, block_side) for c in range(0, grid.cols, block_side)]
    if scheduler_address(scheduler) is not None:
        compute = partial(_block_values, values.shape[1], dtype)
        done = map_tiles(compute, blocks, len(blocks), shared=tuple(kernels), scheduler=scheduler,
                         progress=progress, is_cancelled=is_cancelled, log=log)
        return ((Tile(*block), values) for block, values in done)
    return _evaluated_blocks(kernels, blocks, values.shape[1], workers or os.cpu_count() or 1, dtype,
                             progress, is_cancelled)


def idw_grid(
    points: np.ndarray,
    values: np.ndarray,
    grid: GridSpec,
    settings: IdwSettings = IdwSettings(),
    *,
    field_names: list[str] | None = None,
    workers: int | None = None,
    dtype: type = np.float32,
    reference: bool = False,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> np.ndarray:
    """The whole grid of :func:`idw_blocks` as one (f, rows, cols) array of ``dtype`` (for small grids)."""
    blocks = idw_blocks(points, values, grid, settings, field_names=field_names, workers=workers, dtype=dtype,
                        reference=reference, scheduler=scheduler, progress=progress, is_cancelled=is_cancelled,
                        log=log)
    out = np.empty((np.shape(values)[1] if np.ndim(values) == 2 else 1, grid.rows, grid.cols), dtype=dtype)
    for tile, block in blocks:
        out[(slice(None), *tile.slices)] = block
    return out


def idw_memory_bytes(values: np.ndarray, settings: IdwSettings, *, workers: int | None = None,
                     block_side: int = BLOCK_SIDE) -> int:
    """Upper estimate of the memory :func:`idw_blocks` needs, whatever the grid size.

    Inputs and their merged copy, the search structures (one tree per pattern of missing values on the
    nearest-samples path), the pieces in flight on the threads and the blocks being assembled.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(values.shape[0], -1)
    n, f = values.shape
    patterns = len(_valid_patterns(values)[0])
    workers = workers or os.cpu_count() or 1
    inputs = 2 * 8 * n * (f + 2)
    if settings.all_points:  # the columns in float64 and float32; per piece: sums, weights, samples near it
        structures = 12 * n * (f + patterns + 3)
        piece = 8 * WEIGHT_ELEMENTS + 8 * PIECE_SIDE**2 * (2 * (f + patterns + 3) + f) + 2 * 12 * n * (f + patterns + 5)
    else:  # one tree per pattern of missing values
        structures = 64 * n * patterns
        piece = BLOCK_BUDGET_BYTES
    blocks = 3 * 8 * f * block_side**2
    return inputs + structures + 2 * workers * piece + blocks


# ---------------------------------------------------------------------------------------------- input


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
    patterns, pattern_of_field = _valid_patterns(values)
    groups = []
    for g, pattern in enumerate(patterns):
        field_idx = np.flatnonzero(pattern_of_field == g)
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


def _valid_patterns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sets of valid samples of the fields, as (patterns, samples) bools in order of first
    appearance, and the index of each field's pattern."""
    valid = ~np.isnan(values)
    index: dict[bytes, int] = {}
    of_field = np.array([index.setdefault(np.packbits(column).tobytes(), len(index)) for column in valid.T],
                        dtype=np.int64)
    firsts = [int(np.flatnonzero(of_field == g)[0]) for g in range(len(index))]
    return valid[:, firsts].T, of_field


# ---------------------------------------------------------------------------------------------- scheduling


class _Kernel(Protocol):
    fields: np.ndarray  # the fields (indices into the input's columns) this kernel computes

    def pieces(self, block: _Window) -> list[_Window]:
        """The pieces of ``block`` evaluated at once (sized for the per-thread working memory)."""

    def evaluate(self, piece: _Window) -> np.ndarray:
        """(fields, cells) float64 values of the cells of ``piece``, row-major."""


def _evaluated_blocks(kernels: list[_Kernel], blocks: list[_Window], n_fields: int, workers: int, dtype: type,
                      progress: ProgressFn, is_cancelled: CancelFn) -> Iterator[tuple[Tile, np.ndarray]]:
    """Evaluate every kernel on every piece of every block on a thread pool; yield whole blocks in order.

    At most ``2 × workers`` pieces are in flight, so only the blocks they belong to are held.
    """
    tasks = ((b, kernel, piece) for b, block in enumerate(blocks) for kernel in kernels
             for piece in kernel.pieces(block))
    total_cells = sum(block.cells for block in blocks) * len(kernels)
    done_cells = 0
    assembling: dict[int, np.ndarray] = {}
    remaining = {b: sum(len(kernel.pieces(block)) for kernel in kernels) for b, block in enumerate(blocks)}
    # Each thread runs its own matrix products: BLAS's threads on top would fight over the cores.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        try:
            while True:
                while len(pending) < 2 * workers:
                    task = next(tasks, None)
                    if task is None:
                        break
                    b, kernel, piece = task
                    if b not in assembling:
                        assembling[b] = np.empty((n_fields, blocks[b].height, blocks[b].width), dtype=dtype)
                    pending.append((b, kernel, piece, pool.submit(kernel.evaluate, piece)))
                if not pending:
                    return
                check_cancelled(is_cancelled)
                b, kernel, piece, future = pending.popleft()
                block, values = blocks[b], future.result()
                rows, cols = piece.row - block.row, piece.col - block.col
                assembling[b][kernel.fields, rows:rows + piece.height, cols:cols + piece.width] = (
                    values.reshape(-1, piece.height, piece.width))
                done_cells += piece.cells
                report(progress, 100.0 * done_cells / total_cells)
                remaining[b] -= 1
                if remaining[b] == 0:
                    yield Tile(*block), assembling.pop(b)
        finally:
            for *_, future in pending:
                future.cancel()


def _block_values(n_fields: int, dtype: type, kernels: tuple[_Kernel, ...], block: _Window) -> np.ndarray:
    """(fields, rows, cols) values of one block, its pieces one after the other on this thread (a Dask task; the
    kernels are sent to each worker once)."""
    out = np.empty((n_fields, block.height, block.width), dtype=dtype)
    with threadpool_limits(limits=1, user_api="blas"):  # as on the in-process threads: the same products
        for kernel in kernels:
            for piece in kernel.pieces(block):
                rows, cols = piece.row - block.row, piece.col - block.col
                out[kernel.fields, rows:rows + piece.height, cols:cols + piece.width] = (
                    kernel.evaluate(piece).reshape(-1, piece.height, piece.width))
    return out


# ---------------------------------------------------------------------------------------------- nearest samples


class _NearestKernel:
    """IDW from the nearest samples (a neighbour limit or a radius) of fields that share their valid samples."""

    def __init__(self, points: np.ndarray, values: np.ndarray, fields: np.ndarray, grid: GridSpec,
                 settings: IdwSettings) -> None:
        self.grid = grid
        self.settings = settings
        self.values = values
        self.fields = fields
        self.tree = cKDTree(points)
        # Pixels holding a sample get their value from _apply_exact; their division by zero is harmless.
        self.exact = _CoincidentCells(points, values, grid)
        n = points.shape[0]
        # Neighbours per cell: the limit, else (a radius alone) at most the samples of any 2 × 2 squares of side
        # twice the radius; each piece then asks for the most that any of its cells has within the radius.
        self.k = (min(settings.max_points, n) if settings.max_points
                  else _radius_count_bound(_near_grid(points, grid, settings.radius), settings.radius))

    def pieces(self, block: _Window) -> list[_Window]:
        per_cell = 8 * max(self.k, 1) * (3 + self.values.shape[1]) + 16 * self.values.shape[1]
        cells = max(1, BLOCK_BUDGET_BYTES // per_cell)
        width = min(block.width, cells)
        height = max(1, cells // width)
        return _split(block, height, width)

    def evaluate(self, piece: _Window) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result, valid = self._nearest(_centres(self.grid, piece))
        result = result.T
        self.exact.apply(result, piece)
        result[:, ~valid] = np.nan
        return result

    def _nearest(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values from the k nearest samples within the radius, and whether enough were found."""
        radius = self.settings.radius
        # cKDTree's bound is strict; the next float up makes a sample exactly at the radius count (d ≤ r).
        bound = np.nextafter(radius, np.inf) if radius > 0 else np.inf
        k = self.k
        if not self.settings.max_points:  # the most samples any of these cells has within the radius (≤ self.k)
            k = max(1, int(np.max(self.tree.query_ball_point(centres, r=radius, return_length=True, workers=1))))
        dist, idx = self.tree.query(centres, k=k, distance_upper_bound=bound, workers=1)
        if k == 1:
            dist, idx = dist[:, None], idx[:, None]
        found = idx < self.values.shape[0]
        if radius > 0:  # the tree may let a sample one ulp past the bound through (it compares squared distances)
            found &= dist <= radius
            dist = np.where(found, dist, np.inf)
        weights = _weights(dist * dist, self.settings.power)  # missing neighbours: infinite distance, weight 0
        gathered = self.values[np.where(found, idx, 0)]  # (cells, k, fields)
        numerator = np.matmul(weights[:, None, :], gathered)[:, 0, :]
        return numerator / weights.sum(axis=1)[:, None], found.sum(axis=1) >= self.settings.min_points


def _near_grid(points: np.ndarray, grid: GridSpec, radius: float) -> np.ndarray:
    """The samples that may lie within ``radius`` of a cell centre of ``grid``: those in the grid's extent grown
    by the radius (and a cell more, so rounding never leaves one out). Only they can count toward the bound
    of :func:`_radius_count_bound`; a cluster of samples far off the grid would shrink its pieces for nothing."""
    margin = radius + max(grid.pixel_width, grid.pixel_height)
    low = np.array([grid.x_min, grid.y_max - grid.rows * grid.pixel_height]) - margin
    high = np.array([grid.x_min + grid.cols * grid.pixel_width, grid.y_max]) + margin
    return points[((points >= low) & (points <= high)).all(axis=1)]


def _radius_count_bound(points: np.ndarray, radius: float) -> int:
    """An upper bound of the samples within ``radius`` of any point: a disc of that radius lies in 2 × 2 squares
    of side ``2 radius``, so the most samples in any 2 × 2 such squares (only those holding samples are counted)."""
    if len(points) == 0:
        return 1
    squares = np.floor((points - points.min(axis=0)) / (2.0 * radius)).astype(np.int64) + 1
    side = int(squares[:, 1].max()) + 2  # keys of neighbours never wrap into another column of squares
    keys, counts = np.unique(squares[:, 0] * side + squares[:, 1], return_counts=True)
    corners = (0, 1, side, side + 1)
    anchors = np.unique(np.concatenate([keys - corner for corner in corners]))
    total = np.zeros(len(anchors), dtype=np.int64)
    for corner in corners:
        at = np.searchsorted(keys, anchors + corner).clip(max=len(keys) - 1)
        total += np.where(keys[at] == anchors + corner, counts[at], 0)
    return max(1, int(total.max()))


# ---------------------------------------------------------------------------------------------- all samples


class _AllPointsKernel:
    """IDW of every field from every sample, all fields and patterns of missing values in one product."""

    def __init__(self, points: np.ndarray, values: np.ndarray, grid: GridSpec, power: float,
                 reference: bool) -> None:
        self.grid, self.power, self.reference = grid, power, reference
        n, n_fields = values.shape
        self.fields = np.arange(n_fields)
        valid = ~np.isnan(values)
        patterns, pattern_of_field = _valid_patterns(values)
        # Values scaled by a power of two (exact) to at most 1, so float32 sums cannot overflow.
        magnitude = np.nanmax(np.abs(values), axis=0)
        self.scale = np.exp2(np.ceil(np.log2(np.where(magnitude > 0, magnitude, 1.0))))
        # (columns, samples): rows, rather than columns, so the sums of each column are contiguous. Padded with
        # rows of zeros to a multiple of 4: BLAS's float32 products took 0.53 ns per pair with 12 rows, 0.71 with 11.
        columns = np.vstack([np.where(valid, values, 0.0).T / self.scale[:, None], patterns.astype(np.float64)])
        self.columns = np.vstack([columns, np.zeros((-len(columns) % 4, n))])
        # the row of each field's sum of weights: one for all fields when they share their valid samples
        denominators = n_fields + pattern_of_field
        self.denominators = slice(n_fields, n_fields + 1) if len(patterns) == 1 else denominators
        self.exact = _CoincidentCells(points, values, grid)
        # Coordinates relative to the grid's upper-left corner, in a unit that centres the weights' range on 1.
        shortest, longest = _distance_bounds(points, grid, self.exact.tolerance)
        self.unit = math.sqrt(shortest * longest)
        self.px = (points[:, 0] - grid.x_min) / self.unit
        self.py = (grid.y_max - points[:, 1]) / self.unit
        self.cx = (np.arange(grid.cols) + 0.5) * grid.pixel_width / self.unit
        self.cy = (np.arange(grid.rows) + 0.5) * grid.pixel_height / self.unit
        self.spacing = grid.pixel_width / self.unit, grid.pixel_height / self.unit
        decades = 0.5 * power * math.log10(longest / shortest) + math.log10(n)
        self.dtype = np.float32 if decades <= FLOAT32_DECADES and not reference else np.float64
        self.product_columns = self.columns.astype(self.dtype)  # what the weights multiply
        # Beyond the margin a far sample's weight varies across a piece by at most ((margin + 2) / margin)^power:
        # a margin growing with the power keeps that (and the interpolation error) bounded.
        self.margin = NEAR_MARGIN * max(1.0, power / 2.0)

    def pieces(self, block: _Window) -> list[_Window]:
        side = REFERENCE_PIECE_SIDE if self.reference else PIECE_SIDE
        return _split(block, side, side)

    def evaluate(self, piece: _Window) -> np.ndarray:
        xs = self.cx[piece.col:piece.col + piece.width]
        ys = self.cy[piece.row:piece.row + piece.height]
        sums = np.zeros((self.columns.shape[0], piece.height, piece.width))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.reference:
                self._add_pair_sums(sums, xs, ys, self.px, self.py, self.product_columns)
            else:
                self._add_near_and_far_sums(sums, xs, ys, self.px, self.py, self.product_columns)
            sums = sums.reshape(-1, piece.cells)
            cells = self.exact.cells_in(piece)
            if cells.size:
                sums[:, cells] = self._exact_sums(xs[cells % piece.width], ys[cells // piece.width])
            result = np.divide(sums[:self.fields.size], sums[self.denominators])
            result *= self.scale[:, None]
        self.exact.apply(result, piece)
        return result

    def _add_near_and_far_sums(self, sums: np.ndarray, xs: np.ndarray, ys: np.ndarray, px: np.ndarray,
                               py: np.ndarray, columns: np.ndarray, inherited: np.ndarray | None = None) -> None:
        """Add to ``sums`` (columns, rows, cols) the sums at the cells ``ys`` × ``xs`` from the given samples.

        Samples farther than ``self.margin`` half-sides beyond the cells are summed at the piece's nodes. The
        near ones are summed the same way in each quarter of the piece, which inherits the node sums so far
        (interpolated to its own nodes, exactly: both are polynomials of the same degree), down to pieces with
        few near samples or few cells; there near samples are summed at every cell and the node sums are
        interpolated to the cells, once. ``inherited``: the ancestors' node sums at this piece's nodes.
        """
        x_nodes = xs[0] + _node_offsets(xs.size) * self.spacing[0]
        y_nodes = ys[0] + _node_offsets(ys.size) * self.spacing[1]
        reach = 0.5 * max(xs[-1] - xs[0], ys[-1] - ys[0]) * (1.0 + self.margin)
        near = (np.abs(px - 0.5 * (xs[0] + xs[-1])) <= reach) & (np.abs(py - 0.5 * (ys[0] + ys[-1])) <= reach)
        at_nodes = np.zeros((columns.shape[0], y_nodes.size, x_nodes.size)) if inherited is None else inherited
        if not near.all():
            far = ~near
            self._add_pair_sums(at_nodes, x_nodes, y_nodes, px[far], py[far], columns[:, far])
        px, py, columns = px[near], py[near], columns[:, near]
        if max(xs.size, ys.size) > 2 * NODES and px.size > LEAF_SAMPLES:
            for rows in _halves(ys.size):
                for cols in _halves(xs.size):
                    passed_on = _interpolated(at_nodes, _to_nodes(ys.size, rows.start, rows.stop),
                                              _to_nodes(xs.size, cols.start, cols.stop))
                    self._add_near_and_far_sums(sums[:, rows, cols], xs[cols], ys[rows], px, py, columns, passed_on)
            return
        self._add_pair_sums(sums, xs, ys, px, py, columns)
        sums += _interpolated(at_nodes, _to_cells(ys.size), _to_cells(xs.size))

    def _add_pair_sums(self, sums: np.ndarray, xs: np.ndarray, ys: np.ndarray, px: np.ndarray, py: np.ndarray,
                       columns: np.ndarray) -> None:
        """Add to ``sums`` (columns, rows, cols) columns × weight over every pair of target ``ys`` × ``xs``
        and sample.

        Squared distances separate into an x and a y part, each computed in float64 and then rounded, so
        they are exact to the weights' precision; a chunk of samples at a time, a few rows of targets at a
        time, weights in ``self.dtype`` and partial sums added in float64.
        """
        chunk = max(1, min(px.size, POINT_CHUNK))
        rows = max(1, WEIGHT_ELEMENTS // max(1, xs.size * chunk))
        for start in range(0, px.size, chunk):
            stop = min(start + chunk, px.size)
            dx2 = np.square(np.subtract.outer(xs, px[start:stop])).astype(self.dtype)
            dy2 = np.square(np.subtract.outer(ys, py[start:stop])).astype(self.dtype)
            for row in range(0, ys.size, rows):
                weights = np.add(dy2[row:row + rows, None, :], dx2[None, :, :]).reshape(-1, stop - start)
                _weights(weights, self.power, out=weights)
                sums[:, row:row + rows] += (columns[:, start:stop] @ weights.T).reshape(len(columns), -1, xs.size)

    def _exact_sums(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """(columns, cells) float64 sums at cells holding a sample, without the samples on each cell (their
        value is exact)."""
        sums = np.zeros((self.columns.shape[0], xs.size))
        tolerance = self.exact.tolerance / self.unit
        for start in range(0, self.px.size, POINT_CHUNK):
            dx = np.subtract.outer(xs, self.px[start:start + POINT_CHUNK])
            dy = np.subtract.outer(ys, self.py[start:start + POINT_CHUNK])
            weights = _weights(dx * dx + dy * dy, self.power)
            weights[(np.abs(dx) <= tolerance) & (np.abs(dy) <= tolerance)] = 0
            sums += self.columns[:, start:start + POINT_CHUNK] @ weights.T
        return sums


def _distance_bounds(points: np.ndarray, grid: GridSpec, tolerance: float) -> tuple[float, float]:
    """Lower and upper bounds of the distance between a pixel centre and a sample not on it.

    A sample's nearest centre is found by rounding (clamped to the grid); one on a centre is at least about a
    pixel from every other centre.
    """
    xs_range = grid.x_min + 0.5 * grid.pixel_width, grid.x_max - 0.5 * grid.pixel_width
    ys_range = grid.y_min + 0.5 * grid.pixel_height, grid.y_max - 0.5 * grid.pixel_height
    col = np.clip(np.rint((points[:, 0] - xs_range[0]) / grid.pixel_width), 0, grid.cols - 1)
    row = np.clip(np.rint((ys_range[1] - points[:, 1]) / grid.pixel_height), 0, grid.rows - 1)
    dx = np.abs(points[:, 0] - (xs_range[0] + col * grid.pixel_width))
    dy = np.abs(points[:, 1] - (ys_range[1] - row * grid.pixel_height))
    on_centre = (dx <= tolerance) & (dy <= tolerance)
    pixel = min(grid.pixel_width, grid.pixel_height)
    shortest = float(np.min(np.where(on_centre, 0.5 * pixel, np.hypot(dx, dy))))
    reach_x = max(xs_range[1] - points[:, 0].min(), points[:, 0].max() - xs_range[0])
    reach_y = max(ys_range[1] - points[:, 1].min(), points[:, 1].max() - ys_range[0])
    longest = float(np.hypot(reach_x, reach_y))
    shortest = max(shortest, tolerance)
    return shortest, max(longest, shortest)


# Interpolation along one axis of a piece of ``count`` cells, in cell units from its first cell centre; the same
# for every piece of that size, so computed once.


@cache
def _node_offsets(count: int) -> np.ndarray:
    """Positions of a piece's nodes: ``NODES`` Chebyshev points spanning its cell centres, or the centres
    themselves when there are no more of them."""
    if count <= NODES:
        return _read_only(np.arange(count, dtype=np.float64))
    angles = (2 * np.arange(NODES) + 1) * np.pi / (2 * NODES)
    return _read_only(0.5 * (count - 1) * (1.0 + np.cos(angles)))


@cache
def _to_nodes(count: int, start: int, stop: int) -> np.ndarray:
    """(part's nodes, nodes) matrix interpolating node values of a piece to the nodes of its cells start:stop."""
    return _read_only(_lagrange(start + _node_offsets(stop - start), _node_offsets(count)))


@cache
def _to_cells(count: int) -> np.ndarray:
    """(cells, nodes) matrix interpolating node values of a piece to its cell centres."""
    return _read_only(_lagrange(np.arange(count, dtype=np.float64), _node_offsets(count)))


def _lagrange(points: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(points, nodes) matrix that interpolates values at ``nodes`` to ``points`` (barycentric formula)."""
    offsets = np.subtract.outer(points, nodes)
    on_node = offsets == 0
    gaps = np.subtract.outer(nodes, nodes) + np.eye(nodes.size)
    basis = 1.0 / np.prod(gaps, axis=1) / np.where(on_node, 1.0, offsets)
    basis /= basis.sum(axis=1, keepdims=True)
    hit = on_node.any(axis=1)
    basis[hit] = on_node[hit]
    return basis


def _interpolated(at_nodes: np.ndarray, along_y: np.ndarray, along_x: np.ndarray) -> np.ndarray:
    """(columns, rows, cols) values from (columns, y nodes, x nodes) values and the matrices of each axis."""
    return np.matmul(np.matmul(along_y, at_nodes), along_x.T)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------------------------- shared


class _CoincidentCells:
    """Cells whose centre holds one or more samples, and per field the mean of the valid samples there."""

    def __init__(self, points: np.ndarray, values: np.ndarray, grid: GridSpec) -> None:
        self.grid = grid
        self.tolerance = COINCIDENCE_FRACTION * min(grid.pixel_width, grid.pixel_height)
        col_f = (points[:, 0] - grid.x_min) / grid.pixel_width - 0.5
        row_f = (grid.y_max - points[:, 1]) / grid.pixel_height - 0.5
        col, row = np.rint(col_f), np.rint(row_f)
        on_centre = (
            (np.abs(col_f - col) * grid.pixel_width <= self.tolerance)
            & (np.abs(row_f - row) * grid.pixel_height <= self.tolerance)
            & (col >= 0) & (col < grid.cols) & (row >= 0) & (row < grid.rows)
        )
        cell = (row[on_centre] * grid.cols + col[on_centre]).astype(np.int64)
        self.cells, inverse = np.unique(cell, return_inverse=True)
        here = values[on_centre]
        valid = ~np.isnan(here)
        sums = np.zeros((self.cells.size, values.shape[1]))
        counts = np.zeros((self.cells.size, values.shape[1]))
        np.add.at(sums, inverse.ravel(), np.where(valid, here, 0.0))
        np.add.at(counts, inverse.ravel(), valid)
        with np.errstate(invalid="ignore"):
            self.values = sums / counts  # NaN where no sample there has a value

    def _in(self, piece: _Window) -> tuple[np.ndarray, np.ndarray]:
        cols = self.grid.cols
        lo, hi = np.searchsorted(self.cells, [piece.row * cols, (piece.row + piece.height) * cols])
        row, col = np.divmod(self.cells[lo:hi], cols)
        inside = (col >= piece.col) & (col < piece.col + piece.width)
        local = (row[inside] - piece.row) * piece.width + col[inside] - piece.col
        return local, self.values[lo:hi][inside]

    def cells_in(self, piece: _Window) -> np.ndarray:
        """Row-major indices, within ``piece``, of its cells that hold a sample."""
        return self._in(piece)[0]

    def apply(self, result: np.ndarray, piece: _Window) -> None:
        """Give the cells of ``piece`` that hold a sample (columns of the (fields, cells) ``result``) its value,
        in fields where it has one."""
        local, values = self._in(piece)
        result[:, local] = np.where(np.isnan(values.T), result[:, local], values.T)


def _weights(squared_distance: np.ndarray, power: float, out: np.ndarray | None = None) -> np.ndarray:
    if power == 2.0:
        return np.divide(1.0, squared_distance, out=out)
    return np.power(squared_distance, -0.5 * power, out=out)


def _centres(grid: GridSpec, piece: _Window) -> np.ndarray:
    """(cells, 2) x, y of the pixel centres of ``piece``, row-major."""
    xs = grid.x_min + (np.arange(piece.col, piece.col + piece.width) + 0.5) * grid.pixel_width
    ys = grid.y_max - (np.arange(piece.row, piece.row + piece.height) + 0.5) * grid.pixel_height
    return np.column_stack([np.tile(xs, ys.size), np.repeat(ys, xs.size)])


def _halves(count: int) -> list[slice]:
    return [slice(0, count // 2), slice(count // 2, count)] if count > 1 else [slice(0, count)]


def _split(block: _Window, height: int, width: int) -> list[_Window]:
    """``block`` cut into pieces of at most ``height`` × ``width`` cells, row-major."""
    return [_Window(r, c, min(height, block.row + block.height - r), min(width, block.col + block.width - c))
            for r in range(block.row, block.row + block.height, height)
            for c in range(block.col, block.col + block.width, width)]
