"""he2024's ResNet50 with two added FC layers and the full-size ViT-B/16: shapes, ONNX equals torch, learning.

ViT-B/16 has about 86 M weights: it is built once per module at its smallest patch (one 16 × 16 token), its
learning check is two optimiser steps on one batch (ResNet50 + FC: three), and its ONNX test (a 340 MB file) is
marked ``slow``.
"""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from deepprospect.models.onnx_io import export_onnx, make_card, read_card
from deepprospect.models.zoo import build_model, model_info
from torch import nn
from training_factory import easy_set


@pytest.fixture(autouse=True)
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def vit_b16():
    return build_model("vit_b16", 3, 16, seed=1)


def easy_batch(n: int = 8):
    """A seeded batch of easy_set windows (deposits carry a high at the centre of band 0)."""
    ts = easy_set(n=20, patch=16)
    return torch.from_numpy(ts.x_patch[:n]), torch.from_numpy(ts.y[:n].astype(np.int64))


def loss_falls(model: nn.Module, steps: int, learning_rate: float, n: int = 8) -> tuple[float, float]:
    """(loss before, loss after) ``steps`` Adam steps on one easy batch of ``n``; dropout off so both compare."""
    x, y = easy_batch(n)
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps + 1):
        optimiser.zero_grad()
        loss = criterion(model(x), y)
        losses.append(loss.item())
        loss.backward()
        optimiser.step()
    return losses[0], losses[-1]


def onnx_matches_torch(model: nn.Module, name: str, patch: int, path: str) -> None:
    card = make_card(name, ["a", "b", "c"], {}, patch, (100.0, 100.0), "EPSG:32650")
    export_onnx(model, path, card, 3, patch)
    model.eval()
    x = torch.randn(3, 3, patch, patch, generator=torch.Generator().manual_seed(0))  # batch 3 ≠ export batch 1
    with torch.no_grad():
        expected = model(x).numpy()
    (actual,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
    assert actual.shape == (3, 2) and read_card(path)["architecture"] == name
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_resnet50_fc_is_resnet50_with_two_more_fc_layers():
    model = build_model("resnet50_fc", 4, 16, seed=2)
    plain = build_model("resnet50", 4, 16, seed=2)
    linears = [(m.in_features, m.out_features) for m in model.head if isinstance(m, nn.Linear)]
    assert linears == [(2048, 1000), (1000, 256), (256, 2)]  # the classic FC-1000, then the two added layers
    assert [(m.in_features, m.out_features) for m in plain.head if isinstance(m, nn.Linear)] == [(2048, 2)]
    assert model.features.state_dict().keys() == plain.features.state_dict().keys()
    assert model_info("resnet50_fc").used_by == "he2024"
    logits = model(torch.randn(2, 4, 16, 16))
    assert logits.shape == (2, 2)
    logits.sum().backward()


def test_resnet50_fc_onnx_matches_torch(tmp_path):
    model = build_model("resnet50_fc", 3, 16, seed=1)
    model.train()(torch.randn(4, 3, 16, 16))  # batch-norm statistics of one batch, as after training
    onnx_matches_torch(model, "resnet50_fc", 16, str(tmp_path / "resnet50_fc.onnx"))


def test_resnet50_fc_learns_an_easy_batch():
    before, after = loss_falls(build_model("resnet50_fc", 3, 16, seed=0), steps=3, learning_rate=1e-3, n=4)
    assert after < 0.5 * before


def test_vit_b16_is_full_size(vit_b16):
    tokens, *blocks, norm = vit_b16.features
    assert vit_b16.token_size == 16 and tokens.embed.kernel_size == (16, 16) and tokens.embed.out_channels == 768
    assert len(blocks) == 12 and isinstance(norm, nn.LayerNorm)
    assert {b.attention.heads for b in blocks} == {12} and {b.mlp[0].out_features for b in blocks} == {3072}
    assert 85e6 < sum(p.numel() for p in vit_b16.parameters()) < 87e6  # ViT-B: 86 M
    with torch.no_grad():
        assert vit_b16.eval().features(torch.randn(2, 3, 16, 16)).shape == (2, 2, 768)  # class token + 1 token
    assert "GPU advised" in model_info("vit_b16").title


def test_vit_b16_pads_to_whole_16_pixel_tokens():
    model = build_model("vit_b16", 2, 40).eval()  # ceil(40 / 16) = 3: 3 × 3 tokens of a 48 px padded patch
    with torch.no_grad():
        assert model.features(torch.randn(1, 2, 40, 40)).shape == (1, 10, 768)
        assert model(torch.randn(1, 2, 40, 40)).shape == (1, 2)


def test_vit_b16_loss_falls_on_an_easy_batch(vit_b16):
    before, after = loss_falls(vit_b16, steps=2, learning_rate=1e-5)
    assert after < 0.5 * before


@pytest.mark.slow
def test_vit_b16_onnx_matches_torch(vit_b16, tmp_path):
    onnx_matches_torch(vit_b16, "vit_b16", 16, str(tmp_path / "vit_b16.onnx"))
