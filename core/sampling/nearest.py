"""The nearest deposit cell of grid cells, and which cells lie beyond an exclusion distance, without a grid-sized
distance transform.

Distances are Euclidean in map units between cell centres, as ``scipy.ndimage.distance_transform_edt`` gives
them with the pixel sizes as sampling: integer cell offsets times the pixel size. A k-d tree over the deposit
cells finds the nearest one. The tree's own distances are differences of rounded coordinates, so where one lies
within a hair of the exclusion distance, :meth:`DepositCells.beyond` recomputes the distances to every deposit
cell near it from the integer offsets: a cell exactly at the distance is decided the same way wherever it lies in
the grid, as the distance transform decides it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..grid import GridSpec


def cells_of(rows: slice, cols: slice) -> np.ndarray:
    """(cells, 2) row, col of the cells of a window (two slices with bounds), row-major: what the queries take."""
    row, col = np.mgrid[rows, cols]
    return np.column_stack([row.ravel(), col.ravel()])


class DepositCells:
    """Deposit cells ((n, 2) row, col) of ``grid`` in a k-d tree (coordinates: row × pixel height, col × width)."""

    def __init__(self, deposit_rc: np.ndarray, grid: GridSpec) -> None:
        self.deposit_rc = np.asarray(deposit_rc, dtype=np.int64).reshape(-1, 2)
        self.sampling = np.array([grid.pixel_height, grid.pixel_width])
        self.tree = cKDTree(self.deposit_rc * self.sampling)

    def nearest(self, cells_rc: np.ndarray, upper_bound: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(distance, index) of the nearest deposit cell of each (row, col); beyond ``upper_bound`` the distance is
        inf and the index ``len(deposit_rc)``. Ties between deposits go as the tree finds them."""
        return self.tree.query(cells_rc * self.sampling, distance_upper_bound=upper_bound, workers=-1)

    def beyond(self, cells_rc: np.ndarray, distance: float) -> np.ndarray:
        """Whether each (row, col) is farther than ``distance`` from every deposit cell (exact offsets; see the
        module docstring).

        The tree's distances are right to a few ulps: a cell it finds clearly nearer or farther is decided by
        them; a cell within a hair of ``distance`` is decided on the exact offsets to every deposit cell near it,
        since the tree's nearest may not be the exactly nearest there."""
        if len(self.deposit_rc) == 0 or not np.isfinite(distance):
            return np.full(len(cells_rc), len(self.deposit_rc) == 0)
        tolerance = 1e-9 * (distance + self.sampling.max())
        found, _ = self.nearest(cells_rc, distance + tolerance)  # inf: nothing within the bound
        away = found > distance + tolerance
        unsure = np.flatnonzero(~away & (found >= distance - tolerance))
        if unsure.size:
            near = self.tree.query_ball_point(cells_rc[unsure] * self.sampling, r=distance + tolerance)
            for cell, deposits in zip(unsure, near):
                offsets = (cells_rc[cell] - self.deposit_rc[deposits]) * self.sampling
                away[cell] = np.sqrt((offsets * offsets).sum(axis=1)).min() > distance
        return away
