"""The graphical model resources/models/full_pipeline.model3 runs end to end headless: on a coarse demo grid with
every output, and on the real Kolari data with its default settings.

Every algorithm of the plugin runs in it (gridding to report), chained by the modeler, so this also proves each
parameter is modeler-friendly and each output feeds the next step.
"""

import csv
import json

import numpy as np
import rasterio
from deepprospect.core.raster_io import read_raster
from deepprospect.core.sampling.labels import read_training_manifest
from deepprospect.models.onnx_io import read_card
from osgeo import ogr

MEMBERS = range(1, 6)
OUTPUTS = {
    "stack:evidence_stack": "stack.tif", "screening:screening_table": "screening.csv",
    "screening:selected_stack": "selected.tif", "screening:screening_chart": "screening.png",
    "baseline:baseline_importance": "forest.csv", "labels:training_set": "training.npz",
    "labels:training_samples": "samples.gpkg", "spatialcv:cv_scores": "cv.csv", "spatialcv:cv_chart": "cv.png",
    "spatialcv:cv_out_of_fold": "cv_oof.tif",
    **{f"train_mlp{m}:mlp{m}_model": f"mlp{m}.onnx" for m in MEMBERS},
    **{f"train_mlp{m}:mlp{m}_curves": f"mlp{m}.png" for m in MEMBERS},
    **{f"predict_mlp{m}:mlp{m}_map": f"mlp{m}.tif" for m in MEMBERS},
    "baseline:baseline_map": "forest.tif", "ensemble:ensemble_map": "ensemble.tif",
    "ensemble:ensemble_uncertainty": "uncertainty.tif", "evaluate:evaluation_metrics": "evaluation.csv",
    "evaluate:evaluation_report": "evaluation.html", "evaluate:roc_plot": "roc.png",
    "evaluate:rate_plot": "rate.png", "evaluate:pa_plot": "pa.png", "anomaly:anomaly_classes": "classes.tif",
    "anomaly:class_table": "classes.csv", "anomaly:targets": "targets.gpkg", "report:report": "report.html",
}
KOLARI_ELEMENTS = "Al;Ba;Ca;Co;Cr;Cu;Fe;K;La;Li;Mg;Mn;Ni;P;Sc;Sr;Th;Ti;V;Y;Zn;Zr"


def sample_deposits(path, split=None):
    """Deposit cells of a training-sample layer (optionally of one split)."""
    dataset = ogr.Open(str(path))  # keep the dataset alive while its layer is used
    layer = dataset.GetLayer(0)
    return sum(1 for f in layer if f.GetField("kind") == "deposit" and split in (None, f.GetField("split")))


