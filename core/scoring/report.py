"""One self-contained HTML report of a prospectivity study: maps, models, evaluation, classes, targets, provenance.

The report is built from files the pipeline wrote (the ensemble map and its uncertainty, member maps with
their model-card tags, the model cards and the training-set manifest) and the deposits; it re-scores every map
against the same deposits with :func:`core.scoring.evaluation.evaluate_map` so deep and classical members, and the
ensemble, are compared on one footing, and recomputes anomaly classes and targets of the ensemble with
:mod:`core.mapping.anomaly`. Images are PNGs embedded as base64, so the file can be mailed or archived alone.

No map is ever held whole: the scores, classes and targets come from the windowed computations of
:mod:`core.mapping.streaming` (the cells where every map has a value go to a temporary mask raster first), and the map
figures are drawn from decimated reads of at most :data:`PREVIEW_SIDE` cells a side (GDAL reads them from the
file's overviews when it has some), so a report on a national map needs little more memory than one on a
district.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine

from ..charts import html_figure, new_figure, png_bytes
from ..errors import InputError
from ..grid import GridSpec
from ..mapping import anomaly
from ..mapping.ensemble import check_same_grid
from ..mapping.maps import check_probability_map, check_threshold, open_map
from ..mapping.streaming import raster_map
from ..outputs import atomic_path
from ..progress import CancelFn, ProgressFn, check_cancelled, report
from ..raster_io import ENSEMBLE_TAG, MODEL_CARD_TAG, geotiff_profile, read_grid_spec
from .evaluation import HELD_OUT, TRAINING, Evaluation, confusion_table, evaluate_map, plot_pngs
from .metrics import CONFUSION_MATRIX, confusion_counts

MAX_TARGET_ROWS = 20
PREVIEW_SIDE = 1000  # map figures show at most this many cells a side (decimated reads), whatever the map's size
CLASS_COLOURS = ["#d7191c", "#ffd92f", "#2b83ba", "#abd9e9", "#d9d9d9", "#f0f0f0"]
_esc = html.escape


@dataclass
class ReportInputs:
    """What the report is made of. Points are (n, 2) arrays in the maps' CRS."""

    ensemble_path: str
    training_xy: np.ndarray
    held_out_xy: np.ndarray | None = None
    barren_xy: np.ndarray | None = None
    uncertainty_path: str | None = None
    member_paths: Sequence[str] = ()
    cards: Sequence[Mapping] = ()
    training_manifest: Mapping | None = None
    class_limits: Sequence[float] = anomaly.DEFAULT_CLASS_LIMITS
    target_classes: int = 1
    min_target_area_km2: float = 0.0
    threshold: float = 0.5
    title: str = "Prospectivity report"
    parameters: Sequence[tuple[str, str]] = ()
    spatial_cv: Sequence[Mapping] = ()  # summary rows of 'Spatial cross-validation' (cv_report.read_cv_summary)


@dataclass
class ReportSummary:
    """Headline figures of the report (also returned to the caller for its log)."""

    held_out_auc: float | None
    prediction_rate_auc: float | None
    top_class_deposit_pct: float | None
    targets: int
    notes: list[str] = field(default_factory=list)


