"""The provider: ids, groups, icon, and a clear message instead of a crash when a package is missing."""

import importlib
import os
import subprocess
import sys

from deepprospect.algorithms import provider as provider_module
from deepprospect.algorithms.base import GROUPS
from qgis.core import QgsApplication, QgsProcessingModelAlgorithm


def python_algorithms(provider):
    return [a for a in provider.algorithms() if not isinstance(a, QgsProcessingModelAlgorithm)]


def test_every_algorithm_has_name_group_help_and_icon(deepprospect_provider):
    algorithms = python_algorithms(deepprospect_provider)
    assert len(algorithms) == len(provider_module.ALGORITHMS)
    for algorithm in algorithms:
        assert algorithm.name() == algorithm.name().lower() and " " not in algorithm.name()
        assert algorithm.groupId() in GROUPS and algorithm.displayName()
        assert len(algorithm.shortHelpString()) > 200
        assert not algorithm.icon().isNull()


def test_the_pipelines_are_in_the_toolbox(deepprospect_provider):
    models = {a.name(): a for a in deepprospect_provider.algorithms() if isinstance(a, QgsProcessingModelAlgorithm)}
    assert set(models) == {"evidencetotraining", "fullpipeline"}
    assert models["fullpipeline"].displayName() == "Full prospectivity pipeline"
    for model in models.values():
        assert model.id() == f"deepprospect:{model.name()}" and model.create().id() == model.id()
        assert model.group() == "DeepProspect pipelines" and len(model.shortHelpString()) > 200
        assert QgsApplication.processingRegistry().algorithmById(model.id()) is not None
        assert all(child.algorithm() is not None for child in model.create().childAlgorithms().values())


def test_missing_package_disables_only_its_algorithms(monkeypatch, qgis_app):
    real_import = importlib.import_module

    def import_without_rasterio(name, package=None):
        if name.endswith("idw_gridding"):
            raise ModuleNotFoundError("No module named 'rasterio'", name="rasterio")
        return real_import(name, package)

    monkeypatch.setattr(provider_module.importlib, "import_module", import_without_rasterio)
    provider = provider_module.DeepProspectProvider()
    provider.loadAlgorithms()
    names = [a.name() for a in provider.algorithms()]
    assert "idwgridding" not in names and "fullpipeline" not in names
    message = provider.missing_message()
    assert "rasterio" in message and "idw_gridding" in message and "pip install" in message


def test_broken_package_disables_only_its_algorithms(monkeypatch, qgis_app):
    real_import = importlib.import_module

    def import_with_broken_torch(name, package=None):
        if name.endswith("idw_gridding"):
            raise OSError("DLL load failed while importing _C: the specified module could not be found")
        return real_import(name, package)

    monkeypatch.setattr(provider_module.importlib, "import_module", import_with_broken_torch)
    provider = provider_module.DeepProspectProvider()
    provider.loadAlgorithms()
    names = [a.name() for a in provider.algorithms()]
    assert "idwgridding" not in names and "evidencestack" in names
    assert "DLL load failed" in provider.missing_message()


def test_without_the_plugins_packages_the_installer_still_loads(repo_root):
    """In a QGIS without rasterio, scikit-learn, torch or onnxruntime the provider loads with the installer only,
    and its message names the missing packages (the scaffolding of every algorithm is standard library + QGIS)."""
    blocked = ("rasterio", "sklearn", "torch", "onnx", "onnxruntime", "scipy", "dask", "threadpoolctl", "matplotlib")
    script = f"""
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Blocked())
sys.path.insert(0, {str(repo_root / "build" / "test-package")!r})
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
from deepprospect.algorithms.provider import DeepProspectProvider
provider = DeepProspectProvider()
provider.loadAlgorithms()
print("ALGORITHMS", sorted(a.name() for a in provider.algorithms()))
print("MESSAGE", provider.missing_message())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ALGORITHMS ['installpackages']" in done.stdout
    message = done.stdout.split("MESSAGE", 1)[1]
    assert "rasterio" in message and "deepprospect:installpackages" in message
