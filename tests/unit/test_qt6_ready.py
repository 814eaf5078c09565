"""QGIS 4 / Qt6 readiness, checked on the source while QGIS 4 itself cannot run here: the shipped code uses the
scoped QGIS enums (through compat.py, which falls back to the 3.22 names), Qt only through qgis.PyQt, and exec()."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Forms that QGIS 4 (or Qt6) no longer has. compat.py names each once as the fallback it needs on QGIS 3.22.
FORBIDDEN = {
    "unscoped Processing source type": r"\bQgsProcessing\.Type\w+",
    "unscoped parameter flag or kind": r"\bQgsProcessingParameter\w*\.(Flag\w+|Integer|Double|Numeric|File|Folder)\b",
    "unscoped geometry or WKB type": r"\bQgsWkbTypes\.[A-Z]\w*",
    "unscoped layer type": r"\bQgsMapLayerType\.",
    "unscoped feature flag": r"\bQgsFeature(Sink|Request)\.(FastInsert|NoGeometry|SubsetOfAttributes|ExactIntersect)\b",
    "unscoped WKT variant": r"\bQgsCoordinateReferenceSystem\.WKT_\w+",
    "unscoped message level": r"\bQgis\.(Info|Warning|Critical|Success)\b",
    "QVariant field type": r"\bQVariant\.[A-Z]\w*",
    "exec_()": r"\bexec_\(",
    "direct PyQt5 or PyQt6 import": r"^\s*(from|import)\s+PyQt[56]\b",
}


def shipped_sources():
    """The Python files `make package` puts in the plugin ZIP, less compat.py."""
    skipped = {"tests", "bench", "scripts", "docs", "build", "dist", ".venv", ".ci"}
    return [path for path in ROOT.rglob("*.py")
            if not skipped & set(path.relative_to(ROOT).parts) and path.name != "compat.py"]


def test_no_qgis3_only_names_in_the_shipped_code():
    found = []
    for path in shipped_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found += [f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}"
                      for what, pattern in FORBIDDEN.items() if re.search(pattern, line)]
    assert not found, "\n".join(found)


def test_the_scan_catches_each_form():
    samples = ["QgsProcessing.TypeVectorPoint", "QgsProcessingParameterDefinition.FlagAdvanced",
               "QgsWkbTypes.PointGeometry", "QgsMapLayerType.RasterLayer", "QgsFeatureSink.FastInsert",
               "QgsCoordinateReferenceSystem.WKT_PREFERRED_GDAL", "Qgis.Warning", "QVariant.Int", "dialog.exec_()",
               "from PyQt5.QtCore import Qt"]
    for sample in samples:
        assert any(re.search(pattern, sample) for pattern in FORBIDDEN.values()), sample
    assert not any(re.search(pattern, "QgsWkbTypes.geometryType(t)") for pattern in FORBIDDEN.values())


def test_metadata_declares_qt6_support():
    metadata = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert re.search(r"^supportsQt6=True$", metadata, re.M)
    assert re.search(r"^qgisMaximumVersion=4\.99$", metadata, re.M)
