"""Training loop: learning an easy set, determinism, schedules, early stopping, devices, cancel, model file."""

import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from deepprospect.core.errors import Cancelled, InputError, ResourceError
from deepprospect.core.sampling.labels import SHARED, load_training_set, save_training_set
from deepprospect.core.sampling.stored_arrays import StoredArray
from deepprospect.models import training
from deepprospect.models.onnx_io import read_card
from deepprospect.models.training import (
    PRESETS,
    TrainSettings,
    apply_preset,
    save_model,
    select_device,
    split_data,
    train_model,
)
from training_factory import BANDS, easy_set

FAST = {"epochs": 12, "batch_size": 16, "learning_rate": 2e-3, "min_learning_rate": 2e-4, "patience": 20}


@pytest.fixture(scope="module")
def trained():
    ts = easy_set()
    return ts, train_model(ts, TrainSettings(architecture="lenet", device="cpu", seed=3, **FAST))


def test_lenet_learns_an_easy_set(trained):
    _, result = trained
    assert result.metrics["validation"]["auc"] >= 0.9
    assert result.metrics["test"]["auc"] >= 0.9
    assert set(result.metrics) == {"train", "validation", "test"}
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert not result.model.training


def test_same_seed_same_weights_other_seed_other_weights():
    ts = easy_set(n=60)
    settings = TrainSettings(architecture="lenet", device="cpu", epochs=2, batch_size=8, seed=5)
    first, second = (train_model(ts, settings).model.state_dict() for _ in range(2))
    other = train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=2, batch_size=8,
                                          seed=6)).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_the_caller_random_state_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_model(easy_set(n=40), TrainSettings(architecture="lenet", device="cpu", epochs=1, batch_size=8))
    assert torch.equal(torch.rand(3), expected)


def test_vector_model_trains_on_cell_vectors_and_skips_spatial_copies():
    ts = easy_set(n=120)
    ts.kind[:10] = "crop"
    data = split_data(ts, "vector", 0)
    assert data["train"].sample_shape == (len(BANDS),)
    assert len(data["train"]) == int((ts.split == "train").sum()) - 10
    result = train_model(ts, TrainSettings(architecture="cnn1d", device="cpu", seed=1, **FAST))
    assert result.model.input_kind == "vector"
    assert result.metrics["validation"]["auc"] >= 0.8


def test_negative_sets_are_selected_and_unknown_ones_refused():
    ts = easy_set(n=60)
    ts.repeat[(ts.y == 0) & (np.arange(60) % 4 == 0)] = 1
    in_zero = split_data(ts, "patch", 0)["train"]
    in_one = split_data(ts, "patch", 1)["train"]
    assert len(in_zero) + len(in_one) == int((ts.split == "train").sum()) + int(
        ((ts.split == "train") & (ts.repeat == SHARED)).sum())
    with pytest.raises(InputError, match="negative set 4"):
        split_data(ts, "patch", 4)


def test_cosine_and_step_schedules_follow_the_papers():
    ts = easy_set(n=40)
    cosine = train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=5, batch_size=8,
                                           early_stopping="off"))
    assert cosine.history["lr"][0] == pytest.approx(1e-4)
    assert cosine.history["lr"][-1] == pytest.approx(1e-5)
    assert np.all(np.diff(cosine.history["lr"]) < 0)
    step = train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=5, batch_size=8,
                                         optimiser="sgd", learning_rate=0.01, schedule="step", step_epochs=2,
                                         early_stopping="off"))
    assert step.history["lr"] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def test_early_stopping_keeps_the_best_epoch():
    ts = easy_set(n=120, flip_validation=True)
    result = train_model(ts, TrainSettings(architecture="lenet", device="cpu", seed=2, epochs=30, batch_size=16,
                                           learning_rate=3e-3, patience=2, min_epochs=1, smoothing=1))
    assert result.stopped_early
    ran = len(result.history["epoch"])
    assert ran == result.best_epoch + 2
    losses = result.history["val_loss"]
    assert losses[result.best_epoch - 1] == min(losses)
    assert result.early_stopping_used == "val_loss" and result.selection["train_auc_at_kept"] > 0.5


