"""qgis_process: deepprospect:evidencestack stacks rasters headless and records its recipe."""

import json
import os

import numpy as np
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff


def test_run_stacks_clr_transformed_elements_with_a_recipe(run_json, tmp_path):
    rng = np.random.default_rng(21)
    grid = GridSpec(400000.0, 3310000.0, 200.0, 200.0, 30, 25, "EPSG:32650")
    elements = str(tmp_path / "elements.tif")
    write_geotiff(elements, rng.lognormal(2, 1, (3, 25, 30)), grid, ["Cu", "Pb", "Zn"])
    coarse = GridSpec(399800.0, 3310100.0, 500.0, 500.0, 13, 11, "EPSG:32650")
    geology = str(tmp_path / "geology.tif")
    write_geotiff(geology, rng.choice([1, 2], (1, 11, 13)), coarse, ["rock"], nodata=0, dtype="uint8")
    out = tmp_path / "stack.tif"
    code, result, log = run_json("deepprospect:evidencestack", INPUTS=elements, CATEGORICAL=geology, TRANSFORM="clr",
                                 NORMALISE="z-score", OUTPUT=out)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out)
    with rasterio.open(out) as src:
        assert src.descriptions == ("clr_Cu", "clr_Pb", "clr_Zn", "rock_1", "rock_2") and src.shape == (25, 30)
        recipe = json.loads(src.tags()["DEEPPROSPECT_STACK"])
        one, two = (src.read(band, masked=True) for band in (4, 5))  # indicator bands of the rock classes
        assert set(np.unique(one.compressed())) == {0.0, 1.0} and np.array_equal(one + two, np.ones_like(one))
    assert recipe["transform"]["bands"] == ["Cu", "Pb", "Zn"] and recipe["normalise"]["method"] == "z-score"


def test_bad_transform_band_fails_cleanly(qgis_process, tmp_path):
    grid = GridSpec(400000.0, 3310000.0, 200.0, 200.0, 5, 5, "EPSG:32650")
    elements = str(tmp_path / "elements.tif")
    write_geotiff(elements, np.ones((2, 5, 5)), grid, ["Cu", "Pb"])
    done = qgis_process("run", "deepprospect:evidencestack", "--", f"INPUTS={elements}", "TRANSFORM=ilr",
                        "TRANSFORM_BANDS=Cu,Ni", f"OUTPUT={tmp_path / 'never.tif'}")
    assert done.returncode != 0
    assert "not in the stack: Ni" in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
    assert not [name for name in os.listdir(tmp_path) if not name.startswith("elements.tif")]
