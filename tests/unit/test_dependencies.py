"""Installing the Python packages into a profile folder: pins, builds, an offline install of a wheel built here
(no network), the path handling, and a failed install's message."""

import re
import sys
from pathlib import Path

import pytest
from deepprospect.dependencies import (
    PINS,
    InstallError,
    activate,
    install,
    packages_folder,
    pip_command,
    requirements,
)
from wheel_factory import make_wheel

ROOT = Path(__file__).resolve().parents[2]


def test_pins_are_the_tested_requirements():
    """The plugin installs exactly what requirements.txt pins (that file is not in the plugin ZIP)."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert sorted(filter(None, lines)) == sorted(PINS.values())


def test_builds_choose_the_torch_and_onnxruntime_wheels():
    cpu, gpu = requirements("cpu"), requirements("gpu")
    assert "onnxruntime==1.31.1" in cpu and "onnxruntime-gpu==1.31.1" in gpu
    assert any(re.fullmatch(r"torch==2\.13\.0(\+cpu)?", r) for r in cpu) and "torch==2.13.0" in gpu
    assert "--extra-index-url" in pip_command(cpu, "/x", "cpu") and "--extra-index-url" not in pip_command(gpu, "/x")
    offline = pip_command(["a"], "/x", "cpu", find_links="/wheels")
    assert offline[-4:] == ["--no-index", "--find-links", "/wheels", "a"] and "--extra-index-url" not in offline
    with pytest.raises(ValueError, match="cpu, gpu"):
        requirements("tpu")


def test_offline_install_into_a_folder_then_import(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels)
    folder = packages_folder(str(tmp_path / "profile"))
    assert folder.endswith(("python/deepprospect-packages", "python\\deepprospect-packages"))
    lines = []
    install(["dp_wheel_probe"], folder, find_links=str(wheels), log=lines.append)
    assert "--no-index" in lines[0] and any("Successfully installed" in line for line in lines)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert activate(folder) and sys.path[-1] == folder and not activate(folder)
    import dp_wheel_probe

    assert dp_wheel_probe.VALUE == 42
    monkeypatch.delitem(sys.modules, "dp_wheel_probe")


def test_a_failed_install_says_what_pip_said(tmp_path):
    with pytest.raises(InstallError, match=r"(?s)could not install no_such_package.*No matching distribution"):
        install(["no_such_package"], str(tmp_path / "target"), find_links=str(tmp_path), log=lambda line: None)


def test_a_missing_folder_is_not_put_on_the_path(tmp_path):
    assert not activate(str(tmp_path / "never installed"))
