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
  mean value (means equal to 12 decimals are ties, broken by larger area, then by position in the raster).
  Each is vectorised with :func:`rasterio.features.shapes` in 4-connectivity, so a zone whose cells meet
  only at corners becomes a MultiPolygon of edge-connected parts (valid geometry) rather than a
  self-touching polygon. The centroid is the mean of the zone's cell centres (it may fall outside a curved
  zone).

* **Study area** (optional): cells whose centre lies outside are nodata: they count in no class, share or
  threshold, and deposits on them are noted and left out.

Areas are in km², so the map must be in a projected CRS.

The map is read window by window, never whole (:mod:`.streaming`): the thresholds are exact order statistics
(a histogram pass brackets them, a second pass collects the few values in the bracketing bins), the classes
are written one window at a time, and the targets are labelled tile by tile and joined across tile edges
(:func:`.streaming.label_zones`, the same zones and numbering as labelling the whole map). Their outlines
come from GDAL's polygonizer run on a temporary raster of target ranks, which it reads line by line.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.errors import CRSError
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.windows import Window

from ..areas import CellMask
from ..errors import InputError, ResourceError
from ..grid import GridSpec
from ..memory import check_memory
from ..outputs import atomic_path
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import crs_from_string, geotiff_profile
from ..sampling.labels import point_cells
from .streaming import (
    MapSource,
    Summary,
    ZoneFn,
    Zones,
    as_map_source,
    label_zones,
    order_statistics,
    tile_labels,
    valid_values,
)

DEFAULT_CLASS_LIMITS = (5.0, 15.0, 30.0)
BACKGROUND_CLASS = 0
CLASS_NODATA = 255
MAX_CLASSES = 254
CLASS_TAG = "DEEPPROSPECT_ANOMALY_CLASSES"
TARGET_CONNECTIVITY = 8  # cells touching at a corner belong to one target zone
_MEAN_DECIMALS = 12  # target means equal to this many decimals are ties (sums over tiles differ in the last bits)
_BYTES_PER_VERTEX = 120  # a polygon vertex as GeoJSON-like Python (a tuple of two floats in a list), with margin


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
    """The class thresholds of a map and its table; :meth:`classes_of` classifies values."""

    limits: tuple[float, ...]
    thresholds: list[float]  # per class 1 … K; +inf for a class holding no cell by count
    table: list[ClassRow]
    valid_cells: int
    deposits_on_map: int
    notes: list[str] = field(default_factory=list)

    def classes_of(self, values: np.ndarray) -> np.ndarray:
        """uint8 classes of map values: 1 = highest … K, :data:`BACKGROUND_CLASS`, :data:`CLASS_NODATA` for NaN."""
        values = np.asarray(values, dtype=np.float64)
        # Number of thresholds a value reaches: all K → class 1, none → background.
        reached = np.searchsorted(np.array(self.thresholds[::-1]), values, side="right")
        classes = np.where(reached == 0, BACKGROUND_CLASS, len(self.limits) + 1 - reached).astype(np.uint8)
        classes[np.isnan(values)] = CLASS_NODATA
        return classes

    def target_threshold(self, target_classes: int) -> float:
        """The value at which a cell is in classes 1 … ``target_classes`` (+inf when they hold no cell)."""
        if not 1 <= target_classes <= len(self.limits):
            raise InputError(f"Targets are zones of classes 1 … k with k ≥ 1 and at most the {len(self.limits)} "
                             f"class(es) of the limits (got {target_classes}).")
        return self.thresholds[target_classes - 1]

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


def classify(values: np.ndarray | MapSource, grid: GridSpec, limits: Sequence[float] = DEFAULT_CLASS_LIMITS,
             deposit_xy: np.ndarray | None = None, study_area: CellMask | np.ndarray | None = None, *,
             is_cancelled: CancelFn = None, progress: ProgressFn = None) -> AnomalyClasses:
    """Class thresholds and table of a map on ``grid`` (a (rows, cols) array with NaN as nodata, or a
    :class:`~.streaming.MapSource`), see the module docstring; :func:`write_class_raster` writes the classes.

    ``study_area`` is an optional (rows, cols) bool mask: cells outside it are nodata (class and counts). The
    map is read in windows: once for its count and range, usually twice for the exact thresholds (once for a map
    of up to :data:`~.streaming.COLLECT_VALUES` cells) and once for the table; deposits are read by point.

    Raises:
        InputError: bad limits, a map or study area shape that differs from the grid, no valid cell, or a
            constant map.
    """
    limits = check_class_limits(limits)
    cell_km2 = cell_area_km2(grid)
    source = as_map_source(values, grid, study_area)
    summary = Summary()
    for _, block in source.scan(is_cancelled, _part(progress, 0, 30)):
        summary.add(valid_values(block))
    if summary.count == 0:
        raise InputError("The map has no valid cell (every cell is nodata); check the raster and its nodata value.")
    if summary.low == summary.high:
        raise InputError(f"The map has the same value ({summary.low:g}) everywhere, so its cells cannot be ranked "
                         "into classes; check that it is a prospectivity map.")
    n = summary.count
    counts = [math.floor(limit * n / 100 + 0.5) for limit in limits]
    top = [count for count in counts if count]
    found, _ = order_statistics(source, [n - count for count in top], summary, is_cancelled=is_cancelled,
                                progress=_part(progress, 30, 70))
    thresholds = [float(found[top.index(count)]) if count else math.inf for count in counts]
    result = AnomalyClasses(limits, thresholds, [], n, 0)
    deposit_class = _deposit_classes(deposit_xy, grid, source, result, result.notes)
    result.deposits_on_map = len(deposit_class)
    result.table = _table(source, result, counts, deposit_class, cell_km2, summary.low, is_cancelled,
                          _part(progress, 70, 100))
    return result


