"""GeoTIFF writer/reader: band names, nodata, metadata, exact grids, and no partial files."""

import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.outputs import atomic_path, output_set, pending_outputs
from deepprospect.core.raster_io import NODATA, read_band_names, read_grid_spec, read_raster, write_geotiff

GRID = GridSpec(500000.5, 3300000.25, 30.0, 30.0, 300, 260, "EPSG:32650")


def test_round_trip_keeps_grid_names_nodata_and_metadata(tmp_path):
    bands = np.arange(2 * 260 * 300, dtype=np.float32).reshape(2, 260, 300)
    bands[1, 5, 7] = np.nan
    path = str(tmp_path / "out.tif")
    write_geotiff(path, bands, GRID, ["Cu", "Au"], metadata={"IDW_POWER": "2"}, band_metadata=[{"A": "1"}, {}])
    assert read_band_names(path) == ["Cu", "Au"]
    spec = read_grid_spec(path)
    assert (spec.x_min, spec.y_max, spec.pixel_width, spec.cols, spec.rows) == (500000.5, 3300000.25, 30, 300, 260)
    with rasterio.open(path) as src:
        assert src.nodata == NODATA and src.dtypes == ("float32", "float32")
        assert src.crs.to_epsg() == 32650
        assert src.profile["tiled"] and src.compression.value == "DEFLATE"
        assert src.tags()["IDW_POWER"] == "2" and src.tags(1)["A"] == "1"
        data = src.read(masked=True)
    assert data.mask[1, 5, 7] and not data.mask[0].any()
    np.testing.assert_array_equal(data[0], bands[0])
    assert os.listdir(tmp_path) == ["out.tif"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not the private mode of a temporary file
    array, grid, names = read_raster(path)
    assert names == ["Cu", "Au"] and grid.shape == (260, 300) and np.isnan(array[1, 5, 7])


def test_bands_without_description_get_derived_names(tmp_path):
    path = str(tmp_path / "plain.tif")
    with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=2, dtype="float32",
                       crs="EPSG:32650", transform=rasterio.transform.from_origin(0, 3, 1, 1)) as dst:
        dst.write(np.ones((2, 3, 4), dtype="float32"))
    assert read_raster(path)[2] == ["plain_b1", "plain_b2"]


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), atomic_path(str(target)) as temporary:
        with open(temporary, "w") as handle:
            handle.write("partial")
        raise RuntimeError("stopped half way")
    assert os.listdir(tmp_path) == []


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def test_an_output_set_appears_whole_at_the_end(tmp_path):
    first, second = tmp_path / "a.tif", tmp_path / "b.csv"
    with output_set():
        with atomic_path(str(first)) as temporary:
            _write(temporary, "first")
        assert not first.exists()  # nothing appears before the whole run has succeeded
        with atomic_path(str(second)) as temporary:
            _write(temporary, "second")
    assert first.read_text() == "first" and second.read_text() == "second"
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.csv"]


def test_a_failed_run_leaves_no_output_of_its_set(tmp_path):
    (tmp_path / "a.tif").write_text("old")
    with pytest.raises(RuntimeError), output_set():
        with atomic_path(str(tmp_path / "a.tif")) as temporary:
            _write(temporary, "new")
        with atomic_path(str(tmp_path / "b.csv")) as temporary:
            _write(temporary, "second")
        raise RuntimeError("the last output failed")
    assert os.listdir(tmp_path) == ["a.tif"] and (tmp_path / "a.tif").read_text() == "old"


def test_companion_files_move_with_their_file_and_stale_statistics_go(tmp_path):
    (tmp_path / "old.tif.aux.xml").write_text("statistics of the previous file")
    (tmp_path / "old.tif").write_text("previous")
    with output_set():
        with atomic_path(str(tmp_path / "old.tif")) as temporary:
            _write(temporary, "new")
        shapefile = str(tmp_path / ".deepprospect-sink.shp")
        for extension in (".shp", ".dbf", ".shx"):
            _write(shapefile[:-4] + extension, extension)
        pending_outputs().add(shapefile, str(tmp_path / "samples.shp"))
    assert sorted(os.listdir(tmp_path)) == ["old.tif", "samples.dbf", "samples.shp", "samples.shx"]
    assert (tmp_path / "samples.dbf").read_text() == ".dbf"


def test_unwritable_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_geotiff(str(tmp_path / "missing" / "out.tif"), np.zeros((1, 260, 300)), GRID, ["a"])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(InputError, match="not writable"):
            write_geotiff(str(locked / "out.tif"), np.zeros((1, 260, 300)), GRID, ["a"])
    finally:
        locked.chmod(0o700)


def test_shape_and_name_mismatches_are_refused(tmp_path):
    with pytest.raises(InputError, match="does not match the grid"):
        write_geotiff(str(tmp_path / "a.tif"), np.zeros((1, 10, 10)), GRID, ["a"])
    with pytest.raises(InputError, match="band names"):
        write_geotiff(str(tmp_path / "a.tif"), np.zeros((2, 260, 300)), GRID, ["a"])


def test_steps_cap_gdals_block_cache_unless_the_user_set_it(monkeypatch):
    """Windowed reads of a large raster fill GDAL's cache up to 5 % of the machine's memory; a step caps it."""
    from deepprospect.core.raster_io import CACHE_BYTES, bounded_gdal_cache
    from rasterio._env import get_gdal_config

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    before = get_gdal_config("GDAL_CACHEMAX")
    with bounded_gdal_cache():
        assert get_gdal_config("GDAL_CACHEMAX") == CACHE_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == before
    monkeypatch.setenv("GDAL_CACHEMAX", "64")
    with bounded_gdal_cache():
        assert get_gdal_config("GDAL_CACHEMAX") == before


def test_the_cache_stays_capped_while_any_of_two_overlapping_steps_runs(monkeypatch):
    """QGIS may run two steps at once in threads: the cap holds until the last one ends, then GDAL's own comes back
    (the cache size is one setting for the whole process)."""
    import threading

    from deepprospect.core.raster_io import CACHE_BYTES, bounded_gdal_cache
    from rasterio._env import get_gdal_config

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    before = get_gdal_config("GDAL_CACHEMAX")
    first_in, second_in, first_out, seen = threading.Event(), threading.Event(), threading.Event(), []

    def second_step():
        first_in.wait()
        with bounded_gdal_cache():
            second_in.set()
            first_out.wait()
            seen.append(get_gdal_config("GDAL_CACHEMAX"))

    thread = threading.Thread(target=second_step)
    thread.start()
    with bounded_gdal_cache():
        first_in.set()
        second_in.wait(10)
    first_out.set()
    thread.join()
    assert seen == [CACHE_BYTES] and get_gdal_config("GDAL_CACHEMAX") == before
