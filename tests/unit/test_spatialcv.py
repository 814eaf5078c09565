"""core.scoring.spatialcv: folds, samples, the gap, scores and out-of-fold maps of spatial cross-validation."""

import numpy as np
import pytest
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.sampling.labels import cell_xy
from deepprospect.core.scoring.spatialcv import (
    CvSettings,
    automatic_gap,
    baseline_fit_map,
    combine_maps,
    draw_samples,
    fold_of_deposits,
    run_spatial_cv,
    screening_selector,
    training_samples,
)
from scipy import ndimage
from scipy.spatial import cKDTree

GRID = GridSpec(0.0, 8000.0, 100.0, 100.0, 80, 80, "EPSG:32650")


def smooth_field(rng, sigma=3.0):
    field = ndimage.gaussian_filter(rng.normal(size=GRID.shape), sigma)
    return ((field - field.mean()) / field.std()).astype(np.float32)


def deposits_on_signal(signal, count, rng):
    """Deposit coordinates at cells drawn with probability rising steeply with ``signal``."""
    weights = np.exp(3 * signal.ravel())
    cells = rng.choice(signal.size, size=count, replace=False, p=weights / weights.sum())
    rows, cols = np.divmod(cells, GRID.cols)
    return cell_xy(rows, cols, GRID)


@pytest.fixture(scope="module")
def signal_data():
    rng = np.random.default_rng(3)
    stack = np.stack([smooth_field(rng) for _ in range(3)])
    return stack, deposits_on_signal(stack[0], 30, rng)


SETTINGS = CvSettings(n_folds=4, gap=500.0, exclusion_buffer=500.0, repeats=2, seed=0)


def forest():
    return baseline_fit_map("random_forest", n_estimators=50)


def test_per_cell_signal_scores_well_above_chance(signal_data):
    stack, deposits = signal_data
    models = {"rf": forest(), "lr": baseline_fit_map("logistic_regression")}
    result = run_spatial_cv(stack, GRID, deposits, models, SETTINGS, ensembles={"rank": ("rank", ["rf", "lr"])})
    for row in result.summary():
        assert row["auc_mean"] > 0.75, row
        assert row["capture"]["top_30"] > 0.6
        assert row["area_auc"] > 0.7


def test_no_signal_scores_about_chance(signal_data):
    stack, _ = signal_data
    rng = np.random.default_rng(11)
    unrelated = deposits_on_signal(smooth_field(rng), 30, rng)  # deposits follow a field the stack lacks
    result = run_spatial_cv(stack, GRID, unrelated, {"lr": baseline_fit_map("logistic_regression")},
                            CvSettings(n_folds=4, gap=500.0, exclusion_buffer=500.0, repeats=4, seed=0))
    assert abs(result.summary()[0]["auc_mean"] - 0.5) < 0.15


def test_no_training_sample_within_the_gap_of_its_held_out_fold(signal_data):
    stack, deposits = signal_data
    usable = np.ones(GRID.shape, bool)
    folds, fold_of = fold_of_deposits(deposits, SETTINGS)
    repeats, _ = draw_samples(deposits, folds, fold_of, GRID, usable, SETTINGS)
    seen = []

    def spy(task):
        seen.append(task)
        return np.zeros(GRID.shape)

    run_spatial_cv(stack, GRID, deposits, {"spy": spy}, SETTINGS)
    assert len(seen) == SETTINGS.repeats * SETTINGS.n_folds
    for task in seen:
        samples = repeats[task.repeat]
        test = samples.fold == task.fold
        tree = cKDTree(cell_xy(samples.rows[test], samples.cols[test], GRID))
        distance = tree.query(cell_xy(task.train.rows, task.train.cols, GRID))[0]
        assert distance.min() >= SETTINGS.gap
        assert (task.train.fold != task.fold).all()
        # background cells: outside the held-out fold's samples' gap, never positive cells of any deposit
        br, bc = np.nonzero(task.background)
        assert tree.query(cell_xy(br, bc, GRID))[0].min() >= SETTINGS.gap
    direct = training_samples(repeats[0], 0, SETTINGS.gap, GRID)
    assert len(direct.y) == len(seen[0].train.y)


def test_folds_and_draws_are_deterministic(signal_data):
    _, deposits = signal_data
    usable = np.ones(GRID.shape, bool)
    first = fold_of_deposits(deposits, SETTINGS)[0]
    again = fold_of_deposits(deposits, SETTINGS)[0]
    assert np.array_equal(first, again)
    a, _ = draw_samples(deposits, first, fold_of_deposits(deposits, SETTINGS)[1], GRID, usable, SETTINGS)
    b, _ = draw_samples(deposits, first, fold_of_deposits(deposits, SETTINGS)[1], GRID, usable, SETTINGS)
    for x, y in zip(a, b):
        assert np.array_equal(x.rows, y.rows) and np.array_equal(x.cols, y.cols) and np.array_equal(x.fold, y.fold)
    assert not np.array_equal(a[0].rows, a[1].rows)  # each repeat draws other negatives


