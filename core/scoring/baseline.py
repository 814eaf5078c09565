"""Classical baselines: a random forest or a logistic regression on each cell's evidence vector.

A deep model is only worth its cost if it beats these, so they read the same training set and write the
same kind of prospectivity raster and model card as the CNNs.

* **Training rows**: the training split's ``x_vector`` / ``y`` (each sample's own cell). Rows of every
  negative set (repeat) are used together; ``class_weight="balanced"`` evens out the classes. Crop and
  flip rows are never used (their ``x_vector`` is another cell, not the sample's); the ``noise`` and
  ``smote`` rows are vectors of the sample's own kind and are added only when asked for.
* **Models**: :class:`~sklearn.ensemble.RandomForestClassifier` (``n_estimators`` trees, balanced class
  weights, ``random_state`` = seed; grown in chunks so a cancel is honoured while it trains, which gives the
  same forest as one fit) or a :class:`~sklearn.pipeline.Pipeline` of
  :class:`~sklearn.preprocessing.StandardScaler` and
  :class:`~sklearn.linear_model.LogisticRegression` (balanced class weights, lbfgs).
* **Metrics** per split on its unaugmented rows (real cells): accuracy, recall and F1 of the class with
  probability > 0.5, and ROC AUC of the probability (None when the split lacks a class).
* **Map**: the stack is read in windows of whole rows; bands are taken by name in the training set's
  order, so a stack with more bands or another order works; a missing band or a stack normalised
  differently from the training stack (:func:`.stack.band_normalisation`) is refused. Cells with nodata
  in any used band are nodata. Forest probabilities are computed by threads on fixed chunks of cells, each
  summing its trees in order, so the map is identical from run to run (a forest's own parallel
  ``predict_proba`` adds trees in whatever order threads finish).
* **Outputs**: a float32 GeoTIFF band ``prospectivity`` whose tag :data:`MODEL_CARD_TAG` holds the model card
  (JSON), and per band the forest's impurity importance or the regression's coefficient per standard
  deviation of the band, in a CSV.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import rasterio
import sklearn
from joblib import Parallel, delayed, effective_n_jobs
from rasterio.windows import Window
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import InputError
from ..evidence.stack import (
    RECIPE_FORMAT,
    STACK_TAG,
    band_normalisation,
    normalisation_differences,
    stack_normalisation,
)
from ..memory import check_memory
from ..outputs import atomic_path, check_writable
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import MODEL_CARD_TAG, NODATA, TILE, band_labels, geotiff_profile, read_band_names, read_grid_spec
from ..sampling.labels import SPLITS, UNAUGMENTED, TrainingSet
from .metrics import threshold_metrics

METHODS = ("random_forest", "logistic_regression")
AUGMENTED_KINDS = ("noise", "smote")
OUTPUT_BAND = "prospectivity"
# Cells read per window by default (bounded memory whatever the stack's size).
WINDOW_CELLS = 1 << 20
_TREES_PER_CHUNK = 25


@dataclass(frozen=True)
class BaselineSettings:
    """Which model, its size and seed, and which augmented rows join the training rows."""

    method: str = "random_forest"
    n_estimators: int = 300
    seed: int = 42
    n_jobs: int = -1
    augmented: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"Unknown baseline method '{self.method}'; use one of {', '.join(METHODS)}.")
        if self.n_estimators < 1:
            raise InputError(f"A random forest needs at least one tree (got {self.n_estimators}).")
        unknown = [kind for kind in self.augmented if kind not in AUGMENTED_KINDS]
        if unknown:
            raise InputError(f"Only {' and '.join(AUGMENTED_KINDS)} rows can be added to a cell-vector model "
                             f"(crops and flips hold other cells); got {', '.join(unknown)}.")


@dataclass
class Baseline:
    """A fitted baseline with its metrics, per-band weights and card."""

    model: RandomForestClassifier | Pipeline
    settings: BaselineSettings
    band_names: list[str]
    metrics: dict
    weights: dict[str, float]  # impurity importance (forest) or standardised coefficient (regression)
    card: dict

    @property
    def weight_name(self) -> str:
        """What the per-band weights are."""
        return "importance" if self.settings.method == "random_forest" else "coefficient"

    def predict(self, x: np.ndarray, n_jobs: int = 1) -> np.ndarray:
        """Probability of the prospective class for (n, bands) vectors, float32; deterministic for any n_jobs."""
        x = np.asarray(x, dtype=np.float32)
        threads = min(effective_n_jobs(n_jobs), max(1, len(x) // 1024))
        if threads <= 1 or self.settings.method != "random_forest":
            return self.model.predict_proba(x)[:, 1].astype(np.float32)
        chunks = Parallel(n_jobs=threads, prefer="threads")(
            delayed(self.model.predict_proba)(part) for part in np.array_split(x, threads))
        return np.concatenate([chunk[:, 1] for chunk in chunks]).astype(np.float32)


def training_rows(training_set: TrainingSet, augmented: Sequence[str] = ()) -> np.ndarray:
    """Mask of the rows a baseline trains on: unaugmented training rows plus the asked augmented kinds."""
    return (training_set.split == SPLITS[0]) & np.isin(training_set.kind, [*UNAUGMENTED, *augmented])


def fit_baseline(training_set: TrainingSet, settings: BaselineSettings | None = None,
                 progress: ProgressFn = None, is_cancelled: CancelFn = None) -> Baseline:
    """Fit the baseline on the training rows and score it on every split.

    Raises:
        InputError: the training rows lack a class or hold non-finite values.
        Cancelled: ``is_cancelled`` returned True.
    """
    settings = settings or BaselineSettings()
    band_names = list(training_set.manifest["band_names"])
    rows = training_rows(training_set, settings.augmented)
    x, y = training_set.x_vector[rows], training_set.y[rows].astype(np.int64)
    if len(np.unique(y)) < 2:
        raise InputError(f"The training split has {int((y == 1).sum())} positive and {int((y == 0).sum())} "
                         "negative row(s); a model needs both. Rebuild the training set with more deposits or "
                         "negatives.")
    if not np.isfinite(x).all():
        raise InputError("The training rows hold NaN or infinite values; rebuild the training set from a stack "
                         "whose nodata is set.")
    model = fit_classifier(x, y, settings, progress, is_cancelled)
    values = model.feature_importances_ if settings.method == "random_forest" else model[-1].coef_[0]
    weights = {name: float(value) for name, value in zip(band_names, values)}
    baseline = Baseline(model, settings, band_names, {}, weights, {})
    baseline.metrics = split_metrics(baseline, training_set)
    baseline.card = _card(baseline, training_set, int(rows.sum()))
    return baseline


def fit_classifier(x: np.ndarray, y: np.ndarray, settings: BaselineSettings, progress: ProgressFn = None,
                   is_cancelled: CancelFn = None) -> RandomForestClassifier | Pipeline:
    """The forest (balanced, grown in chunks) or standardised balanced logistic regression fitted to ``x``, ``y``."""
    if settings.method == "random_forest":
        model = _fit_forest(x, y, settings, progress, is_cancelled)
    else:
        model = Pipeline([("standardise", StandardScaler()), ("logistic", LogisticRegression(
            class_weight="balanced", max_iter=1000, random_state=settings.seed))]).fit(x, y)
    check_cancelled(is_cancelled)
    return model


def split_metrics(baseline: Baseline, training_set: TrainingSet) -> dict:
    """``{split: {"accuracy", "recall", "f1", ... (:func:`.metrics.threshold_metrics`), "auc"}}`` on each split's
    unaugmented rows (None where undefined)."""
    metrics = {}
    for split in SPLITS:
        rows = (training_set.split == split) & np.isin(training_set.kind, UNAUGMENTED)
        y = training_set.y[rows].astype(np.int64)
        if not rows.any():
            metrics[split] = {**threshold_metrics(y, y), "auc": None}
            continue
        probability = baseline.predict(training_set.x_vector[rows], baseline.settings.n_jobs)
        predicted = (probability > 0.5).astype(np.int64)
        metrics[split] = {
            **threshold_metrics(y, predicted),
            "auc": float(roc_auc_score(y, probability)) if len(np.unique(y)) == 2 else None,
        }
    return metrics


def stack_bands(path: str, band_names: Sequence[str]) -> list[int]:
    """1-based indexes of ``band_names`` in the stack (by band name; unnamed bands are ``<stem>_b<n>``)."""
    names = band_labels(path, read_band_names(path))
    missing = [name for name in band_names if name not in names]
    if missing:
        raise InputError(f"The stack lacks the band(s) the model was trained on: {', '.join(missing)}. Its bands "
                         f"are {', '.join(names)}; use a stack built like the training stack.")
    return [names.index(name) + 1 for name in band_names]


def training_normalisation(manifest: dict) -> dict:
    """:func:`.stack.band_normalisation` of the training stack's recipe (none recorded: raw values)."""
    recipe = manifest.get("stack_tags", {}).get(STACK_TAG)
    if recipe is not None and not (isinstance(recipe, dict) and recipe.get("format") == RECIPE_FORMAT):
        raise InputError(f"The training set's {STACK_TAG} metadata is not an evidence-stack recipe, so the "
                         "normalisation of its bands is unknown; rebuild it from a stack made by "
                         "'Build evidence stack'.")
    return band_normalisation(recipe, manifest["band_names"])


