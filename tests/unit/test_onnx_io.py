"""ONNX model files: every zoo architecture exports and matches torch (LeNet as its dense fast-scanning graph); the
card round-trips; bad files fail clearly."""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from deepprospect.core.errors import InputError, ModelError
from deepprospect.models.onnx_io import (
    CARD_KEY,
    CARD_VERSION,
    METRIC_NAMES,
    OPSET,
    export_onnx,
    hash_arrays,
    make_card,
    read_card,
)
from deepprospect.models.zoo import available_models, build_model, model_info
from model_factory import example_inputs, randomised, window_logits

RECIPE = {"format": "deepprospect-evidence-stack", "version": 1, "normalisation": {"Cu": {"mean": 1.5, "std": 0.2}}}


def card_for(name, bands, patch, **overrides):
    arguments = dict(
        architecture=name,
        band_names=[f"b{i}" for i in range(bands)],
        normalisation=RECIPE,
        patch_size=patch,
        pixel_size=(100.0, 100.0),
        crs="EPSG:20350",
        input_kind=model_info(name).input_kind,
    )
    arguments.update(overrides)
    return make_card(**arguments)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Every architecture at its smallest patch, plus the ImageNet stems (64 px), ViT padding and the pixel-pair CNN.
# vit_b16 (a 340 MB file) is exported in test_zoo_papers.py, marked slow.
EXPORTS = [(name, model_info(name).min_patch, {}) for name in available_models() if name != "vit_b16"] + [
    ("alexnet", 64, {}), ("resnet18", 64, {}), ("shufflenet_v2", 64, {}), ("vit", 50, {}), ("cnn1d", 1, {"pair": True}),
]  # fmt: skip


@pytest.mark.parametrize("name,patch,options", EXPORTS)
def test_export_matches_torch_with_dynamic_batch(tmp_path, name, patch, options):
    bands = 3
    model = randomised(build_model(name, bands, patch, seed=1, **options))
    path = str(tmp_path / f"{name}.onnx")
    export_onnx(model, path, card_for(name, bands, patch, options=options), bands, patch)
    assert model.training  # export restores the mode it found
    model.eval()
    windows = torch.randn(model.input_shape(3), generator=torch.Generator().manual_seed(0))  # batch 3 ≠ export batch 1
    x = example_inputs(model, windows)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    card = read_card(path)
    names = [entry["name"] for entry in card["inputs"]]
    assert [value.name for value in session.get_inputs()] == names
    (actual,) = session.run(None, dict(zip(names, (t.numpy() for t in (x if isinstance(x, tuple) else (x,))))))
    dense = model_info(name).dense_exact and model_info(name).input_kind == "patch"
    assert card["output_layout"] == ("dense" if dense else "patch")
    assert actual.shape == ((3, 2, 1, 1) if dense else (3, 2))  # a p×p patch gives a 1×1 dense map
    assert np.abs(expected).max() > 0.05  # logits large enough for the tolerance to mean something
    np.testing.assert_allclose(actual.reshape(3, 2), expected, rtol=1e-4, atol=1e-4)
    assert card["architecture"] == name and card["options"] == options
    assert [entry.version for entry in onnx.load(path).opset_import if entry.domain in ("", "ai.onnx")] == [OPSET]


