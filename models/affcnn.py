"""1-2D AFFCNN: he2025's dual-branch CNN with adaptive feature fusion, over a window and its centre cell's vector.

Paper: He, Yang, Yu, Tan & Li 2025, "Recognition of multiple geochemical anomalies by dual-branch convolutional
neural network with adaptive feature fusion", Computers & Geosciences 205:106011. A 1D branch reads the element
vector (the compositional relations between elements), a 2D branch the window (the spatial structure), an
Adaptive Feature Fusion Module (AFFM) merges the two, and a three-stage training "mitigates the vanishing gradient
problem". Only the abstract was available, so what it leaves open is chosen here as follows:

- **Inputs**: ``(window, vector)``: the window ``(batch, bands, p, p)`` and the vector ``(batch, bands)`` of its
  centre cell (the window's own cell); ``input_kind`` ``"patch+vector"``, two named ONNX inputs.
- **1D branch**: the vector as a sequence of bands: three Conv1d (kernel 3, padding 1) + batch norm + ReLU
  layers (16, 32, 32 channels) that keep the length, flattened (the band order is fixed, so where a response
  lies matters) and a Linear + ReLU to ``width`` features.
- **2D branch**: two blocks of two 3×3 Conv2d + batch norm + ReLU (32 then 64 channels) each closed by a 2×2
  max-pool, global average pooling (any window size), and a Linear + ReLU to ``width`` features.
- **AFFM**: selective-kernel fusion (Li et al. 2019, "Selective Kernel Networks", CVPR), with the branches in
  place of SK's kernels: ``u = f1 + f2``, ``z = ReLU(BN(W u))`` of ``max(width / 16, 32)`` units, one Linear
  per branch gives its scores, a softmax over the branches gives per-sample, per-feature weights that sum to one,
  and ``v = a1·f1 + a2·f2``. The branch features are already pooled vectors, so SK's global pooling is the
  identity. ``fusion="concat"`` (ablation) classifies ``[f1, f2]`` instead, without adaptive weights.
- **Heads**: the classifier (dropout 0.3 + Linear) on the fused features, and an auxiliary classifier (Linear)
  on each branch's features; in training mode ``forward`` returns ``(logits, aux_1d, aux_2d)``, in eval mode the
  classifier's logits only.
- **Stages** (:meth:`AFFCNN.training_stages`), epochs shared by ``stage_split`` (default 0.4, 0.3, 0.3; any
  non-negative shares, a zero share skips its stage): 1 ``branches``: each branch with its auxiliary head (the
  sum of the two auxiliary losses), fusion and classifier frozen; 2 ``fusion``: branches and auxiliary heads
  frozen, fusion and classifier trained on the classifier's loss (frozen parts get no gradient and stay in eval
  mode, so their batch-norm statistics stay too); 3 ``joint``: everything, on the classifier's loss plus
  ``aux_weight`` (default 0.3, as GoogLeNet's auxiliary heads) times the auxiliary losses. The stages run
  inside one training run (one optimiser, one learning-rate schedule); no epoch before the joint stage is kept.
- **Ablation** ``branches="1d"`` or ``"2d"``: one branch, its features straight to the classifier, no auxiliary
  head, one stage (the model still takes both inputs, so every variant reads the same training set and map).

Dense evaluation: not exact (padded convolutions), so a map gathers windows in batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core.errors import InputError
from .zoo import ZooModel, _conv_bn_relu, _entry, _init_cnn

FUSIONS = ("adaptive", "concat")
BRANCHES = ("both", "1d", "2d")
STAGES = (
    ("branches", "the two branches with their auxiliary heads (fusion and classifier frozen)"),
    ("fusion", "the fusion and the classifier (branches and auxiliary heads frozen)"),
    ("joint", "every part, with the auxiliary losses"),
)


class _VectorBranch(nn.Module):
    """1D convolutions along the band axis of one cell's vector, then a Linear to ``width`` features."""

    def __init__(self, in_bands: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Unflatten(1, (1, -1))]  # (batch, bands) → (batch, 1, bands)
        channels = 1
        for out in (16, 32, 32):
            layers += [nn.Conv1d(channels, out, 3, 1, 1, bias=False), nn.BatchNorm1d(out), nn.ReLU(inplace=True)]
            channels = out
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * in_bands, width), nn.ReLU(inplace=True))

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        return self.body(vector)