def test_early_stopping_waits_for_the_minimum_and_smooths_the_score():
    ts = easy_set(n=120, flip_validation=True)
    result = train_model(ts, TrainSettings(architecture="lenet", device="cpu", seed=2, epochs=30, batch_size=16,
                                           learning_rate=3e-3, patience=2, min_epochs=8, smoothing=3))
    best, ran = result.best_epoch, len(result.history["epoch"])
    assert best >= 8 and ran == best + 2 and result.stopped_early
    smoothed = {e: np.mean(result.history["val_loss"][e - 3:e]) for e in range(8, ran + 1)}
    assert smoothed[best] == min(smoothed.values())
    assert {k: result.selection[k] for k in ("min_epochs", "smoothing", "kept_epoch")} == {
        "min_epochs": 8, "smoothing": 3, "kept_epoch": best}


def inverted_validation(n=120):
    """Validation = training windows with their labels swapped: it favours the epochs worst on training."""
    ts = easy_set(n=n)
    validation = np.flatnonzero(ts.split == "validation")
    source = np.flatnonzero(ts.split == "train")[:len(validation)]
    ts.x_patch[validation], ts.x_vector[validation] = ts.x_patch[source], ts.x_vector[source]
    ts.y[validation] = 1 - ts.y[source]
    return ts


def test_early_stopping_never_keeps_a_model_worse_than_chance():
    # The 1D CNN starts below chance on training (training AUC 0.10 at epoch 1), where validation peaks.
    result = train_model(inverted_validation(), TrainSettings(
        architecture="cnn1d", device="cpu", seed=0, epochs=4, learning_rate=3e-4, schedule="constant",
        early_stopping="val_auc", min_epochs=1, smoothing=1, patience=20))
    val_auc = result.history["val_auc"]
    assert int(np.argmax(val_auc)) + 1 == 1 and result.selection["below_chance"][0]["epoch"] == 1
    assert all(entry["train_auc"] <= 0.5 for entry in result.selection["below_chance"])
    assert result.best_epoch > 1 and result.metrics["train"]["auc"] > 0.5
    assert result.metrics["train"]["auc"] == pytest.approx(result.selection["train_auc_at_kept"])


def test_epoch_choice_rules():
    def run(scores, train_aucs, **kwargs):
        choice = training._EpochChoice(**{"monitor": "val_auc", "min_epochs": 1, "smoothing": 1, "patience": 10,
                                          **kwargs})
        asked = []
        for epoch, (score, auc) in enumerate(zip(scores, train_aucs), start=1):
            choice.update(epoch, score, lambda auc=auc, epoch=epoch: asked.append(epoch) or auc)
            if choice.stop:
                break
        return choice.record("val_auc", epoch), asked

    # validation favours epoch 2, whose training AUC is 0.45: epoch 4 is kept instead
    record, asked = run([0.6, 0.9, 0.5, 0.8, 0.7], [0.6, 0.45, 0.7, 0.8, 0.9], min_epochs=2)
    assert record["kept_epoch"] == 4 and asked == [2, 3, 4] and record["below_chance"] == [
        {"epoch": 2, "train_auc": 0.45}]
    record, _ = run([0.9, 0.1, 0.8, 0.7], [0.6] * 4, smoothing=3)  # means 0.9, 0.5, 0.6, 0.53
    assert record["kept_epoch"] == 1
    record, _ = run([0.9, 0.8, 0.7], [0.4, 0.3, 0.2])  # none qualifies: the last epoch
    assert record["kept_epoch"] == 3 and "no epoch from 1 on" in record["kept_because"]
    record, asked = run([0.5, 0.9, 0.1, 0.1, 0.1], [0.9] * 5, min_epochs=3, patience=2)
    assert record["kept_epoch"] == 3 and asked == [3]  # epochs before the minimum are never kept
    record, asked = run([0.5, 0.9], [0.9] * 2, monitor="off")
    assert record["kept_epoch"] == 2 and asked == [] and record["kept_because"].endswith("off")


