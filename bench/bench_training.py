"""Benchmark of the training loop: epoch time of ``train_model`` vs a bare torch loop on the same tensors.

The set is seeded: 14 bands, 32 × 32 windows (the issue's inference shape), half deposits with a high at
the centre. Two comparisons per architecture, each timed over the same epochs after one warm-up epoch:

a. training pass only (every sample in the training split, no validation): ours vs a bare loop of
   randperm → index → forward → loss → backward → step with the same optimiser and batch size;
b. full epoch with a 15 % validation split: ours (training pass + validation loss and AUC) vs the bare loop
   plus one forward pass over the validation tensors.

Ours and the bare loop run in alternation (``--rounds`` times each) and the fastest epoch of each side is
compared, so load from other processes on a shared machine skews both sides alike rather than one.
Overhead = ours / bare − 1 (target ≤ 10 %). Usage:
``python bench/bench_training.py [--samples 2000] [--epochs 3] [--rounds 2] [--models lenet resnet18] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
BANDS, PATCH = 14, 32


def import_plugin():
    """Import the plugin package as ``deepprospect`` whatever the repository folder is called."""
    parent = tempfile.mkdtemp()
    os.symlink(REPO_ROOT, Path(parent) / "deepprospect", target_is_directory=True)
    sys.path.insert(0, parent)
    from deepprospect.core.sampling import labels
    from deepprospect.models import training, zoo

    return labels, training, zoo


def make_set(labels, samples: int, validation: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (np.arange(samples) % 2).astype(np.int8)
    x = rng.standard_normal((samples, BANDS, PATCH, PATCH), dtype=np.float32)
    x[y == 1, 0, PATCH // 2 - 2:PATCH // 2 + 2, PATCH // 2 - 2:PATCH // 2 + 2] += 1.5
    split = np.where(rng.random(samples) < validation, "validation", "train")
    manifest = {"format": labels.FORMAT, "band_names": [f"b{i}" for i in range(BANDS)], "stack_tags": {}}
    return labels.TrainingSet(x, np.ascontiguousarray(x[:, :, PATCH // 2, PATCH // 2]), y, split,
                              np.full(samples, "random"), np.zeros(samples, np.int16), np.zeros((samples, 2)),
                              np.zeros((samples, 2), np.int32), manifest)


def bare_epochs(zoo, ts, name: str, epochs: int, batch: int, with_validation: bool) -> list[float]:
    """A bare torch loop on the same tensors and optimiser; seconds per epoch (after one warm-up epoch)."""
    train = ts.split == "train"
    x, y = torch.from_numpy(ts.x_patch[train]), torch.from_numpy(ts.y[train].astype(np.int64))
    xv = torch.from_numpy(ts.x_patch[~train])
    model = zoo.build_model(name, BANDS, PATCH, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y))
        for i in range(0, len(order), batch):
            chosen = order[i:i + batch]
            optimiser.zero_grad()
            loss_fn(model(x[chosen]), y[chosen]).backward()
            optimiser.step()
        if with_validation:
            model.eval()
            with torch.no_grad():
                for i in range(0, len(xv), 512):
                    model(xv[i:i + 512])
        times.append(time.perf_counter() - start)
    return times[1:]


def ours_epochs(training, ts, name: str, epochs: int, batch: int) -> list[float]:
    settings = training.TrainSettings(architecture=name, epochs=epochs + 1, batch_size=batch, device="cpu",
                                      early_stopping="off")
    return training.train_model(ts, settings).history["seconds"][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["lenet", "resnet18"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    labels, training, zoo = import_plugin()
    print(f"Training epochs: {args.samples} windows of {BANDS} × {PATCH} × {PATCH}, batch {args.batch}, "
          f"{args.epochs} timed epochs after 1 warm-up, {args.rounds} alternating rounds (fastest epoch compared), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.models:
        samples = args.samples if name == "lenet" else max(args.samples // 8, 64)
        for label, validation in (("a training pass", 0.0), ("b epoch + validation", 0.15)):
            ts = make_set(labels, samples, validation)
            bare_times, our_times = [], []
            for _ in range(args.rounds):
                bare_times += bare_epochs(zoo, ts, name, args.epochs, args.batch, validation > 0)
                our_times += ours_epochs(training, ts, name, args.epochs, args.batch)
            bare, ours = min(bare_times), min(our_times)
            overhead = ours / bare - 1
            verdict = "met" if overhead <= 0.10 else "NOT met"
            print(f"{name:9s} {label:22s} {samples:5d} samples: ours {ours:7.3f} s/epoch, bare loop {bare:7.3f} s "
                  f"→ overhead {100 * overhead:+5.1f} % (target ≤ 10 %: {verdict})")


if __name__ == "__main__":
    main()
