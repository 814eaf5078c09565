"""Evaluation core: ROC and metrics against sklearn, exact success-rate curves, P-A crossing, errors, report."""

import json
import os

import numpy as np
import pytest
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.streaming import array_map, raster_map
from deepprospect.core.raster_io import read_map, write_geotiff
from deepprospect.core.scoring import evaluation
from deepprospect.core.scoring.evaluation import (
    evaluate_map,
    map_description,
    metrics_rows,
    plot_pngs,
    prediction_area,
    write_outputs,
)
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

SMALL = GridSpec(0.0, 200.0, 100.0, 100.0, 3, 2, "EPSG:32750")  # 2 rows × 3 columns of 100 m
GRID = GridSpec(0.0, 1000.0, 10.0, 10.0, 100, 100, "EPSG:32750")


def centre(grid, row, col):
    return [grid.x_min + (col + 0.5) * grid.pixel_width, grid.y_max - (row + 0.5) * grid.pixel_height]


def xy(grid, cells):
    return np.array([centre(grid, r, c) for r, c in cells], dtype=float).reshape(-1, 2)


def curve_at(curve, x):
    return np.interp(x, curve.x, curve.y)


def test_success_rate_curve_is_exact_on_a_tiny_map():
    values = np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]])
    result = evaluate_map(values, SMALL, xy(SMALL, [(0, 0), (0, 2)]))
    (training,) = result.sets
    # ranked cells 0.9 (deposit), 0.8, 0.7 (deposit), 0.6, 0.5, 0.4: one sixth of the area each
    np.testing.assert_allclose(curve_at(training.rate, np.arange(7) / 6), [0, 0.5, 0.5, 1, 1, 1, 1], atol=1e-12)
    assert training.rate.auc == pytest.approx((0.25 + 0.5 + 0.75 + 3) / 6)  # trapezoids: 0.75
    assert training.rate_name == "success rate" and training.n_deposits == 2


def test_cells_of_equal_probability_enter_together_and_deposits_count_per_point():
    values = np.array([[0.9, 0.5, 0.5], [0.2, 0.2, 0.1]])
    (training,) = evaluate_map(values, SMALL, xy(SMALL, [(0, 1), (0, 1), (1, 2)])).sets
    # the tied 0.5 cells (1/6 → 3/6 of the area) bring the two deposits of cell (0, 1) linearly
    np.testing.assert_allclose(curve_at(training.rate, [1 / 6, 2 / 6, 3 / 6, 5 / 6, 1]), [0, 1 / 3, 2 / 3, 2 / 3, 1])
    assert training.n_deposits == 3 and training.n_positive == 2  # two points in one cell: one positive cell


def random_map(seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, GRID.shape)
    values[:, :3] = np.nan
    cells = [(int(r), int(c)) for r, c in zip(rng.integers(0, 100, 40), rng.integers(3, 100, 40))]
    values[tuple(np.array(cells[:20]).T)] += 0.5  # deposits score higher on the whole
    return np.clip(values, 0, 1), cells


def test_roc_auc_and_threshold_metrics_equal_sklearn():
    values, cells = random_map()
    training, held_out = cells[:30], cells[30:]
    result = evaluate_map(values, GRID, xy(GRID, training), xy(GRID, held_out), threshold=0.6)
    assert [s.name for s in result.sets] == ["training", "held-out", "all"]
    deposit_cells = set(cells)
    negatives = np.array([values[r, c] for r in range(100) for c in range(3, 100) if (r, c) not in deposit_cells])
    for result_set, chosen in zip(result.sets, (training, held_out, cells)):
        positives = np.array([values[r, c] for r, c in sorted(set(chosen))])
        labels = np.r_[np.ones(positives.size), np.zeros(negatives.size)]
        scores = np.r_[positives, negatives]
        assert result_set.roc.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        predicted = scores >= 0.6
        assert result_set.accuracy == pytest.approx(accuracy_score(labels, predicted))
        assert result_set.recall == pytest.approx(recall_score(labels, predicted))
        assert result_set.precision == pytest.approx(precision_score(labels, predicted))
        assert result_set.f1 == pytest.approx(f1_score(labels, predicted))
        macro = precision_recall_fscore_support(labels, predicted, average="macro")[:3]
        assert (result_set.macro_precision, result_set.macro_recall, result_set.macro_f1) == pytest.approx(macro)
        assert result_set.confusion_matrix == confusion_matrix(labels, predicted).tolist()
        assert result_set.n_negative == negatives.size == 100 * 97 - len(deposit_cells)
    assert result.sets[0].roc.auc > 0.65  # the raised training cells are ranked high
    assert result.sets[1].rate_name == "prediction rate"
    rows = {(name, metric): value for name, metric, value in metrics_rows(result)}
    assert rows[("held-out", "prediction_rate_auc")] == result.sets[1].rate.auc
    assert rows[("training", "success_rate_auc")] == result.sets[0].rate.auc
    assert rows[("all", "threshold")] == 0.6 and rows[("all", "valid_cells")] == 9700
    (tn, fp), (fn, tp) = result.sets[1].confusion_matrix
    assert [rows[("held-out", name)] for name in ("true_negatives", "false_positives", "false_negatives",
                                                  "true_positives")] == [tn, fp, fn, tp]
    assert rows[("held-out", "macro_f1")] == result.sets[1].macro_f1
    assert ("all", "success_rate_auc") not in rows  # rates are per deposit set


