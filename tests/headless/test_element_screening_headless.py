"""qgis_process: deepprospect:elementscreening screens a fault-distance raster against real Murchison gold."""

import csv

from murchison_rasters import fault_distance_stack


def test_run_selects_fault_distance_for_murchison_gold(run_json, data_dir, tmp_path):
    gpkg = data_dir / "murchison" / "murchison_copper.gpkg"
    stack = str(tmp_path / "faults.tif")
    fault_distance_stack(str(gpkg), stack, pixel=4000.0)
    table, chart = tmp_path / "table.csv", tmp_path / "z.png"
    code, result, log = run_json("deepprospect:elementscreening", STACK=stack,
                                 DEPOSITS=f"{gpkg}|layername=murchison_gold", OUTPUT=table, CHART=chart)
    assert code == 0, log
    assert "Traceback" not in log
    assert result["results"]["SELECTED_BANDS"] == "fault_distance"
    assert result["results"]["SELECTED_COUNT"] == 1
    with open(table, newline="") as handle:
        rows = {row["band"]: row for row in csv.DictReader(handle)}
    assert rows["fault_distance"]["direction"] == "low" and float(rows["fault_distance"]["z"]) > 2.58
    assert chart.stat().st_size > 1000
