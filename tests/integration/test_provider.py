"""The provider: ids, groups, icon, and a clear message instead of a crash when a package is missing."""

import importlib

from deepprospect.algorithms import provider as provider_module
from deepprospect.algorithms.base import GROUPS


def test_every_algorithm_has_name_group_help_and_icon(deepprospect_provider):
    algorithms = deepprospect_provider.algorithms()
    assert algorithms
    for algorithm in algorithms:
        assert algorithm.name() == algorithm.name().lower() and " " not in algorithm.name()
        assert algorithm.groupId() in GROUPS and algorithm.displayName()
        assert len(algorithm.shortHelpString()) > 200
        assert not algorithm.icon().isNull()


def test_missing_package_disables_only_its_algorithms(monkeypatch, qgis_app):
    real_import = importlib.import_module

    def import_without_rasterio(name, package=None):
        if name.endswith("idw_gridding"):
            raise ModuleNotFoundError("No module named 'rasterio'", name="rasterio")
        return real_import(name, package)

    monkeypatch.setattr(provider_module.importlib, "import_module", import_without_rasterio)
    provider = provider_module.DeepProspectProvider()
    provider.loadAlgorithms()
    assert "idwgridding" not in [a.name() for a in provider.algorithms()]
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
