"""Evaluation of a prospectivity map against known deposits: ROC, success/prediction rate, P-A plot, report.

Definitions (cells are the map's cells with data, inside the study area when one is given: cells outside it
count nowhere, neither in the area nor as negatives; a deposit counts where its point falls):

* **ROC curve and AUC** (sklearn ``roc_curve``): positives are the cells holding deposits of the set (a cell
  with two deposits counts once); negatives are the cells of the barren points when some are given (known
  non-deposits), otherwise every other cell with data (no deposit of any set), the usual stand-in when true
  negatives are unknown. Cells holding a deposit are never negatives.
* **Accuracy, recall, precision, F1** (sklearn) of "probability ≥ threshold" on those positives and negatives,
  their **macro averages** over the two classes (gao2022's F1, he2024's mean precision / recall / F1) and the
  **confusion matrix** [[TN, FP], [FN, TP]] of cells (:mod:`.metrics`). With every other cell as negatives,
  precision is small by construction (deposits are rare) and TN counts nearly the whole map.
* **Success-rate curve** (training deposits) and **prediction-rate curve** (held-out deposits): cells ranked by
  decreasing probability; x = cumulative % of the map's cells, y = cumulative % of the set's deposits
  (points: two deposits in one cell count twice) in those cells. Cells of equal probability enter together, so
  the curve is linear across ties. The area under the curve is 0.5 for a random map and near 1 when the
  deposits sit in the highest-ranked cells. Computed as the ROC curve of the deposits against every cell.
* **Prediction–area (P-A) plot** (Yousefi & Carranza 2015), over all deposits: for each threshold t, the % of
  deposits with probability ≥ t (prediction rate, falling with t) and the % of the map's area with
  probability ≥ t (occupied area). Drawn with the area axis reversed, the curves cross where
  P(t) = 100 − A(t): there, P % of the deposits lie in the A = (100 − P) % of the area with probability ≥ t.
  Between map values the curves are joined by straight lines; the crossing is found on those lines. Maps with
  more than :data:`MAX_PA_THRESHOLDS` distinct values are read at that many thresholds (evenly spaced ranks of
  the distinct values; past :data:`EXACT_PA_DISTINCT` distinct values, evenly spaced ranks of the cells, found
  exactly by :func:`~.streaming.order_statistics`: the same thresholds when no two cells tie), so the crossing
  is then exact to one such step.

ROC and rate curves are sklearn's ``roc_curve`` on the deposits and the negatives binned between the deposits'
values (see :func:`_roc`): the same curve as on every cell. The map is read window by window, never whole: one
pass counts the cells below and at each deposit's value (exact), and the deposits' and barren points' cells are
read by point, so memory stays a few windows whatever the map's size.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import auc, roc_curve

from ..areas import CellMask
from ..charts import html_figure, new_figure, png_bytes
from ..errors import InputError
from ..grid import GridSpec
from ..mapping.maps import check_threshold
from ..mapping.streaming import (
    DistinctValues,
    LevelCounts,
    MapSource,
    Summary,
    as_map_source,
    order_statistics,
    valid_values,
)
from ..mapping.streaming import check_study_area as check_study_area  # where the map steps have always imported it
from ..outputs import atomic_path
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import ENSEMBLE_TAG, MODEL_CARD_TAG
from ..sampling.labels import point_cells
from .metrics import confusion_counts, threshold_metrics

TRAINING, HELD_OUT, ALL = "training", "held-out", "all"
PLOTS = ("roc", "rate", "prediction_area")
# metric names of the confusion-matrix counts in the metrics table
TALLY_NAMES = {"tn": "true_negatives", "fp": "false_positives", "fn": "false_negatives", "tp": "true_positives"}
# P-A curves are drawn through at most this many thresholds (evenly spaced ranks of the distinct map values).
MAX_PA_THRESHOLDS = 4096
# Up to this many distinct values, the P-A thresholds are ranks of the distinct values; beyond, ranks of the cells.
EXACT_PA_DISTINCT = 1 << 18


@dataclass(frozen=True)
class Curve:
    """A curve as fractions (0–1) and the area under it."""

    x: np.ndarray
    y: np.ndarray
    auc: float


@dataclass(frozen=True)
class SetResult:
    """Scores of one deposit set: ROC against the negatives, its rate curve, and metrics at the threshold."""

    name: str
    n_deposits: int
    n_positive: int
    n_negative: int
    roc: Curve
    rate: Curve | None  # None for all deposits together: success and prediction rates are per set
    accuracy: float
    recall: float
    precision: float
    f1: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion_matrix: list[list[int]]  # [[TN, FP], [FN, TP]] of cells at the threshold

    @property
    def rate_name(self) -> str:
        """'success rate' for training deposits, 'prediction rate' for held-out ones."""
        return "prediction rate" if self.name == HELD_OUT else "success rate"


@dataclass(frozen=True)
class PredictionArea:
    """The P-A curves (in %) against the threshold, and where they cross."""

    thresholds: np.ndarray
    deposits_percent: np.ndarray
    area_percent: np.ndarray
    threshold: float
    deposit_percent_at: float
    area_percent_at: float
    crossed: bool


@dataclass
class Evaluation:
    """Everything :func:`evaluate_map` computed, plus notes on skipped deposits (for the log and report)."""

    sets: list[SetResult]
    prediction_area: PredictionArea
    threshold: float
    negatives: str
    valid_cells: int
    notes: list[str] = field(default_factory=list)


def evaluate_map(
    values: np.ndarray | MapSource,
    grid: GridSpec,
    training_xy: np.ndarray,
    held_out_xy: np.ndarray | None = None,
    barren_xy: np.ndarray | None = None,
    threshold: float = 0.5,
    *,
    study_area: CellMask | np.ndarray | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> Evaluation:
    """Score a map on ``grid`` (a (rows, cols) array, NaN = nodata, or a :class:`~.streaming.MapSource` read
    window by window) against deposits given as (n, 2) points in the grid's CRS.

    With ``study_area`` (a (rows, cols) bool mask), cells outside it are treated as nodata. Deposits and
    barren points outside the map, on nodata or outside the study area are left out and noted; an InputError
    is raised when no deposit is left, when there is no negative cell, or when the map is constant (it cannot
    rank cells). The map is read once (more when the P-A plot needs exact quantiles, see the module docstring);
    the cells of the deposits and barren points are read by point.
    """
    source = as_map_source(values, grid, study_area)
    check_threshold(threshold)
    notes: list[str] = []
    blank = "nodata cells" if source.study_area is None else "nodata cells or outside the study area"
    training = _points_on_data(training_xy, grid, source, "training deposit", blank, notes)
    held_out = _points_on_data(held_out_xy, grid, source, "held-out deposit", blank, notes)
    summary = Summary()
    area = LevelCounts(np.r_[training.values, held_out.values, threshold])
    distinct = DistinctValues(EXACT_PA_DISTINCT)
    for _, block in source.scan(is_cancelled, lambda percent: report(progress, 10 + 0.6 * percent)):
        valid = valid_values(block)
        summary.add(valid)
        area.add(valid)
        distinct.add(valid)
    if summary.count == 0:
        if source.study_area is not None:
            raise InputError("The map has no cell with data inside the study area; check that the study area "
                             "overlaps the map's data.")
        raise InputError("The map has no cell with data; check its nodata value.")
    if summary.low == summary.high:
        raise InputError(f"Every cell of the map has the value {summary.low:g}: a constant map cannot rank "
                         "cells, so it cannot be evaluated. Check that prediction produced a real map.")
    if training.cells.size + held_out.cells.size == 0:
        raise InputError(f"No deposit lies on a map cell with data. {' '.join(notes)} Check that the deposits "
                         "cover the map's extent and that their layer has the right CRS.")
    shared = np.intersect1d(training.cells, held_out.cells).size
    if shared:
        notes.append(f"{shared} cell(s) hold both a training and a held-out deposit: the held-out scores there "
                     "are not independent of training.")
    everywhere = _Tally.of(area)
    negatives, negatives_kind = _negatives(barren_xy, grid, source, training.joined(held_out), everywhere, blank,
                                           notes)
    report(progress, 70)
    sets = []
    for name, points in ((TRAINING, training), (HELD_OUT, held_out)):
        if points.cells.size:
            check_cancelled(is_cancelled)
            sets.append(_score_set(name, points, negatives, everywhere, threshold))
    if training.cells.size and held_out.cells.size:
        sets.append(_score_set(ALL, training.joined(held_out), negatives, everywhere, threshold))
    report(progress, 75)
    check_cancelled(is_cancelled)
    if distinct.overflow:
        thresholds, area_percent = _quantile_thresholds(source, summary, is_cancelled,
                                                        lambda percent: report(progress, 75 + 0.2 * percent))
    else:
        thresholds, area_percent = _distinct_thresholds(distinct.values, distinct.counts)
    pa = _prediction_area(thresholds, area_percent, np.r_[training.values, held_out.values])
    if not pa.crossed:
        notes.append(f"The P-A curves do not cross below the highest map value: at {pa.threshold:g}, "
                     f"{pa.deposit_percent_at:.1f} % of the deposits lie in {pa.area_percent_at:.1f} % of the area.")
    report(progress, 100)
    return Evaluation(sets, pa, float(threshold), negatives_kind, summary.count, notes)


def prediction_area(area_values: np.ndarray, deposit_values: np.ndarray) -> PredictionArea:
    """P-A curves of deposits on a map, as % of deposits and % of area with probability ≥ each threshold."""
    values, counts = np.unique(np.asarray(area_values, dtype=np.float64), return_counts=True)
    return _prediction_area(*_distinct_thresholds(values, counts), deposit_values)


def metrics_rows(evaluation: Evaluation) -> list[tuple[str, str, float]]:
    """(deposit set, metric, value) rows for the metrics table."""
    rows: list[tuple[str, str, float]] = []
    for result in evaluation.sets:
        rate = [] if result.rate is None else [(result.rate_name.replace(" ", "_") + "_auc", result.rate.auc)]
        for metric, value in [("deposits", result.n_deposits), ("positive_cells", result.n_positive),
                              ("negative_cells", result.n_negative), ("roc_auc", result.roc.auc), *rate,
                              ("accuracy", result.accuracy), ("recall", result.recall),
                              ("precision", result.precision), ("f1", result.f1),
                              ("macro_precision", result.macro_precision), ("macro_recall", result.macro_recall),
                              ("macro_f1", result.macro_f1),
                              *((TALLY_NAMES[key], count)
                                for key, count in confusion_counts(result.confusion_matrix).items())]:
            rows.append((result.name, metric, float(value)))
    pa = evaluation.prediction_area
    rows += [(ALL, "threshold", evaluation.threshold), (ALL, "valid_cells", float(evaluation.valid_cells)),
             (ALL, "pa_threshold", pa.threshold), (ALL, "pa_deposits_percent", pa.deposit_percent_at),
             (ALL, "pa_area_percent", pa.area_percent_at)]
    return rows


def confusion_table(name: str, matrix: Sequence[Sequence[int]]) -> str:
    """An HTML table of a confusion matrix [[TN, FP], [FN, TP]] of ``name`` deposits (rows: true class)."""
    (tn, fp), (fn, tp) = matrix
    return (f"<table><tr><th>{html.escape(name)} deposits</th><th>predicted negative</th>"
            f"<th>predicted prospective</th></tr><tr><th>negative cells</th><td>TN {tn}</td><td>FP {fp}</td></tr>"
            f"<tr><th>deposit cells</th><td>FN {fn}</td><td>TP {tp}</td></tr></table>")


def confusion_summary(result: SetResult) -> str:
    """One line of a set's threshold metrics, for the log."""
    counts = confusion_counts(result.confusion_matrix)
    return (f"{result.name} deposits: precision {result.precision:.4f}, recall {result.recall:.4f}, F1 "
            f"{result.f1:.4f}; macro precision {result.macro_precision:.4f}, macro recall {result.macro_recall:.4f}, "
            f"macro F1 {result.macro_f1:.4f}; confusion matrix TN {counts['tn']}, FP {counts['fp']}, FN "
            f"{counts['fn']}, TP {counts['tp']}")