@pytest.mark.parametrize("patch", [16, 33])
def test_dense_onnx_scans_a_tile_of_any_size_like_per_patch_torch(tmp_path, patch):
    bands = 3
    model = randomised(build_model("lenet", bands, patch, seed=2))
    path = str(tmp_path / "lenet.onnx")
    export_onnx(model, path, card_for("lenet", bands, patch), bands, patch)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    model.eval()
    for rows, cols in ((patch + 7, patch + 12), (patch + 1, patch)):  # two tile shapes through one session
        tile = torch.randn(2, bands, rows, cols, generator=torch.Generator().manual_seed(rows))
        expected = window_logits(model, tile).numpy()
        (actual,) = session.run(None, {"input": tile.numpy()})
        assert actual.shape == expected.shape == (2, 2, rows - patch + 1, cols - patch + 1)
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_card_round_trips_with_numpy_values(tmp_path):
    history = {"loss": np.array([0.9, 0.5, 0.3]), "val_auc": [0.6, 0.7, np.float32(0.8)]}
    metrics = {
        "train": {"accuracy": np.float64(0.95), "recall": 0.9, "f1": 0.92, "auc": 0.97},
        "validation": {"accuracy": 0.8, "auc": float("nan")},  # undefined AUC and a missing metric → null
    }
    card = card_for("lenet", 2, 16, metrics=metrics, history=history, seed=np.int64(42),
                    data_hash=hash_arrays(np.zeros((2, 3))), extra={"epochs": 3})  # fmt: skip
    path = str(tmp_path / "model.onnx")
    export_onnx(build_model("lenet", 2, 16), path, card, 2, 16)
    read = read_card(path)
    stored = json.loads(json.dumps(card, default=lambda v: v.tolist() if hasattr(v, "tolist") else v))
    assert read == {**stored, "output_layout": "dense"}
    assert read["card_version"] == CARD_VERSION and read["band_names"] == ["b0", "b1"]
    assert read["normalisation"] == RECIPE and read["crs"] == "EPSG:20350" and read["pixel_size"] == [100.0, 100.0]
    assert read["metrics"]["validation"] == {"accuracy": 0.8, **dict.fromkeys(METRIC_NAMES[1:]),
                                           "confusion_matrix": None}
    assert read["metrics"]["train"]["accuracy"] == 0.95 and read["seed"] == 42
    assert read["history"]["loss"] == [0.9, 0.5, 0.3]
    assert set(read["versions"]) == {"python", "numpy", "torch", "onnx", "onnxruntime", "deepprospect"}
    assert read["classes"] == ["non-prospective", "prospective"] and read["positive_class"] == 1


def test_card_stores_the_new_metrics_and_the_confusion_matrix(tmp_path):
    metrics = {"test": {"accuracy": 0.75, "precision": 0.5, "macro_precision": 0.7, "macro_recall": 0.8,
                        "macro_f1": np.float32(0.72), "confusion_matrix": np.array([[5, 2], [0, 1]])}}
    path = str(tmp_path / "model.onnx")
    export_onnx(build_model("lenet", 2, 16), path, card_for("lenet", 2, 16, metrics=metrics), 2, 16)
    read = read_card(path)
    test = read["metrics"]["test"]
    assert test["confusion_matrix"] == [[5, 2], [0, 1]] and isinstance(test["confusion_matrix"][0][0], int)
    assert test["precision"] == 0.5 and test["macro_f1"] == pytest.approx(0.72) and test["recall"] is None
    assert "rows are the true class" in read["confusion_matrix_layout"]


def test_card_written_before_the_new_metrics_reads_them_as_null(tmp_path):
    path = str(tmp_path / "old.onnx")
    export_onnx(build_model("lenet", 2, 16), path, card_for("lenet", 2, 16), 2, 16)
    proto = onnx.load(path)
    old = card_for("lenet", 2, 16)
    old.pop("confusion_matrix_layout")
    old["metrics"] = {"validation": {"accuracy": 0.8, "recall": 0.5, "f1": 0.6, "auc": 0.7}}  # an older card's
    proto.metadata_props[0].value = json.dumps(old)
    onnx.save_model(proto, path)
    validation = read_card(path)["metrics"]["validation"]
    assert validation["auc"] == 0.7 and validation["confusion_matrix"] is None
    assert all(validation[name] is None for name in ("precision", "macro_precision", "macro_recall", "macro_f1"))


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match=r"Model file not found: .*missing\.onnx"):
        read_card(str(tmp_path / "missing.onnx"))


def test_random_bytes(tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match="is not a readable ONNX model"):
        read_card(str(path))


