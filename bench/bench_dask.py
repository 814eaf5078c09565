"""Dask scale-out benchmark: the same tiled steps in this process and on a LocalCluster of 2 worker processes.

usage: python bench/bench_dask.py [--size 1000] [--repeats 2] [--parts abcd] [--no-malloc-trim] [--out DIR]

A benchmark, not a test: it times, compares the files and prints figures and ratios; it exits 0 whether the
targets are met or not. Target: overhead (Dask time / in-process time) ≤ 1.3 and the same file bit for bit.

The cluster is ``dask.distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` on this
machine (its start-up is printed, not counted). Each step first runs once on a small input (prediction: one
window per block) in both places, so the workers have imported the plugin and opened the model (a warm cluster,
as a user's is), then ``--repeats`` times on the benchmark input, interleaved, best time kept. Every run writes
its GeoTIFF. Besides wall time, CPU seconds are printed (this process, which also runs the scheduler, plus the
workers): on a machine shared with other jobs the wall-time ratio says little, the CPU ratio says what Dask
costs. Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``),
which turns the many short-lived arrays of buffer density into page faults (about 0.3 s of system time per 1.3 s
of work here); ``--no-malloc-trim`` starts the workers without it.

a. prediction: LeNet (fast scanning, patch 32, random weights) over a z-scored 14-band ``size`` × ``size``
   stack (bench_inference.py's recipe), ``predict_map`` with its default tiles;
b. buffer-distance density (linear decay, B = 2000 m) of bench_density.py's 300 seeded faults on ``size`` ×
   ``size`` cells of 41 m, ``density_tiles`` written with ``write_tiles``;
c. exact distance to the same faults on the same grid, ``distance_tiles``;
d. IDW of bench_idw.py's 7,000 seeded points with 10 fields (Cu and nine seeded transforms of it) onto ``size``
   × ``size`` cells of 41 m: the 12 nearest samples, then every sample (power 2), ``idw_blocks`` written with
   ``write_tiles``.

``--parts`` picks some of a–d (default all).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OVERHEAD_TARGET = 1.3


def process_cpu() -> float:
    """CPU seconds (user + system) this process has used, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], object], client=None) -> tuple[float, float]:
    """Wall and CPU seconds of ``run()``: this process's CPU (here the scheduler's too), plus the workers' when a
    client is given."""
    def cpu() -> float:
        return process_cpu() + (sum(client.run(process_cpu).values()) if client is not None else 0.0)

    cpu_start, start = cpu(), time.perf_counter()
    run()
    wall = time.perf_counter() - start
    return wall, cpu() - cpu_start


def same_file(a: Path, b: Path) -> bool:
    """Whether two GeoTIFFs hold the same band bytes, tags and band names."""
    import rasterio

    with rasterio.open(a) as one, rasterio.open(b) as other:
        return (one.read().tobytes() == other.read().tobytes() and one.tags() == other.tags()
                and one.descriptions == other.descriptions)


def compare(label: str, run: Callable[[Path, str | None], object], folder: Path, client, repeats: int) -> None:
    """Time ``run(output, scheduler)`` here and on the cluster (interleaved, best of ``repeats``) and compare."""
    address = client.scheduler.address
    here = there = (float("inf"), float("inf"))
    for _ in range(repeats):
        here = min(here, timed(lambda: run(folder / f"{label}_here.tif", None)))
        there = min(there, timed(lambda: run(folder / f"{label}_dask.tif", address), client))
    ratio = there[0] / here[0]
    identical = same_file(folder / f"{label}_here.tif", folder / f"{label}_dask.tif")
    print(f"  in-process {here[0]:.2f} s (CPU {here[1]:.2f} s)  Dask, 2 workers {there[0]:.2f} s "
          f"(CPU {there[1]:.2f} s, "
          f"workers and client)\n  overhead (Dask / in-process wall) {ratio:.2f}, target ≤ {OVERHEAD_TARGET}: "
          f"{'met' if ratio <= OVERHEAD_TARGET else 'NOT met'}; CPU ratio {there[1] / here[1]:.2f}; "
          f"bit-identical: {'yes' if identical else 'NO'}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")


def part_a(folder: Path, size: int, client, repeats: int) -> None:
    from bench_inference import write_model, write_stack
    from deepprospect.models.inference import predict_map

    print(f"\n== a. prediction, LeNet fast scanning over a {size} × {size} × 14 stack")
    stack = str(folder / "stack.tif")
    write_model(str(folder / "lenet.onnx"), "lenet", write_stack(stack, size)[1])

    def run(output: Path, scheduler: str | None, mode: str = "cells") -> None:
        predict_map(str(folder / "lenet.onnx"), stack, str(output), mode=mode, device="cpu", scheduler=scheduler)

    for scheduler in (None, client.scheduler.address):  # one window per 32 × 32 block: every worker opens the model
        run(folder / "warm.tif", scheduler, "blocks")
    compare("prediction", run, folder, client, repeats)


