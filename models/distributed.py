"""Training under torchrun: DistributedDataParallel over several GPUs or CPU processes, the same model file.

Launch (one node, N processes; ``--nnodes``/``--rdzv-endpoint`` as usual for several nodes)::

    torchrun --standalone --nproc_per_node N -m deepprospect.models.distributed training.npz model.onnx \\
        [--curves curves.png] [--settings settings.json] [--preset he2024] [--architecture resnet18 --epochs 50 ...]

It takes what ``deepprospect:trainmodel`` takes: the training set of ``deepprospect:traininglabels`` and the
settings of :class:`.training.TrainSettings`, each a flag named after the algorithm's parameter (``EPOCHS`` →
``--epochs``, ``CLASS_WEIGHTING`` → ``--class-weighting``/``--no-class-weighting``). ``--settings`` reads them from
a JSON object (a model card's ``extra.settings`` reproduces a run), flags override it, and ``--preset``
overrides both, as in the algorithm. Rank 0 writes the model file (ONNX + card) and the curves with
:func:`.training.save_model`, as the algorithm does; the card's ``extra.distributed`` records the world size,
the backend and the batches.

How the processes share the work (the loop is :func:`.training.train_model`'s; :class:`TorchrunProcesses`
answers its questions):

- **Backend**: NCCL on GPUs (device ``cuda``, or ``auto`` where torch sees one; process ``LOCAL_RANK`` uses GPU
  ``LOCAL_RANK``), gloo on the CPU (device ``cpu``, or ``auto`` without a GPU).
- **Batches**: every epoch a ``DistributedSampler`` seeded with the seed gives each process an equal share of
  the shuffled training rows (rows are repeated to even the shares); each process takes batches of
  ``batch_size // world_size`` samples, so an optimiser step sees ``batch_size`` samples (rounded down to a
  multiple of the world size) and DDP averages the gradients. The learning rate is not rescaled.
- **Input noise** is drawn per process from a generator seeded with (seed, rank).
- **Validation, early stopping, metrics**: rank 0 scores the whole splits and gives the scores to every
  process, so all keep and stop at the same epoch. Batch-norm statistics are each process's own (no
  SyncBatchNorm), as DDP does by default.
- **Memory**: the windows stay in the training set's file (sets written uncompressed, as ``traininglabels``
  writes them) and each process reads only the rows of its batches; the processes of a node share the
  system's file cache.

The same set, settings, seed and world size give the same model on the CPU; another world size makes other
batches, so another model, as another seed would.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ..core.errors import DeepProspectError, InputError, ResourceError
from ..core.outputs import check_writable
from ..core.progress import log_message
from ..core.sampling.labels import load_training_set
from .training import (
    DEVICES,
    EARLY_STOPPING,
    OPTIMISERS,
    PRESETS,
    SCHEDULES,
    SingleProcess,
    TrainSettings,
    apply_preset,
    save_model,
    select_device,
    train_model,
)
from .zoo import available_models, parse_options

_CHOICES = {"architecture": available_models, "optimiser": lambda: OPTIMISERS, "schedule": lambda: SCHEDULES,
            "early_stopping": lambda: EARLY_STOPPING, "device": lambda: DEVICES}
_LAUNCHED_BY_TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class TorchrunProcesses(SingleProcess):
    """The processes of a torchrun job, joined in the default process group (see the module docstring)."""

    def __init__(self, device: torch.device, reason: str) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.backend = dist.get_backend()
        self.primary = self.rank == 0
        self._device, self._reason = device, reason

    def device(self, requested: str) -> tuple[torch.device, str]:
        return self._device, self._reason

    def wrap(self, model: nn.Module) -> nn.Module:
        # A model trained in stages (the AFFCNN; any run of it has one) leaves its frozen parts without gradients:
        # DDP must not wait for them.
        staged = bool(model.training_stages(1))
        return DistributedDataParallel(model, device_ids=[self._device] if self._device.type == "cuda" else None,
                                       find_unused_parameters=staged)

    def batch_size(self, batch_size: int) -> int:
        share = batch_size // self.world_size
        if share < 2:
            raise InputError(f"A batch of {batch_size} shared by {self.world_size} processes leaves {share} "
                             f"sample(s) to each; give a batch size of at least {2 * self.world_size}.")
        return share

    def shuffler(self, n: int, seed: int) -> tuple[Callable[[int], np.ndarray], torch.Generator]:
        sampler = DistributedSampler(range(n), num_replicas=self.world_size, rank=self.rank, shuffle=True,
                                     seed=seed)

        def order(epoch: int) -> np.ndarray:
            sampler.set_epoch(epoch)
            return np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))

        noise_seed = int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])
        return order, torch.Generator().manual_seed(noise_seed)

    def sum(self, *values: float) -> tuple[float, ...]:
        summed = torch.tensor(values, dtype=torch.float64, device=self._device)
        dist.all_reduce(summed)
        return tuple(summed.tolist())

    def from_primary(self, compute: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
        shared = [compute() if self.primary else None]
        dist.broadcast_object_list(shared, src=0, device=self._device)
        return shared[0]

    def wait_for_all(self) -> None:
        """Wait until every process has come here. A process that tears down its gloo group while another still
        works (rank 0 scoring and writing the model) can abort, so all leave together."""
        dist.barrier(device_ids=[self._device.index] if self._device.type == "cuda" else None)

    def card(self, batch_size: int) -> dict:
        share = self.batch_size(batch_size)
        return {"world_size": self.world_size, "backend": self.backend, "batch_per_process": share,
                "batch_per_step": share * self.world_size}


def settings_from(values: argparse.Namespace) -> TrainSettings:
    """The settings given on the command line: JSON file, then flags, then the preset (as the algorithm does)."""
    given = {}
    if values.settings:
        try:
            with open(values.settings, encoding="utf-8") as handle:
                given = json.load(handle)
        except (OSError, ValueError) as error:
            raise InputError(f"Cannot read the settings {values.settings}: {error}") from error
        if not isinstance(given, dict):
            raise InputError(f"The settings {values.settings} must be a JSON object of setting names and values.")
        unknown = set(given) - {f.name for f in dataclasses.fields(TrainSettings)}
        if unknown:
            raise InputError(f"Unknown training setting(s) {', '.join(sorted(unknown))} in {values.settings}.")
    for f in dataclasses.fields(TrainSettings):
        if getattr(values, f.name) is not None:
            given[f.name] = getattr(values, f.name)
    return apply_preset(TrainSettings(**given), values.preset)


def parser() -> argparse.ArgumentParser:
    """The command line: training set, model file, curves, settings file, preset, and one flag per setting."""
    parse = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node N -m deepprospect.models.distributed",
        description="Train a zoo model with DistributedDataParallel on a training set and write the model file "
                    "(ONNX with its card), as deepprospect:trainmodel does.")
    parse.add_argument("training_set", help="training set (.npz) from deepprospect:traininglabels")
    parse.add_argument("output", help="model file to write (.onnx)")
    parse.add_argument("--curves", help="training curves to write (.png)")
    parse.add_argument("--settings", help="JSON object of training settings (names as the flags, with _)")
    parse.add_argument("--preset", default="none", choices=["none", *PRESETS],
                       help="a paper's hyper-parameters, overriding the flags (as the algorithm's preset)")
    for f in dataclasses.fields(TrainSettings):
        flag = "--" + f.name.replace("_", "-")
        described = f"default {f.default}"
        if f.name == "options":
            parse.add_argument(flag, type=parse_options, default=None,
                               help="architecture options as name=value; name=value (as the algorithm's)")
        elif isinstance(f.default, bool):
            parse.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=described)
        else:
            choices = _CHOICES[f.name]() if f.name in _CHOICES else None
            parse.add_argument(flag, type=type(f.default), default=None, choices=choices, help=described)
    return parse


def _join_process_group(requested: str) -> TorchrunProcesses:
    """Join torchrun's process group: NCCL with this process's GPU, or gloo on the CPU."""
    missing = [name for name in _LAUNCHED_BY_TORCHRUN if name not in os.environ]
    if missing:
        raise InputError(f"Not started by torchrun ({', '.join(missing)} not set): launch it as 'torchrun "
                         "--nproc_per_node N -m deepprospect.models.distributed ...', or train in one process "
                         "with deepprospect:trainmodel.")
    device, reason = select_device(requested)
    if device.type == "cuda":
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise ResourceError(f"Process {local_rank} of this node has no GPU: torch sees "
                                f"{torch.cuda.device_count()}. Start at most that many processes per node.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        reason = f"{reason}; process {local_rank} of this node on GPU {local_rank}, NCCL"
    else:
        reason = f"{reason}; gloo"
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return TorchrunProcesses(device, f"{reason}, {dist.get_world_size()} processes")


def run(values: argparse.Namespace) -> None:
    """Train as one process of the torchrun job; rank 0 writes the model file and the curves."""
    settings = settings_from(values)
    if not values.output.lower().endswith(".onnx"):
        raise InputError(f"The model file {values.output} must end in .onnx.")
    for path in filter(None, (values.output, values.curves)):
        check_writable(path)
    training_set = load_training_set(values.training_set, on_disk=True)
    processes = _join_process_group(settings.device)
    try:
        log = (lambda line: print(line, flush=True)) if processes.primary else None
        log_message(log, f"Training set {values.training_set}: {len(training_set)} samples; "
                         f"{processes.world_size} processes ({processes.backend}).")
        result = train_model(training_set, settings, log=log, processes=processes)
        if processes.primary:
            save_model(result, training_set, values.output, values.curves)
            log_message(log, f"Model file: {values.output} (epoch {result.best_epoch} kept).")
        processes.wait_for_all()
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a bad input ends with its message and exit status 2, never a traceback."""
    values = parser().parse_args(argv)
    try:
        run(values)
    except DeepProspectError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
