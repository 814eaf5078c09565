"""A DeepProspect model file: one ``.onnx`` file whose ``metadata_props`` hold a JSON card.

The card says everything needed to apply the model to a new evidence stack and to judge it, so a model file
never travels without the band order and normalisation it was trained with.

Card schema, version :data:`CARD_VERSION` (stored as JSON under the metadata key :data:`CARD_KEY`):

==================  ========================================================================================
``format``          always ``"deepprospect-model"``
``card_version``    integer schema version (this module writes :data:`CARD_VERSION`; newer cards are refused)
``architecture``    zoo name (``models.zoo.available_models()``), e.g. ``"resnet18"``
``input_kind``      ``"patch"`` (input ``(batch, bands, patch, patch)``), ``"vector"`` (``(batch, bands)``) or
                    ``"pair"`` (two cells' vectors ``(batch, 2, bands)``, logits similar / dissimilar)
                    ``"patch+vector"`` (two inputs: the window and its centre cell's vector, e.g. ``affcnn``)
``inputs``          the ONNX inputs, in the order the model takes them: ``[{"name", "kind" ("patch" or
                    "vector"), "band_names"}]``; one input ``"input"`` for ``"patch"`` and ``"vector"``
                    models, ``"patch"`` and ``"vector"`` for ``"patch+vector"`` models (a vector input reads the
                    window's centre cell, the window's own cell). Version-1 cards, written before it existed,
                    read as their one input.
``options``         architecture options passed to ``build_model`` (``{}`` usually; ``{"pair": true}``)
``band_names``      evidence band names in the model's input channel order
``in_bands``        ``len(band_names)``
``normalisation``   the evidence-stack recipe the inputs were made with (a dict, stored verbatim)
``patch_size``      patch side in pixels (1 for vector models)
``pixel_size``      ``[width, height]`` of a pixel in CRS units
``crs``             CRS of the training stack (e.g. ``"EPSG:20350"`` or WKT)
``classes``         class names in logit order; default ``["non-prospective", "prospective"]``
``positive_class``  index of the prospective class in ``classes`` (its softmax is the prospectivity)
``input_name``      ONNX input name of one-input models (``"input"``, also in ``inputs``); ``output_name``: ONNX
                    output name (``"logits"``, raw logits)
``output_layout``   set by :func:`export_onnx`: ``"patch"``: output ``(batch, n_classes)``, one row per input patch
                    (or vector); ``"dense"``: the graph is fully convolutional (:mod:`.dense`): input
                    ``(batch, bands, H, W)`` with any H, W ≥ patch size, output ``(batch, n_classes, H−p+1,
                    W−p+1)`` whose [..., i, j] are the logits of the window with top-left cell (i, j), so a p×p
                    patch gives a 1×1 map. Cards without it (written before it existed) read as ``"patch"``.
``metrics``         ``{"train"|"validation"|"test": {name: float or null}}`` for the names in :data:`METRIC_NAMES`
                    (accuracy; precision, recall, F1 of the prospective class; their macro averages over both
                    classes; AUC per cell and per deposit), plus ``"confusion_matrix"``: ``[[TN, FP], [FN, TP]]``
                    (whole counts; rows = true class, columns = predicted class, both in the order of
                    ``classes``: non-prospective, prospective; the card's ``confusion_matrix_layout`` says so
                    in words) or null. Cards written before a metric existed read with it null.
``history``         training history as given by the trainer (e.g. ``{"loss": [...], "val_auc": [...]}``)
``seed``            the training seed
``data_hash``       a hash of the training data (see :func:`hash_arrays`)
``versions``        ``{"python", "numpy", "torch", "onnx", "onnxruntime", "deepprospect"}``
``created``         UTC time of the card, ISO 8601
``extra``           free-form dict for anything else (hyper-parameters, augmentation, split)
==================  ========================================================================================

Export uses the TorchScript-based ``torch.onnx.export`` (``dynamo=False``: the dynamo exporter needs
onnxscript, which is not a dependency) at opset :data:`OPSET`, checked with onnx 1.23 / onnxruntime 1.31 /
torch 2.13, with a dynamic batch axis (and dynamic height and width for the dense layout). Models whose dense
evaluation is exact (the zoo's ``dense_exact`` patch models: LeNet) are exported in the dense layout, so one
file serves both per-patch prediction and fast scanning of whole tiles.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import platform
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from ..core.errors import ModelError
from ..core.metadata import plugin_metadata
from ..core.outputs import atomic_path
from ..core.scoring.metrics import CONFUSION_LAYOUT, CONFUSION_MATRIX
from .dense import DenseScanner, dense_supported

CARD_KEY = "deepprospect_card"
CARD_FORMAT = "deepprospect-model"
CARD_VERSION = 2  # 2: the card lists its inputs ("inputs"); version-1 cards are read as one input
OPSET = 17
INPUT_NAME = "input"
INPUT_KINDS = ("patch", "vector", "pair", "patch+vector")
OUTPUT_NAME = "logits"
DEFAULT_CLASSES = ("non-prospective", "prospective")
PAIR_CLASSES = ("similar", "dissimilar")  # pixel-pair models (zhang2021): label 0 same class, 1 different
METRIC_SPLITS = ("train", "validation", "test")
METRIC_NAMES = ("accuracy", "recall", "f1", "auc", "auc_per_deposit", "precision", "macro_precision", "macro_recall",
                "macro_f1")
_REQUIRED = ("architecture", "input_kind", "band_names", "in_bands", "normalisation", "patch_size", "classes")
LAYOUTS = ("patch", "dense")


def make_card(
    architecture: str,
    band_names: Sequence[str],
    normalisation: Mapping[str, Any],
    patch_size: int,
    pixel_size: Sequence[float],
    crs: str,
    *,
    input_kind: str = "patch",
    options: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    positive_class: int = 1,
    metrics: Mapping[str, Mapping[str, float | None]] | None = None,
    history: Mapping[str, Any] | Sequence[Any] | None = None,
    seed: int = 0,
    data_hash: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Assemble a card (schema in the module docstring); :class:`ModelError` if a part is inconsistent.

    ``metrics`` maps a split (train, validation, test) to ``{metric: value}`` with metrics among
    :data:`METRIC_NAMES` and ``confusion_matrix`` (2 × 2 counts); missing metrics are stored as null so every
    card has the same shape. ``classes`` default:
    :data:`PAIR_CLASSES` for pair models, else :data:`DEFAULT_CLASSES`.
    """
    classes = classes or (PAIR_CLASSES if input_kind == "pair" else DEFAULT_CLASSES)
    if input_kind not in INPUT_KINDS:
        raise ModelError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, not {input_kind!r}.")
    if not 0 <= positive_class < len(classes):
        raise ModelError(f"positive_class {positive_class} is not an index of the classes {list(classes)}.")
    card = {
        "format": CARD_FORMAT,
        "card_version": CARD_VERSION,
        "architecture": str(architecture),
        "input_kind": input_kind,
        "inputs": model_inputs(input_kind, band_names),
        "options": dict(options or {}),
        "band_names": [str(name) for name in band_names],
        "in_bands": len(band_names),
        "normalisation": dict(normalisation),
        "patch_size": int(patch_size),
        "pixel_size": [float(size) for size in pixel_size],
        "crs": str(crs),
        "classes": [str(name) for name in classes],
        "positive_class": int(positive_class),
        **({"input_name": INPUT_NAME} if "+" not in input_kind else {}),
        "output_name": OUTPUT_NAME,
        "metrics": _metrics(metrics or {}),
        "confusion_matrix_layout": CONFUSION_LAYOUT,
        "history": history if history is not None else {},
        "seed": int(seed),
        "data_hash": str(data_hash),
        "versions": library_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }
    _to_json(card)  # fail now, not at export, if something in it is not JSON-serialisable
    return card


