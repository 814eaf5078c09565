"""Two-class threshold metrics against scikit-learn."""

import numpy as np
import pytest
from deepprospect.core.scoring.metrics import CONFUSION_MATRIX, THRESHOLD_METRICS, confusion_counts, threshold_metrics
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)


def sklearn_metrics(truth, predicted, weights=None):
    macro = precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0, sample_weight=weights)
    return {
        "accuracy": accuracy_score(truth, predicted, sample_weight=weights),
        "precision": precision_score(truth, predicted, zero_division=0, sample_weight=weights),
        "recall": recall_score(truth, predicted, zero_division=0, sample_weight=weights),
        "f1": f1_score(truth, predicted, zero_division=0, sample_weight=weights),
        "macro_precision": macro[0], "macro_recall": macro[1], "macro_f1": macro[2],
    }


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(200) < 0.3
    predicted = np.where(rng.random(200) < 0.7, truth, ~truth)
    result = threshold_metrics(truth, predicted)
    expected = sklearn_metrics(truth, predicted)
    for name in THRESHOLD_METRICS:
        assert result[name] == pytest.approx(expected[name], abs=1e-12), name
    assert result[CONFUSION_MATRIX] == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()
    tn, fp, fn, tp = confusion_matrix(truth, predicted).ravel()
    assert confusion_counts(result[CONFUSION_MATRIX]) == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_weighted_counts_equal_the_listed_samples():
    truth = np.array([1, 1, 1, 0, 0])
    predicted = np.array([1, 0, 1, 1, 0])
    weights = np.array([1, 1, 1, 30, 970])
    result = threshold_metrics(truth, predicted, weights)
    listed = threshold_metrics(np.repeat(truth, weights), np.repeat(predicted, weights))
    assert {name: result[name] for name in THRESHOLD_METRICS} == pytest.approx(
        {name: listed[name] for name in THRESHOLD_METRICS})
    assert result[CONFUSION_MATRIX] == listed[CONFUSION_MATRIX] == [[970, 30], [1, 2]]
    assert result["macro_recall"] == pytest.approx((970 / 1000 + 2 / 3) / 2)


def test_one_class_split_averages_the_classes_present_like_sklearn():
    truth = np.ones(6, int)
    predicted = np.array([1, 1, 1, 1, 0, 0])
    result = threshold_metrics(truth, predicted)
    expected = sklearn_metrics(truth, predicted)
    assert {name: result[name] for name in THRESHOLD_METRICS} == pytest.approx(expected)
    assert result[CONFUSION_MATRIX] == [[0, 0], [2, 4]]
    only_positive = threshold_metrics(truth, truth)
    assert only_positive["macro_f1"] == 1.0 and only_positive[CONFUSION_MATRIX] == [[0, 0], [0, 6]]


def test_empty_split_is_all_none():
    result = threshold_metrics(np.zeros(0), np.zeros(0))
    assert set(result) == {*THRESHOLD_METRICS, CONFUSION_MATRIX} and all(v is None for v in result.values())
    assert confusion_counts(None) == {"tn": None, "fp": None, "fn": None, "tp": None}


def test_training_evaluate_and_the_card_hold_them(tmp_path):
    import torch
    from deepprospect.models import training
    from deepprospect.models.onnx_io import read_card
    from training_factory import easy_set

    ts = easy_set(n=80)
    result = training.train_model(ts, training.TrainSettings(architecture="mlp", device="cpu", seed=2, epochs=3,
                                                             batch_size=16, learning_rate=2e-3))
    part = training.split_data(ts, "vector", 0)["validation"]
    metrics = training.evaluate(result.model, part)
    with torch.no_grad():
        probability = torch.softmax(result.model(part.inputs(slice(None))), 1)[:, 1].numpy()
    truth, predicted = part.y.numpy(), probability >= 0.5
    expected = sklearn_metrics(truth, predicted)
    assert {name: metrics[name] for name in THRESHOLD_METRICS} == pytest.approx(expected)
    assert metrics[CONFUSION_MATRIX] == confusion_matrix(truth, predicted, labels=[0, 1]).tolist()
    assert result.metrics["validation"][CONFUSION_MATRIX] == metrics[CONFUSION_MATRIX]
    card = training.save_model(result, ts, str(tmp_path / "mlp.onnx"))
    stored = read_card(str(tmp_path / "mlp.onnx"))["metrics"]
    assert stored == card["metrics"]
    assert stored["test"]["macro_f1"] == pytest.approx(result.metrics["test"]["macro_f1"])
    assert sum(map(sum, stored["train"][CONFUSION_MATRIX])) == int((ts.split == "train").sum())
