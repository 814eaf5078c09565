"""Fast scanning: the dense LeNet graph gives every window's per-patch logits; unconvertible trunks are refused."""

import pytest
import torch
from deepprospect.core.errors import ModelError
from deepprospect.models.dense import DenseScanner, dense_supported
from deepprospect.models.zoo import build_model
from model_factory import randomised, window_logits
from torch import nn


@pytest.mark.parametrize("patch,bands", [(16, 1), (20, 3), (32, 14), (33, 2), (48, 2)])
def test_fast_scanning_equals_per_patch(patch, bands):
    # 33: floor-mode pooling drops a row and column inside each window, so the scanner crops its last position
    model = randomised(build_model("lenet", bands, patch, seed=3)).eval()
    scanner = DenseScanner(model)
    tile = torch.randn(2, bands, patch + 9, patch + 4, generator=torch.Generator().manual_seed(patch))
    with torch.no_grad():
        dense = scanner(tile)
    expected = window_logits(model, tile)
    assert dense.shape == (2, 2, 10, 5) == expected.shape
    assert expected.std() > 0.05  # logits vary enough between windows for the tolerance to mean something
    torch.testing.assert_close(dense, expected, rtol=0, atol=1e-5)


def test_a_single_window_gives_a_one_by_one_map():
    model = randomised(build_model("lenet", 4, 24, seed=0)).eval()
    x = torch.randn(3, 4, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(DenseScanner(model)(x)[:, :, 0, 0], model(x), rtol=0, atol=1e-5)


def test_scanner_copies_the_weights():
    model = randomised(build_model("lenet", 2, 16, seed=0)).eval()
    scanner = DenseScanner(model)
    x = torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = scanner(x)
        model.head[-1].bias.add_(1.0)
        torch.testing.assert_close(scanner(x), before)
    assert model.training is False and scanner.training is False


@pytest.mark.parametrize("name", ["vgg8", "resnet18", "alexnet"])
def test_padded_trunks_are_refused(name):
    model = build_model(name, 2, 16)
    assert not dense_supported(model)
    with pytest.raises(ModelError, match="padding"):
        DenseScanner(model)


def test_ceil_mode_pool_and_unknown_layers_are_refused():
    model = build_model("lenet", 2, 16)
    model.features[2] = nn.AvgPool2d(2, ceil_mode=True)
    with pytest.raises(ModelError, match="ceil mode"):
        DenseScanner(model)
    model.features[2] = nn.Softmax(dim=1)
    with pytest.raises(ModelError, match="cannot convert the layer"):
        DenseScanner(model)


def test_max_pool_trunk_scans_exactly():
    # The converter is generic: a max-pool trunk (stride-2 convolution too) scans as exactly as LeNet's.
    model = randomised(build_model("lenet", 3, 20, seed=4)).eval()
    model.features[2] = nn.MaxPool2d(2)
    model.features[3].stride = (2, 2)
    model.features[6] = nn.Conv2d(16, 120, 1)
    tile = torch.randn(1, 3, 31, 26, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        dense = DenseScanner(model)(tile)
    torch.testing.assert_close(dense, window_logits(model, tile), rtol=0, atol=1e-5)


def test_only_exact_patch_models_are_dense():
    assert dense_supported(build_model("lenet", 2, 16))
    assert not dense_supported(build_model("cnn1d", 2, 1))  # a vector model: nothing to scan
