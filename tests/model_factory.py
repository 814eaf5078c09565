"""Tiny random-weight models, model files and evidence stacks for model and prediction tests, with per-patch
torch references of a prospectivity map."""

from __future__ import annotations

import numpy as np
import torch
from deepprospect.core.evidence.stack import band_normalisation, make_stack, write_evidence_stack
from deepprospect.core.grid import GridSpec
from deepprospect.models.onnx_io import export_onnx, make_card
from deepprospect.models.zoo import build_model, model_info

GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 50, 40, "EPSG:32650")


def randomised(model):
    """O(1) logits for a meaningful tolerance: convolutions He-normal over their fan-in (activations keep their
    scale through the trunk), linear layers at PyTorch's default scale, small random biases, batch-norm statistics
    taken from one random batch (as after training), so the exported BN folding is exercised too."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, module.in_features**-0.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
            elif isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.momentum = None  # cumulative average: after one batch, the statistics of that batch
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
        model.train()(example_inputs(model, torch.randn(model.input_shape(4), generator=generator)))
    return model


def example_inputs(model, windows: torch.Tensor):
    """What ``model`` reads for a batch of windows (or vectors): the windows, or for a two-input model the
    windows and their centre cells' vectors, as training and prediction give them."""
    if model.input_kind != "patch+vector":
        return windows
    p = windows.shape[-1]
    return windows, windows[:, :, p // 2, p // 2].contiguous()


def window_logits(model, tile: torch.Tensor) -> torch.Tensor:
    """Logits of every p×p window of ``tile`` (batch, bands, H, W), one patch at a time through ``model`` (eval):
    (batch, classes, H−p+1, W−p+1), element [..., i, j] for the window with top-left cell (i, j)."""
    p = model.patch_size
    windows = tile.unfold(2, p, 1).unfold(3, p, 1)  # (batch, bands, i, j, p, p)
    batch, bands, rows, cols = windows.shape[:4]
    with torch.no_grad():
        logits = model(windows.permute(0, 2, 3, 1, 4, 5).reshape(-1, bands, p, p))
    return logits.reshape(batch, rows, cols, -1).permute(0, 3, 1, 2)


def evidence(bands: int, grid: GridSpec = GRID, seed: int = 0) -> np.ndarray:
    """Raw (bands, rows, cols) float64 evidence: smooth fields plus noise, positive (log-ratio ready)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : grid.rows, 0 : grid.cols]
    waves = [np.sin(rows / rng.uniform(3, 9) + rng.uniform(0, 6)) * np.cos(cols / rng.uniform(3, 9))
             for _ in range(bands)]
    return np.exp(np.stack(waves) + 0.3 * rng.standard_normal((bands, grid.rows, grid.cols)))


def write_stack(path: str, raw: np.ndarray, names: list[str], grid: GridSpec = GRID, **options) -> tuple:
    """Build (``make_stack`` options, e.g. normalise="z-score") and write an evidence stack; (stack, recipe)."""
    stack, out_names, recipe = make_stack(raw, names, **options)
    write_evidence_stack(path, stack, grid, out_names, recipe)
    return stack, recipe


def write_model(path: str, name: str, band_names: list[str], patch: int, recipe: dict | None,
                grid: GridSpec = GRID, seed: int = 1, **card_options):
    """A randomised zoo model saved with its card as a DeepProspect model file; returns the model (eval)."""
    model = randomised(build_model(name, len(band_names), patch, seed=seed))
    card = make_card(name, band_names, band_normalisation(recipe, band_names), patch,
                     card_options.pop("pixel_size", (grid.pixel_width, grid.pixel_height)),
                     card_options.pop("crs", grid.crs), input_kind=model_info(name).input_kind,
                     metrics={"validation": {"auc": 0.75}}, seed=seed, **card_options)
    export_onnx(model, path, card, len(band_names), patch)
    return model.eval()


def window_probability(model, windows: np.ndarray) -> np.ndarray:
    """Per-window torch prospectivity (softmax class 1) of (n, bands, p, p) windows, fed as prediction feeds the
    model: the windows, the 1×1 windows' vectors (vector models), or the windows with their centre vectors."""
    x = torch.from_numpy(np.asarray(windows, dtype=np.float32))
    x = x.reshape(len(x), -1) if model.input_kind == "vector" else example_inputs(model, x)
    with torch.no_grad():
        return torch.softmax(model.eval()(x).double(), dim=1)[:, 1].numpy()


def padded_reference(model, stack: np.ndarray, stride: int = 1) -> np.ndarray:
    """The prediction's rule computed window by window: output cell (R, C) is the window of its own cell
    (R·s + s//2, C·s + s//2), rows r − p//2 … r − p//2 + p − 1, with values off the stack or NaN read as 0.0;
    NaN where the own cell is beyond the stack or NaN in any band."""
    p = model.patch_size
    _, rows, cols = stack.shape
    before, after = p // 2, p - 1 - p // 2
    padded = np.nan_to_num(np.pad(stack, ((0, 0), (before, after), (before, after)), constant_values=np.nan))
    own_r = np.arange(-(-rows // stride)) * stride + stride // 2
    own_c = np.arange(-(-cols // stride)) * stride + stride // 2
    out = np.full((len(own_r), len(own_c)), np.nan)
    valid = ~np.isnan(stack).any(axis=0)
    where = [(i, j) for i, r in enumerate(own_r) for j, c in enumerate(own_c) if r < rows and c < cols and valid[r, c]]
    # padded row r is stack row r − p//2: the own cell's window starts there
    windows = [padded[:, own_r[i]:own_r[i] + p, own_c[j]:own_c[j] + p] for i, j in where]
    out[tuple(np.array(where).T)] = window_probability(model, np.stack(windows))
    return out
