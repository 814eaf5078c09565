"""Training under torchrun: two gloo processes on the CPU write a valid model file whose card records them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import deepprospect
import numpy as np
import onnxruntime as ort
import pytest
from deepprospect.core.sampling.labels import save_training_set
from deepprospect.models.distributed import main, parser, settings_from
from deepprospect.models.onnx_io import read_card
from deepprospect.models.training import TrainSettings, train_model
from sklearn.metrics import roc_auc_score
from training_factory import BANDS, easy_set

SETTINGS = {"architecture": "lenet", "epochs": 10, "batch_size": 16, "learning_rate": 2e-3, "min_learning_rate": 2e-4,
            "early_stopping": "off", "device": "cpu", "seed": 3}


@pytest.fixture(scope="module")
def training_set_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("set") / "easy.npz"
    save_training_set(str(path), easy_set())
    return path


def torch_has_libuv() -> bool:
    """Whether this torch build has libuv, which torchrun's launcher needs (Debian's own build has not)."""
    from torch.distributed import TCPStore
    try:
        TCPStore("127.0.0.1", 0, 1, True, wait_for_workers=False, use_libuv=True)
    except RuntimeError:
        return False
    return True


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args, processes=2):
    """Run the command line under torchrun on this machine; the finished process (rank 0's output first).

    A torch without libuv cannot run torchrun's launcher, so there the processes are started with the environment
    torchrun gives them (``USE_LIBUV=0``, as the README says for such builds).
    """
    package_parent = Path(deepprospect.__file__).parent.parent  # the folder that makes ``import deepprospect`` work
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(package_parent),
                                                                     os.environ.get("PYTHONPATH"))))}
    module = ["-m", "deepprospect.models.distributed", *map(str, args)]
    if torch_has_libuv():
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   *module]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    env.update(USE_LIBUV="0", WORLD_SIZE=str(processes), LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(free_port()))
    started = [subprocess.Popen([sys.executable, *module], env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for rank in range(processes)]
    outputs = [process.communicate(timeout=120) for process in started]
    failed = next((process.returncode for process in started if process.returncode), 0)
    return subprocess.CompletedProcess(started[0].args, failed, "".join(out for out, _ in outputs),
                                       "".join(err for _, err in outputs))


def test_two_gloo_processes_train_like_one(training_set_path, tmp_path):
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(json.dumps(SETTINGS))
    model_path = tmp_path / "model.onnx"
    finished = torchrun(training_set_path, model_path, "--settings", settings_path, "--curves", tmp_path / "c.png")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Epoch 10/10" in finished.stdout and finished.stdout.count("Model file:") == 1  # rank 0 logs and writes

    card = read_card(str(model_path))
    assert card["extra"]["distributed"] == {"world_size": 2, "backend": "gloo", "batch_per_process": 8,
                                            "batch_per_step": 16}
    assert card["extra"]["settings"] == TrainSettings(**SETTINGS).as_dict()
    assert card["architecture"] == "lenet" and card["band_names"] == BANDS
    single = train_model(easy_set(), TrainSettings(**SETTINGS))
    assert card["data_hash"] == single.data_hash  # the same samples, shared between the processes
    for losses in (card["history"]["loss"], single.history["loss"]):
        assert losses[-1] < 0.2 * losses[0]
    assert abs(card["history"]["loss"][-1] - single.history["loss"][-1]) < 0.05
    assert card["metrics"]["validation"]["auc"] >= 0.9

    ts = easy_set()
    test = ts.split == "test"
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": ts.x_patch[test]})[0].reshape(int(test.sum()), -1)
    probability = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert roc_auc_score(ts.y[test], probability) >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "model.onnx", "settings.json"]


def test_settings_come_from_the_file_then_the_flags_then_the_preset(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"architecture": "mlp", "epochs": 7, "weight_decay": 1e-3}))
    given = settings_from(parser().parse_args(["set.npz", "m.onnx", "--settings", str(path), "--epochs", "9",
                                               "--no-class-weighting"]))
    assert given == TrainSettings(architecture="mlp", epochs=9, weight_decay=1e-3, class_weighting=False)
    preset = settings_from(parser().parse_args(["set.npz", "m.onnx", "--epochs", "9", "--preset", "he2024"]))
    assert (preset.epochs, preset.early_stopping) == (50, "off")
    path.write_text(json.dumps({"epochz": 3}))
    with pytest.raises(Exception, match="Unknown training setting"):
        settings_from(parser().parse_args(["set.npz", "m.onnx", "--settings", str(path)]))


def test_without_torchrun_it_says_how_to_start(training_set_path, tmp_path, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main([str(training_set_path), str(tmp_path / "m.onnx"), "--device", "cpu"]) == 2
    assert "launch it as 'torchrun" in capsys.readouterr().err
    assert main([str(training_set_path), str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_model_trained_in_stages_trains_under_torchrun(tmp_path):
    """The AFFCNN freezes parts stage by stage: DDP does not wait for their gradients, and the card has the
    stages and both inputs."""
    path = tmp_path / "small.npz"
    save_training_set(str(path), easy_set(n=60))
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(json.dumps({**SETTINGS, "architecture": "affcnn", "epochs": 3,
                                         "options": {"stage_split": [1, 1, 1]}}))
    finished = torchrun(path, tmp_path / "affcnn.onnx", "--settings", settings_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    card = read_card(str(tmp_path / "affcnn.onnx"))
    assert [s["name"] for s in card["extra"]["epoch_selection"]["stages"]] == ["branches", "fusion", "joint"]
    assert [entry["name"] for entry in card["inputs"]] == ["patch", "vector"]
