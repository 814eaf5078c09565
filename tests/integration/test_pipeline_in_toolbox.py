"""The full pipeline runs as a Toolbox algorithm of the provider (processing.run by its id), as a user runs it."""

from deepprospect.core.raster_io import read_raster
from layer_factory import RecordingFeedback
from qgis.core import QgsApplication, QgsVectorLayer

PIPELINE = "deepprospect:fullpipeline"


def test_full_pipeline_runs_from_the_provider(run_alg, repo_root, tmp_path):
    survey = str(repo_root / "resources" / "demo" / "demo_survey.gpkg")
    layers = {name: QgsVectorLayer(f"{survey}|layername={name}", name, "ogr")
              for name in ("samples", "faults", "deposits", "barren_holes")}
    outputs = {"report:report": tmp_path / "report.html", "ensemble:ensemble_map": tmp_path / "ensemble.tif",
               "anomaly:targets": tmp_path / "targets.gpkg"}
    model = QgsApplication.processingRegistry().algorithmById(PIPELINE)
    temporary = {p.name(): "TEMPORARY_OUTPUT" for p in model.destinationParameterDefinitions()}  # as the dialog does
    feedback = RecordingFeedback()
    result = run_alg(PIPELINE, {**temporary,
        "samples": layers["samples"], "elements": ["Au", "As", "Cu", "Sb", "Ni"], "faults": layers["faults"],
        "deposits": layers["deposits"], "barren": layers["barren_holes"], "pixel_size": 125.0,
        "buffer_distance": 1000.0, "exclusion_buffer": 500.0, "seed": 7, "epochs": 1, "cv_folds": 3,
        "cv_repeats": 1, "min_target_area": 0.0,
        **{key: str(path) for key, path in outputs.items()}}, feedback)
    assert result["report:report"] == str(outputs["report:report"])
    assert "kept out of training): ROC AUC" in outputs["report:report"].read_text(encoding="utf-8")
    _, grid, names = read_raster(str(outputs["ensemble:ensemble_map"]))
    assert names == ["prospectivity"] and grid.cols == 160
    assert "Device: auto" in feedback.text
