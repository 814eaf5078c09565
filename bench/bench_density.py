"""Distance and density benchmark: DeepProspect's core/gridding/density.py against gdal_proximity and qgis:linedensity.

usage: python bench/bench_density.py [--slow] [--out DIR]

  --slow    run qgis:linedensity on the full 41 m grid (2 minutes or more; the default run uses 328 m pixels)
  --out     where inputs and rasters go (default: a new temporary folder)

A benchmark, not a test: it times, compares values and prints figures and ratios. It exits 0 whether targets
are met or not.

Standard input (made here, same recipe as the project's make_faults.py): 300 seeded (42) random fault
polylines, each from a uniform start in a 41 km square at (500000, 3300000), EPSG:32650, with 5–19 vertices,
a heading random walk (N(0, 0.2) rad per step) and steps of 200–1200 m; GeoPackage layer ``faults``.

a. distance on the 1000 × 1000 grid of 41 m over the square: ours (exact distance to the fault segments,
   features outside the grid counted) vs gdal.Rasterize + gdal.ComputeProximity (DISTUNITS=GEO, distance to
   burnt pixel centres), both in memory, best of 5 each, interleaved; info (ours measures more).
b. line density, radius 2000: qgis:linedensity through scripts/qgis_process.sh (its grid is the layer's
   extent) vs deepprospect:bufferdensity through the same script and vs core feature_density in-process, on
   the same grid; target ≥ 20 × faster. The default run also times ours on the 41 m grid against the anchor
   figure measured once (qgis:linedensity, 41 m: 128 s).
c. buffer-distance density (linear decay, B = 2000) on the 1000 × 1000 grid: ours only (info).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QGIS_PROCESS = ROOT / "scripts" / "qgis_process.sh"
X0, Y0, SIDE, EPSG = 500000.0, 3300000.0, 41000.0, 32650
N_LINES, SEED = 300, 42
PIXEL, CELLS, RADIUS = 41.0, 1000, 2000.0
QUICK_PIXEL = 8 * PIXEL  # default line-density grid: 1/64 of the cells, so qgis:linedensity takes seconds
ANCHOR_41M_S = 128.0


def import_package():
    """Import this repo as ``deepprospect`` whatever its folder is called (symlink in a temp dir)."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(parent))


def make_faults(path: Path) -> list[dict]:
    """Write the standard fault GeoPackage and return the lines as GeoJSON dicts."""
    from osgeo import ogr, osr

    rng = np.random.default_rng(SEED)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    layer = ds.CreateLayer("faults", srs, ogr.wkbLineString)
    layer.StartTransaction()
    lines = []
    for _ in range(N_LINES):
        x, y = rng.uniform(0, SIDE, 2)
        heading = rng.uniform(0, np.pi)
        vertices = []
        for _ in range(rng.integers(5, 20)):
            vertices.append((X0 + x, Y0 + y))
            heading += rng.normal(0, 0.2)
            step = rng.uniform(200, 1200)
            x, y = x + step * np.cos(heading), y + step * np.sin(heading)
        geometry = {"type": "LineString", "coordinates": vertices}
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromJson(json.dumps(geometry)))
        layer.CreateFeature(feature)
        lines.append(geometry)
    layer.CommitTransaction()
    ds = None
    return lines


