"""Training samples from deposits: labels, negatives, spatial split, leakage check, windows, augmentation.

Rules (each recorded in the manifest of the training set):

* **Positives** (zhang2021): every cell whose centre lies within ``positive_radius`` (Euclidean, map units)
  of a deposit's cell centre. The default radius is one cell's diagonal, which gives exactly the deposit cell
  and its 8 neighbours (3×3) for square pixels; a radius of 2.5 cells gives the 21-cell disc. Two deposits
  in one cell count once.
* **Negatives**, per split: known barren points plus random cells, ``negative_ratio`` × the split's positives
  per repeat (random cells fill what the split's barren points leave), so train, validation and test each hold
  the chosen ratio. A split's random cells come from its own region (below), never on a positive cell, within
  ``exclusion_buffer`` map units of a deposit's cell centre, or where their window would overlap a window of
  another split. Repeat r draws its random cells with ``default_rng(seed + r)`` (validation, test, then train);
  positives and barren points are shared by every repeat (``repeat`` = −1).
* **Windows** (:mod:`.windows`): a sample at cell (r, c) owns the window of rows r − p//2 … r − p//2 + p − 1
  (columns alike), so for odd p the cell is the centre. Window cells outside the grid or on nodata read
  ``WINDOW_FILL`` (0.0, the mean of a z-scored band), so every valid cell can be a sample, at the grid edge
  too. Cells outside the study area or on nodata are never sampled, crops included (their values may still
  appear inside windows). ``x_vector`` is the window's cell (p//2, p//2): the sample's own cell for unaugmented
  windows.
* **Spatial split** before augmentation: by deposit groups (single-linkage clusters of deposit cells at the
  split distance; a cell belongs to the split of its nearest deposit, a tie between equidistant deposits broken
  by the search tree, the same way every run) or by square blocks of that side (blocks without deposits are
  assigned at random in the split fractions). A deposit's positives all go with it.
  **Fallback** when the deposits form fewer groups or blocks than there are splits (few, clustered deposits):
  regroup them into the finest groups whose positive windows cannot overlap (Chebyshev gap ≥ patch + 2 × the
  positive reach, in cells); if still too few, drop the validation split (training then runs its fixed epochs
  and the test split keeps a held-out score), then the test split. What was done is a note and
  ``manifest["split"]["fallback"]``. No validation or test window may overlap a training window: overlapping
  positives stop the run with a message; overlapping barren points are dropped (the validation/test one if it
  overlaps a training positive, otherwise the training one) and counted; :func:`check_no_leakage` verifies the
  result.
* **Block labels** (``labelling="blocks"``, gao2022 and he2024; rules in :mod:`.blocks`): instead of the cells
  above, the grid is cut into blocks of ``block_size`` cells every ``block_stride`` cells; a block holding a deposit
  is positive, every other block (``block_negatives="all"``) or only barren-verified blocks (``"barren"``) are
  negatives, the rest unknown and never sampled. A block's sample sits at its centre cell (kind ``block``, shared
  by every repeat), so its window is the p×p window centred on the block: the block itself when p = block size
  (gao2022's 256-cell blocks), its central part when p is smaller (he2024 trimmed blocks centrally to 32×32), the
  block and a margin when p is larger. Windows are never resized: one window cell stays one stack cell, the scale
  prediction reads. ``x_vector`` stays the window's centre cell, the same input per-cell prediction gives a vector
  model (a block mean would be smoother than any vector it is later applied to). The positive radius, negative
  ratio and repeats are not used; the positive reach of the split (the radius above) is half the block diagonal.
* **Augmentation** (see :mod:`.augment`) is applied to the training split only; crops that overlap a
  validation/test window or whose centre leaves valid data or the study area are dropped and counted.

Generators: repeat r uses ``default_rng(seed + r)``; the split ``default_rng([seed, 1])``; augmentation
``default_rng([seed, 2])``. Arrays stay float32 and every window is written once into a preallocated array.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
from scipy import ndimage
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial import cKDTree

from .. import areas
from ..bands import ArrayBands, BandSource, read_padded_windows, valid_cells
from ..errors import InputError
from ..grid import GridSpec
from ..memory import check_memory
from ..outputs import atomic_path
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from . import augment as aug
from . import blocks as blk
from .nearest import DepositCells, cells_of
from .stored_arrays import StoredArray, stored_member
from .windows import WINDOW_FILL

FORMAT = "deepprospect-training-set"
SPLITS = ("train", "validation", "test")
KINDS = ("deposit", "neighbour", "barren", "random", "crop", "flip", "noise", "smote", "block")
UNAUGMENTED = (*KINDS[:4], "block")
LABELLING_MODES = ("cells", "blocks")
SHARED = -1  # repeat of samples used by every repeat (positives, barren points)
SPLIT_METHODS = ("groups", "blocks")
ARRAYS = ("x_patch", "x_vector", "y", "split", "kind", "repeat", "centre_xy", "window_rc")
NO_WINDOW = np.iinfo(np.int32).min  # window_rc of SMOTE rows, which have no window on the grid
_RADIUS_TOLERANCE = 1e-9
_CANCEL_EVERY = 2000
_CHUNK_VALUES = 1 << 24  # window values flipped per step (64 MB of float32) between cancel checks
# Bytes per grid cell of the sampling's grid-sized arrays at their peak (valid cells, split region, negative
# candidates, the cells near other splits' windows), exclusion buffer or not; measured with tracemalloc: 6.0.
# Nearest deposits and draws work a band of rows at a time, so they add a few MB whatever the grid.
_GRID_BYTES_PER_CELL = 7
_BAND_CELLS = 1 << 18  # cells per band of rows in grid-wide searches (about 12 MB of working arrays)
_AREA_BYTES_PER_CELL = 9  # block labels' summed-area table of the cells outside barren areas (int32 twice, bool)


@dataclass(frozen=True)
class LabelSettings:
    """Sampling and split settings. Distances in map units; 0 radius / split distance = automatic."""

    patch_size: int = 32
    positive_radius: float = 0.0
    negative_ratio: float = 1.0
    exclusion_buffer: float = 0.0
    n_repeats: int = 1
    split_method: str = "groups"
    split_distance: float = 0.0
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42
    labelling: str = "cells"
    block_size: int = 32
    block_stride: int = 0
    block_negatives: str = "all"

    def __post_init__(self) -> None:
        if self.patch_size < 1:
            raise InputError(f"The patch size must be at least 1 cell (got {self.patch_size}).")
        if self.positive_radius < 0 or self.exclusion_buffer < 0 or self.split_distance < 0:
            raise InputError("The positive radius, exclusion buffer and split distance must be 0 or more.")
        if self.negative_ratio < 0:
            raise InputError(f"The negative ratio must be 0 or more (got {self.negative_ratio}).")
        if self.n_repeats < 1:
            raise InputError(f"At least one repeat of the negatives is needed (got {self.n_repeats}).")
        if self.split_method not in SPLIT_METHODS:
            raise InputError(f"Unknown split method '{self.split_method}'; use one of {', '.join(SPLIT_METHODS)}.")
        v, t = self.validation_fraction, self.test_fraction
        if v < 0 or t < 0 or v + t >= 1:
            raise InputError(f"The validation ({v}) and test ({t}) fractions must be ≥ 0 and sum to less than 1.")
        if self.labelling not in LABELLING_MODES:
            raise InputError(f"Unknown labelling '{self.labelling}'; use one of {', '.join(LABELLING_MODES)}.")
        if self.block_negatives not in blk.BLOCK_NEGATIVES:
            raise InputError(f"Unknown block negatives '{self.block_negatives}'; use one of "
                             f"{', '.join(blk.BLOCK_NEGATIVES)}.")
        if self.block_size < 1 or not 0 <= self.block_stride <= self.block_size:
            raise InputError(f"The block size must be at least 1 cell and the block stride between 0 (= the block "
                             f"size) and the block size (got size {self.block_size}, stride {self.block_stride}); "
                             "a stride larger than the block would leave cells in no block.")

    @property
    def stride(self) -> int:
        """The block stride in cells (0 = the block size: blocks side by side)."""
        return self.block_stride or self.block_size

    @property
    def fractions(self) -> np.ndarray:
        """Target fractions of train, validation and test."""
        return np.array([1 - self.validation_fraction - self.test_fraction, self.validation_fraction,
                         self.test_fraction])

    def radius(self, grid: GridSpec) -> float:
        """The positive radius in map units (default: one cell's diagonal → 3×3); with block labels, the farthest
        a positive block's centre cell lies from its deposit (half the block's diagonal)."""
        if self.labelling == "blocks":
            return blk.block_reach(self.block_size, grid.pixel_width, grid.pixel_height)
        return self.positive_radius or math.hypot(grid.pixel_width, grid.pixel_height)

    def distance(self, grid: GridSpec) -> float:
        """The split distance: group linkage distance or block side (default from the patch size).

        The default group distance keeps windows of positives of different groups apart:
        √2 · (patch + 2) cells + 2 · radius. Blocks default to four times that.
        """
        if self.split_distance:
            return self.split_distance
        cell = max(grid.pixel_width, grid.pixel_height)
        auto = math.sqrt(2) * (self.patch_size + 2) * cell + 2 * self.radius(grid)
        return auto if self.split_method == "groups" else 4 * auto


@dataclass
class TrainingSet:
    """Windows, vectors and labels of a training set, and its manifest (see the module docstring)."""

    x_patch: np.ndarray | StoredArray  # (n, bands, p, p) float32; StoredArray: left in the file
    x_vector: np.ndarray | StoredArray  # (n, bands) float32
    y: np.ndarray  # (n,) int8, 1 = deposit
    split: np.ndarray  # (n,) str: train / validation / test
    kind: np.ndarray  # (n,) str: one of KINDS
    repeat: np.ndarray  # (n,) int16: negative set, -1 = every set
    centre_xy: np.ndarray  # (n, 2) float64 map coordinates of the window's cell; NaN for SMOTE
    window_rc: np.ndarray  # (n, 2) int32 row, col of the window's upper-left cell (may be < 0); NO_WINDOW for SMOTE
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class _Samples:
    """Unaugmented samples as cell indices and codes."""

    rows: np.ndarray
    cols: np.ndarray
    label: np.ndarray
    split: np.ndarray
    kind: np.ndarray
    repeat: np.ndarray

    @staticmethod
    def concat(parts: Sequence[_Samples]) -> _Samples:
        return _Samples(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                          ("rows", "cols", "label", "split", "kind", "repeat")))

    def take(self, keep: np.ndarray) -> _Samples:
        return _Samples(self.rows[keep], self.cols[keep], self.label[keep], self.split[keep], self.kind[keep],
                        self.repeat[keep])

    @staticmethod
    def make(rows, cols, label: int, split, kind: str, repeat: int) -> _Samples:
        n = len(rows)
        return _Samples(np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.full(n, label, np.int8),
                        np.broadcast_to(np.asarray(split, np.int8), (n,)).copy(),
                        np.full(n, KINDS.index(kind), np.int8), np.full(n, repeat, np.int16))


# ---------------------------------------------------------------------------------------------- geometry


def disc_offsets(radius: float, pixel_width: float, pixel_height: float) -> np.ndarray:
    """(k, 2) (drow, dcol) of the cells whose centres lie within ``radius`` (Euclidean) of a cell centre."""
    reach = radius * (1 + _RADIUS_TOLERANCE)  # 0.3 // 0.1 is 2.0 in floating point: the tolerance keeps ring 3
    reach_r, reach_c = int(reach // pixel_height), int(reach // pixel_width)
    dr, dc = np.mgrid[-reach_r:reach_r + 1, -reach_c:reach_c + 1]
    inside = (dr * pixel_height) ** 2 + (dc * pixel_width) ** 2 <= radius**2 * (1 + _RADIUS_TOLERANCE)
    return np.column_stack([dr[inside], dc[inside]])


def point_cells(xy: np.ndarray, grid: GridSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, inside): the cell holding each point, and whether it is on the grid at all."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    cols = np.floor((xy[:, 0] - grid.x_min) / grid.pixel_width)
    rows = np.floor((grid.y_max - xy[:, 1]) / grid.pixel_height)
    inside = (cols >= 0) & (cols < grid.cols) & (rows >= 0) & (rows < grid.rows)
    return np.where(inside, rows, 0).astype(np.int64), np.where(inside, cols, 0).astype(np.int64), inside


def cell_xy(rows: np.ndarray, cols: np.ndarray, grid: GridSpec) -> np.ndarray:
    """(n, 2) map coordinates of cell centres."""
    return np.column_stack([grid.x_min + (np.asarray(cols) + 0.5) * grid.pixel_width,
                            grid.y_max - (np.asarray(rows) + 0.5) * grid.pixel_height])


def valid_windows(invalid: np.ndarray, patch_size: int) -> np.ndarray:
    """Per cell: whether its window (see the module docstring) lies wholly inside the grid with no invalid cell."""
    # scipy centres a size-p filter at p // 2, the same convention as the windows; outside the grid is invalid.
    return ~ndimage.maximum_filter(invalid.astype(np.uint8), size=patch_size, mode="constant", cval=1).astype(bool)


def polygon_cells(polygons: Sequence[Mapping], grid: GridSpec) -> np.ndarray:
    """Cells whose centre is inside a polygon (GeoJSON-like geometries, grid CRS); none without polygons."""
    return np.asarray(areas.PolygonCells(polygons, grid))


def study_area_mask(polygons: Sequence[Mapping], grid: GridSpec, holes: Sequence[Mapping] = ()) -> np.ndarray:
    """Cells whose centre is inside a polygon and not inside a hole (GeoJSON-like geometries, grid CRS), as one
    (rows, cols) bool array (:func:`.areas.study_area` gives them window by window)."""
    return np.asarray(areas.study_area(polygons, grid, holes))


# ---------------------------------------------------------------------------------------------- leakage


def window_overlaps(origins: np.ndarray, others: np.ndarray, patch_size: int) -> np.ndarray:
    """Per row of ``origins`` (n, 2): whether its p×p window shares a cell with any window in ``others``."""
    origins, others = np.asarray(origins).reshape(-1, 2), np.asarray(others).reshape(-1, 2)
    if len(origins) == 0 or len(others) == 0:
        return np.zeros(len(origins), dtype=bool)
    counts = cKDTree(others).query_ball_point(origins, r=patch_size - 0.5, p=np.inf, return_length=True)
    return np.asarray(counts) > 0


def leaking_windows(window_rc: np.ndarray, split: np.ndarray, patch_size: int) -> np.ndarray:
    """Validation/test windows that overlap a training window (rows without a window, SMOTE, are ignored)."""
    split = np.asarray(split)
    train = split == (SPLITS[0] if split.dtype.kind == "U" else 0)
    located = (np.asarray(window_rc) != NO_WINDOW).all(axis=1)
    leaks = np.zeros(len(split), dtype=bool)
    others = ~train & located
    leaks[others] = window_overlaps(window_rc[others], window_rc[train & located], patch_size)
    return leaks


def check_no_leakage(window_rc: np.ndarray, split: np.ndarray, patch_size: int) -> None:
    """Raise :class:`InputError` if any validation/test window overlaps a training window."""
    count = int(leaking_windows(window_rc, split, patch_size).sum())
    if count:
        raise InputError(f"{count} validation/test window(s) overlap training windows: the split leaks.")


# ---------------------------------------------------------------------------------------------- split


@dataclass
class _Split:
    """Split of each deposit cell and of every grid cell (a negative takes its cell's), and the manifest record."""

    deposit: np.ndarray  # (deposits,) int8
    region: np.ndarray  # (rows, cols) int8
    record: dict


def _assign_units(units: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> dict:
    """Split of each unit (group or block) holding deposits, balancing deposit counts to the fractions.

    Units go largest first (ties in random order) to the split furthest below its target, except that
    once only as many units remain as needed splits are empty, each goes to an empty split. The caller
    ensures there are at least as many units as splits with a positive fraction.
    """
    ids, weights = np.unique(units, return_counts=True)
    needed = [s for s in range(3) if fractions[s] > 0]
    order = np.lexsort((rng.permutation(len(ids)), -weights))
    target, have, filled = fractions * weights.sum(), np.zeros(3), np.zeros(3, dtype=bool)
    result = {}
    for position, unit in enumerate(order):
        empty = [s for s in needed if not filled[s]]
        choices = empty if len(empty) >= len(order) - position else needed
        s = max(choices, key=lambda k: target[k] - have[k])
        result[int(ids[unit])] = s
        have[s] += weights[unit]
        filled[s] = True
    return result


def _linkage_groups(points: np.ndarray, distance: float, metric: str = "euclidean") -> np.ndarray:
    """Single-linkage cluster of each point: points of different clusters are more than ``distance`` apart."""
    if len(points) == 1:
        return np.ones(1, dtype=np.int64)
    return fcluster(linkage(points, "single", metric=metric), t=distance, criterion="distance")


def _window_groups(deposit_rc: np.ndarray, grid: GridSpec, settings: LabelSettings) -> np.ndarray:
    """The finest deposit groups whose positive windows cannot overlap across groups.

    Deposits of different groups are at least patch + 2 × the positive reach cells apart in rows or in
    columns, so their positives are at least a patch apart and their windows share no cell.
    """
    reach = np.abs(disc_offsets(settings.radius(grid), grid.pixel_width, grid.pixel_height)).max(axis=0)
    gap = settings.patch_size + 2 * reach  # (rows, cols) in cells
    return _linkage_groups(deposit_rc / gap, 1.0 - 1e-9, "chebyshev")


def _blocks(grid: GridSpec, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Block row of each grid row and block column of each grid column (by cell centre; blocks of ``distance``)."""
    by = ((np.arange(grid.rows) + 0.5) * grid.pixel_height // distance).astype(np.int64)
    bx = ((np.arange(grid.cols) + 0.5) * grid.pixel_width // distance).astype(np.int64)
    return by, bx


def _row_bands(shape: tuple[int, int]) -> Iterator[slice]:
    """Bands of whole rows of about :data:`_BAND_CELLS` cells of a (rows, cols) grid, top to bottom: grid-wide work
    a band at a time."""
    rows, cols = shape
    step = max(1, _BAND_CELLS // cols)
    return (slice(row, min(row + step, rows)) for row in range(0, rows, step))


def _band_cells(grid: GridSpec) -> Iterator[tuple[slice, np.ndarray]]:
    """Per band of rows: (rows, (band cells, 2) row/col of its cells in row-major order)."""
    for rows in _row_bands(grid.shape):
        yield rows, cells_of(rows, slice(0, grid.cols))


def _nearest_deposit_region(deposit_rc: np.ndarray, deposit_split: np.ndarray, grid: GridSpec) -> np.ndarray:
    """(rows, cols) split of the nearest deposit cell (Euclidean, map units) of every cell, a band of rows at a
    time (a tree of the deposit cells, so memory holds one band of distances, not the grid's)."""
    region = np.empty(grid.shape, dtype=np.int8)
    deposits = DepositCells(deposit_rc, grid)
    for rows, cells in _band_cells(grid):
        region[rows] = deposit_split[deposits.nearest(cells)[1]].reshape(-1, grid.cols)
    return region


def _fallback(units: np.ndarray, deposit_rc: np.ndarray, grid: GridSpec, settings: LabelSettings,
              notes: list) -> tuple[np.ndarray, str, np.ndarray, dict]:
    """Too few units for the splits: regroup at the window-separating gap, then drop validation, then test.

    Returns the units, the method used, the fractions used and the manifest record of what was done.
    """
    what = "deposit groups" if settings.split_method == "groups" else "spatial blocks with deposits"
    found, needed = len(np.unique(units)), int((settings.fractions > 0).sum())
    reason = (f"the deposits form {found} {what} at the split distance {settings.distance(grid):g}, fewer than "
              f"the {needed} splits asked for")
    steps, method = [], settings.split_method
    finer = _window_groups(deposit_rc, grid, settings)
    if len(np.unique(finer)) > found:
        units, method = finer, "groups"
        steps.append(f"regrouped into {len(np.unique(finer))} deposit groups only as far apart as keeps their "
                     "windows from overlapping, so held-out scores are more optimistic than at the split distance")
    fractions, dropped = settings.fractions.copy(), []
    for s, consequence in ((1, "training cannot stop early and runs every epoch"),
                           (2, "there is no held-out test score")):
        if len(np.unique(units)) < (fractions > 0).sum() and fractions[s] > 0:
            fractions[s] = 0.0
            dropped.append(SPLITS[s])
            steps.append(f"{SPLITS[s]} split dropped: {consequence}")
    fractions /= fractions.sum()
    notes.append(f"Split fallback: {reason}; " + "; ".join(steps) + ".")
    record = {"reason": reason, "steps": steps, "method_used": method, "dropped_splits": dropped,
              "fractions_used": dict(zip(SPLITS, fractions.round(6).tolist()))}
    return units, method, fractions, record


def _split(deposit_rc: np.ndarray, grid: GridSpec, settings: LabelSettings, rng: np.random.Generator,
           notes: list) -> _Split:
    """Assign deposits, then every cell, to train / validation / test (see the module docstring)."""
    distance = settings.distance(grid)
    by, bx = _blocks(grid, distance)
    per_row = int(bx[-1]) + 1
    if settings.split_method == "groups":
        units = _linkage_groups(cell_xy(deposit_rc[:, 0], deposit_rc[:, 1], grid), distance)
    else:
        units = by[deposit_rc[:, 0]] * per_row + bx[deposit_rc[:, 1]]
    method, fractions, fallback = settings.split_method, settings.fractions, None
    if len(np.unique(units)) < (fractions > 0).sum():
        units, method, fractions, fallback = _fallback(units, deposit_rc, grid, settings, notes)
    assignment = _assign_units(units, fractions, rng)
    deposit_split = np.array([assignment[int(u)] for u in units], dtype=np.int8)
    if method == "groups":
        region = _nearest_deposit_region(deposit_rc, deposit_split, grid)
    else:
        block_split = rng.choice(3, size=(int(by[-1]) + 1) * per_row, p=fractions).astype(np.int8)
        for unit, s in assignment.items():
            block_split[unit] = s
        region = np.empty(grid.shape, dtype=np.int8)
        for rows in _row_bands(grid.shape):
            region[rows] = block_split[by[rows, None] * per_row + bx[None, :]]
    record = {"method": settings.split_method, "distance": distance,
              "fractions": dict(zip(SPLITS, settings.fractions.round(6).tolist())),
              "units_with_deposits": len(assignment), "fallback": fallback,
              "leakage_check": "no validation/test window overlaps a training window"}
    return _Split(deposit_split, region, record)


# ---------------------------------------------------------------------------------------------- sampling


def _deposit_cells(xy: np.ndarray, grid: GridSpec, allowed: np.ndarray, notes: list, what: str) -> np.ndarray:
    """Unique (row, col) cells of points on the grid, in valid data and in the study area; notes the rest."""
    rows, cols, inside = point_cells(xy, grid)
    usable = inside.copy()
    usable[inside] = allowed[rows[inside], cols[inside]]
    if (~inside).sum():
        notes.append(f"{int((~inside).sum())} {what} outside the stack grid were skipped.")
    if (inside & ~usable).sum():
        notes.append(f"{int((inside & ~usable).sum())} {what} on nodata or outside the study area were skipped.")
    cells = np.column_stack([rows[usable], cols[usable]])
    unique = np.unique(cells, axis=0) if len(cells) else cells.reshape(0, 2)
    if len(unique) < len(cells):
        notes.append(f"{len(cells) - len(unique)} {what} shared a cell with another and were counted once.")
    return unique


def _positives(deposit_rc, grid, radius, allowed, split_of_deposit) -> tuple[_Samples, int]:
    """Disc cells around deposits (deposit cell first), each once; number of allowed cells dropped."""
    offsets = disc_offsets(radius, grid.pixel_width, grid.pixel_height)
    offsets = offsets[np.argsort((offsets**2).sum(axis=1), kind="stable")]  # (0, 0) first → kind deposit
    rows = (deposit_rc[None, :, 0] + offsets[:, :1]).ravel()
    cols = (deposit_rc[None, :, 1] + offsets[:, 1:]).ravel()
    owner = np.tile(np.arange(len(deposit_rc)), len(offsets))
    on_grid = (rows >= 0) & (rows < grid.rows) & (cols >= 0) & (cols < grid.cols)
    rows, cols, owner = rows[on_grid], cols[on_grid], owner[on_grid]
    _, first = np.unique(rows * grid.cols + cols, return_index=True)
    first.sort()
    rows, cols, owner = rows[first], cols[first], owner[first]
    ok = allowed[rows, cols]
    samples = _Samples.make(rows[ok], cols[ok], 1, split_of_deposit[owner[ok]], "neighbour", SHARED)
    samples.kind[first[ok] < len(deposit_rc)] = KINDS.index("deposit")
    return samples, int((~ok).sum())


def _negative_candidates(grid, allowed, positives, deposit_rc, buffer) -> np.ndarray:
    """Cells a negative may take: valid data, study area, not positive, beyond the buffer around deposits."""
    ok = allowed.copy()
    ok[positives.rows, positives.cols] = False
    if buffer > 0:
        deposits = DepositCells(deposit_rc, grid)
        for rows, cells in _band_cells(grid):
            ok[rows] &= deposits.beyond(cells, buffer).reshape(-1, grid.cols)
    return ok


def _barren(barren_xy, grid, allowed, candidates, region, notes) -> _Samples:
    """Barren points that may be negatives (each cell once, split of its cell); their cells leave ``candidates``."""
    barren_rc = _deposit_cells(barren_xy, grid, allowed, notes, "barren point(s)")
    rows, cols = barren_rc[:, 0], barren_rc[:, 1]
    usable = candidates[rows, cols]
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} barren point(s) on a positive cell or within the exclusion buffer "
                     "were skipped.")
    rows, cols = rows[usable], cols[usable]
    candidates[rows, cols] = False
    return _Samples.make(rows, cols, 0, region[rows, cols], "barren", SHARED)


def _resolve_leakage(samples: _Samples, patch_size: int, notes: list) -> _Samples:
    """Drop negatives (barren points) whose windows overlap windows of another split; fail if positives do."""
    origin = np.column_stack([samples.rows, samples.cols]) - patch_size // 2
    train, positive = samples.split == 0, samples.label == 1
    clash = window_overlaps(origin[positive & ~train], origin[positive & train], patch_size)
    if clash.any():
        raise InputError(
            f"{int(clash.sum())} validation/test positive window(s) overlap training positive windows: deposits in "
            "different splits are closer than the patch size. Raise the split distance (or use deposit groups "
            "with the automatic distance) or lower the patch size.")
    drop = np.zeros(len(samples.rows), dtype=bool)
    other_negative = ~positive & ~train
    drop[other_negative] = window_overlaps(origin[other_negative], origin[positive & train], patch_size)
    train_negative = ~positive & train
    drop[train_negative] = window_overlaps(origin[train_negative], origin[~train & ~drop], patch_size)
    if drop.any():
        notes.append(f"{int(drop.sum())} negative(s) whose windows overlapped a window of another split were "
                     f"dropped ({int(drop[~train].sum())} validation/test, {int(drop[train].sum())} training).")
    return samples.take(~drop)


class _CellPool:
    """The flat indices of the True cells of a mask given as bands of whole rows, without listing them all:
    ``cells(positions)`` equals ``np.flatnonzero(mask)[positions]`` in memory of one band at a time."""

    def __init__(self, bands: Iterable[np.ndarray]) -> None:
        self.bands: list[np.ndarray] = []  # each band packed, 1 bit per cell
        self.band_cells: list[int] = []
        counts = [0]
        for band in bands:
            self.bands.append(np.packbits(band.ravel()))
            self.band_cells.append(band.size)
            counts.append(int(band.sum()))
        self.starts = np.cumsum(counts)
        self.size = int(self.starts[-1])

    def cells(self, positions: np.ndarray) -> np.ndarray:
        """Flat cell indices of the given positions in the list of True cells (in the positions' order)."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty(len(positions), dtype=np.int64)
        band_of = np.searchsorted(self.starts, positions, side="right") - 1
        offset = 0
        for band, (bits, cells) in enumerate(zip(self.bands, self.band_cells)):
            here = np.flatnonzero(band_of == band)
            if len(here):
                true_cells = np.flatnonzero(np.unpackbits(bits, count=cells))
                out[here] = offset + true_cells[positions[here] - self.starts[band]]
            offset += cells
        return out


def _random_negatives(samples: _Samples, candidates: np.ndarray, region: np.ndarray, settings: LabelSettings,
                      notes: list) -> tuple[list[_Samples], list[dict]]:
    """Random negatives of every repeat: per split, the ratio × its positives less its barren points.

    A split draws from its region's candidates whose windows overlap no window of another split: validation
    and test first (away from training samples), then train (away from every validation/test sample).
    """
    p, n_cols = settings.patch_size, candidates.shape[1]

    def near(cells: np.ndarray) -> np.ndarray:
        """Cells whose window shares a cell with the window of one of these flat cells (Chebyshev ≤ p − 1)."""
        marked = np.zeros(candidates.shape, dtype=bool)
        marked.flat[cells] = True
        return ndimage.maximum_filter(marked, size=2 * p - 1, mode="constant", cval=False)

    positives = np.bincount(samples.split[samples.label == 1], minlength=3)
    barren = np.bincount(samples.split[samples.label == 0], minlength=3)
    wanted = np.maximum(0, np.round(settings.negative_ratio * positives).astype(np.int64) - barren)
    generators = [np.random.default_rng(settings.seed + r) for r in range(settings.n_repeats)]
    cells = samples.rows * n_cols + samples.cols
    drawn: dict[tuple[int, int], np.ndarray] = {}

    def draw(s: int, blocked: np.ndarray) -> None:
        pool = _CellPool(candidates[rows] & (region[rows] == s) & ~blocked[rows] for rows in _row_bands(region.shape))
        if wanted[s] > pool.size:
            notes.append(f"Only {pool.size} cells of the {SPLITS[s]} region can be random negatives; {wanted[s]} "
                         "were asked for per repeat, so that split holds fewer negatives than the ratio.")
        for r, rng in enumerate(generators):
            drawn[r, s] = pool.cells(rng.choice(pool.size, size=min(int(wanted[s]), pool.size), replace=False))

    near_train = near(cells[samples.split == 0])
    for s in (1, 2):
        draw(s, near_train)
    draw(0, near(np.concatenate([cells[samples.split != 0], *drawn.values()])))
    parts, repeats = [], []
    for r in range(settings.n_repeats):
        counts = {}
        for s in range(3):
            rows, cols = np.divmod(drawn[r, s], n_cols)
            parts.append(_Samples.make(rows, cols, 0, s, "random", r))
            counts[SPLITS[s]] = len(rows)
        repeats.append({"repeat": r, "seed": settings.seed + r, "random_negatives": sum(counts.values()),
                        "random_per_split": counts})
    return parts, repeats


# ---------------------------------------------------------------------------------------------- main


def build_training_set(
    stack: np.ndarray | BandSource,
    grid: GridSpec,
    band_names: Sequence[str],
    deposit_xy: np.ndarray,
    barren_xy: np.ndarray | None = None,
    study_area: areas.CellMask | np.ndarray | None = None,
    settings: LabelSettings | None = None,
    augment: aug.AugmentSettings | None = None,
    stack_tags: Mapping[str, object] | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    *,
    barren_area: areas.CellMask | np.ndarray | None = None,
) -> TrainingSet:
    """Label, split, window and augment samples from a (bands, rows, cols) stack with NaN as nodata.

    The stack is read window by window (see :mod:`.bands`): once to find the cells with a value in every band,
    then only the blocks holding the windows of the samples kept. The grid-sized masks of the sampling (valid
    cells, split region, negative candidates: about 7 bytes per cell) stay in memory, their size checked against
    the free memory first; nearest deposits and random draws are worked out a band of rows at a time.

    Args:
        stack: evidence stack: an array, or a band source such as a :class:`~.bands.RasterBands` of the
            stack file. Windows are float32.
        grid: the stack's grid; deposit/barren coordinates are in its CRS.
        band_names: one name per band.
        deposit_xy, barren_xy: (n, 2) point coordinates.
        study_area: optional (rows, cols) bool mask; cells outside are never sampled.
        settings, augment: see :class:`LabelSettings` and :class:`.augment.AugmentSettings`.
        stack_tags: metadata of the stack, copied into the manifest.
        barren_area: optional (rows, cols) bool mask of barren areas; with block labels and barren-only negatives
            a block wholly inside them is a negative (see :mod:`.blocks`).

    Raises:
        InputError: nothing usable remains, the split is impossible, a split would hold no negative, or positives
            would leak between splits.
        Cancelled: ``is_cancelled`` returned True.
    """
    settings, augment = settings or LabelSettings(), augment or aug.AugmentSettings()
    source = ArrayBands(stack) if isinstance(stack, np.ndarray) else stack
    if (source.rows, source.cols) != grid.shape or len(band_names) != source.count:
        raise InputError(f"The stack {(source.count, source.rows, source.cols)} does not match the grid "
                         f"{grid.shape} and {len(band_names)} band names.")
    p = settings.patch_size
    if p > min(grid.rows, grid.cols):
        raise InputError(f"The patch size ({p} cells) is larger than the stack ({grid.rows} × {grid.cols} cells); "
                         "choose a smaller patch size.")
    if settings.labelling == "blocks" and settings.block_size > min(grid.rows, grid.cols):
        raise InputError(f"The block size ({settings.block_size} cells) is larger than the stack ({grid.rows} × "
                         f"{grid.cols} cells); choose a smaller block size.")
    notes: list[str] = []
    for name, mask in (("study area", study_area), ("barren area", barren_area)):
        if mask is not None and tuple(np.shape(mask)) != grid.shape:  # np.shape: a windowed mask stays windowed
            raise InputError(f"The {name} mask {tuple(np.shape(mask))} does not match the grid {grid.shape}.")
    barren_blocks = barren_area is not None and settings.labelling == "blocks"
    per_cell = _GRID_BYTES_PER_CELL + (_AREA_BYTES_PER_CELL if barren_blocks else 0)
    check_memory(per_cell * grid.cell_count, f"Sampling on {grid.rows} × {grid.cols} cells",
                 "Use a stack with larger cells or a smaller extent")
    allowed = valid_cells(source, is_cancelled=is_cancelled)
    if study_area is not None:
        for rows in _row_bands(grid.shape):
            allowed[rows] &= np.asarray(study_area[rows, :], dtype=bool)  # a 0/1 array is a mask too
    report(progress, 5)

    deposit_rc = _deposit_cells(deposit_xy, grid, allowed, notes, "deposit(s)")
    if len(deposit_rc) == 0:
        raise InputError("No deposit lies on valid stack data inside the study area; check the deposit layer, its "
                         "CRS and the study area.")
    split = _split(deposit_rc, grid, settings, np.random.default_rng([settings.seed, 1]), notes)
    if settings.labelling == "blocks":
        samples, labelling = _block_samples(deposit_xy, deposit_rc, barren_xy, barren_area, grid, allowed, split,
                                            settings, notes)
        repeats: list[dict] = []
    else:
        samples, repeats = _cell_samples(deposit_xy, deposit_rc, barren_xy, grid, allowed, split, settings, notes,
                                         is_cancelled)
        labelling = {"mode": "cells"}
    _check_negatives(samples, settings)
    report(progress, 15)
    check_cancelled(is_cancelled)

    result = _assemble(source, grid, samples, allowed, settings, augment, notes, progress, is_cancelled)
    check_no_leakage(result.window_rc, result.split, p)
    result.manifest = _manifest(result, grid, band_names, settings, augment, stack_tags, repeats, notes,
                                len(deposit_rc), split.record, labelling)
    report(progress, 100)
    return result


def _deposits_on_grid(deposit_xy: np.ndarray, grid: GridSpec) -> np.ndarray:
    """(n, 2) cells of every deposit on the grid (also on nodata): the exclusion buffer is around each of them."""
    rows, cols, inside = point_cells(deposit_xy, grid)
    return np.column_stack([rows, cols])[inside]


def _cell_samples(deposit_xy, deposit_rc, barren_xy, grid, allowed, split, settings, notes,
                  is_cancelled) -> tuple[_Samples, list[dict]]:
    """Centre-cell samples: positives within the radius of deposits, barren points and random negatives."""
    p = settings.patch_size
    positives, dropped = _positives(deposit_rc, grid, settings.radius(grid), allowed, split.deposit)
    if dropped:
        notes.append(f"{dropped} neighbour cell(s) on nodata or outside the study area were not used.")
    check_cancelled(is_cancelled)

    candidates = _negative_candidates(grid, allowed, positives, _deposits_on_grid(deposit_xy, grid),
                                      settings.exclusion_buffer)
    parts = [positives]
    if barren_xy is not None and len(barren_xy):
        parts.append(_barren(barren_xy, grid, allowed, candidates, split.region, notes))
    samples = _resolve_leakage(_Samples.concat(parts), p, notes)
    random, repeats = _random_negatives(samples, candidates, split.region, settings, notes)
    return _Samples.concat([samples, *random]), repeats


def _block_samples(deposit_xy, deposit_rc, barren_xy, barren_area, grid, allowed, split, settings,
                   notes) -> tuple[_Samples, dict]:
    """Block samples (see :mod:`.blocks`): positive and negative blocks at their centre cells, and the record."""
    b, p = settings.block_size, settings.patch_size
    if settings.block_negatives == "barren" and (barren_xy is None or not len(barren_xy)) and barren_area is None:
        raise InputError("Barren-only block negatives need barren points or barren areas: give one of them, or "
                         "take every other block as a negative (block negatives 'all').")
    no_positives = _Samples.make([], [], 1, 0, "block", SHARED)
    candidates = _negative_candidates(grid, allowed, no_positives, _deposits_on_grid(deposit_xy, grid),
                                      settings.exclusion_buffer)
    barren_rc = (_deposit_cells(barren_xy, grid, allowed, notes, "barren point(s)")
                 if barren_xy is not None and len(barren_xy) else None)
    blocks = blk.label_blocks(allowed, b, settings.stride, settings.block_negatives, deposit_rc, split.deposit,
                              split.region, candidates, barren_rc, barren_area)
    if blocks.deposits_outside:
        notes.append(f"{blocks.deposits_outside} deposit(s) beyond the last block at the grid's right or bottom "
                     "edge lie in no block and were not used.")
    mixed = blocks.count(blk.MIXED)
    if mixed:
        notes.append(f"{mixed} block(s) holding deposits of different splits were dropped; raise the split "
                     "distance to keep them.")
    if p < b:
        notes.append(f"The patch size ({p}) is smaller than the block size ({b}): each window is the block's "
                     "central part, so a positive block's deposit may lie outside its window.")
    kept = np.flatnonzero((blocks.status == blk.POSITIVE) | (blocks.status == blk.NEGATIVE))
    samples = _Samples(blocks.rows[kept], blocks.cols[kept], (blocks.status[kept] == blk.POSITIVE).astype(np.int8),
                       blocks.split[kept], np.full(len(kept), KINDS.index("block"), np.int8),
                       np.full(len(kept), SHARED, np.int16))
    resolved = _resolve_leakage(samples, p, notes)
    positive = int(resolved.label.sum())
    record = {"mode": "blocks", "block_size": b, "block_stride": settings.stride,
              "negatives": settings.block_negatives,
              "rule": "positive = the block holds a deposit cell; negative = " + (
                  "every other usable block" if settings.block_negatives == "all" else
                  "a block holding a barren point or wholly inside barren areas") +
              ", its centre cell beyond the exclusion buffer; unknown blocks are never sampled; the window is the "
              "patch-size window centred on the block's centre cell (block row/col start + block_size // 2)",
              "blocks": {"total": len(blocks.status), "positive": positive, "negative": len(resolved.label) - positive,
                         "unknown": blocks.count(blk.UNKNOWN), "unusable": blocks.count(blk.UNUSABLE),
                         "dropped": mixed + len(samples.label) - len(resolved.label)}}
    return resolved, record


def _check_negatives(samples: _Samples, settings: LabelSettings) -> None:
    """Refuse a split that holds positives but no negative: nothing to learn or score against there."""
    positives = np.bincount(samples.split[samples.label == 1], minlength=3)
    negatives = np.bincount(samples.split[samples.label == 0], minlength=3)
    for s in np.flatnonzero((positives > 0) & (negatives == 0)):
        if settings.labelling == "blocks":
            fix = (f"no block of its region is a negative ({settings.block_negatives} negatives: "
                   + ("give barren points or barren areas there, or take every other block as a negative"
                      if settings.block_negatives == "barren" else
                      "lower the block size or the exclusion buffer") + ")")
        elif settings.negative_ratio == 0:
            fix = ("the negative ratio is 0 and no usable barren point lies in its region: raise the negative ratio "
                   "(e.g. 1) or give barren points")
        else:
            fix = ("no cell of its region can be a random negative (every valid cell there is a positive, lies "
                   f"within the exclusion buffer of {settings.exclusion_buffer:g} map units of a deposit, or its "
                   "window would overlap a window of another split): lower the exclusion buffer or the positive "
                   "radius, or give barren points there")
            if s > 0:
                fix += f", or set the {SPLITS[s]} fraction to 0"
        raise InputError(f"The {SPLITS[s]} split would hold {positives[s]} positive(s) and no negative, so a model "
                         f"could not learn or be scored on it; {fix}.")


def _assemble(source, grid, samples, allowed, settings, augment, notes, progress, is_cancelled) -> TrainingSet:
    """Plan every window (originals, crops, flips, noise, SMOTE), allocate once, and fill.

    ``allowed`` marks the cells a crop may be centred on (valid data, inside the study area). The windows are
    read from ``source`` block by block (:func:`.bands.read_padded_windows`), only where samples lie.
    """
    p, h = settings.patch_size, settings.patch_size // 2
    rng = np.random.default_rng([settings.seed, 2])
    origin = np.column_stack([samples.rows, samples.cols]) - h
    base = np.arange(len(samples.rows))
    train = base[samples.split == 0]
    source_rows, shift = [base], [np.zeros((len(base), 2), np.int64)]
    symmetry, kinds = [np.zeros(len(base), np.int64)], [samples.kind]
    for label, n, a, b in ((1, augment.positive_crops, augment.positive_shift_x, augment.positive_shift_y),
                           (0, augment.negative_crops, augment.negative_shift_x, augment.negative_shift_y)):
        members = train[samples.label[train] == label]
        if n == 0 or len(members) == 0:
            continue
        offsets = aug.crop_offsets(len(members), n, a, b, rng).reshape(-1, 2)
        members = np.repeat(members, n)
        centre = origin[members] + offsets + h
        ok = allowed[centre[:, 0].clip(0, grid.rows - 1), centre[:, 1].clip(0, grid.cols - 1)]
        ok &= (centre >= 0).all(axis=1) & (centre[:, 0] < grid.rows) & (centre[:, 1] < grid.cols)
        ok[ok] = ~window_overlaps(origin[members[ok]] + offsets[ok], origin[samples.split != 0], p)
        if (~ok).any():
            notes.append(f"{int((~ok).sum())} {SPLITS[0]} crop(s) of {'positives' if label else 'negatives'} "
                         "whose centre leaves valid data or the study area, or overlapping a validation/test "
                         "window, were dropped.")
        source_rows.append(members[ok])
        shift.append(offsets[ok])
        symmetry.append(np.zeros(int(ok.sum()), np.int64))
        kinds.append(np.full(int(ok.sum()), KINDS.index("crop"), np.int8))
    if augment.flips:
        source_rows.append(train)
        shift.append(np.zeros((len(train), 2), np.int64))
        symmetry.append(aug.random_symmetries(len(train), rng))
        kinds.append(np.full(len(train), KINDS.index("flip"), np.int8))
    if augment.noise_variance > 0:
        source_rows.append(train)
        shift.append(np.zeros((len(train), 2), np.int64))
        symmetry.append(np.zeros(len(train), np.int64))
        kinds.append(np.full(len(train), KINDS.index("noise"), np.int8))
    source_rows, shift = np.concatenate(source_rows), np.concatenate(shift)
    symmetry, kind = np.concatenate(symmetry), np.concatenate(kinds)
    label, split, repeat = samples.label[source_rows], samples.split[source_rows], samples.repeat[source_rows]
    smote = _smote_plan(label, split, repeat, settings.n_repeats) if augment.smote else []
    n_smote = sum(n_new for _, _, n_new, _ in smote)
    n_windows, n_bands = len(source_rows) + n_smote, source.count
    check_memory(n_windows * n_bands * (p * p + 1) * 4, f"{n_windows} windows of {n_bands} band(s) × {p} × {p}",
                 "Use a smaller patch size (PATCH_SIZE), fewer crops (POSITIVE_CROPS, NEGATIVE_CROPS) or fewer "
                 "negatives (NEGATIVE_RATIO, REPEATS)")

    x_patch = np.empty((n_windows, n_bands, p, p), dtype=np.float32)
    window_rc = origin[source_rows] + shift
    share = 0.7 * len(source_rows) / max(n_windows, 1)  # of the progress, 15 % → 85 % for every window
    read_padded_windows(source, window_rc[:, 0] + h, window_rc[:, 1] + h, p, x_patch[:len(source_rows)],
                        is_cancelled=is_cancelled, progress=lambda percent: report(progress, 15 + share * percent))
    step = max(1, _CHUNK_VALUES // (n_bands * p * p))
    for code in range(1, 8):
        flipped = np.flatnonzero(symmetry == code)
        for start in range(0, len(flipped), step):
            check_cancelled(is_cancelled)
            chunk = flipped[start:start + step]
            x_patch[chunk] = aug.dihedral(x_patch[chunk], code)
    std = np.float32(math.sqrt(augment.noise_variance))
    for i in np.flatnonzero(kind == KINDS.index("noise")):
        x_patch[i] += rng.standard_normal(x_patch[i].shape, dtype=np.float32) * std
    centre_xy = cell_xy(window_rc[:, 0] + h, window_rc[:, 1] + h, grid)
    if n_smote:
        pieces = _fill_smote(x_patch, len(source_rows), smote, augment, rng, is_cancelled)
        label = np.concatenate([label, pieces[0]])
        split = np.concatenate([split, np.zeros(n_smote, np.int8)])
        repeat = np.concatenate([repeat, pieces[1]])
        kind = np.concatenate([kind, np.full(n_smote, KINDS.index("smote"), np.int8)])
        window_rc = np.concatenate([window_rc, np.full((n_smote, 2), NO_WINDOW)])
        centre_xy = np.concatenate([centre_xy, np.full((n_smote, 2), np.nan)])
    report(progress, 90)
    return TrainingSet(
        x_patch=x_patch,
        x_vector=np.ascontiguousarray(x_patch[:, :, h, h]),
        y=label.astype(np.int8),
        split=np.array(SPLITS)[split],
        kind=np.array(KINDS)[kind],
        repeat=repeat.astype(np.int16),
        centre_xy=centre_xy,
        window_rc=window_rc.astype(np.int32),
    )


def _smote_plan(label, split, repeat, n_repeats) -> list:
    """Per repeat r: (minority label, its training rows, number of synthetic rows to reach balance, r)."""
    plans = []
    for r in range(n_repeats):
        members = (split == 0) & ((repeat == SHARED) | (repeat == r))
        counts = np.bincount(label[members], minlength=2)
        if counts.min() == counts.max() or counts.min() == 0:
            continue
        minority = int(np.argmin(counts))
        rows = np.flatnonzero(members & (label == minority))
        plans.append((minority, rows, int(counts.max() - counts.min()), r))
    return plans


def _fill_smote(x_patch, start, plans, augment, rng, is_cancelled) -> tuple[np.ndarray, np.ndarray]:
    """Write SMOTE rows after row ``start``; returns their labels and repeats."""
    labels, repeats, row = [], [], start
    for minority, members, n_new, r in plans:
        features = x_patch[members].reshape(len(members), -1)
        base, neighbour, gap = aug.smote_pairs(features, n_new, augment.smote_neighbours, rng)
        for b, nb, g in zip(base, neighbour, gap):
            if (row - start) % _CANCEL_EVERY == 0:
                check_cancelled(is_cancelled)
            x_patch[row] = x_patch[members[b]] + g * (x_patch[members[nb]] - x_patch[members[b]])
            row += 1
        labels.append(np.full(n_new, minority, np.int8))
        repeats.append(np.full(n_new, r, np.int16))
    return np.concatenate(labels), np.concatenate(repeats)


def _manifest(result, grid, band_names, settings, augment, stack_tags, repeats, notes, n_deposits, split,
              labelling) -> dict:
    counts: dict = {}
    for s in SPLITS:
        in_split = result.split == s
        counts[s] = {"positive": int((in_split & (result.y == 1)).sum()),
                     "negative": int((in_split & (result.y == 0)).sum())}
        counts[s].update({k: int((in_split & (result.kind == k)).sum()) for k in KINDS})
    blocks = labelling["mode"] == "blocks"
    return {
        "format": FORMAT,
        "version": 1,
        "band_names": list(band_names),
        "stack_tags": dict(stack_tags or {}),
        "crs": grid.crs,
        "pixel_size": [grid.pixel_width, grid.pixel_height],
        "grid": {"x_min": grid.x_min, "y_max": grid.y_max, "cols": grid.cols, "rows": grid.rows},
        "patch_size": settings.patch_size,
        "window_rule": "window rows r-p//2 .. r-p//2+p-1 around cell r (columns alike); window cells outside the "
                       "grid or on nodata read window_fill; x_vector = window cell (p//2, p//2)",
        "window_fill": WINDOW_FILL,
        "labelling": labelling,
        "positive_radius": None if blocks else settings.radius(grid),
        "negative_ratio": None if blocks else settings.negative_ratio,
        "negative_rule": labelling["rule"] if blocks else
        "per split: barren + random = negative_ratio x the split's positives, per repeat",
        "exclusion_buffer": settings.exclusion_buffer,
        "seed": settings.seed,
        "repeats": repeats,
        "deposit_cells": n_deposits,
        "split": split,
        "augmentation": {**augment.as_dict(), "applied_to": "train split only"},
        "counts": counts,
        "total": len(result),
        "notes": list(notes),
    }


# ---------------------------------------------------------------------------------------------- files


def read_stack_tags(path: str) -> dict:
    """Dataset tags of a raster (JSON values such as ``DEEPPROSPECT_STACK`` parsed) for the manifest."""
    with rasterio.open(path) as src:
        tags = src.tags()
    parsed = {}
    for key, value in tags.items():
        try:
            parsed[key] = json.loads(value) if value[:1] in "{[" else value
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def save_training_set(path: str, training_set: TrainingSet) -> None:
    """Write the training set as an uncompressed .npz (temporary file renamed into place).

    Uncompressed, each array lies as one plain ``.npy`` in the zip, so :func:`load_training_set` can read the
    windows in place, a batch at a time; float32 windows shrink little under deflate anyway.
    """
    arrays = {name: getattr(training_set, name) for name in ARRAYS}
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, manifest=np.array(json.dumps(training_set.manifest, allow_nan=False)), **arrays)


def read_training_manifest(path: str) -> dict:
    """Only the manifest of a training set (the arrays are not read), e.g. for a report."""
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"Cannot read the training set {path}: {error}") from error
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path} is not a DeepProspect training set (format {manifest.get('format')!r}).")
    return manifest


def load_training_set(path: str, *, patches: bool = True, on_disk: bool = False) -> TrainingSet:
    """Read a training set written by :func:`save_training_set`.

    ``patches=False`` skips the windows (``x_patch`` is then an empty (n, 0, 0, 0) array), for users of the
    cell vectors only, such as the classical baselines: the windows are most of the file.
    ``on_disk=True`` leaves ``x_patch`` and ``x_vector`` in the file as :class:`.stored_arrays.StoredArray`, read
    a batch of rows at a time, so a training set larger than memory can be trained on. Files written compressed
    (before training sets were stored uncompressed) cannot be read in place and are read into memory.
    """
    if not os.path.isfile(path):
        raise InputError(f"The training set {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in (*ARRAYS, "manifest") if name not in data.files]
            if missing:
                raise InputError(f"{path} is not a DeepProspect training set (missing {', '.join(missing)}); "
                                 "create it with 'Training samples from deposits'.")
            manifest = json.loads(str(data["manifest"]))
            stored = {name: stored_member(path, data.zip, name) for name in ("x_patch", "x_vector")} \
                if on_disk else {}
            arrays = {name: data[name] if stored.get(name) is None else stored[name]
                      for name in ARRAYS if patches or name != "x_patch"}
            if not patches:
                arrays["x_patch"] = np.empty((len(arrays["y"]), 0, 0, 0), dtype=np.float32)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"Cannot read the training set {path}: {error}") from error
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path} is not a DeepProspect training set (format {manifest.get('format')!r}).")
    return TrainingSet(manifest=manifest, **arrays)
