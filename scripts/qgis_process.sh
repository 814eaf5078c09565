#!/usr/bin/env bash
# Run qgis_process with the DeepProspect plugin loaded, in a throwaway QGIS profile.
#
#   scripts/qgis_process.sh list
#   scripts/qgis_process.sh help deepprospect:idwgridding
#   scripts/qgis_process.sh run deepprospect:idwgridding -- INPUT=points.gpkg FIELDS=Cu PIXEL_SIZE=100 OUTPUT=cu.tif
#
# The plugin's Python packages are taken from the project's .venv when it exists (make demo / make test
# create it), because QGIS's embedded Python does not see an activated virtual environment.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/deepprospect-qgis.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/plugins" "$work/profile/profiles/default/QGIS"
ln -s "$root" "$work/plugins/deepprospect"   # the plugin folder name must be a Python identifier
printf '[PythonPlugins]\ndeepprospect=true\nprocessing=true\n' > "$work/profile/profiles/default/QGIS/QGIS3.ini"

site=$(ls -d "$root"/.venv/lib/python3*/site-packages 2>/dev/null | head -n 1 || true)
export QGIS_PLUGINPATH="$work/plugins" QGIS_CUSTOM_CONFIG_PATH="$work/profile" QT_QPA_PLATFORM=offscreen
[ -n "$site" ] && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

# Debian's /usr/bin/qgis_process wrapper passes --noversioncheck, which qgis_process.bin 3.22 rejects:
# call the real binary when it is there.
if command -v qgis_process.bin >/dev/null 2>&1; then
  bin=qgis_process.bin
elif command -v qgis_process >/dev/null 2>&1; then
  bin=qgis_process
else
  echo "qgis_process not found: install QGIS 3.22 or newer (Debian/Ubuntu: apt-get install qgis python3-qgis)." >&2
  exit 127
fi
"$bin" "$@"