def write_class_raster(path: str, values: np.ndarray | MapSource, grid: GridSpec, result: AnomalyClasses, *,
                       study_area: CellMask | np.ndarray | None = None, is_cancelled: CancelFn = None,
                       progress: ProgressFn = None) -> None:
    """Write the classes of the map (uint8, nodata :data:`CLASS_NODATA` also outside the study area, tagged) one
    window at a time."""
    source = as_map_source(values, grid, study_area)
    transform = Affine.from_gdal(*grid.geotransform)
    profile = geotiff_profile(grid.cols, grid.rows, 1, "uint8", crs_from_string(grid.crs), transform, CLASS_NODATA)
    with atomic_path(path) as temporary:
        try:
            with rasterio.open(temporary, "w", **profile) as dst:
                dst.set_band_description(1, "anomaly_class")
                dst.update_tags(**result.tags())
                for window, block in source.scan(is_cancelled, progress):
                    dst.write(result.classes_of(block), 1, window=window)
        except rasterio.errors.RasterioIOError as error:
            raise ResourceError(f"Could not write {path}: {error}") from error


def find_targets(values: np.ndarray | MapSource, grid: GridSpec, classes: AnomalyClasses, target_classes: int = 1,
                 min_area_km2: float = 0.0, deposit_xy: np.ndarray | None = None, *,
                 study_area: CellMask | np.ndarray | None = None, is_cancelled: CancelFn = None,
                 progress: ProgressFn = None) -> tuple[list[Target], list[str]]:
    """Ranked connected zones of classes 1 … ``target_classes`` at least ``min_area_km2`` large, and notes.

    ``values`` and ``study_area`` are those ``classes`` were computed from. The map is read twice in windows:
    to label the zones and total their statistics, then to write their ranks to a temporary raster that GDAL's
    polygonizer outlines them from.

    Raises:
        InputError: ``target_classes`` outside 1 … K, or a negative minimum area.
    """
    threshold = classes.target_threshold(target_classes)
    if min_area_km2 < 0:
        raise InputError(f"The minimum target area must be 0 or more (got {min_area_km2:g} km²).")
    cell_km2 = cell_area_km2(grid)
    source = as_map_source(values, grid, study_area)
    notes: list[str] = []

    def in_zone(block: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return block >= threshold  # NaN (nodata) never is

    totals = _ZoneTotals(grid, source, deposit_xy)
    zones = label_zones(source, in_zone, TARGET_CONNECTIVITY, totals.add, is_cancelled=is_cancelled,
                        progress=_part(progress, 0, 45))
    if zones.count == 0:
        notes.append(f"No cell is in classes 1 … {target_classes}; there is no target.")
        return [], notes
    stats = totals.per_zone(zones)
    cells = stats.cells
    area = cells * cell_km2
    means = stats.total / cells
    keep = area >= min_area_km2
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} of {zones.count} zone(s) smaller than {min_area_km2:g} km² were "
                     "dropped.")
    check_memory(int(_BYTES_PER_VERTEX * stats.sides[keep].sum()), f"Outlining {int(keep.sum())} target zone(s)",
                 "Raise the minimum target area or take fewer target classes, so fewer and smaller zones are "
                 "outlined")
    index = np.arange(zones.count)
    order = [i for i in np.lexsort((index, -area, -np.round(means, _MEAN_DECIMALS))) if keep[i]]
    rank_of_zone = np.zeros(zones.count + 1, dtype=np.int32)
    rank_of_zone[np.asarray(order, dtype=np.int64) + 1] = np.arange(1, len(order) + 1)
    geometries = _polygons(source, in_zone, zones, rank_of_zone, is_cancelled, _part(progress, 45, 100))
    targets = [Target(rank=rank, mean_value=float(means[i]), max_value=float(stats.maximum[i]), cells=int(cells[i]),
                      area_km2=float(area[i]), deposits=int(stats.deposits[i]),
                      centroid=(float(grid.x_min + (stats.col_sum[i] / cells[i] + 0.5) * grid.pixel_width),
                                float(grid.y_max - (stats.row_sum[i] / cells[i] + 0.5) * grid.pixel_height)),
                      geometry=geometries[rank])
               for rank, i in enumerate(order, start=1)]
    return targets, notes


