"""qgis_process: deepprospect:traininglabels writes a training set and a sample layer headless."""

import numpy as np
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.sampling.labels import load_training_set
from osgeo import ogr


def test_run_on_the_demo_survey(run_json, repo_root, tmp_path):
    demo = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 400.0, "EPSG:32650")
    stack = str(tmp_path / "stack.tif")
    write_geotiff(stack, np.random.default_rng(0).normal(size=(3, grid.rows, grid.cols)), grid, ["Au", "As", "Cu"])
    out, samples = tmp_path / "set.npz", tmp_path / "samples.gpkg"
    code, result, log = run_json("deepprospect:traininglabels", STACK=stack, DEPOSITS=f"{demo}|layername=deposits",
                                 BARREN=f"{demo}|layername=barren_holes", PATCH_SIZE=5, REPEATS=2, OUTPUT=out,
                                 SAMPLES=samples)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out)
    ts = load_training_set(str(out))
    assert ts.x_patch.shape[1:] == (3, 5, 5) and ts.manifest["band_names"] == ["Au", "As", "Cu"]
    assert (ts.kind == "barren").any() and set(ts.split) == {"train", "validation", "test"}
    dataset = ogr.Open(str(samples))  # keep the dataset alive while its layer is used
    layer = dataset.GetLayer(0)
    assert layer.GetFeatureCount() == len(ts)
    assert [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(4)] == ["label", "split", "kind", "repeat"]