def test_curves_on_a_map_with_many_ties_equal_sklearn_on_every_cell():
    values, cells = random_map(5)
    values = np.round(values, 1)  # 11 levels: deposits tie with thousands of cells
    result = evaluate_map(values, GRID, xy(GRID, cells))
    (training,) = result.sets
    deposit_cells = set(cells)
    others = [values[r, c] for r in range(100) for c in range(3, 100) if (r, c) not in deposit_cells]
    positives = [values[r, c] for r, c in sorted(deposit_cells)]
    fpr, tpr, _ = roc_curve(np.r_[np.ones(len(positives)), np.zeros(len(others))], np.r_[positives, others])
    np.testing.assert_allclose(curve_at(training.roc, fpr), tpr, atol=1e-12)
    area = values[:, 3:].ravel()
    deposits = [values[r, c] for r, c in cells]
    labels = np.r_[np.ones(len(deposits)), np.zeros(area.size)]
    area_fraction, captured, _ = roc_curve(labels, np.r_[deposits, area])
    np.testing.assert_allclose(curve_at(training.rate, area_fraction), captured, atol=1e-12)
    assert training.rate.auc == pytest.approx(roc_auc_score(labels, np.r_[deposits, area]), abs=1e-12)


def test_study_area_limits_roc_negatives_area_and_deposits_to_inside_cells():
    values, cells = random_map(3)
    inside = np.zeros(GRID.shape, bool)
    inside[10:70, 20:90] = True
    result = evaluate_map(values, GRID, xy(GRID, cells[:25]), xy(GRID, cells[25:]), study_area=inside,
                          threshold=0.6)
    used = [cell for cell in cells if inside[cell]]
    positives = np.array([values[cell] for cell in sorted(set(used))])
    others = inside.copy()
    others[tuple(np.array(used).T)] = False
    negatives = values[others]
    labels = np.r_[np.ones(positives.size), np.zeros(negatives.size)]
    overall = result.sets[-1]
    assert overall.name == "all" and overall.n_negative == negatives.size == 60 * 70 - len(set(used))
    assert overall.n_positive == positives.size < len(set(cells))
    assert overall.roc.auc == pytest.approx(roc_auc_score(labels, np.r_[positives, negatives]), abs=1e-12)
    assert overall.f1 == pytest.approx(f1_score(labels, np.r_[positives, negatives] >= 0.6))
    assert result.valid_cells == 60 * 70
    area = values[inside]  # success rate: the deposits against the area inside only
    training = [values[cell] for cell in cells[:25] if inside[cell]]
    rate_labels = np.r_[np.ones(len(training)), np.zeros(area.size)]
    assert result.sets[0].rate.auc == pytest.approx(roc_auc_score(rate_labels, np.r_[training, area]), abs=1e-12)
    pa = prediction_area(area, [values[cell] for cell in used])
    assert result.prediction_area.threshold == pytest.approx(pa.threshold)
    outside = sum(not inside[cell] for cell in cells[:25])
    assert any(f"{outside} on nodata cells or outside the study area" in note for note in result.notes)
    with pytest.raises(InputError, match=r"study area mask \(100, 99\) does not match the grid \(100 × 100"):
        evaluate_map(values, GRID, xy(GRID, cells), study_area=inside[:, :99])
    with pytest.raises(InputError, match="no cell with data inside the study area"):
        evaluate_map(values, GRID, xy(GRID, cells), study_area=np.zeros(GRID.shape, bool))


