"""Online augmentation (models.augment_online): random flips/rotations/crops of training batches only, seeded,
centre crops for every score, and a cropped model that predicts."""

import numpy as np
import pytest
import rasterio
import torch
from deepprospect.core.errors import InputError
from deepprospect.core.evidence.stack import STACK_TAG
from deepprospect.core.grid import GridSpec
from deepprospect.core.sampling.labels import LabelSettings, build_training_set
from deepprospect.models.augment_online import CentreCrop, evaluation_views, training_batch
from deepprospect.models.inference import predict_map
from deepprospect.models.onnx_io import read_card
from deepprospect.models.training import TrainSettings, save_model, split_data, train_model
from model_factory import GRID, evidence, write_stack
from training_factory import BANDS, easy_set

QUICK = {"architecture": "lenet", "device": "cpu", "epochs": 2, "batch_size": 8}


def views(ts, **options):
    settings = TrainSettings(**QUICK, **options)
    return settings, evaluation_views(split_data(ts, "patch", 0), settings, "patch")


def dihedral_images(window: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of a (bands, p, p) window."""
    turns = [torch.rot90(window, k, (-2, -1)) for k in range(4)]
    return turns + [t.flip(-1) for t in turns]


def test_flips_change_training_batches_only():
    ts = easy_set(n=40, patch=16)
    settings, data = views(ts, random_flips=True, random_rotations=True)
    rows = np.arange(len(data["train"]))
    plain = data["train"].inputs(rows)
    flipped = training_batch(data["train"], rows, settings, torch.Generator().manual_seed(0))
    assert not torch.equal(plain, flipped)
    for before, after in zip(plain, flipped):  # each sample is one of its own symmetries
        assert any(torch.equal(after, image) for image in dihedral_images(before))
    validation = data["validation"].inputs(np.arange(len(data["validation"])))
    assert torch.equal(validation, torch.from_numpy(ts.x_patch[ts.split == "validation"]))  # untouched
    off = TrainSettings(**QUICK)
    assert torch.equal(training_batch(data["train"], rows, off, torch.Generator().manual_seed(0)), plain)


def test_validation_and_test_read_the_centre_crop():
    ts = easy_set(n=40, patch=20)
    settings, data = views(ts, random_crop=16)
    for split in ("train", "validation", "test"):
        assert isinstance(data[split].source, CentreCrop) and data[split].sample_shape == (3, 16, 16)
    # the centre crop of a 20-window around a cell is the 16-window around it: offset 20 // 2 - 16 // 2 = 2
    expected = ts.x_patch[ts.split == "validation"][:, :, 2:18, 2:18]
    np.testing.assert_array_equal(data["validation"].inputs(np.arange(len(data["validation"]))).numpy(), expected)
    batch = training_batch(data["train"], np.arange(8), settings, torch.Generator().manual_seed(1))
    assert batch.shape == (8, 3, 16, 16)
    windows = ts.x_patch[ts.split == "train"][:8]
    for window, crop in zip(windows, batch.numpy()):  # a crop of the sample's own window, anywhere in it
        hits = [(r, c) for r in range(5) for c in range(5) if np.array_equal(window[:, r:r + 16, c:c + 16], crop)]
        assert hits


def test_seeded_reproducibility():
    ts = easy_set(n=50, patch=20)
    options = {"random_flips": True, "random_rotations": True, "random_crop": 16}
    first, second = (train_model(ts, TrainSettings(**QUICK, seed=4, **options)).model.state_dict() for _ in range(2))
    other = train_model(ts, TrainSettings(**QUICK, seed=5, **options)).model.state_dict()
    plain = train_model(ts, TrainSettings(**QUICK, seed=4, random_flips=True)).model
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    assert plain.patch_size == 20


def test_a_cropped_model_records_the_crop_and_predicts(tmp_path):
    ts = easy_set(n=60, patch=20)
    result = train_model(ts, TrainSettings(**QUICK, random_flips=True, random_crop=16))
    assert result.model.patch_size == 16
    stack_path = str(tmp_path / "stack.tif")
    _, recipe = write_stack(stack_path, evidence(len(BANDS)), BANDS, normalise="z-score")
    ts.manifest["stack_tags"] = {STACK_TAG: recipe}
    model_path = str(tmp_path / "cropped.onnx")
    save_model(result, ts, model_path)
    card = read_card(model_path)
    assert card["patch_size"] == 16
    online = card["extra"]["online_augmentation"]
    assert online["random_crop"] == 16 and online["training_window"] == 20 and online["model_patch_size"] == 16
    assert card["extra"]["settings"]["random_flips"] is True
    out = str(tmp_path / "map.tif")
    predict_map(model_path, stack_path, out, device="cpu")
    with rasterio.open(out) as src:
        assert (src.height, src.width) == GRID.shape and np.isfinite(src.read(1)).all()


def test_bad_online_augmentation():
    ts = easy_set(n=40, patch=16)
    with pytest.raises(InputError, match="larger than the training set's windows"):
        views(ts, random_crop=20)
    with pytest.raises(InputError, match="patch"):
        evaluation_views(split_data(ts, "vector", 0), TrainSettings(architecture="mlp", random_flips=True), "vector")
    with pytest.raises(InputError, match="random crop"):
        TrainSettings(random_crop=-1)


def test_gao2022_flow_block_windows_then_random_crops():
    """Blocks whose windows are the blocks (patch = block size), trained on random crops: gao2022 at a small scale
    (its 256-cell blocks and 224 crops here 20 and 16)."""
    grid = GridSpec(0.0, 1600.0, 10.0, 10.0, 160, 160, "EPSG:32650")
    stack = np.random.default_rng(0).normal(size=(3, 160, 160)).astype(np.float32)
    deposits = np.array([(x + 5.0, y - 5.0) for x in range(100, 1600, 300) for y in range(1500, 0, -300)])
    ts = build_training_set(stack, grid, BANDS, deposits, settings=LabelSettings(
        patch_size=20, labelling="blocks", block_size=20, split_distance=250.0))
    assert set(ts.kind) == {"block"} and ts.manifest["labelling"]["blocks"]["positive"] == len(deposits)
    result = train_model(ts, TrainSettings(**QUICK, random_flips=True, random_crop=16))
    assert result.model.patch_size == 16 and set(result.metrics) == {"train", "validation", "test"}
