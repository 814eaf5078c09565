"""`make package` builds a zip that installs as a working plugin, without tests or benchmarks."""

import os
import subprocess
import sys
import zipfile


def test_zip_installs_and_loads_in_qgis_process(repo_root, tmp_path):
    subprocess.run(["make", "-s", "package"], cwd=repo_root, check=True, capture_output=True, timeout=120)
    archive = repo_root / "dist" / "deepprospect.zip"
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        bundle.extractall(tmp_path / "plugins")
    assert "deepprospect/metadata.txt" in names and "deepprospect/__init__.py" in names
    assert not [n for n in names if n.startswith(("deepprospect/tests/", "deepprospect/bench/", "deepprospect/.ci"))]

    profile = tmp_path / "profile" / "profiles" / "default" / "QGIS"
    profile.mkdir(parents=True)
    (profile / "QGIS3.ini").write_text("[PythonPlugins]\ndeepprospect=true\n")
    site_packages = [p for p in sys.path if p.endswith("site-packages") and ".venv" in p]
    env = dict(os.environ, QGIS_PLUGINPATH=str(tmp_path / "plugins"), QT_QPA_PLATFORM="offscreen",
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), PYTHONPATH=os.pathsep.join(site_packages))
    binary = "qgis_process.bin" if subprocess.run(["which", "qgis_process.bin"], capture_output=True).returncode == 0 \
        else "qgis_process"
    done = subprocess.run([binary, "list"], env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    from deepprospect.algorithms.provider import ALGORITHMS

    listed = {line.split()[0] for line in done.stdout.splitlines() if line.strip().startswith("deepprospect:")}
    expected = {f"deepprospect:{module.replace('_', '')}" for module, _ in ALGORITHMS}
    assert expected | {"deepprospect:fullpipeline", "deepprospect:evidencetotraining"} <= listed, \
        done.stdout + done.stderr
