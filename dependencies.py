"""The third-party Python packages DeepProspect needs, and their installation into a folder of the QGIS profile.

QGIS runs its own Python, and packages installed elsewhere (a virtual environment, another Python) are not visible
to it. The plugin installs the pinned packages with pip into ``<profile>/python/deepprospect-packages`` (no
administrator rights needed) and appends that folder to ``sys.path`` when it loads, after QGIS's own folders, so a
package QGIS already ships (numpy, GDAL) is never shadowed. This module does not import QGIS.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

from .core.errors import DeepProspectError

# import name -> pinned pip requirement (the same pins as requirements.txt; a test keeps them equal)
PINS = {
    "numpy": "numpy>=1.24",
    "scipy": "scipy>=1.10",
    "affine": "affine==2.4.0",
    "rasterio": "rasterio==1.4.4",
    "sklearn": "scikit-learn==1.9.1",
    "threadpoolctl": "threadpoolctl==3.8.0",
    "matplotlib": "matplotlib>=3.6",
    "torch": "torch==2.13.0",
    "onnx": "onnx==1.23.2",
    "onnxruntime": "onnxruntime-gpu==1.31.1",
    "dask": "dask==2026.8.0",  # optional: only a run given a Dask scheduler address imports them
    "distributed": "distributed==2026.8.0",
}
PACKAGES_FOLDER = "deepprospect-packages"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Builds a user can choose, with the approximate download they mean (wheels for Linux x86-64 and Windows).
BUILDS = {
    "cpu": "CPU only: torch from the PyTorch CPU index and onnxruntime (about 300 MB in all)",
    "gpu": "NVIDIA GPU: torch from PyPI (CUDA build on Linux, about 3 GB with its CUDA libraries; CPU-only on "
           "Windows and macOS) and onnxruntime-gpu (about 300 MB)",
}


class InstallError(DeepProspectError):
    """pip could not install the packages; the message ends with pip's own last lines."""


def pip_requirement(module: str) -> str:
    """The pinned pip requirement that provides an importable module."""
    name = module.split(".")[0]
    return PINS.get(name, name)


def install_hint(modules: list[str]) -> str:
    """One sentence telling the user how to install the missing modules."""
    missing = " ".join(sorted({f'"{pip_requirement(m)}"' for m in modules}))
    return ("Install them from QGIS: Plugins ▸ DeepProspect ▸ Install Python packages (or the Processing algorithm "
            "deepprospect:installpackages), which puts them in a folder of your QGIS profile; no administrator "
            "rights needed. Or, in a shell with the Python that QGIS runs (Windows: the OSGeo4W Shell): "
            f"python3 -m pip install --user {missing}")


def requirements(build: str) -> list[str]:
    """The pinned requirements of a build ('cpu' or 'gpu')."""
    if build not in BUILDS:
        raise ValueError(f"Unknown build {build!r}; choose one of {', '.join(BUILDS)}.")
    pins = dict(PINS)
    pins["numpy"] = qgis_numpy_pin()
    if build == "cpu":
        pins["onnxruntime"] = pins["onnxruntime"].replace("onnxruntime-gpu", "onnxruntime")
        if sys.platform != "darwin":  # macOS wheels are CPU builds without the local version tag
            pins["torch"] += "+cpu"
    return list(pins.values())


def qgis_numpy_pin() -> str:
    """``numpy==<the version this Python runs>``: QGIS's GDAL bindings are built against its own numpy, and numpy 1
    and 2 are not interchangeable for them, so packages are resolved against the numpy QGIS already has."""
    try:
        import numpy
    except ImportError:
        return PINS["numpy"]
    return f"numpy=={numpy.__version__}"


def packages_folder(profile_folder: str) -> str:
    """Where the packages of a QGIS profile go: <profile>/python/deepprospect-packages."""
    return os.path.join(profile_folder, "python", PACKAGES_FOLDER)


def activate(folder: str) -> bool:
    """Append ``folder`` to ``sys.path`` when it exists (and is not there yet); True when it was added."""
    if not os.path.isdir(folder) or folder in sys.path:
        return False
    sys.path.append(folder)
    importlib.invalidate_caches()
    return True


def python_executable() -> str:
    """The Python interpreter of this process (inside QGIS ``sys.executable`` may be the QGIS program itself)."""
    if os.path.basename(sys.executable).lower().startswith("python"):
        return sys.executable
    for candidate in (os.path.join(sys.prefix, "python.exe"), os.path.join(sys.prefix, "python3.exe"),
                      os.path.join(sys.prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"),
                      os.path.join(sys.prefix, "bin", "python3")):
        if os.path.isfile(candidate):
            return candidate
    raise InstallError(f"Cannot find the Python interpreter of QGIS (looked beside {sys.prefix}).")


def pip_command(packages: Sequence[str], folder: str, build: str = "gpu", find_links: str | None = None) -> list[str]:
    """The pip command that installs ``packages`` into ``folder`` (offline from ``find_links`` when given)."""
    command = [python_executable(), "-m", "pip", "install", "--upgrade", "--target", folder,
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if find_links:
        command += ["--no-index", "--find-links", find_links]
    elif build == "cpu":
        command += ["--extra-index-url", TORCH_CPU_INDEX]
    return command + list(packages)


def install(packages: Sequence[str], folder: str, build: str = "gpu", find_links: str | None = None,
            log: Callable[[str], None] = print, is_cancelled: Callable[[], bool] = lambda: False) -> None:
    """Run pip, passing every line of its output to ``log``; raise InstallError with pip's last lines on failure.

    A cancel stops pip; what it had installed stays in the folder (pip installs package by package).
    """
    os.makedirs(folder, exist_ok=True)
    command = pip_command(packages, folder, build, find_links)
    log(" ".join(command))
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL) as process:
        for line in process.stdout:
            lines.append(line.rstrip())
            log(lines[-1])
            if is_cancelled():
                process.terminate()
                raise InstallError("Cancelled; the packages installed before the cancel stay in " + folder)
    if process.returncode != 0:
        raise InstallError(f"pip could not install {' '.join(packages)} (exit {process.returncode}):\n"
                           + "\n".join(lines[-8:]))