def export_onnx(model: nn.Module, path: str, card: Mapping[str, Any], in_bands: int, patch_size: int) -> None:
    """Write ``model`` (in eval mode) to ``path`` as ONNX with ``card`` in its metadata, atomically.

    The inputs are the card's ``inputs``, each with a dynamic batch axis (a model of several inputs takes them
    as one tuple). Models whose dense evaluation is exact are written as their fast-scanning graph
    (:class:`.dense.DenseScanner`, dynamic height and width) and the stored card says
    ``"output_layout": "dense"``; the others give ``(batch, n_classes)`` logits (``"patch"``).
    The model's training mode is restored afterwards. :class:`ModelError` if the card does not describe the
    model (band count, patch size, input kind), :class:`core.errors.InputError` if ``path`` is not writable.
    """
    _check_card(card, "the card to export")
    kind = getattr(model, "input_kind", "patch")
    if card["in_bands"] != in_bands or card["patch_size"] != patch_size or card["input_kind"] != kind:
        raise ModelError(
            f"The card describes a {card['input_kind']} model with {card['in_bands']} bands and patch size "
            f"{card['patch_size']}, but the model is a {kind} model with {in_bands} bands and patch size {patch_size}."
        )
    names = [entry["name"] for entry in card["inputs"]]
    device = next(model.parameters()).device
    if len(names) == 1:
        shapes = [model.input_shape(1) if hasattr(model, "input_shape") else (1, in_bands, patch_size, patch_size)]
    else:
        shapes = input_shapes(card)
    examples = tuple(torch.zeros(shape, device=device) for shape in shapes)
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    dense = dense_supported(model)
    dynamic_axes = {name: {0: "batch"} for name in (*names, OUTPUT_NAME)}
    if dense:
        dynamic_axes[names[0]].update({2: "height", 3: "width"})
        dynamic_axes[OUTPUT_NAME].update({2: "rows", 3: "cols"})
    if dense:
        graph: nn.Module = DenseScanner(model).to(device)
    else:
        graph = _SeveralInputs(model) if len(names) > 1 else model
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                graph,
                examples,
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
            )
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    _keep_every_input(proto, card)
    proto.doc_string = f"DeepProspect {card['architecture']} prospectivity model"
    entry = proto.metadata_props.add()
    entry.key = CARD_KEY
    entry.value = _to_json({**card, "output_layout": LAYOUTS[dense]})
    onnx.checker.check_model(proto)
    with atomic_path(path) as temporary:
        onnx.save_model(proto, temporary)


