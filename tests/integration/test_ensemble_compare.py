"""deepprospect:ensemblecompare through processing.run: members and ensemble rules by known ground, CSV table,
log, barren points and areas, study area, reprojected points, bad input."""

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.ensemble import combine
from deepprospect.core.mapping.ensemble_compare import compare_areas, table_rows
from deepprospect.core.raster_io import write_geotiff
from layer_factory import RecordingFeedback, point_layer, wkt_layer
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)

ALG = "deepprospect:ensemblecompare"
GRID = GridSpec(400000.0, 3302000.0, 100.0, 100.0, 20, 16, "EPSG:32650")  # 16 rows × 20 columns
METHODS = ("average", "majority_vote", "plurality_vote")


def centres(rows, cols):
    return np.column_stack([GRID.x_min + (np.asarray(cols) + 0.5) * 100.0,
                            GRID.y_max - (np.asarray(rows) + 0.5) * 100.0])


DEPOSITS = centres([2, 8, 8, 14], [3, 10, 10, 17])
BARREN = centres([5, 12], [15, 2])
BARREN_AREA = "POLYGON((401200 3300200, 401800 3300200, 401800 3300700, 401200 3300700, 401200 3300200))"


@pytest.fixture(scope="module")
def maps(tmp_path_factory, run_alg_module):
    folder = tmp_path_factory.mktemp("compare")
    values = np.random.default_rng(3).uniform(0, 1, (4, *GRID.shape))
    members = []
    for index, array in enumerate(values):
        members.append(str(folder / f"member{index}.tif"))
        write_geotiff(members[-1], array, GRID, ["prospectivity"])
    ensembles = []
    for method in METHODS:
        ensembles.append(str(folder / f"{method}.tif"))
        run_alg_module("deepprospect:ensemble", {"MAPS": members, "METHOD": method, "THRESHOLD": 0.6,
                                                 "OUTPUT": ensembles[-1], "UNCERTAINTY": None})
    return members, ensembles, values.astype(np.float32).astype(np.float64)


def read_csv(path):
    layer = QgsVectorLayer(str(path), "table", "ogr")
    assert layer.isValid()
    return [{name: feature[name] for name in layer.fields().names()} for feature in layer.getFeatures()]


def test_table_counts_members_and_rules_by_ground(run_alg, maps, tmp_path):
    members, ensembles, values = maps
    feedback = RecordingFeedback()
    table = tmp_path / "compare.csv"
    result = run_alg(ALG, {"MAPS": members, "ENSEMBLE_MAPS": ensembles, "DEPOSITS": point_layer(DEPOSITS, {}),
                           "BARREN": point_layer(BARREN, {}), "BARREN_AREAS": wkt_layer([BARREN_AREA]),
                           "THRESHOLD": 0.6, "OUTPUT": str(table)}, feedback)
    barren_area = np.zeros(GRID.shape, bool)
    barren_area[13:16, 12:18] = True  # the cell centres inside the polygon
    expected = compare_areas(members, ensembles, DEPOSITS, threshold=0.6, barren_xy=BARREN, barren_area=barren_area)
    rows = read_csv(table)
    assert len(rows) == len(table_rows(expected)) == 1 + 7 + 6
    for got, want in zip(rows, table_rows(expected)):
        assert got["map"] == want["map"] and got["statistic"] == want["statistic"]
        for key in ("prospective_cells", "deposit_cells", "other_cells", "barren_cells", "barren_km2"):
            assert float(got[key]) == pytest.approx(want[key]), (want["map"], key)
    assert expected.cells == {"deposit": 3, "other": 298, "barren": 18 - 1 + 2}  # a deposit in the barren polygon
    majority = combine(values, "majority_vote", threshold=0.6)[2] == 1
    assert rows[6]["map"] == "majority_vote.tif" and float(rows[6]["prospective_cells"]) == majority.sum()
    assert result["MEMBERS_MAD"] == pytest.approx(expected.spreads["member"]["prospective"].mean_absolute_deviation)
    assert result["ENSEMBLES_MAD"] == pytest.approx(
        expected.spreads["ensemble"]["prospective"].mean_absolute_deviation)
    assert "Cells where every map has a value: 3 deposit, 298 other, 19 barren." in feedback.text
    assert "Members: prospective cells member0.tif" in feedback.text and "Ensembles: prospective" in feedback.text


def test_study_area_and_points_in_another_crs(run_alg, maps, tmp_path):
    members, _, _ = maps
    to_wgs84 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32650"),
                                      QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    lonlat = [to_wgs84.transform(QgsPointXY(x, y)) for x, y in DEPOSITS]
    area = "POLYGON((400000 3300800, 402000 3300800, 402000 3302000, 400000 3302000, 400000 3300800))"  # rows 0–11
    result = run_alg(ALG, {"MAPS": members, "DEPOSITS": point_layer([(p.x(), p.y()) for p in lonlat], {},
                                                                     crs="EPSG:4326"),
                           "STUDY_AREA": wkt_layer([area]), "OUTPUT": str(tmp_path / "t.csv")})
    rows = read_csv(tmp_path / "t.csv")
    assert float(rows[0]["prospective_cells"]) == 12 * 20 and float(rows[0]["deposit_cells"]) == 2
    assert result["ENSEMBLES_MAD"] is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: {"MAPS": m[:1]}, "at least two member maps"),
    (lambda m: {"DEPOSITS": point_layer(DEPOSITS + 1e5, {})}, "No deposit lies on the maps' grid"),
])
def test_bad_input_gives_a_clear_error_and_no_output(run_alg, maps, tmp_path, change, message):
    members, ensembles, _ = maps
    parameters = {"MAPS": members, "ENSEMBLE_MAPS": ensembles, "DEPOSITS": point_layer(DEPOSITS, {}),
                  "OUTPUT": str(tmp_path / "t.csv")}
    with pytest.raises(QgsProcessingException, match=message):
        run_alg(ALG, {**parameters, **change(members)})
    assert not (tmp_path / "t.csv").exists()