def plot_pngs(evaluation: Evaluation) -> dict[str, bytes]:
    """PNG images of the ROC curves, the success/prediction-rate curves and the P-A plot, keyed by :data:`PLOTS`."""
    return {"roc": png_bytes(_roc_figure(evaluation)), "rate": png_bytes(_rate_figure(evaluation)),
            "prediction_area": png_bytes(_prediction_area_figure(evaluation))}


def map_description(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, text) lines about how a map was made, from its model card or ensemble tag (if any)."""
    lines = []
    for tag in (MODEL_CARD_TAG, ENSEMBLE_TAG):
        try:
            record = json.loads(tags[tag])
        except (KeyError, ValueError):
            continue
        if tag == ENSEMBLE_TAG and isinstance(record, dict):
            lines.append(("ensemble", f"{record.get('method')} of {', '.join(map(str, record.get('members', [])))}"))
        elif isinstance(record, dict):
            validation = (record.get("metrics") or {}).get("validation") or {}
            scores = ", ".join(f"{k} {v:.3f}" for k, v in validation.items() if isinstance(v, (int, float)))
            lines.append(("model", f"{record.get('architecture', '?')}; validation {scores or 'metrics not recorded'}"))
    return lines


def report_html(evaluation: Evaluation, inputs: Sequence[tuple[str, str]], pngs: Mapping[str, bytes],
                title: str = "Prospectivity map evaluation") -> str:
    """A self-contained HTML report: inputs, metrics table, P-A reading, notes and the plots (embedded)."""
    esc = html.escape
    names = [result.name for result in evaluation.sets]
    by_metric: dict[str, dict[str, float]] = {}
    for name, metric, value in metrics_rows(evaluation):
        by_metric.setdefault(metric, {})[name] = value
    header = "".join(f"<th>{esc(name)}</th>" for name in names + ([ALL] if ALL not in names else []))
    columns = names + ([ALL] if ALL not in names else [])
    metric_rows = "".join(
        f"<tr><th>{esc(metric)}</th>" + "".join(f"<td>{_format(values.get(name))}</td>" for name in columns) + "</tr>"
        for metric, values in by_metric.items())
    pa = evaluation.prediction_area
    pa_text = (f"P-A plot: {pa.deposit_percent_at:.1f} % of the deposits lie in the {pa.area_percent_at:.1f} % of "
               f"the area with probability ≥ {pa.threshold:.4g}"
               + ("" if pa.crossed else " (the curves do not cross below the highest value; read at that value)")
               + ".")
    input_rows = "".join(f"<tr><th>{esc(label)}</th><td>{esc(text)}</td></tr>" for label, text in inputs)
    confusion = "".join(confusion_table(result.name, result.confusion_matrix) for result in evaluation.sets)
    notes = "".join(f"<li>{esc(note)}</li>" for note in evaluation.notes) or "<li>none</li>"
    images = "".join(
        html_figure(pngs[key], caption)
        for key, caption in (("roc", "ROC curves"), ("rate", "Success-rate and prediction-rate curves"),
                             ("prediction_area", "Prediction–area (P-A) plot")) if key in pngs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0}}th,td{{border:1px solid #bbb;padding:0.2em 0.6em;text-align:left}}
td{{text-align:right}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>{esc(title)}</h1>
<h2>Inputs</h2><table>{input_rows}</table>
<h2>Metrics</h2><table><tr><th>metric</th>{header}</tr>{metric_rows}</table>
<p>Negatives for ROC and the threshold metrics: {esc(evaluation.negatives)}. Threshold for accuracy, recall,
precision, F1, their macro averages and the confusion matrix: probability ≥ {evaluation.threshold:g}.
{esc(pa_text)}</p>
<h2>Confusion matrices at the threshold</h2>{confusion}
<h2>Notes</h2><ul>{notes}</ul>
<h2>Plots</h2>{images}
<h2>How to read this</h2><ul>
<li><b>ROC AUC</b>: the chance that a deposit cell scores higher than a negative cell (0.5 = random).</li>
<li><b>Success rate</b> (training deposits) and <b>prediction rate</b> (held-out deposits): % of deposits
captured against % of the area, cells taken from the most to the least prospective. A curve well above the
diagonal means few cells hold many deposits; the prediction rate tells how the map does on deposits it did
not learn from.</li>
<li><b>P-A plot</b> (Yousefi &amp; Carranza 2015): where the prediction-rate curve crosses the (reversed) area
curve, P % of the deposits lie in (100 − P) % of the area; a higher crossing means a better map.</li>
<li><b>Precision, recall, F1</b> are those of the deposit class; their <b>macro</b> averages are the means of
the deposit class's and the negative class's scores (gao2022's F1, he2024's mean precision, recall and F1), so
the many correctly rejected negatives count as much as the few deposits. The <b>confusion matrix</b> counts
cells: true negatives (negative cells below the threshold), false positives (negative cells at or above it),
false negatives (deposit cells below it) and true positives (deposit cells at or above it).</li>
</ul></body></html>
"""


