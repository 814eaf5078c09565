"""Dual-window anomaly detection with a pixel-pair model (zhang2021, section 4.3 and Fig. 7; Liu & Chang 2013).

**Score.** For a cell T, the ring is every cell inside the outer window (``outer`` × ``outer`` cells centred on
T) and outside the inner window (``inner`` × ``inner``); both sides are odd. The pair model scores each pair
(T, ring cell) — T's element vector first, the ring cell's second, as in :mod:`.pairs` — and D(T) is the mean
probability of "dissimilar" over the ring: near 1 where T differs from its surroundings (an anomaly), near 0 in
homogeneous background. Inner 3 / outer 5 gives zhang2021's 16 pairs; its best map used 13 / 35 (1,056 pairs).
A ring stride k > 1 keeps the ring cells whose row and column offsets are both multiples of k (about k² times
fewer pairs, a coarser but symmetric sample of the ring).

**Nodata and edges.** A cell that is nodata or NaN in any of the model's bands gets no value; ring cells that
are nodata or off the stack are skipped (the mean is over the ring cells with data); a cell with no such ring
cell gets no value.

**Tiles.** The stack is read in windows of ``tile_size`` × ``tile_size`` cells plus a halo of ``outer // 2``
(rasterio windows, NaN beyond the stack; by default sized to about :data:`PAIRS_PER_TILE` pairs, so progress
and cancel stay responsive with large rings), and the map is written tile by tile to a temporary file renamed into
place, so a cancel or an error leaves no file. Each onnxruntime call scores ``batch_size`` pairs or more (whole
rings); the provider is chosen as for prospectivity maps (:func:`.inference.open_session`: CUDA when it works).

**Cost.** The pixel-pair CNN needs about 0.3 M multiply-adds per pair for 39 bands, so a 13 / 35 ring costs
about 0.3 G per cell: a megacell is ~3·10¹⁴ operations, hours on a laptop CPU, minutes on a GPU; the ring
stride divides this by about k².

**Window sweep** (zhang2021, Figs. 8-9): :func:`sweep_windows` computes the map for several (inner, outer)
pairs and scores each against deposit points with the ROC AUC of :func:`core.scoring.evaluation.evaluate_map` (the
deposits' cells against every other cell with data); each map is held in memory while it is scored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.special import softmax

from ..core.errors import InputError
from ..core.progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message
from ..core.raster_io import MODEL_CARD_TAG, NODATA, geotiff_profile, read_grid_spec
from ..core.scoring.evaluation import evaluate_map
from ..core.tables import write_csv
from ..core.tiles import Tile, assemble, grid_tiles, map_tiles, write_tiles
from .inference import (
    ALGORITHM_TAG,
    _band_indexes,
    _check_normalisation,
    _compare_grid,
    _open,
    _read_padded,
    open_session,
)
from .onnx_io import read_card

BAND_NAME = "dissimilarity"
DUAL_WINDOW_TAG = "DEEPPROSPECT_DUAL_WINDOW"
DEFAULT_BATCH = 16384
PAIRS_PER_TILE = 2_000_000
"""Default tile: about this many pairs (some 3 minutes on a 2-core CPU), between 16 and 256 cells a side."""
PAPER_WINDOWS = ((5, 7), (5, 9), (5, 11), (5, 13), (7, 35), (9, 35), (11, 35), (13, 35))
"""The (inner, outer) window pairs of zhang2021's Figs. 8 and 9."""
SWEEP_COLUMNS = ("inner", "outer", "ring_stride", "ring_cells", "auc", "deposits", "cells", "seconds")

PairScorer = Callable[[np.ndarray], np.ndarray]
"""(n, 2, bands) float32 pairs → (n,) probabilities of "dissimilar"."""


@dataclass
class DualWindowReport:
    """What a dual-window run did: where, on which provider, the ring, and how many cells got a value."""

    output: str
    provider: str
    ring_cells: int
    valid_cells: int
    seconds: float
    warnings: list[str]


