"""Model zoo: the architectures of the prospectivity papers, built by name for any band count and patch size.

Every patch model is a :class:`ZooModel` made of two attributes, ``features`` (the trunk: every layer that
keeps a spatial layout) and ``head`` (pooling + classifier), so ``model(x) == model.head(model.features(x))``.
A later step runs ``features`` densely over whole tiles: ``feature_stride`` says how many input pixels one
feature cell spans, and ``dense_exact`` says whether ``features(patch)`` equals the matching crop of
``features(tile)`` for patches whose origin is a multiple of ``feature_stride`` (true only for trunks with no
zero padding; padded trunks differ near patch borders, so dense evaluation is then an approximation).

Adaptations common to every patch model (the papers' nets were built for 224×224 RGB images):

- the first layer takes ``in_bands`` channels (evidence bands), the last gives ``n_classes`` logits;
- patches smaller than :data:`LARGE_PATCH` pixels use a small-input stem (3×3 stride-1 convolution, no early
  max-pool, as the CIFAR versions of these nets do), so a 16×16 patch still reaches the last stage with a
  spatial map; larger patches keep the original ImageNet stem;
- fully connected heads on a flattened fixed-size map are replaced by global average pooling followed by the
  classifier, so any patch size works (noted per model where the original head was different).

The 1D CNN (``cnn1d``) and the MLP are ``"vector"`` models: they read one cell's element vector, shape
``(batch, in_bands)``, not a patch; the pixel-pair form of the 1D CNN (``ppf_cnn1d``) is the one ``"pair"``
model, reading two cells' vectors ``(batch, 2, in_bands)``. The AFFCNN (``affcnn``, :mod:`.affcnn`) is a
``"patch+vector"`` model: it reads the tuple (window, centre cell's vector).

Initialisation is deterministic: :func:`build_model` seeds a private RNG (``seed``, default 0), so the same
arguments give bit-identical weights, and the caller's global torch RNG is left untouched.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import nn

from ..core.errors import InputError

LARGE_PATCH = 64
"""Patches of at least this many pixels keep the original ImageNet stems; smaller ones get a small-input stem."""

MIN_PATCH = 16
MAX_PATCH = 256


class ZooModel(nn.Module):
    """Base of every zoo architecture: ``forward(x) = head(features(x))``.

    Attributes:
        in_bands: number of input bands (channels).
        patch_size: side of the square input patch in pixels (1 for vector models).
        n_classes: number of output logits.
        input_kind: ``"patch"`` (input ``(batch, in_bands, patch, patch)``), ``"vector"`` or ``"patch+vector"``.
        feature_stride: input pixels per feature cell of ``features`` (patch models), 1 for vector models.
        dense_exact: whether dense evaluation of ``features`` over a tile is exact (see the module docstring).
    """

    input_kind = "patch"
    dense_exact = False

    def __init__(self, in_bands: int, patch_size: int, n_classes: int) -> None:
        super().__init__()
        self.in_bands = in_bands
        self.patch_size = patch_size
        self.n_classes = n_classes
        self.feature_stride = 1
        self.features: nn.Module = nn.Identity()
        self.head: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_loss(self, output, y: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        """The loss of one training batch from ``output`` (what ``forward`` returned in training mode).

        Plain cross-entropy here; networks with several heads (branches, auxiliary classifiers) override it to
        combine their heads' losses, and return ``(batch, n_classes)`` logits from ``forward`` in eval mode.
        """
        return criterion(output, y)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of an input batch, e.g. for ONNX export or a smoke test."""
        return (batch, self.in_bands, self.patch_size, self.patch_size)

    def training_stages(self, epochs: int) -> list[dict]:
        """The stages of a training run of ``epochs`` epochs, in order, as ``{"name", "first_epoch",
        "last_epoch", "trains"}``; the loop calls ``enter_stage(name)`` at each stage's first epoch and keeps no
        epoch before the last stage's first. ``[]`` (here): one stage, every parameter trained throughout."""
        return []