def read_card(path: str) -> dict:
    """The card of the DeepProspect model file ``path``.

    Raises:
        ModelError: the file is missing, is not a readable ONNX model, is an ONNX model without a DeepProspect
            card, or holds a card that is damaged or newer than this plugin understands.
    """
    if not os.path.isfile(path):
        raise ModelError(f"Model file not found: {path}. Choose an .onnx model file written by DeepProspect.")
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError and others on damaged bytes
        raise ModelError(f"{path} is not a readable ONNX model (damaged or not ONNX): {error}") from error
    if not proto.graph.node:
        raise ModelError(f"{path} is not a readable ONNX model (damaged or not ONNX): it holds no graph.")
    props = {entry.key: entry.value for entry in proto.metadata_props}
    if CARD_KEY not in props:
        raise ModelError(
            f"{path} is an ONNX model but not a DeepProspect model: it has no '{CARD_KEY}' metadata, so its band "
            "order and normalisation are unknown. Train the model with DeepProspect's training algorithm."
        )
    try:
        card = json.loads(props[CARD_KEY])
    except ValueError as error:
        raise ModelError(f"The DeepProspect card in {path} is damaged (not valid JSON): {error}") from error
    _check_card(card, path)
    card.setdefault("output_layout", "patch")
    card.setdefault("confusion_matrix_layout", CONFUSION_LAYOUT)
    for values in (card.get("metrics") or {}).values():  # cards written before a metric existed: null
        if isinstance(values, dict):
            for name in (*METRIC_NAMES, CONFUSION_MATRIX):
                values.setdefault(name, None)
    card.setdefault("inputs", model_inputs(card["input_kind"], card["band_names"]))  # version 1: one input
    return card


def model_inputs(input_kind: str, band_names: Sequence[str]) -> list[dict]:
    """The card's ``inputs`` of a model of ``input_kind`` reading ``band_names`` (schema in the module docstring)."""
    kinds = input_kind.split("+")
    names = [INPUT_NAME] if len(kinds) == 1 else kinds
    return [{"name": name, "kind": kind, "band_names": [str(band) for band in band_names]}
            for name, kind in zip(names, kinds)]


def input_shapes(card: Mapping[str, Any], batch: int = 1) -> list[tuple[int, ...]]:
    """The shape of each of the card's inputs for ``batch`` samples: patches (batch, bands, p, p), vectors
    (batch, bands), pixel pairs (batch, 2, bands)."""
    p = int(card["patch_size"])
    shapes = {"patch": lambda bands: (batch, bands, p, p), "vector": lambda bands: (batch, bands),
              "pair": lambda bands: (batch, 2, bands)}
    return [shapes[entry["kind"]](len(entry["band_names"])) for entry in card["inputs"]]


def _keep_every_input(proto: onnx.ModelProto, card: Mapping[str, Any]) -> None:
    """Put the card's inputs first among the graph's inputs, in the card's order, declaring any the exporter
    dropped because the model ignores it (an ablation that uses one of two inputs), so every model of an input
    kind is fed the same way."""
    graph_inputs = {value.name: value for value in proto.graph.input}
    names = [entry["name"] for entry in card["inputs"]]
    declared = [graph_inputs.get(name) or onnx.helper.make_tensor_value_info(
        name, onnx.TensorProto.FLOAT, ["batch", *shape[1:]]) for name, shape in zip(names, input_shapes(card))]
    others = [value for value in proto.graph.input if value.name not in names]
    del proto.graph.input[:]
    proto.graph.input.extend(declared + others)


