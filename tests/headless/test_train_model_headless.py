"""qgis_process: deepprospect:trainmodel trains headless and gives the same model as the in-process trainer."""

import numpy as np
import onnxruntime as ort
import torch
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.onnx_io import read_card
from deepprospect.models.training import TrainSettings, predict_logits, train_model
from training_factory import easy_set


def test_headless_training_matches_in_process(run_json, tmp_path):
    training_set = easy_set(n=80)
    path = tmp_path / "set.npz"
    save_training_set(str(path), training_set)
    out = tmp_path / "model.onnx"
    code, result, log = run_json("deepprospect:trainmodel", TRAINING_SET=path, ARCHITECTURE="lenet", EPOCHS=3,
                                 BATCH_SIZE=8, DEVICE="cpu", SEED=11, OUTPUT=out, CURVES=tmp_path / "curves.png")
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out) and result["results"]["DEVICE_USED"] == "cpu"
    card = read_card(str(out))
    reference = train_model(training_set, TrainSettings(architecture="lenet", epochs=3, batch_size=8, device="cpu",
                                                        seed=11))
    assert card["history"]["loss"] == reference.history["loss"]
    x = training_set.x_patch[:16]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    headless = session.run(None, {"input": x})[0].reshape(len(x), -1)
    in_process = predict_logits(reference.model, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(headless, in_process, atol=1e-4)