@dataclass(frozen=True)
class _ZoneStats:
    """Per zone 1 … count (index 0 = zone 1): cells, value sum and maximum, sums of row and column indices,
    deposits inside, and cell sides on its outline (an upper bound of its polygons' vertices)."""

    cells: np.ndarray
    total: np.ndarray
    maximum: np.ndarray
    row_sum: np.ndarray
    col_sum: np.ndarray
    deposits: np.ndarray
    sides: np.ndarray


class _ZoneTotals:
    """Statistics of every tile label of :func:`.streaming.label_zones`, added up per zone at the end."""

    _SUMMED = ("cells", "total", "row_sum", "col_sum", "deposits", "sides")

    def __init__(self, grid: GridSpec, source: MapSource, deposit_xy: np.ndarray | None) -> None:
        self.parts: list[np.ndarray] = []  # per tile: a row per _SUMMED statistic then the maximum, a column per label
        self.deposits: dict[tuple[int, int], np.ndarray] = {}  # (rows, cols) of the deposits by tile origin
        if deposit_xy is not None and len(deposit_xy):
            rows, cols, inside = point_cells(deposit_xy, grid)
            rows, cols = rows[inside], cols[inside]
            for window, group in source.tiles_holding(rows, cols):
                self.deposits[window.row_off, window.col_off] = np.stack([rows[group], cols[group]])

    def add(self, window: Window, block: np.ndarray, labels: np.ndarray) -> None:
        """Total the statistics of the tile's labels (called for each tile, in label order)."""
        present = labels > 0
        if not present.any():
            return
        ids = labels[present]
        low = int(ids.min())
        local = ids - low
        size = int(ids.max()) - low + 1
        rows, cols = np.nonzero(present)
        padded = np.pad(present, 1)
        neighbours = (padded[:-2, 1:-1].astype(np.int8) + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:])
        deposits = np.zeros(size)
        deposit_rc = self.deposits.get((window.row_off, window.col_off))
        if deposit_rc is not None:
            found = labels[deposit_rc[0] - window.row_off, deposit_rc[1] - window.col_off]
            deposits = np.bincount(found[found > 0] - low, minlength=size)
        maximum = np.full(size, -np.inf)
        np.maximum.at(maximum, local, block[present])
        self.parts.append(np.stack([
            np.bincount(local, minlength=size), np.bincount(local, weights=block[present], minlength=size),
            np.bincount(local, weights=rows + window.row_off, minlength=size),
            np.bincount(local, weights=cols + window.col_off, minlength=size), deposits,
            np.bincount(local, weights=4 - neighbours[present], minlength=size), maximum]))

    def per_zone(self, zones: Zones) -> _ZoneStats:
        """The statistics of each zone, from those of its pieces."""
        parts = np.concatenate(self.parts, axis=1)
        zone = zones.zone_of_label[1:] - 1
        sums = {name: np.bincount(zone, weights=parts[k], minlength=zones.count) for k, name in enumerate(self._SUMMED)}
        maximum = np.full(zones.count, -np.inf)
        np.maximum.at(maximum, zone, parts[-1])
        return _ZoneStats(maximum=maximum, **sums)


def _deposit_classes(deposit_xy: np.ndarray | None, grid: GridSpec, source: MapSource, result: AnomalyClasses,
                     notes: list[str]) -> np.ndarray:
    """The class of each deposit on a valid cell (its cell read by point); the others are noted."""
    if deposit_xy is None or len(deposit_xy) == 0:
        return np.zeros(0, dtype=np.uint8)
    rows, cols, inside = point_cells(deposit_xy, grid)
    found = result.classes_of(source.sample(rows[inside], cols[inside]))
    if (~inside).any():
        notes.append(f"{int((~inside).sum())} deposit(s) outside the map were not counted.")
    if (found == CLASS_NODATA).any():
        blank = "nodata cells" if source.study_area is None else "nodata cells or outside the study area"
        notes.append(f"{int((found == CLASS_NODATA).sum())} deposit(s) on {blank} were not counted.")
    return found[found != CLASS_NODATA]


