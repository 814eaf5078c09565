"""Maps read one window at a time, and exact statistics of their values in bounded memory.

Evaluation, anomaly classes, targets and the report never hold a whole map. A :class:`MapSource` hands out one
window at a time (float64, NaN at nodata, at non-finite values and outside the study area) and reads the cells
under given points; it is backed by a raster file (:func:`raster_map`, windows of whole blocks) or by an array
(:func:`array_map`, for small maps and tests, any tile size). The statistics are exact, not read off a
histogram's bins:

* :class:`LevelCounts` counts the values below and equal to each of a few levels (the deposits' values): all
  that a ROC or success-rate curve needs from the millions of other cells;
* :class:`DistinctValues` keeps every distinct value with its count, while there are not too many;
* :func:`order_statistics` finds the values at given ranks: a histogram brackets each rank in one bin, and a
  second pass collects only the values in those bins (a bin that is still too crowded is split again; a bin
  holding a single value is resolved at once, so ties cost nothing).

Memory is a few windows plus what the statistic keeps (levels, at most ``cap`` distinct values, the collected
bins), whatever the size of the map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..areas import CellMask, WindowedMask
from ..errors import InputError
from ..grid import GridSpec
from ..memory import check_memory
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import read_grid_spec
from .maps import DEFAULT_WINDOW_CELLS, open_map

HISTOGRAM_BINS = 1 << 16  # bins of the histogram that brackets the ranks of order_statistics
COLLECT_VALUES = 1 << 22  # values order_statistics may collect in one pass (32 MiB as float64)
ReadFn = Callable[[Window], np.ndarray]


class MapSource:
    """One band of a map on ``grid``, read in tiles of ``tile_shape`` (rows, cols), row by row of tiles.

    ``read`` returns a window's values as a fresh float64 array; :meth:`read` turns non-finite values and cells
    outside the study area (a (rows, cols) bool mask, True inside) into NaN.
    """

    def __init__(self, grid: GridSpec, tile_shape: tuple[int, int], read: ReadFn,
                 study_area: CellMask | np.ndarray | None = None, band_name: str = "",
                 tags: dict | None = None) -> None:
        self.grid = grid
        self.tile_shape = (max(1, min(int(tile_shape[0]), grid.rows)), max(1, min(int(tile_shape[1]), grid.cols)))
        self._read = read
        self.study_area = check_study_area(study_area, grid.shape)
        self.band_name = band_name
        self.tags = dict(tags or {})

    @property
    def tiles(self) -> tuple[int, int]:
        """Number of tile rows and tile columns."""
        return math.ceil(self.grid.rows / self.tile_shape[0]), math.ceil(self.grid.cols / self.tile_shape[1])

    def windows(self) -> list[Window]:
        """The tiles, row-major (the last row and column of tiles may be smaller)."""
        (rows, cols), (height, width) = self.grid.shape, self.tile_shape
        return [Window(col, row, min(width, cols - col), min(height, rows - row))
                for row in range(0, rows, height) for col in range(0, cols, width)]

    def read(self, window: Window) -> np.ndarray:
        """The window's values, float64, NaN at nodata, non-finite values and outside the study area."""
        values = self._read(window)
        values[~np.isfinite(values)] = np.nan
        if self.study_area is not None:
            values[~self.study_area[window.toslices()]] = np.nan
        return values

    def scan(self, is_cancelled: CancelFn = None, progress: ProgressFn = None) -> Iterator[tuple[Window, np.ndarray]]:
        """Every tile with its values, checking the cancel flag and reporting 0–100 % of the pass."""
        windows = self.windows()
        for done, window in enumerate(windows, start=1):
            check_cancelled(is_cancelled)
            yield window, self.read(window)
            report(progress, 100.0 * done / len(windows))

    def sample(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Values at cells (``rows[i]``, ``cols[i]``) on the grid, reading only the tiles that hold them."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        values = np.full(rows.size, np.nan)
        for window, group in self.tiles_holding(rows, cols):
            values[group] = self.read(window)[rows[group] - window.row_off, cols[group] - window.col_off]
        return values

    def tiles_holding(self, rows: np.ndarray, cols: np.ndarray) -> Iterator[tuple[Window, np.ndarray]]:
        """Each tile holding some of the cells (``rows[i]``, ``cols[i]``), with the indices i of those cells."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        height, width = self.tile_shape
        keys = (rows // height) * self.tiles[1] + cols // width
        order = np.argsort(keys, kind="stable")
        tiles, starts = np.unique(keys[order], return_index=True)
        for key, group in zip(tiles.tolist(), np.split(order, starts[1:])):
            top, left = key // self.tiles[1] * height, key % self.tiles[1] * width
            yield Window(left, top, min(width, self.grid.cols - left), min(height, self.grid.rows - top)), group

    def within(self, study_area: CellMask | np.ndarray | None) -> MapSource:
        """This map with the cells outside ``study_area`` (also) treated as nodata."""
        if study_area is None:
            return self
        inside = check_study_area(study_area, self.grid.shape)
        if self.study_area is not None:
            inside = inside & self.study_area
        return MapSource(self.grid, self.tile_shape, self._read, inside, self.band_name, self.tags)


def check_study_area(study_area: CellMask | np.ndarray | None,
                     shape: tuple[int, int]) -> WindowedMask | np.ndarray | None:
    """An optional study area (a windowed mask, or a (rows, cols) bool array; True = inside), checked against the
    map's ``shape``."""
    if study_area is None:
        return None
    inside = study_area if isinstance(study_area, WindowedMask) else np.asarray(study_area, dtype=bool)
    if tuple(inside.shape) != tuple(shape):
        raise InputError(f"The study area mask {inside.shape} does not match the grid ({shape[0]} × {shape[1]} "
                         "cells).")
    return inside


def array_map(values: np.ndarray, grid: GridSpec, study_area: CellMask | np.ndarray | None = None,
              tile_shape: tuple[int, int] | None = None) -> MapSource:
    """A map held in a (rows, cols) array (NaN = nodata), read in tiles (default: strips of about a million cells)."""
    values = np.asarray(values)
    if values.shape != grid.shape:
        raise InputError(f"The map has shape {values.shape}; expected {grid.shape}.")
    tile_shape = tile_shape or (max(1, DEFAULT_WINDOW_CELLS // grid.cols), grid.cols)
    return MapSource(grid, tile_shape, lambda window: values[window.toslices()].astype(np.float64), study_area)


def as_map_source(values: np.ndarray | MapSource, grid: GridSpec,
                  study_area: CellMask | np.ndarray | None = None) -> MapSource:
    """``values`` as a map source on ``grid`` (an array is wrapped), limited to the study area if one is given."""
    if isinstance(values, MapSource):
        if values.grid.shape != grid.shape:
            raise InputError(f"The map has shape {values.grid.shape}; expected {grid.shape}.")
        return values.within(study_area)
    return array_map(values, grid, study_area)


@contextmanager
def raster_map(path: str, band: int = 1, *, study_area: CellMask | np.ndarray | None = None,
               valid_in: Sequence[str] = (), tile_shape: tuple[int, int] | None = None,
               window_cells: int = DEFAULT_WINDOW_CELLS) -> Iterator[MapSource]:
    """Band ``band`` of the raster file ``path`` as a map source, open while the block runs.

    Cells that are nodata in band 1 of any raster of ``valid_in`` (on the same grid) are nodata too, so several
    maps can be scored on the cells where all have a value. Tiles default to whole blocks of the file, grouped up
    to about ``window_cells`` cells.
    """
    grid = read_grid_spec(path)
    with ExitStack() as stack:
        src = stack.enter_context(open_map(path))
        if not 1 <= band <= src.count:
            raise InputError(f"The map has {src.count} band(s); band {band} does not exist.")
        others = [stack.enter_context(open_map(other)) for other in valid_in]

        def read(window: Window) -> np.ndarray:
            values = _read_band(src, band, window)
            for other in others:
                values[~np.isfinite(_read_band(other, 1, window))] = np.nan
            return values

        shape = tile_shape or _block_tiles(src.block_shapes[band - 1], src.width, window_cells)
        yield MapSource(grid, shape, read, study_area, src.descriptions[band - 1] or f"band {band}", src.tags())


def _read_band(src, band: int, window: Window) -> np.ndarray:
    """One window of a band as float64 with NaN at nodata (non-finite values are left for the caller)."""
    return src.read(band, window=window, masked=True).astype(np.float64).filled(np.nan)


def _block_tiles(block: tuple[int, int], cols: int, window_cells: int) -> tuple[int, int]:
    """Tiles of whole blocks of about ``window_cells`` cells: squares of blocks, or runs of whole strips."""
    block_rows, block_cols = block
    if block_cols < cols:
        side = max(1, math.isqrt(max(1, window_cells // (block_rows * block_cols))))
        return side * block_rows, side * block_cols
    return max(block_rows, (window_cells // cols) // block_rows * block_rows), cols


@dataclass
class Summary:
    """Count, smallest and largest of the valid values of a map."""

    count: int = 0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Take in a window's valid (finite) values."""
        if values.size:
            self.count += int(values.size)
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))


def valid_values(block: np.ndarray) -> np.ndarray:
    """The finite values of a window, flattened."""
    return block[~np.isnan(block)]


class LevelCounts:
    """Exact counts of the values below and equal to each of a few levels, added window by window."""

    def __init__(self, levels: np.ndarray) -> None:
        self.levels = np.unique(np.asarray(levels, dtype=np.float64))
        self._strict = np.zeros(self.levels.size + 1, dtype=np.int64)  # by the first level ≥ value, value ≠ it
        self._equal = np.zeros(self.levels.size, dtype=np.int64)
        self.total = 0

    def add(self, values: np.ndarray) -> None:
        """Take in valid values."""
        values = np.asarray(values, dtype=np.float64).ravel()
        position = np.searchsorted(self.levels, values, "left")
        equal = np.zeros(values.size, dtype=bool)
        if self.levels.size:
            equal = self.levels[np.minimum(position, self.levels.size - 1)] == values
        self._strict += np.bincount(position[~equal], minlength=self.levels.size + 1)
        self._equal += np.bincount(position[equal], minlength=self.levels.size)
        self.total += values.size

    def at(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values below, values equal to) each of ``levels``, which must be among this counter's levels."""
        index = np.searchsorted(self.levels, levels)
        if not np.array_equal(self.levels[np.minimum(index, self.levels.size - 1)], levels):
            raise ValueError("LevelCounts.at: a level was not counted.")
        at_or_below = self._strict[:-1] + self._equal  # values whose first level at or above them is level i
        below = np.r_[0, np.cumsum(at_or_below)[:-1]] + self._strict[:-1]
        return below[index], self._equal[index]


class DistinctValues:
    """The distinct values seen and their counts, until there are more than ``cap`` of them (then ``overflow``)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.values = np.empty(0)
        self.counts = np.empty(0, dtype=np.int64)
        self.overflow = False

    def add(self, values: np.ndarray) -> None:
        """Take in valid values; past ``cap`` distinct values, give up and free the memory."""
        if self.overflow or not values.size:
            return
        distinct, counts = np.unique(values, return_counts=True)
        position = np.searchsorted(self.values, distinct)
        known = position < self.values.size
        known[known] = self.values[position[known]] == distinct[known]
        self.counts[position[known]] += counts[known]
        new = ~known
        if self.values.size + int(new.sum()) > self.cap:
            self.overflow, self.values, self.counts = True, np.empty(0), np.empty(0, dtype=np.int64)
            return
        self.values = np.insert(self.values, position[new], distinct[new])
        self.counts = np.insert(self.counts, position[new], counts[new])


@dataclass
class _Bracket:
    """Values in [low, high) of which ``below`` valid values are smaller; it holds the ranks ``targets``."""

    low: float
    high: float
    below: int
    count: int
    targets: np.ndarray  # indices into the wanted ranks


def order_statistics(source: MapSource, ranks: np.ndarray, summary: Summary, *, bins: int = HISTOGRAM_BINS,
                     collect: int = COLLECT_VALUES, is_cancelled: CancelFn = None,
                     progress: ProgressFn = None) -> tuple[np.ndarray, np.ndarray]:
    """The valid values at ascending 0-based ``ranks`` (exact), and for each how many valid values are smaller.

    ``summary`` is the map's :class:`Summary`. Each pass over the map takes a histogram (with the smallest and
    largest value of every bin) of the brackets still too crowded to collect, and collects the values of the
    others: a map of up to ``collect`` cells takes one pass, a larger one usually two.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    wanted = np.unique(ranks)
    if wanted.size and not 0 <= wanted[0] <= wanted[-1] < summary.count:
        raise ValueError(f"Ranks must lie in 0 … {summary.count - 1}.")
    found, less = np.empty(wanted.size), np.empty(wanted.size, dtype=np.int64)
    brackets = [_Bracket(summary.low, float(np.nextafter(summary.high, math.inf)), 0, summary.count,
                         np.arange(wanted.size))] if wanted.size else []
    passes = 0
    while brackets:
        gather, split, room = [], [], collect
        for bracket in brackets:
            if bracket.count <= room:
                gather.append(bracket)
                room -= bracket.count
            else:
                split.append(bracket)
        # the bin [low, next float) always splits off the smallest value, so every pass narrows every bracket
        edges = [np.unique(np.r_[np.clip(np.linspace(b.low, b.high, max(2, bins // len(split)) + 1), b.low, b.high),
                                 np.nextafter(b.low, math.inf)]) for b in split]
        counts, lows, highs, pieces = _histogram_pass(source, edges, gather, is_cancelled,
                                                      None if passes else progress)
        passes += 1
        brackets = []
        for bracket, values in zip(gather, pieces):
            values = np.sort(values)
            local = wanted[bracket.targets] - bracket.below
            found[bracket.targets] = values[local]
            less[bracket.targets] = bracket.below + np.searchsorted(values, values[local], "left")
        offset = 0
        for bracket, edge in zip(split, edges):
            count, low, high = (part[offset:offset + edge.size - 1] for part in (counts, lows, highs))
            offset += edge.size - 1
            cumulative = np.cumsum(count)
            bin_of = np.searchsorted(cumulative, wanted[bracket.targets] - bracket.below, "right")
            for j in np.unique(bin_of):
                targets = bracket.targets[bin_of == j]
                below = bracket.below + (int(cumulative[j - 1]) if j else 0)
                if low[j] == high[j]:  # one value fills the bin: resolved, however many cells hold it
                    found[targets], less[targets] = low[j], below
                else:
                    brackets.append(_Bracket(float(low[j]), float(np.nextafter(high[j], math.inf)), below,
                                             int(count[j]), targets))
        brackets.sort(key=lambda b: b.low)
    index = np.searchsorted(wanted, ranks)
    return found[index], less[index]


def _histogram_pass(source: MapSource, edges: list[np.ndarray], gather: list[_Bracket], is_cancelled: CancelFn,
                    progress: ProgressFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """One pass: per bin of ``edges`` (bins [e_i, e_i+1) of each bracket) the count, smallest and largest value;
    and the values of each bracket in ``gather``."""
    bin_low = np.concatenate([edge[:-1] for edge in edges]) if edges else np.empty(0)
    bin_high = np.concatenate([edge[1:] for edge in edges]) if edges else np.empty(0)
    counts = np.zeros(bin_low.size, dtype=np.int64)
    lows, highs = np.full(bin_low.size, np.inf), np.full(bin_low.size, -np.inf)
    pieces: list[list[np.ndarray]] = [[] for _ in gather]
    gather_low = np.array([bracket.low for bracket in gather])
    gather_high = np.array([bracket.high for bracket in gather])
    for _, block in source.scan(is_cancelled, progress):
        values = np.sort(valid_values(block))
        if bin_low.size:
            first = np.searchsorted(values, bin_low, "left")
            end = np.searchsorted(values, bin_high, "left")
            filled = end > first
            counts += end - first
            lows[filled] = np.minimum(lows[filled], values[first[filled]])
            highs[filled] = np.maximum(highs[filled], values[end[filled] - 1])
        ends = zip(np.searchsorted(values, gather_low, "left"), np.searchsorted(values, gather_high, "left"))
        for piece, (first, end) in zip(pieces, ends):
            if end > first:
                piece.append(values[first:end].copy())  # a copy, so the window's array is freed
    return counts, lows, highs, [np.concatenate(piece) if piece else np.empty(0) for piece in pieces]


# ------------------------------------------------------------------------------------------- connected zones

ZoneFn = Callable[[np.ndarray], np.ndarray]
TileFn = Callable[[Window, np.ndarray, np.ndarray], None]


def tile_labels(source: MapSource, in_zone: ZoneFn, connectivity: int = 8, *, is_cancelled: CancelFn = None,
                progress: ProgressFn = None) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """Each tile with its values and its zone cells labelled by :func:`scipy.ndimage.label` (``connectivity`` 4
    or 8), numbered on from the previous tiles' labels (0 = not in a zone): the same labels on every call.

    ``in_zone`` turns a tile's values into a bool mask of the cells that belong to zones.
    """
    from scipy import ndimage

    if connectivity not in (4, 8):
        raise ValueError(f"Connectivity is 4 or 8, not {connectivity}.")
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    offset = 0
    for window, block in source.scan(is_cancelled, progress):
        labels, count = ndimage.label(in_zone(block), structure=structure, output=np.int64)
        labels[labels > 0] += offset
        offset += count
        yield window, block, labels


@dataclass(frozen=True)
class Zones:
    """Connected zones of a map labelled tile by tile: the zone (1 … ``count``) of every tile label, numbered in
    the raster order of the zones' first cells, as :func:`scipy.ndimage.label` numbers them on the whole map."""

    zone_of_label: np.ndarray  # index: tile label of :func:`tile_labels` (0: no zone → 0)
    count: int


def label_zones(source: MapSource, in_zone: ZoneFn, connectivity: int = 8, on_tile: TileFn | None = None, *,
                is_cancelled: CancelFn = None, progress: ProgressFn = None) -> Zones:
    """Connected zones of the cells where ``in_zone`` holds, labelled one tile at a time.

    Each tile is labelled alone (:func:`tile_labels`); labels that touch across a tile edge (or corner, with
    8-connectivity) are joined as the edges of a graph whose connected components
    (:func:`scipy.sparse.csgraph.connected_components`) are the zones. ``on_tile(window, values, labels)`` sees
    every tile, so callers can total statistics per tile label and add them up per zone afterwards. Memory: a
    few tiles, two rows of labels and a few numbers per tile label.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    grid = source.grid
    above = np.zeros(grid.cols, dtype=np.int64)  # labels of the row of cells above the current row of tiles
    top, bottom = np.zeros(grid.cols, dtype=np.int64), np.zeros(grid.cols, dtype=np.int64)
    left = np.zeros(source.tile_shape[0], dtype=np.int64)  # labels of the last column of the tile to the left
    firsts: list[np.ndarray] = []  # flat index of the first cell of each tile label, in label order
    pairs: list[np.ndarray] = []
    labels_so_far = 0
    for window, block, labels in tile_labels(source, in_zone, connectivity, is_cancelled=is_cancelled,
                                             progress=progress):
        row, col = window.row_off, window.col_off
        if on_tile is not None:
            on_tile(window, block, labels)
        flat = labels.ravel()
        where = np.flatnonzero(flat)
        if where.size:  # ndimage numbers labels by first cell in raster order, so a new label exceeds all before
            ids = flat[where]
            new = np.r_[True, ids[1:] > np.maximum.accumulate(ids)[:-1]]
            firsts.append((row + where[new] // labels.shape[1]) * grid.cols + col + where[new] % labels.shape[1])
            labels_so_far = int(ids.max())
        if col:
            pairs.append(_touching(left[:labels.shape[0]], labels[:, 0], connectivity))
        left[:labels.shape[0]] = labels[:, -1]
        top[col:col + labels.shape[1]] = labels[0]
        bottom[col:col + labels.shape[1]] = labels[-1]
        if col + labels.shape[1] == grid.cols:  # the row of tiles is done: join it to the row above
            if row:
                pairs.append(_touching(above, top, connectivity))
            above, bottom = bottom, above
            check_memory(_BYTES_PER_LABEL * labels_so_far, f"Joining {labels_so_far} zone pieces across tiles",
                         "Take fewer target classes, so the zones hold fewer cells and make fewer pieces")
    edges = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), dtype=np.int64)
    graph = coo_matrix((np.ones(edges.shape[1], dtype=np.int8), (edges[0], edges[1])),
                       shape=(labels_so_far + 1, labels_so_far + 1))
    component = connected_components(graph, directed=False)[1][1:]  # per tile label 1, 2, …
    first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    # a zone's number follows its first cell in raster order: the earliest first cell of its pieces
    order = np.lexsort((first, component))
    starts = np.r_[True, np.diff(component[order]) != 0] if order.size else np.zeros(0, dtype=bool)
    components, earliest = component[order][starts], first[order][starts]
    number = np.zeros(component.max() + 1 if component.size else 0, dtype=np.int64)
    number[components[np.argsort(earliest)]] = np.arange(1, components.size + 1)
    return Zones(np.r_[0, number[component]], int(components.size))


_BYTES_PER_LABEL = 8 * 16  # per tile label: first cell, edges, graph and components, and the callers' statistics


def _touching(before: np.ndarray, after: np.ndarray, connectivity: int) -> np.ndarray:
    """(2, n) pairs of labels that touch across an edge between two lines of cells (side by side, then diagonal
    neighbours with 8-connectivity); 0 (no zone) is left out."""
    candidates = [(before, after)]
    if connectivity == 8:
        candidates += [(before[:-1], after[1:]), (before[1:], after[:-1])]
    found = np.concatenate([np.stack([a, b]) for a, b in candidates], axis=1)
    return found[:, (found[0] > 0) & (found[1] > 0)]
