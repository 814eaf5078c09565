"""Pure compute for DeepProspect: numpy/scipy/scikit-learn only, never QGIS or torch.

Everything here works from plain Python, so it is unit-testable in milliseconds and can later run
under Dask or in batch jobs without a QGIS install.
"""

from .native_symbols import bind_sklearn_to_own_symbols

bind_sklearn_to_own_symbols()
