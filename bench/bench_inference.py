"""Benchmark of prospectivity-map inference (models/inference.py): a 14-band stack, patch 32, on the CPU.

a. LeNet (fast scanning), every cell of a 1000 × 1000 stack: ours = ``predict_map`` over the whole map (reading,
   checks and writing included); anchor = a naive per-patch torch loop (one window per forward call), timed on a
   random sample of cells and extrapolated to every predictable cell; also batched torch (256 windows per call).
   The sampled cells' values must match ours within 1e-5.
b. ResNet18 (zero-padded, so no fast scanning: windows go through onnxruntime in batches): ours measured at
   stride 16 over the whole stack and extrapolated per cell to stride 1; the same anchors; values within 1e-5.
c. Peak RSS of ``predict_map`` with LeNet over a 10,000 × 10,000 × 14 stack (5.6 GB of float32, larger than the
   memory it may use) in a child process (``os.wait4`` ru_maxrss, started from a small launcher so the figure
   is the child's own), twice: with GDAL's block cache at its default size (5 % of RAM, which the cache fills
   with blocks of a large stack) and bounded by ``GDAL_CACHEMAX``; ``--quick``: 3,000 × 3,000.

Weights are random, randomised as in the tests (``tests/model_factory.py``) so logits are O(1) and the 1e-5
check means something. Torch and onnxruntime use one thread per CPU. The machines are noisy: read the ratios.

Usage: ``python bench/bench_inference.py [--quick] [--size 1000] [--big 10000] [--samples 200] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BANDS, PATCH, SEED = 14, 32, 42
RSS_TARGET = 2e9
CACHE_MB = 256
SPEED_TARGET = 10.0


def import_plugin() -> None:
    """Import this repo as ``deepprospect`` whatever its folder is called; tests/ for the model randomiser."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path[:0] = [str(parent), str(ROOT / "tests")]


def band_names() -> list[str]:
    return [f"e{i:02d}" for i in range(BANDS)]


def smooth_fields(rows: np.ndarray, cols: np.ndarray, seed: int) -> np.ndarray:
    """(BANDS, len(rows), len(cols)) float32 evidence: waves of a few hundred cells plus cell noise."""
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    fields = [np.sin(r / rng.uniform(20, 80) + rng.uniform(0, 6)) * np.cos(c / rng.uniform(20, 80))
              for _ in range(BANDS)]
    noise = np.random.default_rng([seed, int(rows[0])]).standard_normal((BANDS, *r.shape))
    return (np.stack(fields) + 0.3 * noise).astype(np.float32)


def write_model(path: str, name: str, recipe: dict | None) -> object:
    from deepprospect.core.evidence.stack import band_normalisation
    from deepprospect.models.onnx_io import export_onnx, make_card
    from deepprospect.models.zoo import build_model
    from model_factory import randomised

    model = randomised(build_model(name, BANDS, PATCH, seed=SEED))
    card = make_card(name, band_names(), band_normalisation(recipe, band_names()), PATCH, (50.0, 50.0), "EPSG:32650")
    export_onnx(model, path, card, BANDS, PATCH)
    return model.eval()


def write_stack(path: str, size: int) -> tuple[np.ndarray, dict]:
    """A z-scored evidence stack of size × size cells; returns the stack and its recipe."""
    from deepprospect.core.evidence.stack import make_stack, write_evidence_stack
    from deepprospect.core.grid import GridSpec

    grid = GridSpec(500000.0, 3350000.0, 50.0, 50.0, size, size, "EPSG:32650")
    raw = smooth_fields(np.arange(size), np.arange(size), SEED).astype(np.float64)
    stack, names, recipe = make_stack(raw, band_names(), normalise="z-score")
    write_evidence_stack(path, stack, grid, names, recipe)
    return stack.astype(np.float32), recipe


