"""torch side of DeepProspect: architectures (zoo), ONNX model files with their card (onnx_io). No qgis import.

onnx is imported here, before any module of this package imports torch: with Debian's own builds (QGIS 3.44 on
Debian unstable), torch loads the shared libonnx, and an onnx imported after it crashes in ``onnx.checker``.
"""

try:
    import onnx  # noqa: F401  (import order only)
except ImportError:  # the model steps are disabled without it; the zoo still imports
    pass
