"""Online augmentation: random flips, 90° rotations and a random crop drawn anew for every training batch (gao2022).

gao2022 trained ResNet-50 on 256 × 256 windows that were "randomly flipped horizontally and vertically and
trimmed to 224 × 224" before each iteration, and tested on 224 × 224 windows. Here:

* **Flips** (``random_flips``): each training sample is flipped left-right with probability ½ and, independently,
  up-down with probability ½; **rotations** (``random_rotations``) add a rotation by k × 90°, k uniform in 0…3.
* **Crop** (``random_crop`` = c, 0 = none): each training sample is a c × c crop of its p × p window at a uniform
  random offset. The model is built for c × c inputs, so its patch size, the card's and prediction's are c.
  Validation, test and every score (training-split AUC and metrics included) read the window's **centre** c × c
  crop, rows p//2 − c//2 … p//2 − c//2 + c − 1 (columns alike): exactly the c-window centred on the sample's cell
  that prediction reads around each cell, so no score sees a view prediction never gives.
* Draws come from the training loop's seeded generator (the one that shuffles the batches), so a run reproduces
  on the CPU; nothing is drawn when every option is off, leaving runs without online augmentation as they were.

Only training batches change; the training set on disk is never modified, and each epoch sees new draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import torch

from ..core.errors import InputError


def enabled(settings) -> bool:
    """Whether ``settings`` (a :class:`.training.TrainSettings`) asks for any online augmentation."""
    return bool(settings.random_flips or settings.random_rotations or settings.random_crop)


class CentreCrop:
    """(n, bands, p, p) windows seen as their centre c × c crops, read a batch of rows at a time."""

    def __init__(self, full, size: int) -> None:
        self.full, self.size = full, size
        self.offset = int(full.shape[-1]) // 2 - size // 2

    @property
    def shape(self) -> tuple[int, ...]:
        return (*tuple(int(n) for n in self.full.shape[:-2]), self.size, self.size)

    def __len__(self) -> int:
        return int(self.full.shape[0])

    def __getitem__(self, rows):
        o, c = self.offset, self.size
        return self.full[rows][..., o:o + c, o:o + c]


def evaluation_views(data: Mapping, settings, input_kind: str) -> dict:
    """The splits as every score and the model see them: centre crops when ``random_crop`` is set.

    Raises:
        InputError: online augmentation asked for a vector model, or a crop larger than the windows.
    """
    if not enabled(settings):
        return dict(data)
    if input_kind != "patch":
        raise InputError(f"Random flips, rotations and crops apply to window (patch) models; {settings.architecture} "
                         f"is a {input_kind} model. Switch them off or choose a patch architecture.")
    patch = int(data["train"].sample_shape[-1])
    crop = settings.random_crop
    if crop > patch:
        raise InputError(f"The random crop ({crop} cells) is larger than the training set's windows ({patch} "
                         "cells); choose a crop of at most the patch size (gao2022: 224 of 256).")
    if not crop or crop == patch:
        return dict(data)
    return {split: dataclasses.replace(part, source=CentreCrop(part.source, crop)) for split, part in data.items()}


def training_batch(part, which: np.ndarray, settings, generator: torch.Generator) -> torch.Tensor:
    """The training inputs of rows ``which`` of ``part`` (a :class:`.training.SplitData`), randomly cropped,
    flipped and rotated as ``settings`` asks, with draws from ``generator``."""
    if not enabled(settings):
        return part.inputs(which)
    source = part.source
    if isinstance(source, CentreCrop):  # read the whole windows and crop at random
        x = dataclasses.replace(part, source=source.full).inputs(which)
        x = random_crops(x, source.size, generator)
    else:
        x = part.inputs(which)
    return random_symmetries(x, settings.random_flips, settings.random_rotations, generator)


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size`` × ``size`` crop of each (bands, p, p) sample at a uniform random offset."""
    room = int(x.shape[-1]) - size + 1
    offsets = torch.randint(0, room, (len(x), 2), generator=generator).tolist()
    return torch.stack([sample[:, r:r + size, c:c + size] for sample, (r, c) in zip(x, offsets)])


def random_symmetries(x: torch.Tensor, flips: bool, rotations: bool, generator: torch.Generator) -> torch.Tensor:
    """Each sample flipped left-right / up-down (each with probability ½) and rotated by k × 90° (k in 0…3)."""
    x = x.clone()
    if flips:
        flip = torch.randint(0, 2, (len(x), 2), generator=generator).bool()
        x[flip[:, 0]] = x[flip[:, 0]].flip(-1)
        x[flip[:, 1]] = x[flip[:, 1]].flip(-2)
    if rotations:
        turns = torch.randint(0, 4, (len(x),), generator=generator)
        for k in (1, 2, 3):
            x[turns == k] = torch.rot90(x[turns == k], k, (-2, -1))
    return x


def card_record(settings, window: int) -> dict | None:
    """What the model card says about online augmentation (None when off)."""
    if not enabled(settings):
        return None
    crop = settings.random_crop if settings.random_crop and settings.random_crop < window else None
    return {"random_flips": settings.random_flips, "random_rotations": settings.random_rotations,
            "random_crop": crop, "training_window": window, "model_patch_size": crop or window,
            "applied_to": "training batches, new draws every epoch (seeded)",
            "evaluation": "centre crop of each window" if crop else "whole windows"}