# --------------------------------------------------------------------------------------------------------------
# Shared building blocks


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, relu6: bool = False):
    """Convolution (same padding, no bias) + batch norm + ReLU (or ReLU6)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True),
    )


def _gap_head(channels: int, n_classes: int, hidden: Sequence[int] = (), dropout: float = 0.0) -> nn.Sequential:
    """Global average pooling, then hidden FC layers (Linear-ReLU-Dropout) and the final Linear."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    width = channels
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = size
    if not hidden and dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def _init_cnn(model: nn.Module) -> None:
    """torchvision-style initialisation: He-normal convolutions, unit batch norm, small-normal linear layers."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


def _small(patch_size: int) -> bool:
    return patch_size < LARGE_PATCH


# --------------------------------------------------------------------------------------------------------------
# LeNet


class LeNet(ZooModel):
    """LeNet-5 (LeCun et al. 1998, Proc. IEEE 86:2278), as used by he2024 (ReLU, average pooling, dropout).

    Original: C1 5×5 conv (6) → S2 2×2 avg-pool → C3 5×5 conv (16) → S4 avg-pool → C5 5×5 conv (120) →
    F6 FC 84 → output, on 32×32 inputs, all convolutions unpadded.
    Adaptation: ReLU activations and dropout in the FC part (he2024); C5's kernel shrinks to the S4 map when
    the patch is smaller than 32 (it is 5×5 from 32 up), and C5's output is averaged globally before F6, which
    is the identity at 32×32 (C5 then gives 1×1) and lets larger patches work.
    Dense evaluation: exact (no padding anywhere), feature stride 4.
    """

    dense_exact = True

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2) -> None:
        super().__init__(in_bands, patch_size, n_classes)
        s4 = ((patch_size - 4) // 2 - 4) // 2
        self.feature_stride = 4
        self.features = nn.Sequential(
            nn.Conv2d(in_bands, 6, 5), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(16, 120, min(5, s4)), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.head = _gap_head(120, n_classes, hidden=(84,), dropout=0.5)
        _init_cnn(self)


# --------------------------------------------------------------------------------------------------------------
# AlexNet


class AlexNet(ZooModel):
    """AlexNet (Krizhevsky et al. 2012, NeurIPS), one of he2024's six models: 5 convolutions + 3 FC layers.

    Original: 11×11/4 conv (64) → 3×3/2 max-pool → 5×5 conv (192) → max-pool → 3×3 convs (384, 256, 256) →
    max-pool → 6×6 adaptive pool → FC 4096 → FC 4096 → output (torchvision channel widths).
    Adaptation: for patches under 64 px the first layer is a 3×3 stride-1 convolution and the max-pools are 2×2
    (ceil mode), so a 16×16 patch ends on a 2×2 map (feature stride 8); from 64 px the original layers are kept
    (feature stride 32). The 6×6 pool + flatten becomes global average pooling and the FC widths shrink from 4096
    to 1024 (the 4096 layers held 95 % of the weights, far too many for a few thousand training patches).
    Dense evaluation: approximate (padded convolutions).
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2) -> None:
        super().__init__(in_bands, patch_size, n_classes)
        if _small(patch_size):
            stem = [nn.Conv2d(in_bands, 64, 3, 1, 1), nn.ReLU(inplace=True)]
            pool: Callable[[], nn.Module] = lambda: nn.MaxPool2d(2, 2, ceil_mode=True)  # noqa: E731
            self.feature_stride = 8
        else:
            stem = [nn.Conv2d(in_bands, 64, 11, 4, 2), nn.ReLU(inplace=True)]
            pool = lambda: nn.MaxPool2d(3, 2)  # noqa: E731
            self.feature_stride = 32
        self.features = nn.Sequential(
            *stem, pool(),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), pool(),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), pool(),
        )  # fmt: skip
        self.head = _gap_head(256, n_classes, hidden=(1024, 1024), dropout=0.5)
        _init_cnn(self)


# --------------------------------------------------------------------------------------------------------------
# VGG

