"""Windows around cells, padded where they leave the grid or meet nodata: one rule for training and prediction.

A sample (or prediction) at cell (r, c) reads the p×p window whose upper-left cell is (r − p//2, c − p//2), so
for odd p the cell is the centre and for even p it is the cell just below and right of the centre. Window cells
outside the grid, or NaN in a band, read :data:`WINDOW_FILL` (0.0, the mean of a z-scored band), so every valid
cell has a window, at the grid edge and next to nodata too. Training sets (:mod:`.labels`) record the value in
their manifest as ``window_fill``; prediction reads the same constant.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

WINDOW_FILL = 0.0


def padded_windows(stack: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch_size: int) -> np.ndarray:
    """(n, bands, p, p) float32 windows of a (bands, rows, cols) stack around cells ``rows[i], cols[i]``.

    Args:
        stack: evidence stack, NaN = nodata.
        rows, cols: (n,) cell indices; the cells themselves may lie anywhere, windows are padded.
        patch_size: window side p in cells.

    Returns:
        The windows, origin (row − p//2, col − p//2); cells outside the grid or NaN read :data:`WINDOW_FILL`.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or patch_size < 1:
        raise InputError(f"Windows need a (bands, rows, cols) stack and a patch size ≥ 1 (got {stack.shape}, "
                         f"{patch_size}).")
    _, n_rows, n_cols = stack.shape
    r0 = np.asarray(rows, dtype=np.int64).ravel() - patch_size // 2
    c0 = np.asarray(cols, dtype=np.int64).ravel() - patch_size // 2
    out = np.empty((len(r0), stack.shape[0], patch_size, patch_size), dtype=np.float32)
    # One slice copy per window: measured 4× faster than a strided or fancy-index gather at p = 32.
    for window, top, left in zip(out, r0.tolist(), c0.tolist()):
        bottom, right = top + patch_size, left + patch_size
        if top >= 0 and left >= 0 and bottom <= n_rows and right <= n_cols:
            window[...] = stack[:, top:bottom, left:right]
        else:
            window[...] = WINDOW_FILL
            r_lo, r_hi, c_lo, c_hi = max(top, 0), min(bottom, n_rows), max(left, 0), min(right, n_cols)
            if r_lo < r_hi and c_lo < c_hi:
                window[:, r_lo - top:r_hi - top, c_lo - left:c_hi - left] = stack[:, r_lo:r_hi, c_lo:c_hi]
    out[np.isnan(out)] = WINDOW_FILL
    return out