def write_outputs(evaluation: Evaluation, inputs: Sequence[tuple[str, str]], report: str | None = None,
                  plots: Mapping[str, str] | None = None) -> None:
    """Write the HTML report and the PNG plots (``plots`` maps a key of :data:`PLOTS` to a path) all or none."""
    plots = {key: path for key, path in (plots or {}).items() if path}
    unknown = set(plots) - set(PLOTS)
    if unknown:
        raise InputError(f"Unknown plot(s) {', '.join(sorted(unknown))}; choose among {', '.join(PLOTS)}.")
    pngs = plot_pngs(evaluation)
    files = {path: pngs[key] for key, path in plots.items()}
    if report:
        files[report] = report_html(evaluation, inputs, pngs).encode("utf-8")
    with ExitStack() as stack:
        for path, data in files.items():
            with open(stack.enter_context(atomic_path(path)), "wb") as handle:
                handle.write(data)


@dataclass(frozen=True)
class _Points:
    """Points on cells with data: the flat index of each one's cell and the map's value there."""

    cells: np.ndarray
    values: np.ndarray

    def joined(self, other: _Points) -> _Points:
        return _Points(np.r_[self.cells, other.cells], np.r_[self.values, other.values])

    def distinct_cells(self) -> _Points:
        """One entry per cell (a cell holding two points counts once)."""
        cells, first = np.unique(self.cells, return_index=True)
        return _Points(cells, self.values[first])


