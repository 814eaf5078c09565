"""Benchmark of the dual-window anomaly detector (models/dualwindow.py): zhang2021's 39 bands, 13 / 35 windows.

ours = ``dual_window_map`` over a small stack (reading, checks and writing included), per cell; anchor = the
naive per-cell loop (one torch forward call per cell over its ring, the way the paper's sketch reads), timed on
a sample of cells; the sampled values must match ours within 1e-4. Also the pair throughput and the time per
megacell at ring strides 1, 2 and 3. Weights are random (``tests/model_factory.py``). The machines are noisy:
read the ratios.

Usage: ``python bench/bench_dualwindow.py [--size 60] [--samples 20] [--device auto]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BANDS, INNER, OUTER = 39, 13, 35


def import_plugin() -> None:
    """Import this repo as ``deepprospect`` whatever its folder is called; tests/ for the model helpers."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path[:0] = [str(parent), str(ROOT / "tests")]


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--size", type=int, default=60, help="stack side in cells")
    arguments.add_argument("--samples", type=int, default=20, help="cells timed with the per-cell torch anchor")
    arguments.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    options = arguments.parse_args()
    import_plugin()
    import torch
    from deepprospect.core.grid import GridSpec
    from deepprospect.models.dualwindow import dual_window_map, ring_offsets
    from model_factory import evidence, write_model, write_stack

    folder = Path(tempfile.mkdtemp(prefix="bench-dualwindow-"))
    grid = GridSpec(500000.0, 7000000.0, 500.0, 500.0, options.size, options.size, "EPSG:32650")
    names = [f"e{i:02d}" for i in range(BANDS)]
    stack, recipe = write_stack(str(folder / "stack.tif"), evidence(BANDS, grid), names, grid, normalise="z-score")
    model = write_model(str(folder / "pair.onnx"), "ppf_cnn1d", names, 1, recipe, grid)
    cells = options.size**2
    timings = {}
    for stride in (1, 2, 3):
        report = dual_window_map(str(folder / "pair.onnx"), str(folder / "stack.tif"), str(folder / f"d{stride}.tif"),
                                 inner=INNER, outer=OUTER, ring_stride=stride, device=options.device)
        ring = ring_offsets(INNER, OUTER, stride)
        pairs = int(np.sum((options.size - np.abs(ring[:, 0])) * (options.size - np.abs(ring[:, 1]))))
        rate = pairs / report.seconds  # ring cells off the stack are skipped, so count the pairs really scored
        timings[stride] = report.ring_cells / rate
        print(f"ours, ring stride {stride} ({report.ring_cells} pairs per full ring) on {report.provider}: "
              f"{rate:.0f} pairs/s, {1e3 * timings[stride]:.2f} ms per cell with a full ring, "
              f"{timings[stride] * 1e6 / 3600:.2f} h per megacell")
    import rasterio

    with rasterio.open(folder / "d1.tif") as src:
        ours = src.read(1)
    offsets = ring_offsets(INNER, OUTER)
    rng = np.random.default_rng(0)
    sample = rng.choice(cells, options.samples, replace=False)
    started, worst, scored = time.perf_counter(), 0.0, 0
    for index in sample:
        r, c = divmod(int(index), options.size)
        ring = [(r + dr, c + dc) for dr, dc in offsets if 0 <= r + dr < options.size and 0 <= c + dc < options.size]
        pairs = np.stack([np.stack((stack[:, r, c], stack[:, i, j])) for i, j in ring]).astype(np.float32)
        with torch.no_grad():
            value = torch.softmax(model(torch.from_numpy(pairs)).double(), 1)[:, 1].mean().item()
        worst, scored = max(worst, abs(value - float(ours[r, c]))), scored + len(ring)
    anchor = len(offsets) * (time.perf_counter() - started) / scored  # per full ring, as ours
    print(f"anchor, per-cell torch loop: {1e3 * anchor:.2f} ms per cell with a full ring; ours (stride 1) is "
          f"{anchor / timings[1]:.1f}× faster; largest difference on {options.samples} cells {worst:.1e} "
          "(must be < 1e-4)")

if __name__ == "__main__":
    main()
