"""Evidence stack: rasters aligned to one grid, optionally log-ratio transformed and normalised.

The stack is the model input, so everything done to it is recorded as a *recipe* (JSON in the
GeoTIFF tag ``DEEPPROSPECT_STACK``) that :func:`apply_stack_recipe` re-applies to new data with the
same replacement values and statistics, so training and prediction see identical transforms.

Steps, in order:

1. **Alignment** (:func:`align_raster`): every input is warped onto the template grid with
   ``rasterio.warp.reproject`` — bilinear for continuous rasters, nearest for categorical ones, so
   class values survive. Inputs in another CRS are reprojected.
2. **Common mask**: a cell that is nodata in any band, or outside the study area when one is given,
   is nodata in every band; every statistic and class share below is taken over the remaining cells.
3. **Transform** of a group of continuous bands (the *parts*, in a recorded order):
   ``log10`` per band; ``clr`` (D bands ``clr_<name>``: ln x_i − mean_j ln x_j); ``ilr`` with pivot
   coordinates (Hron, Filzmoser & Thompson 2012; an orthonormal basis after Egozcue et al. 2003):
   ``ilr_i = sqrt((D−i)/(D−i+1)) · ln(x_i / g(x_{i+1}, …, x_D))`` for i = 1…D−1, named ``ilr1``…,
   so ``ilr1`` contrasts the first part with all others. zhang2021 ilr-transformed 39 elements.
   **Zero rule**: log-ratios need positive values, so a value ≤ 0 (e.g. below detection) is replaced
   by ``ZERO_REPLACEMENT_FRACTION`` × the band's smallest positive value over the valid cells
   (multiplicative replacement at 65 % of the detection limit, Martín-Fernández et al. 2003). The
   count is logged and the replacement value recorded; a band with no positive value is refused.
   The transformed group takes the position of its first band in the stack.
4. **Indicator bands** of categorical bands (class codes have no order or scale): one 0/1 band
   ``<name>_<class>`` per class covering at least ``min_class_share`` of the valid cells, plus one
   ``<name>_other`` band for the rarer classes when there are any. The class lists are recorded, so a
   re-applied recipe gives the same bands: a class it has not seen goes to ``_other``, a recorded class
   absent from the new data gives an all-zero band. They take the place of their categorical band.
5. **Normalisation** of continuous bands (indicator bands stay 0/1): z-score (population standard
   deviation) or min-max to [0, 1], statistics over the common valid cells. A constant band is only
   shifted (its scale is taken as 1) and logged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window
from scipy.linalg import helmert

from ..areas import CellMask
from ..bands import WINDOW, grid_windows
from ..errors import InputError
from ..grid import GridSpec
from ..memory import check_memory
from ..progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message, report
from ..raster_io import crs_from_string, geotiff_writer, write_geotiff
from ..tiles import map_tiles, scheduler_address

STACK_TAG = "DEEPPROSPECT_STACK"
RECIPE_FORMAT = "deepprospect-evidence-stack"
RECIPE_VERSION = 2  # 2: categorical bands become indicator bands
TRANSFORMS = ("none", "log10", "clr", "ilr")
NORMALISATIONS = ("none", "z-score", "min-max")
ZERO_REPLACEMENT_FRACTION = 0.65
ILR_BASIS = "pivot: ilr_i = sqrt((D-i)/(D-i+1)) * ln(x_i / geometric_mean(x_{i+1..D})), parts in 'bands' order"
ZERO_RULE = f"values <= 0 replaced by {ZERO_REPLACEMENT_FRACTION} x the band's smallest positive value"
DEFAULT_MIN_CLASS_SHARE = 0.02
OTHER_CLASSES = "other"
# Working copies held at once while stacking in memory: aligned inputs, transformed stack, logarithms.
_WORKING_COPIES = 3
# A raster whose origin is this close (in pixels) to the template's lattice is read directly, without warping.
_LATTICE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class StackInput:
    """One raster file to stack; ``name`` (the layer name) names its bands when they have no description."""

    path: str
    name: str
    categorical: bool = False


def stack_band_names(descriptions: Sequence[Sequence[str]], layer_names: Sequence[str],
                     log: LogFn = None) -> list[list[str]]:
    """Band names per raster: the band description, else ``<layer name>_b<n>``; duplicates get ``_2``, ``_3``…"""
    names, seen = [], set()
    for bands, layer in zip(descriptions, layer_names):
        if not all(bands):
            log_message(log, f"'{layer}' has bands without a name; they are named {layer}_b<band number>.")
        own = []
        for number, description in enumerate(bands, start=1):
            name = description or f"{layer}_b{number}"
            unique, count = name, 1
            while unique in seen:
                count += 1
                unique = f"{name}_{count}"
            if unique != name:
                log_message(log, f"Band name '{name}' of '{layer}' is already used; this band is named '{unique}'.")
            seen.add(unique)
            own.append(unique)
        names.append(own)
    return names


def align_raster(path: str, grid: GridSpec, *, categorical: bool = False, name: str | None = None,
                 log: LogFn = None) -> np.ndarray:
    """Every band of a raster warped onto ``grid`` as float64 (bands, rows, cols), NaN where nodata.

    Continuous rasters are resampled bilinearly, categorical ones by nearest neighbour. GDAL reads
    only the part of the file the grid needs.
    """
    with _AlignedRaster(StackInput(path, name or path, categorical), grid, log) as raster:
        out = raster.read(Window(0, 0, grid.cols, grid.rows))
    if np.isnan(out).all():
        raise InputError(f"The raster '{raster.label}' has no valid cell on the template grid (all nodata there).")
    return out


class _AlignedRaster:
    """One input raster on the template grid, read window by window.

    Each window is warped with ``rasterio.warp.reproject`` on its own (bilinear, or nearest for categorical
    rasters), so GDAL reads only the part of the file the window needs; a raster whose pixels are the grid's
    (same CRS and pixel size, origin on the grid's lattice) is read directly instead, which gives the same values.
    In the same CRS GDAL's warp does not depend on the windows. A raster in another CRS is warped with one
    resampling scale for the whole grid (GDAL's XSCALE/YSCALE: template pixels per raster pixel over the grid's
    extent); GDAL would otherwise derive it per window, and from the part of the window the raster covers, which
    changes how wide a bilinear kernel averages when the raster's pixels are finer. Positions still come from
    GDAL's approximate transformer (within 0.125 pixel), so such a raster's values depend slightly on the windows.
    """

    def __init__(self, item: StackInput, grid: GridSpec, log: LogFn) -> None:
        self.label, self.grid, self.categorical = item.name, grid, item.categorical
        self._crs = crs_from_string(grid.crs)
        self._src = _open(item.path, item.name)
        try:
            self._check_overlap(log)
        except BaseException:
            self._src.close()
            raise
        self.count = self._src.count
        self._nodata = self._src.nodata
        if self._nodata is None and np.dtype(self._src.dtypes[0]).kind == "f":
            self._nodata = np.nan
        self._offset = self._lattice_offset()
        self._scale = self._resampling_scale() if self._src.crs != self._crs else {}

    def _resampling_scale(self) -> dict[str, str]:
        """GDAL warp options fixing the resampling scale: template pixels per raster pixel across the grid."""
        west, south, east, north = transform_bounds(self._crs, self._src.crs, *self.grid.bounds, densify_pts=21)
        x_scale = self.grid.cols * abs(self._src.transform.a) / (east - west)
        y_scale = self.grid.rows * abs(self._src.transform.e) / (north - south)
        return {"XSCALE": repr(x_scale), "YSCALE": repr(y_scale)}

    def _check_overlap(self, log: LogFn) -> None:
        src, grid = self._src, self.grid
        if src.crs is None:
            raise InputError(f"The raster '{self.label}' has no CRS; assign one (Raster ▸ Projections ▸ Assign "
                             "Projection).")
        bounds = transform_bounds(src.crs, self._crs, *src.bounds, densify_pts=21)
        if not (bounds[0] < grid.x_max and bounds[2] > grid.x_min and bounds[1] < grid.y_max
                and bounds[3] > grid.y_min):
            raise InputError(
                f"The raster '{self.label}' {_rounded(bounds)} does not overlap the template grid "
                f"{_rounded(grid.bounds)}; remove it or choose another template.")
        if src.crs != self._crs:
            log_message(log, f"'{self.label}' is in {_crs_label(src.crs)}; reprojected to the template CRS "
                             f"{_crs_label(self._crs)}.")

    def _lattice_offset(self) -> tuple[int, int] | None:
        """(row, col) of the grid's first cell in the raster when the raster's cells are the grid's, else None."""
        transform, grid = self._src.transform, self.grid
        if (self._src.crs != self._crs or transform.b != 0 or transform.d != 0
                or transform.a != grid.pixel_width or transform.e != -grid.pixel_height):
            return None
        col = (grid.x_min - transform.c) / grid.pixel_width
        row = (transform.f - grid.y_max) / grid.pixel_height
        if abs(col - round(col)) > _LATTICE_TOLERANCE or abs(row - round(row)) > _LATTICE_TOLERANCE:
            return None
        return round(row), round(col)

    def read(self, window: Window) -> np.ndarray:
        """(bands, height, width) float64 values of a window of the template grid, NaN where nodata."""
        out = np.full((self.count, window.height, window.width), np.nan)
        if self._offset is not None:
            top, left = window.row_off + self._offset[0], window.col_off + self._offset[1]
            r_lo, r_hi = max(top, 0), min(top + window.height, self._src.height)
            c_lo, c_hi = max(left, 0), min(left + window.width, self._src.width)
            if r_lo < r_hi and c_lo < c_hi:
                values = self._src.read(window=Window(c_lo, r_lo, c_hi - c_lo, r_hi - r_lo), masked=True)
                out[:, r_lo - top:r_hi - top, c_lo - left:c_hi - left] = values.astype(np.float64).filled(np.nan)
            return out
        grid = self.grid
        transform = Affine(grid.pixel_width, 0.0, grid.x_min + window.col_off * grid.pixel_width, 0.0,
                           -grid.pixel_height, grid.y_max - window.row_off * grid.pixel_height)
        for index in range(self.count):  # band by band: rasterio 1.4 ignores src_nodata in a multi-band warp
            reproject(
                rasterio.band(self._src, index + 1), out[index], src_nodata=self._nodata,
                dst_transform=transform, dst_crs=self._crs, dst_nodata=np.nan,
                resampling=Resampling.nearest if self.categorical else Resampling.bilinear, **self._scale,
            )
        return out

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> _AlignedRaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AlignedInputs:
    """Every input raster on the template grid: a band source (see :mod:`.bands`) of all their bands in order."""

    def __init__(self, inputs: Sequence[StackInput], grid: GridSpec, log: LogFn) -> None:
        self._rasters: list[_AlignedRaster] = []
        try:
            for item in inputs:
                self._rasters.append(_AlignedRaster(item, grid, log))
        except BaseException:
            self.close()
            raise
        self.count = sum(raster.count for raster in self._rasters)
        self.rows, self.cols = grid.shape
        self._has_values = np.zeros(len(self._rasters), dtype=bool)

    def read(self, window: Window) -> np.ndarray:
        parts = [raster.read(window) for raster in self._rasters]
        self._has_values |= [not np.isnan(part).all() for part in parts]
        return np.concatenate(parts)

    def add_values(self, has_values: np.ndarray) -> None:
        """Count the inputs that had a valid cell in windows read elsewhere (on Dask workers)."""
        self._has_values |= has_values

    def check_values(self) -> None:
        """Refuse an input that had no valid cell in any window read so far (call after reading every window)."""
        for raster, has_values in zip(self._rasters, self._has_values):
            if not has_values:
                raise InputError(f"The raster '{raster.label}' has no valid cell on the template grid (all nodata "
                                 "there).")

    def close(self) -> None:
        for raster in self._rasters:
            raster.close()

    def __enter__(self) -> _AlignedInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Inputs:
    """What the inputs' files say before any pixel is read: band names and how each input was gridded."""

    names: list[list[str]]  # per input
    categorical: list[str]
    value_transforms: dict[str, str]
    reaches: list[float]  # per input

    @property
    def flat_names(self) -> list[str]:
        return [band for own in self.names for band in own]

    def record(self) -> dict:
        """The recipe entries that describe the inputs rather than the transform."""
        return {
            "input_value_transforms": self.value_transforms,  # log10 grids must be log10 again when reused
            # How far each input band's values reach from the data behind them (IDW search radius, density
            # radius): spatial cross-validation keeps at least this gap between training and held-out cells.
            "evidence_reach": {band: reach for own, reach in zip(self.names, self.reaches) if reach for band in own},
        }


def _read_inputs(inputs: Sequence[StackInput], *, transform: str, transform_bands: Sequence[str] | None,
                 recipe: dict | None, log: LogFn) -> _Inputs:
    """Band names and tags of the inputs, checked against the recipe or the transform before the slow part."""
    if not inputs:
        raise InputError("No input rasters: give at least one raster to stack.")
    descriptions, logged_inputs, reaches = [], [], []
    for item in inputs:
        with _open(item.path, item.name) as src:
            descriptions.append([description or "" for description in src.descriptions])
            logged_inputs.append(src.tags().get("VALUE_TRANSFORM") == "log10")
            reaches.append(evidence_reach(src.tags()))
    names = stack_band_names(descriptions, [item.name for item in inputs], log)
    categorical = [band for item, own in zip(inputs, names) if item.categorical for band in own]
    flat_names = [band for own in names for band in own]
    value_transforms = {band: "log10" if is_log else "none" for own, is_log in zip(names, logged_inputs)
                        for band in own}
    if recipe is not None:
        _check_inputs_match_recipe(recipe, flat_names, categorical, value_transforms)
    elif transform in TRANSFORMS[1:]:
        parts = _transform_parts(flat_names, categorical, transform, transform_bands)
        logged = [band for own, is_log in zip(names, logged_inputs) if is_log for band in own if band in parts]
        if logged:
            raise InputError(
                f"{', '.join(logged)}: already log10 values (gridded with 'Interpolate log10'); a {transform} of "
                "them would take logarithms of logarithms. Grid the elements without log10 for a log-ratio "
                "transform, or choose the transform 'none'.")
    return _Inputs(names, categorical, value_transforms, reaches)


def build_evidence_stack(
    inputs: Sequence[StackInput],
    grid: GridSpec,
    *,
    transform: str = "none",
    transform_bands: Sequence[str] | None = None,
    normalise: str = "none",
    min_class_share: float = DEFAULT_MIN_CLASS_SHARE,
    study_area: np.ndarray | None = None,
    recipe: dict | None = None,
    log: LogFn = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> tuple[np.ndarray, list[str], dict]:
    """Align ``inputs`` onto ``grid`` and stack them in memory (see :func:`make_stack`).

    ``study_area`` (boolean, the grid's shape) keeps only the cells inside it: the others are nodata and
    count in no statistic or class share. With ``recipe`` (another stack's), its transform, class lists and
    statistics are re-applied instead of fitted (``transform``, ``transform_bands``, ``normalise`` and
    ``min_class_share`` are then ignored), so a model trained on that stack can map a new area. Returns the
    (bands, rows, cols) stack with NaN at nodata, its band names and its recipe. :func:`build_evidence_stack_file`
    makes the same stack straight into a file, window by window, for grids larger than memory.
    """
    described = _read_inputs(inputs, transform=transform, transform_bands=transform_bands, recipe=recipe, log=log)
    band_count = len(described.flat_names)
    check_memory(_WORKING_COPIES * 8 * band_count * grid.cell_count,
                 f"A stack of {band_count} band(s) on {grid.rows} × {grid.cols} pixels",
                 "Use a template raster with larger pixels or fewer input rasters")
    aligned = []
    for index, item in enumerate(inputs):
        check_cancelled(is_cancelled)
        aligned.append(align_raster(item.path, grid, categorical=item.categorical, name=item.name, log=log))
        report(progress, 80.0 * (index + 1) / len(inputs))
    check_cancelled(is_cancelled)
    arrays = np.concatenate(aligned)
    if study_area is not None:
        _keep_study_area(arrays, study_area, log)
    if recipe is not None:
        stack, names = apply_stack_recipe(arrays, described.flat_names, recipe, log=log)
        report(progress, 95.0)
        return stack, names, recipe
    stack, names, made = make_stack(arrays, described.flat_names, categorical=described.categorical,
                                    transform=transform, transform_bands=transform_bands, normalise=normalise,
                                    min_class_share=min_class_share, log=log)
    made.update(described.record())
    report(progress, 95.0)
    return stack, names, made


def build_evidence_stack_file(
    path: str,
    inputs: Sequence[StackInput],
    grid: GridSpec,
    *,
    transform: str = "none",
    transform_bands: Sequence[str] | None = None,
    normalise: str = "none",
    min_class_share: float = DEFAULT_MIN_CLASS_SHARE,
    study_area: CellMask | np.ndarray | None = None,
    recipe: dict | None = None,
    window: int = WINDOW,
    scheduler: str | None = None,
    log: LogFn = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> tuple[list[str], dict]:
    """The stack of :func:`build_evidence_stack`, written to ``path`` as float32 window by window.

    Memory holds a few ``window`` × ``window`` windows of every band, whatever the grid's size. The first
    pass reads every window to fit the recipe (cell counts, each transform band's smallest positive value,
    class counts; with no transform also each band's moments), a second pass gathers the moments of the
    transformed bands when a log-ratio transform is normalised (they need the zero replacement of the first),
    and the last pass aligns, transforms and normalises each window again and writes it. The statistics are
    exact: counts, minima and maxima merge exactly, means and standard deviations merge by Chan's pairwise
    update of float64 sums of squared deviations, so they match the in-memory stack's to rounding. With
    ``recipe`` only the last pass runs. Given a Dask scheduler address ``scheduler`` (or
    :data:`.tiles.SCHEDULER_ENV`), the windows of the last pass are aligned, transformed and normalised by its
    workers (:func:`.tiles.map_tiles`; they read the inputs at the same paths), the same bits as here; the
    statistics passes run here. Returns the band names and the recipe written to the file's
    ``DEEPPROSPECT_STACK`` tag.
    """
    described = _read_inputs(inputs, transform=transform, transform_bands=transform_bands, recipe=recipe, log=log)
    if study_area is not None and study_area.shape != grid.shape:
        raise InputError(f"The study-area mask {study_area.shape} does not match the grid {grid.shape}.")
    fit = None if recipe is not None else _RecipeFit(
        described.flat_names, described.categorical, transform=transform, transform_bands=transform_bands,
        normalise=normalise, min_class_share=min_class_share)
    windows = list(grid_windows(grid.rows, grid.cols, window, window))
    passes = 1 if fit is None else 3 if fit.needs_statistics_pass else 2
    pass_numbers = iter(range(passes))

    def read_all() -> Iterator[tuple[Window, np.ndarray]]:
        """One pass over every window of the aligned inputs, cells outside the study area NaN."""
        start = next(pass_numbers) * 100.0 / passes
        for index, part in enumerate(windows):
            check_cancelled(is_cancelled)
            arrays = source.read(part)
            if study_area is not None:
                arrays[:, ~study_area[part.toslices()]] = np.nan
            yield part, arrays
            report(progress, start + 100.0 / passes * (index + 1) / len(windows))

    with _AlignedInputs(inputs, grid, log) as source:
        if fit is not None:
            for _, arrays in read_all():
                fit.add(arrays)
            source.check_values()
            if study_area is not None:
                _check_study_area(study_area, fit.valid_cells, log)
            fit.fit_recipe(log)
            if fit.needs_statistics_pass:
                for _, arrays in read_all():
                    stack, names, _ = _apply_transform(arrays, described.flat_names, fit.recipe)
                    fit.add_outputs(stack, names, ~np.isnan(arrays).any(axis=0))
            recipe = {**fit.finish(log), **described.record()}
            wanted = described.flat_names
        else:
            wanted = recipe["input_bands"]
        chosen = [described.flat_names.index(name) for name in wanted]
        names = _output_names(wanted, recipe)
        if names != recipe["output_bands"]:
            raise InputError(f"The recipe's output bands {recipe['output_bands']} do not match its transform "
                             f"({names}).")
        unseen: dict[str, set] = {}
        valid_cells = 0
        job = _WindowJob(tuple(inputs), grid, tuple(chosen), tuple(wanted), tuple(names), recipe)
        compute = (partial(_stacked_window, job, source=source) if scheduler_address(scheduler) is None
                   else partial(_stacked_window, job))
        tasks = (_WindowTask(part, None if study_area is None else study_area[part.toslices()]) for part in windows)
        start = (passes - 1) * 100.0 / passes
        done = map_tiles(compute, tasks, len(windows), scheduler=scheduler, is_cancelled=is_cancelled, log=log,
                         progress=lambda percent: report(progress, start + percent / passes))
        with geotiff_writer(path, grid, names, metadata=_stack_tags(recipe)) as writer:
            for task, result in done:
                valid_cells += result.valid_cells
                for band, values in result.unseen.items():
                    unseen.setdefault(band, set()).update(values.tolist())
                source.add_values(result.has_values)
                writer.write(result.stack, task.window)
            source.check_values()
            if study_area is not None and fit is None:
                _check_study_area(study_area, valid_cells, log)
    _log_unseen({band: np.array(sorted(values)) for band, values in unseen.items()}, recipe, log)
    return names, recipe


@dataclass(frozen=True)
class _WindowJob:
    """What every window of the last pass needs; picklable, for Dask workers."""

    inputs: tuple[StackInput, ...]
    grid: GridSpec
    chosen: tuple[int, ...]  # the input bands the recipe uses, in its order
    wanted: tuple[str, ...]  # their names
    names: tuple[str, ...]  # the output bands
    recipe: dict


@dataclass(frozen=True)
class _WindowTask:
    """A window of the last pass and the study area's cells in it (None: no study area)."""

    window: Window
    inside: np.ndarray | None


class _StackedWindow(NamedTuple):
    """A written window: float32 (bands, rows, cols) values (NaN = nodata), its cells valid in every input band,
    the class values per categorical band the recipe has not seen, and which inputs had a valid cell."""

    stack: np.ndarray
    valid_cells: int
    unseen: dict[str, np.ndarray]
    has_values: np.ndarray


def _stacked_window(job: _WindowJob, task: _WindowTask, source: _AlignedInputs | None = None) -> _StackedWindow:
    """Align, transform and normalise one window of the last pass, from ``source`` (here) or from inputs
    opened for it (on a Dask worker)."""
    if source is None:
        with _AlignedInputs(job.inputs, job.grid, None) as own:
            return _stacked_window(job, task, own)
    arrays = source.read(task.window)
    if task.inside is not None:
        arrays[:, ~task.inside] = np.nan
    valid_cells = int((~np.isnan(arrays).any(axis=0)).sum())
    stack, _, unseen = _apply_transform(arrays[list(job.chosen)], list(job.wanted), job.recipe)
    _apply_normalisation(stack, list(job.names), job.recipe["normalise"])
    return _StackedWindow(stack.astype(np.float32), valid_cells, unseen, source._has_values.copy())


def _keep_study_area(arrays: np.ndarray, study_area: np.ndarray, log: LogFn) -> None:
    """Make every cell outside ``study_area`` nodata in every band, in place."""
    study_area = np.asarray(study_area, dtype=bool)
    if study_area.shape != arrays.shape[1:]:
        raise InputError(f"The study-area mask {study_area.shape} does not match the grid {arrays.shape[1:]}.")
    _check_study_area(study_area, int((study_area & ~np.isnan(arrays).any(axis=0)).sum()), log)
    arrays[:, ~study_area] = np.nan


def _check_study_area(study_area: np.ndarray, valid_inside: int, log: LogFn) -> None:
    """Refuse a study area without a cell that has a value in every input; log how many cells it covers."""
    if not valid_inside:
        raise InputError("No cell inside the study area has a value in every input; check that the study area "
                         "overlaps the inputs' valid areas.")
    log_message(log, f"{int(study_area.sum())} of {study_area.size} cells lie inside the study area; statistics "
                     "and class shares are taken over them only.")


def _check_inputs_match_recipe(recipe: dict, band_names: list[str], categorical: list[str],
                               value_transforms: dict[str, str]) -> None:
    """Refuse inputs that the recipe would not treat as it treated its own stack's inputs."""
    _check_recipe(recipe)
    wanted = recipe["input_bands"]
    missing = [name for name in wanted if name not in band_names]
    if missing:
        raise InputError(f"The recipe needs the band(s) {', '.join(missing)}, which no input provides (inputs give "
                         f"{', '.join(band_names)}); give the same evidence layers as the recipe's stack.")
    recorded = recipe.get("input_value_transforms", {})
    changed = [f"{name} ({recorded[name]} there, {value_transforms[name]} here)" for name in wanted
               if name in recorded and recorded[name] != value_transforms[name]]
    if changed:
        raise InputError(f"Band(s) {', '.join(changed)} were gridded differently for the recipe's stack; grid them "
                         "the same way (with or without 'Interpolate log10') so the recipe's statistics apply.")
    expected, given = set(recipe["categorical_bands"]), {name for name in categorical if name in wanted}
    if expected != given:
        raise InputError(f"Mark the same rasters as categorical as for the recipe's stack: its categorical bands are "
                         f"{', '.join(sorted(expected)) or 'none'}, here {', '.join(sorted(given)) or 'none'}.")


def make_stack(
    arrays: np.ndarray,
    band_names: Sequence[str],
    *,
    categorical: Sequence[str] = (),
    transform: str = "none",
    transform_bands: Sequence[str] | None = None,
    normalise: str = "none",
    min_class_share: float = DEFAULT_MIN_CLASS_SHARE,
    log: LogFn = None,
) -> tuple[np.ndarray, list[str], dict]:
    """Common mask, transform, indicator bands and normalisation of aligned bands; returns (stack, names, recipe).

    ``transform_bands`` (default: every band not in ``categorical``) are the parts of the transform,
    in that order. Each ``categorical`` band becomes indicator bands: one per class covering at least
    ``min_class_share`` (0–1) of the valid cells, plus ``<name>_other`` for the rarer classes.
    """
    arrays, band_names = _validated(arrays, band_names)
    fit = _RecipeFit(band_names, categorical, transform=transform, transform_bands=transform_bands,
                     normalise=normalise, min_class_share=min_class_share)
    valid = fit.add(arrays)
    fit.fit_recipe(log)
    stack, names, _ = _apply_transform(arrays, band_names, fit.recipe)
    if fit.needs_statistics_pass:
        fit.add_outputs(stack, names, valid)
    recipe = fit.finish(log)
    _apply_normalisation(stack, names, recipe["normalise"])
    return stack, names, recipe


def apply_stack_recipe(arrays: np.ndarray, band_names: Sequence[str], recipe: dict,
                       log: LogFn = None) -> tuple[np.ndarray, list[str]]:
    """Re-apply a recorded recipe (mask, transform, class lists, recorded statistics) to aligned raw bands.

    ``arrays`` may hold more bands than the recipe needs and in another order: bands are taken by name.
    """
    arrays, band_names = _validated(arrays, band_names)
    _check_recipe(recipe)
    missing = [name for name in recipe["input_bands"] if name not in band_names]
    if missing:
        raise InputError(f"The data lacks the band(s) the stack was built from: {', '.join(missing)}.")
    wanted = recipe["input_bands"]
    stack, names, unseen = _apply_transform(arrays[[band_names.index(name) for name in wanted]], wanted, recipe)
    if names != recipe["output_bands"]:
        raise InputError(f"The recipe's output bands {recipe['output_bands']} do not match its transform ({names}).")
    _log_unseen(unseen, recipe, log)
    _apply_normalisation(stack, names, recipe["normalise"])
    return stack, names


def write_evidence_stack(path: str, stack: np.ndarray, grid: GridSpec, band_names: Sequence[str],
                         recipe: dict) -> None:
    """Write the stack as a GeoTIFF with its recipe as JSON in the ``DEEPPROSPECT_STACK`` tag."""
    write_geotiff(path, stack, grid, band_names, metadata=_stack_tags(recipe))


def _stack_tags(recipe: dict) -> dict[str, str]:
    return {"DEEPPROSPECT_ALGORITHM": "evidencestack", STACK_TAG: json.dumps(recipe, allow_nan=False)}


def evidence_reach(tags: Mapping[str, str]) -> float:
    """The distance over which a gridded input's values depend on its data: the IDW search radius or the density
    radius in its tags (0 when unknown or unlimited)."""
    values = []
    for key in ("IDW_RADIUS", "RADIUS"):
        try:
            values.append(float(tags.get(key, "0")))
        except ValueError:
            continue
    return max([v for v in values if math.isfinite(v) and v > 0], default=0.0)


def read_stack_recipe(path: str) -> dict:
    """The recipe recorded in an evidence stack written by :func:`write_evidence_stack`."""
    try:
        with rasterio.open(path) as src:
            text = src.tags().get(STACK_TAG)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(f"Cannot open the raster {path}: {error}") from error
    if text is None:
        raise InputError(f"{path} is not a DeepProspect evidence stack (no {STACK_TAG} metadata); "
                         "build it with 'Build evidence stack'.")
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"The {STACK_TAG} metadata of {path} is not valid JSON: {error}") from error
    _check_recipe(recipe)
    return recipe


def band_normalisation(recipe: dict | None, band_names: Sequence[str]) -> dict:
    """What was done to ``band_names`` of a stack: the part of its recipe a model's inputs depend on.

    A model card stores this, and prediction compares it with the same extract of the new stack's recipe
    (:func:`normalisation_differences`), so a model never reads bands transformed or scaled differently from
    its training data. Only the listed bands count: a stack with more bands, or other statistics for bands the
    model does not use, still matches. ``recipe`` None (a raster without a recipe) means raw values.
    """
    recipe = recipe or {"transform": {"method": "none"}, "normalise": {"method": "none", "statistics": {}},
                        "categorical_bands": []}
    wanted = list(band_names)
    spec = recipe["transform"]
    transform: dict = {"method": "none"}
    if spec["method"] == "log10":
        used = [name for name in spec["bands"] if f"log10_{name}" in wanted]
        if used:
            transform = {**spec, "bands": used, "replacement": {name: spec["replacement"][name] for name in used}}
    elif spec["method"] in ("clr", "ilr"):
        outputs = {f"clr_{name}" for name in spec["bands"]} if spec["method"] == "clr" else {
            f"ilr{i}" for i in range(1, len(spec["bands"]))}
        if outputs & set(wanted):  # every coordinate depends on every part: the whole transform counts
            transform = dict(spec)
    statistics = recipe["normalise"]["statistics"]
    extract = {
        "transform": transform,
        "normalise": recipe["normalise"]["method"] if any(name in statistics for name in wanted) else "none",
        "statistics": {name: statistics[name] for name in wanted if name in statistics},
        "categorical_bands": [name for name in recipe.get("categorical_bands", []) if name in wanted],
    }
    indicators = {name: meaning for name, meaning in indicator_meanings(recipe).items() if name in wanted}
    if indicators:  # only then, so extracts stored before indicator bands existed still compare equal
        extract["indicators"] = indicators
    if "input_value_transforms" in recipe:  # how the input grids were made (log10 or not), for the bands used
        sources = (set(transform.get("bands", [])) | {meaning["band"] for meaning in indicators.values()}
                   | {name for name in wanted if name in recipe.get("input_bands", [])})
        extract["value_transforms"] = {name: recipe["input_value_transforms"].get(name, "none")
                                       for name in sorted(sources)}
    return extract


def stack_normalisation(path: str, band_names: Sequence[str]) -> dict:
    """:func:`band_normalisation` of the stack file ``path`` (raw values when it has no recipe)."""
    with rasterio.open(path) as src:
        tagged = STACK_TAG in src.tags()
    return band_normalisation(read_stack_recipe(path) if tagged else None, band_names)


def normalisation_differences(expected: dict, actual: dict, *, rel_tol: float = 1e-6) -> list[str]:
    """Human-readable differences between two :func:`band_normalisation` extracts ([] when they match).

    Numbers match within ``rel_tol`` (statistics pass through JSON and float32 rasters unchanged, but a
    stack rebuilt on the same data may differ in the last digits).
    """
    differences = []
    keys = [("transform", "transform"), ("normalise", "normalisation method"),
            ("categorical_bands", "categorical bands"), ("indicators", "indicator bands")]
    if "value_transforms" in expected and "value_transforms" in actual:  # recorded since recipes carry it
        keys.append(("value_transforms", "input grids (log10 or raw)"))
    for key, label in keys:
        if not _same(expected.get(key), actual.get(key), rel_tol):
            differences.append(f"{label}: model {_short(expected.get(key))}, stack {_short(actual.get(key))}")
    expected_stats, actual_stats = expected.get("statistics", {}), actual.get("statistics", {})
    for name in sorted(set(expected_stats) | set(actual_stats)):
        if not _same(expected_stats.get(name), actual_stats.get(name), rel_tol):
            differences.append(f"statistics of '{name}': model {_short(expected_stats.get(name))}, "
                               f"stack {_short(actual_stats.get(name))}")
    return differences


def indicator_meanings(recipe: dict) -> dict[str, dict]:
    """Per indicator band of a recipe: its categorical band and its class, or the classes ``other`` excludes."""
    meanings = {}
    for band, spec in recipe.get("indicators", {}).items():
        for value in spec["classes"]:
            meanings[f"{band}_{value}"] = {"band": band, "class": value}
        if spec["other_classes"]:
            meanings[f"{band}_{OTHER_CLASSES}"] = {"band": band, "other_than": spec["classes"]}
    return meanings


def _same(a: object, b: object, rel_tol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key], rel_tol) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rel_tol) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def pivot_basis(parts: int) -> np.ndarray:
    """(D−1, D) orthonormal pivot-coordinate basis; rows sum to 0, so ``basis @ ln x`` is the ilr of x.

    It is the Helmert sub-matrix with parts and rows reversed and the sign flipped, so row i puts
    sqrt((D−i)/(D−i+1)) on part i and −1/sqrt((D−i)(D−i+1)) on each later part.
    """
    return -helmert(parts)[::-1, ::-1]


