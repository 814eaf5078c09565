"""deepprospect:spatialcv through processing.run: a synthetic signal stack, every output, folds by field, bad input."""

import csv

import numpy as np
import pytest
import rasterio
from deepprospect.core.evidence.stack import make_stack, write_evidence_stack
from deepprospect.core.grid import GridSpec
from deepprospect.core.sampling.labels import cell_xy
from deepprospect.core.scoring.cv_report import CV_TAG
from layer_factory import point_layer, wkt_layer
from qgis.core import QgsProcessingException
from scipy import ndimage

ALG = "deepprospect:spatialcv"
GRID = GridSpec(0.0, 6000.0, 100.0, 100.0, 60, 60, "EPSG:32650")


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A z-scored 3-band stack whose first band drives 24 deposits, the deposits and barren points."""
    rng = np.random.default_rng(4)
    bands = np.stack([ndimage.gaussian_filter(rng.normal(size=GRID.shape), 3) for _ in range(3)])
    stack, names, recipe = make_stack(bands, ["signal", "noise_a", "noise_b"], normalise="z-score")
    path = tmp_path_factory.mktemp("spatialcv") / "stack.tif"
    write_evidence_stack(str(path), stack, GRID, names, recipe)
    weights = np.exp(3 * stack[0].ravel())
    cells = rng.choice(weights.size, 24, replace=False, p=weights / weights.sum())
    deposits = cell_xy(*np.divmod(cells, GRID.cols), GRID)
    low = np.flatnonzero(stack[0].ravel() < -1)
    barren = cell_xy(*np.divmod(rng.choice(low, 10, replace=False), GRID.cols), GRID)
    return str(path), deposits, barren


def run_cv(run_alg, survey, tmp_path, **extra):
    stack, deposits, barren = survey
    parameters = {
        "STACK": stack,
        "DEPOSITS": point_layer(deposits, {"zone": ["west" if x < 3000 else "east" for x in deposits[:, 0]]},
                                name="deposits"),
        "BARREN": point_layer(barren, {}, name="barren"),
        "FOLDS": 3, "GAP": 300.0, "EXCLUSION_BUFFER": 300.0, "REPEATS": 2, "EPOCHS": 10,
        "MODEL_TYPES": ["mlp_ensemble", "random_forest", "logistic_regression"],
        "OUTPUT": str(tmp_path / "scores.csv"),
        "OUT_OF_FOLD": str(tmp_path / "oof.tif"),
        "CHART": str(tmp_path / "chart.png"),
        "REPORT": str(tmp_path / "section.html"),
    }
    parameters.update(extra)
    return run_alg(ALG, parameters), parameters


def test_every_output_and_scores_above_chance(run_alg, survey, tmp_path):
    result, _ = run_cv(run_alg, survey, tmp_path)
    with open(result["OUTPUT"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = {row["model"]: row for row in rows if row["fold"] == "all"}
    assert set(summary) == {"mlp_ensemble", "random_forest", "logistic_regression"}
    for row in summary.values():
        assert float(row["auc"]) > 0.7, row
        assert 0 <= float(row["capture_top_15"]) <= 1
    assert sum(row["fold"] != "all" for row in rows) == 3 * 3
    with rasterio.open(result["OUT_OF_FOLD"]) as src:
        assert src.count == 3
        assert list(src.descriptions) == ["mlp_ensemble", "random_forest", "logistic_regression"]
        assert CV_TAG in src.tags()
        values = src.read(1, masked=True)
        assert not values.mask.any() and 0 <= values.min() and values.max() <= 1
    assert open(result["CHART"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "Spatial cross-validation" in open(result["REPORT"], encoding="utf-8").read()


def test_folds_from_a_field_and_a_study_area(run_alg, survey, tmp_path):
    area = wkt_layer(["POLYGON((0 0, 4500 0, 4500 6000, 0 6000, 0 0))"])
    result, _ = run_cv(run_alg, survey, tmp_path, FOLD_METHOD="field", FOLD_FIELD="zone",
                       MODEL_TYPES=["logistic_regression"], STUDY_AREA=area)
    with open(result["OUTPUT"], newline="") as handle:
        folds = [row["fold"] for row in csv.DictReader(handle) if row["fold"] != "all"]
    assert len(folds) == 2
    with rasterio.open(result["OUT_OF_FOLD"]) as src:
        values = src.read(1, masked=True)
    assert values.mask[:, 46:].all() and not values.mask[:, :44].any()


def test_bad_input_is_refused_with_a_message(run_alg, survey, tmp_path):
    with pytest.raises(QgsProcessingException, match="cannot form"):
        run_cv(run_alg, survey, tmp_path, FOLDS=40, MODEL_TYPES=["logistic_regression"])
    with pytest.raises(QgsProcessingException, match="fold field"):
        run_cv(run_alg, survey, tmp_path, FOLD_METHOD="field", MODEL_TYPES=["logistic_regression"])
    with pytest.raises(QgsProcessingException, match="MODEL_TYPES"):
        run_cv(run_alg, survey, tmp_path, MODEL_TYPES=[])
    assert not (tmp_path / "scores.csv").exists()
