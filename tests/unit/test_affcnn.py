"""he2025's AFFCNN and the two-input plumbing: shapes, fusion weights, stages and their freezing, training on an
easy set, two named ONNX inputs equal to torch, the card's inputs, and maps fed both inputs (tiled) equal to
per-window torch."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
import torch
from deepprospect.core.errors import InputError, ModelError
from deepprospect.models import training
from deepprospect.models.affcnn import AFFCNN, SelectiveFusion
from deepprospect.models.inference import predict_map
from deepprospect.models.onnx_io import CARD_KEY, export_onnx, make_card, read_card
from deepprospect.models.training import TrainSettings, save_model, split_data, train_model
from deepprospect.models.zoo import architecture_options, build_model, model_info, parse_options
from model_factory import evidence, padded_reference, randomised, write_model, write_stack
from training_factory import BANDS, easy_set

NAMES = ["Au", "As", "Cu"]
FAST = {"epochs": 10, "batch_size": 16, "learning_rate": 2e-3, "min_learning_rate": 2e-4, "patience": 20,
        "min_epochs": 2, "device": "cpu", "seed": 3}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # module scope: set before module fixtures


def inputs(batch: int, bands: int = 3, patch: int = 16, seed: int = 0):
    windows = torch.randn(batch, bands, patch, patch, generator=torch.Generator().manual_seed(seed))
    return windows, windows[:, :, patch // 2, patch // 2].contiguous()


# --------------------------------------------------------------------------------------------------------------
# The network


@pytest.mark.parametrize("options", [{}, {"fusion": "concat"}, {"branches": "1d"}, {"branches": "2d"}])
@pytest.mark.parametrize("bands,patch", [(1, 16), (5, 20), (39, 16)])
def test_shapes_in_training_and_eval_mode(options, bands, patch):
    model = build_model("affcnn", bands, patch, **options)
    assert isinstance(model, AFFCNN) and model.input_kind == "patch+vector" and model_info("affcnn").used_by == "he2025"
    x = inputs(4, bands, patch)
    output = model.train()(x)
    two = options.get("branches", "both") == "both"
    assert [o.shape for o in output] == [(4, 2)] * 3 if two else output.shape == (4, 2)  # (logits, aux 1d, aux 2d)
    model.training_loss(output, torch.tensor([0, 1, 0, 1]), torch.nn.CrossEntropyLoss()).backward()
    assert all(p.grad is not None for p in model.parameters())  # joint stage: every part learns
    with torch.no_grad():
        assert model.eval()(x).shape == (4, 2)


def test_options_parse_and_bad_ones_are_refused():
    assert architecture_options("affcnn") == {"fusion": "adaptive", "branches": "both", "stage_split": (0.4, 0.3, 0.3),
                                              "aux_weight": 0.3, "width": 64}
    options = parse_options("fusion=concat; branches=1d; stage_split=2,1,1; aux_weight=0.5")
    assert options == {"fusion": "concat", "branches": "1d", "stage_split": [2, 1, 1], "aux_weight": 0.5}
    build_model("affcnn", 3, 16, **options)
    for bad, message in (({"fusion": "sum"}, "fusion 'sum'"), ({"branches": "3d"}, "branches '3d'"),
                         ({"stage_split": [1, 1]}, "stage_split needs 3"), ({"stage_split": [0, 0, 0]}, "positive"),
                         ({"stage_split": [1, -1, 1]}, "non-negative"), ({"aux_weight": -1}, "aux_weight")):
        with pytest.raises(InputError, match=message):
            build_model("affcnn", 3, 16, **bad)


def test_fusion_weights_sum_to_one_per_sample_and_feature():
    model = randomised(build_model("affcnn", 3, 16, seed=2)).eval()
    x = inputs(6)
    with torch.no_grad():
        weights = model.fusion_weights(x)
        features = model.branch_features(x)
        fused = model.fusion(features)
    assert weights.shape == (6, 2, 64) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(6, 64))
    torch.testing.assert_close(fused, weights[:, 0] * features[0] + weights[:, 1] * features[1])
    assert weights[:, 0].std(0).mean() > 1e-3  # adaptive: the weights change from sample to sample
    assert isinstance(model.fusion, SelectiveFusion)
    with pytest.raises(InputError, match="no adaptive fusion"):
        build_model("affcnn", 3, 16, fusion="concat").fusion_weights(x)


@pytest.mark.parametrize("split,epochs,expected", [
    ((0.4, 0.3, 0.3), 10, [("branches", 1, 4), ("fusion", 5, 7), ("joint", 8, 10)]),
    ((1, 1, 1), 3, [("branches", 1, 1), ("fusion", 2, 2), ("joint", 3, 3)]),
    ((0, 0, 1), 5, [("joint", 1, 5)]),
    ((1, 0, 1), 4, [("branches", 1, 2), ("joint", 3, 4)]),
    ((1, 1, 0), 4, [("branches", 1, 2), ("fusion", 3, 4)]),
])  # fmt: skip
def test_stage_schedule_shares_the_epochs(split, epochs, expected):
    stages = build_model("affcnn", 3, 16, stage_split=split).training_stages(epochs)
    assert [(s["name"], s["first_epoch"], s["last_epoch"]) for s in stages] == expected
    assert build_model("affcnn", 3, 16, branches="2d").training_stages(10) == []  # one branch: one stage


def test_each_stage_has_its_loss():
    model = build_model("affcnn", 3, 16)
    y = torch.tensor([0, 1])
    logits, aux_1d, aux_2d = (torch.tensor([[2.0, 0.0], [0.0, 1.0]]) * k for k in (1, 2, 3))
    criterion = torch.nn.CrossEntropyLoss()
    main, aux = criterion(logits, y), criterion(aux_1d, y) + criterion(aux_2d, y)
    for stage, expected in (("branches", aux), ("fusion", main), ("joint", main + 0.3 * aux)):
        model.enter_stage(stage)
        torch.testing.assert_close(model.training_loss((logits, aux_1d, aux_2d), y, criterion), expected)


def parameters_of(model, *parts):
    return {f"{part}.{name}": value.detach().clone() for part in parts
            for name, value in getattr(model, part).state_dict().items()}


def changed(before, after):
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_stages_freeze_what_they_do_not_train():
    """Stage 1 leaves fusion and classifier alone, stage 2 the branches and auxiliary heads (their batch-norm
    statistics too, with weight decay on), stage 3 trains everything."""
    model = build_model("affcnn", len(BANDS), 16, seed=1, stage_split=(1, 1, 1))
    parts = ("branches", "auxiliary", "fusion", "classifier")
    snapshots = {"start": parameters_of(model, *parts)}
    enter = model.enter_stage

    def recording_enter(name):
        snapshots[name] = parameters_of(model, *parts)  # the state at the end of the previous stage
        enter(name)

    model.enter_stage = recording_enter
    train = split_data(easy_set(n=60), "patch+vector", 0)["train"]
    settings = TrainSettings(architecture="affcnn", options={"stage_split": [1, 1, 1]}, **{**FAST, "epochs": 3},
                             weight_decay=1e-2)
    training.fit_network(model, settings, train)
    snapshots["end"] = parameters_of(model, *parts)
    stage_1 = changed(snapshots["start"], snapshots["fusion"])  # "branches" entered before any step
    stage_2 = changed(snapshots["fusion"], snapshots["joint"])
    stage_3 = changed(snapshots["joint"], snapshots["end"])
    frozen_1 = {n for n in snapshots["start"] if n.startswith(("fusion.", "classifier."))}
    frozen_2 = {n for n in snapshots["start"] if n.startswith(("branches.", "auxiliary."))}
    assert not stage_1 & frozen_1 and stage_1 >= {n for n in frozen_2 if "weight" in n or "bias" in n}
    assert not stage_2 & frozen_2 and stage_2 >= {n for n in frozen_1 if "weight" in n or "bias" in n}
    assert stage_3 >= {n for n in snapshots["start"] if n.endswith(("weight", "bias"))}
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_parts_stay_in_eval_mode():
    model = build_model("affcnn", 3, 16)
    model.enter_stage("branches")
    model.train()
    assert model.branches.training and not model.fusion.training and not model.classifier.training
    model.enter_stage("fusion")
    model.train()
    assert not model.branches.training and not model.auxiliary.training
    assert model.fusion.training and model.classifier.training
    assert not any(p.requires_grad for p in model.branches.parameters())
    model.enter_stage("joint")
    assert model.branches.training and all(p.requires_grad for p in model.parameters())


# --------------------------------------------------------------------------------------------------------------
# Training and the model file


@pytest.fixture(scope="module")
def trained():
    ts = easy_set()
    return ts, train_model(ts, TrainSettings(architecture="affcnn", **FAST))


def test_learns_an_easy_set_in_three_stages(trained):
    _, result = trained
    assert result.metrics["validation"]["auc"] >= 0.9 and result.metrics["test"]["auc"] >= 0.9
    stages = result.selection["stages"]
    assert [(s["name"], s["first_epoch"], s["last_epoch"]) for s in stages] == [
        ("branches", 1, 4), ("fusion", 5, 7), ("joint", 8, 10)]
    assert result.selection["min_epochs"] == 8 and result.best_epoch >= 8  # no epoch before the joint stage
    assert not result.model.training


def test_two_inputs_are_split_hashed_and_checked():
    ts = easy_set(n=60)
    ts.kind[:4] = "crop"  # a shifted window with its own centre: kept, as for patch models
    part = split_data(ts, "patch+vector", 0)["train"]
    assert part.sample_shape == (len(BANDS), 16, 16) and len(part) == int((ts.split == "train").sum())
    windows, vectors = part.inputs(np.arange(5))
    np.testing.assert_array_equal(vectors.numpy(), windows[:, :, 8, 8].numpy())
    assert [chunk.shape for chunk in part.chunked()] == [(len(part), 3, 16, 16), (len(part), 3)]
    ts.x_vector[np.flatnonzero(ts.split == "train")[0], 1] = np.nan
    with pytest.raises(InputError, match="train samples hold NaN"):
        train_model(ts, TrainSettings(architecture="affcnn", **FAST))


def test_model_file_has_two_named_inputs_equal_to_torch(trained, tmp_path):
    ts, result = trained
    path = str(tmp_path / "affcnn.onnx")
    card = save_model(result, ts, path)
    read = read_card(path)
    assert read["input_kind"] == "patch+vector" and "input_name" not in read
    assert read["inputs"] == [{"name": "patch", "kind": "patch", "band_names": BANDS},
                              {"name": "vector", "kind": "vector", "band_names": BANDS}]
    assert read["extra"]["epoch_selection"]["stages"] == card["extra"]["epoch_selection"]["stages"]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("patch", ["batch", 3, 16, 16]),
                                                                   ("vector", ["batch", 3])]
    for batch in (1, 7):
        windows, vectors = inputs(batch, seed=batch)
        with torch.no_grad():
            expected = result.model((windows, vectors)).numpy()
        (actual,) = session.run(None, {"patch": windows.numpy(), "vector": vectors.numpy()})
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_a_one_branch_ablation_still_takes_both_inputs(tmp_path):
    model = randomised(build_model("affcnn", 3, 16, branches="1d")).eval()
    path = str(tmp_path / "one.onnx")
    export_onnx(model, path, make_card("affcnn", NAMES, {}, 16, (100.0, 100.0), "EPSG:32650",
                                       input_kind="patch+vector", options={"branches": "1d"}), 3, 16)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["patch", "vector"]
    windows, vectors = inputs(5)
    with torch.no_grad():
        expected = model((windows, vectors)).numpy()
    (actual,) = session.run(None, {"patch": windows.numpy(), "vector": vectors.numpy()})
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------------------------
# Maps


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A z-scored 3-band stack on 40 × 50 cells with a nodata cell, and a randomised AFFCNN model file."""
    folder = tmp_path_factory.mktemp("affcnn_maps")
    raw = evidence(3)
    raw[1, 12, 30] = np.nan
    stack, recipe = write_stack(str(folder / "stack.tif"), raw, NAMES, normalise="z-score")
    model = write_model(str(folder / "affcnn.onnx"), "affcnn", NAMES, 16, recipe)
    return {"stack": stack.astype(np.float32), "stack_path": str(folder / "stack.tif"),
            "model_path": str(folder / "affcnn.onnx"), "model": model}


