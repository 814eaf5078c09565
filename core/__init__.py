"""Pure compute for DeepProspect: numpy/scipy/scikit-learn only, never QGIS or torch.

Everything here works from plain Python, so it is unit-testable in milliseconds and can later run
under Dask or in batch jobs without a QGIS install.

The layout follows the data flow: ``gridding`` (samples and features onto the grid) → ``evidence`` (the stack,
element screening) → ``sampling`` (training samples from deposits) → ``mapping`` (maps, ensembles, anomaly classes)
→ ``scoring`` (metrics, evaluation, spatial cross-validation, the report). The modules here at the top are what
every stage shares: grids, raster and file I/O, tiles and Dask, study areas, memory checks, progress and errors.
"""

from .native_symbols import bind_sklearn_to_own_symbols

bind_sklearn_to_own_symbols()