def best_of(fn, repeats: int):
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def qgis_process(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(["bash", str(QGIS_PROCESS), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"qgis_process {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def read_band(path: Path) -> tuple[np.ndarray, tuple]:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1).astype(np.float64), src.transform.to_gdal()


def part_a(lines: list[dict], gpkg: Path) -> None:
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.gridding.density import FeatureSet, distance_to_features
    from osgeo import gdal, ogr

    print(f"\n== a. distance, {CELLS} × {CELLS} cells of {PIXEL:g} m: ours vs gdal.Rasterize + gdal.ComputeProximity")
    grid = GridSpec.from_extent(X0, Y0, X0 + SIDE, Y0 + SIDE, PIXEL, f"EPSG:{EPSG}")
    vector = ogr.Open(str(gpkg))

    def gdal_run() -> np.ndarray:
        mem = gdal.GetDriverByName("MEM")
        burnt = mem.Create("", grid.cols, grid.rows, 1, gdal.GDT_Byte)
        burnt.SetGeoTransform(grid.geotransform)
        gdal.RasterizeLayer(burnt, [1], vector.GetLayerByName("faults"), burn_values=[1])
        proximity = mem.Create("", grid.cols, grid.rows, 1, gdal.GDT_Float32)
        proximity.SetGeoTransform(grid.geotransform)
        gdal.ComputeProximity(burnt.GetRasterBand(1), proximity.GetRasterBand(1), ["VALUES=1", "DISTUNITS=GEO"])
        return proximity.GetRasterBand(1).ReadAsArray()

    ours_t = gdal_t = math.inf
    for _ in range(5):  # interleaved, so both see the same machine load
        t, ours = best_of(lambda: distance_to_features(FeatureSet.from_geojson(lines), grid), 1)
        ours_t = min(ours_t, t)
        t, theirs = best_of(gdal_run, 1)
        gdal_t = min(gdal_t, t)
    print(f"  ours {ours_t:.3f} s  gdal {gdal_t:.3f} s  ours/gdal {ours_t / gdal_t:.2f} "
          "(info; best of 5 each, interleaved)")
    difference = np.abs(ours - theirs)
    print(f"  values: |ours − gdal| median {np.median(difference):.1f} m, max {difference.max():.1f} m "
          f"(a pixel diagonal is {PIXEL * math.sqrt(2):.1f} m), correlation "
          f"{np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]:.4f}: gdal_proximity measures to burnt pixel centres "
          "and ignores faults outside the grid; ours measures to the faults themselves")


def part_b(gpkg: Path, slow: bool) -> None:
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.gridding.density import FeatureSet, feature_density
    from osgeo import ogr

    pixel = PIXEL if slow else QUICK_PIXEL
    vector = ogr.Open(str(gpkg))  # keep the data source alive while its layer is used
    layer = vector.GetLayerByName("faults")
    x_min, x_max, y_min, y_max = layer.GetExtent()
    lines = [json.loads(feature.GetGeometryRef().ExportToJson()) for feature in layer]
    grid = GridSpec(x_min, y_max, pixel, pixel, math.ceil((x_max - x_min) / pixel),
                    math.ceil((y_max - y_min) / pixel), f"EPSG:{EPSG}")
    print(f"\n== b. line density, radius {RADIUS:g}, pixel {pixel:g} on the layer's extent ({grid.rows} × "
          f"{grid.cols} cells{'' if slow else '; --slow for 41 m'}): qgis:linedensity vs ours")
    out = Path(gpkg).parent
    print("  running qgis:linedensity through scripts/qgis_process.sh (once) ...", flush=True)
    anchor_t = qgis_process("run", "qgis:linedensity", "--", f"INPUT={gpkg}", f"RADIUS={RADIUS:g}",
                            f"PIXEL_SIZE={pixel:g}", f"OUTPUT={out / 'qgis_linedensity.tif'}")
    extent = f"{x_min!r},{x_max!r},{y_min!r},{y_max!r} [EPSG:{EPSG}]"
    ours_qp_t, _ = best_of(lambda: qgis_process(
        "run", "deepprospect:bufferdensity", "--", f"INPUT={gpkg}", "MODE=density", f"RADIUS={RADIUS:g}",
        f"PIXEL_SIZE={pixel:g}", f"EXTENT={extent}", f"OUTPUT={out / 'ours_density.tif'}"), 2)
    startup_t, _ = best_of(lambda: qgis_process("list"), 2)
    core_t, ours = best_of(lambda: feature_density(FeatureSet.from_geojson(lines), grid, RADIUS), 2)
    theirs, transform = read_band(out / "qgis_linedensity.tif")
    assert np.allclose(transform, grid.geotransform) and theirs.shape == grid.shape
    anchor_net, ours_net = anchor_t - startup_t, ours_qp_t - startup_t
    print(f"  wall through qgis_process: qgis:linedensity {anchor_t:.1f} s, deepprospect:bufferdensity "
          f"{ours_qp_t:.2f} s; start-up (qgis_process list) {startup_t:.2f} s; core feature_density in-process "
          f"{core_t:.2f} s")
    print(f"  ratio net of start-up {anchor_net:.1f} s / {max(ours_net, 0.01):.2f} s = "
          f"{anchor_net / max(ours_net, 0.01):.0f}×; qgis:linedensity net / core {anchor_net / core_t:.0f}×; "
          f"wall / wall {anchor_t / ours_qp_t:.1f}× (target ≥ 20×; ours best of 2, anchor once)")
    compared = theirs > 0.1 * theirs.max()
    relative = np.abs(ours[compared] - theirs[compared]) / theirs[compared]
    print(f"  values on the {compared.sum()} cells where qgis's density > 10 % of its max: median relative "
          f"difference {np.median(relative):.2%}, 95th percentile {np.percentile(relative, 95):.2%}, "
          f"{np.mean(relative <= 0.01):.1%} within 1 %, "
          f"totals ratio {ours[compared].sum() / theirs[compared].sum():.4f}"
          " (qgis's circle is a 36-gon)")
    if not slow:
        full = GridSpec(x_min, y_max, PIXEL, PIXEL, math.ceil((x_max - x_min) / PIXEL),
                        math.ceil((y_max - y_min) / PIXEL), f"EPSG:{EPSG}")
        full_t, _ = best_of(lambda: feature_density(FeatureSet.from_geojson(lines), full, RADIUS), 2)
        print(f"  41 m grid ({full.rows} × {full.cols}): core feature_density {full_t:.2f} s vs qgis:linedensity "
              f"{ANCHOR_41M_S:.0f} s (anchor measured once, not in this run): {ANCHOR_41M_S / full_t:.0f}×")


def part_c(lines: list[dict]) -> None:
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.gridding.density import FeatureSet, feature_density

    grid = GridSpec.from_extent(X0, Y0, X0 + SIDE, Y0 + SIDE, PIXEL, f"EPSG:{EPSG}")
    print(f"\n== c. buffer-distance density (linear decay, B = {RADIUS:g}) on {CELLS} × {CELLS} cells: ours (info)")
    for kernel in ("uniform", "triangular"):
        t, _ = best_of(lambda kernel=kernel: feature_density(FeatureSet.from_geojson(lines), grid, RADIUS, kernel), 2)
        print(f"  {kernel}: {t:.2f} s (best of 2)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="qgis:linedensity on the full 41 m grid (~2 min)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="deepprospect-bench-density-"))
    out.mkdir(parents=True, exist_ok=True)
    import_package()
    gpkg = out / "faults.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    lines = make_faults(gpkg)
    print(f"DeepProspect distance/density benchmark: {N_LINES} faults (seed {SEED}), "
          f"{sum(len(g['coordinates']) - 1 for g in lines)} segments, in {out}")
    part_a(lines, gpkg)
    part_b(gpkg, args.slow)
    part_c(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