def check_normalisation(path: str, manifest: dict) -> None:
    """Refuse a stack whose transform/normalisation of the model's bands differs from the training stack's."""
    differences = normalisation_differences(training_normalisation(manifest),
                                            stack_normalisation(path, manifest["band_names"]))
    if differences:
        raise InputError("The stack's bands were transformed or normalised differently from the training stack ("
                         + "; ".join(differences) + "). Use the training stack, or build the stack with the "
                         "training stack's recipe.")


def predict_raster(baseline: Baseline, stack_path: str, path: str, indexes: Sequence[int],
                   window_rows: int | None = None, progress: ProgressFn = None,
                   is_cancelled: CancelFn = None) -> None:
    """Write the probability map of the stack's bands ``indexes`` to ``path`` window by window (whole rows)."""
    grid = read_grid_spec(stack_path)
    rows = window_rows or max(1, WINDOW_CELLS // grid.cols)
    rows = rows - rows % TILE if rows >= TILE else rows  # whole tile rows when the output is tiled
    check_memory(rows * grid.cols * (8 * len(indexes) + 8), f"Windows of {rows} × {grid.cols} cells",
                 "Use a stack with fewer bands or fewer columns")
    with rasterio.open(stack_path) as src:
        profile = geotiff_profile(src.width, src.height, 1, "float32", src.crs, src.transform, NODATA)
        with rasterio.open(path, "w", **profile) as dst:
            dst.set_band_description(1, OUTPUT_BAND)
            dst.update_tags(**{MODEL_CARD_TAG: json.dumps(baseline.card, allow_nan=False),
                               "DEEPPROSPECT_ALGORITHM": "baseline"})
            mapped = 0
            for row in range(0, src.height, rows):
                check_cancelled(is_cancelled)
                window = Window(0, row, src.width, min(rows, src.height - row))
                block = src.read(list(indexes), window=window, masked=True).astype(np.float32).filled(np.nan)
                x = block.reshape(len(indexes), -1).T
                valid = np.isfinite(x).all(axis=1)
                out = np.full(len(x), NODATA, dtype=np.float32)
                if valid.any():
                    out[valid] = baseline.predict(x[valid], baseline.settings.n_jobs)
                    mapped += int(valid.sum())
                dst.write(out.reshape(1, window.height, window.width), window=window)
                report(progress, 100.0 * (row + window.height) / src.height)
    if not mapped:
        raise InputError(f"The evidence stack has no cell with data in every one of the model's bands "
                         f"({', '.join(baseline.band_names)}), so the map would be empty. Check the stack's nodata "
                         "value, or give the stack the training set was drawn from.")


def write_weights(path: str, baseline: Baseline) -> None:
    """CSV of band, importance or coefficient, and rank by magnitude (1 = strongest)."""
    order = sorted(baseline.weights, key=lambda name: -abs(baseline.weights[name]))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["band", baseline.weight_name, "rank"])
        for name in baseline.band_names:
            writer.writerow([name, f"{baseline.weights[name]:.6g}", order.index(name) + 1])


