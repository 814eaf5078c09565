"""qgis_process: a representative subset of the bad-input battery (tests/integration/test_bad_input_battery.py).

Headless, a bad input must end with a non-zero exit, the plugin's message and no traceback; the input stays as it
was and no output appears.
"""

import hashlib

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory, repo_root):
    folder = tmp_path_factory.mktemp("headless_battery")
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 1000.0, "EPSG:32650")
    path = folder / "map.tif"
    write_geotiff(str(path), np.random.default_rng(0).random(grid.shape), grid, ["prospectivity"])
    return path, repo_root / "resources" / "demo" / "demo_survey.gpkg"


CASES = {
    "report over the map": (lambda path, demo, out: {"REPORT": path}, "would overwrite the input"),
    "deposits are lines": (lambda path, demo, out: {"DEPOSITS": f"{demo}|layername=faults"}, "must be points"),
    "split field missing": (lambda path, demo, out: {"SPLIT_FIELD": "no_such_field"}, "has no field 'no_such_field'"),
    "metrics in a missing folder": (lambda path, demo, out: {"OUTPUT": out / "missing" / "metrics.csv"},
                                    "does not exist|Could not create"),
    "threshold out of range": (lambda path, demo, out: {"THRESHOLD": 1.5}, "between 0 and 1"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_exits_non_zero_with_the_message(run_json, demo_map, tmp_path, name):
    path, demo = demo_map
    overrides, message = CASES[name]
    before = hashlib.md5(path.read_bytes()).hexdigest()
    parameters = {"MAP": path, "DEPOSITS": f"{demo}|layername=deposits", "OUTPUT": tmp_path / "metrics.csv",
                  "REPORT": tmp_path / "report.html", **overrides(path, demo, tmp_path)}
    code, result, log = run_json("deepprospect:evaluate", **parameters)
    assert code != 0 and result is None, log
    assert "Traceback" not in log
    assert any(part in log for part in message.split("|")), log
    assert hashlib.md5(path.read_bytes()).hexdigest() == before
    assert list(tmp_path.iterdir()) == []
