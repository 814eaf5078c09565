"""Model zoo: every architecture builds for any band count and patch size, trains (backward) and is seeded."""

import pytest
import torch
from deepprospect.core.errors import InputError
from deepprospect.models.zoo import (
    ZooModel,
    architecture_options,
    available_models,
    build_model,
    model_info,
    parse_options,
)

# vit_b16 (86 M weights) has its own, cheaper tests in test_zoo_papers.py.
PATCH_MODELS = [name for name in available_models() if model_info(name).input_kind == "patch" and name != "vit_b16"]
# (bands, patch): one and many bands, the smallest patch, the small stem (32) and the ImageNet stem (64).
SHAPES = [(1, 16), (5, 32), (14, 16), (3, 64)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_registry_lists_every_paper_architecture():
    assert available_models() == [
        "lenet", "alexnet", "vgg8", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "shufflenet_v2", "vit",
        "resnet50_fc", "vit_b16", "cnn1d", "mlp", "ppf_cnn1d", "mfaf_resnet18", "mfaf_shufflenet_v2", "affcnn",
    ]  # fmt: skip
    for name in available_models():
        info = model_info(name)
        assert info.paper and info.used_by and info.title
        assert (info.min_patch, info.max_patch) == ((1, 1) if info.input_kind in ("vector", "pair") else (16, 256))
    assert model_info("ResNet18").name == "resnet18"  # case-insensitive


@pytest.mark.parametrize("bands,patch", SHAPES)
@pytest.mark.parametrize("name", PATCH_MODELS)
def test_patch_model_forward_backward(name, bands, patch):
    model = build_model(name, bands, patch)
    assert isinstance(model, ZooModel) and model.training
    x = torch.randn(2, bands, patch, patch)
    # a network with several heads returns them all in training mode, for its training_loss
    model.training_loss(model(x), torch.tensor([0, 1]), torch.nn.CrossEntropyLoss()).backward()
    first = next(model.parameters())
    assert first.grad is not None and torch.isfinite(first.grad).all()
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 2)


@pytest.mark.parametrize("name", PATCH_MODELS)
def test_largest_patch_and_features_head_split(name):
    model = build_model(name, 2, 256, n_classes=3).eval()
    x = torch.randn(1, 2, 256, 256)
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (1, 3)
        torch.testing.assert_close(model.head(model.features(x)), logits)


@pytest.mark.parametrize("bands", [1, 23])
def test_mlp_forward_backward_and_seeded(bands):
    model = build_model("mlp", bands, 1, seed=3)
    assert model.input_kind == "vector" and model.input_shape(4) == (4, bands)
    logits = model(torch.randn(4, bands))
    assert logits.shape == (4, 2)
    logits.sum().backward()
    again = build_model("mlp", bands, 1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    with pytest.raises(InputError, match="patch size 1"):
        build_model("mlp", bands, 16)


@pytest.mark.parametrize("bands", [1, 5, 14, 39])
@pytest.mark.parametrize("pair", [False, True])
def test_cnn1d_forward_backward(bands, pair):
    model = build_model("cnn1d", bands, 1, pair=pair)
    assert model.input_kind == "vector"
    x = torch.randn(model.input_shape(4))
    assert x.shape == ((4, 2, bands) if pair else (4, bands))
    logits = model(x)
    assert logits.shape == (4, 2)
    logits.sum().backward()
    assert sum(1 for _ in model.features.modules() if isinstance(_, torch.nn.Conv1d)) == 13  # zhang2021: 13 convs


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first = build_model("resnet18", 3, 16, seed=7).state_dict()
    assert torch.equal(torch.rand(1), expected)
    second = build_model("resnet18", 3, 16, seed=7).state_dict()
    other = build_model("resnet18", 3, 16, seed=8).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_vit_tokens_cover_odd_patch_sizes():
    model = build_model("vit", 4, 50).eval()
    assert model.token_size == 7  # ceil(50 / 8); padded to 8 × 7 = 56 px
    with torch.no_grad():
        assert model.features(torch.randn(2, 4, 50, 50)).shape == (2, 8 * 8 + 1, 128)


def test_lenet_dense_evaluation_is_exact():
    """features over a whole tile, cropped at a stride-aligned patch, equals features of the patch alone."""
    model = build_model("lenet", 3, 32).eval()
    assert model.dense_exact and model.feature_stride == 4
    tile = torch.randn(1, 3, 48, 56)
    row, col = 8, 12
    with torch.no_grad():
        dense = model.features(tile)
        alone = model.features(tile[..., row : row + 32, col : col + 32])
        size = alone.shape[-1]
        crop = dense[..., row // 4 : row // 4 + size, col // 4 : col // 4 + size]
        torch.testing.assert_close(crop, alone, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.head(crop), model(tile[..., row : row + 32, col : col + 32]))


def test_small_and_large_stems_report_their_stride():
    assert build_model("resnet50", 3, 32).feature_stride == 8
    assert build_model("resnet50", 3, 64).feature_stride == 32
    assert build_model("mobilenet_v2", 3, 16).feature_stride == 8
    assert not build_model("vgg8", 3, 16).dense_exact


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: build_model("unet", 3, 32), "Unknown model architecture 'unet'; choose one of: lenet"),
        (lambda: build_model("vgg16", 3, 8), "takes patches of 16 to 256 pixels, not 8"),
        (lambda: build_model("vit", 3, 512), "not 512"),
        (lambda: build_model("cnn1d", 14, 32), "use patch size 1"),
        (lambda: build_model("lenet", 0, 32), "at least one input band"),
        (lambda: build_model("lenet", 3, 32, n_classes=1), "at least 2 classes"),
    ],
)
def test_bad_arguments_give_clear_errors(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_architecture_options_are_the_builders_keywords():
    assert architecture_options("mlp") == {"width": 64, "dropout": 0.3}
    assert architecture_options("vgg8") == {}  # the depth is fixed by the name
    assert architecture_options("vit")["depth"] == 4
    mlp = build_model("mlp", 5, 1, width=8)
    assert mlp.features[0].out_features == 8
    with pytest.raises(InputError, match=r"LeNet-5 has no option beta; its options: none"):
        build_model("lenet", 3, 16, beta=0.4)
    with pytest.raises(InputError, match=r"no option widht; its options: width \(default 64\), dropout"):
        build_model("mlp", 3, 1, widht=8)


def test_options_are_read_as_a_geologist_types_them():
    assert parse_options("") == {}
    assert parse_options(" beta = 0.4; rates=1,6,12 ;attention=false; mode=vote;") == {
        "beta": 0.4, "rates": [1, 6, 12], "attention": False, "mode": "vote"}
    assert parse_options("width=32\ndropout=0.25") == {"width": 32, "dropout": 0.25}
    for bad in ("beta", "=3", "two words=1", "beta="):
        with pytest.raises(InputError, match="write name=value"):
            parse_options(bad)


def test_pixel_pair_cnn_is_the_pair_form_of_the_1d_cnn():
    model = build_model("ppf_cnn1d", 39, 1, seed=2)
    twin = build_model("cnn1d", 39, 1, seed=2, pair=True)
    assert model.input_kind == model_info("ppf_cnn1d").input_kind == "pair" and model.input_shape(4) == (4, 2, 39)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    with pytest.raises(InputError, match="patch size 1"):
        build_model("ppf_cnn1d", 39, 16)