class _WindowBranch(nn.Module):
    """Two blocks of 3×3 convolutions with max-pooling over the window, global average pooling, a Linear."""

    def __init__(self, in_bands: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_relu(in_bands, 32), _conv_bn_relu(32, 32), nn.MaxPool2d(2, 2, ceil_mode=True),
            _conv_bn_relu(32, 64), _conv_bn_relu(64, 64), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, width), nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.body(window)


class SelectiveFusion(nn.Module):
    """Selective-kernel fusion of branch features (Li et al. 2019, CVPR): softmax weights over the branches, per
    sample and feature, computed from the features' sum."""

    def __init__(self, width: int, branches: int = 2, reduction: int = 16, min_units: int = 32) -> None:
        super().__init__()
        units = max(width // reduction, min_units)
        self.squeeze = nn.Sequential(nn.Linear(width, units), nn.BatchNorm1d(units), nn.ReLU(inplace=True))
        self.select = nn.ModuleList(nn.Linear(units, width) for _ in range(branches))

    def weights(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """(batch, branches, width) fusion weights; they sum to one over the branches."""
        z = self.squeeze(torch.stack(tuple(features)).sum(0))
        return torch.softmax(torch.stack([select(z) for select in self.select], 1), dim=1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return (self.weights(features) * torch.stack(tuple(features), 1)).sum(1)


class _Concat(nn.Module):
    """Plain fusion: the branch features side by side (one branch: its features)."""

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(tuple(features), 1)


class AFFCNN(ZooModel):
    """he2025's 1-2D AFFCNN (module docstring): 1D branch over the centre cell's vector, 2D branch over the window,
    adaptive (selective-kernel) fusion, auxiliary heads, three training stages.

    Input: the tuple ``(window (batch, bands, p, p), vector (batch, bands))``.
    """

    input_kind = "patch+vector"

    def __init__(self, in_bands: int, patch_size: int, n_classes: int = 2, fusion: str = "adaptive",
                 branches: str = "both", stage_split: Sequence[float] = (0.4, 0.3, 0.3), aux_weight: float = 0.3,
                 width: int = 64) -> None:  # fmt: skip
        super().__init__(in_bands, patch_size, n_classes)
        _check_options(fusion, branches, stage_split, aux_weight, width)
        self.branch_kinds = ("1d", "2d") if branches == "both" else (branches,)
        self.stage_split = tuple(float(share) for share in stage_split)
        self.aux_weight = float(aux_weight)
        self.stage = "joint"  # what a run without stages trains; the loop's enter_stage changes it
        builders = {"1d": _VectorBranch, "2d": _WindowBranch}
        self.branches = nn.ModuleDict({kind: builders[kind](in_bands, width) for kind in self.branch_kinds})
        two = len(self.branch_kinds) == 2
        self.auxiliary = nn.ModuleDict({kind: nn.Linear(width, n_classes) for kind in self.branch_kinds if two})
        fused = 2 * width if two and fusion == "concat" else width
        self.fusion: nn.Module = SelectiveFusion(width) if two and fusion == "adaptive" else _Concat()
        self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(fused, n_classes))
        _init_cnn(self)

    def branch_features(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        """Each branch's ``(batch, width)`` features, in the order of ``branch_kinds`` (1d, 2d)."""
        window, vector = inputs
        return [self.branches[kind](vector if kind == "1d" else window) for kind in self.branch_kinds]

    def fusion_weights(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(batch, 2, width) adaptive fusion weights of the 1D and 2D branches (they sum to one over the
        branches); :class:`InputError` for a model without adaptive fusion."""
        if not isinstance(self.fusion, SelectiveFusion):
            raise InputError("This AFFCNN has no adaptive fusion (fusion=concat or a single branch).")
        return self.fusion.weights(self.branch_features(inputs))

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]):
        features = self.branch_features(inputs)
        logits = self.classifier(self.fusion(features))
        if self.training and len(self.auxiliary):
            return (logits, *(self.auxiliary[kind](f) for kind, f in zip(self.branch_kinds, features)))
        return logits

    def training_loss(self, output, y: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        """The stage's loss: auxiliary heads (branches), classifier (fusion), or classifier + weighted auxiliary."""
        if not isinstance(output, tuple):
            return criterion(output, y)
        logits, *auxiliary = output
        if self.stage == "fusion":
            return criterion(logits, y)
        aux = sum(criterion(head, y) for head in auxiliary)
        return aux if self.stage == "branches" else criterion(logits, y) + self.aux_weight * aux

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of the window input; the vector input is ``(batch, in_bands)``."""
        return (batch, self.in_bands, self.patch_size, self.patch_size)

    def training_stages(self, epochs: int) -> list[dict]:
        """The three stages over ``epochs`` epochs, shared by ``stage_split`` (rounded; a stage that gets no epoch
        is left out); one branch: no stages."""
        if len(self.branch_kinds) == 1:
            return []
        total, share, first, stages = sum(self.stage_split), 0.0, 1, []
        for (name, trains), part in zip(STAGES, self.stage_split):
            share += part
            last = epochs if share >= total else round(epochs * share / total)
            if last >= first:
                stages.append({"name": name, "first_epoch": first, "last_epoch": last, "trains": trains})
                first = last + 1
        return stages

    def enter_stage(self, name: str) -> None:
        """Train only stage ``name``'s parts and use its loss; the other parts get no gradient and stay in eval
        mode, so their batch-norm statistics do not move either."""
        self.stage = name
        self.requires_grad_(False)
        for part in self._stage_parts()[0]:
            part.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> AFFCNN:
        """As :meth:`nn.Module.train`, but the parts the current stage freezes stay in eval mode."""
        super().train(mode)
        if mode:
            for part in self._stage_parts()[1]:
                part.eval()
        return self

    def _stage_parts(self) -> tuple[tuple[nn.Module, ...], tuple[nn.Module, ...]]:
        """(parts trained, parts frozen) in the current stage."""
        branches, fusion = (self.branches, self.auxiliary), (self.fusion, self.classifier)
        return {"branches": (branches, fusion), "fusion": (fusion, branches), "joint": ((self,), ())}[self.stage]


def _check_options(fusion: str, branches: str, stage_split: Sequence[float], aux_weight: float, width: int) -> None:
    if fusion not in FUSIONS:
        raise InputError(f"Unknown AFFCNN fusion {fusion!r}; choose one of {', '.join(FUSIONS)}.")
    if branches not in BRANCHES:
        raise InputError(f"Unknown AFFCNN branches {branches!r}; choose one of {', '.join(BRANCHES)}.")
    shares = list(stage_split) if isinstance(stage_split, (list, tuple)) else [stage_split]
    if len(shares) != len(STAGES) or not all(isinstance(s, (int, float)) and s >= 0 for s in shares) or \
            not sum(shares) > 0:
        raise InputError(f"The AFFCNN stage_split needs {len(STAGES)} non-negative epoch shares (branches, fusion, "
                         f"joint) with a positive sum, e.g. stage_split=0.4,0.3,0.3; got {stage_split!r}.")
    if not aux_weight >= 0 or int(width) < 1:
        raise InputError("The AFFCNN aux_weight must not be negative and its width must be at least 1.")


# The zoo adds this to its registry on first use, after its own networks (zoo.EXTENSIONS).
ENTRIES = [_entry("affcnn", "1-2D AFFCNN (window + element vector)",
                  "He et al. 2025, Computers & Geosciences 205:106011", "he2025", AFFCNN, kind="patch+vector")]
