"""qgis_process: deepprospect:anomalyclasses classifies a map over the demo survey and outlines targets."""

import csv

import numpy as np
import rasterio
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from osgeo import ogr


def test_run_on_a_map_of_the_demo_survey(run_json, repo_root, tmp_path):
    demo = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 200.0, "EPSG:32650")
    rows, cols = np.mgrid[0:grid.rows, 0:grid.cols]
    values = np.exp(-((rows - 30) ** 2 + (cols - 60) ** 2) / 200.0) + 0.5 * np.exp(-((rows - 70) ** 2 +
                                                                                   (cols - 20) ** 2) / 100.0)
    map_path = str(tmp_path / "map.tif")
    write_geotiff(map_path, (values + 1e-6 * cols) / 1.01, grid, ["prospectivity"])  # probabilities: 0–1
    classes, table, targets = tmp_path / "classes.tif", tmp_path / "classes.csv", tmp_path / "targets.gpkg"
    code, result, log = run_json("deepprospect:anomalyclasses", MAP=map_path,
                                 DEPOSITS=f"{demo}|layername=deposits", MIN_TARGET_AREA=1.0, OUTPUT=classes,
                                 CLASS_TABLE=table, TARGETS=targets)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(classes)
    with rasterio.open(classes) as src:
        counts = np.bincount(src.read(1).ravel(), minlength=4)
    assert counts[1:4].tolist() == [500, 1000, 1500]
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == ["top 5 %", "5–15 %", "15–30 %", "background (30–100 %)"]
    survey, zones = ogr.Open(str(demo)), ogr.Open(str(targets))  # datasets kept alive while their layers are used
    assert sum(int(row["deposits"]) for row in rows) == survey.GetLayerByName("deposits").GetFeatureCount()
    ranks = sorted(feature.GetField("rank") for feature in zones.GetLayer(0))
    assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) >= 1