def test_barren_cells_are_the_negatives_when_given():
    values, cells = random_map(1)
    barren = [(5, 50), (6, 60), (7, 70), (8, 80), cells[0]]  # the last one holds a deposit
    result = evaluate_map(values, GRID, xy(GRID, cells[:20]), barren_xy=xy(GRID, barren))
    (training,) = result.sets
    positives = [values[r, c] for r, c in sorted(set(cells[:20]))]
    negatives = [values[r, c] for r, c in barren[:4]]
    labels = np.r_[np.ones(len(positives)), np.zeros(4)]
    assert training.roc.auc == pytest.approx(roc_auc_score(labels, np.r_[positives, negatives]))
    assert training.n_negative == 4 and result.negatives.startswith("4 barren cells")
    assert any("1 barren cell(s) also hold a deposit" in note for note in result.notes)


def test_prediction_area_crossing_on_a_synthetic_map():
    # the map's 10,000 values are spread evenly over 0–1, so A(t) = 100 (1 − t); 50 deposits have values
    # spread evenly over 0.5–1, so P(t) = 200 (1 − t) above 0.5. P = 100 − A at t = 2/3: 66.7 % in 33.3 %.
    rng = np.random.default_rng(3)
    values = ((rng.permutation(10000) + 0.5) / 10000).reshape(GRID.shape)
    wanted = 0.5 + (np.arange(50) + 0.5) / 100
    flat = np.argmin(np.abs(values.ravel()[:, None] - wanted), axis=0)
    result = evaluate_map(values, GRID, xy(GRID, zip(*np.unravel_index(flat, GRID.shape))))
    pa = result.prediction_area
    assert pa.crossed and pa.threshold == pytest.approx(2 / 3, abs=0.01)
    assert pa.deposit_percent_at == pytest.approx(200 / 3, abs=1.0)
    assert pa.area_percent_at == pytest.approx(100 / 3, abs=1.0)
    assert pa.deposit_percent_at + pa.area_percent_at == pytest.approx(100)
    assert pa.deposits_percent[0] == 100 and pa.area_percent[0] == 100


def test_prediction_area_reports_when_the_curves_do_not_cross():
    values = np.where(np.arange(10000).reshape(GRID.shape) < 1000, 0.9, 0.1)  # 10 % of the area at 0.9
    result = evaluate_map(values, GRID, xy(GRID, [(0, 5), (3, 7), (9, 99)]))
    pa = result.prediction_area
    assert not pa.crossed and pa.threshold == 0.9 and pa.deposit_percent_at == 100 and pa.area_percent_at == 10
    assert any("do not cross" in note for note in result.notes)



def test_prediction_area_crossing_between_thresholds_by_hand():
    # thresholds 0.1 … 0.4: A = 100, 75, 50, 25 %; deposits at 0.15 and 0.4: P = 100, 50, 50, 50 %
    # P + A − 100 = 100, 25, 0, −25: the curves meet at 0.3 (50 % of deposits in 50 % of the area)
    pa = prediction_area(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.15, 0.4]))
    assert pa.crossed and pa.threshold == pytest.approx(0.3) and pa.deposit_percent_at == pytest.approx(50)
    pa = prediction_area(np.array([0.0, 0.2, 0.4, 0.6, 0.8]), np.array([0.1, 0.7, 0.7, 0.7]))
    # A = 100, 80, 60, 40, 20; P = 100, 75, 75, 75, 0; gap = 100, 55, 35, 15, −80: between 0.6 and 0.8 at
    # 15 / 95 of the step: t = 0.6 + 0.2 · 15/95, P = 75 − 75 · 15/95
    assert pa.threshold == pytest.approx(0.6 + 0.2 * 15 / 95)
    assert pa.deposit_percent_at == pytest.approx(75 - 75 * 15 / 95)
    assert pa.area_percent_at == pytest.approx(100 - pa.deposit_percent_at)


