"""Keep scikit-learn's libsvm and liblinear bound to their own C functions inside QGIS (Linux).

scikit-learn's compiled SVM modules export a C function ``set_seed`` and call it through the dynamic linker. Newer
zlib releases' minizip, which QGIS links (QGIS 3.44 on Debian unstable), also exports a ``set_seed``; loaded first
and globally by QGIS, it wins the lookup, and the first SVM fit crashes QGIS with a segmentation fault. Loading
those modules with ``RTLD_DEEPBIND`` before scikit-learn imports them makes them look up their own symbols first.
Nothing is done where no loaded library exports a clashing name (QGIS 3.22, plain Python, Windows, macOS).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys

CLASHING_SYMBOLS = ("set_seed",)
MODULES = ("svm/_libsvm", "svm/_libsvm_sparse", "svm/_liblinear")


def clashing_symbols() -> list[str]:
    """The names that scikit-learn's SVM modules define and a library already loaded globally exports too."""
    if not sys.platform.startswith("linux"):
        return []
    process = ctypes.CDLL(None)
    return [name for name in CLASHING_SYMBOLS if hasattr(process, name)]


def sklearn_svm_libraries() -> list[str]:
    """Paths of scikit-learn's compiled SVM modules, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = next(iter(spec.submodule_search_locations))
    return sorted(path for module in MODULES for path in glob.glob(os.path.join(folder, f"{module}.*.so")))


def bind_sklearn_to_own_symbols() -> list[str]:
    """Preload the SVM modules with RTLD_DEEPBIND when a clash exists; returns the paths it preloaded.

    Python's later import of the same file reuses the handle, so the binding holds. Does nothing once scikit-learn's
    SVM modules are imported (too late to change) or when nothing clashes.
    """
    if "sklearn.svm" in sys.modules or not clashing_symbols():
        return []
    libraries = sklearn_svm_libraries()
    for path in libraries:
        ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL | os.RTLD_DEEPBIND)
    return libraries
