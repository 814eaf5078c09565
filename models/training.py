"""Training of zoo models on a DeepProspect training set, and the model file it leaves behind.

The loop is a plain torch loop (no framework) so its cost is the bare loop's plus one validation pass per
epoch; every choice it makes is recorded in the model card:

- **Samples**: the training split of one negative set (``negative_set`` r: samples with ``repeat`` −1 or r),
  augmented rows included; validation and test splits of the same set. Patch models read ``x_patch``, the
  vector model (``cnn1d``) reads ``x_vector`` and skips crop and flip copies (their centre cell is not the
  labelled cell); a model of both inputs (``affcnn``) reads each window with its centre cell's vector.
- **Input noise** (optional): Gaussian noise of standard deviation ``input_noise`` added to every training batch
  (seeded), a regulariser for the few deposits of real data (gao2022 added Gaussian noise to its samples).
- **Online augmentation** (optional, :mod:`.augment_online`): random flips, 90° rotations and a random c × c
  crop of every training batch (gao2022); with a crop the model, its card and prediction use patch size c and
  every score reads the windows' centre crops.
- **Members** (optional): ``members`` > 1 trains that many copies with seeds ``seed``, ``seed + 1``, … and saves
  their probability average (:class:`.zoo.SeedAverage`) as one model; the curves and epoch record are the first
  member's, the card lists every member's kept epoch.
- **Loss**: cross-entropy, optionally weighted by inverse class frequency of the training split
  (``n / (2 · n_c)``), so a 1:5 set does not teach the model to say "barren" everywhere.
- **Optimiser**: Adam, or SGD with momentum and weight decay. **Schedule** (per epoch): cosine from
  ``learning_rate`` to ``min_learning_rate`` over the epochs, step (× ``step_factor`` every ``step_epochs``),
  or constant.
- **Early stopping** on validation loss (lowest) or validation AUC (highest), each smoothed by the mean of the
  last ``smoothing`` epochs (a few validation deposits make one epoch's score noisy). Before ``min_epochs`` no
  epoch is kept and training does not stop; from then on an epoch whose smoothed score is the best so far is
  kept only if its training-split AUC (eval mode, computed at such candidate epochs only) is above 0.5, so a
  model worse than chance is never kept; training stops after ``patience`` epochs without a kept epoch. If no
  epoch qualifies, or early stopping is off, or there is no validation split (e.g. the training set's split
  fell back), the last epoch is kept. The card records the monitor actually used (``early_stopping_used``) and
  the choice (``epoch_selection``).
- **Metrics** per split: accuracy, precision, recall, F1, their macro averages and the confusion matrix
  (prospective = argmax class) and ROC AUC (scikit-learn).
- **Stages** (models that have them, :meth:`.zoo.ZooModel.training_stages`): at each stage's first epoch the
  model freezes and unfreezes its parts and picks its loss; no epoch before the last stage is kept.
- **Determinism**: a seeded generator shuffles the batches, and the global torch RNG (dropout) is seeded
  inside a forked RNG state, so the same set, settings and seed give the same weights on CPU; the caller's
  RNG state is left untouched.
- **Memory**: a split is the training set's rows (:class:`SplitData`), gathered one batch at a time, so a
  training set left in its file (``load_training_set(..., on_disk=True)``) is never read whole.
- **Processes**: one by default (:class:`SingleProcess`); under torchrun :mod:`.distributed` plugs
  DistributedDataParallel and a distributed sampler into the same loop.

Presets reproduce the papers' settings in one choice (:data:`PRESETS`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn import metrics as skm
from torch import nn

from ..core.errors import InputError, ResourceError
from ..core.evidence.stack import STACK_TAG, band_normalisation
from ..core.outputs import atomic_path
from ..core.progress import CancelFn, LogFn, ProgressFn, check_cancelled, log_message, report
from ..core.sampling.labels import SHARED, TrainingSet
from ..core.sampling.stored_arrays import StoredArray
from ..core.scoring.metrics import threshold_metrics
from ..core.scoring.report import training_curves_png
from .augment_online import card_record, evaluation_views, training_batch
from .mfaf import band_influence
from .onnx_io import METRIC_SPLITS, Chunked, export_onnx, hash_arrays, make_card
from .zoo import SeedAverage, ZooModel, build_model, check_options, model_info

OPTIMISERS = ("adam", "sgd")
SCHEDULES = ("cosine", "step", "constant")
EARLY_STOPPING = ("val_loss", "val_auc", "off")
DEVICES = ("auto", "cpu", "cuda")
SPATIAL_AUGMENTATIONS = ("crop", "flip")
_EVAL_BATCH = 512
CHANCE_AUC = 0.5


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (defaults: he2024's Adam / cosine settings)."""

    architecture: str = "lenet"
    options: dict = field(default_factory=dict)  # architecture options (zoo.architecture_options), in the card
    epochs: int = 50
    batch_size: int = 16
    optimiser: str = "adam"
    learning_rate: float = 1e-4
    min_learning_rate: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_epochs: int = 30
    step_factor: float = 0.5
    class_weighting: bool = True
    early_stopping: str = "val_loss"
    patience: int = 10
    min_epochs: int = 10
    smoothing: int = 3
    input_noise: float = 0.0
    members: int = 1
    negative_set: int = 0
    max_pairs: int = 0  # pair models: at most this many pairs per split, drawn with the seed (0 = every pair)
    seed: int = 42
    device: str = "auto"
    random_flips: bool = False
    random_rotations: bool = False
    random_crop: int = 0

    def __post_init__(self) -> None:
        model_info(self.architecture)  # unknown names fail here, with the list of valid ones
        check_options(self.architecture, self.options)
        for name, value, allowed in (("optimiser", self.optimiser, OPTIMISERS), ("schedule", self.schedule, SCHEDULES),
                                     ("early stopping", self.early_stopping, EARLY_STOPPING),
                                     ("device", self.device, DEVICES)):
            if value not in allowed:
                raise InputError(f"Unknown {name} {value!r}; choose one of {', '.join(allowed)}.")
        if min(self.epochs, self.patience, self.step_epochs, self.min_epochs, self.smoothing, self.members) < 1 or \
                self.batch_size < 2:
            raise InputError("Epochs, patience, step epochs, minimum epochs, smoothing and members must be at least 1 "
                             "and the batch size at least 2.")
        if not self.learning_rate > 0:
            raise InputError("The learning rate must be positive.")
        if self.schedule == "cosine" and not 0 <= self.min_learning_rate <= self.learning_rate:
            raise InputError("The final learning rate of the cosine schedule must be between 0 and the learning rate.")
        if self.random_crop < 0:
            raise InputError(f"The random crop must be 0 (none) or a size in cells (got {self.random_crop}).")
        if self.max_pairs < 0:
            raise InputError("The pair cap must be 0 (every pair) or positive.")
        if not 0 < self.step_factor <= 1 or self.momentum < 0 or self.weight_decay < 0 or self.input_noise < 0:
            raise InputError("The step factor must be in (0, 1]; momentum, weight decay and input noise must not be "
                             "negative.")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The papers trained for a fixed number of epochs, so the presets switch early stopping off.
