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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject, transform_bounds
from scipy.linalg import helmert

from .errors import InputError
from .grid import GridSpec
from .memory import check_memory
from .progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message, report
from .raster_io import crs_from_string, write_geotiff

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
# Working copies held at once while stacking: aligned inputs, transformed stack, logarithms.
_WORKING_COPIES = 3


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
    label = name or path
    grid_crs = crs_from_string(grid.crs)
    with _open(path, label) as src:
        if src.crs is None:
            raise InputError(f"The raster '{label}' has no CRS; assign one (Raster ▸ Projections ▸ Assign Projection).")
        bounds = transform_bounds(src.crs, grid_crs, *src.bounds, densify_pts=21)
        if not (bounds[0] < grid.x_max and bounds[2] > grid.x_min and bounds[1] < grid.y_max
                and bounds[3] > grid.y_min):
            raise InputError(
                f"The raster '{label}' {_rounded(bounds)} does not overlap the template grid {_rounded(grid.bounds)}; "
                "remove it or choose another template."
            )
        if src.crs != grid_crs:
            log_message(log, f"'{label}' is in {_crs_label(src.crs)}; reprojected to the template CRS "
                             f"{_crs_label(grid_crs)}.")
        nodata = src.nodata
        if nodata is None and np.dtype(src.dtypes[0]).kind == "f":
            nodata = np.nan
        out = np.full((src.count, grid.rows, grid.cols), np.nan)
        for index in range(src.count):  # band by band: rasterio 1.4 ignores src_nodata in a multi-band warp
            reproject(
                rasterio.band(src, index + 1), out[index], src_nodata=nodata,
                dst_transform=Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max),
                dst_crs=grid_crs, dst_nodata=np.nan,
                resampling=Resampling.nearest if categorical else Resampling.bilinear,
            )
    if np.isnan(out).all():
        raise InputError(f"The raster '{label}' has no valid cell on the template grid (all nodata there).")
    return out


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
    """Align ``inputs`` onto ``grid`` and stack them (see :func:`make_stack`).

    ``study_area`` (boolean, the grid's shape) keeps only the cells inside it: the others are nodata and
    count in no statistic or class share. With ``recipe`` (another stack's), its transform, class lists and
    statistics are re-applied instead of fitted (``transform``, ``transform_bands``, ``normalise`` and
    ``min_class_share`` are then ignored), so a model trained on that stack can map a new area. Returns the
    (bands, rows, cols) stack with NaN at nodata, its band names and its recipe.
    """
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
    elif transform in TRANSFORMS[1:]:  # refuse bad transform bands before the (slow) alignment
        parts = _transform_parts(flat_names, categorical, transform, transform_bands)
        logged = [band for own, is_log in zip(names, logged_inputs) if is_log for band in own if band in parts]
        if logged:
            raise InputError(
                f"{', '.join(logged)}: already log10 values (gridded with 'Interpolate log10'); a {transform} of "
                "them would take logarithms of logarithms. Grid the elements without log10 for a log-ratio "
                "transform, or choose the transform 'none'.")
    band_count = len(flat_names)
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
        stack, names = apply_stack_recipe(arrays, flat_names, recipe, log=log)
        report(progress, 95.0)
        return stack, names, recipe
    stack, out_names, made = make_stack(arrays, flat_names, categorical=categorical, transform=transform,
                                        transform_bands=transform_bands, normalise=normalise,
                                        min_class_share=min_class_share, log=log)
    made["input_value_transforms"] = value_transforms  # log10 grids must be log10 again when the recipe is reused
    # How far each input band's values reach from the data behind them (IDW search radius, density radius):
    # spatial cross-validation keeps at least this gap between training and held-out cells.
    made["evidence_reach"] = {band: reach for own, reach in zip(names, reaches) if reach for band in own}
    report(progress, 95.0)
    return stack, out_names, made


