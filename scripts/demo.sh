#!/usr/bin/env bash
# The main job on the bundled demo survey, headless through qgis_process: the graphical model
# resources/models/evidence_to_training.model3 grids every element, maps fault density and distance, stacks
# and screens the evidence against the deposits, and makes a training set. Usage: scripts/demo.sh [OUTPUT_DIR]
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

echo "Evidence layers to training samples on the demo survey (${#elements[@]} elements: ${elements[*]})..."
start=$(date +%s)
"$root/scripts/qgis_process.sh" run "$root/resources/models/evidence_to_training.model3" -- \
  "samples=$survey|layername=samples" "elements=$elements_list" "faults=$survey|layername=faults" \
  "deposits=$survey|layername=deposits" "barren=$survey|layername=barren_holes" pixel_size=50 \
  buffer_distance=1000 patch_size=16 seed=42 \
  "stack:evidence_stack=$out/evidence_stack.tif" "screening:screening_table=$out/screening.csv" \
  "screening:selected_stack=$out/selected_evidence.tif" "screening:screening_chart=$out/screening.png" \
  "labels:training_set=$out/training_set.npz" "labels:training_samples=$out/training_samples.gpkg" \
  >"$out/pipeline.log" 2>&1 || { cat "$out/pipeline.log"; exit 1; }
echo "Done in $(( $(date +%s) - start )) s. Outputs in $out:"
echo "  evidence_stack.tif      element grids (log10, z-scored) + fault buffer-distance density and distance"
echo "  screening.csv/.png      Z_AUC of every band against the deposits; selected_evidence.tif keeps the significant ones"
echo "  training_set.npz        training windows with a spatial split; training_samples.gpkg shows them in QGIS"
echo "  pipeline.log            the full log"
