"""qgis_process: deepprospect:dualwindow writes the same map headless as the library does in-process."""

import numpy as np
import rasterio
from deepprospect.models.dualwindow import dual_window_map
from model_factory import evidence, write_model, write_stack

NAMES = ["Au", "As", "Cu"]


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.tags()


def test_headless_map_equals_in_process_map(run_json, tmp_path):
    stack, model = str(tmp_path / "stack.tif"), str(tmp_path / "pair.onnx")
    _, recipe = write_stack(stack, evidence(3), NAMES, normalise="z-score")
    write_model(model, "ppf_cnn1d", NAMES, 1, recipe)
    out = tmp_path / "anomaly.tif"
    code, result, log = run_json("deepprospect:dualwindow", MODEL=model, STACK=stack, INNER=3, OUTER=5, RING_STRIDE=1,
                                 DEVICE="cpu", OUTPUT=out)
    assert code == 0, log
    assert result["results"]["OUTPUT"] == str(out) and result["results"]["CELLS"] == 40 * 50
    assert "16 pairs per cell" in log and "CPUExecutionProvider" in log
    dual_window_map(model, stack, str(tmp_path / "direct.tif"), inner=3, outer=5, device="cpu")
    headless, tags = read(out)
    direct, direct_tags = read(str(tmp_path / "direct.tif"))
    np.testing.assert_array_equal(headless, direct)
    assert tags["DEEPPROSPECT_DUAL_WINDOW"] == direct_tags["DEEPPROSPECT_DUAL_WINDOW"]