class _Moments:
    """Count, mean, sum of squared deviations, smallest and largest of values added batch by batch.

    Batches merge by Chan, Golub & LeVeque's pairwise update, so the mean and standard deviation of many
    windows equal those of all values at once to float64 rounding (and exactly for a single batch).
    """

    def __init__(self) -> None:
        self.count, self.mean, self.squares = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        mean = float(values.mean())
        squares = float(((values - mean) ** 2).sum())
        total = self.count + values.size
        if self.count == 0:
            self.mean, self.squares = mean, squares
        else:
            delta = mean - self.mean
            self.mean += delta * values.size / total
            self.squares += squares + delta * delta * self.count * values.size / total
        self.count = total
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.squares / self.count)


class _RecipeFit:
    """A recipe fitted from aligned bands given window by window (one window: the whole grid in memory).

    :meth:`add` every window (cells valid in every band, each transform band's smallest positive value and
    count of values ≤ 0, class counts of categorical bands; without a transform also each band's
    :class:`_Moments`), then :meth:`fit_recipe`; when :attr:`needs_statistics_pass`, :meth:`add_outputs` every
    transformed window; then :meth:`finish`. Counts, minima and maxima are exact whatever the windows.
    """

    def __init__(self, band_names: Sequence[str], categorical: Sequence[str], *, transform: str,
                 transform_bands: Sequence[str] | None, normalise: str, min_class_share: float) -> None:
        self.band_names = list(band_names)
        if transform not in TRANSFORMS:
            raise InputError(f"Unknown transform '{transform}'; choose one of {', '.join(TRANSFORMS)}.")
        if normalise not in NORMALISATIONS:
            raise InputError(f"Unknown normalisation '{normalise}'; choose one of {', '.join(NORMALISATIONS)}.")
        unknown = [name for name in categorical if name not in self.band_names]
        if unknown:
            raise InputError(f"Categorical band(s) {', '.join(unknown)} are not in the stack.")
        if not 0.0 <= min_class_share <= 1.0:
            raise InputError(f"The minimum class share must be between 0 and 1 (e.g. 0.02 for 2 %); got "
                             f"{min_class_share:g}.")
        self.categorical = [name for name in self.band_names if name in categorical]
        self.transform, self.requested, self.normalise = transform, transform_bands, normalise
        self.min_class_share = min_class_share
        self.parts = _transform_parts(self.band_names, self.categorical, transform, transform_bands) \
            if transform != "none" else []
        self.cells = self.valid_cells = 0
        self._smallest_positive = dict.fromkeys(self.parts, math.inf)
        self._not_positive = dict.fromkeys(self.parts, 0)
        self._classes: dict[str, dict[float, int]] = {name: {} for name in self.categorical}
        self._moments: dict[str, _Moments] = {}
        self._not_scaled = set(self.categorical)
        self.recipe: dict = {}
        self.names: list[str] = []

    @property
    def needs_statistics_pass(self) -> bool:
        """Whether the normalisation needs the transformed bands (a transform that is normalised)."""
        return self.normalise != "none" and self.transform != "none"

    def add(self, arrays: np.ndarray) -> np.ndarray:
        """Gather a (bands, rows, cols) window of aligned bands (NaN = nodata); returns its valid cells."""
        valid = ~np.isnan(arrays).any(axis=0)
        self.cells += valid.size
        self.valid_cells += int(valid.sum())
        for name in self.parts:
            values = arrays[self.band_names.index(name)][valid]
            positive = values[values > 0]
            if positive.size:
                self._smallest_positive[name] = min(self._smallest_positive[name], float(positive.min()))
            self._not_positive[name] += values.size - positive.size
        for name, counts in self._classes.items():
            classes, number = np.unique(arrays[self.band_names.index(name)][valid], return_counts=True)
            for value, count in zip(classes.tolist(), number.tolist()):
                counts[value] = counts.get(value, 0) + count
        if self.normalise != "none" and self.transform == "none":
            self.add_outputs(arrays, self.band_names, valid)
        return valid

    def fit_recipe(self, log: LogFn) -> None:
        """The recipe's transform and class lists, and the output band names (checked unique)."""
        if not self.valid_cells:
            raise InputError("No cell has a value in every band (the inputs' valid areas do not overlap); "
                             "check the inputs' extents and nodata.")
        log_message(log, f"{self.valid_cells} of {self.cells} cells have a value in every band; the others are "
                         "nodata in every band.")
        self.recipe = {
            "format": RECIPE_FORMAT,
            "version": RECIPE_VERSION,
            "input_bands": self.band_names,
            "categorical_bands": self.categorical,
            "transform": self._fit_transform(log),
            "min_class_share": self.min_class_share,
            "indicators": {name: _fit_classes(counts, self.valid_cells, name, self.min_class_share, log)
                           for name, counts in self._classes.items()},
        }
        self.names = _output_names(self.band_names, self.recipe)
        taken = sorted({name for name in self.names if self.names.count(name) > 1})
        if taken:
            raise InputError(f"Band name(s) {', '.join(taken)} would be given twice (an indicator band of a "
                             "categorical raster has the name of another band); rename one of the bands.")
        self._not_scaled |= set(indicator_meanings(self.recipe))

    def add_outputs(self, stack: np.ndarray, names: Sequence[str], valid: np.ndarray) -> None:
        """Gather the moments of the continuous bands of a transformed window over its ``valid`` cells."""
        for band, name in zip(stack, names):
            if name not in self._not_scaled:
                self._moments.setdefault(name, _Moments()).add(band[valid])

    def finish(self, log: LogFn) -> dict:
        """The complete recipe: the normalisation statistics of the continuous bands and the output bands."""
        statistics = {}
        if self.normalise != "none":
            for name in self.names:
                if name in self._not_scaled:
                    continue
                moments = self._moments[name]
                statistics[name] = ({"mean": moments.mean, "std": moments.std} if self.normalise == "z-score"
                                    else {"min": moments.low, "max": moments.high})
                if moments.low == moments.high:
                    log_message(log, f"Band '{name}' is constant over the valid cells; it is only shifted, not "
                                     "scaled.")
        self.recipe["normalise"] = {"method": self.normalise, "statistics": statistics}
        self.recipe["output_bands"] = self.names
        return self.recipe

    def _fit_transform(self, log: LogFn) -> dict:
        """The transform part of the recipe: method, parts in order and zero-replacement values."""
        if self.transform == "none":
            if self.requested:
                log_message(log, "No transform chosen: the transform bands are ignored.")
            return {"method": "none"}
        replacement = {}
        for name in self.parts:
            if self._smallest_positive[name] == math.inf:
                raise InputError(f"Band '{name}' has no positive value, so it has no logarithm; remove it from "
                                 "the transform bands.")
            replacement[name] = float(ZERO_REPLACEMENT_FRACTION * self._smallest_positive[name])
            if self._not_positive[name]:
                log_message(log, f"Band '{name}': {self._not_positive[name]} value(s) ≤ 0 replaced by "
                                 f"{replacement[name]:.6g} ({ZERO_REPLACEMENT_FRACTION} × its smallest positive "
                                 "value) before the logarithm.")
        transform = {"method": self.transform, "bands": self.parts, "zero_rule": ZERO_RULE,
                     "replacement": replacement}
        if self.transform == "ilr":
            transform["basis"] = ILR_BASIS
        return transform