PRESETS: dict[str, dict] = {
    # he2024 trained six architectures with the same settings, so the preset keeps the chosen architecture.
    "he2024": {"optimiser": "adam", "batch_size": 16, "learning_rate": 1e-4, "min_learning_rate": 1e-5,
               "schedule": "cosine", "epochs": 50, "weight_decay": 0.0, "early_stopping": "off"},
    # gao2022 (ResNet-50): SGD momentum 0.1, weight decay 1e-4, lr 0.01 halved every 30 epochs, batch 32, 120 epochs.
    "gao2022": {"architecture": "resnet50", "optimiser": "sgd", "momentum": 0.1, "weight_decay": 1e-4,
                "learning_rate": 0.01, "schedule": "step", "step_epochs": 30, "step_factor": 0.5,
                "batch_size": 32, "epochs": 120, "early_stopping": "off"},
    # gao2023 (MFAF on ResNet18): SGD momentum 0.2, weight decay 1e-4, lr 0.02 × 0.6 every 30 epochs, batch 32,
    # 220 epochs, dilation rates {1, 6, 12, 18, 24}, self-distillation β = 0.4.
    "gao2023": {"architecture": "mfaf_resnet18", "options": {"rates": [1, 6, 12, 18, 24], "beta": 0.4},
                "optimiser": "sgd", "momentum": 0.2, "weight_decay": 1e-4, "learning_rate": 0.02,
                "schedule": "step", "step_epochs": 30, "step_factor": 0.6, "batch_size": 32, "epochs": 220,
                "early_stopping": "off"},
    # zhang2021 (pixel-pair 1D CNN): lr 0.01 and batch 128 are the paper's; it does not state the optimiser, epochs,
    # schedule, weight decay or loss weighting: SGD momentum 0.9, constant lr, 30 epochs, none, unweighted are ours.
    "zhang2021": {"architecture": "ppf_cnn1d", "optimiser": "sgd", "momentum": 0.9, "weight_decay": 0.0,
                  "learning_rate": 0.01, "schedule": "constant", "batch_size": 128, "epochs": 30,
                  "class_weighting": False, "early_stopping": "off"},
}