def test_presets():
    he = apply_preset(TrainSettings(architecture="vit", epochs=3), "he2024")
    assert (he.architecture, he.optimiser, he.batch_size, he.schedule, he.epochs) == ("vit", "adam", 16, "cosine", 50)
    assert (he.learning_rate, he.min_learning_rate) == (1e-4, 1e-5)
    gao = apply_preset(TrainSettings(), "gao2022")
    assert (gao.architecture, gao.optimiser, gao.momentum, gao.weight_decay) == ("resnet50", "sgd", 0.1, 1e-4)
    assert (gao.learning_rate, gao.schedule, gao.step_epochs, gao.step_factor) == (0.01, "step", 30, 0.5)
    assert (gao.batch_size, gao.epochs) == (32, 120)
    assert he.early_stopping == gao.early_stopping == "off"  # the papers trained every epoch
    assert apply_preset(gao, "none") is gao
    assert set(PRESETS) == {"he2024", "gao2022", "gao2023", "zhang2021"}
    with pytest.raises(InputError, match="preset"):
        apply_preset(gao, "zhang")


def test_device_selection_with_and_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device, reason = select_device("auto")
    assert device.type == "cpu" and "no usable CUDA" in reason
    assert select_device("cpu")[0].type == "cpu"
    with pytest.raises(ResourceError, match="CUDA was requested"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    device, reason = select_device("auto")
    assert device.type == "cuda" and "Fake GPU" in reason
    assert select_device("cpu")[0].type == "cpu"


def test_cancel_between_batches_raises():
    calls = []

    def cancel_on_fifth():
        calls.append(1)
        return len(calls) >= 5

    with pytest.raises(Cancelled):
        train_model(easy_set(n=60), TrainSettings(architecture="lenet", device="cpu", batch_size=4),
                    is_cancelled=cancel_on_fifth)
    assert len(calls) == 5


@pytest.mark.parametrize("change, message", [
    (lambda ts: ts.y.__setitem__(ts.split == "train", 0), "one class"),
    (lambda ts: ts.x_patch.__setitem__((0, 0, 0, 0), np.nan), "train samples hold NaN"),
    (lambda ts: ts.x_patch.__setitem__((ts.split == "validation", 0, 0, 0), np.nan), "validation samples hold NaN"),
    (lambda ts: ts.manifest.__setitem__("band_names", ["Au"]), "manifest names 1 band"),
])
def test_unusable_sets_are_refused(change, message):
    ts = easy_set(n=40)
    change(ts)
    with pytest.raises(InputError, match=message):
        train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=1))


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="choose one of"):
        TrainSettings(architecture="googlenet")
    with pytest.raises(InputError, match="optimiser"):
        TrainSettings(optimiser="rmsprop")
    with pytest.raises(InputError, match="batch size"):
        TrainSettings(batch_size=1)
    with pytest.raises(InputError, match="minimum epochs, smoothing and members"):
        TrainSettings(smoothing=0)
    with pytest.raises(InputError, match="final learning rate of the cosine schedule"):
        TrainSettings(learning_rate=1e-3, min_learning_rate=1e-2)
    assert TrainSettings(schedule="constant", learning_rate=1e-6).learning_rate == 1e-6  # the final rate is unused


