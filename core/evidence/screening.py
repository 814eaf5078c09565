"""Element screening by Z_AUC: which bands of a stack separate deposit cells from background cells.

Following gao2022 and gao2023, every band is scored on its own by a one-feature support vector machine;
the AUC of its decision function is tested against 0.5 with the Hanley–McNeil standard error

    Q1 = AUC / (2 − AUC),   Q2 = 2·AUC² / (1 + AUC),
    S_AUC = sqrt([AUC(1 − AUC) + (n_a − 1)(Q1 − AUC²) + (n_n − 1)(Q2 − AUC²)] / (n_a·n_n)),
    Z = (AUC − 0.5) / S_AUC,

and a band is kept when Z exceeds the critical value (2.58, the papers' 0.01 level: the two-sided 1 % point;
the reported p-value is one-sided, P(Z' > Z) under AUC = 0.5). n_a and n_n are the deposit and
non-deposit cells.

Choices the papers leave open, made here:

* Positives are the cells holding deposits, one per cell. Negatives are the cells of known barren
  points plus ``background_ratio`` × (deposit cells) random cells (seeded) drawn from the cells that have
  data, are not deposit or barren cells, and lie farther than ``exclusion_distance`` from every deposit
  cell centre.
* The SVM (RBF kernel, C = 1, gamma 'scale', balanced class weights) sees one standardised feature. Its
  AUC is computed from decision values predicted by stratified k-fold cross-validation (seeded), so a
  flexible RBF boundary never scores the very cells it was trained on; an overfitted band therefore
  scores near 0.5, not near 1.
* The plain ROC AUC of the raw values gives the direction: ``high`` when larger values are more
  prospective (AUC ≥ 0.5), else ``low``; the reported ``roc_auc`` is the AUC in that direction.
* A band with nodata at some sampled cells is scored on its cells with data; ``n_deposit`` and
  ``n_background`` say how many were used.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from rasterio.windows import Window
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..bands import WINDOW, ArrayBands, BandSource, grid_windows, read_cells
from ..errors import InputError
from ..grid import GridSpec
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..sampling.nearest import DepositCells, cells_of

# gao2022 / gao2023: Z_AUC > 2.58 marks an AUC significantly above 0.5.
DEFAULT_CRITICAL_VALUE = 2.58
# Fewest deposits (and background cells) a band needs for an AUC and its standard error.
MIN_CELLS_PER_CLASS = 2


@dataclass(frozen=True)
class ScreeningSettings:
    """How negatives are drawn, how the SVM AUC is cross-validated, and the significance threshold."""

    critical_value: float = DEFAULT_CRITICAL_VALUE
    background_ratio: float = 10.0
    exclusion_distance: float = 0.0
    folds: int = 5
    seed: int = 42

    def __post_init__(self) -> None:
        if not np.isfinite(self.critical_value):
            raise InputError(f"The critical value must be a finite number (got {self.critical_value}).")
        if not self.background_ratio >= 0:
            raise InputError(f"The background ratio must be 0 or more (got {self.background_ratio}).")
        if not self.exclusion_distance >= 0:
            raise InputError(f"The exclusion distance must be 0 or more (got {self.exclusion_distance}).")
        if self.folds < 2:
            raise InputError(f"Cross-validation needs at least 2 folds (got {self.folds}).")


@dataclass(frozen=True)
class BandScore:
    """The screening result of one band (NaN statistics when it had too few cells with data)."""

    band: str
    svm_auc: float
    roc_auc: float
    s_auc: float
    z: float
    p_value: float
    selected: bool
    direction: str
    n_deposit: int
    n_background: int


@dataclass
class Screening:
    """Scores of every band, the cells used, and notes on what was skipped (for the log)."""

    scores: list[BandScore]
    deposit_cells: np.ndarray
    background_cells: np.ndarray
    n_barren_cells: int
    notes: list[str] = field(default_factory=list)

    @property
    def selected(self) -> list[int]:
        """Indices of the selected bands, in stack order."""
        return [i for i, score in enumerate(self.scores) if score.selected]


def auc_standard_error(auc, n_deposit, n_background) -> np.ndarray:
    """S_AUC of gao2022/gao2023 (Hanley & McNeil) for AUC values and class sizes (broadcasts)."""
    auc = np.asarray(auc, dtype=np.float64)
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    variance = (auc * (1.0 - auc) + (np.asarray(n_deposit) - 1.0) * (q1 - auc**2)
                + (np.asarray(n_background) - 1.0) * (q2 - auc**2)) / (np.asarray(n_deposit) * n_background)
    return np.sqrt(variance)


def z_auc(auc, n_deposit, n_background) -> np.ndarray:
    """Z = (AUC − 0.5) / S_AUC; infinite when S_AUC is 0 (AUC exactly 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(auc, dtype=np.float64) - 0.5) / auc_standard_error(auc, n_deposit, n_background)