def apply_preset(settings: TrainSettings, preset: str) -> TrainSettings:
    """``settings`` with a paper's hyper-parameters (``"none"`` leaves them as they are); architecture options
    given in ``settings`` override the preset's (e.g. a β sweep on the gao2023 preset)."""
    if preset == "none":
        return settings
    if preset not in PRESETS:
        raise InputError(f"Unknown preset {preset!r}; choose none or one of {', '.join(PRESETS)}.")
    values = PRESETS[preset]
    if "options" in values:
        values = {**values, "options": {**values["options"], **settings.options}}
    return dataclasses.replace(settings, **values)


def select_device(requested: str) -> tuple[torch.device, str]:
    """The torch device to train on and why: CUDA when asked or (auto) when torch sees a GPU, else CPU."""
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ResourceError(
            "CUDA was requested but torch sees no usable GPU (torch.cuda.is_available() is False: no NVIDIA "
            f"driver, or a CPU-only torch build {torch.__version__}). Choose the device 'auto' or 'cpu'.")
    if requested == "cpu":
        return torch.device("cpu"), "CPU as requested"
    if available:
        name = torch.cuda.get_device_name(0)
        return torch.device("cuda"), f"CUDA GPU {name} ({'requested' if requested == 'cuda' else 'auto: found'})"
    return torch.device("cpu"), (f"auto: no usable CUDA GPU (torch {torch.__version__}, "
                                 "torch.cuda.is_available() is False), so the CPU")


Inputs = torch.Tensor | tuple  # a batch: one tensor, or a tuple of tensors for a model of several inputs


def _tensors(inputs) -> tuple:
    """The input arrays (or tensors) of a source or batch as a tuple."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _each(inputs, change: Callable):
    """``change`` applied to one input, or to each of a model's several inputs (keeping the tuple)."""
    return tuple(change(part) for part in inputs) if isinstance(inputs, tuple) else change(inputs)


def _float32(picked) -> torch.Tensor:
    """Picked rows of a source (array, stored array or tensor) as a float32 tensor."""
    if isinstance(picked, torch.Tensor):
        return picked.float()
    return torch.from_numpy(np.ascontiguousarray(picked, dtype=np.float32))


@dataclass
class SplitData:
    """Inputs and labels of one split: rows ``rows`` of ``source`` (every row when None), read a batch at a
    time, so a source left in its file is never read whole."""

    source: np.ndarray | StoredArray | torch.Tensor | tuple  # (N, ...) inputs, in memory or left in the file;
    # a tuple of them for a model of several inputs (window and vector), whose batches are tuples of tensors
    y: torch.Tensor  # labels of the split's samples, on the CPU
    per_deposit: np.ndarray | None = None  # rows scored per deposit: each deposit's own cell and the negatives
    rows: np.ndarray | None = None  # the split's rows of ``source``

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample's (first) input: (bands, patch, patch) or (bands,)."""
        return tuple(int(n) for n in _tensors(self.source)[0].shape[1:])

    def inputs(self, which: np.ndarray | slice) -> Inputs:
        """Float32 inputs of the split's samples ``which`` (positions in the split), read from the source."""
        rows = which if self.rows is None else self.rows[which]
        return _each(self.source, lambda source: _float32(source[rows]))

    def blocks(self, size: int = _EVAL_BATCH) -> Iterator[Inputs]:
        """The inputs in order, ``size`` samples at a time."""
        return (self.inputs(slice(start, start + size)) for start in range(0, len(self), size))

    def chunked(self) -> list[Chunked]:
        """The inputs as :func:`.onnx_io.hash_arrays` hashes them, block by block: one array per input."""
        if isinstance(self.source, tuple):
            return [chunk for source in self.source for chunk in dataclasses.replace(self, source=source).chunked()]
        return [Chunked(np.dtype(np.float32), (len(self), *self.sample_shape), (b.numpy() for b in self.blocks()))]

    def count(self) -> dict:
        """What the model card records about the split's samples."""
        return {"samples": len(self), "positive": int(self.y.sum())}


