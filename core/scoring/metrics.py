"""Two-class metrics at a threshold: of the prospective class, their macro averages, and the confusion matrix.

gao2022 reports F1 as "F1 values of each category ... calculated and then averaged" (the macro average) next to
the accuracy and the recall of the ore class; gao2023 the same figures; he2024 (Table 1) the precision, recall
and F1 of each class, their means ("mean precision, mean recall, mean F1-score") and the confusion matrix. So
every score here is scikit-learn's:

* ``accuracy``, and ``precision``, ``recall``, ``f1`` of the prospective class (1), 0 where undefined;
* ``macro_precision``, ``macro_recall``, ``macro_f1``: the unweighted means over the classes present in the
  truth or the prediction (scikit-learn's ``average="macro"``);
* ``confusion_matrix``: ``[[TN, FP], [FN, TP]]`` (:data:`CONFUSION_LAYOUT`), as whole counts.

With ``sample_weight`` (e.g. negatives counted by value rather than listed one by one), the counts are the
summed weights.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

CLASS_LABELS = (0, 1)
CONFUSION_LAYOUT = ("[[TN, FP], [FN, TP]]: rows are the true class, columns the predicted class, both in the order "
                    "non-prospective (0), prospective (1)")
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")
CONFUSION_MATRIX = "confusion_matrix"


def threshold_metrics(truth: np.ndarray, predicted: np.ndarray,
                      sample_weight: np.ndarray | None = None) -> dict[str, float | list[list[int]] | None]:
    """:data:`THRESHOLD_METRICS` and the confusion matrix of 0/1 (or bool) ``predicted`` against ``truth``.

    Every value is None when there is no sample (an empty split).
    """
    truth = np.asarray(truth).astype(np.int64).ravel()
    predicted = np.asarray(predicted).astype(np.int64).ravel()
    if truth.size == 0:
        return {**dict.fromkeys(THRESHOLD_METRICS), CONFUSION_MATRIX: None}
    matrix = confusion_matrix(truth, predicted, labels=list(CLASS_LABELS), sample_weight=sample_weight)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, labels=list(CLASS_LABELS), sample_weight=sample_weight, zero_division=0)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0  # classes in the truth or the prediction
    return {
        "accuracy": float(accuracy_score(truth, predicted, sample_weight=sample_weight)),
        "precision": float(precision[1]),
        "recall": float(recall[1]),
        "f1": float(f1[1]),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        CONFUSION_MATRIX: np.rint(matrix).astype(np.int64).tolist(),
    }


def confusion_counts(matrix: list[list[int]] | None) -> dict[str, int | None]:
    """``{"tn", "fp", "fn", "tp"}`` of a confusion matrix in :data:`CONFUSION_LAYOUT` (None for a missing one)."""
    if matrix is None:
        return dict.fromkeys(("tn", "fp", "fn", "tp"))
    (tn, fp), (fn, tp) = matrix
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