def test_model_file_card_and_curves(trained, tmp_path):
    ts, result = trained
    path, curves = tmp_path / "lenet.onnx", tmp_path / "curves.png"
    save_model(result, ts, str(path), str(curves))
    card = read_card(str(path))
    assert card["architecture"] == "lenet" and card["band_names"] == BANDS and card["patch_size"] == 16
    assert card["normalisation"]["normalise"] == "z-score"
    assert set(card["normalisation"]["statistics"]) == set(BANDS)
    assert card["metrics"]["validation"]["auc"] == pytest.approx(result.metrics["validation"]["auc"])
    assert card["history"]["loss"] == pytest.approx(result.history["loss"])
    assert card["seed"] == 3 and card["data_hash"].startswith("sha256:")
    assert card["crs"] == "EPSG:32650" and card["pixel_size"] == [100.0, 100.0]
    assert card["extra"]["settings"]["optimiser"] == "adam" and card["extra"]["device"] == "cpu"
    assert card["extra"]["early_stopping_used"] == "val_loss"
    selection = card["extra"]["epoch_selection"]
    assert (selection["min_epochs"], selection["smoothing"], selection["kept_epoch"]) == (10, 3, result.best_epoch)
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x = ts.x_patch[ts.split == "validation"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": x})[0].reshape(len(x), -1)
    torch_logits = training.predict_logits(result.model, torch.from_numpy(x)).numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "lenet.onnx"]


def test_without_validation_the_card_holds_null_not_nan(tmp_path):
    ts = easy_set(n=40)
    ts.split[ts.split == "validation"] = "train"
    ts.manifest["split"] = {"fallback": {"reason": "1 deposit group", "steps": ["validation split dropped"]}}
    result = train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=2, batch_size=8))
    assert result.history["val_loss"] == [None, None] and not result.stopped_early
    save_model(result, ts, str(tmp_path / "m.onnx"), str(tmp_path / "c.png"))
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    card = json.loads(props["deepprospect_card"], parse_constant=lambda name: pytest.fail(f"{name} in the card"))
    assert card["history"]["val_auc"] == [None, None]
    extra = card["extra"]
    assert extra["early_stopping_used"] == "off (no validation samples)" and extra["best_epoch"] == 2
    assert extra["epoch_selection"]["monitor"] == "off (no validation samples)"
    assert extra["epoch_selection"]["kept_because"] == "the last epoch, early stopping being off"
    assert extra["training_set"]["split"]["fallback"]["steps"] == ["validation split dropped"]


def test_undefined_metrics_are_nan_not_errors():
    ts = easy_set(n=60)
    ts.y[ts.split == "test"] = 0
    result = train_model(ts, TrainSettings(architecture="lenet", device="cpu", epochs=1, batch_size=8))
    assert math.isnan(result.metrics["test"]["auc"])
    assert result.metrics["test"]["recall"] == 0.0


def test_seed_ensemble_of_mlps_with_input_noise(tmp_path):
    ts = easy_set(n=120)
    settings = TrainSettings(architecture="mlp", device="cpu", seed=4, members=3, input_noise=0.1,
                             weight_decay=1e-3, early_stopping="off", **FAST)
    result = train_model(ts, settings)
    assert isinstance(result.model, training.SeedAverage) and len(result.model.members) == 3
    assert result.metrics["validation"]["auc"] >= 0.8
    assert len(result.selection["member_kept_epochs"]) == 3
    member_probabilities = torch.stack([torch.softmax(m(torch.from_numpy(ts.x_vector[:5])), 1)
                                        for m in result.model.members]).mean(0)
    averaged = torch.softmax(result.model(torch.from_numpy(ts.x_vector[:5])), 1)
    torch.testing.assert_close(averaged, member_probabilities)
    again = train_model(ts, settings)
    assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                 again.model.state_dict().values()))
    path = str(tmp_path / "mlp.onnx")
    card = save_model(result, ts, path)
    assert card["extra"]["settings"]["members"] == 3
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: ts.x_vector[:5]})[0]
    np.testing.assert_allclose(np.exp(logits), averaged.detach().numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="members"):
        TrainSettings(members=0)


def test_auc_per_deposit_counts_each_deposit_once():
    ts = easy_set(n=80)
    ts.kind[(ts.y == 1) & (np.arange(80) % 2 == 0)] = "neighbour"  # half the positive cells are neighbours
    data = split_data(ts, "vector", 0)
    part = data["validation"]
    assert part.per_deposit.sum() == int(((part.y.numpy() == 0) | (part.per_deposit & (part.y.numpy() == 1))).sum())
    model = train_model(ts, TrainSettings(architecture="mlp", device="cpu", seed=1, **FAST)).model
    metrics = training.evaluate(model, part)
    probability = torch.softmax(model(part.inputs(slice(None))), 1)[:, 1].detach().numpy()
    once = part.per_deposit
    from sklearn.metrics import roc_auc_score

    assert metrics["auc_per_deposit"] == pytest.approx(roc_auc_score(part.y.numpy()[once], probability[once]))
    assert not (ts.kind[ts.split == "validation"][once] == "neighbour").any()


