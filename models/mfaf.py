"""gao2023's multi-scale feature attention framework (MFAF): dilated branches, attention, self-distillation.

Gao, Wang, Zhang & Wang 2023, "Intelligent identification and prediction mineral resources deposit based on deep
learning", Sustainability 15:10269 (sections 3.2.2-3.2.6, 4.1, 4.3). The network, as built here:

1. **Multi-scale branches** (MFCA-Net, Formula 6): one depthwise 3×3 convolution per dilation rate of ``rates``
   (default {1, 6, 12, 18, 24}, section 4.1) over the evidence bands, each followed by batch norm, gives one
   feature map per band and scale, ``(batch, scales, bands, H, W)``. Depthwise, so each band keeps its own
   channel and the attention below can weigh bands.
2. **Channel attention** over the bands × scales channels (Figure 5: average- and max-pooled descriptors through
   one shared two-layer MLP, summed, sigmoid; bottleneck of a quarter of the channels, at least 4). The paper
   reads these weights as each evidence layer's influence on mineralisation: :func:`band_influence`.
3. **Trunk**: each scale's reweighted bands pass through the backbone's trunk (ResNet18 or ShuffleNetV2, the
   zoo's own classes, small-input stem below 64 px) with weights shared by the branches, like the head.
4. **Spatial attention** on the last stage (Figure 6, Formula 8: channel mean and max, 7×7 convolution, sigmoid).
5. **Shared head** per branch (global average pooling + one FC layer, section 3.2.2: "each channel was finally
   classified by the shared full connection layer").
6. **Fusion** (Formulas 10-11): ``fusion="mean"`` averages the branches' softmax probabilities; ``"vote"`` gives
   each branch one vote for its argmax class (a branch tied between classes splits its vote), so the
   probability is the vote share and takes only ``scales + 1`` values (a coarse prospectivity score).
   In eval mode ``forward`` returns the log of the fused probabilities, ``(batch, n_classes)``, so its softmax is
   the fused probability and the ONNX export, prediction and card are those of any zoo model. In training mode
   it returns the per-branch logits, ``(batch, scales, n_classes)``, for :meth:`MFAF.training_loss`.

**Loss** (Formula 9 plus the self-distillation of section 4.3.2): the cross-entropy of every branch, summed over
the branches, plus ``beta`` times the distillation of every branch toward the branches' mean prediction::

    L = Σ_k CE(z_k, y) + β · Σ_k KL(p̄ ‖ softmax(z_k)),    p̄ = mean_k softmax(z_k), held fixed (no gradient)

The paper writes out the summed cross-entropy only; it names a "self-distillation loss" with coefficient β
(Table 5: β = 0.4 best) but gives no formula. Readings chosen here, where the paper is silent: the teacher is
the branches' mean probability (the fused prediction the network outputs), detached as in online
distillation; temperature 1; KL per sample averaged over the batch and summed over the branches like the
cross-entropy. The paper's remark that β = 0 "means the original result of ResNet18" does not hold literally:
with β = 0 the branches and attention still train, only without distillation.

**Ablations** (Tables 4-6) are options: ``channel_attention``, ``spatial_attention`` (False removes the
module), ``beta`` (Table 5 swept 0, 0.1, 0.4, 0.6, 0.7, 0.8), ``rates`` (any set; Table 6:
{1,2,4,8,10}, {1,4,8,12,16}, {1,6,12,18,24}, {1,8,16,24,32}) and ``fusion``.

Adaptations: the paper's windows were 128 px; on smaller patches a rate of at least the patch side puts every
outer tap of its kernel in the zero padding, so that branch sees the centre tap only (a per-band scaling).
Every branch runs the whole trunk, so a network costs ``scales`` times its backbone's compute (same weights).
Dense evaluation: approximate (padded convolutions).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from functools import partial

import numpy as np
import torch
from torch import nn

from ..core.errors import InputError
from ..core.outputs import atomic_path
from .zoo import ResNet, SeedAverage, ShuffleNetV2, ZooModel, _entry, _gap_head, _init_cnn

DEFAULT_RATES = (1, 6, 12, 18, 24)
TABLE6_RATES = ((1, 2, 4, 8, 10), (1, 4, 8, 12, 16), (1, 6, 12, 18, 24), (1, 8, 16, 24, 32))
FUSIONS = ("mean", "vote")
BACKBONES = {"resnet18": partial(ResNet, depth=18), "shufflenet_v2": ShuffleNetV2}
MIN_ATTENTION_HIDDEN = 4
BAND_INFLUENCE_HELP = (
    "the sigmoid weight MFAF's channel attention gives each evidence band, averaged over its dilation scales and "
    "over the training samples (eval mode, the kept epoch): 0 to 1, higher = more influence (gao2023 reads "
    "these weights as each layer's influence on mineralisation)"
)


class _ChannelAttention(nn.Module):
    """CBAM-style channel attention: ``x * sigmoid(MLP(avgpool x) + MLP(maxpool x))`` over ``channels``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(MIN_ATTENTION_HIDDEN, channels // 4)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weight of every channel of ``x`` (batch, channels, H, W): (batch, channels) in (0, 1)."""
        return torch.sigmoid(self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[:, :, None, None]


class _SpatialAttention(nn.Module):
    """CBAM spatial attention: ``x * sigmoid(conv7×7([mean_c x, max_c x]))``."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(pooled))


class _MultiScaleTrunk(nn.Module):
    """Dilated depthwise branches → channel attention over bands × scales → shared trunk → spatial attention.

    Input ``(batch, bands, H, W)``; output ``(batch, scales, channels, h, w)``.
    """

    def __init__(self, in_bands: int, rates: Sequence[int], trunk: nn.Module, channels: int,
                 channel_attention: bool, spatial_attention: bool) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.scales = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_bands, in_bands, 3, padding=rate, dilation=rate, groups=in_bands, bias=False),
                          nn.BatchNorm2d(in_bands))
            for rate in self.rates)
        self.channel_attention = _ChannelAttention(len(self.rates) * in_bands) if channel_attention else None
        self.trunk = trunk
        self.spatial_attention = _SpatialAttention() if spatial_attention else None
        self.channels = channels

    def multi_scale(self, x: torch.Tensor) -> torch.Tensor:
        """Every scale's filtered bands, scale-major: ``(batch, scales · bands, H, W)``."""
        return torch.cat([scale(x) for scale in self.scales], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = x.shape[1]
        scaled = self.multi_scale(x)
        if self.channel_attention is not None:
            scaled = self.channel_attention(scaled)
        # (batch, scales·bands, H, W) → (batch·scales, bands, H, W): every branch through the one trunk
        out = self.trunk(scaled.reshape(-1, bands, *scaled.shape[2:]))
        if self.spatial_attention is not None:
            out = self.spatial_attention(out)
        return out.reshape(-1, len(self.rates), *out.shape[1:])


class _BranchHead(nn.Module):
    """Shared head per branch (global average pool + FC); in eval mode the branches fused (log-probabilities)."""

    def __init__(self, channels: int, n_classes: int, fusion: str) -> None:
        super().__init__()
        self.fusion = fusion
        self.classifier = _gap_head(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = x.shape[1]
        logits = self.classifier(x.flatten(0, 1)).reshape(-1, branches, self.classifier[-1].out_features)
        if self.training:
            return logits
        return torch.log(fuse(logits, self.fusion).clamp_min(1e-12))


def fuse(logits: torch.Tensor, fusion: str) -> torch.Tensor:
    """Class probabilities ``(batch, n_classes)`` from per-branch logits ``(batch, branches, n_classes)``:
    the mean of the branches' softmax (``"mean"``) or the share of the branches' votes (``"vote"``)."""
    probabilities = torch.softmax(logits, -1)
    if fusion == "mean":
        return probabilities.mean(1)
    votes = (probabilities == probabilities.amax(-1, keepdim=True)).float()
    return (votes / votes.sum(-1, keepdim=True)).mean(1)


def distillation_loss(logits: torch.Tensor, y: torch.Tensor, criterion: nn.Module, beta: float) -> torch.Tensor:
    """``Σ_k criterion(z_k, y) + beta · Σ_k KL(p̄ ‖ softmax(z_k))`` with ``p̄`` the detached mean of the branches'
    probabilities; ``logits`` is ``(batch, branches, n_classes)`` (see the module docstring for the readings)."""
    branches = logits.shape[1]
    loss = sum(criterion(logits[:, k], y) for k in range(branches))
    if beta:
        teacher = torch.softmax(logits, -1).mean(1).detach()
        student = torch.log_softmax(logits, -1)
        loss = loss + beta * sum(nn.functional.kl_div(student[:, k], teacher, reduction="batchmean")
                                 for k in range(branches))
    return loss


class MFAF(ZooModel):
    """gao2023's MFAF on a ResNet18 or ShuffleNetV2 trunk; see the module docstring for every part and reading.

    Args:
        in_bands, patch_size, n_classes: as every zoo model.
        backbone: ``"resnet18"`` or ``"shufflenet_v2"`` (fixed by the registry name).
        rates: dilation rates, one branch each (positive, distinct integers).
        beta: weight of the self-distillation term (≥ 0).
        channel_attention: channel attention over bands × scales on (False: gao2023's R-CA ablation).
        spatial_attention: spatial attention on the last stage on (False: the R-SA ablation).
        fusion: ``"mean"`` of the branches' probabilities or ``"vote"`` (the paper's voting).
    """

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2, backbone: str = "resnet18",
                 rates: Sequence[int] = DEFAULT_RATES, beta: float = 0.4, channel_attention: bool = True,
                 spatial_attention: bool = True, fusion: str = "mean") -> None:
        super().__init__(in_bands, patch_size, n_classes)
        rates, self.beta = _check_options(backbone, rates, beta, channel_attention, spatial_attention, fusion)
        base = BACKBONES[backbone](in_bands, patch_size, n_classes)
        self.feature_stride = base.feature_stride
        channels = base.head[-1].in_features
        self.features = _MultiScaleTrunk(in_bands, rates, base.features, channels, channel_attention,
                                         spatial_attention)
        self.head = _BranchHead(channels, n_classes, fusion)
        _init_cnn(self)
        if channel_attention:  # PyTorch's default init (as SE-Net and CBAM): small-normal weights would pin it at 0.5
            for layer in self.features.channel_attention.mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    @property
    def rates(self) -> tuple[int, ...]:
        return self.features.rates

    def training_loss(self, output: torch.Tensor, y: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        return distillation_loss(output, y, criterion, self.beta)

    def band_attention(self, x: torch.Tensor) -> torch.Tensor | None:
        """Channel-attention weights of ``x``'s samples, ``(batch, scales, bands)``; None without channel
        attention. Uses the model's current mode (eval: batch norm's running statistics)."""
        attention = self.features.channel_attention
        if attention is None:
            return None
        weights = attention.weights(self.features.multi_scale(x))
        return weights.reshape(x.shape[0], len(self.rates), self.in_bands)


# The zoo adds these to its registry on first use, after its own networks (zoo.EXTENSIONS).
ENTRIES = [_entry(f"mfaf_{backbone}", f"MFAF ({title})", "Gao et al. 2023, Sustainability 15:10269", "gao2023",
                  partial(MFAF, backbone=backbone))
           for backbone, title in (("resnet18", "ResNet18"), ("shufflenet_v2", "ShuffleNetV2"))]


def band_influence(model: nn.Module, batches: Iterable[torch.Tensor],
                   band_names: Sequence[str]) -> dict[str, float] | None:
    """Each band's mean channel-attention weight (over scales and the samples of ``batches``, eval mode):
    ``{band name: weight}``; a seed ensemble of MFAF models gives its members' mean. None when the model has
    no channel attention (not MFAF, or MFAF with ``channel_attention=False``)."""
    members = list(model.members) if isinstance(model, SeedAverage) else [model]
    if not all(isinstance(member, MFAF) and member.features.channel_attention is not None for member in members):
        return None
    device = next(model.parameters()).device
    totals, count = np.zeros((len(members), len(band_names))), 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            for index, member in enumerate(members):
                totals[index] += member.band_attention(batch).sum((0, 1)).double().cpu().numpy()
            count += batch.shape[0] * len(members[0].rates)
    model.train(was_training)
    if not count:
        return None
    mean = totals.mean(0) / count
    return {str(name): float(weight) for name, weight in zip(band_names, mean)}


def gives_band_influence(architecture: str, options: Mapping[str, object]) -> bool:
    """Whether a model of zoo ``architecture`` with ``options`` has channel attention to read band influence from."""
    return architecture.lower().startswith("mfaf_") and options.get("channel_attention", True) is not False


def write_band_influence(influence: Mapping[str, float], path: str) -> None:
    """Write ``{band: weight}`` as a CSV (columns band, weight, rank; rank 1 = most influential), atomically."""
    ranked = sorted(influence, key=lambda name: -influence[name])
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["band", "weight", "rank"])
        for name, weight in influence.items():
            writer.writerow([name, f"{weight:.6f}", ranked.index(name) + 1])


def _check_options(backbone: str, rates, beta, channel_attention, spatial_attention, fusion) -> tuple[tuple, float]:
    """The rates as a tuple and beta as a float; :class:`InputError` saying what to write for a bad option."""
    if backbone not in BACKBONES:
        raise InputError(f"Unknown MFAF backbone {backbone!r}; choose one of {', '.join(BACKBONES)}.")
    listed = list(rates) if isinstance(rates, (list, tuple)) else [rates]
    if not listed or not all(isinstance(rate, int) and not isinstance(rate, bool) and rate >= 1 for rate in listed):
        raise InputError(f"MFAF rates must be whole numbers of at least 1 (dilation rates, e.g. rates=1,6,12,18,24), "
                         f"not {rates!r}.")
    if len(set(listed)) != len(listed):
        raise InputError(f"MFAF rates {listed} repeat a rate; give each dilation rate once.")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < float("inf"):
        raise InputError(f"MFAF beta (self-distillation weight) must be a number of at least 0, e.g. beta=0.4, "
                         f"not {beta!r}.")
    for name, value in (("channel_attention", channel_attention), ("spatial_attention", spatial_attention)):
        if not isinstance(value, bool):
            raise InputError(f"MFAF {name} must be true or false, not {value!r}.")
    if fusion not in FUSIONS:
        raise InputError(f"MFAF fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}.")
    return tuple(listed), float(beta)
