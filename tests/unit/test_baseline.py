"""core.scoring.baseline: random forest / logistic regression on cell vectors, metrics, windowed map, stack checks."""

import csv
import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.evidence.stack import make_stack, write_evidence_stack
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import NODATA, write_geotiff
from deepprospect.core.sampling.augment import AugmentSettings
from deepprospect.core.sampling.labels import LabelSettings, build_training_set, read_stack_tags
from deepprospect.core.scoring.baseline import (
    MODEL_CARD_TAG,
    BaselineSettings,
    fit_baseline,
    run_baseline,
    training_rows,
)
from sklearn.ensemble import RandomForestClassifier

GRID = GridSpec(0.0, 400.0, 10.0, 10.0, 40, 40, "EPSG:32650")
NAMES = ["signal", "noise1", "noise2"]
DEPOSITS = np.array([(x, y) for x in (65.0, 205.0, 345.0) for y in (55.0, 195.0, 335.0)])
FAST = {"n_estimators": 20, "n_jobs": 1}


def raw_bands(seed=0):
    """A band with a bump around every deposit, two noise bands, and a nodata corner."""
    rng = np.random.default_rng(seed)
    x, y = GRID.x_min + (np.arange(40) + 0.5) * 10, GRID.y_max - (np.arange(40) + 0.5) * 10
    xx, yy = np.meshgrid(x, y)
    bump = sum(np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / 30.0**2) for dx, dy in DEPOSITS)
    bands = np.stack([5 + bump + rng.normal(0, 0.05, bump.shape), rng.normal(3, 1, bump.shape),
                      rng.normal(8, 2, bump.shape)])
    bands[:, :4, :4] = np.nan
    return bands


def write_stack(path, normalise="z-score", order=(0, 1, 2), names=NAMES, extra=False):
    """An evidence stack with a recipe (bands in ``order``, optionally an extra band) and its arrays."""
    bands = raw_bands()
    stack, _, recipe = make_stack(bands, NAMES, normalise=normalise)
    arrays, labels = stack[list(order)], [names[i] for i in order]
    if extra:
        arrays, labels = np.concatenate([arrays, np.ones((1, 40, 40))]), [*labels, "extra"]
    write_evidence_stack(str(path), arrays, GRID, labels, recipe)
    return str(path), arrays


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return write_stack(tmp_path_factory.mktemp("stack") / "stack.tif")


@pytest.fixture(scope="module")
def training(stack):
    path, arrays = stack
    settings = LabelSettings(patch_size=1, negative_ratio=3.0, n_repeats=2, seed=3)
    return build_training_set(arrays.astype(np.float32), GRID, NAMES, DEPOSITS, settings=settings,
                              augment=AugmentSettings(noise_variance=0.01, positive_crops=2, positive_shift_x=1,
                                                      positive_shift_y=1),
                              stack_tags=read_stack_tags(path))


def run(training, stack_path, out_dir, **settings):
    out, weights = os.path.join(out_dir, "map.tif"), os.path.join(out_dir, "weights.csv")
    window_rows = settings.pop("window_rows", None)
    baseline = run_baseline(training, stack_path, out, weights, BaselineSettings(**{**FAST, **settings}),
                            window_rows=window_rows)
    with rasterio.open(out) as src:
        return baseline, src.read(1), src.tags(), src.descriptions, weights


def test_forest_separates_an_easy_set_and_scores_every_split(training):
    baseline = fit_baseline(training, BaselineSettings(**FAST))
    assert set(baseline.metrics) == {"train", "validation", "test"}
    for split in ("validation", "test"):
        assert set(baseline.metrics[split]) == {"accuracy", "precision", "recall", "f1", "macro_precision",
                                                "macro_recall", "macro_f1", "confusion_matrix", "auc"}
        assert baseline.metrics[split]["auc"] > 0.95 and baseline.metrics[split]["recall"] > 0.8
    assert max(baseline.weights, key=baseline.weights.get) == "signal"


def test_logistic_regression_weights_the_signal_band(training):
    baseline = fit_baseline(training, BaselineSettings(method="logistic_regression"))
    assert baseline.metrics["validation"]["auc"] > 0.95
    assert baseline.weights["signal"] > 0 and max(baseline.weights, key=lambda n: abs(baseline.weights[n])) == "signal"
    assert baseline.card["architecture"] == "logistic_regression"