class _SeveralInputs(nn.Module):
    """A model of several inputs, which takes them as one tuple, as a graph of several named inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)


def library_versions() -> dict:
    """Versions of the libraries a model file depends on, for the card."""
    import onnxruntime  # imported here: only the card needs it, and it is slow to import

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "deepprospect": plugin_metadata("version"),
    }


@dataclass(frozen=True)
class Chunked:
    """An array given as its dtype, shape and consecutive row blocks, for arrays too large to hold at once."""

    dtype: np.dtype
    shape: tuple[int, ...]
    blocks: Iterable[np.ndarray]


def hash_arrays(*arrays: np.ndarray | Chunked) -> str:
    """SHA-256 of arrays' shapes, dtypes and bytes: the card's ``data_hash`` of the training data.

    A :class:`Chunked` array hashes as the whole array would, block by block.
    """
    digest = hashlib.sha256()
    for array in arrays:
        if not isinstance(array, Chunked):
            array = np.ascontiguousarray(array)
            array = Chunked(array.dtype, array.shape, (array,))
        digest.update(f"{np.dtype(array.dtype).str}{tuple(int(n) for n in array.shape)}".encode())
        for block in array.blocks:
            digest.update(np.ascontiguousarray(block, dtype=array.dtype).tobytes())
    return "sha256:" + digest.hexdigest()


def _metrics(metrics: Mapping[str, Mapping[str, float | None]]) -> dict:
    unknown = set(metrics) - set(METRIC_SPLITS)
    if unknown:
        raise ModelError(f"Unknown metric split(s) {sorted(unknown)}; use {', '.join(METRIC_SPLITS)}.")
    result = {}
    for split, values in metrics.items():
        extra = set(values) - {*METRIC_NAMES, CONFUSION_MATRIX}
        if extra:
            raise ModelError(f"Unknown metric(s) {sorted(extra)} for {split}; use {', '.join(METRIC_NAMES)} or "
                             f"{CONFUSION_MATRIX}.")
        result[split] = {name: _finite_or_none(values.get(name)) for name in METRIC_NAMES}
        result[split][CONFUSION_MATRIX] = _confusion_matrix(values.get(CONFUSION_MATRIX), split)
    return result


def _confusion_matrix(matrix: Any, split: str) -> list[list[int]] | None:
    """A 2 × 2 confusion matrix as lists of whole counts ≥ 0, or None; :class:`ModelError` for anything else."""
    if matrix is None:
        return None
    counts = np.asarray(matrix)
    if counts.shape != (2, 2) or not np.isfinite(counts.astype(np.float64)).all() or (counts < 0).any() or \
            (counts != np.rint(counts)).any():
        raise ModelError(f"The {split} confusion matrix must be 2 × 2 whole counts [[TN, FP], [FN, TP]], not "
                         f"{matrix!r}.")
    return counts.astype(np.int64).tolist()


def _finite_or_none(value: float | None) -> float | None:
    """Undefined metrics (None, NaN: e.g. AUC of a one-class split) are stored as JSON null."""
    return None if value is None or not np.isfinite(value) else float(value)


def _check_card(card: Any, where: str) -> None:
    if not isinstance(card, Mapping) or card.get("format") != CARD_FORMAT:
        raise ModelError(f"The DeepProspect card in {where} is damaged: it is not a '{CARD_FORMAT}' card.")
    version = card.get("card_version")
    if not isinstance(version, int) or version > CARD_VERSION:
        raise ModelError(
            f"{where} has card version {version!r}; this DeepProspect reads versions up to {CARD_VERSION}. "
            "Update the plugin."
        )
    missing = [key for key in _REQUIRED if key not in card]
    if missing:
        raise ModelError(f"The DeepProspect card in {where} is damaged: it lacks {', '.join(missing)}.")
    if len(card["band_names"]) != card["in_bands"]:
        raise ModelError(f"The DeepProspect card in {where} is damaged: band names and band count disagree.")
    if card["input_kind"] not in INPUT_KINDS or not _inputs_fit(card):
        raise ModelError(f"The DeepProspect card in {where} is damaged: its inputs do not fit its input kind "
                         f"{card['input_kind']!r} and bands.")
    if card.get("output_layout", "patch") not in LAYOUTS:
        raise ModelError(f"The DeepProspect card in {where} is damaged: unknown output layout "
                         f"{card['output_layout']!r}.")


def _inputs_fit(card: Mapping[str, Any]) -> bool:
    """Whether the card's ``inputs`` (if any) are of its input kind, uniquely named, over its bands."""
    inputs = card.get("inputs")
    if inputs is None:
        return True
    try:
        kinds = "+".join(entry["kind"] for entry in inputs)
        names = [entry["name"] for entry in inputs]
        bands = [band for entry in inputs for band in entry["band_names"]]
    except (KeyError, TypeError):
        return False
    return kinds == card["input_kind"] and len(set(names)) == len(names) and set(bands) <= set(card["band_names"])


def _to_json(card: Mapping[str, Any]) -> str:
    try:
        return json.dumps(card, default=_json_default, allow_nan=True)
    except TypeError as error:
        raise ModelError(f"The model card cannot be stored: {error}") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
