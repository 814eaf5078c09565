"""Pixel-pair features (zhang2021, after Li et al. 2016): labelled samples recombined into labelled pairs.

Two samples of the same class make a *similar* pair (label :data:`SIMILAR` = 0), two of different classes a
*dissimilar* pair (label :data:`DISSIMILAR` = 1). With K samples of one class and N of the other the pairs are,
as in zhang2021 (section 2.1, Table 2):

* similar: the ordered pairs (i, j), i ≠ j, inside each class: K(K − 1) + N(N − 1);
* dissimilar: one pair per unordered couple of classes' samples: K·N. Its orientation alternates like a
  checkerboard, (class-a sample, class-b sample) when the two samples' ranks in their classes have an even sum,
  reversed otherwise, so a network never learns that "first deposit, second barren" means dissimilar.

So 136 + 136 training samples give 36,720 similar and 18,496 dissimilar pairs, 35 + 35 test samples 2,380 and
1,225. With more than two classes every couple of classes adds its K_a·K_b dissimilar pairs.

The pairs are an implicit index space (similar pairs of each class, then dissimilar pairs of each couple of
classes), decoded by arithmetic: a cap on the number of pairs draws that many distinct indices at random
(seeded) without building the whole space, and pairs are index arrays into the samples, so inputs are gathered
a batch at a time by the caller. Pairs are made inside one split only (train, validation, test apart), so no
sample of one split meets a sample of another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

SIMILAR, DISSIMILAR = 0, 1


@dataclass(frozen=True)
class Pairs:
    """Pairs as positions in the sample list given to :func:`pair_space`: ``first[k]``, ``second[k]``, ``label[k]``."""

    first: np.ndarray  # (n,) int64
    second: np.ndarray  # (n,) int64
    label: np.ndarray  # (n,) int8: SIMILAR or DISSIMILAR

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class PairSpace:
    """Every pair of a sample list, numbered but not built (see the module docstring for the numbering)."""

    classes: tuple[np.ndarray, ...]  # per class (ascending label), the positions of its samples

    @property
    def similar(self) -> int:
        """Number of similar pairs: Σ K_c (K_c − 1)."""
        return sum(len(c) * (len(c) - 1) for c in self.classes)

    @property
    def dissimilar(self) -> int:
        """Number of dissimilar pairs: Σ over couples of classes K_a · K_b."""
        sizes = [len(c) for c in self.classes]
        return sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1:])

    def __len__(self) -> int:
        return self.similar + self.dissimilar

    def pairs(self, cap: int = 0, seed: int = 0) -> Pairs:
        """All pairs in index order, or (``cap`` > 0 and fewer than all) ``cap`` distinct pairs drawn at random
        with ``default_rng(seed)``, in index order; memory is proportional to the pairs returned."""
        total = len(self)
        if cap < 0:
            raise InputError(f"The pair cap must be 0 (all pairs) or positive, not {cap}.")
        if not cap or cap >= total:
            return self.decode(np.arange(total, dtype=np.int64))
        return self.decode(_distinct_sample(total, cap, np.random.default_rng(seed)))

    def decode(self, index: np.ndarray) -> Pairs:
        """The pairs of indices ``index`` of the space (any order, each in ``0 … len(self) − 1``)."""
        index = np.asarray(index, dtype=np.int64)
        first, second = np.empty_like(index), np.empty_like(index)
        label = np.full(index.shape, SIMILAR, dtype=np.int8)
        start = 0
        for members in self.classes:  # similar: t → (t // (K−1), the (t % (K−1))-th other member)
            k = len(members)
            t = index - start
            here = (t >= 0) & (t < k * (k - 1))
            i, j = t[here] // max(k - 1, 1), t[here] % max(k - 1, 1)
            first[here], second[here] = members[i], members[j + (j >= i)]
            start += k * (k - 1)
        for a, members_a in enumerate(self.classes):  # dissimilar: t → (t // K_b, t % K_b), checkerboard order
            for members_b in self.classes[a + 1:]:
                t = index - start
                here = (t >= 0) & (t < len(members_a) * len(members_b))
                i, j = t[here] // len(members_b), t[here] % len(members_b)
                flip = (i + j) % 2 == 1
                first[here] = np.where(flip, members_b[j], members_a[i])
                second[here] = np.where(flip, members_a[i], members_b[j])
                label[here] = DISSIMILAR
                start += len(members_a) * len(members_b)
        return Pairs(first, second, label)


def pair_space(labels: np.ndarray) -> PairSpace:
    """The pair space of samples with class ``labels`` (positions 0 … n − 1, grouped by ascending label)."""
    labels = np.asarray(labels)
    return PairSpace(tuple(np.flatnonzero(labels == value) for value in np.unique(labels)))


def pair_counts(space: PairSpace, pairs: Pairs) -> dict:
    """What a model card records about one split's pairs: samples, pairs available and pairs used."""
    used_dissimilar = int(np.count_nonzero(pairs.label == DISSIMILAR))
    return {"samples": int(sum(len(c) for c in space.classes)), "class_samples": [len(c) for c in space.classes],
            "similar_available": space.similar, "dissimilar_available": space.dissimilar,
            "similar": len(pairs) - used_dissimilar, "dissimilar": used_dissimilar, "pairs": len(pairs)}


def _distinct_sample(total: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct integers of ``0 … total − 1``, uniformly at random, sorted, in O(count) memory.

    Dense draws (more than half) permute the whole range, which is then at most twice the sample; sparse ones
    draw with replacement until enough distinct values exist, then keep a random subset of them (each subset
    of that size is equally likely, by symmetry).
    """
    if 2 * count > total:
        return np.sort(rng.permutation(total)[:count])
    found = np.zeros(0, dtype=np.int64)
    while len(found) < count:
        found = np.union1d(found, rng.integers(0, total, size=count + count // 8 + 16, dtype=np.int64))
    return np.sort(rng.choice(found, count, replace=False))
