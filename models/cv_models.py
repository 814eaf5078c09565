"""Networks for spatial cross-validation: each fold's model trained by the plugin's own loop, mapped over the area.

:func:`network_fit_map` turns training settings into a ``fit_map`` for :func:`..core.spatialcv.run_spatial_cv`:
for each fold and negative draw it builds the architecture, trains it with :mod:`.training`'s loop on the
fold's training cells (windows padded by :func:`..core.windows.padded_windows`, as training sets and
prediction pad them), and scores every usable cell. ``members`` > 1 trains that many seeds and averages
their probabilities (a seed ensemble). No validation split is carved out of the few training deposits: the
epochs are fixed, as in the papers' presets, and chosen by inner folds, never by the held-out fold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import InputError
from ..core.spatialcv import FitMap, FoldTask, baseline_fit_map
from ..core.windows import padded_windows
from .training import SplitData, TrainSettings, fit_network, predict_logits
from .zoo import build_model, model_info

_CHUNK = 4096


def network_fit_map(settings: TrainSettings, patch_size: int = 1, members: int = 1) -> FitMap:
    """A ``fit_map`` training ``settings.architecture`` on each fold (``members`` seeds averaged)."""
    info = model_info(settings.architecture)
    patch = 1 if info.input_kind == "vector" else int(patch_size)
    if not info.min_patch <= patch <= info.max_patch:
        raise InputError(f"{info.title} takes windows of {info.min_patch} to {info.max_patch} cells, not {patch}.")
    if members < 1:
        raise InputError(f"A network needs at least one member seed (got {members}).")
    settings = dataclasses.replace(settings, early_stopping="off")

    def inputs(task: FoldTask, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        if info.input_kind == "vector":
            return torch.from_numpy(np.ascontiguousarray(task.stack[:, rows, cols].T, dtype=np.float32))
        return torch.from_numpy(padded_windows(task.stack, rows, cols, patch))

    def fit_map(task: FoldTask) -> np.ndarray:
        train = SplitData(inputs(task, task.train.rows, task.train.cols),
                          torch.from_numpy(task.train.y.astype(np.int64)))
        rows, cols = np.nonzero(task.usable)
        nets = []
        for member in range(members):
            seeded = dataclasses.replace(settings, seed=task.seed * 101 + member)
            model = build_model(settings.architecture, task.stack.shape[0], patch, seed=seeded.seed)
            nets.append(fit_network(model, seeded, train, is_cancelled=task.is_cancelled))
        total = np.zeros(len(rows), dtype=np.float64)
        for start in range(0, len(rows), _CHUNK):
            x = inputs(task, rows[start:start + _CHUNK], cols[start:start + _CHUNK])
            for model in nets:
                total[start:start + _CHUNK] += torch.softmax(predict_logits(model, x), 1)[:, 1].numpy()
        return task.to_map(total / members)

    return fit_map


@dataclass(frozen=True)
class NetworkRecipe:
    """How spatial cross-validation trains one network: architecture settings, window and seed-ensemble size."""

    settings: TrainSettings
    patch_size: int = 1
    members: int = 1


# The networks offered for cross-validation, with the settings they are trained with. The patch models use the
# full pipeline's settings (Adam, cosine schedule, 50 epochs) on the smallest window the zoo takes.
NETWORKS: dict[str, NetworkRecipe] = {
    "mlp_ensemble": NetworkRecipe(TrainSettings(architecture="mlp", epochs=100, batch_size=64, learning_rate=1e-3,
                                                min_learning_rate=1e-4, weight_decay=1e-3, input_noise=0.1),
                                  members=5),
    "mlp": NetworkRecipe(TrainSettings(architecture="mlp", epochs=100, batch_size=64, learning_rate=1e-3,
                                       min_learning_rate=1e-4, weight_decay=1e-3, input_noise=0.1)),
    "cnn1d": NetworkRecipe(TrainSettings(architecture="cnn1d")),
    "lenet": NetworkRecipe(TrainSettings(architecture="lenet"), patch_size=16),
    "vgg8": NetworkRecipe(TrainSettings(architecture="vgg8"), patch_size=16),
}
BASELINES = {"random_forest": "Random forest (500 balanced trees)",
             "logistic_regression": "Logistic regression (standardised, balanced)"}
CV_MODELS: list[tuple[str, str]] = [
    ("mlp_ensemble", "MLP, 5-seed ensemble (the DeepProspect default)"),
    ("mlp", "MLP (element vector)"),
    ("cnn1d", "1D CNN (element vector, zhang2021)"),
    ("lenet", "LeNet (16-cell windows)"),
    ("vgg8", "VGG8 (16-cell windows)"),
    *BASELINES.items(),
]
DEFAULT_MODELS = ("mlp_ensemble", "random_forest", "logistic_regression")
ENSEMBLE_CHOICES: list[tuple[str, str]] = [
    ("rank_networks", "Rank mean of the networks"),
    ("mean_networks", "Probability mean of the networks"),
    ("rank_all", "Rank mean of every model (networks and baselines)"),
]
QUICK_EPOCH_SHARE = 0.2


def cv_fit_maps(keys: list[str], quick: bool = False) -> tuple[dict[str, FitMap], int]:
    """``fit_map`` of each chosen model (keys of :data:`CV_MODELS`) and the widest window among them."""
    fit_maps, widest = {}, 1
    for key in keys:
        if key in BASELINES:
            fit_maps[key] = baseline_fit_map(key)
            continue
        if key not in NETWORKS:
            raise InputError(f"Unknown model {key!r} for cross-validation; choose among "
                             f"{', '.join(k for k, _ in CV_MODELS)}.")
        recipe = NETWORKS[key]
        settings = recipe.settings
        if quick:
            settings = dataclasses.replace(settings, epochs=max(5, round(QUICK_EPOCH_SHARE * settings.epochs)))
        fit_maps[key] = network_fit_map(settings, recipe.patch_size, recipe.members)
        widest = max(widest, recipe.patch_size)
    return fit_maps, widest


def cv_ensembles(rules: list[str], keys: list[str]) -> dict[str, tuple[str, list[str]]]:
    """The chosen ensembles over the chosen models (an ensemble of fewer than two members is left out)."""
    networks = [k for k in keys if k in NETWORKS]
    members = {"rank_networks": ("rank", networks), "mean_networks": ("mean", networks), "rank_all": ("rank", keys)}
    return {f"ensemble_{rule}": members[rule] for rule in rules if len(members[rule][1]) >= 2}
