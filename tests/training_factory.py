"""An easy, seeded training set for training tests: deposits carry a high in band 0 at the window centre."""

import numpy as np
from deepprospect.core.evidence.stack import STACK_TAG, make_stack
from deepprospect.core.sampling.labels import FORMAT, SHARED, TrainingSet

BANDS = ["Au", "As", "fault_density"]


def easy_set(n: int = 180, patch: int = 16, seed: int = 0, flip_validation: bool = False) -> TrainingSet:
    """Deposits carry a Gaussian high in band 0 at the window centre; negatives are noise. Splits 60/20/20."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int8)
    x = rng.normal(0.0, 0.5, size=(n, len(BANDS), patch, patch)).astype(np.float32)
    yy, xx = np.mgrid[:patch, :patch] - patch // 2
    x[y == 1, 0] += 2.0 * np.exp(-(yy**2 + xx**2) / 8.0).astype(np.float32)
    split = np.array(["train"] * int(0.6 * n) + ["validation"] * int(0.2 * n) + ["test"] * (n - int(0.8 * n)))
    if flip_validation:  # validation labels unrelated to the inputs: validation loss can only get worse
        y[split == "validation"] = rng.permutation(y[split == "validation"])
    _, _, recipe = make_stack(rng.normal(size=(len(BANDS), 4, 4)), BANDS, normalise="z-score")
    manifest = {"format": FORMAT, "version": 1, "band_names": BANDS, "crs": "EPSG:32650",
                "pixel_size": [100.0, 100.0], "seed": 7, "stack_tags": {STACK_TAG: recipe}, "patch_size": patch}
    return TrainingSet(x_patch=x, x_vector=np.ascontiguousarray(x[:, :, patch // 2, patch // 2]), y=y, split=split,
                       kind=np.where(y == 1, "deposit", "random"), repeat=np.where(y == 1, SHARED, 0).astype(np.int16),
                       centre_xy=np.zeros((n, 2)), window_rc=np.zeros((n, 2), np.int32), manifest=manifest)