def run_baseline(training_set: TrainingSet, stack_path: str, output: str, weights_csv: str | None = None,
                 settings: BaselineSettings | None = None, window_rows: int | None = None,
                 progress: ProgressFn = None, is_cancelled: CancelFn = None) -> Baseline:
    """Check the stack against the training set, fit, and write the map (and the weights CSV) atomically."""
    for path in filter(None, (output, weights_csv)):
        check_writable(path)
    indexes = stack_bands(stack_path, training_set.manifest["band_names"])
    check_normalisation(stack_path, training_set.manifest)
    baseline = fit_baseline(training_set, settings, lambda p: report(progress, 0.3 * p), is_cancelled)
    with ExitStack() as outputs:
        predict_raster(baseline, stack_path, outputs.enter_context(atomic_path(output)), indexes, window_rows,
                       lambda p: report(progress, 30 + 0.7 * p), is_cancelled)
        if weights_csv:
            write_weights(outputs.enter_context(atomic_path(weights_csv)), baseline)
        check_cancelled(is_cancelled)  # a cancel after the last window still leaves nothing
    return baseline


def _fit_forest(x, y, settings: BaselineSettings, progress: ProgressFn, is_cancelled: CancelFn):
    """A random forest grown in chunks of trees (warm start draws the same tree seeds as a single fit)."""
    forest = RandomForestClassifier(n_estimators=0, class_weight="balanced", random_state=settings.seed,
                                    n_jobs=settings.n_jobs, warm_start=True)
    while forest.n_estimators < settings.n_estimators:
        check_cancelled(is_cancelled)
        forest.n_estimators = min(settings.n_estimators, forest.n_estimators + _TREES_PER_CHUNK)
        with warnings.catch_warnings():  # the warning is about refitting on other data; the data is the same
            warnings.filterwarnings("ignore", message="class_weight presets", category=UserWarning)
            forest.fit(x, y)
        report(progress, 100.0 * forest.n_estimators / settings.n_estimators)
    forest.n_jobs = 1  # prediction threads come from Baseline.predict, on fixed chunks (deterministic)
    return forest


def _card(baseline: Baseline, training_set: TrainingSet, n_rows: int) -> dict:
    manifest, settings = training_set.manifest, baseline.settings
    hyperparameters = ({"n_estimators": settings.n_estimators, "class_weight": "balanced"}
                       if settings.method == "random_forest" else
                       {"standardise": True, "class_weight": "balanced", "solver": "lbfgs"})
    return {
        "architecture": settings.method,
        "input_kind": "vector",
        "band_names": baseline.band_names,
        "in_bands": len(baseline.band_names),
        "normalisation": training_normalisation(manifest),
        "patch_size": 1,
        "pixel_size": manifest.get("pixel_size"),
        "crs": manifest.get("crs"),
        "classes": ["non-prospective", "prospective"],
        "positive_class": 1,
        "metrics": baseline.metrics,
        "seed": settings.seed,
        "extra": {"hyperparameters": hyperparameters, "training_rows": n_rows,
                  "augmented_rows": list(settings.augmented), baseline.weight_name: baseline.weights},
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
    }