@dataclass(frozen=True)
class _Tally:
    """How many cells of a population lie below and at each of the counted levels, out of ``total``."""

    levels: np.ndarray
    below: np.ndarray
    equal: np.ndarray
    total: int

    @classmethod
    def of(cls, counts: LevelCounts) -> _Tally:
        return cls(counts.levels, *counts.at(counts.levels), counts.total)

    def at(self, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cells below, cells equal to) each of ``levels``, which must be counted levels."""
        index = np.searchsorted(self.levels, levels)
        return self.below[index], self.equal[index]

    def minus(self, values: np.ndarray) -> _Tally:
        """This population less the cells holding ``values`` (cells of it)."""
        removed = LevelCounts(self.levels)
        removed.add(values)
        below, equal = removed.at(self.levels)
        return _Tally(self.levels, self.below - below, self.equal - equal, self.total - removed.total)


def _points_on_data(xy: np.ndarray | None, grid: GridSpec, source: MapSource, what: str, blank: str,
                    notes: list[str]) -> _Points:
    """Cell and value of every point on a cell with data (one entry per point), read by point; the others are
    noted."""
    if xy is None or len(xy) == 0:
        return _Points(np.empty(0, dtype=np.int64), np.empty(0))
    rows, cols, inside = point_cells(xy, grid)
    values = source.sample(rows[inside], cols[inside])
    on_data = inside.copy()
    on_data[inside] = ~np.isnan(values)
    outside, nodata = int((~inside).sum()), int((inside & ~on_data).sum())
    if outside or nodata:
        notes.append(f"{outside} {what}(s) outside the map and {nodata} on {blank} were left out "
                     f"({int(on_data.sum())} of {len(rows)} used).")
    return _Points((rows * grid.cols + cols)[on_data], values[~np.isnan(values)])


def _negatives(barren_xy: np.ndarray | None, grid: GridSpec, source: MapSource, deposits: _Points,
               everywhere: _Tally, blank: str, notes: list[str]) -> tuple[_Tally, str]:
    """The negatives, counted at the levels: the barren cells (if barren points are given) or every other valid
    cell. Cells holding a deposit are never negatives."""
    deposit_cells = deposits.distinct_cells()
    if barren_xy is not None and len(barren_xy):
        barren = _points_on_data(barren_xy, grid, source, "barren point", blank, notes).distinct_cells()
        clash = np.isin(barren.cells, deposit_cells.cells)
        if clash.any():
            notes.append(f"{int(clash.sum())} barren cell(s) also hold a deposit and count as deposit cells only.")
        if clash.all():
            raise InputError("No barren point lies on a map cell with data and without a deposit. Check the "
                             "barren layer, or leave it empty to use every other cell as negatives.")
        counts = LevelCounts(everywhere.levels)
        counts.add(barren.values[~clash])
        return _Tally.of(counts), f"{counts.total} barren cells"
    negatives = everywhere.minus(deposit_cells.values)
    if negatives.total == 0:
        raise InputError("Every cell with data holds a deposit, so there is no negative cell to compare with.")
    return negatives, f"all {negatives.total} other cells with data (no barren points given)"


def _score_set(name: str, points: _Points, negatives: _Tally, everywhere: _Tally, threshold: float) -> SetResult:
    """ROC and metrics of a set's deposit cells against the negatives; its rate curve against the whole area."""
    positive_values = points.distinct_cells().values
    rate = None if name == ALL else _roc(points.values, everywhere)  # x: share of the area, y: of the deposits
    # metrics at the threshold on the positives and the negatives summed into 2 weighted samples (same values)
    false_positives = negatives.total - int(negatives.at(np.array([threshold]))[0][0])
    labels = np.r_[np.ones(positive_values.size, bool), False, False]
    predicted = np.r_[positive_values >= threshold, True, False]
    weights = np.r_[np.ones(positive_values.size), false_positives, negatives.total - false_positives]
    scores = threshold_metrics(labels, predicted, weights)
    return SetResult(name, int(points.cells.size), int(positive_values.size), int(negatives.total),
                     _roc(positive_values, negatives), rate, *(scores[key] for key in (
                         "accuracy", "recall", "precision", "f1", "macro_precision", "macro_recall", "macro_f1",
                         "confusion_matrix")))


