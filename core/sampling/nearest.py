"""The nearest deposit cell of grid cells, and which cells lie beyond an exclusion distance, without a grid-sized
distance transform.

Distances are Euclidean in map units between cell centres, as ``scipy.ndimage.distance_transform_edt`` gives
them with the pixel sizes as sampling: integer cell offsets times the pixel size. A k-d tree over the deposit
cells finds the nearest one; :meth:`DepositCells.beyond` recomputes the distance from the integer offsets, so a
cell exactly at the distance is decided the same way wherever it lies in the grid (the tree's own distances are
differences of rounded coordinates).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..grid import GridSpec


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
        module docstring)."""
        bound = distance * (1 + 1e-9) + 1e-9 * self.sampling.max()
        _, nearest = self.nearest(cells_rc, bound)
        found = nearest < len(self.deposit_rc)
        away = np.ones(len(cells_rc), dtype=bool)
        offsets = (cells_rc[found] - self.deposit_rc[nearest[found]]) * self.sampling
        away[found] = np.sqrt((offsets * offsets).sum(axis=1)) > distance
        return away