def test_samples_follow_the_protocol(signal_data):
    _, deposits = signal_data
    usable = np.ones(GRID.shape, bool)
    folds, fold_of = fold_of_deposits(deposits, SETTINGS)
    samples = draw_samples(deposits, folds, fold_of, GRID, usable, SETTINGS)[0][0]
    positive = samples.y == 1
    assert positive.sum() == (samples.y == 0).sum()  # ratio 1
    # positives: 3 × 3 cells of each deposit, each once, owned by the nearest deposit
    centres = cell_xy(samples.rows, samples.cols, GRID)
    nearest_distance, nearest = cKDTree(deposits).query(centres)
    assert np.array_equal(samples.deposit[positive], nearest[positive])
    assert (nearest_distance[positive] <= np.hypot(100, 100) + 1e-6).all()
    assert (nearest_distance[~positive] > SETTINGS.exclusion_buffer).all()
    assert np.array_equal(samples.fold[positive], folds[samples.deposit[positive]])
    assert len(np.unique(samples.rows * GRID.cols + samples.cols)) == len(samples.y)


def test_out_of_fold_cells_come_from_their_folds_model(signal_data):
    stack, deposits = signal_data

    def fold_number(task):
        return np.full(GRID.shape, float(task.fold))

    result = run_spatial_cv(stack, GRID, deposits, {"fold": fold_number}, SETTINGS)
    _, fold_of = fold_of_deposits(deposits, SETTINGS)
    expected = fold_of(GRID.cell_centres().reshape(-1, 2)).reshape(GRID.shape)
    assert np.array_equal(result.out_of_fold["fold"], expected.astype(np.float32))


def test_study_area_and_capture(signal_data):
    stack, deposits = signal_data
    area = np.zeros(GRID.shape, bool)
    area[:, :60] = True
    inside = deposits[:, 0] < 6000
    result = run_spatial_cv(stack, GRID, deposits, {"rf": forest()}, SETTINGS, study_area=area)
    assert len(result.deposit_index) == inside.sum()
    oof = result.out_of_fold["rf"]
    assert np.isnan(oof[:, 60:]).all()
    # folds are clustered on every deposit on the grid; a fold whose deposits all lie outside is not scored
    empty = np.isnan(oof[:, :60])
    assert empty.mean() < 0.5 and (not empty.any() or any("folds without deposits" in n for n in result.notes))
    assert any("off the usable cells" in note for note in result.notes)