def _transform_parts(band_names: list[str], categorical: Sequence[str], method: str,
                     requested: Sequence[str] | None) -> list[str]:
    """The bands a transform applies to, in order: the requested ones (checked), else every continuous band."""
    parts = list(dict.fromkeys(requested)) if requested else [n for n in band_names if n not in categorical]
    unknown = [name for name in parts if name not in band_names]
    if unknown:
        raise InputError(f"Transform band(s) not in the stack: {', '.join(unknown)}. "
                         f"Available bands: {', '.join(band_names)}.")
    classes = [name for name in parts if name in categorical]
    if classes:
        raise InputError(f"Band(s) {', '.join(classes)} are categorical (class values) and cannot be "
                         f"{method}-transformed; remove them from the transform bands.")
    if not parts:
        raise InputError(f"No continuous band to {method}-transform.")
    if method in ("clr", "ilr") and len(parts) < 2:
        raise InputError(f"A {method} transform needs at least 2 bands (parts of a composition); got "
                         f"{', '.join(parts)}. Add element bands or choose log10.")
    return parts


def _output_names(band_names: Sequence[str], recipe: dict) -> list[str]:
    """The stack's band names under a recipe: a transformed group or a categorical band's indicators take its
    position (the names :func:`_apply_transform` gives)."""
    spec = recipe["transform"]
    parts = spec.get("bands", [])
    names = []
    for name in band_names:
        if parts and name == parts[0]:
            names.extend(_log_ratio_names(parts, spec["method"]))
        elif name in recipe.get("indicators", {}):
            names.extend(indicator_meanings({"indicators": {name: recipe["indicators"][name]}}))
        elif name not in parts:
            names.append(name)
    return names