def test_deposits_off_the_map_are_counted_and_none_left_is_an_error():
    values = np.array([[0.9, np.nan, 0.7], [0.6, 0.5, 0.4]])
    points = np.vstack([xy(SMALL, [(0, 0), (0, 1)]), [[-50.0, 50.0], [1000.0, 1000.0]]])
    result = evaluate_map(values, SMALL, points)
    assert result.sets[0].n_deposits == 1
    assert "2 training deposit(s) outside the map and 1 on nodata cells were left out (1 of 4 used)" in result.notes[0]
    with pytest.raises(InputError, match="No deposit lies on a map cell with data"):
        evaluate_map(values, SMALL, points[1:])


def test_constant_and_empty_maps_are_refused():
    with pytest.raises(InputError, match="constant map cannot rank"):
        evaluate_map(np.full(SMALL.shape, 0.5), SMALL, xy(SMALL, [(0, 0)]))
    with pytest.raises(InputError, match="no cell with data"):
        evaluate_map(np.full(SMALL.shape, np.nan), SMALL, xy(SMALL, [(0, 0)]))
    with pytest.raises(InputError, match="No barren point lies on a map cell"):
        evaluate_map(np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]]), SMALL, xy(SMALL, [(0, 0)]),
                     barren_xy=np.array([[5000.0, 5000.0]]))
    with pytest.raises(InputError, match=r"threshold is a probability between 0 and 1 \(got 50\)"):
        evaluate_map(np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]]), SMALL, xy(SMALL, [(0, 0)]), threshold=50)


def test_report_is_self_contained_and_holds_the_metrics(tmp_path):
    values, cells = random_map(2)
    result = evaluate_map(values, GRID, xy(GRID, cells[:30]), xy(GRID, cells[30:]))
    pngs = plot_pngs(result)
    assert set(pngs) == {"roc", "rate", "prediction_area"}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs.values())
    path = tmp_path / "report.html"
    write_outputs(result, [("map", "<my map>.tif"), ("deposits", "gold")], str(path), {"roc": str(tmp_path / "r.png")})
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 3 and "src=\"http" not in text
    assert "&lt;my map&gt;.tif" in text and "prediction_rate_auc" in text and "success_rate_auc" in text
    assert f"{result.sets[0].roc.auc:.4f}" in text and f"{result.sets[1].rate.auc:.4f}" in text
    assert f"{result.prediction_area.deposit_percent_at:.1f} % of the deposits" in text
    (tn, fp), (fn, tp) = result.sets[0].confusion_matrix
    assert "macro_f1" in text and f"{result.sets[0].macro_f1:.4f}" in text
    assert "Confusion matrices at the threshold" in text and f"TN {tn}</td><td>FP {fp}" in text
    assert f"FN {fn}</td><td>TP {tp}" in text
    assert sorted(os.listdir(tmp_path)) == ["r.png", "report.html"]
    assert (tmp_path / "r.png").read_bytes() == pngs["roc"]  # the same figure as embedded


def test_read_map_and_describe_its_tags(tmp_path):
    values = np.array([[0.9, np.nan, 0.7], [0.6, 0.5, 0.4]])
    card = {"architecture": "resnet18", "metrics": {"validation": {"auc": 0.91, "f1": None}}}
    path = str(tmp_path / "map.tif")
    write_geotiff(path, values, SMALL, ["prospectivity"], metadata={"DEEPPROSPECT_MODEL_CARD": json.dumps(card)})
    read = read_map(path)
    np.testing.assert_allclose(read.values, values.astype(np.float32), equal_nan=True)
    assert read.band_name == "prospectivity" and read.band_count == 1 and read.grid.shape == (2, 3)
    assert map_description(read.tags) == [("model", "resnet18; validation auc 0.910")]
    ensemble = {"method": "weighted_vote", "members": ["a.tif", "b.tif"]}
    assert map_description({"DEEPPROSPECT_ENSEMBLE": json.dumps(ensemble)}) == [
        ("ensemble", "weighted_vote of a.tif, b.tif")]


