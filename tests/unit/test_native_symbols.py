"""scikit-learn's SVM modules kept on their own symbols when QGIS exports a clashing one (Linux)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from deepprospect.core import native_symbols

PACKAGE_PARENT = Path(__file__).resolve().parents[2] / "build" / "test-package"


def test_the_svm_modules_are_found_without_importing_sklearn():
    libraries = native_symbols.sklearn_svm_libraries()
    assert any("_libsvm." in path for path in libraries) and any("_liblinear." in path for path in libraries)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="symbol interposition is a Linux matter")
def test_a_clash_preloads_them_deep_bound_and_the_svm_still_fits():
    """In a fresh Python: with a clash reported, the modules are preloaded before sklearn and an SVM fits."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(PACKAGE_PARENT)!r})
        from deepprospect.core import native_symbols
        native_symbols.clashing_symbols = lambda: ["set_seed"]
        assert "sklearn.svm" not in sys.modules
        preloaded = native_symbols.bind_sklearn_to_own_symbols()
        assert len(preloaded) >= 2, preloaded
        assert native_symbols.bind_sklearn_to_own_symbols() == preloaded  # sklearn.svm not imported yet
        from deepprospect.core.evidence.screening import svm_auc
        import numpy as np
        values = np.r_[np.random.default_rng(0).normal(0, 1, 60), np.random.default_rng(1).normal(2, 1, 20)]
        labels = np.r_[np.zeros(60), np.ones(20)].astype(int)
        assert svm_auc(values, labels) > 0.8
        assert native_symbols.bind_sklearn_to_own_symbols() == []  # too late once sklearn.svm is imported
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]


def test_nothing_is_done_without_a_clash(monkeypatch):
    monkeypatch.setattr(native_symbols, "clashing_symbols", lambda: [])
    monkeypatch.delitem(sys.modules, "sklearn.svm", raising=False)
    assert native_symbols.bind_sklearn_to_own_symbols() == []