def test_full_pipeline_on_a_coarse_demo_grid(qgis_process, repo_root, tmp_path):
    survey = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    model = repo_root / "resources" / "models" / "full_pipeline.model3"
    done = qgis_process(
        "run", str(model), "--",
        f"samples={survey}|layername=samples", "elements=Au;As;Cu;Sb;Ni;Pb;K",
        f"faults={survey}|layername=faults", f"deposits={survey}|layername=deposits",
        f"barren={survey}|layername=barren_holes", "pixel_size=125", "buffer_distance=1000", "exclusion_buffer=500",
        "seed=42", "epochs=3", "cv_folds=3", "cv_repeats=1", "min_target_area=0",
        *[f"{key}={tmp_path / name}" for key, name in OUTPUTS.items()])
    assert done.returncode == 0, done.stdout + done.stderr
    for name in OUTPUTS.values():
        assert (tmp_path / name).exists(), name

    assert {read_card(str(tmp_path / f"mlp{m}.onnx"))["seed"] for m in MEMBERS} == {42, 43, 44, 45, 46}
    members = [read_raster(str(tmp_path / f"mlp{m}.tif"))[0][0] for m in MEMBERS]
    ensemble, grid, _ = read_raster(str(tmp_path / "ensemble.tif"))
    valid = np.isfinite(ensemble[0])
    assert grid.cols == 160 and valid.all()  # element vectors: no margin, no hole
    np.testing.assert_allclose(ensemble[0][valid], np.mean(members, axis=0)[valid], atol=1e-6)
    uncertainty = read_raster(str(tmp_path / "uncertainty.tif"))[0][0]
    np.testing.assert_allclose(uncertainty[valid], np.std(members, axis=0)[valid], atol=1e-6)
    # screening saw only the training split's deposits
    with open(tmp_path / "screening.csv", newline="") as table:
        screened = {int(row["n_deposit"]) for row in csv.DictReader(table)}
    assert screened == {sample_deposits(tmp_path / "samples.gpkg", "train")}
    assert sample_deposits(tmp_path / "samples.gpkg") > next(iter(screened))
    with open(tmp_path / "cv.csv", newline="") as table:
        summary = {row["model"]: row for row in csv.DictReader(table) if row["fold"] == "all"}
    assert set(summary) == {"mlp_ensemble", "random_forest", "logistic_regression"}
    with rasterio.open(tmp_path / "classes.tif") as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 2, 3, 255}
    with open(tmp_path / "evaluation.csv", newline="") as table:
        metrics = {(row["deposits"], row["metric"]) for row in csv.DictReader(table)}
    assert ("held-out", "roc_auc") in metrics and ("training", "success_rate_auc") in metrics
    dataset = ogr.Open(str(tmp_path / "targets.gpkg"))
    assert dataset.GetLayer(0).GetFeatureCount() >= 1
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<p class="lead"><b>Spatial cross-validation</b> (3 folds' in report
    for fragment in ("kept out of training): ROC AUC", "mlp (mlp1.onnx)", "mlp (mlp5.onnx)", "random_forest",
                     "Anomaly classes", "Training curves", "data:image/png;base64"):
        assert fragment in report


def test_full_pipeline_runs_on_kolari_with_its_defaults(qgis_process, repo_root, tmp_path):
    """17 clustered occurrences: the split falls back instead of failing, and every study-area cell is mapped."""
    kolari = repo_root / "tests" / "data" / "kolari_iocg" / "kolari_iocg.gpkg"
    model = repo_root / "resources" / "models" / "full_pipeline.model3"
    elements = ";".join(f"{e}_ppm_511P" if e in ("K", "P", "V", "Y") else f"{e}_ppm_511"
                        for e in KOLARI_ELEMENTS.split(";"))
    done = qgis_process(
        "run", str(model), "--",
        f"samples={kolari}|layername=till_samples", f"elements={elements}",
        f"faults={kolari}|layername=faults_1M", f"deposits={kolari}|layername=iocg_occurrences",
        f"study_area={kolari}|layername=study_area", "pixel_size=500",
        *[f"{key}={tmp_path / name}" for key, name in OUTPUTS.items()], timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    split = read_training_manifest(str(tmp_path / "training.npz"))["split"]
    assert sample_deposits(tmp_path / "samples.gpkg") == 17
    with rasterio.open(tmp_path / "stack.tif") as src:
        inside = src.read_masks(1) > 0
    ensemble = read_raster(str(tmp_path / "ensemble.tif"))[0][0]
    assert np.isfinite(ensemble[inside]).all() and np.isnan(ensemble[~inside]).all()
    # the study area's cells: the reference protocol counts 18,437 on a grid anchored at the area's corner; the
    # pipeline's default grid is padded by half a cell, so its cell centres sit elsewhere
    assert abs(int(inside.sum()) - 18437) < 50
    with open(tmp_path / "cv.csv", newline="") as table:
        rows = [row for row in csv.DictReader(table) if row["fold"] == "all"]
    assert [int(row["deposits"]) for row in rows] == [17, 17, 17]
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<p class="lead"><b>Spatial cross-validation</b> (5 folds' in report
    card = read_card(str(tmp_path / "mlp1.onnx"))
    assert card["extra"]["early_stopping_used"].startswith("off")
    assert json.dumps(split)  # the split (and any fallback) is recorded in the training set