def test_a_set_left_on_disk_trains_to_the_same_weights(tmp_path):
    ts = easy_set(n=100)
    save_training_set(str(tmp_path / "set.npz"), ts)
    on_disk = load_training_set(str(tmp_path / "set.npz"), on_disk=True)
    assert isinstance(on_disk.x_patch, StoredArray)
    settings = TrainSettings(architecture="lenet", device="cpu", seed=2, epochs=3, batch_size=8, input_noise=0.1)
    in_memory, from_file = train_model(ts, settings), train_model(on_disk, settings)
    assert all(torch.equal(a, b) for a, b in zip(in_memory.model.state_dict().values(),
                                                 from_file.model.state_dict().values()))
    assert from_file.data_hash == in_memory.data_hash and from_file.history["loss"] == in_memory.history["loss"]
    assert from_file.metrics == in_memory.metrics


class RecordingArray:
    """Stands in for a training set's array larger than memory: records how many rows each read takes."""

    def __init__(self, array):
        self.array, self.reads = array, []

    @property
    def shape(self):
        return self.array.shape

    def __getitem__(self, index):
        part = self.array[index]
        self.reads.append(len(part))
        return part


def test_training_reads_one_batch_of_rows_at_a_time():
    ts = easy_set(n=1500, patch=4)
    ts.x_vector = RecordingArray(ts.x_vector)
    result = train_model(ts, TrainSettings(architecture="mlp", device="cpu", epochs=2, batch_size=64, min_epochs=1))
    assert result.counts["train"]["samples"] == 900 > training._EVAL_BATCH
    assert max(ts.x_vector.reads) <= training._EVAL_BATCH  # never the whole split at once
    assert ts.x_vector.reads.count(64) >= 2 * (900 // 64)  # the training batches, gathered by index


def test_architecture_options_reach_the_model_and_the_card(tmp_path):
    ts = easy_set(n=80)
    settings = TrainSettings(architecture="mlp", options={"width": 12, "dropout": 0.0}, device="cpu", seed=2,
                             **{**FAST, "epochs": 2})
    result = train_model(ts, settings)
    assert result.model.features[0].out_features == 12
    card = save_model(result, ts, str(tmp_path / "mlp.onnx"))
    assert card["options"] == {"width": 12, "dropout": 0.0} == read_card(str(tmp_path / "mlp.onnx"))["options"]
    assert card["extra"]["settings"]["options"] == {"width": 12, "dropout": 0.0}
    with pytest.raises(InputError, match="has no option depth"):
        TrainSettings(architecture="mlp", options={"depth": 3})


def test_a_network_with_several_heads_sets_its_own_training_loss():
    class TwoHeads(training.ZooModel):
        """Trains on the sum of two heads' losses; answers with their mean in eval mode."""

        input_kind = "vector"

        def __init__(self) -> None:
            super().__init__(len(BANDS), 1, 2)
            self.heads = torch.nn.ModuleList(torch.nn.Linear(len(BANDS), 2) for _ in range(2))
            self.calls = 0

        def forward(self, x):
            outputs = torch.stack([head(x) for head in self.heads])
            return outputs if self.training else outputs.mean(0)

        def training_loss(self, output, y, criterion):
            self.calls += 1
            return sum(criterion(head, y) for head in output)

    model = TwoHeads()
    data = split_data(easy_set(n=60), "vector", 0)
    training.fit_network(model, TrainSettings(architecture="mlp", device="cpu", **{**FAST, "epochs": 3}),
                         data["train"])
    assert model.calls >= 3 and not model.training and model(data["train"].inputs(slice(0, 4))).shape == (4, 2)
