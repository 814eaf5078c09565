#!/usr/bin/env bash
# The main job on the bundled demo survey, headless through qgis_process: grid every element of the
# sample points into one multi-band GeoTIFF. Usage: scripts/demo.sh [OUTPUT_DIR]
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
fields=()
for element in "${elements[@]}"; do fields+=("FIELDS=$element"); done

echo "Gridding ${#elements[@]} elements (${elements[*]}) of the demo survey..."
start=$(date +%s)
"$root/scripts/qgis_process.sh" run deepprospect:idwgridding -- \
  "INPUT=$survey|layername=samples" "${fields[@]}" POWER=2 MAX_POINTS=12 MIN_POINTS=3 RADIUS=3000 \
  PIXEL_SIZE=50 LOG10=true "OUTPUT=$out/element_grids.tif" >"$out/idwgridding.log" 2>&1 \
  || { cat "$out/idwgridding.log"; exit 1; }
echo "Done in $(( $(date +%s) - start )) s."
echo "Element grids (one band per element, log10 of the concentration): $out/element_grids.tif"
echo "Log: $out/idwgridding.log"