def _roc(positive_values: np.ndarray, negatives: _Tally) -> Curve:
    """sklearn's ROC curve and its area, with the negatives binned by the positives' distinct values.

    Only the order of a negative relative to the positives shapes the curve, so each distinct positive value
    v_i gets rank 2i + 1, the negatives equal to it that rank too, and the negatives below, between and above
    the positive values the even ranks between: at most 2k + 1 weighted negatives stand for millions of cells
    and the curve and its area are exactly those of the full data. So the negatives are needed only as counts
    below and at the positive values, which the map's windows give without ever being held together.
    """
    levels = np.unique(positive_values)
    below, equal = negatives.at(levels)
    up_to = below + equal
    gaps = below - np.r_[0, up_to[:-1]]  # negatives strictly between level i − 1 and level i
    counts = np.r_[gaps, negatives.total - up_to[-1], equal]
    ranks = np.r_[2 * np.arange(levels.size + 1), 2 * np.arange(levels.size) + 1]
    keep = counts > 0
    labels = np.r_[np.ones(positive_values.size, bool), np.zeros(int(keep.sum()), bool)]
    scores = np.r_[2 * np.searchsorted(levels, positive_values) + 1, ranks[keep]]
    weights = np.r_[np.ones(positive_values.size), counts[keep]]
    false_rate, true_rate, _ = roc_curve(labels, scores, sample_weight=weights)
    return Curve(false_rate, true_rate, float(auc(false_rate, true_rate)))