def write_report(path: str, inputs: ReportInputs, *, progress: ProgressFn = None,
                 is_cancelled: CancelFn = None) -> ReportSummary:
    """Score the maps, draw the figures and write the report to ``path`` (atomically)."""
    if not 1 <= inputs.target_classes <= len(inputs.class_limits):
        raise InputError(f"Targets from classes 1 … {inputs.target_classes}: there are only "
                         f"{len(inputs.class_limits)} classes ({', '.join(map(str, inputs.class_limits))} %).")
    check_threshold(inputs.threshold)
    check_probability_map(inputs.ensemble_path, "The final map", band=None)
    for member_path in inputs.member_paths:
        check_probability_map(member_path, "The member map", band=None)
    maps = [inputs.ensemble_path, *inputs.member_paths, *filter(None, [inputs.uncertainty_path])]
    if len(maps) > 1:
        check_same_grid(maps)
    grid = read_grid_spec(inputs.ensemble_path)
    scored = [inputs.ensemble_path, *inputs.member_paths]
    notes: list[str] = []
    rows, evaluations, members, tags = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="deepprospect-report-") as folder:
        common = os.path.join(folder, "common.tif") if len(scored) > 1 else None
        if common:
            valid, shared = _common_cells(scored, common, is_cancelled, lambda p: report(progress, 0.1 * p))
            if any(shared < count for count in valid):
                notes.append(f"Every map is scored on the {shared} cells where all of them have a value (windows "
                             "of patch models leave an empty margin), so all face the same deposits and negatives.")
        for index, map_path in enumerate(scored):
            with raster_map(map_path, valid_in=[common] if common else ()) as source:
                evaluations.append(evaluate_map(
                    source, grid, inputs.training_xy, inputs.held_out_xy, inputs.barren_xy, inputs.threshold,
                    is_cancelled=is_cancelled,
                    progress=lambda p, index=index: report(progress, 10 + 50 * (index + p / 100) / len(scored))))
                tags.append(source.tags)
            label = _map_label(tags[-1], os.path.splitext(os.path.basename(map_path))[0] if index else "ensemble")
            rows.append(_comparison_row(label, evaluations[-1], tags[-1]))
            if index:
                members.append((label, _preview(map_path)))
    evaluation = evaluations[0]  # the final map's: its curves and the headline
    notes += [f"Scoring: {note}" for note in evaluation.notes]
    check_cancelled(is_cancelled)
    deposits = _all_deposits(inputs)
    with raster_map(inputs.ensemble_path) as source:
        classes = anomaly.classify(source, grid, inputs.class_limits, deposit_xy=deposits, is_cancelled=is_cancelled)
        targets, target_notes = anomaly.find_targets(source, grid, classes, inputs.target_classes,
                                                     inputs.min_target_area_km2, deposit_xy=deposits,
                                                     is_cancelled=is_cancelled)
    notes += classes.notes + target_notes
    report(progress, 75)
    uncertainty = _preview(inputs.uncertainty_path) if inputs.uncertainty_path else None
    figures = {
        "maps": png_bytes(_map_figure(_preview(inputs.ensemble_path), uncertainty, classes, grid, inputs, targets)),
        **plot_pngs(evaluation),
    }
    if members:
        figures["members"] = png_bytes(_members_figure(members, grid))
    for index, card in enumerate(inputs.cards):
        if card.get("history", {}).get("epoch"):
            figures[f"training_{index}"] = training_curves_png(card["history"], (card.get("extra") or {}).get(
                "best_epoch", 0), _card_label(card))
    check_cancelled(is_cancelled)
    held_out = _set(evaluation, HELD_OUT)
    summary = ReportSummary(
        held_out_auc=held_out.roc.auc if held_out else None,
        prediction_rate_auc=held_out.rate.auc if held_out and held_out.rate else None,
        top_class_deposit_pct=_finite(classes.table[0].deposit_pct) if classes.table else None,
        targets=len(targets), notes=notes)
    document = _html(inputs, tags[0], evaluation, rows, classes, targets, figures, summary)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(document)
    report(progress, 100)
    return summary


def _common_cells(paths: Sequence[str], output: str, is_cancelled: CancelFn,
                  progress: ProgressFn) -> tuple[list[int], int]:
    """Write a mask raster (uint8, nodata 0) of the cells where every map of ``paths`` has a value, window by
    window; return each map's count of cells with a value and the count they share."""
    with ExitStack() as stack:
        sources = [stack.enter_context(raster_map(path)) for path in paths]
        grid = sources[0].grid
        sink = stack.enter_context(rasterio.open(output, "w", **geotiff_profile(
            grid.cols, grid.rows, 1, "uint8", None, Affine.from_gdal(*grid.geotransform), 0)))
        valid, shared = np.zeros(len(paths), dtype=np.int64), 0
        windows = sources[0].windows()
        for done, window in enumerate(windows, start=1):
            check_cancelled(is_cancelled)
            has_value = np.stack([~np.isnan(source.read(window)) for source in sources])
            everywhere = has_value.all(axis=0)
            valid += has_value.sum(axis=(1, 2))
            shared += int(everywhere.sum())
            sink.write(everywhere.astype(np.uint8), 1, window=window)
            report(progress, 100.0 * done / len(windows))
    return valid.tolist(), shared