def _apply_transform(arrays: np.ndarray, band_names: list[str],
                     recipe: dict) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """Masked, transformed stack with indicator bands (see :func:`_output_names`), its names, and per
    categorical band the class values the recipe has not seen (for :func:`_log_unseen`)."""
    spec = recipe["transform"]
    mask = np.isnan(arrays).any(axis=0)
    parts = spec.get("bands", [])
    indicators = recipe.get("indicators", {})
    blocks, unseen = [], {}
    for index, name in enumerate(band_names):
        if parts and name == parts[0]:
            blocks.extend(_log_ratio(arrays[[band_names.index(part) for part in parts]], parts, spec))
        elif name in indicators:
            values = arrays[index][~mask]
            known = indicators[name]["classes"] + indicators[name]["other_classes"]
            unseen[name] = np.unique(values[~np.isin(values, known)])
            blocks.extend(_indicator_bands(values, mask, name, indicators[name]))
        elif name not in parts:
            blocks.append((arrays[index], name))
    stack = np.stack([band for band, _ in blocks])
    stack[:, mask] = np.nan
    return stack, [name for _, name in blocks], unseen


def _log_unseen(unseen: Mapping[str, np.ndarray], recipe: dict, log: LogFn) -> None:
    """Log the classes of each categorical band that did not occur where the recipe was made."""
    for name, values in unseen.items():
        if values.size:
            goes = (f"go to {name}_{OTHER_CLASSES}" if recipe["indicators"][name]["other_classes"]
                    else "are 0 in every indicator band")
            log_message(log, f"'{name}': class(es) {', '.join(str(_class_value(v)) for v in values)} did not "
                             f"occur where the recipe was made; they {goes}.")