def naive_loop(model, stack: np.ndarray, cells: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds per cell and prospectivity of each cell, one window per torch forward call, on one thread: one
    window is too small to share out, and threads handing off tiny operations stall on a busy machine (measured
    up to 100× slower), so one thread is the faster, fairer anchor."""
    import torch

    half = PATCH // 2
    values = np.empty(len(cells))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    with torch.no_grad():
        for i, (r, c) in enumerate(cells):
            window = torch.from_numpy(stack[None, :, r - half:r - half + PATCH, c - half:c - half + PATCH])
            values[i] = torch.softmax(model(window), dim=1)[0, 1].item()
    seconds = (time.perf_counter() - start) / len(cells)
    torch.set_num_threads(threads)
    return seconds, values


def batched_torch(model, stack: np.ndarray, cells: np.ndarray) -> float:
    """Seconds per cell of torch on one batch of the sampled windows (best of 2)."""
    import torch

    half = PATCH // 2
    batch = torch.from_numpy(np.stack([stack[:, r - half:r - half + PATCH, c - half:c - half + PATCH]
                                       for r, c in cells]))
    times = []
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - start)
    return min(times) / len(cells)


def read_map(path: str) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1, masked=True).filled(np.nan)


def compare(name: str, ours_per_cell: float, cells_total: int, model, stack, ours_map, cells, out_cells,
            samples: int, batch: int) -> None:
    """Print ours vs the naive loop and batched torch, extrapolated to ``cells_total`` windows, and the values."""
    naive, values = naive_loop(model, stack, cells[:samples])
    batched = batched_torch(model, stack, cells[:batch])
    diff = float(np.abs(ours_map[tuple(out_cells[:samples].T)] - values).max())
    print(f"  values on {min(samples, len(cells))} sampled cells: max |ours − torch| = {diff:.1e} "
          f"({'≤' if diff <= 1e-5 else '>'} 1e-5), spread (std) of the values {values.std():.3f}")
    print(f"  {'':34}{'µs/cell':>10}{'every cell':>14}{'ratio':>8}")
    print(f"  {'ours (predict_map)':34}{ours_per_cell * 1e6:>10.1f}{ours_per_cell * cells_total:>13.1f}s")
    for label, per_cell in (("naive torch loop (batch 1)", naive), (f"torch, a batch of {batch}", batched)):
        ratio = per_cell / ours_per_cell
        print(f"  {label:34}{per_cell * 1e6:>10.1f}{per_cell * cells_total:>13.1f}s{ratio:>8.1f}")
    ratio = naive / ours_per_cell
    print(f"  {name}: {ratio:.1f}× the naive loop's speed; target ≥ {SPEED_TARGET:g}×: "
          f"{'met' if ratio >= SPEED_TARGET else 'NOT met'}")


def part_a(folder: Path, size: int, samples: int) -> tuple[str, np.ndarray, dict]:
    from deepprospect.models.inference import predict_map

    stack_path = str(folder / "stack.tif")
    stack, recipe = write_stack(stack_path, size)
    model = write_model(str(folder / "lenet.onnx"), "lenet", recipe)
    report = predict_map(str(folder / "lenet.onnx"), stack_path, str(folder / "lenet_map.tif"), device="cpu")
    half = PATCH // 2
    cells_total = (size - PATCH + 1) ** 2
    print(f"\na. LeNet, fast scanning, every cell of {size} × {size} × {BANDS} (patch {PATCH}): "
          f"{report.valid_cells:,} cells in {report.seconds:.2f} s ({report.method}, {report.provider})")
    rng = np.random.default_rng(SEED)
    cells = rng.integers(half, size - half + 1, size=(max(samples, 256), 2))
    compare("LeNet", report.seconds / report.valid_cells, cells_total, model, stack,
            read_map(str(folder / "lenet_map.tif")), cells, cells, samples, 256)
    return stack_path, stack, recipe


def part_b(folder: Path, stack_path: str, stack: np.ndarray, recipe: dict, size: int, samples: int) -> None:
    from deepprospect.models.inference import predict_map

    stride = 16
    model = write_model(str(folder / "resnet18.onnx"), "resnet18", recipe)
    report = predict_map(str(folder / "resnet18.onnx"), stack_path, str(folder / "resnet18_map.tif"),
                         stride=stride, device="cpu")
    per_cell = report.seconds / report.valid_cells
    cells_total = (size - PATCH + 1) ** 2
    print(f"\nb. ResNet18, windows in batches (no fast scanning), stride {stride}: {report.valid_cells:,} cells "
          f"in {report.seconds:.1f} s ({report.method}); stride 1 would take about {per_cell * cells_total / 60:.0f} "
          f"min here, stride 8 {per_cell * cells_total / 64 / 60:.1f} min")
    ours_map = read_map(str(folder / "resnet18_map.tif"))
    valid = np.argwhere(~np.isnan(ours_map))
    out_cells = valid[np.random.default_rng(SEED).permutation(len(valid))]
    cells = out_cells * stride + stride // 2  # the stack cell whose window each output cell holds
    compare("ResNet18", per_cell, cells_total, model, stack, ours_map, cells, out_cells, max(8, samples // 8), 64)


def write_big_stack(path: Path, size: int) -> None:
    """A raw (no recipe) size × size × BANDS float32 stack written strip by strip (never whole in memory);
    values quantised to 1/16 so the file compresses well."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": size, "height": size, "count": BANDS, "dtype": "float32",
               "crs": "EPSG:32650", "transform": Affine(50.0, 0, 500000.0, 0, -50.0, 3350000.0), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 1, "predictor": 3,
               "BIGTIFF": "YES"}
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, 256):
            rows = np.arange(row, min(row + 256, size))
            strip = np.round(smooth_fields(rows, np.arange(size), SEED) * 16) / 16
            dst.write(strip, window=Window(0, row, size, len(rows)))
        for index, name in enumerate(band_names(), start=1):
            dst.set_band_description(index, name)


