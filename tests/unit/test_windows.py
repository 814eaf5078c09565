"""core.windows: padded windows equal a manual padding of the stack, at the edge, off the grid and on nodata."""

import numpy as np
import pytest
from deepprospect.core.errors import InputError
from deepprospect.core.windows import WINDOW_FILL, padded_windows


@pytest.mark.parametrize("patch", [1, 4, 5, 30])
def test_windows_equal_a_manual_padding(patch):
    rng = np.random.default_rng(patch)
    stack = rng.normal(size=(3, 20, 25)).astype(np.float32)
    stack[1, 3, 4] = np.nan
    rows, cols = rng.integers(-30, 53, 300), rng.integers(-30, 58, 300)
    windows = padded_windows(stack, rows, cols, patch)
    margin, h = 80, patch // 2
    padded = np.pad(stack, ((0, 0), (margin, margin), (margin, margin)), constant_values=np.nan)
    padded[np.isnan(padded)] = WINDOW_FILL
    expected = np.stack([padded[:, r - h + margin:r - h + margin + patch, c - h + margin:c - h + margin + patch]
                         for r, c in zip(rows, cols)])
    assert windows.dtype == np.float32 and windows.shape == (300, 3, patch, patch)
    np.testing.assert_array_equal(windows, expected)


def test_fill_is_zero_and_shapes_hold():
    stack = np.ones((2, 4, 4))
    assert WINDOW_FILL == 0.0
    window = padded_windows(stack, [0], [0], 3)[0]
    assert window.dtype == np.float32 and (window[:, 0, :] == 0).all() and (window[:, 1:, 1:] == 1).all()
    assert padded_windows(stack, [], [], 3).shape == (0, 2, 3, 3)
    with pytest.raises(InputError, match="bands, rows, cols"):
        padded_windows(stack[0], [0], [0], 3)
