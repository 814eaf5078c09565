"""Augmentation of training windows: crop shifts, flips/rotations, Gaussian noise and SMOTE.

* **Crop shifts** (he2024): the paper cuts 32×32 crops from each sample block, moving the crop window along X
  in steps of up to ``a`` pixels and along Y up to ``b`` pixels, N times per sample (positives N=50, a=12, b=24;
  negatives N=10, a=32, b=64). Here one pixel is one stack cell: each crop is a stack window (padded at the
  grid edge and on nodata like every window, see :mod:`.windows`) whose origin is moved by (dx, dy) with
  dx ∈ [−a, a], dy ∈ [−b, b] (integers), N distinct non-zero shifts per sample drawn at random; a crop whose
  centre leaves valid data or the study area is dropped. The crop keeps the sample's label, as in the paper,
  so a shift larger than half the patch moves the labelled cell out of the window: keep a and b below patch/2
  for positives when that matters.
* **Flips/rotations**: one of the 7 non-identity symmetries of the square (rot90 ×k, optionally transposed).
* **Gaussian noise** (gao2023): zero mean, variance 0.01 in the paper, added to a copy.
* **SMOTE** (gao2023): synthetic minority samples on the segment between a sample and one of its k nearest
  same-class neighbours (Chawla et al. 2002). imbalanced-learn 0.14 needs numpy ≥ 1.25 and scipy ≥ 1.11, which
  the QGIS builds DeepProspect supports do not have (numpy < 2 from the system), and it would also copy the
  whole training set twice; so SMOTE is done here with ``sklearn.neighbors.NearestNeighbors``, writing each
  synthetic window straight into the preallocated output.

Every function takes a ``numpy.random.Generator`` so the caller controls the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ..errors import InputError


@dataclass(frozen=True)
class AugmentSettings:
    """What to add to the training split (crops per sample and shift ranges in cells; 0 crops = none)."""

    positive_crops: int = 0
    positive_shift_x: int = 12
    positive_shift_y: int = 24
    negative_crops: int = 0
    negative_shift_x: int = 32
    negative_shift_y: int = 64
    flips: bool = False
    noise_variance: float = 0.0
    smote: bool = False
    smote_neighbours: int = 5

    def __post_init__(self) -> None:
        for label, crops, a, b in (("positive", self.positive_crops, self.positive_shift_x, self.positive_shift_y),
                                   ("negative", self.negative_crops, self.negative_shift_x, self.negative_shift_y)):
            if crops < 0 or a < 0 or b < 0:
                raise InputError(f"The {label} crop count and shifts must be 0 or more (got N={crops}, a={a}, b={b}).")
            if crops > (2 * a + 1) * (2 * b + 1) - 1:
                raise InputError(
                    f"{crops} {label} crops need as many distinct shifts, but shifts of up to ±{a} (x) and ±{b} (y) "
                    f"cells give only {(2 * a + 1) * (2 * b + 1) - 1}; raise the shifts or lower the crop count.")
        if self.noise_variance < 0:
            raise InputError(f"The noise variance must be 0 (no noise) or more (got {self.noise_variance}).")
        if self.smote_neighbours < 1:
            raise InputError(f"SMOTE needs at least 1 neighbour (got {self.smote_neighbours}).")

    def as_dict(self) -> dict:
        """The settings as plain JSON values, for the manifest."""
        return asdict(self)


def crop_offsets(n_samples: int, n_crops: int, shift_x: int, shift_y: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(n_samples, n_crops, 2) distinct non-zero (dy, dx) shifts per sample, |dx| ≤ shift_x, |dy| ≤ shift_y."""
    width = 2 * shift_x + 1
    lattice = (2 * shift_y + 1) * width - 1  # every shift but (0, 0)
    out = np.empty((n_samples, n_crops, 2), dtype=np.int64)
    if n_crops == 0:
        return out
    centre = shift_y * width + shift_x
    for i in range(n_samples):
        code = rng.choice(lattice, size=n_crops, replace=False)
        code += code >= centre  # skip the unshifted window
        out[i, :, 0] = code // width - shift_y
        out[i, :, 1] = code % width - shift_x
    return out


def dihedral(window: np.ndarray, code: int) -> np.ndarray:
    """``window`` (..., p, p) under symmetry ``code`` 0–7: rotated 90° ``code % 4`` times, transposed if ≥ 4."""
    out = np.rot90(window, code % 4, axes=(-2, -1))
    return np.swapaxes(out, -1, -2) if code >= 4 else out


def random_symmetries(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` codes of non-identity flips/rotations (1–7) for :func:`dihedral`."""
    return rng.integers(1, 8, size=n)


def add_gaussian_noise(window: np.ndarray, variance: float, rng: np.random.Generator) -> None:
    """Add zero-mean Gaussian noise of ``variance`` to a float32 ``window`` in place (no float64 copy)."""
    noise = rng.standard_normal(window.shape, dtype=np.float32)
    noise *= np.float32(np.sqrt(variance))
    window += noise


def smote_pairs(features: np.ndarray, n_new: int, k: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMOTE recipe for ``n_new`` synthetic rows from the minority ``features`` (n, d).

    Returns (base, neighbour, gap): synthetic row m is ``f[base[m]] + gap[m] * (f[neighbour[m]] − f[base[m]])``,
    with the neighbour one of the ``k`` nearest other minority rows and gap uniform in [0, 1).
    """
    n = features.shape[0]
    if n < 2:
        raise InputError(f"SMOTE needs at least 2 samples of the minority class in the training split (got {n}).")
    k = min(k, n - 1)
    neighbours = NearestNeighbors(n_neighbors=k).fit(features).kneighbors(return_distance=False)
    base = rng.integers(n, size=n_new)
    neighbour = neighbours[base, rng.integers(k, size=n_new)]
    gap = rng.random(n_new, dtype=np.float32)
    return base, neighbour, gap
