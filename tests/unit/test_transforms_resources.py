"""Small helpers: missing-value codes, below-detection values, log10, memory checks and size formatting."""

import numpy as np
import pytest
from deepprospect.core.errors import InputError, ResourceError
from deepprospect.core.evidence.transforms import (
    DEFAULT_MISSING_CODES,
    half_below_detection,
    log10_floored,
    log10_positive,
    mask_missing_codes,
    parse_missing_codes,
)
from deepprospect.core.memory import available_memory_bytes, check_disk, check_memory, format_bytes


def test_log10_skips_non_positive_values_and_counts_them():
    values = np.array([[100.0, 1.0], [0.0, 10.0], [-0.5, np.nan], [1000.0, 0.1]])
    logged, dropped = log10_positive(values)
    np.testing.assert_allclose(logged, [[2, 0], [np.nan, 1], [np.nan, np.nan], [3, -1]])
    assert dropped.tolist() == [2, 0]


def test_memory_check_names_the_size_needed_what_is_free_and_the_parameter_that_lowers_it():
    with pytest.raises(ResourceError, match=r"^A 100000 × 40000 grid would need about 16.0 GiB of memory, but only "
                                            r"1.0 GiB is available. Use a larger pixel size \(PIXEL_SIZE\), or close"):
        check_memory(16 * 2**30, "A 100000 × 40000 grid", "Use a larger pixel size (PIXEL_SIZE)", available=2**30)
    check_memory(2**20, "small", "never said", available=2**30)
    assert available_memory_bytes() is None or available_memory_bytes() > 0


def test_disk_check_names_the_size_needed_the_folder_and_the_parameter_that_lowers_it(tmp_path):
    path = str(tmp_path / "grid.tif")
    with pytest.raises(ResourceError, match=r"^A 2000000 × 2000000 grid would need about 29.1 TiB of disk space "
                                            r"\(uncompressed\), but only 1.0 GiB is free in .*\. Use a larger pixel"):
        check_disk(32 * 10**12, path, "A 2000000 × 2000000 grid", "Use a larger pixel size (PIXEL_SIZE)", free=2**30)
    check_disk(2**20, path, "small", "never said", free=2**30)
    check_disk(2**20, path, "small", "never said")  # this disk has a MiB


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**20) == "3.0 MiB"
    assert format_bytes(5 * 2**40) == "5.0 TiB"


def test_missing_codes_are_parsed_and_bad_items_named():
    assert parse_missing_codes(" -9999, -99999 ,,1e3") == (-9999.0, -99999.0, 1000.0)
    assert parse_missing_codes("") == () and parse_missing_codes(None) == ()
    with pytest.raises(InputError, match="'n/a' is not a number"):
        parse_missing_codes("-9999, n/a")
    with pytest.raises(InputError, match="not a finite number"):
        parse_missing_codes("nan")


def test_missing_codes_become_nan_and_are_counted_per_column():
    values = np.array([[-9999.0, 1.0], [5.0, -999999.0], [-99999.0, -5.0], [np.nan, -999.0]])
    cleaned, counts = mask_missing_codes(values, DEFAULT_MISSING_CODES)
    np.testing.assert_array_equal(cleaned, [[np.nan, 1], [5, np.nan], [np.nan, -5], [np.nan, np.nan]])
    assert counts.tolist() == [2, 2] and values[0, 0] == -9999.0  # the input is left alone
    assert mask_missing_codes(values, ())[1].tolist() == [0, 0]


def test_negative_values_read_as_below_detection_become_half_the_limit():
    values = np.array([[-5.0, 2.0], [0.0, -0.1], [np.nan, 3.0]])
    replaced, counts = half_below_detection(values)
    np.testing.assert_array_equal(replaced, [[2.5, 2], [0, 0.05], [np.nan, 3]])
    assert counts.tolist() == [1, 1]


def test_log10_floors_non_positive_values_at_half_the_smallest_positive():
    values = np.array([[0.0, 10.0, 0.0], [4.0, -2.0, np.nan], [100.0, 0.0, -1.0], [-3.0, 1000.0, 0.0]])
    logged, raised, floors = log10_floored(values)
    np.testing.assert_allclose(floors, [2.0, 5.0, np.nan])
    np.testing.assert_allclose(logged, np.log10([[2, 10, np.nan], [4, 5, np.nan], [100, 5, np.nan], [2, 1000, np.nan]]))
    assert raised.tolist() == [2, 2, 0]
