"""deepprospect:installpackages through processing.run: an offline install of a wheel built in the test."""

import sys

import pytest
from qgis.core import QgsProcessingException
from wheel_factory import make_wheel

ALG = "deepprospect:installpackages"


def test_offline_install_into_a_chosen_folder(run_alg, tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    monkeypatch.setattr(sys, "path", list(sys.path))
    result = run_alg(ALG, {"BUILD": "cpu", "FOLDER": str(tmp_path / "packages"), "PACKAGES": "dp_wheel_probe",
                           "FIND_LINKS": str(wheels)})
    assert result["OUTPUT"] == str(tmp_path / "packages") and result["INSTALLED"] == "dp_wheel_probe"
    assert (tmp_path / "packages" / "dp_wheel_probe" / "__init__.py").exists()
    assert str(tmp_path / "packages") in sys.path


def test_a_failed_install_is_a_message(run_alg, tmp_path):
    with pytest.raises(QgsProcessingException, match="pip could not install no_such_package"):
        run_alg(ALG, {"FOLDER": str(tmp_path / "packages"), "PACKAGES": "no_such_package",
                      "FIND_LINKS": str(tmp_path)})
