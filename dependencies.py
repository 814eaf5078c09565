"""Which third-party Python packages are missing, and the command that installs them.

QGIS runs its own Python; packages installed in a virtual environment are not visible to it, so the
plugin reports what is missing instead of failing to load.
"""

from __future__ import annotations

# import name -> pip requirement
PIP_NAMES = {
    "numpy": "numpy<2",
    "scipy": "scipy",
    "rasterio": "rasterio",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime-gpu",
    "matplotlib": "matplotlib",
}


def pip_requirement(module: str) -> str:
    """The pip requirement that provides an importable module."""
    return PIP_NAMES.get(module.split(".")[0], module.split(".")[0])


def install_hint(modules: list[str]) -> str:
    """One sentence telling the user how to install the missing modules into QGIS's Python."""
    requirements = " ".join(sorted({f'"{pip_requirement(m)}"' for m in modules}))
    return (
        "Install them into the Python that QGIS runs (Windows: the OSGeo4W Shell; Linux/macOS: a terminal): "
        f"python3 -m pip install --user {requirements}"
    )
