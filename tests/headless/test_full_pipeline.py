"""The graphical model resources/models/full_pipeline.model3 runs end to end headless, on a coarse demo grid.

Every algorithm of the plugin runs in it (gridding to report), chained by the modeler, so this also proves each
parameter is modeler-friendly and each output feeds the next step.
"""

import csv

import numpy as np
import rasterio
from deepprospect.core.raster_io import read_raster
from deepprospect.models.onnx_io import read_card
from osgeo import ogr

OUTPUTS = {
    "stack:evidence_stack": "stack.tif", "screening:screening_table": "screening.csv",
    "screening:selected_stack": "selected.tif", "screening:screening_chart": "screening.png",
    "baseline:baseline_importance": "forest.csv", "labels:training_set": "training.npz",
    "labels:training_samples": "samples.gpkg",
    "train_lenet:lenet_model": "lenet.onnx", "train_vgg8:vgg8_model": "vgg8.onnx",
    "train_cnn1d:cnn1d_model": "cnn1d.onnx", "predict_lenet:lenet_map": "lenet.tif",
    "predict_vgg8:vgg8_map": "vgg8.tif", "predict_cnn1d:cnn1d_map": "cnn1d.tif",
    "baseline:baseline_map": "forest.tif", "ensemble:ensemble_map": "ensemble.tif",
    "ensemble:ensemble_uncertainty": "uncertainty.tif", "evaluate:evaluation_metrics": "evaluation.csv",
    "evaluate:evaluation_report": "evaluation.html", "anomaly:anomaly_classes": "classes.tif",
    "anomaly:class_table": "classes.csv", "anomaly:targets": "targets.gpkg", "report:report": "report.html",
}


def test_full_pipeline_on_a_coarse_demo_grid(qgis_process, repo_root, tmp_path):
    survey = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    model = repo_root / "resources" / "models" / "full_pipeline.model3"
    done = qgis_process(
        "run", str(model), "--",
        f"samples={survey}|layername=samples", "elements=Au;As;Cu;Sb;Ni;Pb;K",
        f"faults={survey}|layername=faults", f"deposits={survey}|layername=deposits",
        f"barren={survey}|layername=barren_holes", "pixel_size=125", "buffer_distance=1000", "patch_size=16",
        "seed=42", "epochs=2", "min_target_area=0",
        *[f"{key}={tmp_path / name}" for key, name in OUTPUTS.items()])
    assert done.returncode == 0, done.stdout + done.stderr
    for name in OUTPUTS.values():
        assert (tmp_path / name).exists(), name

    assert {read_card(str(tmp_path / f"{n}.onnx"))["architecture"] for n in ("lenet", "vgg8", "cnn1d")} == {
        "lenet", "vgg8", "cnn1d"}
    members = [read_raster(str(tmp_path / f"{n}.tif"))[0][0] for n in ("lenet", "vgg8", "cnn1d")]
    ensemble, grid, _ = read_raster(str(tmp_path / "ensemble.tif"))
    valid = np.isfinite(ensemble[0])
    assert grid.cols == 160 and valid.sum() > 1000
    np.testing.assert_allclose(ensemble[0][valid], np.mean(members, axis=0)[valid], atol=1e-6)
    uncertainty = read_raster(str(tmp_path / "uncertainty.tif"))[0][0]
    np.testing.assert_allclose(uncertainty[valid], np.std(members, axis=0)[valid], atol=1e-6)
    with rasterio.open(tmp_path / "classes.tif") as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 2, 3, 255}
    with open(tmp_path / "evaluation.csv", newline="") as table:
        metrics = {(row["deposits"], row["metric"]) for row in csv.DictReader(table)}
    assert ("held-out", "roc_auc") in metrics and ("training", "success_rate_auc") in metrics
    dataset = ogr.Open(str(tmp_path / "targets.gpkg"))  # keep the dataset alive while its layer is used
    assert dataset.GetLayer(0).GetFeatureCount() >= 1
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    for fragment in ("kept out of training): ROC AUC", "lenet (lenet.onnx)", "vgg8 (vgg8.onnx)", "cnn1d (cnn1d.onnx)",
                     "random_forest", "Anomaly classes", "Training curves", "data:image/png;base64"):
        assert fragment in report