def test_perfect_map_captures_everything_and_ties_count_against_the_model(signal_data):
    stack, deposits = signal_data

    def oracle(task):  # 1 on every deposit cell of every fold, 0 elsewhere
        out = np.zeros(GRID.shape)
        rows = ((GRID.y_max - deposits[:, 1]) // 100).astype(int)
        cols = ((deposits[:, 0] - GRID.x_min) // 100).astype(int)
        out[rows, cols] = 1
        return out

    def flat(task):
        return np.ones(GRID.shape)

    result = run_spatial_cv(stack, GRID, deposits, {"oracle": oracle, "flat": flat}, SETTINGS)
    rows = {row["model"]: row for row in result.summary()}
    assert rows["oracle"]["capture"]["top_5"] == 1.0
    assert rows["oracle"]["area_auc"] > 0.99
    assert rows["flat"]["capture"]["top_30"] == 0.0  # a flat map puts every deposit at 100 % of the area
    assert rows["flat"]["area_auc"] == pytest.approx(0.5)
    assert rows["flat"]["auc_mean"] == pytest.approx(0.5)


def test_rank_ensemble_and_mean():
    usable = np.ones((2, 2), bool)
    a = np.array([[0.1, 0.2], [0.3, 0.4]])
    b = np.array([[0.9, 0.8], [0.7, 0.6]])
    assert np.allclose(combine_maps([a, b], "mean", usable), 0.5)
    assert np.allclose(combine_maps([a, b], "rank", usable), 0.625)


def test_settings_and_input_errors(signal_data):
    stack, deposits = signal_data
    with pytest.raises(InputError, match="fold method"):
        CvSettings(fold_method="random")
    with pytest.raises(InputError, match="block size"):
        CvSettings(fold_method="blocks")
    with pytest.raises(InputError, match="cannot form"):
        run_spatial_cv(stack, GRID, deposits[:3], {"rf": forest()}, SETTINGS)
    with pytest.raises(InputError, match="Ensemble"):
        run_spatial_cv(stack, GRID, deposits, {"rf": forest()}, SETTINGS, ensembles={"e": ("median", ["rf"])})
    with pytest.raises(InputError, match="fold field"):
        run_spatial_cv(stack, GRID, deposits, {"rf": forest()}, CvSettings(fold_method="field"))
    with pytest.raises(Cancelled):
        run_spatial_cv(stack, GRID, deposits, {"rf": forest()}, SETTINGS, is_cancelled=lambda: True)


def test_field_and_block_folds(signal_data):
    stack, deposits = signal_data
    by_field = ["west" if x < 4000 else "east" for x in deposits[:, 0]]
    result = run_spatial_cv(stack, GRID, deposits, {"lr": baseline_fit_map("logistic_regression")},
                            CvSettings(fold_method="field", gap=300.0, exclusion_buffer=300.0, repeats=1),
                            fold_field=by_field)
    assert len(result.fold_counts) == 2
    blocks = CvSettings(fold_method="blocks", block_size=2000.0, n_folds=3, gap=200.0, exclusion_buffer=200.0,
                        repeats=1)
    folds, fold_of = fold_of_deposits(deposits, blocks, grid=GRID)
    assert set(folds) <= {0, 1, 2}
    assert np.array_equal(fold_of(deposits), folds)


def test_automatic_gap():
    settings = CvSettings(exclusion_buffer=2000.0)
    assert automatic_gap(settings, GRID, 1, None)[0] == 2000.0
    assert automatic_gap(settings, GRID, 61, None) == (3000.0, "the widest window's half-width")
    recipe = {"evidence_reach": {"Au": 5000.0, "faults": 1000.0}}
    assert automatic_gap(settings, GRID, 1, recipe) == (5000.0, "the evidence reach recorded in the stack")


def test_kolari_folds_are_the_reference_protocols():
    """k-means folds of the 17 Kolari occurrences group them as the reference protocol lists them."""
    import json
    from pathlib import Path

    from osgeo import ogr

    source = ogr.Open(str(Path(__file__).parents[1] / "data" / "kolari_iocg" / "kolari_iocg.gpkg"))
    names, xy = [], []
    for feature in source.GetLayerByName("iocg_occurrences"):
        names.append(feature.GetField("Name"))
        xy.append(json.loads(feature.GetGeometryRef().ExportToJson())["coordinates"][:2])
    folds = fold_of_deposits(np.array(xy), CvSettings())[0]
    groups = {frozenset(n for n, f in zip(names, folds) if f == fold) for fold in set(folds)}
    assert groups == {
        frozenset({"Äkässaivo"}),
        frozenset({"Rautuoja", "Rautuvaara-Cu", "Rautuvaara", "Rautuvaara SW", "Taporova", "Juvakaisenmaa",
                   "Rautuhelukka", "Rytijänkkä", "Sivakkalehto"}),
        frozenset({"Lauttaselkä", "Latvarova"}),
        frozenset({"Aavahelukka", "Kuervitikko", "Hannukainen", "Tuohilehto"}),
        frozenset({"Mannakorpi"}),
    }


def test_band_selection_is_repeated_inside_every_fold(signal_data):
    stack, deposits = signal_data
    calls, seen = [], []

    def select(blanked, grid, training_xy, barren_xy):
        calls.append((blanked, training_xy))
        return [0]

    def spy(task):
        seen.append(task.stack.shape[0])
        return np.zeros(GRID.shape)

    result = run_spatial_cv(stack, GRID, deposits, {"spy": spy}, SETTINGS, select_bands=select)
    folds, fold_of = fold_of_deposits(deposits, SETTINGS)
    cell_fold = fold_of(GRID.cell_centres().reshape(-1, 2)).reshape(GRID.shape)
    assert len(calls) == SETTINGS.n_folds and set(seen) == {1}
    for fold, (blanked, training_xy) in enumerate(calls):
        assert np.isnan(blanked[:, cell_fold == fold]).all()  # the held-out region's evidence is hidden
        assert np.isfinite(blanked[:, cell_fold != fold]).mean() > 0.8  # less the gap around held-out samples
        assert len(training_xy) <= (folds != fold).sum()  # only training folds' deposits, beyond the gap
    assert result.fold_bands == {fold: [0] for fold in range(SETTINGS.n_folds)}


def test_screening_selector_keeps_the_signal_band(signal_data):
    stack, deposits = signal_data
    select = screening_selector(["signal", "noise_a", "noise_b"])
    assert 0 in select(stack, GRID, deposits, None)


def test_out_of_fold_deposit_cells_and_screening_respect_their_fold(signal_data):
    """A deposit's own cells map from the model that held it out, even nearer another fold's centre; a selection
    sees no training deposit within the gap of the held-out samples."""
    stack, deposits = signal_data
    by_field = ["a" if i % 2 else "b" for i in range(len(deposits))]  # interleaved folds: centres mislead
    settings = CvSettings(fold_method="field", gap=300.0, exclusion_buffer=300.0, repeats=1)
    seen = []

    def select(blanked, grid, training_xy, barren_xy):
        seen.append(training_xy)
        return [0, 1, 2]

    def fold_number(task):
        return np.full(GRID.shape, float(task.fold))

    result = run_spatial_cv(stack, GRID, deposits, {"fold": fold_number}, settings, fold_field=by_field,
                            select_bands=select)
    rows = ((GRID.y_max - deposits[:, 1]) // 100).astype(int)
    cols = ((deposits[:, 0] - GRID.x_min) // 100).astype(int)
    assert np.array_equal(result.out_of_fold["fold"][rows, cols], result.deposit_fold.astype(np.float32))
    for fold, training_xy in enumerate(seen):
        held = deposits[result.deposit_fold == fold]
        assert cKDTree(held).query(training_xy)[0].min() >= 300.0 - 100 * np.sqrt(2)
