"""Benchmark of training-sample generation (core/sampling/labels.py): about 10,000 windows of 14 bands × 32 × 32.

A seeded 14-band float32 stack of 1000 × 1000 cells, 100 deposits on a lattice (each its own deposit group),
3×3 positives, one random negative per positive, 5 crop shifts per training sample, a flipped and a noisy copy
of each training window. Times ``build_training_set`` and reports its peak RSS, each in a fresh child process.

Anchor: the bare memory traffic of the job — the same number of 14 × 32 × 32 windows copied from the same stack
into a preallocated float32 array with numpy (no labels, split, checks or augmentation), also in a child
process. Ratios are ours / anchor (time and peak RSS), so 1.0 would mean no overhead at all.

Usage: ``python bench/bench_labels.py [--bands 14] [--size 1000] [--patch 32]``
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


def import_plugin():
    """Import this repo as ``deepprospect`` whatever its folder is called (symlink in a temp dir)."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(parent))


def make_inputs(bands: int, size: int):
    from deepprospect.core.grid import GridSpec

    rng = np.random.default_rng(SEED)
    stack = rng.standard_normal((bands, size, size), dtype=np.float32)
    grid = GridSpec(500000.0, 3350000.0, 50.0, 50.0, size, size, "EPSG:32650")
    centres = (np.arange(10) + 0.5) * size / 10
    deposits = np.array([(grid.x_min + c * 50.0, grid.y_max - r * 50.0) for r in centres for c in centres])
    return stack, grid, deposits


def child(mode: str, bands: int, size: int, patch: int, count: int) -> None:
    """Run one measurement and print a JSON line with seconds, windows and peak RSS (MiB)."""
    import_plugin()
    from deepprospect.core.sampling.augment import AugmentSettings
    from deepprospect.core.sampling.labels import LabelSettings, build_training_set

    stack, grid, deposits = make_inputs(bands, size)
    start = time.perf_counter()
    if mode == "ours":
        result = build_training_set(
            stack, grid, [f"b{i}" for i in range(bands)], deposits, settings=LabelSettings(patch_size=patch, seed=SEED),
            augment=AugmentSettings(positive_crops=5, positive_shift_x=3, positive_shift_y=3, negative_crops=5,
                                    negative_shift_x=3, negative_shift_y=3, flips=True, noise_variance=0.01))
        windows, extra = len(result), result.manifest["counts"]
    else:
        rng = np.random.default_rng(SEED)
        origins = rng.integers(0, size - patch, size=(count, 2))
        out = np.empty((count, bands, patch, patch), dtype=np.float32)
        for i, (r, c) in enumerate(origins):
            out[i] = stack[:, r:r + patch, c:c + patch]
        windows, extra = len(out), {}
    seconds = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "windows": windows, "rss_mib": rss_mib, "counts": extra}))


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=14)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.bands, args.size, args.patch, int(args.child[1]))
        return
    common = ["--bands", str(args.bands), "--size", str(args.size), "--patch", str(args.patch)]
    ours = run_child("ours", "0", *common)
    anchor = run_child("anchor", str(ours["windows"]), *common)
    size_mib = ours["windows"] * args.bands * args.patch**2 * 4 / 2**20
    stack_mib = args.bands * args.size**2 * 4 / 2**20
    print(f"stack {args.bands} × {args.size} × {args.size} float32 ({stack_mib:.0f} MiB), patch {args.patch}: "
          f"{ours['windows']} windows = {size_mib:.0f} MiB of x_patch")
    print(f"counts: {json.dumps({s: {k: v for k, v in c.items() if v} for s, c in ours['counts'].items()})}")
    print(f"{'':34}{'time (s)':>10}{'peak RSS (MiB)':>16}")
    print(f"{'ours: build_training_set':34}{ours['seconds']:>10.2f}{ours['rss_mib']:>16.0f}")
    print(f"{'anchor: numpy window copy':34}{anchor['seconds']:>10.2f}{anchor['rss_mib']:>16.0f}")
    print(f"{'ratio ours / anchor':34}{ours['seconds'] / anchor['seconds']:>10.2f}"
          f"{ours['rss_mib'] / anchor['rss_mib']:>16.2f}")


if __name__ == "__main__":
    main()
