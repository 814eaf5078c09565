"""Benchmark of the model zoo: size and CPU speed of every architecture at 14 bands × 32 × 32 patches.

For each architecture: parameter count; forward time per patch in torch (eval, batched) — the anchor — and in
onnxruntime (CPUExecutionProvider) on the model exported by ``models.onnx_io.export_onnx`` — ours, the path
inference will use; the ratio anchor / ours (above 1: the ONNX file is faster); the largest difference between
the two outputs; and one training step (forward + backward, batch 16) per patch in torch. Both runtimes use the
same number of threads. Best of ``--repeats`` runs; the machines are noisy, so read the ratios.

Usage: ``python bench/bench_zoo.py [--bands 14] [--patch 32] [--batch 64] [--threads 2] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def import_plugin():
    """Import this repo as ``deepprospect`` whatever its folder is called (symlink in a temp dir)."""
    parent = Path(tempfile.mkdtemp(prefix="deepprospect-bench-"))
    (parent / "deepprospect").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(parent))


def best_time(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def model_inputs(model, windows):
    """What ``model`` reads for a batch of windows (or vectors): the windows, or for a two-input model (the
    AFFCNN) the windows and their centre cells' vectors."""
    if model.input_kind != "patch+vector":
        return windows
    p = windows.shape[-1]
    return windows, windows[:, :, p // 2, p // 2].contiguous()


def model_parts(inputs) -> tuple:
    """The tensors of a model's inputs, in the order of its card's inputs."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bands", type=int, default=14)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import_plugin()
    import onnxruntime as ort
    import torch
    from deepprospect.models.onnx_io import export_onnx, make_card
    from deepprospect.models.zoo import available_models, build_model, model_info

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    print(
        f"{args.bands} bands × {args.patch}×{args.patch} (vector models: {args.bands} values), batch {args.batch}, "
        f"{args.threads} threads, best of {args.repeats}; torch {torch.__version__}, onnxruntime {ort.__version__}"
    )
    header = (
        f"{'model':<14}{'params':>12}{'torch ms/patch':>16}{'onnx ms/patch':>15}{'ratio':>7}"
        f"{'max |diff|':>12}{'train ms/patch':>16}"
    )
    print(header)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as folder:
        for name in available_models():
            patch = 1 if model_info(name).input_kind == "vector" else args.patch
            model = build_model(name, args.bands, patch)
            params = sum(p.numel() for p in model.parameters())

            optimiser = torch.optim.SGD(model.parameters(), lr=1e-3)
            x16 = rng.standard_normal(model.input_shape(16)).astype("float32")
            batch16 = model_inputs(model, torch.from_numpy(x16))
            labels = torch.zeros(16, dtype=torch.long)

            def train_step(model=model, optimiser=optimiser, batch16=batch16, labels=labels):
                optimiser.zero_grad()
                model.training_loss(model(batch16), labels, torch.nn.CrossEntropyLoss()).backward()
                optimiser.step()

            train = best_time(train_step, args.repeats) / 16

            model.eval()
            x = rng.standard_normal(model.input_shape(args.batch)).astype("float32")
            tensor = model_inputs(model, torch.from_numpy(x))
            with torch.no_grad():
                expected = model(tensor).numpy()
                anchor = best_time(lambda model=model, tensor=tensor: model(tensor), args.repeats) / args.batch
            path = str(Path(folder) / f"{name}.onnx")
            card = make_card(
                name,
                [f"b{i}" for i in range(args.bands)],
                {},
                patch,
                (1.0, 1.0),
                "EPSG:32650",
                input_kind=model_info(name).input_kind,
            )
            export_onnx(model, path, card, args.bands, patch)
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feed = {entry["name"]: part.numpy() for entry, part in zip(card["inputs"], model_parts(tensor))}
            (actual,) = session.run(None, feed)
            ours = best_time(lambda session=session, feed=feed: session.run(None, feed), args.repeats) / args.batch
            diff = float(np.abs(actual - expected).max())
            print(
                f"{name:<14}{params:>12,}{anchor * 1e3:>16.3f}{ours * 1e3:>15.3f}{anchor / ours:>7.2f}"
                f"{diff:>12.1e}{train * 1e3:>16.2f}"
            )


if __name__ == "__main__":
    main()