def _keep_study_area(arrays: np.ndarray, study_area: np.ndarray, log: LogFn) -> None:
    """Make every cell outside ``study_area`` nodata in every band, in place."""
    if study_area.shape != arrays.shape[1:]:
        raise InputError(f"The study-area mask {study_area.shape} does not match the grid {arrays.shape[1:]}.")
    if not (study_area & ~np.isnan(arrays).any(axis=0)).any():
        raise InputError("No cell inside the study area has a value in every input; check that the study area "
                         "overlaps the inputs' valid areas.")
    arrays[:, ~study_area] = np.nan
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
    if transform not in TRANSFORMS:
        raise InputError(f"Unknown transform '{transform}'; choose one of {', '.join(TRANSFORMS)}.")
    if normalise not in NORMALISATIONS:
        raise InputError(f"Unknown normalisation '{normalise}'; choose one of {', '.join(NORMALISATIONS)}.")
    unknown = [name for name in categorical if name not in band_names]
    if unknown:
        raise InputError(f"Categorical band(s) {', '.join(unknown)} are not in the stack.")
    if not 0.0 <= min_class_share <= 1.0:
        raise InputError(f"The minimum class share must be between 0 and 1 (e.g. 0.02 for 2 %); got "
                         f"{min_class_share:g}.")
    valid = ~np.isnan(arrays).any(axis=0)
    if not valid.any():
        raise InputError("No cell has a value in every band (the inputs' valid areas do not overlap); "
                         "check the inputs' extents and nodata.")
    log_message(log, f"{int(valid.sum())} of {valid.size} cells have a value in every band; the others are nodata "
                     "in every band.")
    categorical = [name for name in band_names if name in categorical]
    recipe = {
        "format": RECIPE_FORMAT,
        "version": RECIPE_VERSION,
        "input_bands": band_names,
        "categorical_bands": categorical,
        "transform": _fit_transform(arrays, band_names, valid, categorical, transform, transform_bands, log),
        "min_class_share": min_class_share,
        "indicators": {name: _fit_classes(arrays[band_names.index(name)][valid], name, min_class_share, log)
                       for name in categorical},
    }
    stack, names = _apply_transform(arrays, band_names, recipe)
    taken = sorted({name for name in names if names.count(name) > 1})
    if taken:
        raise InputError(f"Band name(s) {', '.join(taken)} would be given twice (an indicator band of a categorical "
                         "raster has the name of another band); rename one of the bands.")
    recipe["normalise"] = _fit_normalisation(stack, names, valid, set(indicator_meanings(recipe)), normalise, log)
    recipe["output_bands"] = names
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
    stack, names = _apply_transform(arrays[[band_names.index(name) for name in wanted]], wanted, recipe, log)
    if names != recipe["output_bands"]:
        raise InputError(f"The recipe's output bands {recipe['output_bands']} do not match its transform ({names}).")
    _apply_normalisation(stack, names, recipe["normalise"])
    return stack, names


def write_evidence_stack(path: str, stack: np.ndarray, grid: GridSpec, band_names: Sequence[str],
                         recipe: dict) -> None:
    """Write the stack as a GeoTIFF with its recipe as JSON in the ``DEEPPROSPECT_STACK`` tag."""
    write_geotiff(path, stack, grid, band_names, metadata={
        "DEEPPROSPECT_ALGORITHM": "evidencestack",
        STACK_TAG: json.dumps(recipe, allow_nan=False),
    })


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


def _fit_transform(arrays: np.ndarray, band_names: list[str], valid: np.ndarray, categorical: Sequence[str],
                   method: str, requested: Sequence[str] | None, log: LogFn) -> dict:
    """The transform part of the recipe: method, parts in order and zero-replacement values."""
    if method == "none":
        if requested:
            log_message(log, "No transform chosen: the transform bands are ignored.")
        return {"method": "none"}
    parts = _transform_parts(band_names, categorical, method, requested)
    replacement = {}
    for name in parts:
        values = arrays[band_names.index(name)][valid]
        positive = values[values > 0]
        if positive.size == 0:
            raise InputError(f"Band '{name}' has no positive value, so it has no logarithm; remove it from "
                             "the transform bands.")
        replacement[name] = float(ZERO_REPLACEMENT_FRACTION * positive.min())
        if positive.size < values.size:
            log_message(log, f"Band '{name}': {values.size - positive.size} value(s) ≤ 0 replaced by "
                             f"{replacement[name]:.6g} ({ZERO_REPLACEMENT_FRACTION} × its smallest positive value) "
                             "before the logarithm.")
    transform = {"method": method, "bands": parts, "zero_rule": ZERO_RULE, "replacement": replacement}
    if method == "ilr":
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