def _table(source: MapSource, result: AnomalyClasses, counts: list[int], deposit_class: np.ndarray,
           cell_km2: float, low: float, is_cancelled: CancelFn, progress: ProgressFn) -> list[ClassRow]:
    """The class table from one pass over the map: cells and value range per class, and the deposits."""
    limits = result.limits
    # classes are runs of sorted values: class K+1−i holds the values reaching exactly i thresholds (0: background)
    class_of_run = np.r_[BACKGROUND_CLASS, np.arange(len(limits), 0, -1)]
    rising = np.array(result.thresholds[::-1])
    cells = np.zeros(CLASS_NODATA + 1, dtype=np.int64)
    smallest, largest = np.full(CLASS_NODATA + 1, np.inf), np.full(CLASS_NODATA + 1, -np.inf)
    for _, block in source.scan(is_cancelled, progress):
        valid = np.sort(valid_values(block))
        bounds = np.r_[0, np.searchsorted(valid, rising, "left"), valid.size]
        filled = bounds[1:] > bounds[:-1]
        present = class_of_run[filled]
        cells[class_of_run] += np.diff(bounds)
        smallest[present] = np.minimum(smallest[present], valid[bounds[:-1][filled]])
        largest[present] = np.maximum(largest[present], valid[bounds[1:][filled] - 1])
    names = class_names(limits)
    found = np.bincount(deposit_class, minlength=CLASS_NODATA + 1)
    n, n_deposits = int(cells.sum()), len(deposit_class)
    rows = []
    bounds = [0.0, *limits, 100.0]
    for cls in [*range(1, len(limits) + 1), BACKGROUND_CLASS]:
        k = cls if cls else len(limits) + 1
        wanted = (counts[k - 1] if cls else n) - (counts[k - 2] if k > 1 else 0)
        if cls and cells[cls] != wanted:
            result.notes.append(f"Class {cls} ({names[cls]}) holds {cells[cls]} cell(s) instead of {wanted}: cells "
                                "with equal values share a class, and values tied at a threshold go to the higher "
                                "class.")
        rows.append(ClassRow(
            cls=cls, name=names[cls], from_pct=bounds[k - 1], to_pct=bounds[k],
            threshold=_finite_or_nan(result.thresholds[cls - 1]) if cls else low,
            min_value=float(smallest[cls]) if cells[cls] else math.nan,
            max_value=float(largest[cls]) if cells[cls] else math.nan,
            cells=int(cells[cls]), area_km2=float(cells[cls] * cell_km2), area_pct=float(100.0 * cells[cls] / n),
            deposits=int(found[cls]), deposit_pct=float(100.0 * found[cls] / n_deposits) if n_deposits else math.nan))
    return rows


def _finite_or_nan(value: float) -> float:
    return float(value) if math.isfinite(value) else math.nan


def _part(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A progress callback for one step that runs from ``start`` to ``end`` % of the caller's progress."""
    if progress is None:
        return None
    return lambda percent: report(progress, start + (end - start) * percent / 100.0)


def _polygons(source: MapSource, in_zone: ZoneFn, zones: Zones, rank_of_zone: np.ndarray, is_cancelled: CancelFn,
              progress: ProgressFn) -> dict[int, dict]:
    """GeoJSON-like (Multi)Polygon per target rank.

    The ranks are written tile by tile to a temporary raster (with a mask raster of the target cells), which
    :func:`rasterio.features.shapes` (GDAL's polygonizer) reads line by line: the same polygons as from the
    whole raster of ranks in memory, without holding it.
    """
    grid = source.grid
    transform = Affine.from_gdal(*grid.geotransform)
    parts: dict[int, list] = {}
    with tempfile.TemporaryDirectory(prefix="deepprospect-targets-") as folder:
        paths = {kind: os.path.join(folder, f"{kind}.tif") for kind in ("ranks", "mask")}
        profiles = {kind: geotiff_profile(grid.cols, grid.rows, 1, dtype, None, transform, None)
                    for kind, dtype in (("ranks", "int32"), ("mask", "uint8"))}
        with rasterio.open(paths["ranks"], "w", **profiles["ranks"]) as ranks, \
                rasterio.open(paths["mask"], "w", **profiles["mask"]) as mask:
            for window, _, labels in tile_labels(source, in_zone, TARGET_CONNECTIVITY, is_cancelled=is_cancelled,
                                                 progress=_part(progress, 0, 50)):
                tile = rank_of_zone[zones.zone_of_label[labels]]
                ranks.write(tile, 1, window=window)
                mask.write((tile > 0).astype(np.uint8), 1, window=window)
        with rasterio.open(paths["ranks"]) as ranks, rasterio.open(paths["mask"]) as mask:
            for count, (geometry, rank) in enumerate(shapes(rasterio.band(ranks, 1), mask=rasterio.band(mask, 1),
                                                            connectivity=4, transform=transform)):
                if count % 1000 == 0:
                    check_cancelled(is_cancelled)
                parts.setdefault(int(rank), []).append(geometry["coordinates"])
    report(progress, 100)
    return {rank: {"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1
            else {"type": "MultiPolygon", "coordinates": rings} for rank, rings in parts.items()}
