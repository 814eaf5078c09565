"""Outputs of a spatial cross-validation: the score table, the out-of-fold map, a chart and an HTML section."""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import math

import numpy as np

from ..charts import html_figure, new_figure, png_bytes
from ..errors import InputError
from ..grid import GridSpec
from ..outputs import atomic_path, check_writable
from ..raster_io import write_geotiff
from .spatialcv import CAPTURE_SHARES, CvResult

CV_TAG = "DEEPPROSPECT_SPATIAL_CV"
CSV_HEADER = ("model", "fold", "deposits", "test_positive", "test_negative", "auc", "auc_std", "capture_top_5",
              "capture_top_15", "capture_top_30", "deposit_area_auc")


def table_rows(result: CvResult) -> list[list]:
    """Per model: one row per fold (AUC mean over repeats) and a row 'all' (mean ± std over folds × repeats)."""
    rows = []
    for summary in result.summary():
        name = summary["model"]
        for count, auc in zip(result.fold_counts, summary["auc_per_fold"]):
            rows.append([name, count["fold"], count["deposits"], count["test_positive"], count["test_negative"],
                         _number(auc), "", "", "", "", ""])
        rows.append([name, "all", len(result.deposit_fold), "", "", _number(summary["auc_mean"]),
                     _number(summary["auc_std"]), *(_number(v) for v in summary["capture"].values()),
                     _number(summary["area_auc"])])
    return rows


def chart_png(result: CvResult) -> bytes:
    """Held-out AUC per fold (points) and mean ± std (bar) of every model, with the chance line."""
    summary = result.summary()
    figure = new_figure(max(5.0, 1.1 * len(summary) + 2), 3.6)
    axis = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(summary))
    means = [row["auc_mean"] for row in summary]
    axis.bar(positions, means, yerr=[row["auc_std"] for row in summary], color="#9ecae1", capsize=4,
             label="mean ± std over folds × repeats")
    for position, row in zip(positions, summary):
        folds = row["auc_per_fold"]
        axis.scatter(np.full(len(folds), position) + np.linspace(-0.25, 0.25, len(folds)), folds, s=14,
                     color="#08519c", zorder=3, label="fold mean" if position == 0 else None)
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    axis.set_xticks(positions)
    axis.set_xticklabels([row["model"] for row in summary], rotation=30, ha="right")
    axis.set_ylim(0, 1)
    axis.set_ylabel("held-out ROC AUC")
    axis.set_title("Spatial cross-validation")
    axis.legend(loc="lower right", fontsize=8)
    return png_bytes(figure)


def html_section(result: CvResult, png: bytes | None = None) -> str:
    """An HTML section: what was done, the summary table and the chart, for the study report."""
    s = result.settings
    counts = ", ".join(f"fold {c['fold']}: {c['deposits']} deposit(s)" for c in result.fold_counts)
    head = ("<tr><th>model</th><th>spatial-CV ROC AUC (mean ± std)</th><th>per fold</th>"
            + "".join(f"<th>capture top {round(100 * v)} %</th>" for v in CAPTURE_SHARES)
            + "<th>deposit-vs-area AUC</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(row['model'])}</td><td>{row['auc_mean']:.3f} ± {row['auc_std']:.3f}</td>"
        f"<td>{' / '.join(_number(v, 2) for v in row['auc_per_fold'])}</td>"
        + "".join(f"<td>{v:.2f}</td>" for v in row["capture"].values())
        + f"<td>{row['area_auc']:.3f}</td></tr>" for row in result.summary())
    screened = [f"fold {fold}: {len(bands)} band(s)" for fold, bands in result.fold_bands.items()]
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in [
        *result.notes, *([f"Bands selected by screening on the training folds — {', '.join(screened)}."]
                         if screened else [])])
    figure = html_figure(png, "Held-out ROC AUC per fold and model") if png else ""
    return (f"<section><h2>Spatial cross-validation</h2><p>{len(result.fold_counts)} spatial folds "
            f"({html.escape(s.fold_method)}; {html.escape(counts)}), {s.repeats} negative draw(s), gap "
            f"{s.gap:g} map units between training and held-out cells. Every model was trained without the fold "
            "it is scored on, on the same folds, cells and draws; capture and deposit-vs-area AUC score each "
            "deposit on the map of the model that did not see it.</p>"
            f"<table>{head}{body}</table>{figure}{f'<ul>{notes}</ul>' if notes else ''}</section>")


def write_cv_outputs(result: CvResult, grid: GridSpec, table: str | None, out_of_fold: str | None = None,
                     chart: str | None = None, report: str | None = None) -> list[dict]:
    """Write whichever outputs have a path; returns the per-model summary."""
    for path in (table, out_of_fold, chart, report):
        if path:
            check_writable(path)
    summary = result.summary()
    png = chart_png(result) if chart or report else None
    if table:
        with atomic_path(table) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            writer.writerows(table_rows(result))
    if out_of_fold:
        tag = json.dumps({"summary": summary, "settings": dataclasses.asdict(result.settings)})
        write_geotiff(out_of_fold, np.stack([result.out_of_fold[n] for n in result.names]), grid, result.names,
                      metadata={CV_TAG: tag})
    for path, content in ((chart, png), (report, html_section(result, png).encode("utf-8"))):
        if path:
            with atomic_path(path) as temporary, open(temporary, "wb") as handle:
                handle.write(content)
    return summary


def _number(value: float, digits: int = 4) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def read_cv_summary(path: str) -> list[dict]:
    """The per-model summary rows ('all') of a score table written by :func:`write_cv_outputs`."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"Could not read the spatial cross-validation table {path}: {error}") from error
    if not rows or set(CSV_HEADER) - set(rows[0]):
        raise InputError(f"{path} is not a score table of 'Spatial cross-validation' (columns "
                         f"{', '.join(CSV_HEADER)}).")
    folds = sum(1 for row in rows if row["model"] == rows[0]["model"] and row["fold"] != "all")
    summary = []
    for row in rows:
        if row["fold"] == "all":
            summary.append({"model": row["model"], "folds": folds, "deposits": int(row["deposits"] or 0),
                            "auc_mean": _float(row["auc"]), "auc_std": _float(row["auc_std"]),
                            "capture": {f"top_{round(100 * v)}": _float(row[f"capture_top_{round(100 * v)}"])
                                        for v in CAPTURE_SHARES},
                            "area_auc": _float(row["deposit_area_auc"])})
    return summary


def _float(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan
