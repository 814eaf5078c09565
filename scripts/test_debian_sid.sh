#!/usr/bin/env bash
# Run the test suite against the newest QGIS that Debian ships (Debian unstable, "sid"), in a throwaway root file
# system made with debootstrap. Only Debian's package archive is needed for the system: QGIS, GDAL, numpy and the
# plugin's Python packages (torch, onnxruntime, rasterio, scikit-learn, ...) all come from Debian unstable; pip
# adds only pytest-qgis. So this run checks the plugin against the newest QGIS, Python, numpy and GDAL together.
#
#   sudo scripts/test_debian_sid.sh                 # make test-sid does the same
#   sudo scripts/test_debian_sid.sh tests/unit -x   # arguments go to pytest
#
# Settings (environment): DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (default sid),
# DEBIAN_ROOTFS=<folder> to reuse a root file system made by an earlier run (it is then kept, not removed).
#
# Exit status: pytest's; 75 when the root file system could not be prepared (no root, no network to the archive,
# mounts refused), so a caller can tell "not run here" from "tests failed".
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-sid}
packages=(qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv python3-pip git make ca-certificates
          python3-numpy python3-scipy python3-matplotlib python3-sklearn python3-rasterio python3-torch
          python3-onnx python3-onnxruntime python3-pytest python3-dask python3-distributed
          libopenblas0-pthread)  # without it torch and numpy fall back to the unoptimised reference BLAS
pytest_qgis="pytest-qgis==5.0.2"

unavailable() { echo "Debian $suite test run not possible here: $*" >&2; exit 75; }
[ "$(id -u)" = 0 ] || unavailable "it needs root (debootstrap, chroot and mount); run it with sudo."
if ! command -v debootstrap >/dev/null; then
  echo "Installing debootstrap from apt..."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
    || unavailable "debootstrap could not be installed."
fi

started=$SECONDS
phase() { printf '[sid %4ds] %s\n' $((SECONDS - started)) "$*"; }

if [ -n "${DEBIAN_ROOTFS:-}" ]; then
  fs=$DEBIAN_ROOTFS
  keep=1
else
  fs=$(mktemp -d "${TMPDIR:-/var/tmp}/deepprospect-sid.XXXXXX")
  keep=
fi
unmount_all() {
  for point in "$fs/dev/pts" "$fs/dev" "$fs/proc"; do
    mountpoint -q "$point" 2>/dev/null && umount -l "$point"
  done
  return 0
}
cleanup() {
  unmount_all
  [ -z "$keep" ] && rm -rf --one-file-system "$fs"
  return 0
}
trap cleanup EXIT

if [ ! -x "$fs/usr/bin/apt-get" ]; then
  phase "debootstrap $suite from $mirror into $fs"
  debootstrap --variant=minbase "$suite" "$fs" "$mirror" >"$fs.debootstrap.log" 2>&1 \
    || { tail -n 20 "$fs.debootstrap.log" >&2; rm -f "$fs.debootstrap.log"; unavailable "debootstrap failed."; }
  rm -f "$fs.debootstrap.log"
fi
{ mount -t proc proc "$fs/proc" && mount --bind /dev "$fs/dev" && mount --bind /dev/pts "$fs/dev/pts"; } \
  || unavailable "mounting /proc and /dev in the root was refused."
cp /etc/resolv.conf "$fs/etc/resolv.conf"
cp /etc/hosts "$fs/etc/hosts"  # torchrun resolves this machine's host name

in_root() { chroot "$fs" env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive QT_QPA_PLATFORM=offscreen "$@"; }

phase "apt-get install QGIS and the Python packages from $suite"
# Check-Valid-Until=false: a mirror frozen at a date (a snapshot) still serves a consistent unstable.
{ in_root apt-get -o Acquire::Check-Valid-Until=false update -qq \
  && in_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; } \
  || unavailable "apt-get could not install QGIS from $suite."
in_root dpkg-query -W -f '  ${Package} ${Version}\n' qgis python3 python3-numpy python3-gdal python3-torch \
  python3-onnxruntime python3-rasterio python3-sklearn

phase "copy the project (tracked and unignored files) and make its .venv (Debian's packages + $pytest_qgis)"
rm -rf "$fs/src" && mkdir -p "$fs/src/deepprospect"
(cd "$project" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$fs/src/deepprospect")
in_root git -C /src/deepprospect init -q && in_root git -C /src/deepprospect add -A  # make package lists git's files
in_root python3 -m venv --system-site-packages /src/deepprospect/.venv
# pytest-qgis is fetched by this machine's pip (its index and certificates) and installed offline in the root.
python3 -m pip download -q --disable-pip-version-check --no-deps -d "$fs/src/wheels" "$pytest_qgis" 2>/dev/null \
  || unavailable "pip could not download $pytest_qgis."
in_root /src/deepprospect/.venv/bin/python -m pip install -q --disable-pip-version-check --no-index \
  --find-links /src/wheels "$pytest_qgis"

phase "pytest $*"
status=0
in_root bash -c 'cd /src/deepprospect && .venv/bin/python -m pytest "$@"' pytest "$@" || status=$?
phase "done (pytest exit $status)"
exit "$status"
