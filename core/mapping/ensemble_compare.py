"""Prospective area of ensemble members and ensemble rules, split by known ground, and its spread (he2024 Table 2).

he2024 compares six models and five ensemble rules by the number of areas each calls ore-bearing, split into
known ore-bearing areas, unknown areas and known non-ore areas, and summarises each group (members, rules) by a
"standard deviation" and a "coefficient of variation". Recomputed from the printed counts, those figures are
the **mean absolute deviation** about the mean, MAD = mean |x_i − mean x|, and MAD / mean (e.g. the members'
ore-bearing areas 49, 58, 45, 43, 49, 45 give MAD 3.83 and 0.08 as printed, where the standard deviation would
be 4.91 or 5.38); so :func:`spread` computes those and names them for what they are:
``mean_absolute_deviation`` and ``relative_mean_absolute_deviation`` (0 when every value is equal).

Here each map's prospective cells are counted on the grid shared by all maps:

* a member map (probabilities 0–1) is prospective where probability ≥ the threshold;
* an ensemble map written by ``deepprospect:ensemble`` is read by its rule (the JSON tag
  :data:`~.raster_io.ENSEMBLE_TAG`): a mean probability ≥ the threshold for the averages; a vote share
  > 1/2 (majority), ≥ 1/2 (plurality, weighted voting) for the votes, whose members voted at the threshold
  recorded in the tag; an ensemble class raster (band ``ensemble_class``) where it holds 1. A map without
  the tag is read as probabilities.

Cells are *deposit* cells (holding a deposit point), *barren* cells (holding a barren point or with their
centre in a barren polygon, unless they hold a deposit) or *other* cells. Only cells where every map has a
value (and inside the optional study area) count, so every map faces the same cells. Maps are read window by
window (the first map's blocks), so memory stays a few windows whatever the size of the maps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from ..areas import CellMask
from ..errors import InputError
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import ENSEMBLE_TAG, read_grid_spec
from ..sampling.labels import point_cells
from .anomaly import cell_area_km2
from .ensemble import VOTES, _read_probabilities, check_same_grid
from .maps import DEFAULT_WINDOW_CELLS, check_threshold, map_windows, open_map
from .streaming import check_study_area

MEMBER, ENSEMBLE = "member", "ensemble"
CATEGORIES = ("deposit", "other", "barren")  # cell categories, in the order of he2024 Table 2's columns
STATISTICS = ("mean", "mean_absolute_deviation", "relative_mean_absolute_deviation")
RULE_LABELS = {"average": "simple average", "weighted_average": "weighted average", "majority_vote": "majority voting",
               "plurality_vote": "plurality voting", "weighted_vote": "weighted voting"}
_SHARE_TOLERANCE = 1e-6  # float32 rounding of a stored weighted vote share of exactly 1/2
_DEPOSIT, _OTHER, _BARREN = range(3)


@dataclass(frozen=True)
class Spread:
    """he2024's spread of a group's counts: the mean, the mean absolute deviation and MAD / mean."""

    mean: float
    mean_absolute_deviation: float
    relative_mean_absolute_deviation: float


@dataclass(frozen=True)
class AreaRow:
    """Prospective cells of one map: in all, and in deposit, other and barren cells."""

    group: str  # MEMBER or ENSEMBLE
    name: str
    rule: str
    prospective: int
    by_category: dict[str, int]


@dataclass
class Comparison:
    """Every map's prospective cells, the spread per group, and the cells they were counted on."""

    rows: list[AreaRow]
    spreads: dict[str, dict[str, Spread]]  # group -> "prospective" or a category -> spread
    cells: dict[str, int]  # cells of each category where every map has a value
    cell_km2: float
    threshold: float
    notes: list[str] = field(default_factory=list)


