"""Ensembles of prospectivity maps (he2024): averages and votes of N maps on one grid, with uncertainty.

Every member is a one-band probability raster (0–1) on the same grid (shape, transform, CRS). A cell that is
nodata in any member, or outside the optional study area, is nodata in the outputs and counts nowhere.
he2024 compares five combination rules; here, with p_i the members' probabilities, w_i their weights
(normalised to sum 1) and v_i = [p_i ≥ threshold] their votes for the prospective class:

===================  ===================================  ========================  ===========================
rule                 ensemble map                         prospective cell when     uncertainty map
===================  ===================================  ========================  ===========================
simple average       mean p_i (a probability)             map ≥ threshold           population std of p_i
weighted average     Σ w_i p_i (a probability)            map ≥ threshold           weighted std √Σ w_i(p_i−m)²
majority voting      vote share s = mean v_i              s > 1/2                   1 − agreement
plurality voting     vote share s = mean v_i              s ≥ 1/2                   1 − agreement
weighted voting      weighted vote share Σ w_i v_i        Σ w_i v_i ≥ 1/2           1 − weighted agreement
===================  ===================================  ========================  ===========================

*Agreement* is the (weighted) share of members whose vote equals the ensemble class, so the uncertainty of
a voting rule is the share of members that disagree with the ensemble: 0 when all members agree, at most 1/2.

With two classes, majority and plurality voting differ only on ties (an even number of members split half
and half): majority voting needs more than half of the votes, so a tie is not prospective (he2024: the
majority rule refuses to call a class without a majority); plurality voting gives the tie to the
prospective class, so it flags every cell majority voting flags plus the tied ones (he2024 Table 2: 47
ore-bearing areas by plurality, 42 by majority). With an odd number of members the two rules agree.
Weighted voting breaks a tie of the weighted votes (within 1e-9 of 1/2) the same way as plurality voting.

Weights are given, or taken from each member's model card (the JSON dataset tag :data:`MODEL_CARD_TAG`
that ``deepprospect:predict`` writes): the validation accuracy, AUC or F1 of the model, so better-validated
models count more. he2024 weights its six models by their accuracy ("grading according to precision"; the
weighted rules "take into account the prediction accuracy of different models") without a formula, so the
weight of a member is its accuracy divided by the sum of the members' accuracies. The card's *validation*
split is used, never its test split: the test split is kept to judge the ensemble afterwards, and weights
read from it would let the test deposits shape the ensemble they then score. Rasters are processed window by window (the
first member's blocks), so memory stays bounded whatever the raster size.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window

from ..areas import CellMask
from ..errors import InputError
from ..outputs import atomic_path
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import ENSEMBLE_TAG, MODEL_CARD_TAG, NODATA, geotiff_profile
from ..scoring.evaluation import check_study_area
from .maps import DEFAULT_WINDOW_CELLS, check_probabilities, check_threshold, map_windows, open_map

METHODS = ("average", "weighted_average", "majority_vote", "plurality_vote", "weighted_vote")
WEIGHTED = frozenset({"weighted_average", "weighted_vote"})
VOTES = frozenset({"majority_vote", "plurality_vote", "weighted_vote"})
# weight sources: a validation metric from each member's model card, or weights given by the user
WEIGHT_SOURCES = ("auc", "f1", "given", "accuracy")
CARD_METRICS = {"auc": "AUC", "f1": "F1", "accuracy": "accuracy"}  # weight source -> its name in messages
CLASS_NODATA = 255
MAP_QUANTITY = {
    "average": "mean probability of the members",
    "weighted_average": "weighted mean probability of the members",
    "majority_vote": "share of members voting prospective (probability >= threshold)",
    "plurality_vote": "share of members voting prospective (probability >= threshold)",
    "weighted_vote": "weighted share of members voting prospective (probability >= threshold)",
}
UNCERTAINTY_QUANTITY = {
    "average": "population standard deviation of the members' probabilities",
    "weighted_average": "weighted standard deviation of the members' probabilities",
    "majority_vote": "share of members disagreeing with the ensemble class",
    "plurality_vote": "share of members disagreeing with the ensemble class",
    "weighted_vote": "weighted share of members disagreeing with the ensemble class",
}
_TIE_TOLERANCE = 1e-9  # weighted vote shares within this of 1/2 are ties (float sums of weights)


@dataclass(frozen=True)
class EnsembleSummary:
    """What a run produced: members, normalised weights, and prospective cells per member and for the ensemble.

    The member counts and the ensemble's are he2024's Table 2 measure of how much the models disagree.
    """

    members: list[str]
    weights: list[float]
    valid_cells: int
    member_prospective: list[int]
    ensemble_prospective: int
    mean_uncertainty: float


def combine(
    probabilities: np.ndarray, method: str, weights: Sequence[float] | None = None, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine (members, ...) probabilities by ``method``; NaN (nodata) in any member gives NaN.

    Returns (ensemble map, uncertainty, ensemble class as 1.0 prospective / 0.0 not / NaN nodata), each
    shaped like one member; see the module docstring for each rule. ``weights`` (one per member, normalised
    here) are used by the weighted rules only.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    _check_method(method)
    check_threshold(threshold)
    count_members = probabilities.shape[0]
    if count_members < 2:
        raise InputError(f"An ensemble needs at least two maps (got {count_members}).")
    w = normalise_weights(weights if method in WEIGHTED else np.ones(count_members), count_members)
    w = w.reshape((count_members,) + (1,) * (probabilities.ndim - 1))
    nodata = np.isnan(probabilities).any(axis=0)
    if method in VOTES:
        votes = probabilities >= threshold
        if method == "weighted_vote":
            value = np.sum(w * votes, axis=0)
            prospective = value >= 0.5 - _TIE_TOLERANCE
        else:  # whole vote counts, so a tie is exact
            count = votes.sum(axis=0)
            value = count / count_members
            prospective = 2 * count > count_members if method == "majority_vote" else 2 * count >= count_members
        uncertainty = np.where(prospective, 1.0 - value, value)  # the (weighted) share voting the other class
    else:
        value = np.sum(w * probabilities, axis=0)
        uncertainty = np.sqrt(np.sum(w * (probabilities - value) ** 2, axis=0))
        prospective = value >= threshold
    classes = prospective.astype(np.float64)
    for array in (value, uncertainty, classes):
        array[nodata] = np.nan
    return value, uncertainty, classes


def normalise_weights(weights: Sequence[float] | np.ndarray | None, count: int) -> np.ndarray:
    """Weights as a float array summing to 1; one per member, finite, ≥ 0, not all 0 (else InputError)."""
    if weights is None:
        raise InputError("The weighted rules need one weight per map; give weights or take them from model cards.")
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != count:
        raise InputError(f"{w.size} weight(s) for {count} maps: give exactly one weight per map, in the maps' order.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError(f"Weights must be finite numbers ≥ 0 (got {', '.join(f'{v:g}' for v in w)}).")
    if w.sum() <= 0:
        raise InputError("All weights are 0: give at least one map a positive weight.")
    return w / w.sum()


def parse_weights(text: str) -> list[float]:
    """Weights from text such as ``"0.9, 0.8 0.85"`` (commas, semicolons or spaces between numbers)."""
    items = [item for item in text.replace(";", ",").replace(",", " ").split() if item]
    try:
        return [float(item) for item in items]
    except ValueError as error:
        raise InputError(f"Weights must be numbers separated by commas (got '{text}').") from error


def card_weights(paths: Sequence[str], metric: str) -> list[float]:
    """The validation ``metric`` (a key of :data:`CARD_METRICS`) of each map's model card, in the maps' order."""
    if metric not in CARD_METRICS:
        raise InputError(f"Unknown card metric '{metric}'; choose {', '.join(CARD_METRICS)}.")
    label = CARD_METRICS[metric]
    weights = []
    for path in paths:
        with rasterio.open(path) as src:
            text = src.tags().get(MODEL_CARD_TAG)
        name = os.path.basename(path)
        if text is None:
            raise InputError(f"'{name}' has no model card (tag {MODEL_CARD_TAG}), so it has no validation {label}: "
                             "give the weights yourself (weight source 'given weights'), one per map.")
        try:
            value = json.loads(text)["metrics"]["validation"][metric]
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"The model card of '{name}' has no validation {label}; give the weights yourself "
                             "(weight source 'given weights').") from error
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"The model card of '{name}' records no validation {label} (e.g. a validation split "
                             "with one class, or a card written before the metric was recorded); choose another "
                             "metric or give the weights yourself.")
        weights.append(float(value))
    return weights


def check_same_grid(paths: Sequence[str]) -> None:
    """Raise InputError naming the first map whose size, transform or CRS differs from the first map's."""
    if len(paths) < 2:
        raise InputError(f"An ensemble needs at least two maps (got {len(paths)}).")
    fix = ("Predict every model on the same evidence stack, or align the maps to one grid first (Raster ▸ "
           "Align Rasters, or deepprospect:evidencestack with a template).")
    with ExitStack() as stack:
        sources = [stack.enter_context(open_map(path)) for path in paths]
        first = sources[0]
        tolerance = 1e-6 * min(abs(first.transform.a), abs(first.transform.e))
        for path, src in zip(paths, sources):
            name, reference = os.path.basename(path), os.path.basename(paths[0])
            if src.count != 1:
                raise InputError(f"'{name}' has {src.count} bands; a prospectivity map has one band. Give the "
                                 "one-band maps written by prediction.")
            if (src.height, src.width) != (first.height, first.width):
                raise InputError(f"'{name}' has {src.height} × {src.width} cells but '{reference}' has "
                                 f"{first.height} × {first.width}. {fix}")
            if any(abs(a - b) > tolerance for a, b in zip(src.transform[:6], first.transform[:6])):
                raise InputError(f"'{name}' is not on the grid of '{reference}' (origin or pixel size differ: "
                                 f"{tuple(src.transform[:6])} vs {tuple(first.transform[:6])}). {fix}")
            if src.crs != first.crs:
                raise InputError(f"'{name}' is in {_crs_name(src.crs)} but '{reference}' in "
                                 f"{_crs_name(first.crs)}. {fix}")