def child_rss(stack: str, model: str, out: str) -> None:
    """Predict in this process and print seconds, valid cells and RSS after imports as JSON (child of part c)."""
    import_plugin()
    from deepprospect.models.inference import predict_map

    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = predict_map(model, stack, out, device="cpu")
    print(json.dumps({"seconds": report.seconds, "valid": report.valid_cells, "imported": imported}))


def launch_rss(stack: str, model: str, out: str) -> None:
    """Run :func:`child_rss` in a child and print its figures plus its peak RSS (``os.wait4`` ru_maxrss) as JSON.

    Linux carries a process's peak RSS over an exec into the new program's ru_maxrss, so the child is started
    from this small launcher rather than from the benchmark (which holds torch and stacks): the figure then
    counts at most the launcher's own peak, printed beside it.
    """
    cmd = [sys.executable, __file__, "--child-rss", stack, model, out]
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        child = subprocess.Popen(cmd, stdout=out_file, stderr=err_file)
        _, status, usage = os.wait4(child.pid, 0)
        out_file.seek(0)
        err_file.seek(0)
        stdout, stderr = out_file.read(), err_file.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"prediction child failed:\n{stderr[-3000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    with open("/proc/self/status", encoding="ascii") as status_file:  # this program's own peak (its ru_maxrss
        own = next(int(line.split()[1]) for line in status_file if line.startswith("VmHWM:"))  # has the parent's)
    print(json.dumps({**figures, "peak": usage.ru_maxrss * 1024, "launcher": own * 1024}))


def part_c(folder: Path, size: int) -> None:
    stack = folder / f"big_{size}.tif"
    if not stack.exists():  # kept between runs: writing 5.6 GB of evidence takes minutes
        start = time.perf_counter()
        write_big_stack(stack, size)
        print(f"\n(wrote the {size} × {size} × {BANDS} stack in {time.perf_counter() - start:.0f} s, "
              f"{stack.stat().st_size / 2**30:.2f} GiB on disk)")
    model = str(folder / "lenet_raw.onnx")
    write_model(model, "lenet", None)
    out = folder / f"big_{size}_map.tif"
    gigabytes = BANDS * size * size * 4 / 1e9
    print(f"\nc. LeNet over {size} × {size} × {BANDS} ({gigabytes:.1f} GB of float32), peak RSS of the child "
          f"(os.wait4) with GDAL's block cache at its default (5 % of RAM here) and at {CACHE_MB} MiB:")
    for cache in (None, CACHE_MB):
        env = dict(os.environ)
        env.pop("GDAL_CACHEMAX", None)
        if cache:
            env["GDAL_CACHEMAX"] = str(cache)
        done = subprocess.run([sys.executable, __file__, "--launch-rss", str(stack), model, str(out)],
                              capture_output=True, text=True, check=True, env=env)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        out.unlink()
        peak = figures["peak"]
        print(f"  cache {f'{cache} MiB' if cache else 'default':<8}: {figures['valid']:,} cells in "
              f"{figures['seconds']:.0f} s ({figures['seconds'] / figures['valid'] * 1e6:.2f} µs/cell), peak RSS "
              f"{peak / 2**30:.2f} GiB ({figures['imported'] / 2**30:.2f} GiB after imports, launcher "
              f"{figures['launcher'] / 2**20:.0f} MiB); target < {RSS_TARGET / 1e9:g} GB: "
              f"{'met' if peak < RSS_TARGET else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="part c on 3,000 × 3,000 instead of --big")
    parser.add_argument("--size", type=int, default=1000, help="side of the stack of parts a and b")
    parser.add_argument("--big", type=int, default=10_000, help="side of the stack of part c")
    parser.add_argument("--samples", type=int, default=200, help="cells timed in the naive loop (LeNet)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_output" / "inference", help="output folder")
    parser.add_argument("--child-rss", nargs=3, metavar=("STACK", "MODEL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--launch-rss", nargs=3, metavar=("STACK", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss or args.launch_rss:
        (child_rss if args.child_rss else launch_rss)(*(args.child_rss or args.launch_rss))
        return
    import_plugin()
    import onnxruntime
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPU(s), torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
          f"{onnxruntime.__version__}; {BANDS} bands, patch {PATCH}")
    stack_path, stack, recipe = part_a(args.out, args.size, args.samples)
    part_b(args.out, stack_path, stack, recipe, args.size, args.samples)
    part_c(args.out, 3000 if args.quick else args.big)


if __name__ == "__main__":
    main()
