"""deepprospect:trainmodel through processing.run: a model file with its card, presets, cancel and bad input."""

import pytest
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.onnx_io import read_card
from layer_factory import RecordingFeedback
from qgis.core import QgsProcessingException, QgsProcessingFeedback
from training_factory import BANDS, easy_set

ALG = "deepprospect:trainmodel"


@pytest.fixture(scope="module")
def training_set_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("set") / "easy.npz"
    save_training_set(str(path), easy_set())
    return str(path)


def params(training_set, out_dir, **extra):
    return {"TRAINING_SET": training_set, "ARCHITECTURE": "lenet", "EPOCHS": 12, "BATCH_SIZE": 16,
            "LEARNING_RATE": 2e-3, "MIN_LEARNING_RATE": 2e-4, "DEVICE": "cpu", "SEED": 3,
            "OUTPUT": str(out_dir / "model.onnx"), "CURVES": str(out_dir / "curves.png"), **extra}


def test_trains_lenet_and_writes_the_model_file(run_alg, training_set_path, tmp_path):
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(training_set_path, tmp_path), feedback)
    card = read_card(result["OUTPUT"])
    assert card["architecture"] == "lenet" and card["band_names"] == BANDS
    assert result["VALIDATION_AUC"] >= 0.9 and result["DEVICE_USED"] == "cpu"
    assert result["VALIDATION_AUC"] == pytest.approx(card["metrics"]["validation"]["auc"])
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert "Device: CPU as requested" in feedback.text and "Epoch 12/12" in feedback.text


def test_early_stopping_settings_and_the_monitor_used_reach_the_card(run_alg, tmp_path):
    no_validation = easy_set(n=60)
    no_validation.split[no_validation.split == "validation"] = "train"
    path = tmp_path / "no_validation.npz"
    save_training_set(str(path), no_validation)
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(str(path), tmp_path, EPOCHS=3, MIN_EPOCHS=2, SMOOTHING=2, CURVES=None), feedback)
    extra = read_card(result["OUTPUT"])["extra"]
    assert (extra["settings"]["min_epochs"], extra["settings"]["smoothing"]) == (2, 2)
    assert extra["early_stopping_used"] == "off (no validation samples)" and extra["best_epoch"] == 3
    assert "early stopping off (no validation samples)" in feedback.text


def test_he2024_preset_sets_the_papers_schedule(run_alg, training_set_path, tmp_path):
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(training_set_path, tmp_path, PRESET="he2024", EARLY_STOPPING="off", CURVES=None),
                     feedback)
    card = read_card(result["OUTPUT"])
    settings = card["extra"]["settings"]
    assert (settings["epochs"], settings["batch_size"], settings["learning_rate"]) == (50, 16, 1e-4)
    assert settings["architecture"] == "lenet" and len(card["history"]["epoch"]) == 50
    assert "Preset he2024" in feedback.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_cancel_leaves_no_model_file(run_alg, training_set_path, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda _: feedback.cancel())
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg(ALG, params(training_set_path, tmp_path), feedback)
    assert list(tmp_path.iterdir()) == []


def test_bad_input_gives_clear_errors(run_alg, training_set_path, tmp_path):
    not_a_set = tmp_path / "other.npz"
    not_a_set.write_bytes(b"not a zip file")
    with pytest.raises(QgsProcessingException, match="Cannot read the training set"):
        run_alg(ALG, params(str(not_a_set), tmp_path))
    with pytest.raises(QgsProcessingException, match=r"ending in \.onnx"):
        run_alg(ALG, params(training_set_path, tmp_path, OUTPUT=str(tmp_path / "model.txt")))
    with pytest.raises(QgsProcessingException, match="takes patches of 16 to 256"):
        small = tmp_path / "small.npz"
        save_training_set(str(small), easy_set(n=40, patch=8))
        run_alg(ALG, params(str(small), tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npz", "small.npz"]


def test_architecture_options_reach_the_card_and_wrong_ones_are_named(run_alg, training_set_path, tmp_path):
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(training_set_path, tmp_path, ARCHITECTURE="mlp", OPTIONS="width=16; dropout=0.1",
                                 EPOCHS=2, CURVES=None), feedback)
    assert read_card(result["OUTPUT"])["options"] == {"width": 16, "dropout": 0.1}
    assert "Options of mlp: width=64, dropout=0.3; given: width=16; dropout=0.1." in feedback.text
    with pytest.raises(QgsProcessingException, match=r"LeNet-5 has no option width; its options: none"):
        run_alg(ALG, params(training_set_path, tmp_path, OPTIONS="width=16", OUTPUT=str(tmp_path / "x.onnx")))
    assert not (tmp_path / "x.onnx").exists()


def test_mfaf_writes_band_influence_to_card_and_csv(run_alg, tmp_path):
    training_set_path = str(tmp_path / "small.npz")
    save_training_set(training_set_path, easy_set(n=40))
    feedback = RecordingFeedback()
    result = run_alg(ALG, params(training_set_path, tmp_path, ARCHITECTURE="mfaf_shufflenet_v2", EPOCHS=2,
                                 OPTIONS="rates=1,4; beta=0.2; fusion=vote", CURVES=None,
                                 BAND_INFLUENCE=str(tmp_path / "influence.csv")), feedback)
    card = read_card(result["OUTPUT"])
    assert card["architecture"] == "mfaf_shufflenet_v2"
    assert card["options"] == {"rates": [1, 4], "beta": 0.2, "fusion": "vote"}
    influence = card["extra"]["band_influence"]
    assert list(influence) == BANDS and all(0.0 < weight < 1.0 for weight in influence.values())
    assert result["BAND_INFLUENCE"] == str(tmp_path / "influence.csv")
    lines = (tmp_path / "influence.csv").read_text().splitlines()
    assert lines[0] == "band,weight,rank" and [line.split(",")[0] for line in lines[1:]] == BANDS
    assert [float(line.split(",")[1]) for line in lines[1:]] == pytest.approx(list(influence.values()), abs=1e-6)
    assert "Band influence (mean channel attention): Au" in feedback.text
    with pytest.raises(QgsProcessingException, match="band-influence CSV holds MFAF's channel-attention weights"):
        run_alg(ALG, params(training_set_path, tmp_path, OUTPUT=str(tmp_path / "x.onnx"),
                            ARCHITECTURE="mfaf_resnet18", OPTIONS="channel_attention=false",
                            BAND_INFLUENCE=str(tmp_path / "x.csv")))
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "x.csv").exists()


def test_online_flips_and_crop_make_a_model_of_the_crop_size(run_alg, tmp_path):
    path = tmp_path / "windows20.npz"
    save_training_set(str(path), easy_set(n=60, patch=20))
    result = run_alg(ALG, params(str(path), tmp_path, EPOCHS=2, CURVES=None, RANDOM_FLIPS=True,
                                 RANDOM_ROTATIONS=True, RANDOM_CROP=16))
    card = read_card(result["OUTPUT"])
    assert card["patch_size"] == 16
    online = card["extra"]["online_augmentation"]
    assert (online["random_flips"], online["random_rotations"], online["random_crop"]) == (True, True, 16)


def test_a_crop_larger_than_the_windows_is_refused(run_alg, training_set_path, tmp_path):
    with pytest.raises(QgsProcessingException, match="larger than the training set's windows"):
        run_alg(ALG, params(training_set_path, tmp_path, EPOCHS=1, CURVES=None, RANDOM_CROP=32))
    assert not (tmp_path / "model.onnx").exists()