def ensemble_rasters(
    paths: Sequence[str],
    output: str,
    method: str,
    *,
    weights: Sequence[float] | None = None,
    weight_source: str | None = None,
    threshold: float = 0.5,
    uncertainty: str | None = None,
    classes: str | None = None,
    window_cells: int = DEFAULT_WINDOW_CELLS,
    study_area: CellMask | np.ndarray | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> EnsembleSummary:
    """Combine the maps at ``paths`` into ``output`` (and the optional uncertainty and class rasters).

    ``weight_source`` (how the weights were chosen, e.g. "validation accuracy (model cards)") is recorded in the
    tag next to the weights. ``study_area`` is an optional (rows, cols) bool mask on the maps' grid: cells outside
    it are nodata in every output and are not counted in the summary.

    Windows are the first map's blocks (strips of whole blocks up to ``window_cells`` for untiled maps).
    Outputs are float32 with nodata :data:`~.raster_io.NODATA` (classes: uint8, 1 prospective, 0 not,
    :data:`CLASS_NODATA`) and carry a JSON tag :data:`ENSEMBLE_TAG` recording the rule, members and weights.
    Nothing is written unless every window succeeds. Values outside 0–1 stop the run (not a probability map).
    """
    _check_method(method)
    check_threshold(threshold)
    check_same_grid(paths)
    members = {os.path.realpath(path) for path in paths}
    for path in filter(None, (output, uncertainty, classes)):
        if os.path.realpath(path) in members:
            raise InputError(f"The output {path} is one of the input maps; choose another file name.")
    w = normalise_weights(weights if method in WEIGHTED else np.ones(len(paths)), len(paths))
    record = {"algorithm": "ensemble", "method": method, "threshold": threshold, "study_area": study_area is not None,
              "members": [os.path.basename(p) for p in paths], "weights": w.tolist() if method in WEIGHTED else None,
              "weights_from": weight_source if method in WEIGHTED else None,
              "map": MAP_QUANTITY[method], "uncertainty": UNCERTAINTY_QUANTITY[method]}
    tags = {ENSEMBLE_TAG: json.dumps(record), "DEEPPROSPECT_ALGORITHM": "ensemble"}
    member_counts = np.zeros(len(paths), dtype=np.int64)
    member_cells = np.zeros(len(paths), dtype=np.int64)  # cells with data per member (inside the study area)
    valid = prospective = 0
    uncertainty_sum = 0.0
    with ExitStack() as stack:
        sources = [stack.enter_context(open_map(path)) for path in paths]
        # (path, band name, data type, nodata, quantity, index in combine's results)
        outputs = [(output, "prospectivity", "float32", NODATA, MAP_QUANTITY[method], 0),
                   (uncertainty, "uncertainty", "float32", NODATA, UNCERTAINTY_QUANTITY[method], 1),
                   (classes, "ensemble_class", "uint8", CLASS_NODATA, "1 = prospective, 0 = not", 2)]
        sinks, src0 = [], sources[0]
        inside = check_study_area(study_area, (src0.height, src0.width))
        for path, band, dtype, nodata, quantity, result in outputs:
            if not path:
                continue
            sink = stack.enter_context(rasterio.open(stack.enter_context(atomic_path(path)), "w",
                                                     **geotiff_profile(src0.width, src0.height, 1, dtype, src0.crs,
                                                                     src0.transform, nodata)))
            sink.set_band_description(1, band)
            sink.update_tags(**tags)
            sink.update_tags(1, QUANTITY=quantity)
            sinks.append((sink, nodata, result))
        windows = list(map_windows(sources[0], window_cells))
        for done, window in enumerate(windows, start=1):
            check_cancelled(is_cancelled)
            block = np.stack([_read_probabilities(src, path, window) for src, path in zip(sources, paths)])
            if inside is not None:
                block[:, ~inside[window.toslices()]] = np.nan
            member_cells += np.isfinite(block).sum(axis=(1, 2))
            results = combine(block, method, w, threshold)
            has_data = ~np.isnan(results[0])
            valid += int(has_data.sum())
            member_counts += np.sum((block >= threshold) & has_data, axis=(1, 2))
            prospective += int(np.sum(results[2] == 1.0))
            uncertainty_sum += float(np.sum(results[1][has_data]))
            for sink, nodata, result in sinks:
                sink.write(np.where(np.isnan(results[result]), nodata, results[result]).astype(sink.dtypes[0]), 1,
                           window=window)
            report(progress, 100.0 * done / len(windows))
        _check_some_data(paths, member_cells, valid, inside is not None)
    return EnsembleSummary([os.path.basename(p) for p in paths], w.tolist(), valid, member_counts.tolist(),
                           prospective, uncertainty_sum / valid if valid else math.nan)


def _check_some_data(paths: Sequence[str], member_cells: np.ndarray, valid: int, has_study_area: bool) -> None:
    """Refuse an ensemble without any cell with data, naming the members that have none (nothing is written)."""
    if valid:
        return
    where = " inside the study area" if has_study_area else ""
    empty = [os.path.basename(path) for path, cells in zip(paths, member_cells) if cells == 0]
    if empty:
        raise InputError(f"The map(s) {', '.join(empty)} have no cell with data{where} (every cell is nodata), so "
                         "the ensemble would be empty. Check their nodata value, or leave them out of the maps.")
    raise InputError(f"The maps have no cell{where} where all of them hold data, so the ensemble would be empty. "
                     "Give maps predicted on the same evidence stack.")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"Unknown ensemble method '{method}'; choose one of {', '.join(METHODS)}.")


def _crs_name(crs) -> str:
    if crs is None:
        return "no CRS"
    return crs.to_string() or "an unnamed CRS"


def _read_probabilities(src, path: str, window: Window) -> np.ndarray:
    """One window of band 1 as float64, NaN at nodata; values outside 0–1 are refused."""
    values = src.read(1, window=window, masked=True).astype(np.float64).filled(np.nan)
    finite = values[np.isfinite(values)]
    if finite.size:
        check_probabilities(os.path.basename(path), finite.min(), finite.max())
    return values