_VGG_CONFIGS = {
    "vgg8": (64, "M", 128, "M", 256, "M", 512, "M", 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(ZooModel):
    """VGG (Simonyan & Zisserman 2015, ICLR): VGG16 (13 conv + 3 FC) and VGG8 (5 conv + 3 FC), both in he2024.

    Original VGG16: 3×3 padded convolutions in five blocks (64, 128, 256, 512, 512 channels), each closed by a
    2×2 max-pool, then FC 4096 → FC 4096 → output on the flattened 7×7×512 map. VGG8 is he2024's shallow variant
    (eight weight layers: one 3×3 convolution per block, then three FC layers).
    Adaptation: batch norm after every convolution (the vgg*_bn variant, which trains from scratch reliably);
    max-pools in ceil mode so a 16×16 patch passes all five (16→8→4→2→1→1); global average pooling replaces
    the 7×7 flatten and the FC widths shrink from 4096 to 512 (the usual small-image VGG head).
    Dense evaluation: approximate (padded convolutions), feature stride 32.
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2, depth: str = "vgg16") -> None:
        super().__init__(in_bands, patch_size, n_classes)
        layers: list[nn.Module] = []
        channels = in_bands
        for item in _VGG_CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers.append(_conv_bn_relu(channels, int(item)))
                channels = int(item)
        self.feature_stride = 32
        self.features = nn.Sequential(*layers)
        self.head = _gap_head(channels, n_classes, hidden=(512, 512), dropout=0.5)
        _init_cnn(self)


# --------------------------------------------------------------------------------------------------------------
# ResNet


class _Residual(nn.Module):
    """``relu(body(x) + shortcut(x))``; the shortcut is a 1×1 projection when the shape changes."""

    def __init__(self, body: nn.Module, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = body
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def _basic_block(cin: int, width: int, stride: int) -> _Residual:
    body = nn.Sequential(
        _conv_bn_relu(cin, width, 3, stride), nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
    )
    return _Residual(body, cin, width, stride)


def _bottleneck(cin: int, width: int, stride: int) -> _Residual:
    body = nn.Sequential(
        _conv_bn_relu(cin, width, 1),
        _conv_bn_relu(width, width, 3, stride),  # stride on the 3×3 (ResNet v1.5, as torchvision)
        nn.Conv2d(width, 4 * width, 1, bias=False),
        nn.BatchNorm2d(4 * width),
    )
    return _Residual(body, cin, 4 * width, stride)


class ResNet(ZooModel):
    """ResNet (He et al. 2016, CVPR): ResNet18 (gao2023 MFAF backbone) and ResNet50 (gao2022, he2024).

    Original: 7×7/2 conv stem + 3×3/2 max-pool, four stages of residual blocks (basic blocks [2, 2, 2, 2] for
    ResNet18, bottlenecks [3, 4, 6, 3] for ResNet50) with 64-128-256-512 widths, stride 2 at stages 2-4, then
    global average pooling and one FC layer.
    Adaptation: patches under 64 px get a 3×3 stride-1 stem without the max-pool (the CIFAR ResNet stem), so
    the feature stride is 8 instead of 32. The head is the original one (global average pool + FC).
    Dense evaluation: approximate (padded convolutions).
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2, depth: int = 50) -> None:
        super().__init__(in_bands, patch_size, n_classes)
        block, counts, expansion = (_basic_block, (2, 2, 2, 2), 1) if depth == 18 else (_bottleneck, (3, 4, 6, 3), 4)
        if _small(patch_size):
            stem = [_conv_bn_relu(in_bands, 64, 3, 1)]
            self.feature_stride = 8
        else:
            stem = [_conv_bn_relu(in_bands, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
            self.feature_stride = 32
        layers: list[nn.Module] = list(stem)
        channels = 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(block(channels, width, stride))
                channels = width * expansion
        self.features = nn.Sequential(*layers)
        self.head = _gap_head(channels, n_classes)
        _init_cnn(self)


RESNET50_FC_HIDDEN = (1000, 256)
"""Hidden widths of ``resnet50_fc``: the classic FC-1000 kept as a hidden layer, then an added 256-wide layer."""


def resnet50_fc(in_bands: int, patch_size: int, n_classes: int = 2, dropout: float = 0.5) -> ResNet:
    """ResNet50 with two fully connected layers added to the classic head (he2024, "which can increase
    classification precision").

    he2024 gives no widths (its Fig. 3d is not in the text). Reading: the classic ResNet-50 ends in global
    average pooling and FC-1000; the two added layers follow it. Here: GAP → FC 2048→1000 → ReLU → dropout →
    FC 1000→256 → ReLU → dropout → FC 256→classes, i.e. the classic FC-1000 as a hidden layer plus the two added
    layers, the last of them the classifier. The ReLU between layers (else three FCs are one linear map) and the
    dropout (0.5, as in AlexNet's and VGG's FC heads) are adaptations. Trunk as :class:`ResNet` (depth 50).
    """
    model = ResNet(in_bands, patch_size, n_classes, depth=50)
    model.head = _gap_head(2048, n_classes, RESNET50_FC_HIDDEN, dropout)
    _init_cnn(model.head)
    return model


# --------------------------------------------------------------------------------------------------------------
# MobileNetV2


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if expand == 1 else [_conv_bn_relu(cin, hidden, 1, relu6=True)]
        layers += [
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden, relu6=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),  # linear bottleneck: no activation
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(ZooModel):
    """MobileNetV2 (Sandler et al. 2018, CVPR), one of he2024's six models; width multiplier 1.0.

    Original: 3×3/2 conv (32) → 17 inverted-residual bottlenecks (expansion t, channels c, repeats n, stride s:
    (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1)) → 1×1 conv (1280) →
    global average pool → dropout 0.2 → FC.
    Adaptation: patches under 64 px use a stride-1 stem and stride 1 in the (6,24,2,2) stage (the CIFAR
    MobileNetV2), giving feature stride 8 instead of 32. Head as the original.
    Dense evaluation: approximate (padded convolutions).
    """

    _SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))  # fmt: skip

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2) -> None:
        super().__init__(in_bands, patch_size, n_classes)
        small = _small(patch_size)
        self.feature_stride = 8 if small else 32
        layers: list[nn.Module] = [_conv_bn_relu(in_bands, 32, 3, 1 if small else 2, relu6=True)]
        channels = 32
        for stage, (expand, width, repeats, stride) in enumerate(self._SETTINGS):
            if small and stage == 1:
                stride = 1
            for index in range(repeats):
                layers.append(_InvertedResidual(channels, width, stride if index == 0 else 1, expand))
                channels = width
        layers.append(_conv_bn_relu(channels, 1280, 1, relu6=True))
        self.features = nn.Sequential(*layers)
        self.head = _gap_head(1280, n_classes, dropout=0.2)
        _init_cnn(self)