def svm_auc(values: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 42) -> float:
    """Cross-validated AUC of a one-feature RBF SVM: decision values of cells left out of training.

    ``folds`` is lowered to the size of the smaller class when that is smaller.
    """
    labels = np.asarray(labels, dtype=bool)
    splits = min(folds, int(labels.sum()), int((~labels).sum()))
    model = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced"))
    cv = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    decision = cross_val_predict(model, np.asarray(values, dtype=np.float64)[:, None], labels, cv=cv,
                                 method="decision_function")
    return float(roc_auc_score(labels, decision))


def screen_bands(
    stack: np.ndarray | BandSource,
    grid: GridSpec,
    deposit_xy: np.ndarray,
    band_names: Sequence[str],
    barren_xy: np.ndarray | None = None,
    settings: ScreeningSettings = ScreeningSettings(),
    *,
    workers: int | None = None,
    window: int = WINDOW,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> Screening:
    """Score every band of ``stack`` (bands, rows, cols; NaN = nodata) by Z_AUC.

    Only the cells scored are kept: the stack is read window by window (see :mod:`.bands`), first the
    windows holding deposit and barren points, then every window once to count the cells a random
    background cell may be drawn from, then the windows holding the drawn cells. The seed draws ranks among
    those cells in row-major order, so the same cells are drawn whatever the window size.

    Args:
        stack: the evidence bands on ``grid``: an array, or a band source such as a
            :class:`~.bands.RasterBands` of the stack file.
        grid: the stack's grid; points are in its CRS.
        deposit_xy: (n, 2) deposit coordinates (positives).
        band_names: one name per band.
        barren_xy: optional (m, 2) barren drill holes (known negatives).
        settings: negatives, folds, seed and critical value.
        workers: threads for the per-band SVMs (default: every CPU).
        window: side of the windows the stack is read in.
        progress: called with 0–100.
        is_cancelled: polled between windows and between batches of bands; a True answer raises
            :class:`Cancelled`.
    """
    source = ArrayBands(stack) if isinstance(stack, np.ndarray) else stack
    if (source.rows, source.cols) != grid.shape:
        raise InputError(f"The stack has shape {(source.count, source.rows, source.cols)}; expected (bands, "
                         f"{grid.rows}, {grid.cols}).")
    if source.count == 0:
        raise InputError("The stack has no bands.")
    if len(band_names) != source.count:
        raise InputError(f"The stack has {source.count} bands but {len(band_names)} band names.")
    has_barren = barren_xy is not None and len(barren_xy) > 0
    notes: list[str] = []
    barren_notes: list[str] = []
    deposit_points = _point_cells(deposit_xy, grid, "deposit", notes)
    barren_points = _point_cells(barren_xy, grid, "barren point", barren_notes) if has_barren else deposit_points[:0]
    points = _PointValues(source, np.concatenate([deposit_points, barren_points]), window, is_cancelled)
    deposits = points.on_data(deposit_points, "deposit", notes)
    if deposits.size < MIN_CELLS_PER_CLASS:
        raise InputError(
            f"Only {deposits.size} deposit cell(s) with data remain; Z_AUC needs at least {MIN_CELLS_PER_CLASS}. "
            f"{' '.join(notes)} Check that the deposits lie on the stack and in its CRS, or add deposits.")
    barren = deposit_points[:0]
    if has_barren:
        notes += barren_notes
        barren = points.on_data(barren_points, "barren point", notes)
        clash = np.isin(barren, deposits)
        if clash.any():
            notes.append(f"{int(clash.sum())} barren cell(s) also hold a deposit and count as deposits only.")
            barren = barren[~clash]
    pool = _BackgroundPool(source, grid, deposits, points.cells, settings.exclusion_distance, window)
    random, random_values = pool.draw(round(float(settings.background_ratio) * deposits.size), settings.seed,
                                      notes, progress, is_cancelled)
    background = np.concatenate([barren, random])  # the pool holds no barren cell
    order = np.argsort(background)
    background = background[order]
    if background.size < MIN_CELLS_PER_CLASS:
        raise InputError(
            f"Only {background.size} non-deposit cell(s) to compare with; Z_AUC needs at least "
            f"{MIN_CELLS_PER_CLASS}. Raise the background ratio, lower the exclusion distance or add barren points.")
    report(progress, 5)
    labels = np.r_[np.ones(deposits.size, bool), np.zeros(background.size, bool)]
    samples = np.concatenate([points.values(deposits), np.concatenate([points.values(barren), random_values],
                                                                      axis=1)[:, order]], axis=1)
    scores = _score_bands(samples, labels, band_names, settings, workers, notes, progress, is_cancelled)
    return Screening(scores, deposits, background, int(barren.size), notes)


def selected_stack_tags(screening: Screening,
                        settings: ScreeningSettings) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Tags for the stack of selected bands: the criterion and every band's Z (JSON), and Z and direction per band."""
    record = {"algorithm": "elementscreening", "critical_value": settings.critical_value,
              "background_ratio": settings.background_ratio, "exclusion_distance": settings.exclusion_distance,
              "folds": settings.folds, "seed": settings.seed,
              "selected": [screening.scores[i].band for i in screening.selected],
              "z": {score.band: score.z if math.isfinite(score.z) else None for score in screening.scores}}
    bands = [{"Z_AUC": f"{screening.scores[i].z:.6g}", "DIRECTION": screening.scores[i].direction}
             for i in screening.selected]
    return {"DEEPPROSPECT_SCREENING": json.dumps(record)}, bands


def plot_z_scores(screening: Screening, path: str, critical_value: float = DEFAULT_CRITICAL_VALUE) -> None:
    """Bar chart (PNG) of Z_AUC per band with the critical value drawn; selected bars highlighted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = [score.band for score in screening.scores]
    z = np.array([score.z for score in screening.scores], dtype=np.float64)
    shown = np.nan_to_num(np.clip(z, -10.0 * max(abs(critical_value), 1.0), 10.0 * max(abs(critical_value), 1.0)))
    colours = ["#c0392b" if score.selected else "#95a5a6" for score in screening.scores]
    figure = Figure(figsize=(max(6.0, 0.3 * len(names) + 2.0), 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(np.arange(len(names)), shown, color=colours)
    critical = axes.axhline(critical_value, color="#2c3e50", linestyle="--", linewidth=1,
                            label=f"critical value {critical_value:g}")
    axes.axhline(0.0, color="black", linewidth=0.5)
    axes.set_xticks(np.arange(len(names)))
    axes.set_xticklabels(names, rotation=90, fontsize=8)
    axes.set_ylabel("Z_AUC (SVM AUC vs 0.5)")
    axes.set_title(f"Element screening: {len(screening.selected)} of {len(names)} band(s) selected")
    axes.legend(handles=[Patch(color="#c0392b", label="selected"), Patch(color="#95a5a6", label="not selected"),
                         critical], fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png")


def _point_cells(xy: np.ndarray, grid: GridSpec, what: str, notes: list[str]) -> np.ndarray:
    """Flat cells holding the points, in point order; points outside the grid are noted and skipped."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        col = np.floor((xy[:, 0] - grid.x_min) / grid.pixel_width)
        row = np.floor((grid.y_max - xy[:, 1]) / grid.pixel_height)
    inside = (col >= 0) & (col < grid.cols) & (row >= 0) & (row < grid.rows)
    if (~inside).any():
        notes.append(f"{int((~inside).sum())} {what}(s) outside the stack's extent were skipped.")
    return (row[inside] * grid.cols + col[inside]).astype(np.int64)


class _PointValues:
    """Every band's values at the cells of the deposit and barren points, read once."""

    def __init__(self, source: BandSource, cells: np.ndarray, window: int, is_cancelled: CancelFn) -> None:
        self.cells = np.unique(cells)
        self._values = read_cells(source, *np.divmod(self.cells, source.cols), tile=window,
                                  is_cancelled=is_cancelled)

    def values(self, cells: np.ndarray) -> np.ndarray:
        """(bands, n) float64 values at ``cells`` (cells of the points)."""
        return self._values[:, np.searchsorted(self.cells, cells)]

    def on_data(self, cells: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
        """Sorted unique ``cells`` with a value in some band; points on nodata cells and shared cells are noted."""
        on_data = np.isfinite(self.values(cells)).any(axis=0)
        if (~on_data).any():
            notes.append(f"{int((~on_data).sum())} {what}(s) on nodata cells (no value in any band) were skipped.")
        cells = cells[on_data]
        unique = np.unique(cells)
        if unique.size < cells.size:
            notes.append(f"{cells.size - unique.size} {what}(s) share a cell with another and count once "
                         f"({unique.size} {what} cell(s) remain).")
        return unique


class _BackgroundPool:
    """The cells a random background cell may be: a value in some band, farther than the exclusion distance
    from every deposit cell centre, and no deposit or barren point in it.

    They are counted window by window and row by row, so the cell of any rank among them in row-major order
    (the order of ``np.flatnonzero`` over the whole grid) is found again by reading one window.
    """

    def __init__(self, source: BandSource, grid: GridSpec, deposits: np.ndarray, point_cells: np.ndarray,
                 exclusion: float, window: int) -> None:
        self.source, self.grid, self.exclusion, self.window = source, grid, exclusion, window
        self.point_rc = np.column_stack(np.divmod(point_cells, grid.cols))
        self.deposit_rc = np.column_stack(np.divmod(deposits, grid.cols))
        self.deposits = DepositCells(self.deposit_rc, grid) if exclusion > 0 else None
        self.counts = np.zeros((grid.rows, -(-grid.cols // window)), dtype=np.int64)

    def draw(self, wanted: int, seed: int, notes: list[str], progress: ProgressFn,
             is_cancelled: CancelFn) -> tuple[np.ndarray, np.ndarray]:
        """``wanted`` random cells of the pool (seeded, sorted) and their (bands, n) values; all when fewer."""
        if wanted == 0:
            return np.empty(0, dtype=np.int64), np.empty((self.source.count, 0))
        windows = list(grid_windows(self.grid.rows, self.grid.cols, self.window, self.window))
        for index, part in enumerate(windows):
            check_cancelled(is_cancelled)
            self.counts[part.toslices()[0], part.col_off // self.window] = self._pool(part).sum(axis=1)
            report(progress, 4.0 * (index + 1) / len(windows))
        available = int(self.counts.sum())
        if available < wanted:
            notes.append(f"Only {available} background cell(s) are available (wanted {wanted}); all are used.")
            wanted = available
        ranks = np.sort(np.random.default_rng(seed).choice(available, size=wanted, replace=False))
        row_ends = np.cumsum(self.counts.sum(axis=1))
        rows = np.searchsorted(row_ends, ranks, side="right")
        in_row = ranks - row_ends[rows] + self.counts[rows].sum(axis=1)
        column_ends = np.cumsum(self.counts[rows], axis=1)
        window_cols = (column_ends <= in_row[:, None]).sum(axis=1)
        in_window = in_row - column_ends[np.arange(wanted), window_cols] + self.counts[rows, window_cols]
        cells, values = np.empty(wanted, dtype=np.int64), np.empty((self.source.count, wanted))
        groups = rows // self.window * self.counts.shape[1] + window_cols
        for group in np.unique(groups):
            check_cancelled(is_cancelled)
            members = np.flatnonzero(groups == group)
            part = windows[group]
            pool, window_values = self._pool(part, with_values=True)
            local_rows = rows[members] - part.row_off
            local_cols = [np.flatnonzero(pool[row])[rank] for row, rank in zip(local_rows, in_window[members])]
            cells[members] = rows[members] * self.grid.cols + part.col_off + np.array(local_cols)
            values[:, members] = window_values[:, local_rows, local_cols]
        return cells, values

    def _pool(self, part: Window, with_values: bool = False):
        """(height, width) mask of the pool in ``part`` (and the window's values when asked)."""
        values = self.source.read(part)
        pool = np.isfinite(values).any(axis=0)
        if self.deposits is not None:
            pool &= self._away(part)
        rows, cols = self.point_rc[:, 0] - part.row_off, self.point_rc[:, 1] - part.col_off
        here = (rows >= 0) & (rows < part.height) & (cols >= 0) & (cols < part.width)
        pool[rows[here], cols[here]] = False
        return (pool, values) if with_values else pool

    def _away(self, part: Window) -> np.ndarray:
        """Cells of ``part`` farther than the exclusion distance from every deposit cell centre."""
        rows, cols = part.toslices()
        return self.deposits.beyond(cells_of(rows, cols), self.exclusion).reshape(part.height, part.width)


def _score_bands(samples: np.ndarray, labels: np.ndarray, band_names: Sequence[str], settings: ScreeningSettings,
                 workers: int | None, notes: list[str], progress: ProgressFn, is_cancelled: CancelFn
                 ) -> list[BandScore]:
    """SVM and plain ROC AUC of every band (threads: libsvm releases the GIL), then Z and p vectorised."""
    workers = workers or os.cpu_count() or 1
    batch = 4 * workers
    raw: list[tuple[float, float, int, int]] = []
    with Parallel(n_jobs=workers, prefer="threads") as parallel:
        for start in range(0, samples.shape[0], batch):
            check_cancelled(is_cancelled)
            raw += parallel(delayed(_score_band)(values, labels, settings) for values in samples[start:start + batch])
            report(progress, 5 + 95 * min(start + batch, samples.shape[0]) / samples.shape[0])
    svm, roc_high, n_dep, n_bg = (np.array(column) for column in zip(*raw))
    z = z_auc(svm, n_dep, n_bg)
    s = auc_standard_error(svm, n_dep, n_bg)
    p = norm.sf(z)
    scores = []
    for i, name in enumerate(band_names):
        if np.isnan(svm[i]):
            notes.append(f"{name}: only {n_dep[i]} deposit and {n_bg[i]} background cell(s) have data; not scored.")
        elif n_dep[i] < labels.sum() or n_bg[i] < (~labels).sum():
            notes.append(f"{name}: nodata at {labels.sum() - n_dep[i]} deposit and {(~labels).sum() - n_bg[i]} "
                         "background cell(s); scored on the cells with data.")
        scores.append(BandScore(
            band=str(name), svm_auc=float(svm[i]), roc_auc=float(max(roc_high[i], 1.0 - roc_high[i])),
            s_auc=float(s[i]), z=float(z[i]), p_value=float(p[i]),
            selected=bool(z[i] > settings.critical_value), direction=_direction(roc_high[i]),
            n_deposit=int(n_dep[i]), n_background=int(n_bg[i])))
    return scores


def _direction(roc_auc_high: float) -> str:
    """'high' when larger values are more prospective, 'low' when smaller are, '' when unscored."""
    if np.isnan(roc_auc_high):
        return ""
    return "high" if roc_auc_high >= 0.5 else "low"


def _score_band(values: np.ndarray, labels: np.ndarray, settings: ScreeningSettings) -> tuple[float, float, int, int]:
    """(SVM AUC, ROC AUC of high values, deposits, background cells) of one band's cells with data."""
    valid = np.isfinite(values)
    values, labels = values[valid], labels[valid]
    n_dep, n_bg = int(labels.sum()), int((~labels).sum())
    if min(n_dep, n_bg) < MIN_CELLS_PER_CLASS:
        return np.nan, np.nan, n_dep, n_bg
    return svm_auc(values, labels, settings.folds, settings.seed), float(roc_auc_score(labels, values)), n_dep, n_bg