def results_of(evaluation):
    """Every number of an evaluation, for exact comparisons."""
    pa = evaluation.prediction_area
    sets = [(s.name, s.n_deposits, s.n_positive, s.n_negative, s.roc.x, s.roc.y, s.roc.auc,
             None if s.rate is None else (s.rate.x, s.rate.y, s.rate.auc), s.accuracy, s.recall, s.precision, s.f1)
            for s in evaluation.sets]
    return (sets, pa.thresholds, pa.deposits_percent, pa.area_percent, pa.threshold, pa.deposit_percent_at,
            pa.crossed, evaluation.negatives, evaluation.valid_cells, evaluation.notes)


def assert_same(a, b):
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    else:
        assert a == b


@pytest.mark.parametrize("tile", [(1, 100), (2, 3), (16, 33)])
@pytest.mark.parametrize("seed", range(4))
def test_map_read_in_tiny_windows_scores_as_the_whole_map_and_as_sklearn_on_every_cell(tile, seed):
    values, cells = random_map(seed)
    if seed % 2:
        values = np.round(values, 2)  # the deposits tie with many cells
    inside = np.random.default_rng(seed).uniform(size=GRID.shape) < 0.9 if seed >= 2 else None
    barren = xy(GRID, [(5, 50), (6, 60), (70, 7), cells[0]]) if seed == 3 else None
    points = xy(GRID, cells[:25]), xy(GRID, cells[25:]), barren, 0.6
    whole = evaluate_map(values, GRID, *points, study_area=inside)
    windowed = evaluate_map(array_map(values, GRID, inside, tile_shape=tile), GRID, *points)
    assert_same(results_of(windowed), results_of(whole))
    area = values[np.isfinite(values) & (True if inside is None else inside)]
    training = [values[cell] for cell in cells[:25] if np.isfinite(values[cell]) and (inside is None or inside[cell])]
    labels = np.r_[np.ones(len(training)), np.zeros(area.size)]
    assert windowed.sets[0].rate.auc == pytest.approx(roc_auc_score(labels, np.r_[training, area]), abs=1e-12)
    used = [cell for cell in cells if np.isfinite(values[cell]) and (inside is None or inside[cell])]
    pa = prediction_area(area, [values[cell] for cell in used])
    np.testing.assert_array_equal(windowed.prediction_area.thresholds, pa.thresholds)
    assert windowed.prediction_area.threshold == pytest.approx(pa.threshold, abs=1e-12)


def test_pa_thresholds_of_a_map_with_very_many_values_are_exact_quantiles_of_the_cells(monkeypatch):
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 1, GRID.shape)  # 10,000 distinct values: read at 4096 thresholds
    cells = list(zip(rng.integers(0, 100, 30), rng.integers(0, 100, 30)))
    exact = evaluate_map(values, GRID, xy(GRID, cells))
    monkeypatch.setattr(evaluation, "EXACT_PA_DISTINCT", 100)  # as if the map had millions of distinct values
    quantiles = evaluate_map(array_map(values, GRID, tile_shape=(7, 9)), GRID, xy(GRID, cells))
    assert_same(results_of(quantiles), results_of(exact))  # without ties, ranks of cells = ranks of values
    tied = np.where(values < 0.3, 0.0, values)  # 3,000 cells tie at 0
    pa = evaluate_map(array_map(tied, GRID, tile_shape=(7, 9)), GRID, xy(GRID, cells)).prediction_area
    ordered = np.sort(tied.ravel())
    expected = np.unique(ordered[np.linspace(0, ordered.size - 1, evaluation.MAX_PA_THRESHOLDS).round().astype(int)])
    np.testing.assert_array_equal(pa.thresholds, expected)
    np.testing.assert_array_equal(pa.area_percent, 100 * (10000 - np.searchsorted(ordered, expected)) / 10000)


def test_a_map_file_is_scored_window_by_window(tmp_path):
    values, cells = random_map(4)
    path = str(tmp_path / "map.tif")
    write_geotiff(path, values, GRID, ["prospectivity"])
    with raster_map(path, tile_shape=(8, 16)) as source:
        windowed = evaluate_map(source, GRID, xy(GRID, cells[:30]), xy(GRID, cells[30:]), threshold=0.4)
    whole = evaluate_map(read_map(path).values, GRID, xy(GRID, cells[:30]), xy(GRID, cells[30:]), threshold=0.4)
    assert_same(results_of(windowed), results_of(whole))
