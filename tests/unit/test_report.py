"""The study report: every map scored on the same deposits, figures embedded, classes, targets, provenance."""

import json
import re

import numpy as np
import pytest
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping import anomaly
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.scoring.evaluation import HELD_OUT, evaluate_map
from deepprospect.core.scoring.report import ReportInputs, training_curves_png, write_report

GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 60, 50, "EPSG:32750")
DEPOSITS_RC = np.array([[10, 10], [12, 40], [40, 20], [45, 45], [30, 30]])


def xy(rc):
    return np.column_stack([GRID.x_min + (rc[:, 1] + 0.5) * 100.0, GRID.y_max - (rc[:, 0] + 0.5) * 100.0])


def bump_map(sharpness: float, seed: int) -> np.ndarray:
    rows, cols = np.mgrid[: GRID.rows, : GRID.cols]
    values = np.zeros(GRID.shape)
    for r, c in DEPOSITS_RC:
        values = np.maximum(values, np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / sharpness))
    return np.clip(values + np.random.default_rng(seed).uniform(0, 0.2, GRID.shape), 0, 1)


def card(architecture: str, auc: float) -> dict:
    return {"architecture": architecture, "model_file": f"{architecture}.onnx", "band_names": ["Au", "As"],
            "patch_size": 16, "metrics": {"validation": {"accuracy": 0.9, "recall": 0.8, "f1": 0.85, "auc": auc}},
            "history": {"epoch": [1, 2, 3], "loss": [0.7, 0.5, 0.4], "val_loss": [0.6, 0.5, 0.55],
                        "val_auc": [0.7, 0.9, 0.88]},
            "extra": {"best_epoch": 2, "device": "cpu", "settings": {"epochs": 3, "optimiser": "adam"}},
            "seed": 42, "data_hash": "sha256:abc", "versions": {"torch": "2.13.0"}, "created": "2026-01-01T00:00:00"}


@pytest.fixture
def study(tmp_path):
    members = []
    for index, (architecture, sharpness) in enumerate((("lenet", 30.0), ("vgg8", 12.0))):
        path = str(tmp_path / f"{architecture}.tif")
        tags = {"DEEPPROSPECT_MODEL_CARD": json.dumps(card(architecture, 0.9 - 0.05 * index))}
        write_geotiff(path, bump_map(sharpness, index)[None], GRID, ["prospectivity"], metadata=tags)
        members.append(path)
    ensemble = str(tmp_path / "ensemble.tif")
    values = (bump_map(30.0, 0) + bump_map(12.0, 1)) / 2
    values[:3, :3] = np.nan
    write_geotiff(ensemble, values[None], GRID, ["prospectivity"],
                  metadata={"DEEPPROSPECT_ENSEMBLE": json.dumps({"method": "average", "members": members})})
    uncertainty = str(tmp_path / "uncertainty.tif")
    write_geotiff(uncertainty, np.abs(bump_map(30.0, 0) - bump_map(12.0, 1))[None] / 2, GRID, ["std"])
    inputs = ReportInputs(ensemble_path=ensemble, training_xy=xy(DEPOSITS_RC[:3]), held_out_xy=xy(DEPOSITS_RC[3:]),
                          uncertainty_path=uncertainty, member_paths=members,
                          cards=[card("lenet", 0.9), card("vgg8", 0.85)],
                          training_manifest={"patch_size": 16, "seed": 42, "counts": {"train": {"positive": 27}}},
                          min_target_area_km2=0.01, parameters=[("pixel size", "100 m")], title="Test study")
    return inputs, values


def test_report_scores_every_map_and_embeds_the_figures(study, tmp_path):
    inputs, values = study
    path = tmp_path / "report.html"
    summary = write_report(str(path), inputs)
    text = path.read_text(encoding="utf-8")
    expected = evaluate_map(values, GRID, inputs.training_xy, inputs.held_out_xy)
    held_out = next(s for s in expected.sets if s.name == HELD_OUT)
    assert summary.held_out_auc == pytest.approx(held_out.roc.auc)
    assert summary.prediction_rate_auc == pytest.approx(held_out.rate.auc)
    classes = anomaly.classify(values, GRID, deposit_xy=np.concatenate([inputs.training_xy, inputs.held_out_xy]))
    assert summary.top_class_deposit_pct == pytest.approx(classes.table[0].deposit_pct)
    assert summary.targets >= 1
    assert any("scored on the 2991 cells where all of them have a value" in note for note in summary.notes)
    # maps, members, ROC, rate, P-A and one training-curve figure per card
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2 + 3 + 2
    for fragment in ("Test study", "ensemble (average)", "lenet (lenet.onnx)", "vgg8 (vgg8.onnx)", "top 5 %",
                     "Targets", "sha256:abc", "pixel size", "100 m", "patch_size"):
        assert fragment in text
    assert text.count("<tr>") > 10
    assert "Held-out deposits (2, kept out of training)" in text and "these figures are rough" in text


