"""qgis_process: deepprospect:evaluate scores a map against the demo deposits and writes a table and a report."""

import csv

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from osgeo import ogr


def test_run_on_the_demo_deposits(run_json, repo_root, tmp_path):
    demo = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    dataset = ogr.Open(str(demo))
    deposits = np.array([feature.GetGeometryRef().GetPoint_2D() for feature in dataset.GetLayerByName("deposits")])
    del dataset
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 250.0, "EPSG:32650")
    centres = grid.cell_centres().reshape(grid.rows, grid.cols, 2)
    near = np.min(np.linalg.norm(centres[:, :, None] - deposits, axis=-1), axis=-1)
    noise = 0.2 * np.random.default_rng(1).standard_normal(grid.shape)
    path = str(tmp_path / "prospectivity.tif")
    write_geotiff(path, np.clip(np.exp(-((near / 600.0) ** 2)) + noise, 0, 1), grid, ["prospectivity"])
    table, report = tmp_path / "metrics.csv", tmp_path / "report.html"
    code, result, log = run_json("deepprospect:evaluate", MAP=path, DEPOSITS=f"{demo}|layername=deposits",
                                 SPLIT_FIELD="deposit_id", HELD_OUT_VALUES="1,2,3,4,5,6",
                                 BARREN=f"{demo}|layername=barren_holes", OUTPUT=table, REPORT=report,
                                 PA_PLOT=tmp_path / "pa.png")
    assert code == 0, log
    assert "Traceback" not in log
    outputs = result["results"]
    assert outputs["ROC_AUC"] > 0.8 and outputs["PREDICTION_RATE_AUC"] > 0.8 and outputs["SUCCESS_RATE_AUC"] > 0.8
    with open(table, newline="") as handle:
        rows = {(row["deposits"], row["metric"]): float(row["value"]) for row in csv.DictReader(handle)}
    assert rows[("held-out", "deposits")] == 6 and rows[("training", "deposits")] == 18
    assert rows[("all", "pa_threshold")] == pytest.approx(outputs["PA_THRESHOLD"])  # CSV keeps 15 digits
    text = report.read_text(encoding="utf-8")
    assert "deposit_id in 1, 2, 3, 4, 5, 6" in text and text.count("data:image/png;base64,") == 3
    assert (tmp_path / "pa.png").stat().st_size > 1000
