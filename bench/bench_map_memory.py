"""Benchmark of the map steps' memory: evaluation, anomaly classes and targets, and the report, read in windows.

A seeded smooth probability map (Gaussian highs on a smooth background, a nodata margin) of N × N cells, a
member map and an uncertainty map (float32 GeoTIFFs, 256-cell tiles), and 300 deposits (200 training, 100
held out). Each step runs in a fresh child process as its algorithm runs it (``raster_map`` windows); its
peak RSS is sampled every 5 ms from ``/proc/self/statm`` (Linux) while it runs, and counted above the RSS it
started from (``ru_maxrss`` would keep the imports' high-water mark):

* evaluate: ``evaluate_map`` (ROC, success/prediction rate, P-A);
* anomaly: ``classify`` (5 / 15 / 30 %), ``write_class_raster`` and ``find_targets`` (classes 1 … 1);
* report: ``write_report`` on the map, one member and the uncertainty.

Anchor: a child that only reads the map whole as float64 (``read_map``), which every one of these steps did
first before they read in windows. Ratios are ours / anchor for the peak RSS above the imports (below 1: the
step needs less than holding the map once). Run two sizes to see that the peak does not grow with the map:
RSS includes GDAL's block cache (``GDAL_CACHEMAX``, 5 % of the RAM by default), which fills up to that cap on
maps larger than it; ``--gdal-cache 64`` caps it to show the steps' own memory.

Usage: ``python bench/bench_map_memory.py [--size 4000] [--gdal-cache MB]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 42
STEPS = ("anchor", "evaluate", "anomaly", "report")


def import_plugin():
    """Import this repo as ``deepprospect`` whatever its folder is called (symlink in a temp dir)."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(parent))


def make_inputs(folder: Path, size: int) -> None:
    """The maps and deposits, written to ``folder``."""
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.raster_io import write_geotiff
    from scipy import ndimage

    rng = np.random.default_rng(SEED)
    grid = GridSpec(500000.0, 7000000.0, 50.0, 50.0, size, size, "EPSG:32650")
    deposits = rng.integers(0, size, (300, 2))
    field = ndimage.zoom(rng.uniform(0, 0.35, (size // 50 + 2,) * 2).astype(np.float32), 50, order=1)[:size, :size]
    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, size, dtype=np.float32)[None, :]
    for row, col in deposits[::10] / size:
        np.maximum(field, np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / 0.002), out=field)
    field += rng.uniform(0, 0.02, field.shape).astype(np.float32)
    np.clip(field, 0, 1, out=field)
    field[:, :5] = np.nan
    write_geotiff(str(folder / "map.tif"), field, grid, ["prospectivity"])
    write_geotiff(str(folder / "member.tif"), np.clip(0.9 * field, 0, 1), grid, ["prospectivity"])
    write_geotiff(str(folder / "uncertainty.tif"), np.abs(field - 0.5) / 2, grid, ["std"])
    xy = np.column_stack([grid.x_min + (deposits[:, 1] + 0.5) * 50.0, grid.y_max - (deposits[:, 0] + 0.5) * 50.0])
    np.save(folder / "deposits.npy", xy)


class PeakRss:
    """The largest resident set size of this process while the block runs, sampled every 5 ms (MiB)."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(step: str, folder: Path) -> None:
    """Run one step and print a JSON line with seconds, the RSS it started from and its peak RSS (MiB)."""
    import_plugin()
    from deepprospect.core.mapping import anomaly
    from deepprospect.core.mapping.streaming import raster_map
    from deepprospect.core.raster_io import read_map
    from deepprospect.core.scoring.evaluation import evaluate_map
    from deepprospect.core.scoring.report import ReportInputs, write_report

    xy = np.load(folder / "deposits.npy")
    path = str(folder / "map.tif")
    start = time.perf_counter()
    with PeakRss() as rss:
        if step == "anchor":
            figure = float(np.nanmean(read_map(path).values))
        elif step == "evaluate":
            with raster_map(path) as source:
                figure = evaluate_map(source, source.grid, xy[:200], xy[200:]).sets[-1].roc.auc
        elif step == "anomaly":
            with raster_map(path) as source:
                result = anomaly.classify(source, source.grid, (5, 15, 30), xy)
                anomaly.write_class_raster(str(folder / "classes.tif"), source, source.grid, result)
                figure = len(anomaly.find_targets(source, source.grid, result, 1, 0.0, xy)[0])
        else:
            figure = write_report(str(folder / "report.html"), ReportInputs(
                path, xy[:200], xy[200:], member_paths=[str(folder / "member.tif")],
                uncertainty_path=str(folder / "uncertainty.tif"))).held_out_auc
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "imported_mib": rss.start, "peak_mib": rss.peak, "figure": figure}))


def run_child(step: str, folder: Path, gdal_cache: int | None) -> dict:
    env = {**os.environ, **({"GDAL_CACHEMAX": str(gdal_cache)} if gdal_cache else {})}
    done = subprocess.run([sys.executable, __file__, "--child", step, str(folder)], capture_output=True, text=True,
                          check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000, help="map side in cells (default 4000: 16 M cells)")
    parser.add_argument("--gdal-cache", type=int, default=None, help="GDAL_CACHEMAX of the children, MB")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    import_plugin()
    with tempfile.TemporaryDirectory(prefix="deepprospect-bench-maps-") as name:
        folder = Path(name)
        make_inputs(folder, args.size)
        results = {step: run_child(step, folder, args.gdal_cache) for step in STEPS}
    anchor = results["anchor"]["peak_mib"] - results["anchor"]["imported_mib"]
    print(f"map {args.size} × {args.size} cells ({args.size**2 * 8 / 2**20:.0f} MiB as float64), GDAL_CACHEMAX "
          f"{args.gdal_cache or 'default'}")
    print(f"{'':44}{'time (s)':>10}{'peak RSS (MiB)':>16}{'above imports':>15}{'ratio / anchor':>16}")
    for step, label in (("anchor", "anchor: read the map whole (read_map)"), ("evaluate", "evaluate_map"),
                        ("anomaly", "classify + class raster + find_targets"), ("report", "write_report (2 maps)")):
        result = results[step]
        above = result["peak_mib"] - result["imported_mib"]
        print(f"{label:44}{result['seconds']:>10.1f}{result['peak_mib']:>16.0f}{above:>15.0f}{above / anchor:>16.2f}")


if __name__ == "__main__":
    main()