def ring_offsets(inner: int, outer: int, stride: int = 1) -> np.ndarray:
    """(n, 2) int (row, col) offsets of the ring between the ``inner`` and ``outer`` windows (module docstring)."""
    for name, value in (("inner", inner), ("outer", outer)):
        if int(value) < 1 or int(value) % 2 == 0:
            raise InputError(f"The {name} window must be an odd number of cells (1, 3, 5, …), not {value}.")
    if not inner < outer:
        raise InputError(f"The outer window ({outer}) must be larger than the inner window ({inner}).")
    if int(stride) < 1:
        raise InputError(f"The ring stride must be at least 1, not {stride}.")
    reach = outer // 2
    dr, dc = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    keep = (np.maximum(abs(dr), abs(dc)) > inner // 2) & (dr % stride == 0) & (dc % stride == 0)
    if not keep.any():
        raise InputError(f"A ring stride of {stride} leaves no cell between the {inner} and {outer} windows; "
                         "lower the stride or widen the ring.")
    return np.stack((dr[keep], dc[keep]), axis=1).astype(np.int64)


def dissimilarity(values: np.ndarray, cells: tuple[np.ndarray, np.ndarray], offsets: np.ndarray,
                  score_pairs: PairScorer, batch_size: int = DEFAULT_BATCH,
                  is_cancelled: CancelFn = None) -> np.ndarray:
    """D(T) of the cells ``cells`` (rows, cols in ``values``) of ``values`` (bands, H, W; NaN = nodata).

    Every ring cell of a computed cell must lie inside ``values`` (read with a halo of the outer reach).
    ``score_pairs`` maps (n, 2, bands) float32 pairs to (n,) probabilities of "dissimilar". Returns (n,)
    float32, NaN where the cell is nodata or has no ring cell with data.
    """
    rows, cols = (np.asarray(a, dtype=np.int64) for a in cells)
    out = np.full(len(rows), np.nan, dtype=np.float32)
    vectors = np.ascontiguousarray(np.moveaxis(values, 0, -1), dtype=np.float32)  # (H, W, bands)
    valid = ~np.isnan(vectors).any(axis=-1)
    todo = np.flatnonzero(valid[rows, cols])
    per_batch = max(1, batch_size // len(offsets))
    for start in range(0, len(todo), per_batch):
        check_cancelled(is_cancelled)
        chosen = todo[start:start + per_batch]
        ring_r = rows[chosen, None] + offsets[None, :, 0]
        ring_c = cols[chosen, None] + offsets[None, :, 1]
        usable = valid[ring_r, ring_c]
        owner, slot = np.nonzero(usable)
        if not len(owner):
            continue
        pairs = np.stack((vectors[rows[chosen[owner]], cols[chosen[owner]]],
                          vectors[ring_r[owner, slot], ring_c[owner, slot]]), axis=1)
        total = np.bincount(owner, weights=score_pairs(pairs), minlength=len(chosen))
        count = usable.sum(axis=1)
        has = count > 0
        out[chosen[has]] = (total[has] / count[has]).astype(np.float32)
    return out


class OnnxPairScorer:
    """P(dissimilar) of pairs by an onnxruntime session of a pair model."""

    def __init__(self, session, card: dict) -> None:
        self.session, self.input_name, self.positive = session, card["input_name"], int(card["positive_class"])

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {self.input_name: pairs})[0]
        return softmax(logits.astype(np.float64), axis=1)[:, self.positive]


def check_pair_card(card: dict, model_path: str) -> None:
    """:class:`InputError` unless the card is a pixel-pair model's."""
    if card["input_kind"] != "pair":
        raise InputError(f"{os.path.basename(model_path)} is a {card['input_kind']} model ({card['architecture']}), "
                         "not a pixel-pair model: apply it with 'Prospectivity map', or train a pair model "
                         "(architecture ppf_cnn1d, preset zhang2021) for the dual-window detector.")


@dataclass
class _Scan:
    """An open run: the stack, the model card, the provider, the ring, and the scored tiles (lazy)."""

    src: object
    card: dict
    provider: str
    offsets: np.ndarray
    tiles: Iterator[tuple[Tile, np.ndarray]]


@contextmanager
def _scan(model_path: str, stack_path: str, inner: int, outer: int, ring_stride: int, batch_size: int, device: str,
          tile_size: int | None, progress: ProgressFn, is_cancelled: CancelFn, log: LogFn,
          warn: LogFn) -> Iterator[_Scan]:
    """Check the model, the stack and the windows, open a session, and give the tiles to score."""
    offsets = ring_offsets(inner, outer, ring_stride)
    if tile_size is None:
        tile_size = int(np.clip(np.sqrt(PAIRS_PER_TILE / len(offsets)), 16, 256))
    for name, value in (("batch size", batch_size), ("tile size", tile_size)):
        if int(value) < 1:
            raise InputError(f"The {name} must be at least 1, not {value}.")
    card = read_card(model_path)
    check_pair_card(card, model_path)
    with _open(stack_path) as src:
        indexes = _band_indexes(card["band_names"], src, stack_path)
        _check_normalisation(card, stack_path)
        _compare_grid(card, src, warn)
        session, provider = open_session(model_path, card, device, log)
        log_message(log, f"Ring between the {inner} × {inner} and {outer} × {outer} windows"
                         f"{f', stride {ring_stride}' if ring_stride > 1 else ''}: {len(offsets)} pairs per cell.")
        compute = partial(_tile_values, src, indexes, offsets, OnnxPairScorer(session, card), batch_size,
                          is_cancelled)
        tiles = grid_tiles(src.height, src.width, tile_size)
        yield _Scan(src, card, provider, offsets,
                    map_tiles(compute, tiles, len(tiles), progress=progress, is_cancelled=is_cancelled))


def dual_window_map(model_path: str, stack_path: str, output_path: str, *, inner: int = 13, outer: int = 35,
                    ring_stride: int = 1, batch_size: int = DEFAULT_BATCH, device: str = "auto",
                    tile_size: int | None = None, progress: ProgressFn = None, is_cancelled: CancelFn = None,
                    log: LogFn = None, warn: LogFn = None) -> DualWindowReport:
    """Write the dual-window dissimilarity map D(T) of a pair model over an evidence stack (module docstring).

    The stack's bands are taken by name in the card's order and its normalisation checked as for prospectivity
    maps (:func:`.inference.predict_map`). Output: float32 GeoTIFF, band "dissimilarity", nodata ``NODATA``.

    Raises:
        InputError: not a pair model, bands missing, normalisation mismatch, bad windows or sizes.
        ModelError: the model file is missing, damaged or does not run.
        Cancelled: the run was cancelled (no output is left).
    """
    start = time.perf_counter()
    if os.path.abspath(output_path) == os.path.abspath(stack_path):
        raise InputError("The output would overwrite the evidence stack; choose another output file.")
    warnings: list[str] = []

    def add_warning(message: str) -> None:
        warnings.append(message)
        log_message(warn or log, message)

    with _scan(model_path, stack_path, inner, outer, ring_stride, batch_size, device, tile_size, progress,
               is_cancelled, log, add_warning) as scan:
        src = scan.src
        profile = geotiff_profile(src.width, src.height, 1, "float32", src.crs, src.transform, NODATA)
        tags = _tags(scan.card, model_path, inner, outer, ring_stride, len(scan.offsets))
        valid = write_tiles(output_path, profile, [BAND_NAME], tags, scan.tiles)
    seconds = time.perf_counter() - start
    if valid == 0:
        add_warning("No cell has data in every model band with a ring cell that has data too: the map is all "
                    "nodata.")
    log_message(log, f"{valid} cells scored in {seconds:.1f} s on {scan.provider} "
                     f"({seconds / max(valid, 1) * 1e6:.0f} s per megacell).")
    return DualWindowReport(output_path, scan.provider, len(scan.offsets), valid, seconds, warnings)


def sweep_windows(model_path: str, stack_path: str, deposits_xy: np.ndarray, table_path: str,
                  windows: Sequence[tuple[int, int]] = PAPER_WINDOWS, *, ring_stride: int = 1,
                  batch_size: int = DEFAULT_BATCH, device: str = "auto", tile_size: int | None = None,
                  progress: ProgressFn = None, is_cancelled: CancelFn = None, log: LogFn = None) -> list[dict]:
    """The map of each (inner, outer) window pair scored by its ROC AUC against ``deposits_xy`` (n, 2, the
    stack's CRS): rows of :data:`SWEEP_COLUMNS`, also written to the CSV ``table_path`` (zhang2021, Fig. 9).

    Each map is held in memory (4 bytes per cell) while it is scored, and none is written.
    """
    if not len(windows):
        raise InputError("Give at least one (inner, outer) window pair to sweep.")
    for inner, outer in windows:
        ring_offsets(inner, outer, ring_stride)  # bad pairs fail before any map is computed
    grid = read_grid_spec(stack_path)
    rows = []
    for index, (inner, outer) in enumerate(windows):
        share = None if progress is None else (lambda p, i=index: progress((i + p / 100.0) * 100.0 / len(windows)))
        start = time.perf_counter()
        with _scan(model_path, stack_path, inner, outer, ring_stride, batch_size, device, tile_size, share,
                   is_cancelled, None, lambda message: None) as scan:
            values = assemble(grid.shape, scan.tiles)
        evaluation = evaluate_map(values, grid, deposits_xy, is_cancelled=is_cancelled)
        scored = evaluation.sets[0]
        rows.append({"inner": inner, "outer": outer, "ring_stride": ring_stride, "ring_cells": len(scan.offsets),
                     "auc": scored.roc.auc, "deposits": scored.n_positive, "cells": evaluation.valid_cells,
                     "seconds": round(time.perf_counter() - start, 3)})
        log_message(log, f"Windows {inner} / {outer} ({len(scan.offsets)} pairs per cell): AUC "
                         f"{scored.roc.auc:.4f}.")
    write_csv(table_path, SWEEP_COLUMNS, ([row[c] for c in SWEEP_COLUMNS] for row in rows))
    return rows


def parse_windows(text: str) -> list[tuple[int, int]]:
    """Window pairs written ``inner,outer; inner,outer …`` (e.g. ``5,7; 13,35``)."""
    pairs = []
    for part in filter(None, (p.strip() for p in text.replace("\n", ";").split(";"))):
        numbers = [p.strip() for p in part.split(",")]
        if len(numbers) != 2 or not all(n.isdigit() for n in numbers):
            raise InputError(f"Cannot read the window pair {part!r}: write pairs as 'inner,outer', separated by "
                             "semicolons, e.g. '5,7; 13,35'.")
        pairs.append((int(numbers[0]), int(numbers[1])))
    return pairs


def _tile_values(src, indexes: list[int], offsets: np.ndarray, score_pairs: PairScorer, batch_size: int,
                 is_cancelled: CancelFn, tile: Tile) -> np.ndarray:
    """(height, width) float32 D(T) of one tile, read with the ring's halo (NaN beyond the stack)."""
    halo = int(np.abs(offsets).max())
    values = _read_padded(src, indexes, tile.row - halo, tile.col - halo, tile.height + 2 * halo,
                          tile.width + 2 * halo)
    rows, cols = np.mgrid[halo:halo + tile.height, halo:halo + tile.width]
    scores = dissimilarity(values, (rows.ravel(), cols.ravel()), offsets, score_pairs, batch_size, is_cancelled)
    return scores.reshape(tile.height, tile.width)


def _tags(card: dict, model_path: str, inner: int, outer: int, ring_stride: int, ring_cells: int) -> dict:
    model = {"architecture": card["architecture"], "metrics": card.get("metrics", {}),
             "band_names": card["band_names"], "seed": card.get("seed"), "model_file": os.path.basename(model_path)}
    detector = {"inner": inner, "outer": outer, "ring_stride": ring_stride, "ring_cells": ring_cells,
                "value": "mean P(dissimilar) of (cell, ring cell) pairs over the ring cells with data",
                "paper": "Zhang et al. 2021 (pixel-pair features + CNN, dual-window detector)"}
    return {ALGORITHM_TAG: "dualwindow", MODEL_CARD_TAG: json.dumps(model), DUAL_WINDOW_TAG: json.dumps(detector)}