def read_map(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.tags()


@pytest.mark.parametrize("stride,tile_size", [(1, 7), (1, 256), (3, 5)])
def test_map_feeds_both_inputs_like_per_window_torch(mapped, tmp_path, stride, tile_size):
    out = str(tmp_path / "map.tif")
    report = predict_map(mapped["model_path"], mapped["stack_path"], out, stride=stride, tile_size=tile_size,
                         batch_size=37, device="cpu")
    values, tags = read_map(out)
    expected = padded_reference(mapped["model"], mapped["stack"], stride)
    assert report.method == "patches" and report.architecture == "affcnn"
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5)
    assert np.nanstd(expected) > 0.02  # the map varies far more than the tolerance
    assert json.loads(tags["DEEPPROSPECT_MODEL_CARD"])["architecture"] == "affcnn"
    if stride == 1:
        assert np.isnan(values[12, 30]) and np.count_nonzero(np.isnan(values)) == 1


def test_a_version_1_card_reads_as_one_input_and_maps_alike(tmp_path):
    """A model file written before cards listed their inputs still reads and maps the same."""
    raw = evidence(3, seed=4)
    stack_path = str(tmp_path / "stack.tif")
    _, recipe = write_stack(stack_path, raw, NAMES, normalise="z-score")
    path, old = str(tmp_path / "mlp.onnx"), str(tmp_path / "old.onnx")
    write_model(path, "mlp", NAMES, 1, recipe)
    proto = onnx.load(path)
    card = json.loads(proto.metadata_props[0].value)
    assert proto.metadata_props[0].key == CARD_KEY and card["inputs"][0]["name"] == "input"
    del card["inputs"]
    proto.metadata_props[0].value = json.dumps({**card, "card_version": 1})
    onnx.save_model(proto, old)
    read = read_card(old)
    assert read["card_version"] == 1 and read["inputs"] == [{"name": "input", "kind": "vector", "band_names": NAMES}]
    for model_path, out in ((path, "new.tif"), (old, "old.tif")):
        predict_map(model_path, stack_path, str(tmp_path / out), device="cpu", tile_size=9)
    np.testing.assert_array_equal(read_map(str(tmp_path / "new.tif"))[0], read_map(str(tmp_path / "old.tif"))[0])


@pytest.mark.parametrize("inputs_entry", [
    [{"name": "input", "kind": "patch", "band_names": NAMES}],  # one input for a two-input kind
    [{"name": "patch", "kind": "patch", "band_names": NAMES}, {"name": "patch", "kind": "vector", "band_names": NAMES}],
    [{"name": "patch", "kind": "patch", "band_names": NAMES},
     {"name": "vector", "kind": "vector", "band_names": ["Zn"]}],
    [{"name": "patch"}],
])  # fmt: skip
def test_cards_whose_inputs_do_not_fit_are_refused(tmp_path, inputs_entry):
    path = str(tmp_path / "model.onnx")
    export_onnx(build_model("affcnn", 3, 16), path, make_card("affcnn", NAMES, {}, 16, (100.0, 100.0), "EPSG:32650",
                                                              input_kind="patch+vector"), 3, 16)
    proto = onnx.load(path)
    card = json.loads(proto.metadata_props[0].value)
    proto.metadata_props[0].value = json.dumps({**card, "inputs": inputs_entry})
    onnx.save_model(proto, path)
    with pytest.raises(ModelError, match="its inputs do not fit"):
        read_card(path)
