"""qgis_process: deepprospect:predict writes the same map headless as the library does in-process."""

import numpy as np
import rasterio
from deepprospect.models.inference import predict_map
from model_factory import evidence, write_model, write_stack

NAMES = ["Au", "As", "Cu"]


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.tags()


def test_headless_map_equals_in_process_map(run_json, tmp_path):
    stack, model = str(tmp_path / "stack.tif"), str(tmp_path / "vgg8.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(model, "vgg8", NAMES, 16, recipe)
    out = tmp_path / "map.tif"
    code, result, log = run_json("deepprospect:predict", MODEL=model, STACK=stack, STRIDE=2, DEVICE="cpu", OUTPUT=out)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out)
    assert "CPUExecutionProvider" in log
    predict_map(model, stack, str(tmp_path / "direct.tif"), stride=2, device="cpu")
    headless, tags = read(out)
    direct, direct_tags = read(str(tmp_path / "direct.tif"))
    assert headless.shape == (20, 25) and (headless != -9999.0).sum() > 100
    np.testing.assert_array_equal(headless, direct)
    assert tags["DEEPPROSPECT_MODEL_CARD"] == direct_tags["DEEPPROSPECT_MODEL_CARD"]


def test_automatic_device_logs_one_line_and_no_errors(run_json, tmp_path):
    stack, model = str(tmp_path / "stack.tif"), str(tmp_path / "lenet.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(model, "lenet", NAMES, 16, recipe)
    code, _, log = run_json("deepprospect:predict", MODEL=model, STACK=stack, DEVICE="auto",
                            OUTPUT=tmp_path / "map.tif")
    assert code == 0, log
    provider = [line for line in log.splitlines() if "onnxruntime provider:" in line]
    assert len(provider) == 1, log
    assert "CUDAExecutionProvider (the GPU" in provider[0] or "CPUExecutionProvider with" in provider[0]
    assert not any(mark in log for mark in ("[E:", "ERROR", "Error")), log  # onnxruntime's red CUDA load errors