@dataclass
class TrainResult:
    """The trained model (best epoch, eval mode, on the CPU) and what the card records about it."""

    model: ZooModel
    settings: TrainSettings
    metrics: dict
    history: dict
    best_epoch: int
    stopped_early: bool
    early_stopping_used: str
    selection: dict
    device: str
    device_reason: str
    data_hash: str
    counts: dict = field(default_factory=dict)
    distributed: dict | None = None  # world size, backend and batches of a torchrun run
    band_influence: dict | None = None  # MFAF: {band: mean channel-attention weight} (mfaf.band_influence)
    extra: dict = field(default_factory=dict)  # more for the card's "extra" (e.g. the negative draws' table)


class SingleProcess:
    """How a training run is shared between processes: here, one process (the default).

    :class:`.distributed.TorchrunProcesses` answers the same questions for DistributedDataParallel under
    torchrun; the training loop asks nothing else, so both runs share one loop.
    """

    primary = True  # the process that evaluates, logs and writes

    def device(self, requested: str) -> tuple[torch.device, str]:
        """The device this process trains on, and why."""
        return select_device(requested)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training steps call (the model itself; a DDP wrapper under torchrun)."""
        return model

    def batch_size(self, batch_size: int) -> int:
        """The samples per batch in this process for ``batch_size`` per optimiser step."""
        return batch_size

    def shuffler(self, n: int, seed: int) -> tuple[Callable[[int], np.ndarray], torch.Generator]:
        """(epoch → this process's training rows in batch order, the generator of the input noise).

        One seeded generator draws both, every epoch's permutation and then the noise of its batches.
        """
        generator = torch.Generator().manual_seed(seed)
        return lambda epoch: torch.randperm(n, generator=generator).numpy(), generator

    def sum(self, *values: float) -> tuple[float, ...]:
        """``values`` summed over the processes."""
        return values

    def from_primary(self, compute: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
        """``compute()``, run by the primary process and its result given to every process."""
        return compute()

    def card(self, batch_size: int) -> dict | None:
        """What the model card records about the processes for ``batch_size`` (nothing for one process)."""
        return None


def split_data(training_set: TrainingSet, input_kind: str, negative_set: int, max_pairs: int = 0,
               seed: int = 0) -> dict[str, SplitData]:
    """Per split, the samples of negative set ``negative_set`` (shared samples included); inputs stay in the
    training set's arrays (which may be left in the file) until a batch reads them. Pair models get the pixel
    pairs of those samples instead (:func:`.pairs.pair_split_data`, at most ``max_pairs`` per split)."""
    if input_kind == "pair":
        from .pairs import pair_split_data  # models.pairs builds on this module's SplitData

        return pair_split_data(training_set, negative_set, max_pairs, seed)
    repeats = sorted(set(training_set.repeat.tolist()) - {SHARED})
    if repeats and negative_set not in repeats:
        raise InputError(f"The training set has negative sets {repeats}; negative set {negative_set} does not exist.")
    in_set = (training_set.repeat == SHARED) | (training_set.repeat == negative_set)
    source = {"patch": training_set.x_patch, "vector": training_set.x_vector,
              "patch+vector": (training_set.x_patch, training_set.x_vector)}[input_kind]
    if input_kind == "vector":  # a shifted or flipped window's centre is another cell: not a labelled vector
        in_set &= ~np.isin(training_set.kind, SPATIAL_AUGMENTATIONS)
    data = {}
    for split in METRIC_SPLITS:
        keep = np.flatnonzero(in_set & (training_set.split == split))
        kind = training_set.kind[keep]
        data[split] = SplitData(source, torch.from_numpy(training_set.y[keep].astype(np.int64)),
                                (kind == "deposit") | np.isin(kind, ("barren", "random", "block")), keep)
    return data


def train_model(
    training_set: TrainingSet,
    settings: TrainSettings,
    *,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
    processes: SingleProcess | None = None,
) -> TrainResult:
    """Train ``settings.architecture`` on ``training_set``; see the module docstring for every rule.

    ``processes`` shares the run between processes (default: this one); only the primary process computes the
    metrics and the data hash (they are empty in the others).

    Raises:
        InputError: the set cannot train this model (patch size, one class only, NaN values).
        ResourceError: CUDA requested but unavailable.
        Cancelled: ``is_cancelled()`` became true (checked between batches); nothing is returned.
    """
    info = model_info(settings.architecture)
    data = evaluation_views(split_data(training_set, info.input_kind, settings.negative_set, settings.max_pairs,
                                       settings.seed), settings, info.input_kind)
    train = data["train"]
    _check_splits(data)
    processes = processes or SingleProcess()
    device, reason = processes.device(settings.device)
    log_message(log, f"Device: {reason}.")
    in_bands = train.sample_shape[-1 if info.input_kind == "pair" else 0]
    names = training_set.manifest.get("band_names", [])
    if len(names) != in_bands:
        raise InputError(f"The training set's manifest names {len(names)} band(s) but its samples have {in_bands}; "
                         "rebuild it with 'Training samples from deposits'.")
    patch = train.sample_shape[-1] if info.input_kind in ("patch", "patch+vector") else 1
    counts = {split: part.count() for split, part in data.items()}
    log_message(log, "Samples: " + ", ".join(f"{s} {c['samples']} ({c['positive']} positive)"
                                             for s, c in counts.items()))
    fallback = (training_set.manifest.get("split") or {}).get("fallback")
    if fallback:
        log_message(log, f"The training set's split fell back ({fallback['reason']}): {'; '.join(fallback['steps'])}.")
    members, runs = [], []
    for member in range(settings.members):
        seeded = dataclasses.replace(settings, seed=settings.seed + member)
        if settings.members > 1:
            log_message(log, f"Member {member + 1} of {settings.members} (seed {seeded.seed}).")
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seeded.seed)
            model = build_model(settings.architecture, in_bands, patch, seed=seeded.seed,
                                **settings.options).to(device)
            loop = _Loop(model, seeded, device, train, data["validation"], _member_progress(progress, member,
                                                                                           settings.members),
                         is_cancelled, log, processes)
            runs.append(loop.run())
        members.append(model.cpu().eval())
    history, selection, stopped_early = runs[0]
    if settings.members > 1:
        selection = {**selection, "member_kept_epochs": [run[1]["kept_epoch"] for run in runs]}
    model = members[0] if settings.members == 1 else SeedAverage(members).eval()
    metrics = {split: evaluate(model, part) for split, part in data.items() if len(part)} if processes.primary else {}
    for split, values in metrics.items():
        log_message(log, f"{split}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
    used = [data[s] for s in METRIC_SPLITS]
    data_hash = hash_arrays(*(a for part in used for a in (*part.chunked(), part.y.numpy()))) \
        if processes.primary else ""
    influence = band_influence(model, train.blocks(), names) if processes.primary else None
    if influence:
        log_message(log, "Band influence (mean channel attention): " + ", ".join(f"{band} {weight:.3f}"
                                                                                for band, weight in influence.items()))
    return TrainResult(model, settings, metrics, history, selection["kept_epoch"], stopped_early,
                       selection["monitor"], selection, device.type, reason, data_hash, counts,
                       processes.card(settings.batch_size), influence)


def _member_progress(progress: ProgressFn, member: int, members: int) -> ProgressFn:
    """Progress of one member's run as its share of the whole ensemble's."""
    if progress is None:
        return None
    return lambda percent: progress((member + percent / 100.0) * 100.0 / members)


def fit_network(model: ZooModel, settings: TrainSettings, train: SplitData, *, is_cancelled: CancelFn = None,
                log: LogFn = None) -> ZooModel:
    """Train ``model`` on ``train`` for ``settings.epochs`` epochs (no validation split, no early stopping) with the
    same loop as :func:`train_model`; returns it in eval mode on the CPU. Used by spatial cross-validation, where
    every fold trains on its own cells."""
    device, _ = select_device(settings.device)
    empty = SplitData(train.source, train.y[:0], rows=np.zeros(0, np.int64))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        _Loop(model.to(device), dataclasses.replace(settings, early_stopping="off"), device, train, empty, None,
              is_cancelled, log).run()
    return model.cpu().eval()


class _Loop:
    """One training run: optimiser, schedule, epochs, validation and early stopping.

    ``processes`` decides what is shared between processes: the module trained (``model`` or a DDP wrapper of
    it), each process's batch order and size, the epoch loss (summed) and the validation scores (computed by
    the primary process on ``model`` and given to all, so every process keeps and stops at the same epoch).
    """

    def __init__(self, model: ZooModel, settings: TrainSettings, device: torch.device, train: SplitData,
                 validation: SplitData, progress: ProgressFn, is_cancelled: CancelFn, log: LogFn,
                 processes: SingleProcess | None = None) -> None:
        self.model, self.settings, self.device = model, settings, device
        self.train, self.validation = train, validation
        self.progress, self.is_cancelled, self.log = progress, is_cancelled, log
        self.processes = processes or SingleProcess()
        self.network = self.processes.wrap(model)
        self.batch_size = self.processes.batch_size(settings.batch_size)
        self.order, self.generator = self.processes.shuffler(len(train), settings.seed)
        self.loss = nn.CrossEntropyLoss(weight=_class_weights(train.y, model.n_classes).to(device)
                                        if settings.class_weighting else None)
        self.optimiser = _optimiser(model, settings)
        self.scheduler = _scheduler(self.optimiser, settings)

    def run(self) -> tuple[dict, dict, bool]:
        """Train every epoch or until early stopping; (history, epoch selection record, stopped early)."""
        settings = self.settings
        monitor, label = self._monitor()
        stages = self.model.training_stages(settings.epochs)
        min_epochs = max(min(settings.min_epochs, settings.epochs), stages[-1]["first_epoch"] if stages else 1)
        choice = _EpochChoice(monitor, min_epochs, settings.smoothing, settings.patience)
        history: dict = {key: [] for key in ("epoch", "lr", "loss", "val_loss", "val_auc", "seconds")}
        best_state = None
        for epoch in range(1, settings.epochs + 1):
            started = time.perf_counter()
            self._enter_stage(stages, epoch)
            lr = self.optimiser.param_groups[0]["lr"]
            loss = self._epoch(epoch)
            self.scheduler.step()
            val_loss, val_auc = self._validate()
            seconds = time.perf_counter() - started
            for key, value in zip(history, (epoch, lr, loss, val_loss, val_auc, seconds)):
                history[key].append(None if value != value else value)  # NaN (undefined) is stored as null
            log_message(self.log, f"Epoch {epoch}/{settings.epochs}: loss {loss:.4f}, validation loss "
                                  f"{_fmt(val_loss)}, validation AUC {_fmt(val_auc)}, lr {lr:.3g} ({seconds:.1f} s)")
            if choice.update(epoch, -val_loss if monitor == "val_loss" else val_auc, self._train_auc):
                best_state = copy.deepcopy(self.model.state_dict())
            if choice.stop:
                log_message(self.log, f"Early stop: no better smoothed {monitor.replace('_', ' ')} with a training "
                                      f"AUC above {CHANCE_AUC} for {choice.waited} epochs.")
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        selection = choice.record(label, epoch)
        if stages:
            selection["stages"] = stages
        log_message(self.log, f"Kept epoch {selection['kept_epoch']}: {selection['kept_because']}.")
        return history, selection, epoch < settings.epochs

    def _enter_stage(self, stages: list[dict], epoch: int) -> None:
        """Switch the model to the stage that starts at ``epoch``, if one does (:meth:`.ZooModel.training_stages`);
        frozen parameters get no gradient, so the optimiser leaves them as they are."""
        for stage in stages:
            if stage["first_epoch"] == epoch:
                self.model.enter_stage(stage["name"])
                log_message(self.log, f"Stage {stage['name']} (epochs {epoch}-{stage['last_epoch']}): trains "
                                      f"{stage['trains']}.")

    def _monitor(self) -> tuple[str, str]:
        """The score early stopping watches (val_loss, val_auc or off) and how the card describes it."""
        wanted = self.settings.early_stopping
        if wanted == "off":
            return "off", "off (as set)"
        if not len(self.validation):
            log_message(self.log, "No validation samples: early stopping is off and the last epoch is kept.")
            return "off", "off (no validation samples)"
        if wanted == "val_auc" and len(set(self.validation.y.tolist())) < 2:
            log_message(self.log, "The validation split has one class only, so its AUC is undefined: early stopping "
                                  "watches the validation loss instead.")
            return "val_loss", "val_loss (validation AUC undefined: one class in the validation split)"
        return wanted, wanted

    def _train_auc(self) -> float:
        """ROC AUC of the current model on the training split, in eval mode."""
        check_cancelled(self.is_cancelled)

        def compute() -> tuple[float]:
            logits = _split_logits(self.model, self.train, self.device)
            return (_auc(self.train.y.numpy(), torch.softmax(logits, 1)[:, 1].numpy()),)

        return self.processes.from_primary(compute)[0]

    def _epoch(self, epoch: int) -> float:
        """One pass over this process's shuffled training rows; the mean training loss over every process."""
        self.network.train()
        size = self.batch_size
        order = self.order(epoch)
        if len(order) % size == 1:  # a one-sample batch breaks batch norm in training mode: drop it this epoch
            order = order[:-1]
        batches = range(0, len(order), size)
        total = 0.0
        for index, start in enumerate(batches):
            check_cancelled(self.is_cancelled)
            chosen = order[start:start + size]
            x = training_batch(self.train, chosen, self.settings, self.generator)
            y = self.train.y[chosen].to(self.device)
            if self.settings.input_noise:
                x = _each(x, lambda part: part + self.settings.input_noise * torch.randn(part.shape,
                                                                                         generator=self.generator))
            x = _each(x, lambda part: part.to(self.device))
            self.optimiser.zero_grad(set_to_none=True)
            loss = self.model.training_loss(self.network(x), y, self.loss)
            loss.backward()
            self.optimiser.step()
            total += loss.item() * len(chosen)
            report(self.progress, 100.0 * ((epoch - 1) + (index + 1) / len(batches)) / self.settings.epochs)
        total, count = self.processes.sum(total, len(order))
        if not math.isfinite(total):
            raise InputError(f"The training loss became {total} at epoch {epoch}: lower the learning rate, or check "
                             "the evidence stack for extreme values (normalise it).")
        return total / count

    def _validate(self) -> tuple[float, float]:
        if not len(self.validation):
            return math.nan, math.nan
        check_cancelled(self.is_cancelled)

        def compute() -> tuple[float, float]:
            logits = _split_logits(self.model, self.validation, self.device)
            loss = float(self.loss(logits.to(self.device), self.validation.y.to(self.device)))
            return loss, _auc(self.validation.y.numpy(), torch.softmax(logits, 1)[:, 1].numpy())

        return self.processes.from_primary(compute)