def part_bc(folder: Path, size: int, client, repeats: int) -> None:
    from bench_density import EPSG, PIXEL, RADIUS, SIDE, X0, Y0, make_faults
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.gridding.density import FeatureSet, density_tiles, distance_tiles
    from deepprospect.core.raster_io import grid_profile
    from deepprospect.core.tiles import write_tiles

    features = FeatureSet.from_geojson(make_faults(folder / "faults.gpkg"))
    grid = GridSpec(X0, Y0 + SIDE, PIXEL, PIXEL, size, size, f"EPSG:{EPSG}")
    warm = GridSpec(X0, Y0 + SIDE, PIXEL * size / 64, PIXEL * size / 64, 64, 64, f"EPSG:{EPSG}")

    def density(output: Path, scheduler: str | None, on: GridSpec = grid) -> None:
        write_tiles(str(output), grid_profile(on), ["bdd"], {},
                    density_tiles(features, on, RADIUS, "triangular", scheduler=scheduler))

    def distance(output: Path, scheduler: str | None, on: GridSpec = grid) -> None:
        write_tiles(str(output), grid_profile(on), ["distance"], {}, distance_tiles(features, on, scheduler=scheduler))

    for label, run in (("b. buffer-distance density (linear, B = 2000 m)", density), ("c. distance", distance)):
        print(f"\n== {label}, 300 faults, {size} × {size} cells of {PIXEL:g} m")
        for scheduler in (None, client.scheduler.address):
            run(folder / "warm.tif", scheduler, warm)
        compare(label[0], run, folder, client, repeats)


def part_d(folder: Path, size: int, client, repeats: int) -> None:
    from bench_idw import CELLS, EPSG, N_POINTS, PIXEL, SEED, SIDE, X0, Y0, make_points
    from deepprospect.core.grid import GridSpec
    from deepprospect.core.gridding.idw import IdwSettings, idw_blocks
    from deepprospect.core.raster_io import grid_profile
    from deepprospect.core.tiles import write_tiles

    xs, ys, cu = make_points(N_POINTS, SIDE, SEED)
    rng = np.random.default_rng(SEED)
    fields = np.column_stack([cu] + [cu ** rng.uniform(0.5, 1.5) * rng.uniform(0.1, 10) for _ in range(9)])
    points = np.column_stack([xs, ys])
    names = [f"f{j}" for j in range(fields.shape[1])]
    pixel = PIXEL * CELLS / size
    grid = GridSpec(X0, Y0 + SIDE, pixel, pixel, size, size, f"EPSG:{EPSG}")
    warm = GridSpec(X0, Y0 + SIDE, SIDE / 64, SIDE / 64, 64, 64, f"EPSG:{EPSG}")
    for label, settings in (("d. IDW, 12 nearest samples", IdwSettings()),
                            ("d. IDW, every sample", IdwSettings(max_points=0))):
        def run(output: Path, scheduler: str | None, on: GridSpec = grid, settings: IdwSettings = settings) -> None:
            write_tiles(str(output), grid_profile(on, len(names)), names, {},
                        idw_blocks(points, fields, on, settings, scheduler=scheduler))

        print(f"\n== {label}, {N_POINTS} points × {len(names)} fields, {size} × {size} cells")
        for scheduler in (None, client.scheduler.address):
            run(folder / "warm.tif", scheduler, warm)
        compare(f"idw_{settings.max_points}", run, folder, client, repeats)


PARTS = {"a": part_a, "b": part_bc, "d": part_d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="cells per side of the grids (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each, best kept (default 2)")
    parser.add_argument("--no-malloc-trim", action="store_true",
                        help="start the workers without dask's MALLOC_TRIM_THRESHOLD_ (see above)")
    parser.add_argument("--parts", default="abcd", help="which of a–d to run (default abcd; b and c run together)")
    parser.add_argument("--out", type=Path, help="folder for inputs and outputs (default: a temporary folder)")
    args = parser.parse_args()
    from bench_inference import import_plugin

    import_plugin()
    import dask
    from distributed import Client, LocalCluster

    if args.no_malloc_trim:  # set before the first nanny starts: it copies its settings into this process's environ
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})

    folder = args.out or Path(tempfile.mkdtemp(prefix="bench-dask-"))
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as client:
        print(f"LocalCluster: 2 workers × 1 thread started in {time.perf_counter() - start:.1f} s (not counted), "
              f"MALLOC_TRIM_THRESHOLD_ {'unset' if args.no_malloc_trim else 'as dask sets it'}; outputs in {folder}")
        for key, part in PARTS.items():
            if key in args.parts or (key == "b" and "c" in args.parts):
                part(folder, args.size, client, args.repeats)


if __name__ == "__main__":  # the workers are spawned processes that import this file again
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