def _distinct_thresholds(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P-A thresholds (the distinct values, or :data:`MAX_PA_THRESHOLDS` evenly spaced ranks of them) and the %
    of the area at or above each, from the map's distinct values and their counts."""
    total = int(counts.sum())
    below = np.r_[0, np.cumsum(counts)[:-1]]
    pick = np.arange(values.size)
    if values.size > MAX_PA_THRESHOLDS:
        pick = np.unique(np.linspace(0, values.size - 1, MAX_PA_THRESHOLDS).round().astype(int))
    return values[pick], 100.0 * (total - below[pick]) / total


def _quantile_thresholds(source: MapSource, summary: Summary, is_cancelled: CancelFn,
                         progress: ProgressFn) -> tuple[np.ndarray, np.ndarray]:
    """P-A thresholds at :data:`MAX_PA_THRESHOLDS` evenly spaced ranks of the cells (exact quantiles) and the % of
    the area at or above each; the same as :func:`_distinct_thresholds` on a map without ties."""
    ranks = np.unique(np.linspace(0, summary.count - 1, MAX_PA_THRESHOLDS).round().astype(np.int64))
    values, less = order_statistics(source, ranks, summary, is_cancelled=is_cancelled, progress=progress)
    thresholds, first = np.unique(values, return_index=True)
    return thresholds, 100.0 * (summary.count - less[first]) / summary.count


def _prediction_area(thresholds: np.ndarray, area: np.ndarray, deposit_values: np.ndarray) -> PredictionArea:
    """The P-A curves at ``thresholds`` (``area``: % of the area at or above each) and where they cross."""
    deposit_sorted = np.sort(np.asarray(deposit_values, dtype=np.float64))
    deposits = 100.0 * (deposit_sorted.size - np.searchsorted(deposit_sorted, thresholds, "left")) / deposit_sorted.size
    gap = deposits + area - 100.0  # falls with the threshold; 100 at the lowest value
    below = np.flatnonzero(gap <= 0)
    if below.size == 0:
        return PredictionArea(thresholds, deposits, area, float(thresholds[-1]), float(deposits[-1]),
                              float(area[-1]), False)
    k = below[0]
    fraction = gap[k - 1] / (gap[k - 1] - gap[k])
    at = float(thresholds[k - 1] + fraction * (thresholds[k] - thresholds[k - 1]))
    deposit_at = float(deposits[k - 1] + fraction * (deposits[k] - deposits[k - 1]))
    return PredictionArea(thresholds, deposits, area, at, deposit_at, 100.0 - deposit_at, True)


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


def _figure():
    figure = new_figure(6.0, 5.0)
    return figure, figure.add_subplot(1, 1, 1)


def _roc_figure(evaluation: Evaluation):
    figure, axes = _figure()
    for result in evaluation.sets:
        axes.plot(result.roc.x, result.roc.y, label=f"{result.name} deposits (AUC {result.roc.auc:.3f}, "
                                                    f"{result.n_positive} cells)")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="random")
    axes.set_xlabel(f"False positive rate ({evaluation.negatives.split(' (')[0]})")
    axes.set_ylabel("True positive rate (deposit cells)")
    axes.set_title("ROC curves")
    axes.legend(fontsize=8, loc="lower right")
    return figure


