"""Test set-up shared by every level: import the plugin as ``deepprospect`` whatever the clone is called.

The repo root is the plugin package. A symlink ``build/test-package/deepprospect`` → repo root is put
first on sys.path, so tests import ``deepprospect.core...`` and no module is loaded under two names.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
_PACKAGE_PARENT = ROOT / "build" / "test-package"
_LINK = _PACKAGE_PARENT / "deepprospect"
_PACKAGE_PARENT.mkdir(parents=True, exist_ok=True)
if not _LINK.is_symlink():
    _LINK.symlink_to(ROOT, target_is_directory=True)
sys.path.insert(0, str(_PACKAGE_PARENT))
sys.path.insert(1, str(ROOT / "tests"))  # shared test helpers (layer_factory)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the plugin folder)."""
    return ROOT


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A session copy of tests/data (real fixtures): opening a GeoPackage in QGIS may write to it."""
    copy = tmp_path_factory.mktemp("data") / "data"
    shutil.copytree(DATA, copy)
    return copy


@pytest.fixture(scope="module")
def dask_scheduler():
    """The address of a dask.distributed LocalCluster of 2 worker processes with 1 thread each (the test is skipped
    where dask is not installed). The workers import ``deepprospect`` from this sys.path."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


_EXIT_STATUS = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    """Remember pytest's exit status for pytest_unconfigure."""
    _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without Python's final clean-up, once pytest has reported everything.

    QGIS 3.22 keeps the traceback of a Python algorithm that raised; its frames reach the layers passed to
    processing.run, and finalising those after QGIS has shut down crashes Python (exit 139) although every
    test passed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS["code"])


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module (small models run faster so, and steadier on shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
