"""torch side of DeepProspect: architectures (zoo), ONNX model files with their card (onnx_io). No qgis import."""