# --------------------------------------------------------------------------------------------------------------
# ShuffleNetV2


def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class _ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        branch = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                _conv_bn_relu(cin, branch, 1),
            )  # fmt: skip
        source = cin if stride > 1 else branch
        self.branch2 = nn.Sequential(
            _conv_bn_relu(source, branch, 1),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            _conv_bn_relu(branch, branch, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, processed = x.chunk(2, dim=1)
            out = torch.cat((kept, self.branch2(processed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return _channel_shuffle(out)


class ShuffleNetV2(ZooModel):
    """ShuffleNetV2 1.0× (Ma et al. 2018, ECCV), a backbone of gao2023's MFAF network.

    Original: 3×3/2 conv (24) + 3×3/2 max-pool → three stages of shuffle units (repeats 4, 8, 4; channels 116,
    232, 464; the first unit of each stage has stride 2) → 1×1 conv (1024) → global average pool → FC.
    Adaptation: patches under 64 px use a stride-1 stem without the max-pool (feature stride 8 instead of 32).
    The MFAF attention/distillation additions of gao2023 are not part of this backbone.
    Dense evaluation: approximate (padded convolutions).
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2) -> None:
        super().__init__(in_bands, patch_size, n_classes)
        if _small(patch_size):
            layers: list[nn.Module] = [_conv_bn_relu(in_bands, 24, 3, 1)]
            self.feature_stride = 8
        else:
            layers = [_conv_bn_relu(in_bands, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
            self.feature_stride = 32
        channels = 24
        for width, repeats in zip((116, 232, 464), (4, 8, 4)):
            for index in range(repeats):
                layers.append(_ShuffleUnit(channels, width, 2 if index == 0 else 1))
                channels = width
        layers.append(_conv_bn_relu(channels, 1024, 1))
        self.features = nn.Sequential(*layers)
        self.head = _gap_head(1024, n_classes)
        _init_cnn(self)


# --------------------------------------------------------------------------------------------------------------
# Vision transformer


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written out (no nn.MultiheadAttention) so the ONNX export never meets a fused fast path.
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((weights @ v).transpose(1, 2).flatten(2))


class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x)))
        return x + self.dropout(self.mlp(self.norm2(x)))


class _Tokens(nn.Module):
    """Zero-pad to a whole number of tokens, embed each token, prepend the class token, add positions."""

    def __init__(self, in_bands: int, patch_size: int, token: int, dim: int, dropout: float) -> None:
        super().__init__()
        grid = math.ceil(patch_size / token)
        pad = grid * token - patch_size
        self.pad = nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
        self.embed = nn.Conv2d(in_bands, dim, token, token)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(self.pad(x)).flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        return self.dropout(tokens + self.position)


class _ClassTokenHead(nn.Module):
    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x[:, 0])


class ViT(ZooModel):
    """Vision Transformer (Dosovitskiy et al. 2021, ICLR), one of he2024's six models, in a small size.

    Original (ViT-B/16): 16×16 tokens embedded to 768 dims, a class token and learned position embeddings,
    12 pre-norm encoder blocks (12 heads, MLP 3072, GELU), final layer norm, linear head on the class token.
    Adaptation: sized to train on a CPU from a few thousand patches: 128 dims, 4 blocks, 4 heads, MLP 256,
    dropout 0.1; the token side is max(4, ceil(patch/8)) px (4 px for 16-32 px patches, at most 8×8 = 64
    tokens), and the patch is zero-padded to a whole number of tokens.
    ``features`` = tokens + encoder (a token sequence, not a map): dense evaluation does not apply.
    ``token`` > 0 fixes the token side (``vit_b16``: 16 px, see :func:`vit_b16`).
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2, dim: int = 128, depth: int = 4,
                 heads: int = 4, mlp: int = 256, dropout: float = 0.1, token: int = 0) -> None:  # fmt: skip
        super().__init__(in_bands, patch_size, n_classes)
        self.token_size = token or max(4, math.ceil(patch_size / 8))
        self.feature_stride = self.token_size
        self.features = nn.Sequential(
            _Tokens(in_bands, patch_size, self.token_size, dim, dropout),
            *(_EncoderBlock(dim, heads, mlp, dropout) for _ in range(depth)),
            nn.LayerNorm(dim),
        )
        self.head = _ClassTokenHead(dim, n_classes)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        tokens = self.features[0]
        nn.init.trunc_normal_(tokens.position, std=0.02)
        nn.init.trunc_normal_(tokens.cls, std=0.02)


def vit_b16(in_bands: int, patch_size: int, n_classes: int = 2, dropout: float = 0.1) -> ViT:
    """Full-size ViT-B/16 (Dosovitskiy et al. 2021, ICLR), he2024's ViT: 16×16 tokens (he2024: "a 16×16
    convolutional kernel" embeds the data) to 768 dims, 12 pre-norm encoder blocks (he2024: "a 12-pass stack of
    the encoder block") with 12 heads and MLP 3072 (GELU), dropout 0.1, class-token linear head; about 86 M
    weights. Patches that are not a multiple of 16 px are zero-padded to whole tokens (a 16 px patch is one
    token). A GPU is advised; it trains on a CPU, slowly.
    """
    return ViT(in_bands, patch_size, n_classes, dim=768, depth=12, heads=12, mlp=3072, dropout=dropout, token=16)


# --------------------------------------------------------------------------------------------------------------
# 1D CNN over the element vector


class CNN1D(ZooModel):
    """1D CNN over one cell's element vector (zhang2021, the CNN of its pixel-pair-feature method).

    Paper: 13 convolutions with ReLU after each, kernel 3: C1-C3 with 30 filters at stride 1 keep the length
    (39 elements), C4-C13 (40 filters, stride 2) halve it down to 1, then average pooling and one FC layer.
    Input: ``(batch, in_bands)``; with ``pair=True`` a pixel pair ``(batch, 2, in_bands)`` (the two vectors as
    two input channels, for zhang2021's same/different-class pair training).
    Adaptation: any vector length (stride-2 convolutions with padding 1 reach length 1 from any length
    ≤ 1024, and global average pooling covers the rest); the paper gives no widths for C5-C13: 40 are used;
    batch norm after each convolution (not in the paper): once the length reaches 1 (after C9 for 39 elements)
    a padded kernel sees only its centre tap, and without normalisation the signal shrinks about 3× per layer,
    so the 13 plain layers would barely train from scratch.
    Dense evaluation: per cell by construction (no spatial context).
    """

    input_kind = "vector"
    dense_exact = True

    def __init__(self, in_bands: int, patch_size: int = 1, n_classes: int = 2, pair: bool = False) -> None:
        super().__init__(in_bands, 1, n_classes)
        self.pair = pair
        layers: list[nn.Module] = [] if pair else [nn.Unflatten(1, (1, -1))]  # (batch, bands) → (batch, 1, bands)
        channels = 2 if pair else 1
        for index in range(13):
            width, stride = (30, 1) if index < 3 else (40, 2)
            layers += [
                nn.Conv1d(channels, width, 3, stride, 1, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels, n_classes))
        _init_cnn(self)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        return (batch, 2, self.in_bands) if self.pair else (batch, self.in_bands)


class PairCNN1D(CNN1D):
    """zhang2021's pixel-pair CNN: :class:`CNN1D` with ``pair=True``, a ``"pair"`` model.

    Input ``(batch, 2, in_bands)``: two cells' element vectors; output: logits of similar (0) / dissimilar (1).
    It is trained on pixel pairs (:mod:`.pairs`) and applied by the dual-window detector (:mod:`.dualwindow`),
    not as a per-cell prospectivity model.
    """

    input_kind = "pair"

    def __init__(self, in_bands: int, patch_size: int = 1, n_classes: int = 2) -> None:
        super().__init__(in_bands, patch_size, n_classes, pair=True)


# --------------------------------------------------------------------------------------------------------------
# Multilayer perceptron over the element vector


class MLP(ZooModel):
    """Multilayer perceptron over one cell's evidence vector: the classic neural prospectivity model.

    Source: the feed-forward networks of neural-network prospectivity mapping (Porwal, Carranza & Hale 2003,
    Natural Resources Research 12(1)); here two hidden layers of ``width`` units with ReLU and dropout.
    Why it is in the zoo: with tens of deposits, a small per-cell network with weight decay, input noise and a
    seed ensemble generalises to held-out ground better than window CNNs, which have thousands of weights per
    deposit and memorise the context around the few known ones (measured by spatial cross-validation).
    Input: ``(batch, in_bands)``. Dense evaluation: per cell by construction.
    """

    input_kind = "vector"
    dense_exact = True

    def __init__(self, in_bands: int, patch_size: int = 1, n_classes: int = 2, width: int = 64,
                 dropout: float = 0.3) -> None:
        super().__init__(in_bands, 1, n_classes)
        self.features = nn.Sequential(
            nn.Linear(in_bands, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.head = nn.Linear(width, n_classes)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        return (batch, self.in_bands)


class SeedAverage(ZooModel):
    """Several trained copies of one architecture (other seeds) whose probabilities are averaged: a seed ensemble.

    The output is the log of the mean class probability, so a softmax of it gives the averaged probabilities and
    the model file, the prediction and the card stay those of a single network. Averaging seeds removes much of
    the run-to-run spread of a small network trained on few deposits (Lakshminarayanan et al. 2017, NeurIPS).
    """

    def __init__(self, members: Sequence[ZooModel]) -> None:
        first = members[0]
        super().__init__(first.in_bands, first.patch_size, first.n_classes)
        self.members = nn.ModuleList(members)
        self.input_kind = first.input_kind  # dense scanning is per member, so the average is scanned in batches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([torch.softmax(member(x), 1) for member in self.members]).mean(0)
        return torch.log(probabilities.clamp_min(1e-12))

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        return self.members[0].input_shape(batch)


# --------------------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class ModelInfo:
    """Registry entry: how to build an architecture and what it accepts.

    Attributes:
        name: registry key (lower case).
        title: display name, e.g. for a Processing enum.
        paper: the source paper of the architecture.
        used_by: the project papers (in ``papers/``) that use it.
        input_kind: ``"patch"``, ``"vector"``, ``"pair"`` (two cells' vectors, ``(batch, 2, in_bands)``) or
            ``"patch+vector"`` (the window and its centre cell's vector).
        min_patch, max_patch: accepted patch sizes (1 and 1 for vector models).
        dense_exact: whether dense evaluation of ``features`` over a tile is exact.
        builder: ``builder(in_bands, patch_size, n_classes, **options) -> ZooModel``.
    """

    name: str
    title: str
    paper: str
    used_by: str
    input_kind: str
    min_patch: int
    max_patch: int
    dense_exact: bool
    builder: Callable[..., ZooModel]


def _entry(name, title, paper, used_by, builder, kind="patch", dense_exact=False) -> ModelInfo:
    low, high = (1, 1) if kind in ("vector", "pair") else (MIN_PATCH, MAX_PATCH)
    return ModelInfo(name, title, paper, used_by, kind, low, high, dense_exact, builder)


_REGISTRY = {
    info.name: info
    for info in (
        _entry("lenet", "LeNet-5", "LeCun et al. 1998, Proc. IEEE 86(11)", "he2024", LeNet, dense_exact=True),
        _entry("alexnet", "AlexNet", "Krizhevsky et al. 2012, NeurIPS", "he2024", AlexNet),
        _entry("vgg8", "VGG8", "Simonyan & Zisserman 2015, ICLR", "he2024",
               partial(VGG, depth="vgg8")),
        _entry("vgg16", "VGG16", "Simonyan & Zisserman 2015, ICLR", "he2024",
               partial(VGG, depth="vgg16")),
        _entry("resnet18", "ResNet18", "He et al. 2016, CVPR", "gao2023", partial(ResNet, depth=18)),
        _entry("resnet50", "ResNet50", "He et al. 2016, CVPR", "gao2022, he2024",
               partial(ResNet, depth=50)),
        _entry("mobilenet_v2", "MobileNetV2", "Sandler et al. 2018, CVPR", "he2024", MobileNetV2),
        _entry("shufflenet_v2", "ShuffleNetV2 1.0x", "Ma et al. 2018, ECCV", "gao2023", ShuffleNetV2),
        _entry("vit", "ViT (small)", "Dosovitskiy et al. 2021, ICLR", "he2024", ViT),
        _entry("resnet50_fc", "ResNet50 + two FC layers (he2024)", "He et al. 2016, CVPR; head: he2024", "he2024",
               resnet50_fc),
        _entry("vit_b16", "ViT-B/16 full size (GPU advised; works on CPU slowly)", "Dosovitskiy et al. 2021, ICLR",
               "he2024", vit_b16),
        _entry("cnn1d", "1D CNN (element vector)", "Zhang et al. 2021 (pixel-pair features + CNN)", "zhang2021",
               CNN1D, kind="vector", dense_exact=True),
        _entry("mlp", "MLP (element vector)", "Porwal, Carranza & Hale 2003, Nat. Resour. Res. 12(1)", "—", MLP,
               kind="vector", dense_exact=True),
        _entry("ppf_cnn1d", "Pixel-pair 1D CNN (dual-window anomaly)", "Zhang et al. 2021 (pixel-pair features + CNN)",
               "zhang2021", PairCNN1D, kind="pair", dense_exact=True),
    )
}  # fmt: skip


EXTENSIONS = ("mfaf", "affcnn")
"""Modules of this package whose networks build on the classes above (so they import this module): their
``ENTRIES`` join the registry on first use, after the networks above and in this order, so the registry's order
(the Processing enum's) does not depend on which module Python imported first."""
_extended: list[bool] = []


def _registry() -> dict[str, ModelInfo]:
    """The registry, with the networks of :data:`EXTENSIONS` added on first use."""
    if not _extended:
        for module in EXTENSIONS:
            for info in importlib.import_module(f".{module}", __package__).ENTRIES:
                _REGISTRY.setdefault(info.name, info)
        _extended.append(True)
    return _REGISTRY


def available_models() -> list[str]:
    """Registry names, in a stable order (the order of a Processing enum built from them)."""
    return list(_registry())


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; :class:`InputError` listing the valid names if it is unknown."""
    try:
        return _registry()[name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"Unknown model architecture {name!r}; choose one of: {', '.join(_registry())}.") from None


def architecture_options(name: str) -> dict[str, object]:
    """The options architecture ``name`` accepts (keyword arguments of its builder) with their defaults."""
    builder = model_info(name).builder
    fixed = set(getattr(builder, "keywords", {})) | {"in_bands", "patch_size", "n_classes"}  # partial(...) binds some
    return {key: parameter.default for key, parameter in inspect.signature(builder).parameters.items()
            if key not in fixed and parameter.default is not inspect.Parameter.empty}


def check_options(name: str, options: Mapping[str, object]) -> None:
    """:class:`InputError` naming the accepted options if ``options`` has a name architecture ``name`` lacks."""
    accepted = architecture_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        offered = ", ".join(f"{key} (default {value!r})" for key, value in accepted.items()) or "none"
        raise InputError(f"{model_info(name).title} has no option {', '.join(unknown)}; its options: {offered}.")


def parse_options(text: str) -> dict[str, object]:
    """Architecture options written as ``name=value; name=value`` (values: numbers, true/false, or
    comma-separated lists of numbers), as a geologist types them in a dialog; ``""`` gives ``{}``."""
    options: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.replace("\n", ";").split(";"))):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not key.isidentifier() or not value:
            raise InputError(f"Cannot read the architecture option {item!r}: write name=value, e.g. beta=0.4; "
                             "rates=1,6,12; channel_attention=false.")
        options[key] = _option_value(value)
    return options


def _option_value(text: str) -> object:
    """One option value: a bool, an int, a float, a list of them (comma-separated) or the text itself."""
    if "," in text:
        return [_option_value(part.strip()) for part in text.split(",") if part.strip()]
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "false", "no", "off"):
        return lowered in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def build_model(name: str, in_bands: int, patch_size: int, n_classes: int = 2, *, seed: int = 0,
                **options) -> ZooModel:  # fmt: skip
    """Build architecture ``name`` for ``in_bands`` bands and square patches of ``patch_size`` pixels.

    Args:
        name: a name from :func:`available_models` (case-insensitive).
        in_bands: number of input bands (≥ 1).
        patch_size: patch side in pixels, within the entry's ``min_patch``..``max_patch`` (1 for vector models).
        n_classes: number of output logits (2 for prospective / non-prospective).
        seed: seed of the weight initialisation (the global torch RNG is not touched).
        **options: architecture options (:func:`architecture_options`; e.g. ``pair=True`` for ``cnn1d``);
            an unknown name is an :class:`InputError` listing the accepted ones.

    Returns:
        The model in training mode; its output is ``(batch, n_classes)`` logits.
    """
    info = model_info(name)
    if int(in_bands) < 1:
        raise InputError(f"The model needs at least one input band, got {in_bands}.")
    if not info.min_patch <= int(patch_size) <= info.max_patch:
        if info.input_kind in ("vector", "pair"):
            raise InputError(f"{info.title} reads one cell's element vector: use patch size 1, not {patch_size}.")
        raise InputError(
            f"{info.title} takes patches of {info.min_patch} to {info.max_patch} pixels, not {patch_size}; "
            "change the patch size."
        )
    if int(n_classes) < 2:
        raise InputError(f"The model needs at least 2 classes, got {n_classes}.")
    check_options(name, options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.builder(int(in_bands), int(patch_size), int(n_classes), **options)