def _rate_figure(evaluation: Evaluation):
    figure, axes = _figure()
    for result in evaluation.sets:
        if result.rate is not None:
            axes.plot(100 * result.rate.x, 100 * result.rate.y,
                      label=f"{result.rate_name}, {result.name} deposits (AUC {result.rate.auc:.3f}, "
                            f"n = {result.n_deposits})")
    axes.plot([0, 100], [0, 100], color="grey", linestyle=":", linewidth=1, label="random")
    axes.set_xlabel("Area ranked by decreasing probability (%)")
    axes.set_ylabel("Deposits captured (%)")
    axes.set_title("Success-rate and prediction-rate curves")
    axes.legend(fontsize=8, loc="lower right")
    return figure


def _prediction_area_figure(evaluation: Evaluation):
    pa = evaluation.prediction_area
    figure, axes = _figure()
    axes.plot(pa.thresholds, pa.deposits_percent, color="#c0392b", label="deposits predicted (%)")
    axes.set_xlabel("Probability threshold")
    axes.set_ylabel("Deposits with probability ≥ threshold (%)", color="#c0392b")
    axes.set_ylim(0, 100)
    area_axes = axes.twinx()
    (area_line,) = area_axes.plot(pa.thresholds, pa.area_percent, color="#2c3e50", label="area occupied (%)")
    area_axes.set_ylim(100, 0)  # reversed, so the curves cross where P = 100 − A
    area_axes.set_ylabel("Area with probability ≥ threshold (%, reversed)", color="#2c3e50")
    axes.plot([pa.threshold], [pa.deposit_percent_at], "o", color="black",
              label=f"{pa.deposit_percent_at:.1f} % of deposits in {pa.area_percent_at:.1f} % of area "
                    f"(t = {pa.threshold:.3g})")
    handles = axes.get_legend_handles_labels()[0]
    axes.legend(handles=[handles[0], area_line, handles[1]], fontsize=8, loc="lower left")
    axes.set_title("Prediction–area (P-A) plot")
    return figure
