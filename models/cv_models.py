"""Networks for spatial cross-validation: each fold's model trained by the plugin's own loop, mapped over the area.

:func:`network_fit_map` turns training settings into a ``fit_map`` for :func:`..core.scoring.spatialcv.run_spatial_cv`:
for each fold and negative draw it builds the architecture, trains it with :mod:`.training`'s loop on the
fold's training cells (windows padded by :func:`..core.sampling.windows.padded_windows`, as training sets and
prediction pad them), and scores every usable cell. ``members`` > 1 trains that many seeds and averages
their probabilities (a seed ensemble). No validation split is carved out of the few training deposits: the
epochs are fixed, as in the papers' presets. The MLP recipe below was chosen among about ten variants by
spatial cross-validation on the Kolari data (its outer folds), so its margin there is optimistic; the other
benchmark datasets were not used to choose it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import InputError
from ..core.sampling.windows import padded_windows
from ..core.scoring.spatialcv import FitMap, FoldTask, baseline_fit_map
from .training import SplitData, TrainSettings, fit_network, predict_logits
from .zoo import SeedAverage, build_model, model_info

_CHUNK = 4096


@dataclass(frozen=True)
class NetworkRecipe:
    """How spatial cross-validation trains one network: its settings (members: a seed ensemble), its window, and
    how many unlabelled background cells of the training folds join the negatives (0: the protocol's negatives
    only). Random "negatives" are unlabelled ground, not barren: more of them, balanced by class weighting, tell
    the network what ordinary ground looks like without letting a few draws decide it."""

    settings: TrainSettings
    patch_size: int = 1
    background: int = 0


def network_fit_map(recipe: NetworkRecipe) -> FitMap:
    """A ``fit_map`` training ``recipe.settings.architecture`` on each fold (``settings.members`` seeds averaged)."""
    settings = dataclasses.replace(recipe.settings, early_stopping="off")
    info = model_info(settings.architecture)
    patch = 1 if info.input_kind == "vector" else int(recipe.patch_size)
    if not info.min_patch <= patch <= info.max_patch:
        raise InputError(f"{info.title} takes windows of {info.min_patch} to {info.max_patch} cells, not {patch}.")

    def inputs(task: FoldTask, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor | tuple[torch.Tensor, ...]:
        vectors = torch.from_numpy(np.ascontiguousarray(task.stack[:, rows, cols].T, dtype=np.float32))
        if info.input_kind == "vector":
            return vectors
        windows = torch.from_numpy(padded_windows(task.stack, rows, cols, patch))
        return (windows, vectors) if info.input_kind == "patch+vector" else windows

    def fit_map(task: FoldTask) -> np.ndarray:
        rows, cols, labels = task.train.rows, task.train.cols, task.train.y.astype(np.int64)
        if recipe.background and task.background is not None:
            br, bc = np.nonzero(task.background)
            pick = np.random.default_rng(task.seed).choice(len(br), min(recipe.background, len(br)), replace=False)
            rows, cols = np.concatenate([rows, br[pick]]), np.concatenate([cols, bc[pick]])
            labels = np.concatenate([labels, np.zeros(len(pick), np.int64)])
        train = SplitData(inputs(task, rows, cols), torch.from_numpy(labels))
        nets = []
        for member in range(settings.members):
            seeded = dataclasses.replace(settings, seed=task.seed + member, members=1)
            model = build_model(settings.architecture, task.stack.shape[0], patch, seed=seeded.seed,
                                **settings.options)
            nets.append(fit_network(model, seeded, train, is_cancelled=task.is_cancelled))
        model = nets[0] if len(nets) == 1 else SeedAverage(nets).eval()
        cells_r, cells_c = np.nonzero(task.usable)
        scores = [torch.softmax(predict_logits(model, inputs(task, cells_r[i:i + _CHUNK], cells_c[i:i + _CHUNK])),
                                1)[:, 1].numpy() for i in range(0, len(cells_r), _CHUNK)]
        return task.to_map(np.concatenate(scores))

    return fit_map


# The networks offered for cross-validation, with the settings they are trained with. The patch models use the
# full pipeline's settings (Adam, cosine schedule, 50 epochs) on the smallest window the zoo takes.
_MLP = TrainSettings(architecture="mlp", epochs=40, batch_size=64, learning_rate=1e-3, min_learning_rate=1e-4,
                    weight_decay=1e-3, input_noise=0.1)
NETWORKS: dict[str, NetworkRecipe] = {
    "mlp_ensemble": NetworkRecipe(dataclasses.replace(_MLP, members=5), background=1000),
    "mlp": NetworkRecipe(_MLP, background=1000),
    "cnn1d": NetworkRecipe(TrainSettings(architecture="cnn1d")),
    "lenet": NetworkRecipe(TrainSettings(architecture="lenet"), patch_size=16),
    "vgg8": NetworkRecipe(TrainSettings(architecture="vgg8"), patch_size=16),
    "mfaf_shufflenet_v2": NetworkRecipe(TrainSettings(architecture="mfaf_shufflenet_v2"), patch_size=16),
    "mfaf_resnet18": NetworkRecipe(TrainSettings(architecture="mfaf_resnet18"), patch_size=16),
    "affcnn": NetworkRecipe(TrainSettings(architecture="affcnn"), patch_size=16),
}
BASELINES = {"random_forest": "Random forest (500 balanced trees)",
             "logistic_regression": "Logistic regression (standardised, balanced)"}
CV_MODELS: list[tuple[str, str]] = [
    ("mlp_ensemble", "MLP, 5-seed ensemble (the DeepProspect default)"),
    ("mlp", "MLP (element vector)"),
    ("cnn1d", "1D CNN (element vector, zhang2021)"),
    ("lenet", "LeNet (16-cell windows)"),
    ("vgg8", "VGG8 (16-cell windows)"),
    ("mfaf_shufflenet_v2", "MFAF on ShuffleNetV2 (16-cell windows, gao2023)"),
    ("mfaf_resnet18", "MFAF on ResNet18 (16-cell windows, gao2023)"),
    ("affcnn", "AFFCNN (16-cell windows and the cell's vector, he2025)"),
    *BASELINES.items(),
]
DEFAULT_MODELS = ("mlp_ensemble", "random_forest", "logistic_regression")
ENSEMBLE_CHOICES: list[tuple[str, str]] = [
    ("rank_networks", "Rank mean of the networks"),
    ("mean_networks", "Probability mean of the networks"),
    ("rank_all", "Rank mean of every model (networks and baselines)"),
]


def cv_fit_maps(keys: list[str], epochs: int = 0) -> tuple[dict[str, FitMap], int]:
    """``fit_map`` of each chosen model (keys of :data:`CV_MODELS`) and the widest window among them; ``epochs``
    > 0 trains every network that many epochs instead of its recipe's."""
    fit_maps, widest = {}, 1
    for key in keys:
        if key in BASELINES:
            fit_maps[key] = baseline_fit_map(key)
            continue
        if key not in NETWORKS:
            raise InputError(f"Unknown model {key!r} for cross-validation; choose among "
                             f"{', '.join(k for k, _ in CV_MODELS)}.")
        recipe = NETWORKS[key]
        if epochs > 0:
            recipe = dataclasses.replace(recipe, settings=dataclasses.replace(recipe.settings, epochs=epochs))
        fit_maps[key] = network_fit_map(recipe)
        widest = max(widest, recipe.patch_size)
    return fit_maps, widest


def cv_ensembles(rules: list[str], keys: list[str]) -> dict[str, tuple[str, list[str]]]:
    """The chosen ensembles over the chosen models (an ensemble of fewer than two members is left out)."""
    networks = [k for k in keys if k in NETWORKS]
    members = {"rank_networks": ("rank", networks), "mean_networks": ("mean", networks), "rank_all": ("rank", keys)}
    return {f"ensemble_{rule}": members[rule] for rule in rules if len(members[rule][1]) >= 2}