def spread(values: Sequence[float]) -> Spread:
    """Mean, mean absolute deviation about the mean, and MAD / mean (0 when all values are equal) of ``values``.

    These are what he2024 Table 2 prints as "standard deviation" and "coefficient of variation".
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise InputError("The spread of an empty group is undefined.")
    mean = float(x.mean())
    mad = float(np.abs(x - mean).mean())
    return Spread(mean, mad, mad / mean if mad > 0 else 0.0)


def compare_areas(
    members: Sequence[str],
    ensembles: Sequence[str] = (),
    deposit_xy: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
    barren_xy: np.ndarray | None = None,
    barren_area: CellMask | np.ndarray | None = None,
    study_area: CellMask | np.ndarray | None = None,
    window_cells: int = DEFAULT_WINDOW_CELLS,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> Comparison:
    """Count the prospective cells of every member and ensemble map (see the module docstring).

    ``deposit_xy`` and ``barren_xy`` are (n, 2) points in the maps' CRS; ``barren_area`` and ``study_area`` are
    optional (rows, cols) bool masks on the maps' grid (barren polygons, the study area).

    Raises:
        InputError: fewer than two members, maps on different grids, a map that is not a probability map or an
            ensemble output, no deposit on the maps, or no cell where every map has a value.
    """
    check_threshold(threshold)
    if len(members) < 2:
        raise InputError(f"Comparing members needs at least two member maps (got {len(members)}).")
    paths = [*members, *ensembles]
    check_same_grid(paths)
    grid = read_grid_spec(paths[0])
    notes: list[str] = []
    rules = [_member_rule(threshold) for _ in members] + [_ensemble_rule(path, threshold, notes) for path in ensembles]
    deposits = _cells(deposit_xy, grid, "deposit", notes)
    if deposits.size == 0:
        raise InputError("No deposit lies on the maps' grid; check that the deposits cover the maps and that their "
                         "layer has the right CRS.")
    barren = _cells(barren_xy, grid, "barren point", notes)
    inside = check_study_area(study_area, grid.shape)
    barren_area = check_study_area(barren_area, grid.shape)
    counts = np.zeros((len(paths), len(CATEGORIES)), dtype=np.int64)
    cells = np.zeros(len(CATEGORIES), dtype=np.int64)
    partial = 0
    with ExitStack() as stack:
        sources = [stack.enter_context(open_map(path)) for path in paths]
        windows = list(map_windows(sources[0], window_cells))
        for done, window in enumerate(windows, start=1):
            check_cancelled(is_cancelled)
            block = np.stack([_read_probabilities(src, path, window) for src, path in zip(sources, paths)])
            has_value = ~np.isnan(block)
            common = has_value.all(axis=0)
            if inside is not None:
                common &= inside[window.toslices()]
            partial += int((has_value.any(axis=0) & ~common).sum())
            category = _categories(window, grid.cols, deposits, barren,
                                   None if barren_area is None else barren_area[window.toslices()])[common]
            cells += np.bincount(category, minlength=len(CATEGORIES))
            for index, (values, rule) in enumerate(zip(block, rules)):
                counts[index] += np.bincount(category[rule[1](values[common])], minlength=len(CATEGORIES))
            report(progress, 100.0 * done / len(windows))
    if cells.sum() == 0:
        raise InputError("There is no cell where every map has a value (inside the study area); give maps predicted "
                         "on the same evidence stack, or check the study area.")
    if partial:
        notes.append(f"{partial} cell(s) with a value in some maps only were left out, so every map is counted on "
                     f"the same {int(cells.sum())} cells.")
    if cells[_DEPOSIT] == 0:
        notes.append("No deposit lies on a cell where every map has a value: the deposit columns are 0.")
    names = [os.path.basename(path) for path in paths]
    groups = [MEMBER] * len(members) + [ENSEMBLE] * len(ensembles)
    rows = [AreaRow(group, name, rule[0], int(row.sum()), dict(zip(CATEGORIES, map(int, row))))
            for group, name, rule, row in zip(groups, names, rules, counts)]
    spreads = {group: _group_spread([row for row in rows if row.group == group])
               for group in (MEMBER, ENSEMBLE) if group in groups}
    return Comparison(rows, spreads, dict(zip(CATEGORIES, map(int, cells))), cell_area_km2(grid), float(threshold),
                      notes)


def table_rows(comparison: Comparison) -> list[dict]:
    """The comparison as flat rows (one per map, then the spread rows of each group), for a table or CSV.

    Columns: group, map, rule, statistic, then cells and km² for prospective, deposit, other and barren.
    """
    columns = ("prospective", *CATEGORIES)
    rows = [{"group": "all cells", "map": "", "rule": "cells where every map has a value", "statistic": "count",
             **_measures(comparison, {"prospective": sum(comparison.cells.values()), **comparison.cells})}]
    for row in comparison.rows:
        rows.append({"group": row.group, "map": row.name, "rule": row.rule, "statistic": "count",
                     **_measures(comparison, {"prospective": row.prospective, **row.by_category})})
    for group, by_column in comparison.spreads.items():
        for statistic in STATISTICS:
            values = {column: getattr(by_column[column], statistic) for column in columns}
            relative = statistic == "relative_mean_absolute_deviation"  # a ratio: the same for cells and km²
            rows.append({"group": group, "map": "", "rule": "", "statistic": statistic,
                         **_measures(comparison, values, scale=not relative)})
    return rows


def _measures(comparison: Comparison, values: dict[str, float], scale: bool = True) -> dict[str, float]:
    """``{column}_cells`` and ``{column}_km2`` of each value."""
    factor = comparison.cell_km2 if scale else 1.0
    return {**{f"{column}_cells": float(value) for column, value in values.items()},
            **{f"{column}_km2": float(value) * factor for column, value in values.items()}}


def _group_spread(rows: Sequence[AreaRow]) -> dict[str, Spread]:
    return {"prospective": spread([row.prospective for row in rows]),
            **{category: spread([row.by_category[category] for row in rows]) for category in CATEGORIES}}


def _member_rule(threshold: float) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    return f"probability ≥ {threshold:g}", lambda values: values >= threshold


def _ensemble_rule(path: str, threshold: float, notes: list[str]) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """(description, prospective-cell test) of an ensemble output, from its tag and band name."""
    name = os.path.basename(path)
    with open_map(path) as src:
        text, band = src.tags().get(ENSEMBLE_TAG), src.descriptions[0]
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    method = record.get("method") if isinstance(record, dict) else None
    label = RULE_LABELS.get(method, "ensemble")
    if band == "uncertainty":
        raise InputError(f"'{name}' is an ensemble uncertainty map; give the ensemble map or its class raster.")
    if band == "ensemble_class":
        return f"{label}: class raster = 1", lambda values: values == 1
    if method in VOTES:
        voted_at = record.get("threshold")
        if voted_at is not None and voted_at != threshold:
            notes.append(f"'{name}': the members voted at probability ≥ {voted_at:g} (its ensemble run), not "
                         f"{threshold:g}.")
        if method == "majority_vote":
            return f"{label}: vote share > 1/2", lambda values: values > 0.5
        return f"{label}: vote share ≥ 1/2", lambda values: values >= 0.5 - _SHARE_TOLERANCE
    if method is None:
        notes.append(f"'{name}' has no ensemble record (tag {ENSEMBLE_TAG}); it is read as probabilities.")
    return f"{label}: probability ≥ {threshold:g}", lambda values: values >= threshold


def _cells(xy: np.ndarray | None, grid, what: str, notes: list[str]) -> np.ndarray:
    """Distinct flat indices of the cells holding the points; points off the grid are noted."""
    if xy is None or len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    rows, cols, inside = point_cells(xy, grid)
    if not inside.all():
        notes.append(f"{int((~inside).sum())} {what}(s) outside the maps were left out.")
    return np.unique(rows[inside] * grid.cols + cols[inside])


def _categories(window, cols: int, deposits: np.ndarray, barren: np.ndarray,
                barren_area: np.ndarray | None) -> np.ndarray:
    """Category (deposit / other / barren) of each cell of ``window``; a deposit wins over barren."""
    category = np.full((window.height, window.width), _OTHER, dtype=np.int64)
    if barren_area is not None:
        category[barren_area] = _BARREN
    for cells, value in ((barren, _BARREN), (deposits, _DEPOSIT)):
        rows, columns = np.divmod(cells, cols)
        inside = ((rows >= window.row_off) & (rows < window.row_off + window.height) &
                  (columns >= window.col_off) & (columns < window.col_off + window.width))
        category[rows[inside] - window.row_off, columns[inside] - window.col_off] = value
    return category
