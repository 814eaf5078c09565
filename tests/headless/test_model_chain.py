"""The graphical model resources/models/evidence_to_training.model3 runs headless through qgis_process.

It chains idwgridding → bufferdensity (density and distance) → evidencestack → elementscreening →
traininglabels, which proves every parameter of those algorithms is modeler-friendly.
"""

import csv

import numpy as np
from deepprospect.core.raster_io import read_band_names
from deepprospect.core.sampling.labels import load_training_set


def test_evidence_to_training_model_runs_on_the_demo_survey(qgis_process, repo_root, tmp_path):
    survey = repo_root / "resources" / "demo" / "demo_survey.gpkg"
    model = repo_root / "resources" / "models" / "evidence_to_training.model3"
    outputs = {
        "stack:evidence_stack": tmp_path / "stack.tif",
        "screening:screening_table": tmp_path / "screening.csv",
        "screening:selected_stack": tmp_path / "selected.tif",
        "screening:screening_chart": tmp_path / "screening.png",
        "labels:training_set": tmp_path / "training.npz",
        "labels:training_samples": tmp_path / "samples.gpkg",
    }
    done = qgis_process(
        "run", str(model), "--",
        f"samples={survey}|layername=samples", "elements=Au;As;Cu;Sb;Ni;Pb;K",
        f"faults={survey}|layername=faults", f"deposits={survey}|layername=deposits",
        f"barren={survey}|layername=barren_holes", "pixel_size=100", "buffer_distance=1000", "patch_size=16",
        "seed=42", *[f"{key}={path}" for key, path in outputs.items()])
    assert done.returncode == 0, done.stdout + done.stderr
    for path in outputs.values():
        assert path.exists(), path

    stack_bands = read_band_names(str(outputs["stack:evidence_stack"]))
    assert stack_bands == ["Au", "As", "Cu", "Sb", "Ni", "Pb", "K", "faults_bufferdensity", "faults_distance"]
    with open(outputs["screening:screening_table"], newline="") as table:
        selected = {row["band"] for row in csv.DictReader(table) if row["selected"].lower() in ("true", "1")}
    assert {"Au", "As"} <= selected and not {"Ni", "K"} & selected  # halo elements in, background out

    training = load_training_set(str(outputs["labels:training_set"]))
    assert training.manifest["band_names"] == read_band_names(str(outputs["screening:selected_stack"]))
    assert set(training.manifest["band_names"]) == selected
    assert training.x_patch.shape[1:] == (len(selected), 16, 16)
    assert set(np.unique(training.split)) == {"train", "validation", "test"}
    assert set(np.unique(training.y)) == {0, 1}
