#!/usr/bin/env bash
# The main job on the bundled demo survey, headless through qgis_process: the graphical model
# resources/models/full_pipeline.model3 runs the whole study, from sample points, faults and deposits to the
# ensemble prospectivity map, its evaluation, anomaly classes, targets and one HTML report.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (DEMO_EPOCHS=n trains n epochs per network, default 40;
#        DEMO_CV_REPEATS=n negative draws in the spatial cross-validation, default 2)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mkdir -p "${1:-demo_output}" && cd "${1:-demo_output}" && pwd)
survey="$root/resources/demo/demo_survey.gpkg"
python=$root/.venv/bin/python
[ -x "$python" ] || python=python3

# every numeric field of the sample layer is an element
mapfile -t elements < <("$python" - "$survey" <<'PY'
import sys
from osgeo import ogr
source = ogr.Open(sys.argv[1])  # keep the datasource alive while its layer is used
layer = source.GetLayerByName("samples")
definition = layer.GetLayerDefn()
for i in range(definition.GetFieldCount()):
    field = definition.GetFieldDefn(i)
    if field.GetType() in (ogr.OFTReal, ogr.OFTInteger, ogr.OFTInteger64):
        print(field.GetName())
PY
)
[ ${#elements[@]} -gt 0 ] || { echo "No numeric fields found in $survey (layer samples)." >&2; exit 1; }
elements_list=$(IFS=';'; echo "${elements[*]}")

echo "Full prospectivity pipeline on the demo survey (${#elements[@]} elements: ${elements[*]})..."
start=$(date +%s)
"$root/scripts/qgis_process.sh" run "$root/resources/models/full_pipeline.model3" -- \
  "samples=$survey|layername=samples" "elements=$elements_list" "faults=$survey|layername=faults" \
  "deposits=$survey|layername=deposits" "barren=$survey|layername=barren_holes" pixel_size=100 \
  buffer_distance=1000 negative_ratio=8 exclusion_buffer=1000 validation_fraction=0.15 test_fraction=0.15 \
  seed=42 epochs="${DEMO_EPOCHS:-40}" cv_folds=5 cv_repeats="${DEMO_CV_REPEATS:-2}" min_target_area=0.1 \
  "stack:evidence_stack=$out/evidence_stack.tif" "screening:screening_table=$out/screening.csv" \
  "screening:selected_stack=$out/selected_evidence.tif" "screening:screening_chart=$out/screening.png" \
  "labels:training_set=$out/training_set.npz" "labels:training_samples=$out/training_samples.gpkg" \
  "spatialcv:cv_scores=$out/spatial_cv.csv" "spatialcv:cv_chart=$out/spatial_cv.png" \
  "spatialcv:cv_out_of_fold=$out/spatial_cv_out_of_fold.tif" \
  $(for m in 1 2 3 4 5; do printf '%s ' "train_mlp$m:mlp${m}_model=$out/mlp$m.onnx" \
      "train_mlp$m:mlp${m}_curves=$out/mlp${m}_curves.png" "predict_mlp$m:mlp${m}_map=$out/prospectivity_mlp$m.tif"; \
    done) \
  "baseline:baseline_map=$out/prospectivity_random_forest.tif" \
  "baseline:baseline_importance=$out/random_forest_importance.csv" \
  "ensemble:ensemble_map=$out/ensemble.tif" "ensemble:ensemble_uncertainty=$out/uncertainty.tif" \
  "evaluate:evaluation_metrics=$out/evaluation.csv" "evaluate:evaluation_report=$out/evaluation.html" \
  "evaluate:roc_plot=$out/roc.png" "evaluate:rate_plot=$out/rate_curves.png" "evaluate:pa_plot=$out/pa_plot.png" \
  "anomaly:anomaly_classes=$out/anomaly_classes.tif" "anomaly:class_table=$out/anomaly_classes.csv" \
  "anomaly:targets=$out/targets.gpkg" "report:report=$out/report.html" \
  >"$out/pipeline.log" 2>&1 || { cat "$out/pipeline.log"; exit 1; }
echo "Done in $(( $(date +%s) - start )) s. Outputs in $out:"
echo "  report.html             the study report: maps, models compared, curves, classes, targets, provenance"
echo "  evidence_stack.tif      element grids (log10, z-scored) + fault buffer-distance density and distance"
echo "  screening.csv/.png      Z_AUC of every band; selected_evidence.tif keeps the significant ones"
echo "  training_set.npz        element-vector samples with a spatial split; training_samples.gpkg shows them"
echo "  spatial_cv.csv/.png     spatial cross-validation of the MLP seed ensemble, random forest and logistic regression"
echo "  mlp*.onnx, *_curves.png the five MLP seed members' model files and training curves"
echo "  prospectivity_*.tif     each member's map and the random-forest baseline"
echo "  ensemble.tif            the members' average; uncertainty.tif their standard deviation"
echo "  evaluation.*, *.png     ROC, success/prediction-rate and P-A against the held-out (test) deposits"
echo "  anomaly_classes.*       top 5 / 15 / 30 % of the area; targets.gpkg ranked target zones"
echo "  pipeline.log            the full log"
echo "Open the report: $out/report.html"
