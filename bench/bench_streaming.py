"""Benchmark of the windowed evidence stack, element screening and training labels: peak RSS and time.

A seeded synthetic survey grid (``--bands`` log-normal element bands of ``--size`` × ``--size`` cells, float32,
with a nodata corner) is stacked (z-score, optionally a log-ratio ``--transform``), screened against 60 deposits
(10 background cells per deposit) and labelled (patch 32, 3×3 positives, one negative per positive). Each step
runs twice, each time in a fresh child process whose peak RSS comes from ``resource.getrusage`` (the inputs are
made in a child too: Linux counts the parent's RSS at fork in a child's peak):

* **windowed** (what the algorithms run): ``build_evidence_stack_file``, ``screen_bands`` and
  ``build_training_set`` on a :class:`~core.bands.RasterBands` of the file;
* **whole** (the anchor: what they ran before): ``build_evidence_stack`` + ``write_evidence_stack`` in memory,
  and screening and labels on ``read_raster`` of the whole stack.

Both give the same stack (to float32 rounding), the same screening and the same training set; the ratios are
whole / windowed (above 1: the windowed step needs less). The child's own start-up (Python, numpy, rasterio,
sklearn) is measured too and printed, so the RSS that grows with the grid can be told apart.

Usage: ``python bench/bench_streaming.py [--size 3000] [--bands 8] [--transform none|log10|clr|ilr]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 42
STEPS = ("stack", "screening", "labels")


def import_plugin():
    """Import this repo as ``deepprospect`` whatever its folder is called (symlink in a temp dir)."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(parent))


def grid_of(size: int):
    from deepprospect.core.grid import GridSpec

    return GridSpec(500000.0, 3300000.0, 50.0, 50.0, size, size, "EPSG:32650")


def make_inputs(folder: Path, bands: int, size: int) -> None:
    """The element raster (band by band, so the generator itself stays small) and the deposits."""
    import rasterio
    from deepprospect.core.raster_io import geotiff_profile

    grid, rng = grid_of(size), np.random.default_rng(SEED)
    transform = rasterio.transform.Affine(50.0, 0.0, grid.x_min, 0.0, -50.0, grid.y_max)
    profile = geotiff_profile(size, size, bands, "float32", "EPSG:32650", transform, -9999.0)
    trend = np.add.outer(np.linspace(0, 1, size), np.linspace(0, 1, size)).astype(np.float32)
    with rasterio.open(folder / "elements.tif", "w", **profile) as dst:
        for band in range(bands):
            values = rng.lognormal(1.0, 0.5, (size, size)).astype(np.float32) * (1 + band * trend)
            values[: size // 10, : size // 10] = -9999.0
            dst.write(values, band + 1)
            dst.set_band_description(band + 1, f"E{band}")
    offsets = rng.uniform(0.2, 0.9, (60, 2)) * size * 50.0  # off the nodata corner
    np.save(folder / "deposits.npy", np.column_stack([grid.x_min + offsets[:, 0], grid.y_max - offsets[:, 1]]))


def child(step: str, mode: str, folder: Path, bands: int, size: int, transform: str) -> None:
    """Run one step (or make the inputs) and print a JSON line with seconds and peak RSS (MiB)."""
    import_plugin()
    from deepprospect.core.bands import RasterBands
    from deepprospect.core.evidence.screening import screen_bands
    from deepprospect.core.evidence.stack import (
        StackInput,
        build_evidence_stack,
        build_evidence_stack_file,
        write_evidence_stack,
    )
    from deepprospect.core.raster_io import read_raster
    from deepprospect.core.sampling.labels import LabelSettings, build_training_set

    if step == "inputs":
        make_inputs(folder, bands, size)
        print(json.dumps({}))
        return
    grid, deposits = grid_of(size), np.load(folder / "deposits.npy")
    stack_path = str(folder / "stack.tif")
    start = time.perf_counter()
    if step == "stack":
        options = {"transform": transform, "normalise": "z-score"}
        inputs = [StackInput(str(folder / "elements.tif"), "elements")]
        if mode == "whole":
            stack, names, recipe = build_evidence_stack(inputs, grid, **options)
            write_evidence_stack(str(folder / "stack_whole.tif"), stack, grid, names, recipe)
        else:
            build_evidence_stack_file(stack_path, inputs, grid, **options)
    elif step == "screening":
        with RasterBands(stack_path) as bands:
            names = [f"b{i}" for i in range(bands.count)]
            source = read_raster(stack_path)[0] if mode == "whole" else bands
            screen_bands(source, grid, deposits, names, workers=2)
    elif step == "labels":
        with RasterBands(stack_path) as bands:
            names = [f"b{i}" for i in range(bands.count)]
            source = read_raster(stack_path)[0].astype(np.float32) if mode == "whole" else bands
            build_training_set(source, grid, names, deposits, settings=LabelSettings(patch_size=32, seed=SEED))
    seconds = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_mib": rss_mib}))


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--bands", type=int, default=8)
    parser.add_argument("--transform", default="none", choices=("none", "log10", "clr", "ilr"))
    parser.add_argument("--child", nargs=3, metavar=("STEP", "MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]), args.bands, args.size, args.transform)
        return
    with tempfile.TemporaryDirectory(prefix="deepprospect-streaming-") as folder:
        common = ["--size", str(args.size), "--bands", str(args.bands), "--transform", args.transform]
        run_child("inputs", "-", folder, *common)
        idle = run_child("none", "-", folder, *common)
        stack_mib = args.bands * args.size**2 * 4 / 2**20
        print(f"{args.bands} bands × {args.size} × {args.size} cells ({stack_mib:.0f} MiB as float32), transform "
              f"{args.transform}, z-score; a child that only imports: {idle['rss_mib']:.0f} MiB")
        print(f"{'':12}{'whole (s)':>11}{'windowed (s)':>14}{'whole (MiB)':>13}{'windowed (MiB)':>16}"
              f"{'RSS ratio':>11}")
        for step in STEPS:
            windowed = run_child(step, "windowed", folder, *common)
            whole = run_child(step, "whole", folder, *common)
            print(f"{step:12}{whole['seconds']:>11.1f}{windowed['seconds']:>14.1f}{whole['rss_mib']:>13.0f}"
                  f"{windowed['rss_mib']:>16.0f}{whole['rss_mib'] / windowed['rss_mib']:>11.2f}")


if __name__ == "__main__":
    main()