def test_truncated_model(tmp_path):
    path = str(tmp_path / "full.onnx")
    export_onnx(build_model("lenet", 2, 16), path, card_for("lenet", 2, 16), 2, 16)
    data = open(path, "rb").read()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="is not a readable ONNX model"):
        read_card(str(truncated))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_foreign_onnx_without_card(tmp_path):
    path = str(tmp_path / "foreign.onnx")
    torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), path, dynamo=False)
    with pytest.raises(ModelError, match="is an ONNX model but not a DeepProspect model"):
        read_card(path)


def test_damaged_card(tmp_path):
    path = str(tmp_path / "damaged.onnx")
    export_onnx(build_model("lenet", 2, 16), path, card_for("lenet", 2, 16), 2, 16)
    proto = onnx.load(path)
    proto.metadata_props[0].value = "{not json"
    onnx.save_model(proto, path)
    with pytest.raises(ModelError, match=r"card in .* is damaged"):
        read_card(path)
    proto.metadata_props[0].value = json.dumps({"format": "deepprospect-model", "card_version": CARD_VERSION + 1})
    onnx.save_model(proto, path)
    with pytest.raises(ModelError, match="Update the plugin"):
        read_card(path)
    assert proto.metadata_props[0].key == CARD_KEY
    proto.metadata_props[0].value = json.dumps({**card_for("lenet", 2, 16), "output_layout": "sparse"})
    onnx.save_model(proto, path)
    with pytest.raises(ModelError, match="unknown output layout 'sparse'"):
        read_card(path)


def test_card_without_layout_reads_as_patch(tmp_path):
    # model files written before the layout was recorded: per-patch output
    path = str(tmp_path / "old.onnx")
    export_onnx(build_model("vgg8", 2, 16), path, card_for("vgg8", 2, 16), 2, 16)
    proto = onnx.load(path)
    proto.metadata_props[0].value = json.dumps(card_for("vgg8", 2, 16))
    onnx.save_model(proto, path)
    assert read_card(path)["output_layout"] == "patch"


def test_card_that_does_not_match_the_model_writes_nothing(tmp_path):
    path = tmp_path / "model.onnx"
    with pytest.raises(ModelError, match=r"3 bands .* 2 bands"):
        export_onnx(build_model("lenet", 2, 16), str(path), card_for("lenet", 3, 16), 2, 16)
    with pytest.raises(InputError, match="output folder does not exist"):
        export_onnx(build_model("lenet", 2, 16), str(tmp_path / "no" / "m.onnx"), card_for("lenet", 2, 16), 2, 16)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"metrics": {"holdout": {"auc": 0.5}}}, "Unknown metric split"),
        ({"metrics": {"test": {"kappa": 0.5}}}, "Unknown metric"),
        ({"metrics": {"test": {"confusion_matrix": [[1, 2, 3], [4, 5, 6]]}}}, "2 × 2 whole counts"),
        ({"metrics": {"test": {"confusion_matrix": [[1, 2], [-3, 4]]}}}, "2 × 2 whole counts"),
        ({"metrics": {"test": {"confusion_matrix": [[1, 2.5], [3, 4]]}}}, "2 × 2 whole counts"),
        ({"positive_class": 2}, "positive_class 2"),
        ({"input_kind": "cube"}, "input_kind"),
        ({"extra": {"bad": object()}}, "cannot be stored"),
    ],
)
def test_make_card_rejects_bad_parts(overrides, message):
    with pytest.raises(ModelError, match=message):
        card_for("lenet", 2, 16, **overrides)


def test_hash_arrays_sees_values_shape_and_dtype():
    a = np.arange(6.0)
    assert hash_arrays(a) == hash_arrays(a.copy())
    assert hash_arrays(a) != hash_arrays(a.reshape(2, 3))
    assert hash_arrays(a) != hash_arrays(a.astype("float32"))
    assert hash_arrays(a).startswith("sha256:")