def test_map_equals_predict_proba_per_cell_and_nodata_is_kept(training, stack, tmp_path):
    path, arrays = stack
    baseline, prob, tags, descriptions, weights = run(training, path, tmp_path)
    valid = ~np.isnan(arrays).any(axis=0)
    cells = arrays[:, valid].T.astype(np.float32)
    expected = baseline.model.predict_proba(cells)[:, 1].astype(np.float32)
    np.testing.assert_array_equal(prob[valid], expected)
    assert (prob[~valid] == NODATA).all() and (~valid).sum() == 16
    assert descriptions == ("prospectivity",)
    card = json.loads(tags[MODEL_CARD_TAG])
    assert card["architecture"] == "random_forest" and card["patch_size"] == 1 and card["seed"] == 42
    assert card["band_names"] == NAMES and card["metrics"] == baseline.metrics
    assert card["normalisation"]["normalise"] == "z-score" and set(card["normalisation"]["statistics"]) == set(NAMES)
    with open(weights, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["band", "importance", "rank"] and [r[0] for r in rows[1:]] == NAMES
    assert dict((r[0], r[2]) for r in rows[1:])["signal"] == "1"


def test_windowed_map_equals_the_whole_map(training, stack, tmp_path):
    path, _ = stack
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    whole = run(training, path, tmp_path / "a")[1]
    windowed = run(training, path, tmp_path / "b", window_rows=3)[1]
    np.testing.assert_array_equal(whole, windowed)


def test_same_seed_same_map_other_seed_other_forest(training, stack, tmp_path):
    path, _ = stack
    maps = []
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        (tmp_path / folder).mkdir()
        maps.append(run(training, path, tmp_path / folder, seed=seed, n_jobs=2)[1])
    np.testing.assert_array_equal(maps[0], maps[1])
    assert not np.array_equal(maps[0], maps[2])


def test_forest_grown_in_chunks_equals_one_fit(training):
    baseline = fit_baseline(training, BaselineSettings(n_estimators=60, n_jobs=1, seed=5))
    rows = training_rows(training)
    one = RandomForestClassifier(n_estimators=60, class_weight="balanced", random_state=5)
    one.fit(training.x_vector[rows], training.y[rows])
    np.testing.assert_array_equal(baseline.model.predict_proba(training.x_vector),
                                  one.predict_proba(training.x_vector))


def test_bands_are_taken_by_name(training, stack, tmp_path):
    path, _ = stack
    other, _ = write_stack(tmp_path / "reordered.tif", order=(2, 0, 1), extra=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.testing.assert_array_equal(run(training, path, tmp_path / "a")[1], run(training, other, tmp_path / "b")[1])


def test_augmented_rows_only_when_asked(training):
    default, with_noise = training_rows(training), training_rows(training, ("noise",))
    assert not np.isin(training.kind[default], ["noise", "crop", "smote"]).any()
    assert (training.kind[with_noise] == "noise").sum() == (training.kind == "noise").sum() > 0
    assert not (training.kind[with_noise] == "crop").any()
    assert fit_baseline(training, BaselineSettings(augmented=("noise",), **FAST)).card["extra"]["training_rows"] == \
        with_noise.sum()
    with pytest.raises(InputError, match="crop"):
        BaselineSettings(augmented=("crop",))


def test_missing_band_is_named(training, tmp_path):
    other, _ = write_stack(tmp_path / "renamed.tif", names=["signal", "noise1", "other"])
    with pytest.raises(InputError, match=r"lacks the band.*noise2"):
        run(training, other, tmp_path)
    assert os.listdir(tmp_path) == ["renamed.tif"]


def test_other_normalisation_is_refused_with_the_differences(training, tmp_path):
    other, _ = write_stack(tmp_path / "minmax.tif", normalise="min-max")
    with pytest.raises(InputError, match=r"normalisation method.*z-score.*min-max"):
        run(training, other, tmp_path)
    plain = str(tmp_path / "plain.tif")
    write_geotiff(plain, raw_bands(), GRID, NAMES)  # no recipe: raw values
    with pytest.raises(InputError, match="statistics of 'signal'"):
        run(training, plain, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["minmax.tif", "plain.tif"]


def test_a_training_set_whose_stack_tag_is_not_a_recipe_is_refused(training, stack, tmp_path):
    manifest = {**training.manifest, "stack_tags": {"DEEPPROSPECT_STACK": {"normalisation": "zscore"}}}
    with pytest.raises(InputError, match="not an evidence-stack recipe"):
        run(type(training)(**{**training.__dict__, "manifest": manifest}), stack[0], tmp_path)


def test_one_class_in_training_is_refused(training):
    only_negatives = type(training)(**{**training.__dict__, "y": np.zeros_like(training.y)})
    with pytest.raises(InputError, match="needs both"):
        fit_baseline(only_negatives, BaselineSettings(**FAST))


def test_cancel_between_windows_leaves_no_file(training, stack, tmp_path):
    path, _ = stack
    calls = []

    def cancel_on_second_window():
        calls.append(1)
        return len(calls) > 3  # fitting checks once per chunk of trees and once after, then the first window

    with pytest.raises(Cancelled):
        run_baseline(training, path, str(tmp_path / "map.tif"), None, BaselineSettings(**FAST), window_rows=5,
                     is_cancelled=cancel_on_second_window)
    assert len(calls) == 4 and os.listdir(tmp_path) == []
