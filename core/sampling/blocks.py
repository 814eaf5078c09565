"""Block labels: the grid cut into blocks, each block one sample (gao2022, he2024).

The papers label windows, not cells: gao2022 cut its 3072 × 3072 grid into 12 × 12 blocks of 256 × 256 cells,
29 of them 'ore' and 115 'no ore'; he2024 cut its area into blocks and called a block positive where an orebody
passes through it, negative only where drilling and trenching verified it barren, and the rest unknown (never
trained on, only predicted).

Rules (see :func:`label_blocks`):

* **Blocks** of ``size`` × ``size`` cells start at the grid's upper-left cell and every ``stride`` cells
  (stride = size: blocks side by side; smaller: overlapping blocks). A block at the right or bottom edge that
  runs off the grid is kept while its centre cell (``origin + size // 2``) is on the grid; cells beyond the last
  block belong to none. A block is **unusable** where its centre cell is on nodata or outside the study area.
* **Positive**: the block holds a deposit cell. A block holding deposits of different splits would put one split's
  deposit in another's sample: it is dropped (counted as dropped) and noted.
* **Negative** (``negatives``): ``all`` = every other usable block; ``barren`` = only blocks verified barren
  (he2024): holding a barren point, or whose every cell of valid data inside the study area lies in a barren area.
  Either way a block whose centre cell lies within the exclusion buffer of a deposit is not a negative.
* **Unknown**: usable blocks neither positive nor negative; they never enter the training set.

The sample of a block sits at its centre cell, so it owns the p × p window centred there (see :mod:`.windows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

BLOCK_NEGATIVES = ("all", "barren")
STATUS = ("positive", "negative", "unknown", "unusable", "mixed")
POSITIVE, NEGATIVE, UNKNOWN, UNUSABLE, MIXED = range(len(STATUS))


def block_starts(n_cells: int, size: int, stride: int) -> np.ndarray:
    """First cell of every block along one axis: 0, stride, 2·stride, … while the block's centre is on the grid."""
    return np.arange(0, max(n_cells - size // 2, 0), stride, dtype=np.int64)


def _axis_range(cells: np.ndarray, n_blocks: int, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell index along one axis: the first block holding it and how many blocks do."""
    first = np.maximum(0, -((size - 1 - cells) // stride))  # ceil((cell - size + 1) / stride), at least block 0
    last = np.minimum(n_blocks - 1, cells // stride)
    return first, np.maximum(last - first + 1, 0)


def blocks_holding(points_rc: np.ndarray, n_block_rows: int, n_block_cols: int, size: int,
                   stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(point index, flat block index) of every block holding each (row, col) point."""
    points_rc = np.asarray(points_rc, dtype=np.int64).reshape(-1, 2)
    first_r, count_r = _axis_range(points_rc[:, 0], n_block_rows, size, stride)
    first_c, count_c = _axis_range(points_rc[:, 1], n_block_cols, size, stride)
    total = count_r * count_c
    point = np.repeat(np.arange(len(points_rc)), total)
    k = np.arange(int(total.sum())) - np.repeat(np.cumsum(total) - total, total)  # rank among the point's blocks
    width = np.maximum(count_c[point], 1)
    return point, (first_r[point] + k // width) * n_block_cols + first_c[point] + k % width


def _wholly_in(area: np.ndarray, allowed: np.ndarray, row_starts: np.ndarray, col_starts: np.ndarray,
               size: int) -> np.ndarray:
    """Per block (flat): whether every allowed cell of the block lies in ``area`` (summed-area table of the rest)."""
    outside = np.zeros((allowed.shape[0] + 1, allowed.shape[1] + 1), dtype=np.int32)
    np.cumsum(np.cumsum(allowed & ~area, axis=0, dtype=np.int32), axis=1, out=outside[1:, 1:])
    r0, c0 = np.meshgrid(row_starts, col_starts, indexing="ij")
    r1, c1 = np.minimum(r0 + size, allowed.shape[0]), np.minimum(c0 + size, allowed.shape[1])
    counts = outside[r1, c1] - outside[r0, c1] - outside[r1, c0] + outside[r0, c0]
    return (counts == 0).ravel()


@dataclass
class BlockLabels:
    """Every block's centre cell, status (an index of :data:`STATUS`) and split (−1 unless positive/negative)."""

    rows: np.ndarray
    cols: np.ndarray
    status: np.ndarray
    split: np.ndarray
    deposits_outside: int  # deposit cells in no block (beyond the last block at the right/bottom edge)

    def count(self, status: int) -> int:
        return int((self.status == status).sum())


def block_reach(size: int, pixel_width: float, pixel_height: float) -> float:
    """Farthest distance (map units) from a deposit cell to the centre cell of a block holding it."""
    return math.hypot(size // 2 * pixel_width, size // 2 * pixel_height)


def label_blocks(
    allowed: np.ndarray,
    size: int,
    stride: int,
    negatives: str,
    deposit_rc: np.ndarray,
    deposit_split: np.ndarray,
    region: np.ndarray,
    candidates: np.ndarray,
    barren_rc: np.ndarray | None = None,
    barren_area: np.ndarray | None = None,
) -> BlockLabels:
    """Label every block (see the module docstring).

    Args:
        allowed: (rows, cols) cells with valid data inside the study area.
        size, stride: block side and step in cells.
        negatives: one of :data:`BLOCK_NEGATIVES`.
        deposit_rc, deposit_split: (n, 2) deposit cells and the split of each.
        region: (rows, cols) split of every cell; a negative block takes its centre cell's.
        candidates: (rows, cols) cells a negative may be centred on (allowed, beyond the exclusion buffer).
        barren_rc: (m, 2) barren point cells; barren_area: (rows, cols) cells inside barren polygons.
    """
    if negatives not in BLOCK_NEGATIVES:
        raise InputError(f"Unknown block negatives '{negatives}'; use one of {', '.join(BLOCK_NEGATIVES)}.")
    row_starts = block_starts(allowed.shape[0], size, stride)
    col_starts = block_starts(allowed.shape[1], size, stride)
    rows, cols = np.meshgrid(row_starts + size // 2, col_starts + size // 2, indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    n_blocks = len(rows)
    status = np.full(n_blocks, UNKNOWN, dtype=np.int8)
    split = np.full(n_blocks, -1, dtype=np.int8)

    if negatives == "all":
        verified = np.ones(n_blocks, dtype=bool)
    else:
        verified = np.zeros(n_blocks, dtype=bool)
        if barren_rc is not None and len(barren_rc):
            verified[blocks_holding(barren_rc, len(row_starts), len(col_starts), size, stride)[1]] = True
        if barren_area is not None:
            verified |= _wholly_in(np.asarray(barren_area, dtype=bool), allowed, row_starts, col_starts, size)
    negative = verified & candidates[rows, cols]
    status[negative] = NEGATIVE
    split[negative] = region[rows[negative], cols[negative]]

    point, block = blocks_holding(deposit_rc, len(row_starts), len(col_starts), size, stride)
    low = np.full(n_blocks, 3, dtype=np.int8)
    high = np.full(n_blocks, -1, dtype=np.int8)
    np.minimum.at(low, block, deposit_split[point])
    np.maximum.at(high, block, deposit_split[point])
    held = high >= 0
    status[held] = np.where(low[held] == high[held], POSITIVE, MIXED)
    split[held] = np.where(low[held] == high[held], high[held], -1)

    unusable = ~allowed[rows, cols]
    status[unusable] = UNUSABLE
    split[unusable] = -1
    outside = len(deposit_rc) - len(np.unique(point))
    return BlockLabels(rows, cols, status, split, outside)