def _log_ratio_names(parts: Sequence[str], method: str) -> list[str]:
    if method == "ilr":
        return [f"ilr{i}" for i in range(1, len(parts))]
    return [f"{method}_{name}" for name in parts]


def _log_ratio(parts: np.ndarray, names: list[str], spec: dict) -> list[tuple[np.ndarray, str]]:
    """log10, clr or pivot ilr of the parts (positive after the recorded zero replacement)."""
    replacement = np.array([spec["replacement"][name] for name in names])[:, None, None]
    positive = np.where(parts <= 0, replacement, parts)
    if spec["method"] == "log10":
        bands = np.log10(positive)
    else:
        logs = np.log(positive)
        bands = logs - logs.mean(axis=0) if spec["method"] == "clr" else np.tensordot(
            pivot_basis(len(names)), logs, axes=1)
    return list(zip(bands, _log_ratio_names(names, spec["method"])))


def _fit_classes(counts: Mapping[float, int], total: int, name: str, min_share: float, log: LogFn) -> dict:
    """The classes of a categorical band (counts over its ``total`` valid cells) that get their own indicator
    band; is there an other?"""
    classes = np.array(sorted(counts), dtype=np.float64)
    shares = np.array([counts[value] for value in classes.tolist()], dtype=np.float64) / total
    common = shares >= min_share
    labels, rare = [_class_value(value) for value in classes[common]], [_class_value(v) for v in classes[~common]]
    described = ", ".join(f"{label} ({share:.1%})" for label, share in zip(labels, shares[common]))
    log_message(log, f"'{name}': {len(classes)} class(es); " + (
        f"{described} cover at least {min_share:.1%} of the valid cells each and get a band {name}_<class>"
        if labels else f"none covers {min_share:.1%} of the valid cells") + (
        f"; {len(rare)} rarer class(es) ({shares[~common].sum():.1%} of the cells) go to {name}_{OTHER_CLASSES}."
        if rare else "."))
    return {"classes": labels, "other_classes": rare}


