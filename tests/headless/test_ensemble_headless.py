"""qgis_process: deepprospect:ensemble averages two maps headless and writes the map and its uncertainty."""

import numpy as np
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff


def test_run_simple_average_of_two_maps(run_json, tmp_path):
    grid = GridSpec(400000.0, 3320000.0, 500.0, 500.0, 40, 40, "EPSG:32650")
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, (2, *grid.shape))
    paths = [str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]
    for path, values in zip(paths, (a, b)):
        write_geotiff(path, values, grid, ["prospectivity"])
    out, spread = tmp_path / "ensemble.tif", tmp_path / "uncertainty.tif"
    code, result, log = run_json("deepprospect:ensemble", MAPS=paths, METHOD="average", OUTPUT=out, UNCERTAINTY=spread)
    assert code == 0, log
    assert "Traceback" not in log and result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as mean, rasterio.open(spread) as std:
        np.testing.assert_allclose(mean.read(1), ((a.astype("f4") + b.astype("f4")) / 2), atol=1e-6)
        np.testing.assert_allclose(std.read(1), np.abs(a.astype("f4") - b.astype("f4")) / 2, atol=1e-6)


def test_grid_mismatch_fails_with_a_message(run_json, tmp_path):
    paths = []
    for name, x_min in (("a.tif", 400000.0), ("b.tif", 400250.0)):
        paths.append(str(tmp_path / name))
        write_geotiff(paths[-1], np.full((10, 10), 0.5), GridSpec(x_min, 3320000.0, 500.0, 500.0, 10, 10,
                                                                  "EPSG:32650"), ["prospectivity"])
    code, _, log = run_json("deepprospect:ensemble", MAPS=paths, OUTPUT=tmp_path / "e.tif")
    assert code != 0 and "'b.tif' is not on the grid of 'a.tif'" in log and "Traceback" not in log
    assert not (tmp_path / "e.tif").exists()
