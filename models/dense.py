"""Fast scanning: a patch model's logits for every window position of a tile in one pass.

A patch classifier applied to every cell of a raster repeats almost all of its work: neighbouring windows share
all but one row or column of input. Fast scanning (Giusti et al. 2013, "Fast image scanning with deep
max-pooling convolutional neural networks", ICIP) removes the repetition for trunks without zero padding:
every pooling or convolution stride becomes 1, and every later layer is dilated by the product of the strides
before it, so the layer reads, at every position, exactly the inputs it would read inside the window that
starts there. Then:

- a convolution of stride s becomes the same convolution (same weights) with stride 1 and dilation d·dilation,
  and d grows to d·s for the layers after it;
- an average pool (kernel k, stride s) becomes a fixed depthwise convolution with weights 1/k² dilated by d
  (``nn.AvgPool2d`` has no dilation), a max pool the same max pool with stride 1 and dilation d;
- the head's global average pool becomes an average over the window's F×F feature cells (F = the feature map
  side of one window), i.e. an F×F depthwise convolution dilated by d;
- Linear layers become 1×1 convolutions; ReLU and batch norm act per position and stay; dropout (eval) goes.

For an input (batch, bands, H, W), :class:`DenseScanner` returns (batch, classes, H−p+1, W−p+1): element
[..., i, j] is the model's logits for the p×p window whose top-left cell is (i, j), equal to the per-patch
logits up to float rounding. Pool windows that a patch drops at its border (floor mode) are never read by
the head, so they do not matter; trunks with zero padding or ceil-mode pools are refused, since their windows
see padding that a tile does not have.

Windows that leave the stack are padded, not dropped (:mod:`.inference`): the tile is read with its p − 1 halo,
padded with the window fill where it leaves the stack, its nodata filled the same way, and then scanned, so
every position reads exactly the padded window a per-patch model would read there.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..core.errors import ModelError

_POINTWISE = (nn.ReLU, nn.ReLU6, nn.BatchNorm2d, nn.Identity)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


class _DilatedMean(nn.Module):
    """Mean over a k×k neighbourhood dilated by d, per channel (a fixed depthwise convolution)."""

    def __init__(self, channels: int, kernel: tuple[int, int], dilation: tuple[int, int]) -> None:
        super().__init__()
        self.channels = channels
        self.dilation = dilation
        self.register_buffer("weight", torch.full((channels, 1, *kernel), 1.0 / (kernel[0] * kernel[1])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight, dilation=self.dilation, groups=self.channels)


class DenseScanner(nn.Module):
    """The fully convolutional form of a padding-free patch model (see the module docstring).

    Args:
        model: a zoo patch model whose ``features`` and ``head`` are ``nn.Sequential`` (LeNet). It is copied,
            so later changes to ``model`` do not reach the scanner; batch norm uses its running statistics.

    Raises:
        ModelError: the model has a layer fast scanning cannot convert exactly (padding, ceil-mode pooling,
            an unknown layer type).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        model = copy.deepcopy(model).eval()
        self.patch_size = int(model.patch_size)
        self.in_bands = int(model.in_bands)
        layers: list[nn.Module] = []
        dilation, channels = (1, 1), self.in_bands
        for layer in _children(model.features, "features"):
            converted, dilation, channels = _convert_trunk_layer(layer, dilation, channels)
            layers.append(converted)
        extent = _feature_extent(model)
        for layer in _children(model.head, "head"):
            if isinstance(layer, nn.AdaptiveAvgPool2d):
                if _pair(layer.output_size) != (1, 1):
                    raise ModelError(f"Fast scanning needs a global average pool, not {layer}.")
                layers.append(_DilatedMean(channels, extent, dilation))
            elif isinstance(layer, nn.Linear):
                conv = nn.Conv2d(layer.in_features, layer.out_features, 1, bias=layer.bias is not None)
                conv.load_state_dict({name: value.reshape(getattr(conv, name).shape)
                                      for name, value in layer.state_dict().items()})
                layers.append(conv)
                channels = layer.out_features
            elif isinstance(layer, (nn.ReLU, nn.ReLU6)):
                layers.append(layer)
            elif not isinstance(layer, (nn.Flatten, nn.Dropout)):
                raise ModelError(f"Fast scanning cannot convert the head layer {layer}.")
        self.body = nn.Sequential(*layers)
        self.eval()
        probe = torch.zeros(1, self.in_bands, self.patch_size, self.patch_size)
        with torch.no_grad():
            side = self.body(probe).shape[-2:]
        # The receptive extent can be shorter than p (cells a patch drops in floor-mode pooling): crop the last
        # positions, whose windows would run past the tile.
        self.crop = (int(side[0]) - 1, int(side[1]) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        rows, cols = self.crop
        # Negative constant ends: the crop exports to ONNX without any shape arithmetic.
        return out[:, :, : (-rows or None), : (-cols or None)]


def dense_supported(model: nn.Module) -> bool:
    """Whether ``model`` is a patch model whose dense evaluation is exact (the zoo's ``dense_exact``)."""
    return getattr(model, "input_kind", "patch") == "patch" and bool(getattr(model, "dense_exact", False))


def _children(module: nn.Module, where: str) -> list[nn.Module]:
    if not isinstance(module, nn.Sequential):
        raise ModelError(f"Fast scanning needs the model's {where} as a sequence of layers.")
    return list(module)


def _convert_trunk_layer(layer: nn.Module, dilation: tuple[int, int], channels: int):
    """(converted layer, dilation after it, channels after it) for one trunk layer."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding != "valid" and (isinstance(layer.padding, str) or any(layer.padding)):
            raise ModelError(f"Fast scanning is exact only without zero padding, but {layer} pads.")
        stride = _pair(layer.stride)
        own = _pair(layer.dilation)
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, 1, 0,
                         (own[0] * dilation[0], own[1] * dilation[1]), layer.groups, layer.bias is not None)
        conv.load_state_dict(layer.state_dict())
        return conv, (dilation[0] * stride[0], dilation[1] * stride[1]), layer.out_channels
    if isinstance(layer, (nn.AvgPool2d, nn.MaxPool2d)):
        if any(_pair(layer.padding)) or layer.ceil_mode or getattr(layer, "divisor_override", None):
            raise ModelError(f"Fast scanning is exact only for pools without padding or ceil mode, not {layer}.")
        kernel, stride = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
        after = (dilation[0] * stride[0], dilation[1] * stride[1])
        if isinstance(layer, nn.MaxPool2d):
            own = _pair(layer.dilation)
            return nn.MaxPool2d(kernel, 1, 0, (own[0] * dilation[0], own[1] * dilation[1])), after, channels
        return _DilatedMean(channels, kernel, dilation), after, channels
    if isinstance(layer, _POINTWISE):
        return layer, dilation, channels
    raise ModelError(f"Fast scanning cannot convert the layer {layer}.")


def _feature_extent(model: nn.Module) -> tuple[int, int]:
    """Side of the feature map ``features`` gives for one patch (model in eval mode): what the head averages."""
    with torch.no_grad():
        shape = model.features(torch.zeros(1, model.in_bands, model.patch_size, model.patch_size)).shape[-2:]
    return int(shape[0]), int(shape[1])