def _indicator_bands(values: np.ndarray, mask: np.ndarray, name: str, spec: dict) -> list[tuple[np.ndarray, str]]:
    """0/1 bands ``<name>_<class>`` (and ``<name>_other``) of a categorical band; ``values`` are its valid cells."""
    bands = []
    for band_name, meaning in indicator_meanings({"indicators": {name: spec}}).items():
        band = np.zeros(mask.shape)
        band[~mask] = values == meaning["class"] if "class" in meaning else ~np.isin(values, meaning["other_than"])
        bands.append((band, band_name))
    return bands


def _class_value(value: float) -> int | float:
    """A class value as JSON and band names write it: an int when it is whole (585, not 585.0)."""
    return int(value) if float(value).is_integer() else float(value)


def _apply_normalisation(stack: np.ndarray, names: list[str], spec: dict) -> None:
    """Normalise the bands that have recorded statistics, in place."""
    for index, name in enumerate(names):
        if name in spec["statistics"]:
            offset, scale = _offset_scale(spec["statistics"][name])
            stack[index] = (stack[index] - offset) / scale


def _offset_scale(statistics: dict) -> tuple[float, float]:
    """(offset, scale) of recorded statistics; a zero scale (constant band) becomes 1."""
    if "mean" in statistics:
        offset, scale = statistics["mean"], statistics["std"]
    else:
        offset, scale = statistics["min"], statistics["max"] - statistics["min"]
    return offset, scale if scale > 0 else 1.0


