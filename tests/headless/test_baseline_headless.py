"""qgis_process: deepprospect:baseline maps a synthetic survey headless, identical to the in-process run."""

import json

import numpy as np
import rasterio
from deepprospect.core.evidence.stack import make_stack, write_evidence_stack
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import idw_grid
from deepprospect.core.sampling.labels import LabelSettings, build_training_set, read_stack_tags, save_training_set
from deepprospect.core.scoring.baseline import BaselineSettings, run_baseline
from deepprospect.core.synthetic import make_survey

ELEMENTS = ["Au", "As", "Cu", "K"]


def test_headless_forest_map_equals_in_process(run_json, tmp_path):
    survey = make_survey(seed=9)
    grid = GridSpec.from_extent(*survey.bounds, 400.0, survey.crs)
    columns = [survey.element_names.index(e) for e in ELEMENTS]
    stack, names, recipe = make_stack(idw_grid(survey.sample_xy, np.log10(survey.values[:, columns]), grid),
                                      ELEMENTS, normalise="z-score")
    stack_path = str(tmp_path / "stack.tif")
    write_evidence_stack(stack_path, stack, grid, names, recipe)
    training = build_training_set(stack.astype(np.float32), grid, names, survey.deposit_xy, survey.barren_xy,
                                  settings=LabelSettings(patch_size=1, negative_ratio=2.0),
                                  stack_tags=read_stack_tags(stack_path))
    npz = tmp_path / "set.npz"
    save_training_set(str(npz), training)
    out, csv_path = tmp_path / "map.tif", tmp_path / "importance.csv"
    code, result, log = run_json("deepprospect:baseline", TRAINING_SET=npz, STACK=stack_path, TREES=25, SEED=4,
                                 OUTPUT=out, IMPORTANCE=csv_path)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out) and "validation: accuracy" in log
    reference = tmp_path / "reference.tif"
    run_baseline(training, stack_path, str(reference), None, BaselineSettings(n_estimators=25, seed=4))
    with rasterio.open(out) as headless, rasterio.open(reference) as in_process:
        np.testing.assert_array_equal(headless.read(1), in_process.read(1))
        card = json.loads(headless.tags()["DEEPPROSPECT_MODEL_CARD"])
    assert card["architecture"] == "random_forest" and card["metrics"]["validation"]["auc"] is not None
    assert csv_path.read_text().splitlines()[0] == "band,importance,rank"
