"""One model per negative draw, the best kept (zhang2021, Table 3: ten random negative sets, one network each).

A training set built with N repeats holds N negative sets (draws of random negative cells; deposits and barren
points are shared). :func:`train_per_draw` trains the chosen architecture once per draw with the same settings
and seed, tabulates each draw's pairs or samples, training loss and validation / test scores, and keeps the model
with the highest validation AUC (then validation accuracy, then the lowest training loss: the only choice left
when there is no validation split). Choosing on validation, not on test as the paper's table invites, keeps
the test scores of the kept model honest. Works for every architecture; pair models report pair counts.
"""

from __future__ import annotations

import dataclasses
import math

from ..core.progress import CancelFn, LogFn, ProgressFn, log_message
from ..core.sampling.labels import SHARED, TrainingSet
from ..core.tables import write_csv
from .training import TrainResult, TrainSettings, train_model

DRAW_COLUMNS = ("draw", "train_samples", "validation_samples", "test_samples", "kept_epoch", "train_loss",
                "validation_accuracy", "validation_auc", "test_accuracy", "test_auc", "kept")


def negative_draws(training_set: TrainingSet) -> list[int]:
    """The training set's negative sets (repeats); [0] when it has none of its own."""
    return sorted(set(training_set.repeat.tolist()) - {SHARED}) or [0]


def train_per_draw(training_set: TrainingSet, settings: TrainSettings, *, table_path: str | None = None,
                   progress: ProgressFn = None, is_cancelled: CancelFn = None, log: LogFn = None) -> TrainResult:
    """Train one model per negative draw and return the best (module docstring); its card's extra holds the
    table (``negative_draws``), also written to ``table_path`` as CSV when given."""
    draws = negative_draws(training_set)
    best, best_key, rows = None, None, []
    for index, draw in enumerate(draws):
        log_message(log, f"Negative draw {draw} ({index + 1} of {len(draws)}).")
        share = None if progress is None else (lambda p, i=index: progress((i + p / 100.0) * 100.0 / len(draws)))
        result = train_model(training_set, dataclasses.replace(settings, negative_set=draw), progress=share,
                             is_cancelled=is_cancelled, log=log)
        row = _row(draw, result)
        rows.append(row)
        key = (_finite(row["validation_auc"]), _finite(row["validation_accuracy"]),
               -_finite(row["train_loss"], math.inf))
        if best_key is None or key > best_key:
            best, best_key = result, key
    kept = best.settings.negative_set
    for row in rows:
        row["kept"] = row["draw"] == kept
    log_message(log, f"Kept the model of negative draw {kept} (highest validation AUC, then accuracy, then lowest "
                     "training loss).")
    if table_path:
        write_csv(table_path, DRAW_COLUMNS, ([row[c] for c in DRAW_COLUMNS] for row in rows))
    best.extra["negative_draws"] = {"kept": kept, "rule": "highest validation AUC, then validation accuracy, "
                                    "then lowest training loss", "table": rows}
    return best


def _row(draw: int, result: TrainResult) -> dict:
    metrics, losses = result.metrics, result.history.get("loss", [])
    loss = losses[result.best_epoch - 1] if 0 < result.best_epoch <= len(losses) else None
    row = {"draw": draw, "kept_epoch": result.best_epoch, "train_loss": loss, "kept": False}
    for split in ("train", "validation", "test"):
        row[f"{split}_samples"] = result.counts.get(split, {}).get("samples", 0)
    for split in ("validation", "test"):
        for name in ("accuracy", "auc"):
            value = metrics.get(split, {}).get(name)
            row[f"{split}_{name}"] = None if value is None or not math.isfinite(value) else value
    return row


def _finite(value: float | None, default: float = -math.inf) -> float:
    return value if value is not None and math.isfinite(value) else default
