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
from scipy import ndimage
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .errors import InputError
from .grid import GridSpec
from .progress import CancelFn, ProgressFn, check_cancelled, report

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
    stack: np.ndarray,
    grid: GridSpec,
    deposit_xy: np.ndarray,
    band_names: Sequence[str],
    barren_xy: np.ndarray | None = None,
    settings: ScreeningSettings = ScreeningSettings(),
    *,
    workers: int | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> Screening:
    """Score every band of ``stack`` (bands, rows, cols; NaN = nodata) by Z_AUC.

    Args:
        stack: the evidence bands on ``grid``.
        grid: the stack's grid; points are in its CRS.
        deposit_xy: (n, 2) deposit coordinates (positives).
        band_names: one name per band.
        barren_xy: optional (m, 2) barren drill holes (known negatives).
        settings: negatives, folds, seed and critical value.
        workers: threads for the per-band SVMs (default: every CPU).
        progress: called with 0–100.
        is_cancelled: polled between batches of bands; a True answer raises :class:`Cancelled`.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[1:] != grid.shape:
        raise InputError(f"The stack has shape {stack.shape}; expected (bands, {grid.rows}, {grid.cols}).")
    if stack.shape[0] == 0:
        raise InputError("The stack has no bands.")
    if len(band_names) != stack.shape[0]:
        raise InputError(f"The stack has {stack.shape[0]} bands but {len(band_names)} band names.")
    has_data = _cells_with_data(stack, is_cancelled)
    notes: list[str] = []
    deposits = _point_cells(deposit_xy, grid, has_data, "deposit", notes)
    if deposits.size < MIN_CELLS_PER_CLASS:
        raise InputError(
            f"Only {deposits.size} deposit cell(s) with data remain; Z_AUC needs at least {MIN_CELLS_PER_CLASS}. "
            f"{' '.join(notes)} Check that the deposits lie on the stack and in its CRS, or add deposits.")
    barren = np.empty(0, dtype=np.int64)
    if barren_xy is not None and len(barren_xy):
        barren = _point_cells(barren_xy, grid, has_data, "barren point", notes)
        clash = np.isin(barren, deposits)
        if clash.any():
            notes.append(f"{int(clash.sum())} barren cell(s) also hold a deposit and count as deposits only.")
            barren = barren[~clash]
    background = np.union1d(barren, _random_background(has_data, deposits, barren, grid, settings, notes))
    if background.size < MIN_CELLS_PER_CLASS:
        raise InputError(
            f"Only {background.size} non-deposit cell(s) to compare with; Z_AUC needs at least "
            f"{MIN_CELLS_PER_CLASS}. Raise the background ratio, lower the exclusion distance or add barren points.")
    report(progress, 5)
    cells = np.concatenate([deposits, background])
    labels = np.r_[np.ones(deposits.size, bool), np.zeros(background.size, bool)]
    samples = stack.reshape(stack.shape[0], -1)[:, cells].astype(np.float64)
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


def _cells_with_data(stack: np.ndarray, is_cancelled: CancelFn) -> np.ndarray:
    """(rows, cols) mask of cells with a value in at least one band (band by band: no stack-sized temporary)."""
    has_data = np.zeros(stack.shape[1:], dtype=bool)
    for band in stack:
        check_cancelled(is_cancelled)
        has_data |= np.isfinite(band)
    return has_data


def _point_cells(xy: np.ndarray, grid: GridSpec, has_data: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """Sorted unique flat cells holding the points; points outside the grid or on nodata are noted and skipped."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        col = np.floor((xy[:, 0] - grid.x_min) / grid.pixel_width)
        row = np.floor((grid.y_max - xy[:, 1]) / grid.pixel_height)
    inside = (col >= 0) & (col < grid.cols) & (row >= 0) & (row < grid.rows)
    if (~inside).any():
        notes.append(f"{int((~inside).sum())} {what}(s) outside the stack's extent were skipped.")
    cells = (row[inside] * grid.cols + col[inside]).astype(np.int64)
    on_data = has_data.ravel()[cells]
    if (~on_data).any():
        notes.append(f"{int((~on_data).sum())} {what}(s) on nodata cells (no value in any band) were skipped.")
    cells = cells[on_data]
    unique = np.unique(cells)
    if unique.size < cells.size:
        notes.append(f"{cells.size - unique.size} {what}(s) share a cell with another and count once "
                     f"({unique.size} {what} cell(s) remain).")
    return unique


def _random_background(has_data: np.ndarray, deposits: np.ndarray, barren: np.ndarray, grid: GridSpec,
                       settings: ScreeningSettings, notes: list[str]) -> np.ndarray:
    """``background_ratio`` × deposits random cells with data, away from deposits and off barren cells."""
    wanted = round(float(settings.background_ratio) * deposits.size)
    if wanted == 0:
        return np.empty(0, dtype=np.int64)
    pool = has_data.ravel().copy()
    if settings.exclusion_distance > 0:
        away = np.ones(grid.cell_count, dtype=bool)
        away[deposits] = False
        distance = ndimage.distance_transform_edt(away.reshape(grid.shape),
                                                  sampling=(grid.pixel_height, grid.pixel_width))
        pool &= distance.ravel() > settings.exclusion_distance
    pool[deposits] = False
    pool[barren] = False
    candidates = np.flatnonzero(pool)
    if candidates.size < wanted:
        notes.append(f"Only {candidates.size} background cell(s) are available (wanted {wanted}); all are used.")
        wanted = candidates.size
    rng = np.random.default_rng(settings.seed)
    return np.sort(rng.choice(candidates, size=wanted, replace=False))


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
