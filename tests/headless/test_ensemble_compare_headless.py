"""qgis_process: deepprospect:ensemblecompare counts the members' and an ensemble's prospective cells headless."""

import csv

import numpy as np
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from osgeo import ogr


def test_run_on_the_demo_deposits(run_json, repo_root, tmp_path):
    demo = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    dataset = ogr.Open(str(demo))
    deposits = np.array([feature.GetGeometryRef().GetPoint_2D() for feature in dataset.GetLayerByName("deposits")])
    del dataset
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 500.0, "EPSG:32650")
    centres = grid.cell_centres().reshape(grid.rows, grid.cols, 2)
    near = np.min(np.linalg.norm(centres[:, :, None] - deposits, axis=-1), axis=-1)
    rng = np.random.default_rng(2)
    members = []
    for index in range(3):
        members.append(str(tmp_path / f"member{index}.tif"))
        noise = 0.2 * rng.standard_normal(grid.shape)
        write_geotiff(members[-1], np.clip(np.exp(-((near / 1000.0) ** 2)) + noise, 0, 1), grid, ["prospectivity"])
    mean = str(tmp_path / "mean.tif")
    table = tmp_path / "compare.csv"
    code, _, log = run_json("deepprospect:ensemble", MAPS=members, METHOD="average", OUTPUT=mean)
    assert code == 0, log
    code, result, log = run_json("deepprospect:ensemblecompare", MAPS=members, ENSEMBLE_MAPS=[mean],
                                 DEPOSITS=f"{demo}|layername=deposits", BARREN=f"{demo}|layername=barren_holes",
                                 OUTPUT=table)
    assert code == 0, log
    assert "Traceback" not in log
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["map"] for row in rows[:5]] == ["", "member0.tif", "member1.tif", "member2.tif", "mean.tif"]
    assert rows[4]["rule"] == "simple average: probability ≥ 0.5"
    assert float(rows[0]["prospective_cells"]) == grid.cell_count and float(rows[0]["deposit_cells"]) > 10
    assert 0 < float(rows[1]["deposit_cells"]) <= float(rows[0]["deposit_cells"])
    assert result["results"]["MEMBERS_MAD"] >= 0 and result["results"]["ENSEMBLES_MAD"] == 0