def _validated(arrays: np.ndarray, band_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    arrays = np.asarray(arrays, dtype=np.float64)
    if arrays.ndim == 2:
        arrays = arrays[None]
    band_names = list(band_names)
    if arrays.ndim != 3 or arrays.shape[0] != len(band_names):
        raise InputError(f"Expected a (bands, rows, cols) array with one band per name; got shape {arrays.shape} "
                         f"for {len(band_names)} name(s).")
    duplicates = sorted({name for name in band_names if band_names.count(name) > 1})
    if duplicates:
        raise InputError(f"Band names must be unique; repeated: {', '.join(duplicates)}.")
    return arrays, band_names


def _check_recipe(recipe: dict) -> None:
    if not isinstance(recipe, dict) or recipe.get("format") != RECIPE_FORMAT:
        raise InputError(f"Not an evidence-stack recipe (its 'format' is not '{RECIPE_FORMAT}').")
    if recipe.get("version", 0) > RECIPE_VERSION:
        raise InputError(f"The stack recipe is version {recipe['version']}, newer than this DeepProspect "
                         f"understands ({RECIPE_VERSION}); update the plugin.")


def _open(path: str, label: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(f"Cannot open the raster '{label}': {error}") from error




def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def _rounded(bounds: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(b), 3) for b in bounds)
