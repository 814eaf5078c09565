"""Pixel-pair training data (zhang2021): the splits of a training set as pairs of cells, for pair models.

Per split (train, validation, test apart) the unaugmented samples of one negative set — deposit cells and their
neighbours, barren points and random cells; never crops, flips, noise or SMOTE copies, whose vectors are not
labelled cells — are paired by :mod:`core.sampling.pairs`: same class → similar (0), different → dissimilar (1). The
split's sample vectors are read once (a few hundred rows); each batch gathers its pairs' two vectors from them,
so the pair tensor is never built. ``max_pairs`` > 0 draws at most that many pairs per split with the run's seed
(seed, seed + 1, seed + 2 for train, validation, test).

The shared training loop (:mod:`.training`) trains and scores pair models unchanged: a pair is a sample of
shape ``(2, bands)`` whose label is dissimilar (the "positive" class of the metrics: AUC, recall and F1 are of
telling dissimilar pairs apart).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import InputError
from ..core.sampling.labels import SHARED, UNAUGMENTED, TrainingSet
from ..core.sampling.pairs import Pairs, PairSpace, pair_counts, pair_space
from .onnx_io import METRIC_SPLITS
from .training import SplitData


@dataclass
class PairSplitData(SplitData):
    """The pairs of one split: ``source`` holds the split's sample vectors (in memory), ``rows`` and ``second``
    the positions in it of each pair's first and second cell, ``y`` the pair labels."""

    second: np.ndarray | None = None
    space: PairSpace | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (2, int(self.source.shape[1]))

    def inputs(self, which: np.ndarray | slice) -> torch.Tensor:
        """Float32 ``(n, 2, bands)`` inputs of the pairs ``which``, gathered from the sample vectors."""
        return torch.from_numpy(np.stack((self.source[self.rows[which]], self.source[self.second[which]]), axis=1))

    def count(self) -> dict:
        """Pairs, dissimilar pairs, and the split's pair counts (available and used) for the card."""
        pairs = Pairs(self.rows, self.second, self.y.numpy())
        return {"samples": len(self), "positive": int(self.y.sum()), "pairs": pair_counts(self.space, pairs)}


def pair_split_data(training_set: TrainingSet, negative_set: int, max_pairs: int = 0,
                    seed: int = 0) -> dict[str, PairSplitData]:
    """Per split, the pixel pairs of negative set ``negative_set``'s unaugmented samples (module docstring)."""
    repeats = sorted(set(training_set.repeat.tolist()) - {SHARED})
    if repeats and negative_set not in repeats:
        raise InputError(f"The training set has negative sets {repeats}; negative set {negative_set} does not exist.")
    usable = ((training_set.repeat == SHARED) | (training_set.repeat == negative_set)) & \
        np.isin(training_set.kind, UNAUGMENTED)
    data = {}
    for offset, split in enumerate(METRIC_SPLITS):
        keep = np.flatnonzero(usable & (training_set.split == split))
        vectors = np.ascontiguousarray(training_set.x_vector[keep], dtype=np.float32)
        space = pair_space(training_set.y[keep])
        pairs = space.pairs(max_pairs, seed + offset)
        data[split] = PairSplitData(vectors, torch.from_numpy(pairs.label.astype(np.int64)), rows=pairs.first,
                                    second=pairs.second, space=space)
    return data