def _apply_transform(arrays: np.ndarray, band_names: list[str], recipe: dict,
                     log: LogFn = None) -> tuple[np.ndarray, list[str]]:
    """Masked, transformed stack with indicator bands; a transformed group or a categorical band's indicators
    take its position."""
    spec = recipe["transform"]
    mask = np.isnan(arrays).any(axis=0)
    parts = spec.get("bands", [])
    indicators = recipe.get("indicators", {})
    blocks = []
    for index, name in enumerate(band_names):
        if parts and name == parts[0]:
            blocks.extend(_log_ratio(arrays[[band_names.index(part) for part in parts]], parts, spec))
        elif name in indicators:
            blocks.extend(_indicator_bands(arrays[index][~mask], mask, name, indicators[name], log))
        elif name not in parts:
            blocks.append((arrays[index], name))
    stack = np.stack([band for band, _ in blocks])
    stack[:, mask] = np.nan
    return stack, [name for _, name in blocks]


def _log_ratio(parts: np.ndarray, names: list[str], spec: dict) -> list[tuple[np.ndarray, str]]:
    """log10, clr or pivot ilr of the parts (positive after the recorded zero replacement)."""
    replacement = np.array([spec["replacement"][name] for name in names])[:, None, None]
    positive = np.where(parts <= 0, replacement, parts)
    if spec["method"] == "log10":
        return [(band, f"log10_{name}") for band, name in zip(np.log10(positive), names)]
    logs = np.log(positive)
    if spec["method"] == "clr":
        return [(band, f"clr_{name}") for band, name in zip(logs - logs.mean(axis=0), names)]
    coordinates = np.tensordot(pivot_basis(len(names)), logs, axes=1)
    return [(band, f"ilr{i}") for i, band in enumerate(coordinates, start=1)]


def _fit_classes(values: np.ndarray, name: str, min_share: float, log: LogFn) -> dict:
    """The classes of a categorical band's valid ``values`` that get their own indicator band; is there an other?"""
    classes, counts = np.unique(values, return_counts=True)
    shares = counts / values.size
    common = shares >= min_share
    labels, rare = [_class_value(value) for value in classes[common]], [_class_value(v) for v in classes[~common]]
    described = ", ".join(f"{label} ({share:.1%})" for label, share in zip(labels, shares[common]))
    log_message(log, f"'{name}': {len(classes)} class(es); " + (
        f"{described} cover at least {min_share:.1%} of the valid cells each and get a band {name}_<class>"
        if labels else f"none covers {min_share:.1%} of the valid cells") + (
        f"; {len(rare)} rarer class(es) ({shares[~common].sum():.1%} of the cells) go to {name}_{OTHER_CLASSES}."
        if rare else "."))
    return {"classes": labels, "other_classes": rare}


def _indicator_bands(values: np.ndarray, mask: np.ndarray, name: str, spec: dict,
                     log: LogFn) -> list[tuple[np.ndarray, str]]:
    """0/1 bands ``<name>_<class>`` (and ``<name>_other``) of a categorical band; ``values`` are its valid cells."""
    unseen = np.unique(values[~np.isin(values, spec["classes"] + spec["other_classes"])])
    if unseen.size:
        goes = f"go to {name}_{OTHER_CLASSES}" if spec["other_classes"] else "are 0 in every indicator band"
        log_message(log, f"'{name}': class(es) {', '.join(str(_class_value(v)) for v in unseen)} did not occur "
                         f"where the recipe was made; they {goes}.")
    bands = []
    for band_name, meaning in indicator_meanings({"indicators": {name: spec}}).items():
        band = np.zeros(mask.shape)
        band[~mask] = values == meaning["class"] if "class" in meaning else ~np.isin(values, meaning["other_than"])
        bands.append((band, band_name))
    return bands


def _class_value(value: float) -> int | float:
    """A class value as JSON and band names write it: an int when it is whole (585, not 585.0)."""
    return int(value) if float(value).is_integer() else float(value)


def _fit_normalisation(stack: np.ndarray, names: list[str], valid: np.ndarray, indicators: set[str],
                       method: str, log: LogFn) -> dict:
    """Per continuous band: mean/std (z-score) or min/max (min-max) over the common valid cells."""
    statistics = {}
    if method != "none":
        for band, name in zip(stack, names):
            if name in indicators:
                continue
            values = band[valid]
            if method == "z-score":
                statistics[name] = {"mean": float(values.mean()), "std": float(values.std())}
            else:
                statistics[name] = {"min": float(values.min()), "max": float(values.max())}
            if values.min() == values.max():
                log_message(log, f"Band '{name}' is constant over the valid cells; it is only shifted, not scaled.")
    return {"method": method, "statistics": statistics}


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
