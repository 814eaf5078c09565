"""models.cv_models: every network of spatial cross-validation trains on its folds and maps the study area."""

import numpy as np
import pytest
from deepprospect.core.grid import GridSpec
from deepprospect.core.scoring.spatialcv import CvSettings, run_spatial_cv
from deepprospect.models.cv_models import NETWORKS, cv_fit_maps

GRID = GridSpec(0.0, 3000.0, 100.0, 100.0, 30, 30, "EPSG:32650")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("key", ["affcnn", "mfaf_shufflenet_v2"])
def test_two_input_and_multi_branch_networks_map_their_folds(key):
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(3, *GRID.shape)).astype(np.float32)
    deposits = np.column_stack([rng.uniform(200, 2800, 8), rng.uniform(200, 2800, 8)])
    fit_maps, widest = cv_fit_maps([key], epochs=1)
    assert widest == NETWORKS[key].patch_size == 16
    result = run_spatial_cv(stack, GRID, deposits, fit_maps, CvSettings(n_folds=2, gap=0.0, exclusion_buffer=300.0,
                                                                        repeats=1, seed=0))
    row = next(row for row in result.summary() if row["model"] == key)
    assert np.isfinite(row["auc_mean"])
    values = result.out_of_fold[key][np.isfinite(result.out_of_fold[key])]
    assert values.size > 0.5 * GRID.cell_count and 0.0 <= values.min() <= values.max() <= 1.0