class _EpochChoice:
    """Which epoch to keep and when to stop: smoothed score, minimum epochs, training AUC above chance."""

    def __init__(self, monitor: str, min_epochs: int, smoothing: int, patience: int) -> None:
        self.monitor, self.min_epochs, self.smoothing, self.patience = monitor, min_epochs, smoothing, patience
        self.scores: list[float] = []
        self.best_score, self.kept_epoch, self.kept_train_auc, self.waited = -math.inf, 0, None, 0
        self.below_chance: list[dict] = []

    def update(self, epoch: int, score: float, train_auc: Callable[[], float]) -> bool:
        """Record an epoch's validation score (higher is better); True when this epoch becomes the one to keep.

        ``train_auc`` is called only for an epoch whose smoothed score beats the kept one.
        """
        self.scores.append(score)
        if self.monitor == "off" or epoch < self.min_epochs:
            return False
        smoothed = float(np.mean(self.scores[-self.smoothing:]))
        if smoothed > self.best_score:
            auc = train_auc()
            if auc > CHANCE_AUC:
                self.best_score, self.kept_epoch, self.kept_train_auc, self.waited = smoothed, epoch, auc, 0
                return True
            self.below_chance.append({"epoch": epoch, "train_auc": auc})
        self.waited += 1
        return False

    @property
    def stop(self) -> bool:
        """Whether ``patience`` epochs from the minimum on passed without a kept epoch."""
        return self.monitor != "off" and self.waited >= self.patience

    def record(self, label: str, last_epoch: int) -> dict:
        """What was kept and why, for the card (no kept epoch: the last one is kept)."""
        if self.monitor == "off":
            why = "the last epoch, early stopping being off"
        elif self.kept_epoch:
            why = (f"the best mean {self.monitor.replace('_', ' ')} over {self.smoothing} epoch(s) from epoch "
                   f"{self.min_epochs} on, with a training AUC above {CHANCE_AUC}")
        else:
            why = f"the last epoch, no epoch from {self.min_epochs} on having a training AUC above {CHANCE_AUC}"
        return {"monitor": label, "min_epochs": self.min_epochs, "smoothing": self.smoothing,
                "patience": self.patience, "kept_epoch": self.kept_epoch or last_epoch, "kept_because": why,
                "train_auc_at_kept": self.kept_train_auc, "below_chance": self.below_chance}