def _preview(path: str) -> np.ndarray:
    """Band 1 of a map for a figure, at most :data:`PREVIEW_SIDE` cells a side: a decimated read (GDAL takes it
    from the overviews when the file has some), every cell of a small map; float64, NaN at nodata."""
    with open_map(path) as src:
        step = max(1.0, max(src.height, src.width) / PREVIEW_SIDE)
        shape = (max(1, round(src.height / step)), max(1, round(src.width / step)))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)
    values = values.astype(np.float64).filled(np.nan)
    values[~np.isfinite(values)] = np.nan
    return values


def training_curves_png(history: Mapping, best_epoch: int, title: str) -> bytes:
    """PNG of training/validation loss and validation AUC per epoch, the kept epoch marked."""
    figure = new_figure(10, 4)
    loss_axis, auc_axis = figure.subplots(1, 2)
    epochs = history["epoch"]
    loss_axis.plot(epochs, history["loss"], label="training loss")
    loss_axis.plot(epochs, _floats(history.get("val_loss")), label="validation loss")
    auc_axis.plot(epochs, _floats(history.get("val_auc")), color="tab:green", label="validation AUC")
    for axis, label in ((loss_axis, "cross-entropy"), (auc_axis, "ROC AUC")):
        if best_epoch:
            axis.axvline(best_epoch, color="grey", linestyle="--", label=f"kept epoch {best_epoch}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(f"Training curves — {title}")
    return png_bytes(figure)


# ------------------------------------------------------------------------------------------------ pieces


def _comparison_row(label: str, evaluation: Evaluation, tags: Mapping) -> dict:
    card = _json_tag(tags, MODEL_CARD_TAG) or {}
    validation = (card.get("metrics") or {}).get("validation") or {}
    training, held_out = _set(evaluation, TRAINING), _set(evaluation, HELD_OUT)
    pa = evaluation.prediction_area
    return {
        "label": label, "validation_auc": validation.get("auc"),
        "held_out_auc": held_out.roc.auc if held_out else None,
        "prediction_rate_auc": held_out.rate.auc if held_out and held_out.rate else None,
        "success_rate_auc": training.rate.auc if training and training.rate else None,
        "pa": f"{pa.deposit_percent_at:.1f} % in {pa.area_percent_at:.1f} %",
    }


def _set(evaluation: Evaluation, name: str):
    return next((result for result in evaluation.sets if result.name == name), None)


def _all_deposits(inputs: ReportInputs) -> np.ndarray:
    parts = [xy for xy in (inputs.training_xy, inputs.held_out_xy) if xy is not None and len(xy)]
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def _map_label(tags: Mapping, fallback: str) -> str:
    ensemble = _json_tag(tags, ENSEMBLE_TAG)
    if isinstance(ensemble, dict):
        return f"ensemble ({ensemble.get('method', '?')})"
    card = _json_tag(tags, MODEL_CARD_TAG)
    return _card_label(card) if isinstance(card, dict) else fallback


def _card_label(card: Mapping) -> str:
    name = card.get("model_file") or card.get("architecture", "model")
    return f"{card.get('architecture', '?')} ({name})" if name != card.get("architecture") else str(name)


def _json_tag(tags: Mapping, key: str):
    try:
        return json.loads(tags[key])
    except (KeyError, TypeError, ValueError):
        return None


def _floats(values) -> list[float]:
    return [math.nan if value is None else float(value) for value in (values or [])]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else _esc(str(value))


# ----------------------------------------------------------------------------------------------- figures


def _extent(grid: GridSpec) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = grid.bounds
    return x0, x1, y0, y1


def _map_figure(values, uncertainty, classes, grid: GridSpec, inputs: ReportInputs, targets) -> object:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    panels = 3 if uncertainty is not None else 2
    figure = new_figure(5.2 * panels, 5)
    axes = figure.subplots(1, panels)
    extent = _extent(grid)
    image = axes[0].imshow(values, extent=extent, cmap="viridis", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes[0], shrink=0.7, label="prospectivity")
    axes[0].set_title("Ensemble prospectivity")
    for target in targets[:MAX_TARGET_ROWS]:
        for ring in _exterior_rings(target.geometry):
            axes[0].plot(ring[:, 0], ring[:, 1], color="#c00000", linewidth=0.9)
        axes[0].annotate(str(target.rank), target.centroid, color="#c00000", fontsize=8, ha="center", weight="bold")
    k = len(classes.limits)
    palette = (CLASS_COLOURS * (1 + k // len(CLASS_COLOURS)))[:k]  # as resources/styles/anomaly_classes.qml
    codes = classes.classes_of(values)
    coded = np.where(codes == anomaly.CLASS_NODATA, np.nan,
                     np.where(codes == anomaly.BACKGROUND_CLASS, k + 1, codes)).astype(float)
    axes[1].imshow(coded, extent=extent, cmap=ListedColormap([*palette, "#ffffff"]), vmin=0.5, vmax=k + 1.5,
                   interpolation="nearest")
    names = anomaly.class_names(classes.limits)
    axes[1].set_title("Anomaly classes")
    axes[1].legend(handles=[Patch(color=colour, label=names[c]) for c, colour in enumerate(palette, start=1)],
                   fontsize=7, loc="upper right")
    if uncertainty is not None:
        image = axes[2].imshow(uncertainty, extent=extent, cmap="Purples", vmin=0, vmax=0.5)  # as uncertainty.qml
        figure.colorbar(image, ax=axes[2], shrink=0.7, label="uncertainty")
        axes[2].set_title("Ensemble uncertainty")
    for axis in axes:
        _deposits(axis, inputs)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].legend(fontsize=7, loc="lower left")
    return figure


def _members_figure(members, grid: GridSpec) -> object:
    columns = min(len(members), 4)
    rows = math.ceil(len(members) / columns)
    figure = new_figure(4 * columns, 3.8 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis, (label, values) in zip(axes, members):
        axis.imshow(values, extent=_extent(grid), cmap="viridis", vmin=0, vmax=1)
        axis.set_title(label, fontsize=8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes[len(members):]:
        axis.set_visible(False)
    return figure


def _deposits(axis, inputs: ReportInputs) -> None:
    for xy, marker, label in ((inputs.training_xy, "o", "training deposits"),
                              (inputs.held_out_xy, "^", "held-out deposits")):
        if xy is not None and len(xy):
            axis.scatter(xy[:, 0], xy[:, 1], s=18, marker=marker, facecolors="white", edgecolors="black",
                         linewidths=0.8, label=label)


def _exterior_rings(geometry: Mapping) -> list[np.ndarray]:
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [np.asarray(polygon[0], dtype=float) for polygon in polygons]


# ------------------------------------------------------------------------------------------------- HTML


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(inputs: ReportInputs, tags: Mapping, evaluation: Evaluation, rows, classes, targets, figures,
          summary: ReportSummary) -> str:
    pa = evaluation.prediction_area
    held_out = next((result for result in evaluation.sets if result.name == HELD_OUT), None)
    if held_out is None:
        scores = ("<b>No held-out deposit lies on the map: every score below is a training score, not a test of "
                  "the map.</b>")
    else:
        scores = (f"Held-out deposits ({held_out.n_deposits}, kept out of training): ROC AUC "
                  f"{_fmt(summary.held_out_auc)}, prediction-rate AUC {_fmt(summary.prediction_rate_auc)}"
                  + (" — few deposits, so these figures are rough." if held_out.n_deposits < 10 else "."))
    headline = (f"{_cv_headline(inputs.spatial_cv)}{scores} Over all deposits (training and held-out): the top class "
                f"({_esc(anomaly.class_names(classes.limits)[1])} of the area) holds "
                f"{_fmt(summary.top_class_deposit_pct, 1)} % of them; P-A: {pa.deposit_percent_at:.1f} % of them in "
                f"{pa.area_percent_at:.1f} % of the area. {summary.targets} target zone(s).")
    comparison = _table(
        ["map", "validation AUC (card; training-time split, not held out)", "held-out ROC AUC",
         "prediction-rate AUC", "success-rate AUC",
         "P-A: deposits in area"],
        [[_esc(r["label"]), _fmt(r["validation_auc"]), _fmt(r["held_out_auc"]), _fmt(r["prediction_rate_auc"]),
          _fmt(r["success_rate_auc"]), _esc(r["pa"])] for r in rows])
    class_table = _table(
        ["class", "value from", "cells", "area km²", "area %", "deposits", "deposits %"],
        [[_esc(r.name), _fmt(_finite(r.threshold), 4), str(r.cells), _fmt(r.area_km2, 2), _fmt(r.area_pct, 1),
          str(r.deposits), _fmt(_finite(r.deposit_pct), 1)] for r in classes.table])
    target_table = _table(
        ["rank", "mean prob.", "max prob.", "area km²", "deposits inside", "centroid x", "centroid y"],
        [[str(t.rank), _fmt(t.mean_value), _fmt(t.max_value), _fmt(t.area_km2, 3), str(t.deposits),
          f"{t.centroid[0]:.0f}", f"{t.centroid[1]:.0f}"] for t in targets[:MAX_TARGET_ROWS]])
    curves = "".join(html_figure(figures[key], caption) for key, caption in (
        ("roc", "ROC curves of the ensemble"), ("rate", "Success-rate and prediction-rate curves of the ensemble"),
        ("prediction_area", "Prediction–area (P-A) plot of the ensemble")))
    maps = html_figure(figures["maps"], "Ensemble prospectivity with ranked targets, anomaly classes and "
                                        "uncertainty; circles: training deposits, triangles: held-out deposits")
    members = html_figure(figures["members"], "Member maps (same colour scale)") if "members" in figures else ""
    models = "".join(_model_section(index, card, figures) for index, card in enumerate(inputs.cards))
    threshold_table = _table(
        ["deposits", "accuracy", "precision", "recall", "F1", "macro precision", "macro recall", "macro F1"],
        [[_esc(r.name)] + [_fmt(v) for v in (r.accuracy, r.precision, r.recall, r.f1, r.macro_precision,
                                             r.macro_recall, r.macro_f1)] for r in evaluation.sets])
    notes = "".join(f"<li>{_esc(note)}</li>" for note in summary.notes) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(inputs.title)}</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0}}th,td{{border:1px solid #bbb;padding:0.2em 0.6em}}
td{{text-align:right}}img{{max-width:100%}}figure{{margin:1em 0}}code{{font-size:90%}}
.lead{{font-size:110%;background:#f4f4f4;padding:0.6em}}</style></head><body>
<h1>{_esc(inputs.title)}</h1>
<p class="lead">{headline}</p>
{_cv_section(inputs.spatial_cv)}
<h2>Maps</h2>{maps}
<h2>Models compared</h2>
<p>Every map is scored against the same deposits: held-out ROC AUC and prediction rate use the deposits kept out
of training; the success rate uses the training deposits. Negatives: {_esc(evaluation.negatives)}.</p>
{comparison}{members}
<h2>Evaluation of the ensemble</h2>{curves}
<p>At probability ≥ {inputs.threshold:g} (negatives: {_esc(evaluation.negatives)}); precision, recall and F1 of
the deposit class, macro = mean over the deposit and negative classes (gao2022, he2024):</p>{threshold_table}
{"".join(confusion_table(result.name, result.confusion_matrix) for result in evaluation.sets)}
<h2>Anomaly classes</h2>{class_table}
<h2>Targets</h2><p>Connected zones of classes 1–{inputs.target_classes} of at least {inputs.min_target_area_km2:g} km²,
ranked by mean probability (the first {MAX_TARGET_ROWS} are listed).</p>{target_table if targets else
"<p>No zone of these classes reaches the minimum area.</p>"}
<h2>Models and training</h2>{models or "<p>No model file was given.</p>"}
<h2>Training data</h2>{_manifest_section(inputs.training_manifest)}
<h2>Parameters and provenance</h2>{_provenance(inputs, tags)}
<h2>Notes</h2><ul>{notes}</ul>
</body></html>
"""


def _cv_headline(rows: Sequence[Mapping]) -> str:
    """The lead sentence from spatial cross-validation: the first model's held-out AUC, next to the forest's."""
    if not rows:
        return ""
    first = rows[0]
    others = "; ".join(f"{_esc(r['model'])} {_fmt(r['auc_mean'])}" for r in rows[1:])
    return (f"<b>Spatial cross-validation</b> ({first['folds']} folds; every deposit scored by a model that never "
            f"saw its region): {_esc(first['model'])} ROC AUC {_fmt(first['auc_mean'])} ± {_fmt(first['auc_std'])}"
            f"{f' ({others})' if others else ''}; it puts {_fmt(100 * first['capture']['top_15'], 0)} % of the "
            "held-out deposits in the top 15 % of the area. These scores are for the cross-validated recipes (each "
            "trained on the other folds); they are what to expect of them in unexplored ground. ")


def _cv_section(rows: Sequence[Mapping]) -> str:
    if not rows:
        return ""
    table = _table(["model", "spatial-CV ROC AUC", "± std", "deposits in top 5 / 15 / 30 % of area",
                    "deposit-vs-area AUC"],
                   [[_esc(r["model"]), _fmt(r["auc_mean"]), _fmt(r["auc_std"]),
                     " / ".join(_fmt(v, 2) for v in r["capture"].values()), _fmt(r["area_auc"])] for r in rows])
    return ("<h2>Spatial cross-validation</h2><p>Leave-one-fold-out on spatial folds of the deposits: each model "
            "was trained without the fold it is scored on (mean ± std over folds × negative draws). These, not "
            "the scores on the training-time validation split, are the figures to compare models by.</p>" + table)


def _model_section(index: int, card: Mapping, figures: Mapping[str, bytes]) -> str:
    settings = (card.get("extra") or {}).get("settings") or {}
    metrics = card.get("metrics") or {}
    names = ("accuracy", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1", "auc",
             "auc_per_deposit")
    table = _table(["split", "accuracy", "precision", "recall", "F1", "macro precision", "macro recall", "macro F1",
                    "AUC (per cell)", "AUC (per deposit)", "TN", "FP", "FN", "TP"],
                   [[_esc(split)] + [_fmt(values.get(m)) for m in names]
                    + [_fmt(count) for count in confusion_counts(values.get(CONFUSION_MATRIX)).values()]
                    for split, values in metrics.items()])
    settings_text = ", ".join(f"{key} {value}" for key, value in settings.items()) or "not recorded"
    curve = figures.get(f"training_{index}")
    return (f"<h3>{_esc(_card_label(card))}</h3><p>Bands: {_esc(', '.join(card.get('band_names', [])))}; patch "
            f"{_esc(str(card.get('patch_size')))} px; settings: {_esc(settings_text)}; device "
            f"{_esc(str((card.get('extra') or {}).get('device', '?')))}.</p>{table}"
            + (html_figure(curve, "Training curves") if curve else ""))


def _manifest_section(manifest: Mapping | None) -> str:
    if not manifest:
        return "<p>No training set was given.</p>"
    keys = ("patch_size", "labelling", "positive_radius", "negative_ratio", "exclusion_buffer", "seed", "deposit_cells",
            "split", "augmentation", "counts")
    return _table(["setting", "value"], [[_esc(key), f"<code>{_esc(json.dumps(manifest.get(key)))}</code>"]
                                         for key in keys if key in manifest])


def _provenance(inputs: ReportInputs, tags: Mapping) -> str:
    rows = [[_esc(label), _esc(text)] for label, text in inputs.parameters]
    ensemble = _json_tag(tags, ENSEMBLE_TAG)
    if ensemble:
        rows.append(["ensemble", f"<code>{_esc(json.dumps(ensemble))}</code>"])
    for card in inputs.cards:
        versions = ", ".join(f"{k} {v}" for k, v in (card.get("versions") or {}).items())
        rows.append([_esc(_card_label(card)), _esc(f"seed {card.get('seed')}, data {card.get('data_hash')}, "
                                                   f"created {card.get('created')}, {versions}")])
    rows.append(["report", _esc(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))])
    return _table(["item", "value"], rows)
