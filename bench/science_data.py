"""Evidence stacks of the science benchmark's datasets, built with the plugin's own core functions.

* **Kolari IOCG** (tests/data/kolari_iocg): the reference protocol's grid and features — 500 m cells on the
  study area's upper-left corner, the 22 till elements by IDW (power 2, 12 nearest samples, raw ppm) then
  log10 (values ≤ 0 floored at half the grid's smallest positive value), and the distance to the 1:1 M faults.
* **Kolari, pipeline evidence**: the same grid with the full pipeline's recipe — IDW of log10 values, fault
  buffer-distance density (1 km) and distance.
* **Murchison gold** (tests/data/murchison): 1 km cells over the deposits' window; distance to faults,
  fault buffer-distance density (5 km), inside greenstone (0/1) and distance to the greenstone contact.
* **Demo survey** (resources/demo): 100 m cells; 18 elements by IDW (12 nearest, log10) and the fault
  distance and density, with the barren holes as known negatives.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_PARENT = tempfile.mkdtemp()  # import the plugin as `deepprospect` whatever the clone is called
os.symlink(ROOT, Path(_PARENT) / "deepprospect", target_is_directory=True)
sys.path.insert(0, _PARENT)

from deepprospect.core.evidence.transforms import log10_positive  # noqa: E402
from deepprospect.core.grid import GridSpec  # noqa: E402
from deepprospect.core.gridding.density import FeatureSet, distance_to_features, feature_density  # noqa: E402
from deepprospect.core.gridding.idw import IdwSettings, idw_grid  # noqa: E402
from deepprospect.core.sampling.labels import study_area_mask  # noqa: E402
from osgeo import ogr  # noqa: E402  (after rasterio: the other order crashes with two GDAL builds)

KOLARI = ROOT / "tests" / "data" / "kolari_iocg" / "kolari_iocg.gpkg"
MURCHISON = ROOT / "tests" / "data" / "murchison" / "murchison_copper.gpkg"
DEMO = ROOT / "resources" / "demo" / "demo_survey.gpkg"


@dataclass
class Dataset:
    """One benchmark dataset: stack (bands, rows, cols), grid, study area mask, deposits, barren points."""

    name: str
    stack: np.ndarray
    band_names: list[str]
    grid: GridSpec
    study_area: np.ndarray
    deposit_xy: np.ndarray
    barren_xy: np.ndarray | None = None


def _geometries(path: Path, layer: str) -> list[dict]:
    source = ogr.Open(str(path))
    return [json.loads(f.GetGeometryRef().ExportToJson()) for f in source.GetLayerByName(layer)]


def _points(path: Path, layer: str) -> np.ndarray:
    return np.array([g["coordinates"][:2] for g in _geometries(path, layer)], dtype=np.float64)


def _fields(path: Path, layer: str, names: list[str]) -> np.ndarray:
    source = ogr.Open(str(path))
    rows = [[math.nan if f.GetField(n) is None else float(f.GetField(n)) for n in names]
            for f in source.GetLayerByName(layer)]
    return np.array(rows, dtype=np.float64)


def _log10_floored(grids: np.ndarray) -> np.ndarray:
    """log10 per band; values ≤ 0 floored at half the band's smallest positive value."""
    out = np.empty_like(grids, dtype=np.float32)
    for i, band in enumerate(grids):
        floor = 0.5 * band[band > 0].min()
        out[i] = np.log10(np.where(band > 0, band, floor))
    return out


