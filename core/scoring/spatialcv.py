"""Spatial cross-validation of prospectivity models: held-out scores that say what to expect in new ground.

Random train/test splits put the neighbours of a test deposit in the training set and score 0.9-0.99 where
spatially held-out deposits score 0.6-0.7. This module implements leave-one-fold-out cross-validation on
spatial folds, with the same folds, cells and negative draws for every model, so models compare fairly.

Protocol (the defaults reproduce the project's reference protocol exactly):

* **Cells**: study-area cells (centre inside the polygon) where every band is defined.
* **Positives**: the cells within ``positive_radius`` of each deposit (default one cell diagonal: the
  deposit cell and its 8 neighbours), study-area cells only; a cell shared by two deposits belongs to the
  nearer one.
* **Negatives**: drawn without replacement from the cells farther than ``exclusion_buffer`` from every
  deposit, ``negative_ratio`` × the positive cells, once per repeat with seed ``seed + repeat``. Barren
  points (drilled, known empty) are negatives in every repeat and count towards the number.
* **Folds**: k-means (scikit-learn ``KMeans(n_clusters=k, n_init=10, random_state=0)``) on the deposit
  coordinates, a fold number per deposit given by the user, or square blocks of ``block_size`` dealt to
  folds at random (seeded). Positives take their deposit's fold; negatives the fold of the nearest fold
  centre (the mean of a fold's deposits) or of their block.
* **Training**: for each fold, every model trains on the samples of the other folds that are at least
  ``gap`` from every held-out sample, and maps the whole study area.
* **Scores** per fold and repeat: ROC AUC of the held-out positives against the held-out negatives.
  Per repeat, over every deposit scored by the model that did not see it: **capture** (the share of
  deposits whose cell lies in the top 5 / 15 / 30 % of the study area; ties count against the model) and
  the **deposit-vs-area AUC** (1 − the mean mid-rank area fraction of the deposits' cells).
* **Out-of-fold map**: each cell takes the score of the model trained without its fold (the fold of the
  nearest fold centre or its block), averaged over the repeats.

Models are callables ``fit_map(task) -> map`` (:class:`FoldTask` in, a (rows, cols) float32 score map out);
:mod:`.spatialcv_models` has the baselines, ``models.cv_models`` the networks. Ensembles combine the
members' maps of the same fold and repeat (probability mean or rank mean over the study area).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score

from ..errors import InputError
from ..evidence.screening import ScreeningSettings, screen_bands
from ..grid import GridSpec
from ..progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message, report
from ..sampling.labels import cell_xy, disc_offsets, point_cells
from .baseline import BaselineSettings, fit_classifier

FOLD_METHODS = ("kmeans", "field", "blocks")
ENSEMBLE_RULES = ("mean", "rank")
CAPTURE_SHARES = (0.05, 0.15, 0.30)


@dataclass(frozen=True)
class CvSettings:
    """Folds, samples and repeats of a spatial cross-validation (distances in map units)."""

    n_folds: int = 5
    fold_method: str = "kmeans"
    block_size: float = 0.0
    gap: float = 2000.0
    positive_radius: float = 0.0
    exclusion_buffer: float = 2000.0
    negative_ratio: float = 1.0
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.fold_method not in FOLD_METHODS:
            raise InputError(f"Unknown fold method {self.fold_method!r}; choose one of {', '.join(FOLD_METHODS)}.")
        if self.n_folds < 2 and self.fold_method != "field":
            raise InputError(f"Spatial cross-validation needs at least 2 folds (got {self.n_folds}).")
        if self.fold_method == "blocks" and not self.block_size > 0:
            raise InputError("Block folds need a block size greater than 0 (map units).")
        if min(self.gap, self.positive_radius, self.exclusion_buffer) < 0:
            raise InputError("The gap, positive radius and exclusion buffer must be 0 or more.")
        if not self.negative_ratio > 0:
            raise InputError(f"The negative ratio must be greater than 0 (got {self.negative_ratio}).")
        if self.repeats < 1:
            raise InputError(f"At least one repeat (negative draw) is needed (got {self.repeats}).")

    def radius(self, grid: GridSpec) -> float:
        """The positive radius (default: one cell's diagonal, i.e. the 3 × 3 cells around a deposit)."""
        return self.positive_radius or math.hypot(grid.pixel_width, grid.pixel_height)


@dataclass
class Samples:
    """Labelled cells of one repeat: row, column, label (1 deposit), fold, owning deposit (−1 negatives)."""

    rows: np.ndarray
    cols: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    deposit: np.ndarray

    def take(self, keep: np.ndarray) -> Samples:
        return Samples(self.rows[keep], self.cols[keep], self.y[keep], self.fold[keep], self.deposit[keep])


@dataclass
class FoldTask:
    """What a model sees for one fold and repeat: the stack, the usable cells and its training samples."""

    stack: np.ndarray  # (bands, rows, cols) float32, NaN = nodata
    usable: np.ndarray  # (rows, cols) bool: study area with every band defined
    train: Samples
    fold: int
    repeat: int
    seed: int
    background: np.ndarray | None = None  # (rows, cols) bool: unlabelled cells a model may also learn from
    is_cancelled: CancelFn = None

    def vectors(self, samples: Samples | None = None) -> np.ndarray:
        """(n, bands) vectors of the training samples (or of ``samples``)."""
        s = samples or self.train
        return np.ascontiguousarray(self.stack[:, s.rows, s.cols].T)

    def usable_vectors(self) -> np.ndarray:
        """(n, bands) vectors of every usable cell, in row-major order."""
        return np.ascontiguousarray(self.stack[:, self.usable].T)

    def to_map(self, values: np.ndarray) -> np.ndarray:
        """A (rows, cols) map holding ``values`` of the usable cells (row-major order), NaN elsewhere."""
        out = np.full(self.usable.shape, np.nan, dtype=np.float32)
        out[self.usable] = values
        return out


FitMap = Callable[[FoldTask], np.ndarray]
# (stack with the held-out region blanked, grid, training deposits, barren points) → indices of the bands to use
SelectBands = Callable[[np.ndarray, GridSpec, np.ndarray, "np.ndarray | None"], list[int]]


@dataclass
class CvResult:
    """Scores of every model and ensemble, per fold and repeat, and the out-of-fold maps."""

    names: list[str]
    auc: dict[str, np.ndarray]  # name → (folds, repeats), NaN where a fold lacks a class
    capture: dict[str, np.ndarray]  # name → (repeats, len(CAPTURE_SHARES))
    area_auc: dict[str, np.ndarray]  # name → (repeats,)
    out_of_fold: dict[str, np.ndarray]  # name → (rows, cols) float32, NaN outside the usable cells
    deposit_fold: np.ndarray
    deposit_index: np.ndarray  # index into the caller's deposit list of each scored deposit
    fold_counts: list[dict]
    settings: CvSettings
    notes: list[str] = field(default_factory=list)
    fold_bands: dict[int, list[int]] = field(default_factory=dict)  # bands each fold's models used (all: absent)

    def summary(self) -> list[dict]:
        """One row per model: mean ± std AUC over folds × repeats, AUC per fold, capture and area AUC."""
        rows = []
        for name in self.names:
            values = self.auc[name][np.isfinite(self.auc[name])]
            rows.append({
                "model": name,
                "auc_mean": float(values.mean()) if len(values) else math.nan,
                "auc_std": float(values.std()) if len(values) else math.nan,
                "auc_per_fold": [float(np.nanmean(row)) if np.isfinite(row).any() else math.nan
                                 for row in self.auc[name]],
                "capture": {f"top_{round(100 * s)}": float(v)
                            for s, v in zip(CAPTURE_SHARES, self.capture[name].mean(axis=0))},
                "area_auc": float(self.area_auc[name].mean()),
            })
        return rows


def automatic_gap(settings: CvSettings, grid: GridSpec, widest_patch: int, recipe: Mapping | None
                  ) -> tuple[float, str]:
    """The default gap and why: the largest of the exclusion buffer, the widest window's half-width and the
    evidence reach recorded in the stack recipe (IDW search radius, density radius)."""
    half_width = (widest_patch // 2) * max(grid.pixel_width, grid.pixel_height)
    reach = max((float(v) for v in ((recipe or {}).get("evidence_reach") or {}).values()), default=0.0)
    candidates = {"the exclusion buffer": settings.exclusion_buffer, "the widest window's half-width": half_width,
                  "the evidence reach recorded in the stack": reach}
    why = max(candidates, key=candidates.get)
    return candidates[why], why


def fold_of_deposits(deposit_xy: np.ndarray, settings: CvSettings, fold_field: Sequence[int] | None = None,
                     grid: GridSpec | None = None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """(fold of each deposit, function map coordinates → fold) for the chosen fold method."""
    xy = np.asarray(deposit_xy, dtype=np.float64).reshape(-1, 2)
    if not len(xy):
        raise InputError("No deposit lies on usable cells (study area with every band defined); check the deposit "
                         "layer, its CRS and the study area.")
    if settings.fold_method == "blocks":
        return _block_folds(xy, settings, grid)
    if settings.fold_method == "field":
        if fold_field is None or len(fold_field) != len(xy):
            raise InputError("Fold method 'field' needs one fold value per deposit; choose the deposits' fold field.")
        codes, folds = np.unique(np.asarray(fold_field), return_inverse=True)
        if len(codes) < 2:
            raise InputError(f"The fold field holds one value only ({codes[0].item()!r}); at least 2 folds are needed.")
        folds = np.asarray(folds, dtype=np.int64)
        nearest = cKDTree(xy)  # a cell takes the fold of its nearest deposit (fold means may lie in other folds)
        return folds, lambda points: folds[nearest.query(np.asarray(points).reshape(-1, 2))[1]]
    else:
        if len(xy) < settings.n_folds:
            raise InputError(f"{len(xy)} deposit(s) cannot form {settings.n_folds} folds; lower the number of "
                             "folds.")
        kmeans = KMeans(n_clusters=settings.n_folds, n_init=10, random_state=0).fit(xy)
        folds, centres = kmeans.labels_.astype(np.int64), kmeans.cluster_centers_
    tree = cKDTree(centres)
    return folds, lambda points: tree.query(np.asarray(points).reshape(-1, 2))[1].astype(np.int64)


def _block_folds(xy: np.ndarray, settings: CvSettings, grid: GridSpec | None):
    if grid is None:
        raise InputError("Block folds need the grid.")
    size = settings.block_size
    nbx = math.ceil(grid.cols * grid.pixel_width / size)
    nby = math.ceil(grid.rows * grid.pixel_height / size)
    order = np.random.default_rng([settings.seed, 7]).permutation(nbx * nby)
    block_fold = np.empty(nbx * nby, dtype=np.int64)
    block_fold[order] = np.arange(nbx * nby) % settings.n_folds

    def of_points(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        bx = np.clip(((p[:, 0] - grid.x_min) // size).astype(np.int64), 0, nbx - 1)
        by = np.clip(((grid.y_max - p[:, 1]) // size).astype(np.int64), 0, nby - 1)
        return block_fold[by * nbx + bx]
    return of_points(xy), of_points


def positive_cells(deposit_xy: np.ndarray, grid: GridSpec, usable: np.ndarray, radius: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, owning deposit) of positive cells: usable cells within ``radius``, each to its nearest deposit."""
    xy = np.asarray(deposit_xy, dtype=np.float64).reshape(-1, 2)
    rows, cols, inside = point_cells(xy, grid)
    offsets = disc_offsets(radius, grid.pixel_width, grid.pixel_height)
    owners = np.flatnonzero(inside)
    r = (rows[owners][None, :] + offsets[:, :1]).ravel()
    c = (cols[owners][None, :] + offsets[:, 1:]).ravel()
    keep = (r >= 0) & (r < grid.rows) & (c >= 0) & (c < grid.cols)
    r, c = r[keep], c[keep]
    keep = usable[r, c]
    r, c = r[keep], c[keep]
    cells = np.unique(r * grid.cols + c)
    r, c = np.divmod(cells, grid.cols)
    nearest = cKDTree(xy[owners]).query(cell_xy(r, c, grid))[1] if len(owners) else np.zeros(0, np.int64)
    return r.astype(np.int64), c.astype(np.int64), owners[nearest].astype(np.int64)


def draw_samples(deposit_xy: np.ndarray, deposit_fold: np.ndarray, fold_of: Callable, grid: GridSpec,
                 usable: np.ndarray, settings: CvSettings, barren_xy: np.ndarray | None = None,
                 excluded_xy: np.ndarray | None = None) -> tuple[list[Samples], list[str]]:
    """The labelled cells of every repeat: shared positives and barren cells, a fresh random negative draw each.

    Negatives keep the exclusion buffer from every deposit of ``excluded_xy`` (default: ``deposit_xy``), so
    deposits off the usable cells still keep negatives away.
    """
    notes: list[str] = []
    xy = np.asarray(deposit_xy, dtype=np.float64).reshape(-1, 2)
    excluded = xy if excluded_xy is None else np.asarray(excluded_xy, dtype=np.float64).reshape(-1, 2)
    pr, pc, owner = positive_cells(xy, grid, usable, settings.radius(grid))
    if not len(pr):
        raise InputError("No deposit lies on usable cells (study area with every band defined); check the deposit "
                         "layer, its CRS and the study area.")
    positives = Samples(pr, pc, np.ones(len(pr), np.int8), deposit_fold[owner], owner)
    candidates = usable.copy()
    candidates[pr, pc] = False
    if settings.exclusion_buffer > 0:
        centres = grid.cell_centres().reshape(-1, 2)
        distance = cKDTree(excluded).query(centres, distance_upper_bound=settings.exclusion_buffer * (1 + 1e-9))[0]
        candidates &= ~np.isfinite(distance).reshape(grid.shape)
    fixed = [positives]
    if barren_xy is not None and len(barren_xy):
        br, bc, inside = point_cells(barren_xy, grid)
        cells = np.unique(br[inside] * grid.cols + bc[inside])
        br, bc = np.divmod(cells, grid.cols)
        ok = candidates[br, bc]
        if (~ok).sum():
            notes.append(f"{int((~ok).sum())} barren point(s) on unusable cells, on positives or within the "
                         "exclusion buffer were skipped.")
        br, bc = br[ok], bc[ok]
        candidates[br, bc] = False
        fixed.append(Samples(br, bc, np.zeros(len(br), np.int8), fold_of(cell_xy(br, bc, grid)),
                             np.full(len(br), -1)))
    pool = np.flatnonzero(candidates)
    wanted = round(settings.negative_ratio * len(pr)) - sum(len(s.rows) for s in fixed[1:])
    if wanted > len(pool):
        notes.append(f"Only {len(pool)} cells can be random negatives; {wanted} were asked for per repeat.")
    wanted = min(max(wanted, 0), len(pool))
    repeats = []
    for r in range(settings.repeats):
        cells = np.random.default_rng(settings.seed + r).choice(pool, size=wanted, replace=False)
        nr, nc = np.divmod(cells, grid.cols)
        negatives = Samples(nr, nc, np.zeros(wanted, np.int8), fold_of(cell_xy(nr, nc, grid)), np.full(wanted, -1))
        parts = [*fixed, negatives]
        repeats.append(Samples(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                                 ("rows", "cols", "y", "fold", "deposit"))))
    return repeats, notes


def background_cells(usable: np.ndarray, cell_fold: np.ndarray, fold: int, test: Samples,
                     training_deposit_xy: np.ndarray, grid: GridSpec, settings: CvSettings) -> np.ndarray:
    """Unlabelled cells a model of ``fold`` may learn from: usable cells of the training folds, at least the gap
    from every held-out sample and beyond the exclusion buffer of every training deposit."""
    ok = usable & (cell_fold != fold)
    rows, cols = np.nonzero(ok)
    centres = cell_xy(rows, cols, grid)
    keep = np.ones(len(rows), dtype=bool)
    for points, distance in ((cell_xy(test.rows, test.cols, grid), settings.gap),
                             (training_deposit_xy, max(settings.exclusion_buffer, settings.radius(grid)))):
        if len(points) and distance > 0:
            keep &= ~np.isfinite(cKDTree(points).query(centres, distance_upper_bound=distance)[0])
    out = np.zeros_like(ok)
    out[rows[keep], cols[keep]] = True
    return out


def training_samples(samples: Samples, fold: int, gap: float, grid: GridSpec) -> Samples:
    """The samples of the other folds at least ``gap`` from every sample of ``fold``."""
    test = samples.fold == fold
    train = ~test
    if gap > 0 and test.any():
        tree = cKDTree(cell_xy(samples.rows[test], samples.cols[test], grid))
        near = tree.query(cell_xy(samples.rows[train], samples.cols[train], grid), distance_upper_bound=gap)[0]
        keep = np.flatnonzero(train)
        train[keep[np.isfinite(near) & (near < gap)]] = False
    return samples.take(train)


def run_spatial_cv(
    stack: np.ndarray,
    grid: GridSpec,
    deposit_xy: np.ndarray,
    models: Mapping[str, FitMap],
    settings: CvSettings | None = None,
    *,
    study_area: np.ndarray | None = None,
    barren_xy: np.ndarray | None = None,
    fold_field: Sequence[int] | None = None,
    ensembles: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    select_bands: SelectBands | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> CvResult:
    """Leave-one-fold-out spatial cross-validation of ``models`` (and ``ensembles`` of them) on one stack.

    Args:
        stack: (bands, rows, cols) evidence, NaN = nodata.
        grid: the stack's grid (deposits and barren points are in its CRS).
        deposit_xy: (n, 2) deposit coordinates.
        models: name → ``fit_map`` (trains on ``task.train`` and returns a score map of the grid).
        settings: folds, samples and repeats (default: the reference protocol).
        study_area: optional (rows, cols) bool mask.
        barren_xy: optional (m, 2) barren points (negatives in every repeat).
        fold_field: one fold value per deposit, for the fold method ``field``.
        ensembles: name → (rule, member names), rule ``mean`` (probabilities) or ``rank`` (rank over the
            usable cells, scaled 0-1).
        select_bands: optional band selection repeated inside every fold (e.g. element screening), fed only the
            training folds' deposits and evidence, so a selection step is scored as honestly as the models.

    Raises:
        InputError: too few deposits for the folds, no usable deposit, a fold without samples.
        Cancelled: ``is_cancelled()`` became true.
    """
    settings = settings or CvSettings()
    stack = np.asarray(stack, dtype=np.float32)
    if stack.ndim != 3 or stack.shape[1:] != grid.shape:
        raise InputError(f"The stack {stack.shape} does not match the grid {grid.shape}.")
    usable = ~np.isnan(stack).any(axis=0)
    if study_area is not None:
        usable &= np.asarray(study_area, dtype=bool)
    if not usable.any():
        raise InputError("No cell of the stack is usable (study area with every band defined).")
    ensembles = dict(ensembles or {})
    for name, (rule, members) in ensembles.items():
        if rule not in ENSEMBLE_RULES or not set(members) <= set(models) or not members:
            raise InputError(f"Ensemble {name!r} needs a rule of {', '.join(ENSEMBLE_RULES)} and members among "
                             f"{', '.join(models)}.")
    xy = np.asarray(deposit_xy, dtype=np.float64).reshape(-1, 2)
    rows, cols, inside = point_cells(xy, grid)
    on_usable = np.zeros(len(xy), bool)
    on_usable[inside] = usable[rows[inside], cols[inside]]
    notes = []
    if (~on_usable).sum():
        notes.append(f"{int((~on_usable).sum())} deposit(s) off the usable cells (outside the study area, the grid "
                     "or on nodata) were left out.")
    if not on_usable.any():
        raise InputError("No deposit lies on usable cells (study area with every band defined); check the deposit "
                         "layer, its CRS and the study area.")
    # Folds and exclusions use every deposit on the grid (as the protocol clusters every occurrence); only those
    # on usable cells give positives and scores.
    field_values = None if fold_field is None else np.asarray(fold_field)[inside]
    all_fold, fold_of = fold_of_deposits(xy[inside], settings, field_values, grid)
    deposit_index = np.flatnonzero(on_usable)
    deposit_fold = all_fold[on_usable[inside]]
    grid_xy, xy = xy[inside], xy[deposit_index]
    repeats, draw_notes = draw_samples(xy, deposit_fold, fold_of, grid, usable, settings, barren_xy, grid_xy)
    notes += draw_notes
    for note in notes:
        log_message(log, note)
    folds = np.unique(deposit_fold)
    names = [*models, *ensembles]
    auc = {n: np.full((len(folds), settings.repeats), np.nan) for n in names}
    oof_sum = {n: np.zeros(grid.shape, np.float64) for n in names}
    deposit_scores = {n: np.full((settings.repeats, len(xy)), np.nan) for n in names}
    area_sorted: dict[str, list] = {n: [None] * len(folds) for n in names}
    captures = {n: np.zeros((settings.repeats, len(CAPTURE_SHARES))) for n in names}
    area_auc = {n: np.zeros(settings.repeats) for n in names}
    cell_fold = np.full(grid.shape, -1, np.int64)
    cell_fold[usable] = fold_of(grid.cell_centres().reshape(-1, 2)[usable.ravel()])
    positive = repeats[0].y == 1  # a deposit's cells belong to its fold, whichever fold centre is nearer
    cell_fold[repeats[0].rows[positive], repeats[0].cols[positive]] = repeats[0].fold[positive]
    fold_counts = []
    total, done = len(folds) * settings.repeats * len(models), 0
    dep_rows, dep_cols, _ = point_cells(xy, grid)
    fold_bands: dict[int, list[int]] = {}
    if select_bands is not None:
        for fold in folds:
            check_cancelled(is_cancelled)
            hidden, training_xy = _held_out_reach(repeats[0], int(fold), usable, cell_fold, xy, deposit_fold, grid,
                                                  settings.gap)
            training_region = np.where(hidden, np.nan, stack)
            fold_bands[int(fold)] = list(select_bands(training_region, grid, training_xy, barren_xy))
            log_message(log, f"Fold {fold}: {len(fold_bands[int(fold)])} of {len(stack)} band(s) selected on the "
                             "training folds.")
    for r, samples in enumerate(repeats):
        for fi, fold in enumerate(folds):
            train = training_samples(samples, int(fold), settings.gap, grid)
            test = samples.take(samples.fold == fold)
            if r == 0:
                fold_counts.append(_fold_count(int(fold), train, test, samples, deposit_fold))
            background = background_cells(usable, cell_fold, int(fold), test, grid_xy[all_fold != fold], grid,
                                          settings)
            if len(np.unique(train.y)) < 2:
                raise InputError(f"Fold {fold} leaves the training folds without deposits or negatives; use fewer "
                                 "folds or a smaller gap.")
            maps = {}
            for name, fit_map in models.items():
                check_cancelled(is_cancelled)
                bands = fold_bands.get(int(fold))
                task = FoldTask(stack if bands is None else stack[bands], usable, train, int(fold), r,
                                settings.seed + 1000 * r + int(fold), background, is_cancelled)
                score = np.asarray(fit_map(task), dtype=np.float64)
                score[~usable] = np.nan
                maps[name] = score
                done += 1
                report(progress, 100.0 * done / total)
            for name, (rule, members) in ensembles.items():
                maps[name] = combine_maps([maps[m] for m in members], rule, usable)
            for name, score in maps.items():
                auc[name][fi, r] = _auc(test.y, score[test.rows, test.cols])
                in_fold = cell_fold == fold
                oof_sum[name][in_fold] += score[in_fold]
                mine = deposit_fold == fold
                deposit_scores[name][r, mine] = score[dep_rows[mine], dep_cols[mine]]
                area_sorted[name][fi] = np.sort(score[usable])
            log_message(log, f"Repeat {r + 1}, fold {fold}: " + ", ".join(
                f"{n} {auc[n][fi, r]:.3f}" for n in names))
        for name in names:
            shares = np.array([_area_share(area_sorted[name][int(np.flatnonzero(folds == f)[0])], s)
                               for f, s in zip(deposit_fold, deposit_scores[name][r])])
            captures[name][r] = [(shares <= limit).mean() for limit in CAPTURE_SHARES]
            area_auc[name][r] = 1 - _mid_rank_share(area_sorted, name, folds, deposit_fold,
                                                    deposit_scores[name][r]).mean()
    scored = usable & np.isin(cell_fold, folds)
    if (usable & ~scored).any():
        notes.append(f"{int((usable & ~scored).sum())} usable cell(s) lie in folds without deposits: no model is "
                     "scored there, so the out-of-fold map leaves them empty.")
    out_of_fold = {n: np.where(scored, oof_sum[n] / settings.repeats, np.nan).astype(np.float32) for n in names}
    return CvResult(names, auc, captures, area_auc, out_of_fold, deposit_fold, deposit_index, fold_counts,
                    settings, notes, fold_bands)


def _held_out_reach(samples: Samples, fold: int, usable: np.ndarray, cell_fold: np.ndarray, xy: np.ndarray,
                    deposit_fold: np.ndarray, grid: GridSpec, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """What a selection for ``fold`` may not see: (cells to hide — off the usable cells, in the fold, or within the
    gap of its samples — and the training deposits at least the gap from every held-out sample)."""
    test = samples.fold == fold
    hidden = ~usable | (cell_fold == fold)
    training_xy = xy[deposit_fold != fold]
    if gap > 0 and test.any():
        tree = cKDTree(cell_xy(samples.rows[test], samples.cols[test], grid))
        near = np.isfinite(tree.query(grid.cell_centres().reshape(-1, 2), distance_upper_bound=gap)[0])
        hidden |= near.reshape(grid.shape)
        training_xy = training_xy[~np.isfinite(tree.query(training_xy, distance_upper_bound=gap)[0])]
    return hidden, training_xy


def combine_maps(maps: Sequence[np.ndarray], rule: str, usable: np.ndarray) -> np.ndarray:
    """Mean of member maps (``mean``), or mean of their ranks over the usable cells scaled to 0-1 (``rank``)."""
    if rule == "mean":
        return np.mean(maps, axis=0)
    out = np.full(usable.shape, np.nan)
    ranks = [stats.rankdata(m[usable]) / usable.sum() for m in maps]
    out[usable] = np.mean(ranks, axis=0)
    return out


def _area_share(sorted_scores: np.ndarray, value: float) -> float:
    """Share of cells whose score is ≥ ``value`` (ties against the model)."""
    return (len(sorted_scores) - np.searchsorted(sorted_scores, value, side="left")) / len(sorted_scores)


def _mid_rank_share(area_sorted, name, folds, deposit_fold, scores) -> np.ndarray:
    """Per deposit: (cells above + half the cells tied) / cells, on the map of the model that held it out."""
    out = np.empty(len(scores))
    for i, (f, value) in enumerate(zip(deposit_fold, scores)):
        cells = area_sorted[name][int(np.flatnonzero(folds == f)[0])]
        above = len(cells) - np.searchsorted(cells, value, side="right")
        tied = np.searchsorted(cells, value, side="right") - np.searchsorted(cells, value, side="left")
        out[i] = (above + 0.5 * tied) / len(cells)
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else math.nan


def _fold_count(fold: int, train: Samples, test: Samples, samples: Samples, deposit_fold: np.ndarray) -> dict:
    return {"fold": fold, "deposits": int((deposit_fold == fold).sum()),
            "test_positive": int(test.y.sum()), "test_negative": int((test.y == 0).sum()),
            "train_positive": int(train.y.sum()), "train_negative": int((train.y == 0).sum()),
            "dropped_by_gap": int((samples.fold != fold).sum() - len(train.y))}


def baseline_fit_map(method: str, n_estimators: int = 500) -> FitMap:
    """A classical baseline for :func:`run_spatial_cv`: the reference protocol's random forest (500 balanced
    trees, raw features) or logistic regression (C = 1, balanced, standardised on the training folds)."""
    def fit_map(task: FoldTask) -> np.ndarray:
        settings = BaselineSettings(method=method, n_estimators=n_estimators, seed=task.seed)
        model = fit_classifier(task.vectors(), task.train.y.astype(np.int64), settings,
                               is_cancelled=task.is_cancelled)
        return task.to_map(model.predict_proba(task.usable_vectors())[:, 1])
    return fit_map


def screening_selector(band_names: Sequence[str], settings: ScreeningSettings | None = None,
                       log: LogFn = None) -> SelectBands:
    """Element screening by Z_AUC (:func:`.screening.screen_bands`) as a per-fold band selection; a fold whose
    training deposits select no band keeps every band (logged)."""
    settings = settings or ScreeningSettings()

    def select(stack: np.ndarray, grid: GridSpec, deposit_xy: np.ndarray, barren_xy: np.ndarray | None) -> list[int]:
        chosen = screen_bands(stack, grid, deposit_xy, band_names, barren_xy, settings).selected
        if not chosen:
            log_message(log, "Screening on the training folds selected no band; the fold keeps every band.")
            return list(range(len(band_names)))
        log_message(log, "Selected: " + ", ".join(band_names[i] for i in chosen) + ".")
        return chosen
    return select
