"""Prospectivity maps: a DeepProspect model file applied to an evidence stack, tile by tile, with onnxruntime.

**Which window each output cell is.** The sample convention of training (:mod:`core.sampling.labels`) holds: the cell
(r, c) of the stack owns the p×p window of rows r − p//2 … r − p//2 + p − 1 (columns alike). With stride s the
output grid has ⌈rows/s⌉ × ⌈cols/s⌉ cells of s×s stack cells, anchored at the stack's upper-left corner (it
reaches at most s − 1 cells beyond the stack's right and bottom edges). Output cell (R, C) covers stack rows
R·s … R·s + s − 1 and holds the prospectivity of the window of the block's cell (R·s + s//2, C·s + s//2), its
*own cell* (its centre for odd s; s = 1 is the stack grid itself). **Block mode** is stride p: output cell
(R, C) is exactly the p×p block of rows R·p … R·p + p − 1 and columns alike, one prediction per block as he2024
and gao2022 predict blocks; for vector models (p = 1) it is the stack grid.

**Padded windows.** Windows are padded as in training (:mod:`core.sampling.windows`): every value of a window that lies
outside the stack or is nodata or NaN reads :data:`~core.sampling.windows.WINDOW_FILL` (0.0, the mean of a z-scored
band), so every cell with data gets a value, up to the stack's edges and next to nodata; NaN never reaches the
model. Fast scanning sees the same numbers: a tile is read with its halo, padded where it leaves the stack,
filled, then scanned.

**Values.** Prospectivity = softmax(logits)[positive class] of the card. An output cell is nodata
(:data:`core.raster_io.NODATA`) when its own cell is nodata or NaN in any of the model's bands, lies beyond the
stack (the last row and column of a strided or block map may), or lies outside the optional study area.

**Checks.** The card's bands are taken from the stack by name, in the card's order (extra bands are ignored);
a missing or duplicated band, or a stack transformed or normalised differently from the training stack
(:func:`core.evidence.stack.normalisation_differences`), stops the run with the list of what differs. A different CRS
or pixel size only warns: the model may still be meant for it.

**Tiles.** The stack is read in windows of about ``tile_size`` × ``tile_size`` cells plus a halo of p − 1, and
the output is written tile by tile to a temporary file renamed into place, so memory stays bounded for
stacks larger than RAM and a cancel or an error leaves no file. Given a Dask scheduler address (argument
``scheduler`` or the environment variable ``DEEPPROSPECT_DASK_SCHEDULER``), the tiles are predicted by the
cluster's workers (:mod:`core.tiles`): each reads its windows from the stack and runs the model with a session,
both opened at its first tile and kept (one intra-op thread per task), with the same code and options, so the
map is the same bit for bit; the workers must read the model and the stack at the same paths. Models in the dense
layout (fast scanning, :mod:`.dense`) compute a whole tile's windows in one pass; other patch models and vector
models get batches of windows gathered from the tile. Models of two inputs (the card's ``inputs``, e.g. window
and vector) get each gathered window and its centre cell's vector, which is the window's own cell.

**Device.** onnxruntime's CUDA provider is used when onnxruntime lists it, a session actually gets it and a
tiny run works (``device="auto"``; ``"cuda"`` fails clearly otherwise), else the CPU provider with one
intra-op thread per CPU (sleeping, not spinning, when idle). The first try in a process runs with stderr
captured, so a machine without the CUDA libraries gets one log line saying why the CPU is used instead of
onnxruntime's errors, and later runs skip the CUDA provider at once. Sessions use deterministic compute (and cuDNN's
default convolution algorithm rather than a timed search), so a rerun gives the same map.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

import numpy as np
import onnxruntime as ort
import rasterio
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioIOError
from rasterio.transform import Affine
from rasterio.windows import Window
from scipy.special import softmax

from ..core.areas import CellMask
from ..core.errors import InputError, ModelError
from ..core.evidence.stack import normalisation_differences, stack_normalisation
from ..core.progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message
from ..core.raster_io import MODEL_CARD_TAG, NODATA, band_labels, geotiff_profile, read_grid_spec
from ..core.sampling.windows import WINDOW_FILL
from ..core.scoring.evaluation import check_study_area
from ..core.tiles import Tile, grid_tiles, map_tiles, scheduler_address, write_tiles
from .onnx_io import input_shapes, read_card

MODES = ("cells", "blocks")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_TILE = 256
"""Tile side in stack cells: measured fastest for LeNet fast scanning (2 cores), ~0.1 GB working memory."""
DENSE_STRIDE_FRACTION = 4
"""Fast scanning pays while stride ≤ p / this: it computes every window of a tile, s² per output cell, and
one LeNet window costs about 60 dense positions at p = 32 (measured, onnxruntime CPU); beyond, the same graph
runs on gathered p×p windows."""
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_WORKER_STACK = threading.local()  # on a Dask worker: ((path, stamp), dataset) of each thread's open stack
_CUDA_PROBE: dict[str, str] = {}  # "problem": why this process cannot get the CUDA provider, once a session tried
ALGORITHM_TAG = "DEEPPROSPECT_ALGORITHM"
PREDICTION_TAG = "DEEPPROSPECT_PREDICTION"
BAND_NAME = "prospectivity"

@dataclass
class PredictionReport:
    """What a prediction did: where, on which provider, how, and how many cells got a value."""

    output: str
    provider: str
    method: str
    rows: int
    cols: int
    pixel_size: tuple[float, float]
    valid_cells: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    architecture: str = ""  # the model card's architecture (registry name)


def predict_map(
    model_path: str,
    stack_path: str,
    output_path: str,
    *,
    mode: str = "cells",
    stride: int = 1,
    batch_size: int = 256,
    device: str = "auto",
    tile_size: int = DEFAULT_TILE,
    study_area: CellMask | np.ndarray | None = None,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
    warn: LogFn = None,
) -> PredictionReport:
    """Write the prospectivity map of ``model_path`` over the evidence stack ``stack_path`` (module docstring).

    Args:
        model_path: a DeepProspect ``.onnx`` model file.
        stack_path: the evidence stack (GeoTIFF with named bands, normally with its recipe).
        output_path: the GeoTIFF to write (float32, one band "prospectivity", nodata ``NODATA``).
        mode: ``"cells"`` (a window per output cell, see ``stride``) or ``"blocks"`` (one per p×p block).
        stride: output cell side in stack cells (mode "cells"); 1 = every cell.
        batch_size: windows per onnxruntime call when windows are gathered (not fast scanning).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        tile_size: side in stack cells of the part of the stack predicted at once (bounds memory).
        study_area: optional (rows, cols) bool mask on the stack grid; output cells whose own cell is outside
            are nodata (and not computed). Windows still read the evidence around them.
        scheduler: a Dask scheduler address: the tiles are predicted by its workers (module docstring); None
            or empty: the environment variable ``DEEPPROSPECT_DASK_SCHEDULER``, else this process.
        progress, is_cancelled, log: callbacks (0-100 progress, cancel flag, messages).
        warn: callback for warnings (CRS or pixel size unlike the training stack's, an all-nodata map);
            without it they go to ``log``. The report lists them too.

    Returns:
        A :class:`PredictionReport`.

    Raises:
        InputError: bad arguments, bands missing or duplicated, normalisation mismatch, unusable CUDA, a
            study area mask not shaped like the stack.
        ModelError: the model file is missing, damaged, foreign or does not run.
        Cancelled: the run was cancelled (no output is left).
    """
    start = time.perf_counter()
    _check_arguments(mode, stride, batch_size, device, tile_size)
    card = read_card(model_path)
    refuse_pair_model(card, model_path)
    if os.path.abspath(output_path) == os.path.abspath(stack_path):
        raise InputError("The output would overwrite the evidence stack; choose another output file.")
    patch = int(card["patch_size"])
    step = patch if mode == "blocks" else int(stride)
    warnings: list[str] = []

    def add_warning(message: str) -> None:
        warnings.append(message)
        log_message(warn or log, message)

    with _open(stack_path) as src:
        indexes = _band_indexes(card["band_names"], src, stack_path)
        _check_normalisation(card, stack_path)
        _compare_grid(card, src, add_warning)
        if src.height < patch or src.width < patch:
            raise InputError(f"The stack ({src.height} × {src.width} cells) is smaller than the model's "
                             f"{patch} × {patch} window: every window would be mostly padding. Predict on a "
                             "larger stack, or train a model with a smaller patch size.")
        study_area = check_study_area(study_area, (src.height, src.width))
        method = _method(card, step)
        address = scheduler_address(scheduler)
        if address is None:
            session, provider = open_session(model_path, card, device, log)
            compute = partial(_predict_tile, src, indexes, _TilePredictor(session, card, method, batch_size,
                                                                          is_cancelled), step)
        else:
            provider = f"the Dask workers at {address} (device {device})"
            compute = partial(_predict_tile_on_worker, _WorkerJob(
                os.path.abspath(model_path), _stamp(model_path), device, method, batch_size,
                os.path.abspath(stack_path), _stamp(stack_path), tuple(indexes), step))
        log_message(log, {"dense": "Fast scanning: each tile's windows in one pass of the dense graph.",
                          "patches": f"Windows gathered in batches of {batch_size}.",
                          "vectors": f"Cell vectors in batches of {batch_size}."}[method])
        rows, cols = math.ceil(src.height / step), math.ceil(src.width / step)
        pixel_size = (src.res[0] * step, src.res[1] * step)
        log_message(log, f"Output grid: {rows} × {cols} cells of {step} × {step} stack cells "
                         f"({'blocks of the patch size' if mode == 'blocks' else f'stride {step}'}).")
        profile = geotiff_profile(cols, rows, 1, "float32", src.crs, src.transform * Affine.scale(step, step), NODATA)
        tiles = grid_tiles(rows, cols, max(1, tile_size // step))
        tasks = (_PredictionTask(tile, _keep(study_area, tile, step)) for tile in tiles)
        done = map_tiles(compute, tasks, len(tiles), scheduler=address, progress=progress, is_cancelled=is_cancelled,
                         log=log)
        tags = _tags(card, model_path, mode, step, study_area is not None)
        valid = write_tiles(output_path, profile, [BAND_NAME], tags, ((task.tile, values) for task, values in done))
    seconds = time.perf_counter() - start
    if valid == 0:
        add_warning("No output cell lies on a stack cell with data in every model band"
                    + (" inside the study area" if study_area is not None else "") + ": the map is all nodata.")
    log_message(log, f"{valid} of {rows * cols} output cells predicted in {seconds:.1f} s on {provider}.")
    return PredictionReport(output_path, provider, method, rows, cols, pixel_size, valid, seconds, warnings,
                            str(card["architecture"]))


def open_session(model_path: str, card: dict, device: str = "auto", log: LogFn = None,
                 threads: int | None = None) -> tuple[ort.InferenceSession, str]:
    """An onnxruntime session on the CUDA provider when it really works (see the module docstring), else CPU.

    ``threads``: intra-op threads on the CPU (default: one per CPU). Returns the session and the name of the
    provider it runs on; the log says which and why.
    """
    if device not in DEVICES:
        raise InputError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.use_deterministic_compute = True
    # Idle threads sleep instead of spinning: measured 1.2-2× faster medians on a busy 2-core machine (QGIS
    # renders, other jobs run), at no cost on an idle one.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    reason = "device 'cpu' was chosen"
    if device != "cpu":
        session, reason = _cuda_session(model_path, card, options)
        if session is not None:
            log_message(log, f"onnxruntime provider: {CUDA} (the GPU session passed a test run).")
            return session, CUDA
        if device == "cuda":
            raise InputError(f"Device 'cuda' was chosen but CUDA cannot run this model: {reason}. Choose the "
                             "device 'auto' or 'cpu'.")
    session = _session(model_path, options, [CPU])
    log_message(log, f"onnxruntime provider: {CPU} with {options.intra_op_num_threads} thread(s) ({reason}).")
    return session, CPU


def _cuda_session(model_path: str, card: dict, options: ort.SessionOptions):
    """(session, "") on a working CUDA provider, else (None, why not).

    The first attempt in a process runs with stderr captured (onnxruntime prints its failure to load the CUDA
    libraries there, in red, as errors); when it fails, the reason is kept and later runs go straight to the CPU.
    """
    if CUDA not in ort.get_available_providers():
        return None, "this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
    if _CUDA_PROBE:
        return None, _CUDA_PROBE["problem"]
    cuda_options = {"cudnn_conv_algo_search": "DEFAULT"}  # a timed search may pick other kernels on a rerun
    with _captured_stderr() as captured:
        session = _session(model_path, options, [(CUDA, cuda_options), CPU])
    if CUDA not in session.get_providers():
        _CUDA_PROBE["problem"] = _cuda_problem(captured[0])
        return None, _CUDA_PROBE["problem"]
    sys.stderr.write(captured[0])  # the GPU works: whatever was printed is not about a failure, so pass it on
    try:
        session.run(None, _examples(card))
    except Exception as error:  # onnxruntime raises its own classes for CUDA failures (out of memory, kernels)
        return None, f"a test run on the GPU failed ({error})"
    return session, ""


def _cuda_problem(printed: str) -> str:
    """Why a session could not get the CUDA provider, from what onnxruntime printed while it tried."""
    reason = "onnxruntime lists the CUDA provider but a session could not get it"
    missing = re.search(r"error: (\S+): cannot open shared object file", printed)
    needs = re.search(r"Require (cuDNN \S+ and CUDA \S+)\.", printed)
    if missing:
        return (f"{reason}: the library {missing.group(1)} is missing"
                + (f"; this onnxruntime needs {needs.group(1).replace('.*', '')}" if needs else ""))
    return f"{reason} (no GPU visible, or the CUDA/cuDNN libraries that this onnxruntime needs are missing)"


@contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Send file descriptor 2 (where onnxruntime logs) to a buffer while the block runs; yields [its text] after."""
    sys.stderr.flush()
    saved = os.dup(2)
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _session(model_path: str, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model_path, options, providers=providers)
    except Exception as error:  # onnxruntime's Fail / InvalidGraph / InvalidProtobuf ...
        raise ModelError(f"onnxruntime cannot load the model {model_path}: {error}") from error


def _stamp(path: str) -> tuple[int, int]:
    """Size and modification time of a file: a worker's cached copy is reopened when they change."""
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def refuse_pair_model(card: dict, model_path: str) -> None:
    """:class:`InputError` for a pixel-pair model: it scores how unlike two cells are, not a cell's prospectivity."""
    if card["input_kind"] == "pair":
        raise InputError(
            f"{os.path.basename(model_path)} is a pixel-pair model ({card['architecture']}): it says how unlike two "
            "cells are, not how prospective one cell is, so it cannot make a prospectivity map. Apply it with "
            "'Dual-window anomaly (pixel pairs)' (deepprospect:dualwindow).")


def _examples(card: dict) -> dict[str, np.ndarray]:
    """A one-sample feed of zeros for every input of the model."""
    return {entry["name"]: np.zeros(shape, dtype=np.float32)
            for entry, shape in zip(card["inputs"], input_shapes(card))}


class _TilePredictor:
    """Prospectivity of chosen windows of one tile, by fast scanning or by batches of gathered windows."""

    def __init__(self, session: ort.InferenceSession, card: dict, method: str, batch_size: int,
                 is_cancelled: CancelFn) -> None:
        self.session = session
        # per input: name, kind and its bands' positions among the card's bands (the tile's band order)
        self.inputs = [(entry["name"], entry["kind"], [card["band_names"].index(band) for band in entry["band_names"]])
                       for entry in card["inputs"]]
        self.positive = int(card["positive_class"])
        self.patch = int(card["patch_size"])
        self.method = method
        self.batch_size = batch_size
        self.is_cancelled = is_cancelled

    def __call__(self, tile: np.ndarray, rows: np.ndarray, cols: np.ndarray, keep: np.ndarray | bool = True
                 ) -> np.ndarray:
        """(len(rows), len(cols)) float32 prospectivity of the padded windows with top-left cells ``rows`` ×
        ``cols`` of ``tile`` (bands, h, w; NaN = nodata or off the stack, overwritten with :data:`WINDOW_FILL`;
        every window inside the tile); NaN where the window's own cell is NaN or ``keep`` is False."""
        p = self.patch
        blank = np.isnan(tile)
        own = ~blank.any(axis=0)[np.ix_(rows + p // 2, cols + p // 2)] & keep
        out = np.full(own.shape, np.nan, dtype=np.float32)
        if not own.any():
            return out
        tile[blank] = WINDOW_FILL
        at_r, at_c = np.nonzero(own)
        if self.method == "dense":
            logits = self._run({self.inputs[0][0]: tile[None]})[0]  # (classes, h - p + 1, w - p + 1)
            out[at_r, at_c] = self._probability(logits[:, rows[at_r], cols[at_c]].T)
            return out
        windows = np.lib.stride_tricks.sliding_window_view(tile, (p, p), axis=(1, 2))
        for start in range(0, len(at_r), self.batch_size):
            check_cancelled(self.is_cancelled)
            r, c = at_r[start:start + self.batch_size], at_c[start:start + self.batch_size]
            batch = windows[:, rows[r], cols[c]].transpose(1, 0, 2, 3)  # (n, bands, p, p)
            out[r, c] = self._probability(self._run(self._feed(batch)).reshape(len(r), -1))
        return out

    def _feed(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Each model input from a batch of windows: the windows, or their centre cells (the windows' own cells;
        the whole 1×1 window of a vector model), over the input's bands."""
        p = self.patch
        return {name: np.ascontiguousarray(batch[:, bands] if kind == "patch" else batch[:, bands, p // 2, p // 2])
                for name, kind, bands in self.inputs}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return self.session.run(None, feed)[0]
        except Exception as error:  # onnxruntime's own classes (shape mismatch, out of memory, ...)
            shapes = ", ".join(str(value.shape) for value in feed.values())
            raise ModelError(f"The model failed on a tile of shape {shapes}: {error}") from error

    def _probability(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits.astype(np.float64), axis=1)[:, self.positive].astype(np.float32)


@dataclass(frozen=True)
class _PredictionTask:
    """One tile of the output grid and which of its cells are in the study area (True: all)."""

    tile: Tile
    keep: np.ndarray | bool


@dataclass(frozen=True)
class _WorkerJob:
    """What a Dask worker needs to predict tiles: files (same paths as here), how, and which bands."""

    model_path: str
    model_stamp: tuple[int, int]  # size and modification time (see _stamp)
    device: str
    method: str
    batch_size: int
    stack_path: str
    stack_stamp: tuple[int, int]
    indexes: tuple[int, ...]
    step: int


def _keep(study_area: CellMask | np.ndarray | None, tile: Tile, step: int) -> np.ndarray | bool:
    """Cells of an output tile whose own stack cell is in the study area (those beyond the stack: any value)."""
    if study_area is None:
        return True
    own_r = (np.arange(tile.row, tile.row + tile.height) * step + step // 2).clip(max=study_area.shape[0] - 1)
    own_c = (np.arange(tile.col, tile.col + tile.width) * step + step // 2).clip(max=study_area.shape[1] - 1)
    window = study_area[own_r[0]:own_r[-1] + 1, own_c[0]:own_c[-1] + 1]  # the tile's stack cells, read once
    return window[np.ix_(own_r - own_r[0], own_c - own_c[0])]


def _predict_tile(src, indexes: list[int], predictor: _TilePredictor, step: int, task: _PredictionTask
                  ) -> np.ndarray:
    """(height, width) float32 prospectivity of an output tile, NaN where blank: its stack cells are read with
    the windows' halo, padded beyond the stack."""
    p, tile = predictor.patch, task.tile
    # each output cell's own stack cell; its window starts p//2 rows and columns before
    tile_r = np.arange(tile.row, tile.row + tile.height) * step + step // 2 - p // 2
    tile_c = np.arange(tile.col, tile.col + tile.width) * step + step // 2 - p // 2
    top, left = int(tile_r[0]), int(tile_c[0])
    values = _read_padded(src, indexes, top, left, int(tile_r[-1]) + p - top, int(tile_c[-1]) + p - left)
    return predictor(values, tile_r - top, tile_c - left, task.keep)


def _predict_tile_on_worker(job: _WorkerJob, task: _PredictionTask) -> np.ndarray:
    """:func:`_predict_tile` on a Dask worker, with the stack and the model session the worker keeps open."""
    session, card = _worker_session(job.model_path, job.model_stamp, job.device)
    predictor = _TilePredictor(session, card, job.method, job.batch_size, None)
    return _predict_tile(_worker_stack(job.stack_path, job.stack_stamp), list(job.indexes), predictor, job.step, task)


def _worker_stack(path: str, stamp: tuple[int, int]):
    """The stack opened once per worker thread (a rasterio dataset is not shared between threads), so GDAL's
    block cache serves the halo a tile shares with the previous one; another stack or a changed file replaces it."""
    key, dataset = getattr(_WORKER_STACK, "open", (None, None))
    if key != (path, stamp):
        if dataset is not None:
            dataset.close()
        _WORKER_STACK.open = ((path, stamp), _open(path))
    return _WORKER_STACK.open[1]


@lru_cache(maxsize=4)
def _worker_session(model_path: str, model_stamp: tuple[int, int], device: str) -> tuple[ort.InferenceSession, dict]:
    """A model's session and card on this worker, opened at its first tile and kept for the next ones (an
    ensemble's models each keep theirs). One intra-op thread: the worker's threads are the parallelism."""
    card = read_card(model_path)
    return open_session(model_path, card, device, threads=1)[0], card


def _read_padded(src, indexes: list[int], top: int, left: int, height: int, width: int) -> np.ndarray:
    """(bands, height, width) float32 stack values from cell (top, left), NaN at nodata and beyond the stack."""
    tile = np.full((len(indexes), height, width), np.nan, dtype=np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, src.height), min(left + width, src.width)
    if r1 > r0 and c1 > c0:
        tile[:, r0 - top:r1 - top, c0 - left:c1 - left] = src.read(
            indexes, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True, out_dtype=np.float32).filled(np.nan)
    return tile


def _method(card: dict, step: int) -> str:
    """How windows reach the model: "dense" (fast scanning of whole tiles), "patches" or "vectors" (batches)."""
    if card["output_layout"] == "dense" and step <= max(1, int(card["patch_size"]) // DENSE_STRIDE_FRACTION):
        return "dense"
    return "vectors" if card["input_kind"] == "vector" else "patches"


def _check_arguments(mode: str, stride: int, batch_size: int, device: str, tile_size: int) -> None:
    if mode not in MODES:
        raise InputError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
    if device not in DEVICES:
        raise InputError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    for name, value in (("stride", stride), ("batch size", batch_size), ("tile size", tile_size)):
        if int(value) < 1:
            raise InputError(f"The {name} must be at least 1, not {value}.")


def _open(path: str):
    read_grid_spec(path)  # refuses rotated grids and rasters without a CRS, with the path in the message
    try:
        return rasterio.open(path)
    except RasterioIOError as error:
        raise InputError(f"Cannot open the evidence stack {path}: {error}") from error


def _band_indexes(wanted: Sequence[str], src, path: str) -> list[int]:
    """1-based stack band numbers of the card's bands, by name, in the card's order."""
    names = band_labels(path, src.descriptions)
    missing = [name for name in wanted if name not in names]
    duplicated = sorted({name for name in wanted if names.count(name) > 1})
    if missing or duplicated:
        problem = "; ".join(filter(None, (
            f"it lacks {', '.join(missing)}" if missing else "",
            f"it has more than one band named {', '.join(duplicated)}" if duplicated else "",
        )))
        raise InputError(f"The stack does not fit the model: {problem}. The model needs the bands "
                         f"{', '.join(wanted)}; the stack has {', '.join(names)}. Build the stack with the same "
                         "bands (names) as the training stack.")
    return [names.index(name) + 1 for name in wanted]


def _check_normalisation(card: dict, path: str) -> None:
    differences = normalisation_differences(card["normalisation"], stack_normalisation(path, card["band_names"]))
    if differences:
        raise InputError(
            "The stack was not transformed and normalised like the model's training stack, so the model would "
            f"read different numbers: {'; '.join(differences)}. Rebuild the stack with the training stack's "
            "recipe ('Build evidence stack' with the same transform and normalisation statistics)."
        )


def _compare_grid(card: dict, src, warn: Callable[[str], None]) -> None:
    try:
        same_crs = CRS.from_user_input(card["crs"]) == src.crs
    except CRSError:
        same_crs = False
    if not same_crs:
        warn(f"The model was trained on a stack in another CRS ({str(card['crs'])[:60]}) than this stack "
             f"({src.crs.to_string()[:60]}).")
    trained = card.get("pixel_size") or []
    if len(trained) == 2 and not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(trained, src.res)):
        warn(f"The model was trained on {trained[0]:g} × {trained[1]:g} pixels, this stack has "
             f"{src.res[0]:g} × {src.res[1]:g}: each window covers a different ground area than in training.")


def _tags(card: dict, model_path: str, mode: str, step: int, study_area: bool) -> dict:
    model = {"architecture": card["architecture"], "metrics": card.get("metrics", {}),
             "band_names": card["band_names"], "seed": card.get("seed"),
             "model_file": os.path.basename(model_path), "patch_size": card["patch_size"]}
    prediction = {"mode": mode, "stride": step,
                  "window": "output cell (R, C) = window of stack cell (R*stride + stride//2, C*stride + "
                            "stride//2), rows r - p//2 .. r - p//2 + p - 1",
                  "padding": "window values outside the stack or on nodata read window_fill; a cell that is "
                             "itself nodata (any model band) or outside the study area is nodata",
                  "window_fill": WINDOW_FILL, "study_area": study_area}
    return {ALGORITHM_TAG: "predict", MODEL_CARD_TAG: json.dumps(model), PREDICTION_TAG: json.dumps(prediction)}