def _zscore(stack: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Z-scores with statistics over the study area's cells (as the evidence stack does)."""
    values = stack[:, inside]
    mean, std = values.mean(axis=1), values.std(axis=1)
    return ((stack - mean[:, None, None]) / np.where(std > 0, std, 1)[:, None, None]).astype(np.float32)


def kolari() -> Dataset:
    area = _geometries(KOLARI, "study_area")
    xs = [x for g in area for ring in _rings(g) for x, _ in ring]
    ys = [y for g in area for ring in _rings(g) for _, y in ring]
    grid = GridSpec.from_extent(min(xs), min(ys), max(xs), max(ys), 500.0, "EPSG:3067")
    inside = study_area_mask(area, grid)
    source = ogr.Open(str(KOLARI))  # the layer lives only as long as its data source
    defn = source.GetLayerByName("till_samples").GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    elements = [f for f in fields if "_ppm_511" in f]
    samples = _points(KOLARI, "till_samples")
    values = _fields(KOLARI, "till_samples", elements)
    raw = idw_grid(samples, values, grid, IdwSettings(power=2.0, max_points=12), dtype=np.float64)
    logs = _log10_floored(raw)
    faults = distance_to_features(FeatureSet.from_geojson(_geometries(KOLARI, "faults_1M")), grid)
    stack = _zscore(np.concatenate([logs, faults[None]]), inside)
    names = [f"log10_{e.split('_')[0]}" for e in elements] + ["fault_distance"]
    return Dataset("Kolari IOCG", stack, names, grid, inside, _points(KOLARI, "iocg_occurrences"))


def kolari_pipeline() -> Dataset:
    """Kolari with the full pipeline's evidence recipe: IDW of log10 values (non-positive skipped), fault
    buffer-distance density (1 km, linear decay) and distance, z-scored over the study area."""
    reference = kolari()
    grid, inside = reference.grid, reference.study_area
    source = ogr.Open(str(KOLARI))
    defn = source.GetLayerByName("till_samples").GetLayerDefn()
    elements = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())
                if "_ppm_511" in defn.GetFieldDefn(i).GetName()]
    logs, _ = log10_positive(_fields(KOLARI, "till_samples", elements))
    grids = idw_grid(_points(KOLARI, "till_samples"), logs, grid, IdwSettings(power=2.0, max_points=12))
    faults = FeatureSet.from_geojson(_geometries(KOLARI, "faults_1M"))
    stack = np.concatenate([grids, feature_density(faults, grid, 1000.0, "triangular")[None],
                            distance_to_features(faults, grid)[None]])
    stack[:, ~inside] = np.nan
    names = [e.split("_")[0] for e in elements] + ["fault_density", "fault_distance"]
    return Dataset("Kolari IOCG, pipeline evidence", _zscore(stack, inside), names, grid, inside,
                   reference.deposit_xy)


def _rings(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return geometry["coordinates"]
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def murchison(subsample: int | None = None, seed: int = 0) -> Dataset:
    deposits = _points(MURCHISON, "murchison_gold")
    source = ogr.Open(str(MURCHISON))
    faults = [json.loads(ogr.CreateGeometryFromWkt(f.GetField("WKT")).ExportToJson())
              for f in source.GetLayerByName("murchison_faults")]
    rings, holes = [], []
    for f in source.GetLayerByName("murchison_greenstone_rings"):
        ring = json.loads(ogr.CreateGeometryFromWkt(f.GetField("WKT")).ExportToJson())
        (holes if str(f.GetField("is_hole_cw")) in ("1", "TRUE", "True") else rings).append(ring)
    grid = GridSpec.from_extent(380000.0, 6700000.0, 690000.0, 7100000.0, 1000.0, "EPSG:20350")
    fault_set = FeatureSet.from_geojson(faults)
    green = study_area_mask(rings, grid, holes).astype(np.float32)
    contact = FeatureSet.from_geojson([{"type": "LineString", "coordinates": r["coordinates"][0]}
                                       for r in rings + holes])
    stack = np.stack([
        np.log10(1 + distance_to_features(fault_set, grid)),
        feature_density(fault_set, grid, 5000.0, "triangular"),
        green,
        np.log10(1 + distance_to_features(contact, grid)) * np.where(green > 0, 1, -1),
    ])
    inside = np.ones(grid.shape, dtype=bool)
    stack = _zscore(stack, inside)
    name = "Murchison gold"
    if subsample:
        keep = np.sort(np.random.default_rng(seed).choice(len(deposits), subsample, replace=False))
        deposits, name = deposits[keep], f"Murchison gold, {subsample} deposits"
    names = ["log_fault_distance", "fault_density_5km", "greenstone", "signed_log_contact_distance"]
    return Dataset(name, stack.astype(np.float32), names, grid, inside, deposits)


def demo() -> Dataset:
    elements = ["Au", "Ag", "Cu", "Pb", "Zn", "As", "Sb", "Mo", "Bi", "W", "Fe", "Mn", "Ni", "Cr", "Co", "Mg", "K",
                "Ba"]
    grid = GridSpec.from_extent(400000.0, 3300000.0, 420000.0, 3320000.0, 100.0, "EPSG:32650")
    samples = _points(DEMO, "samples")
    raw = idw_grid(samples, _fields(DEMO, "samples", elements), grid, IdwSettings(power=2.0, max_points=12),
                   dtype=np.float64)
    faults = FeatureSet.from_geojson(_geometries(DEMO, "faults"))
    stack = np.concatenate([_log10_floored(raw), distance_to_features(faults, grid)[None],
                            feature_density(faults, grid, 1000.0, "triangular")[None]])
    inside = np.ones(grid.shape, dtype=bool)
    names = [f"log10_{e}" for e in elements] + ["fault_distance", "fault_density"]
    return Dataset("Demo survey", _zscore(stack, inside), names, grid, inside, _points(DEMO, "deposits"),
                   _points(DEMO, "barren_holes"))
