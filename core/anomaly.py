"""Anomaly classes by cumulative area, and ranked target zones, from a prospectivity map.

zhang2021 draws its map in classes of cumulative area: the 5 % of the study area with the highest values
(high anomaly), the next 10 % (moderate) and the next 15 % (low), and reports that the top 5 % held about
75 % of the known deposits. Rules used here:

* **Classes**: with limits L1 < L2 < … (percent of the valid area), class k holds the cells ranked, from the
  highest value down, between Lk−1 % and Lk % of the valid cells; class 1 is the highest. Every other valid
  cell is **background, class 0** (so class numbers grow away from the best ground and "classes 1 … k" is
  simply ``1 <= class <= k``); nodata is :data:`CLASS_NODATA`.
* **Thresholds** come from the map's own value distribution: the top Lk % is ``round(Lk · n / 100)`` cells
  (n valid cells, halves rounded up), and its threshold tk is the value of the last of those cells in
  descending order. A cell belongs to the first class whose threshold it reaches (value ≥ tk), so without
  ties every class holds exactly its share. **Ties**: equal values always share a class; when cells tied
  with tk straddle the cut, all of them go to the higher class, which then holds more than its share and
  the next class less (a note says so, and the table gives the real areas). A class can end up empty.
* **Deposits captured**: each deposit counts in the class of the cell that holds it (two deposits in one
  cell count twice); shares are of the deposits on valid cells, those outside the map or on nodata are
  noted and left out.
* **Targets**: connected zones of cells in classes 1 … k (8-connectivity: cells touching at a corner belong
  to one zone, :func:`scipy.ndimage.label`), zones smaller than a minimum area dropped, ranked by their
  mean value (ties by larger area, then by position in the raster). Each is vectorised with
  :func:`rasterio.features.shapes` in 4-connectivity, so a zone whose cells meet only at corners becomes
  a MultiPolygon of edge-connected parts (valid geometry) rather than a self-touching polygon. The centroid
  is the mean of the zone's cell centres (it may fall outside a curved zone).

* **Study area** (optional): cells whose centre lies outside are nodata: they count in no class, share or
  threshold, and deposits on them are noted and left out.

Areas are in km², so the map must be in a projected CRS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.errors import CRSError
from rasterio.features import shapes
from rasterio.transform import Affine
from scipy import ndimage

from .errors import InputError
from .evaluation import check_study_area
from .grid import GridSpec
from .labels import point_cells
from .memory import check_memory
from .progress import CancelFn, check_cancelled
from .raster_io import crs_from_string

DEFAULT_CLASS_LIMITS = (5.0, 15.0, 30.0)
BACKGROUND_CLASS = 0
CLASS_NODATA = 255
MAX_CLASSES = 254
CLASS_TAG = "DEEPPROSPECT_ANOMALY_CLASSES"
# Bytes per cell while classifying: the float64 map, its sorted valid values, int64 ranks and codes, masks.
_BYTES_PER_CELL = 8 + 8 + 8 + 8 + 8 + 4
# Extra bytes per cell while finding targets: zone and rank labels (int32), masks, centre-of-mass products.
_TARGET_BYTES_PER_CELL = 4 + 4 + 4 + 16


@dataclass(frozen=True)
class ClassRow:
    """One row of the class table (``cls`` 0 is the background)."""

    cls: int
    name: str
    from_pct: float  # target cumulative area, upper end of the class (0 for class 1)
    to_pct: float
    threshold: float  # a cell is in this class or a higher one when its value >= threshold (NaN: no cell by count)
    min_value: float  # values actually in the class (NaN when empty)
    max_value: float
    cells: int
    area_km2: float
    area_pct: float
    deposits: int
    deposit_pct: float  # of the deposits on valid cells (NaN when there are none)


@dataclass
class AnomalyClasses:
    """A classified map and its table."""

    classes: np.ndarray  # (rows, cols) uint8: 1 = highest … K, BACKGROUND_CLASS, CLASS_NODATA
    limits: tuple[float, ...]
    thresholds: list[float]  # per class 1 … K; +inf for a class holding no cell by count
    table: list[ClassRow]
    valid_cells: int
    deposits_on_map: int
    notes: list[str] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        """Metadata for the classified raster: limits, thresholds and the class coding."""
        return {CLASS_TAG: json.dumps({
            "limits_pct": list(self.limits),
            "thresholds": [t if math.isfinite(t) else None for t in self.thresholds],  # None: empty by count
            "background_class": BACKGROUND_CLASS, "nodata": CLASS_NODATA,
            "rule": "class k: value >= threshold k and below threshold k-1; ties go to the higher class",
        })}


@dataclass(frozen=True)
class Target:
    """One ranked target zone; ``geometry`` is a GeoJSON-like Polygon or MultiPolygon in the map CRS."""

    rank: int
    mean_value: float
    max_value: float
    cells: int
    area_km2: float
    deposits: int
    centroid: tuple[float, float]
    geometry: dict


def parse_class_limits(text: str) -> tuple[float, ...]:
    """Class limits from text such as ``"5, 15, 30"`` (percent of area), checked by :func:`check_class_limits`."""
    try:
        limits = tuple(float(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError as error:
        raise InputError(f"The class limits '{text}' are not numbers; give cumulative area percentages such as "
                         "5,15,30.") from error
    return check_class_limits(limits)


def check_class_limits(limits: Sequence[float]) -> tuple[float, ...]:
    """Limits as floats: at least one, each in (0, 100], strictly increasing."""
    limits = tuple(float(limit) for limit in limits)
    if not limits:
        raise InputError("Give at least one class limit (cumulative area percentage), such as 5,15,30.")
    if len(limits) > MAX_CLASSES:
        raise InputError(f"At most {MAX_CLASSES} classes are possible; got {len(limits)} limits.")
    if not all(0 < limit <= 100 for limit in limits):
        raise InputError(f"Class limits are percentages of the area and must lie in (0, 100]; got "
                         f"{', '.join(f'{limit:g}' for limit in limits)}.")
    if any(b <= a for a, b in zip(limits, limits[1:])):
        raise InputError(f"Class limits must increase (cumulative area from the highest values down), "
                         f"such as 5,15,30; got {', '.join(f'{limit:g}' for limit in limits)}.")
    return limits


def class_names(limits: Sequence[float]) -> dict[int, str]:
    """Display name of each class: ``{1: "top 5 %", 2: "5–15 %", …, 0: "background (30–100 %)"}``."""
    names = {1: f"top {limits[0]:g} %"}
    names.update({k + 1: f"{a:g}–{b:g} %" for k, (a, b) in enumerate(zip(limits, limits[1:]), start=1)})
    names[BACKGROUND_CLASS] = f"background ({limits[-1]:g}–100 %)"
    return names


def cell_area_km2(grid: GridSpec) -> float:
    """Area of one cell in km² (the CRS must be projected)."""
    crs = crs_from_string(grid.crs)
    if crs.is_geographic:
        raise InputError("The map is in a geographic CRS, where a cell has no fixed area; reproject it to a "
                         "projected CRS (e.g. the UTM zone of the study area) first.")
    try:
        metres = crs.linear_units_factor[1]
    except CRSError as error:
        raise InputError(f"The map's CRS has no linear unit, so areas cannot be measured: {error}") from error
    return grid.pixel_width * grid.pixel_height * metres**2 / 1e6


def classify(values: np.ndarray, grid: GridSpec, limits: Sequence[float] = DEFAULT_CLASS_LIMITS,
             deposit_xy: np.ndarray | None = None, study_area: np.ndarray | None = None) -> AnomalyClasses:
    """Classes by cumulative area of a (rows, cols) map with NaN as nodata (see the module docstring).

    ``study_area`` is an optional (rows, cols) bool mask: cells outside it are nodata (class and counts).

    Raises:
        InputError: bad limits, a map or study area shape that differs from the grid, no valid cell, or a
            constant map.
    """
    limits = check_class_limits(limits)
    cell_km2 = cell_area_km2(grid)
    check_memory(_BYTES_PER_CELL * grid.cell_count, f"Classifying a map of {grid.rows} × {grid.cols} cells",
                 "Classify a map with larger cells or a smaller extent")
    inside = check_study_area(study_area, grid.shape)
    values = _checked_map(values if inside is None else np.where(inside, values, np.nan), grid)
    valid = ~np.isnan(values)
    n = int(valid.sum())
    ordered = np.sort(values[valid])[::-1]
    counts = [math.floor(limit * n / 100 + 0.5) for limit in limits]
    thresholds = [float(ordered[c - 1]) if c else math.inf for c in counts]
    # Number of thresholds a value reaches: all K → class 1, none → background.
    reached = np.searchsorted(np.array(thresholds[::-1]), values[valid], side="right")
    code = np.where(reached == 0, BACKGROUND_CLASS, len(limits) + 1 - reached)
    classes = np.full(values.shape, CLASS_NODATA, dtype=np.uint8)
    classes[valid] = code
    notes: list[str] = []
    deposit_class = _deposit_classes(deposit_xy, grid, classes, inside is not None, notes)
    table = _table(values, classes, limits, thresholds, counts, deposit_class, cell_km2, notes)
    return AnomalyClasses(classes, limits, thresholds, table, n, len(deposit_class), notes)


def find_targets(values: np.ndarray, classes: np.ndarray, grid: GridSpec, target_classes: int = 1,
                 min_area_km2: float = 0.0, deposit_xy: np.ndarray | None = None,
                 is_cancelled: CancelFn = None) -> tuple[list[Target], list[str]]:
    """Ranked connected zones of classes 1 … ``target_classes`` at least ``min_area_km2`` large, and notes.

    Raises:
        InputError: ``target_classes`` below 1, or a negative minimum area.
    """
    if target_classes < 1:
        raise InputError(f"Targets are zones of classes 1 … k with k ≥ 1 (got {target_classes}).")
    if min_area_km2 < 0:
        raise InputError(f"The minimum target area must be 0 or more (got {min_area_km2:g} km²).")
    cell_km2 = cell_area_km2(grid)
    values = _checked_map(values, grid)
    check_memory(_TARGET_BYTES_PER_CELL * grid.cell_count, f"Target zones on {grid.rows} × {grid.cols} cells",
                 "Use a map with larger cells or a smaller extent")
    notes: list[str] = []
    zones, count = ndimage.label((classes >= 1) & (classes <= target_classes) & (classes != CLASS_NODATA),
                                 structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        notes.append(f"No cell is in classes 1 … {target_classes}; there is no target.")
        return [], notes
    check_cancelled(is_cancelled)
    index = np.arange(1, count + 1)
    cells = np.bincount(zones.ravel(), minlength=count + 1)[1:]
    area = cells * cell_km2
    means = np.asarray(ndimage.mean(values, zones, index))
    maxima = np.asarray(ndimage.maximum(values, zones, index))
    centres = np.asarray(ndimage.center_of_mass(zones > 0, zones, index)).reshape(-1, 2)
    deposits = np.zeros(count + 1, dtype=np.int64)
    if deposit_xy is not None and len(deposit_xy):
        rows, cols, inside = point_cells(deposit_xy, grid)
        deposits = np.bincount(zones[rows[inside], cols[inside]], minlength=count + 1)
    keep = area >= min_area_km2
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} of {count} zone(s) smaller than {min_area_km2:g} km² were dropped.")
    order = [i for i in np.lexsort((index, -area, -means)) if keep[i]]
    rank_of_zone = np.zeros(count + 1, dtype=np.int32)
    rank_of_zone[np.asarray(order, dtype=np.int64) + 1] = np.arange(1, len(order) + 1)
    geometries = _polygons(rank_of_zone[zones], grid, is_cancelled)
    targets = [Target(rank=rank, mean_value=float(means[i]), max_value=float(maxima[i]), cells=int(cells[i]),
                      area_km2=float(area[i]), deposits=int(deposits[i + 1]),
                      centroid=(float(grid.x_min + (centres[i, 1] + 0.5) * grid.pixel_width),
                                float(grid.y_max - (centres[i, 0] + 0.5) * grid.pixel_height)),
                      geometry=geometries[rank])
               for rank, i in enumerate(order, start=1)]
    return targets, notes


def _checked_map(values: np.ndarray, grid: GridSpec) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != grid.shape:
        raise InputError(f"The map {values.shape} does not match its grid {grid.shape}.")
    if np.isinf(values).any():
        values = np.where(np.isinf(values), np.nan, values)
    if np.isnan(values).all():
        raise InputError("The map has no valid cell (every cell is nodata); check the raster and its nodata value.")
    low, high = np.nanmin(values), np.nanmax(values)
    if low == high:
        raise InputError(f"The map has the same value ({low:g}) everywhere, so its cells cannot be ranked into "
                         "classes; check that it is a prospectivity map.")
    return values


def _deposit_classes(deposit_xy, grid, classes, has_study_area, notes) -> np.ndarray:
    """The class of each deposit on a valid cell; the others are noted."""
    if deposit_xy is None or len(deposit_xy) == 0:
        return np.zeros(0, dtype=np.uint8)
    rows, cols, inside = point_cells(deposit_xy, grid)
    found = classes[rows[inside], cols[inside]]
    if (~inside).any():
        notes.append(f"{int((~inside).sum())} deposit(s) outside the map were not counted.")
    if (found == CLASS_NODATA).any():
        blank = "nodata cells or outside the study area" if has_study_area else "nodata cells"
        notes.append(f"{int((found == CLASS_NODATA).sum())} deposit(s) on {blank} were not counted.")
    return found[found != CLASS_NODATA]


def _table(values, classes, limits, thresholds, counts, deposit_class, cell_km2, notes) -> list[ClassRow]:
    names = class_names(limits)
    cells = np.bincount(classes.ravel(), minlength=CLASS_NODATA + 1)
    found = np.bincount(deposit_class, minlength=CLASS_NODATA + 1)
    n, n_deposits = int(cells[:CLASS_NODATA].sum()), len(deposit_class)
    rows = []
    bounds = [0.0, *limits, 100.0]
    for cls in [*range(1, len(limits) + 1), BACKGROUND_CLASS]:
        members = values[classes == cls]
        k = cls if cls else len(limits) + 1
        wanted = (counts[k - 1] if cls else n) - (counts[k - 2] if k > 1 else 0)
        if cls and cells[cls] != wanted:
            notes.append(f"Class {cls} ({names[cls]}) holds {cells[cls]} cell(s) instead of {wanted}: cells with "
                         "equal values share a class, and values tied at a threshold go to the higher class.")
        rows.append(ClassRow(
            cls=cls, name=names[cls], from_pct=bounds[k - 1], to_pct=bounds[k],
            threshold=_finite_or_nan(thresholds[cls - 1]) if cls else float(np.nanmin(values)),
            min_value=float(members.min()) if members.size else math.nan,
            max_value=float(members.max()) if members.size else math.nan,
            cells=int(cells[cls]), area_km2=float(cells[cls] * cell_km2), area_pct=float(100.0 * cells[cls] / n),
            deposits=int(found[cls]), deposit_pct=float(100.0 * found[cls] / n_deposits) if n_deposits else math.nan))
    return rows


def _finite_or_nan(value: float) -> float:
    return float(value) if math.isfinite(value) else math.nan


def _polygons(ranks: np.ndarray, grid: GridSpec, is_cancelled: CancelFn) -> dict[int, dict]:
    """GeoJSON-like (Multi)Polygon per rank of a raster of ranks (0 = no target)."""
    transform = Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max)
    parts: dict[int, list] = {}
    for count, (geometry, rank) in enumerate(shapes(ranks, mask=ranks > 0, connectivity=4, transform=transform)):
        if count % 1000 == 0:
            check_cancelled(is_cancelled)
        parts.setdefault(int(rank), []).append(geometry["coordinates"])
    return {rank: {"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1
            else {"type": "MultiPolygon", "coordinates": rings} for rank, rings in parts.items()}
