"""Small helpers: log10 of positive values, memory checks and size formatting."""

import numpy as np
import pytest
from deepprospect.core.errors import ResourceError
from deepprospect.core.resources import available_memory_bytes, format_bytes, require_memory
from deepprospect.core.transforms import log10_positive


def test_log10_skips_non_positive_values_and_counts_them():
    values = np.array([[100.0, 1.0], [0.0, 10.0], [-0.5, np.nan], [1000.0, 0.1]])
    logged, dropped = log10_positive(values)
    np.testing.assert_allclose(logged, [[2, 0], [np.nan, 1], [np.nan, np.nan], [3, -1]])
    assert dropped.tolist() == [2, 0]


def test_memory_check_names_the_size_needed():
    with pytest.raises(ResourceError, match=r"need about 16.0 GiB of memory, but only 1.0 GiB"):
        require_memory(16 * 2**30, "A 100000 × 40000 grid", available=2**30)
    require_memory(2**20, "small", available=2**30)
    assert available_memory_bytes() is None or available_memory_bytes() > 0


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**20) == "3.0 MiB"
    assert format_bytes(5 * 2**40) == "5.0 TiB"
