"""Pixel-pair features (zhang2021): pair counts of Table 2, a seeded cap that never builds the pair space, pairs
inside each split from unaugmented samples only, the pair CNN learning an easy set, its card, one model per
negative draw."""

import csv
import tracemalloc

import numpy as np
import pytest
import torch
from deepprospect.core.errors import InputError
from deepprospect.core.sampling.labels import SHARED
from deepprospect.core.sampling.pairs import DISSIMILAR, SIMILAR, pair_space
from deepprospect.models.draws import DRAW_COLUMNS, train_per_draw
from deepprospect.models.onnx_io import read_card
from deepprospect.models.pairs import pair_split_data
from deepprospect.models.training import PRESETS, TrainSettings, apply_preset, save_model, split_data, train_model
from training_factory import BANDS, easy_set

# zhang2021's preset, shortened for a test: a few epochs on at most 1,500 pairs per split.
QUICK = {"epochs": 4, "batch_size": 64, "max_pairs": 1500, "device": "cpu", "seed": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def quick_settings(**changes) -> TrainSettings:
    return TrainSettings(**{**apply_preset(TrainSettings(), "zhang2021").as_dict(), **QUICK, **changes})


@pytest.mark.parametrize("per_class,similar,dissimilar", [(136, 36720, 18496), (35, 2380, 1225)])
def test_pair_counts_reproduce_table_2(per_class, similar, dissimilar):
    labels = np.array([1] * per_class + [0] * per_class)
    space = pair_space(labels)
    assert (space.similar, space.dissimilar, len(space)) == (similar, dissimilar, similar + dissimilar)
    pairs = space.pairs()
    assert len(pairs) == len(space) and np.count_nonzero(pairs.label == DISSIMILAR) == dissimilar
    assert len(set(zip(pairs.first.tolist(), pairs.second.tolist()))) == len(pairs)  # distinct ordered pairs
    assert (pairs.first != pairs.second).all()
    assert np.array_equal(labels[pairs.first] != labels[pairs.second], pairs.label == DISSIMILAR)
    across = pairs.label == DISSIMILAR
    assert np.count_nonzero(labels[pairs.first[across]] == 1) == dissimilar // 2  # both orders, half each


def test_unequal_classes_give_the_papers_formula():
    k, n = 7, 4
    space = pair_space(np.array([0] * k + [1] * n))
    assert (space.similar, space.dissimilar) == (k * (k - 1) + n * (n - 1), k * n)
    assert len(pair_space(np.array([0, 1, 2, 2]))) == 2 + (1 + 2 + 2)  # three classes: every couple of classes


def test_cap_is_seeded_reproducible_and_a_subset():
    space = pair_space(np.array([1] * 136 + [0] * 136))
    full = set(zip(space.pairs().first.tolist(), space.pairs().second.tolist()))
    first, again, other = space.pairs(2000, seed=4), space.pairs(2000, seed=4), space.pairs(2000, seed=5)
    assert len(first) == 2000 and np.array_equal(first.first, again.first) and np.array_equal(first.label,
                                                                                              again.label)
    assert not np.array_equal(first.first, other.first)
    chosen = set(zip(first.first.tolist(), first.second.tolist()))
    assert len(chosen) == 2000 and chosen <= full
    assert abs(np.mean(first.label == DISSIMILAR) - 18496 / 55216) < 0.05  # drawn uniformly from the space
    assert len(space.pairs(10**9, seed=1)) == len(space)  # a cap above the count keeps every pair
    assert len(space.pairs(50000, seed=1)) == 50000  # dense draws too
    with pytest.raises(InputError, match="pair cap"):
        space.pairs(-1)


def test_a_capped_draw_never_builds_the_pair_space():
    labels = np.repeat(np.array([0, 1], np.int8), 1_000_000)  # 4·10¹² pairs
    space = pair_space(labels)
    tracemalloc.start()
    pairs = space.pairs(1000, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(space) == 2 * 1_000_000 * 999_999 + 10**12 and len(pairs) == 1000
    assert peak < 2**20  # well under a megabyte
    assert np.array_equal(labels[pairs.first] != labels[pairs.second], pairs.label == DISSIMILAR)


def test_pairs_stay_inside_each_split_and_use_unaugmented_samples_only():
    ts = easy_set(n=120, patch=4)
    ts.kind = ts.kind.astype("U16")
    ts.kind[:6] = "crop"
    ts.kind[6:9] = "smote"
    ts.kind[9:12] = "neighbour"  # labelled cells (a deposit's 3 × 3): paired
    negatives = np.flatnonzero(ts.y == 0)
    ts.repeat[negatives[::2]] = 1  # half of the negatives form a second negative set
    data = split_data(ts, "pair", 0)
    for split, part in data.items():
        keep = np.flatnonzero((ts.split == split) & ~np.isin(ts.kind, ["crop", "smote"]) &
                              np.isin(ts.repeat, [SHARED, 0]))
        assert np.array_equal(part.source, ts.x_vector[keep])
        labels = ts.y[keep]
        k, n = np.count_nonzero(labels == 1), np.count_nonzero(labels == 0)
        assert len(part) == k * (k - 1) + n * (n - 1) + k * n
        assert np.array_equal(part.y.numpy(), (labels[part.rows] != labels[part.second]).astype(np.int64))
        x = part.inputs(slice(0, 5))
        assert x.shape == (5, 2, len(BANDS)) and part.sample_shape == (2, len(BANDS))
        assert torch.equal(x[:, 1], torch.from_numpy(ts.x_vector[keep][part.second[:5]]))
        assert part.count()["pairs"]["samples"] == len(keep)
    capped = pair_split_data(ts, 1, max_pairs=100, seed=9)
    assert all(len(part) <= 100 for part in capped.values())
    assert np.array_equal(capped["train"].rows, pair_split_data(ts, 1, 100, 9)["train"].rows)


def test_pair_cnn_learns_an_easy_set_and_its_card_says_pair(tmp_path):
    ts = easy_set(n=120, patch=4)
    settings = quick_settings()
    assert (settings.architecture, settings.learning_rate, settings.batch_size) == ("ppf_cnn1d", 0.01, 64)
    result = train_model(ts, settings)
    assert result.model.input_kind == "pair"
    assert result.metrics["validation"]["auc"] >= 0.8 and result.metrics["test"]["auc"] >= 0.8
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.counts["train"]["pairs"]["pairs"] == 1500 == result.counts["train"]["samples"]
    assert result.counts["validation"]["pairs"]["similar_available"] == 12 * 11 * 2  # 12 + 12 validation cells
    card = save_model(result, ts, str(tmp_path / "pair.onnx"))
    stored = read_card(str(tmp_path / "pair.onnx"))
    assert stored["input_kind"] == card["input_kind"] == "pair" and stored["classes"] == ["similar", "dissimilar"]
    assert stored["extra"]["samples"]["test"]["pairs"]["dissimilar_available"] == 144
    assert stored["extra"]["settings"]["max_pairs"] == 1500
    again = train_model(ts, settings).model.state_dict()
    assert all(torch.equal(value, again[key]) for key, value in result.model.state_dict().items())


def test_one_model_per_negative_draw_keeps_the_best_on_validation(tmp_path):
    ts = easy_set(n=120, patch=4)
    negatives = np.flatnonzero(ts.y == 0)
    ts.repeat[negatives[::2]] = 1
    table = str(tmp_path / "draws.csv")
    lines = []
    best = train_per_draw(ts, quick_settings(epochs=2, max_pairs=400), table_path=table, log=lines.append)
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(DRAW_COLUMNS) and [int(r["draw"]) for r in rows] == [0, 1]
    kept = [r for r in rows if r["kept"] == "True"]
    assert len(kept) == 1 and int(kept[0]["draw"]) == best.settings.negative_set
    assert float(kept[0]["validation_auc"]) == max(float(r["validation_auc"]) for r in rows)
    assert best.extra["negative_draws"]["kept"] == best.settings.negative_set
    assert any("Kept the model of negative draw" in line for line in lines)


def test_zhang2021_preset_and_pair_labels():
    preset = apply_preset(TrainSettings(), "zhang2021")
    assert (preset.architecture, preset.learning_rate, preset.batch_size) == ("ppf_cnn1d", 0.01, 128)
    assert preset.early_stopping == "off" and "zhang2021" in PRESETS
    assert (SIMILAR, DISSIMILAR) == (0, 1)
    with pytest.raises(InputError, match="pair cap"):
        TrainSettings(max_pairs=-1)