def predict_logits(model: nn.Module, x: Inputs, device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits of ``x`` (one tensor, or a tuple for a model of several inputs) in eval mode, in batches, on the CPU
    (the model's mode is restored)."""
    count = len(x[0] if isinstance(x, tuple) else x)
    return _logits(model, (_each(x, lambda part, start=start: part[start:start + _EVAL_BATCH])
                           for start in range(0, count, _EVAL_BATCH)), device)


def _split_logits(model: nn.Module, part: SplitData, device: torch.device | str) -> torch.Tensor:
    """Logits of a split's samples, read and scored a batch at a time."""
    return _logits(model, part.blocks(_EVAL_BATCH), device)


def _logits(model: nn.Module, batches: Iterable[Inputs], device: torch.device | str) -> torch.Tensor:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        parts = [model(_each(batch, lambda part: part.to(device))).float().cpu() for batch in batches]
    model.train(was_training)
    return torch.cat(parts) if parts else torch.zeros((0, 2))


def evaluate(model: nn.Module, part: SplitData) -> dict:
    """Accuracy, precision, recall, F1, their macro averages and the confusion matrix (:mod:`..core.scoring.metrics`;
    prospective = argmax) and ROC AUC of ``model`` on one split, per sample; and the AUC
    per deposit (each deposit's own cell once, against the unaugmented negatives), since the 3 × 3 cells of one
    deposit are nine correlated samples and a per-cell score counts each deposit about nine times."""
    device = next(model.parameters()).device
    probability = torch.softmax(_split_logits(model, part, device), 1)[:, 1].numpy()
    truth, predicted = part.y.numpy(), (probability >= 0.5).astype(np.int64)
    once = part.per_deposit
    return {
        **threshold_metrics(truth, predicted),
        "auc": _auc(truth, probability),
        "auc_per_deposit": math.nan if once is None else _auc(truth[once], probability[once]),
    }


def save_model(result: TrainResult, training_set: TrainingSet, path: str, curves_path: str | None = None) -> dict:
    """Write the model file (ONNX + card) and, optionally, the training curves; returns the card."""
    manifest = training_set.manifest
    band_names = list(manifest.get("band_names", []))
    model, settings = result.model, result.settings
    recipe = manifest.get("stack_tags", {}).get(STACK_TAG)
    card = make_card(
        settings.architecture, band_names, band_normalisation(recipe if isinstance(recipe, Mapping) else None,
                                                              band_names),
        model.patch_size, manifest.get("pixel_size", [0.0, 0.0]), manifest.get("crs", ""),
        input_kind=model.input_kind, options=settings.options, metrics=result.metrics, history=result.history,
        seed=settings.seed, data_hash=result.data_hash,
        extra={"settings": settings.as_dict(), "device": result.device, "distributed": result.distributed,
               "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
               "early_stopping_used": result.early_stopping_used,
               "epoch_selection": result.selection, "samples": result.counts, **result.extra,
               "training_set": {key: manifest.get(key) for key in ("seed", "split", "augmentation", "positive_radius",
                                                                    "negative_ratio", "patch_size", "window_fill",
                                                                    "labelling")},
               "online_augmentation": card_record(settings, int(manifest.get("patch_size") or model.patch_size)),
               **({"band_influence": result.band_influence} if result.band_influence else {})},
    )
    export_onnx(model, path, card, model.in_bands, model.patch_size)
    if curves_path:
        plot_training_curves(result.history, result.best_epoch, curves_path, settings.architecture)
    return card


def plot_training_curves(history: Mapping, best_epoch: int, path: str, title: str) -> None:
    """Write the training curves (loss and validation AUC per epoch, the kept epoch marked) as a PNG."""
    png = training_curves_png(history, best_epoch, title)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(png)


def _check_splits(data: dict[str, SplitData]) -> None:
    train = data["train"]
    if len(train) < 2:
        raise InputError(f"The training split has {len(train)} sample(s); at least 2 are needed.")
    if len(set(train.y.tolist())) < 2:
        raise InputError("The training split holds one class only; it needs deposits and negatives.")
    for split, part in data.items():
        if not all(torch.isfinite(x).all() for block in part.blocks() for x in _tensors(block)):
            raise InputError(f"The {split} samples hold NaN or infinite values; rebuild the training set from a "
                             "stack without them.")


def _class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).float()
    return torch.where(counts > 0, len(y) / (n_classes * counts.clamp(min=1)), torch.zeros_like(counts))


def _optimiser(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimiser == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=settings.learning_rate, momentum=settings.momentum,
                           weight_decay=settings.weight_decay)


def _scheduler(optimiser: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: cosine from the learning rate down to the minimum at the last epoch, step, or constant."""
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(settings.epochs - 1, 1),
                                                          eta_min=settings.min_learning_rate)
    if settings.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, settings.step_epochs, settings.step_factor)
    return torch.optim.lr_scheduler.ConstantLR(optimiser, factor=1.0)


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    return float(skm.roc_auc_score(truth, score)) if len(np.unique(truth)) == 2 else math.nan


def _fmt(value: float | list | None) -> str:
    if isinstance(value, list):  # the confusion matrix
        return str(value)
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