def test_report_shows_precision_macro_scores_and_confusion_matrices(study, tmp_path):
    inputs, values = study
    new = card("lenet", 0.9)
    new["metrics"]["validation"].update(precision=0.61, macro_precision=0.71, macro_recall=0.81, macro_f1=0.76,
                                        confusion_matrix=[[40, 3], [2, 9]])
    inputs.cards = [new, card("vgg8", 0.85)]  # the second: a card written before these metrics, shown as —
    path = tmp_path / "report.html"
    write_report(str(path), inputs)
    text = path.read_text(encoding="utf-8")
    for fragment in ("macro F1", "0.610", "0.710", "0.810", "0.760", "<td>40</td><td>3</td><td>2</td><td>9</td>",
                     "<td>—</td><td>—</td><td>—</td><td>—</td></tr>"):
        assert fragment in text
    expected = evaluate_map(values, GRID, inputs.training_xy, inputs.held_out_xy, threshold=inputs.threshold)
    for result in expected.sets:
        (tn, fp), (fn, tp) = result.confusion_matrix
        assert f"TN {tn}</td><td>FP {fp}" in text and f"FN {fn}</td><td>TP {tp}" in text
        assert f"<td>{result.macro_f1:.3f}</td>" in text


def test_without_held_out_deposits_the_report_says_so(study, tmp_path):
    inputs, _ = study
    path = tmp_path / "report.html"
    write_report(str(path), ReportInputs(**{**vars(inputs), "held_out_xy": None}))
    assert "No held-out deposit lies on the map" in path.read_text(encoding="utf-8")


def test_training_curves_png():
    png = training_curves_png(card("lenet", 0.9)["history"], 2, "lenet")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_members_on_another_grid_are_refused_and_nothing_is_written(study, tmp_path):
    inputs, _ = study
    other = str(tmp_path / "other.tif")
    write_geotiff(other, np.random.default_rng(0).random((1, 20, 20)), GridSpec(0, 2000, 100, 100, 20, 20,
                                                                                 "EPSG:32750"), ["p"])
    shifted = str(tmp_path / "shifted.tif")  # half a cell north: a relative tolerance would let it pass
    write_geotiff(shifted, np.zeros((1, GRID.rows, GRID.cols)), GridSpec(GRID.x_min, GRID.y_max + 50.0, 100.0, 100.0,
                                                                          GRID.cols, GRID.rows, GRID.crs), ["p"])
    for bad, message in ((other, "has 20 × 20 cells"), (shifted, "not on the grid")):
        with pytest.raises(InputError, match=message):
            write_report(str(tmp_path / "report.html"), ReportInputs(**{**vars(inputs), "uncertainty_path": bad}))
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(InputError, match="only 3 classes"):
        write_report(str(tmp_path / "report.html"), ReportInputs(**{**vars(inputs), "target_classes": 4}))


def test_cancel_leaves_no_report(study, tmp_path):
    inputs, _ = study
    with pytest.raises(Cancelled):
        write_report(str(tmp_path / "report.html"), inputs, is_cancelled=lambda: True)
    assert not (tmp_path / "report.html").exists()


def test_spatial_cross_validation_leads_the_report(study, tmp_path):
    """The score table of spatial cross-validation, read back, heads the report and gets its own section."""
    from deepprospect.core.scoring.cv_report import read_cv_summary, write_cv_outputs
    from deepprospect.core.scoring.spatialcv import CvSettings, baseline_fit_map, run_spatial_cv

    inputs, _ = study
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(2, *GRID.shape)).astype(np.float32)
    stack[0, DEPOSITS_RC[:, 0], DEPOSITS_RC[:, 1]] += 3
    result = run_spatial_cv(stack, GRID, xy(DEPOSITS_RC), {"logistic_regression": baseline_fit_map(
        "logistic_regression")}, CvSettings(n_folds=2, gap=200.0, exclusion_buffer=300.0, repeats=1))
    table = str(tmp_path / "cv.csv")
    written = write_cv_outputs(result, GRID, table)
    rows = read_cv_summary(table)
    assert [r["model"] for r in rows] == ["logistic_regression"] and rows[0]["folds"] == 2
    assert rows[0]["auc_mean"] == pytest.approx(written[0]["auc_mean"], abs=1e-4)
    path = tmp_path / "report.html"
    write_report(str(path), ReportInputs(**{**vars(inputs), "spatial_cv": rows}))
    text = path.read_text(encoding="utf-8")
    lead = re.search(r'<p class="lead">(.*?)</p>', text, re.S).group(1)
    assert lead.startswith("<b>Spatial cross-validation</b> (2 folds")
    assert "<h2>Spatial cross-validation</h2>" in text
    assert "training-time split, not held out" in text
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a score table"):
        read_cv_summary(str(tmp_path / "bad.csv"))


def test_map_figures_are_drawn_from_decimated_reads_and_the_numbers_do_not_change(study, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    inputs, values = study
    full = write_report(str(tmp_path / "full.html"), inputs)
    drawn = []
    imshow = Axes.imshow
    monkeypatch.setattr(Axes, "imshow", lambda axes, image, **kw: drawn.append(np.asarray(image)) or imshow(
        axes, image, **kw))
    monkeypatch.setattr("deepprospect.core.scoring.report.PREVIEW_SIDE", 12)
    small = write_report(str(tmp_path / "small.html"), inputs)
    assert [image.shape for image in drawn] == [(10, 12)] * 5  # ensemble, classes, uncertainty, two members
    assert np.isin(drawn[0][np.isfinite(drawn[0])], values.astype(np.float32)).all()  # cells' own values
    assert (small.held_out_auc, small.prediction_rate_auc, small.top_class_deposit_pct, small.targets) == (
        full.held_out_auc, full.prediction_rate_auc, full.top_class_deposit_pct, full.targets)
