"""Prospectivity maps: equal to a per-patch torch reference of padded windows for every path (fast scanning,
batched windows, cell vectors), stride and blocks, tiles, no holes at edges or next to nodata, study area, bands
by name, refusals without output, cancel, provider choice."""

import json
import os
import re
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError, ModelError
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import NODATA, write_geotiff
from deepprospect.core.sampling.windows import WINDOW_FILL
from deepprospect.models import inference
from deepprospect.models.inference import CPU, CUDA, open_session, predict_map
from deepprospect.models.onnx_io import read_card
from model_factory import GRID, evidence, padded_reference, window_probability, write_model, write_stack

NAMES = ["Au", "As", "Cu"]
TOLERANCE = {"lenet": 1e-5, "vgg8": 1e-5, "cnn1d": 1e-4}  # cnn1d: 13 batch norms, ONNX ≈ torch within 1e-4


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A z-scored 3-band stack on 40 × 50 cells and three models trained on it (LeNet, VGG8, 1D CNN)."""
    folder = tmp_path_factory.mktemp("inference")
    raw = evidence(3)
    stack, recipe = write_stack(str(folder / "stack.tif"), raw, NAMES, normalise="z-score")
    models = {name: (str(folder / f"{name}.onnx"), write_model(str(folder / f"{name}.onnx"), name, NAMES, patch,
                                                                recipe))
              for name, patch in (("lenet", 16), ("vgg8", 16), ("cnn1d", 1))}
    return {"folder": folder, "raw": raw, "stack": stack.astype(np.float32), "recipe": recipe,
            "stack_path": str(folder / "stack.tif"), "models": models}


def read_map(path):
    """(values with NaN at nodata, a namespace of the file's properties)."""
    with rasterio.open(path) as src:
        info = SimpleNamespace(nodata=src.nodata, descriptions=src.descriptions, dtypes=src.dtypes, crs=src.crs,
                               transform=src.transform, res=src.res, bounds=src.bounds, tags=src.tags())
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), info


def predict(files, name, out, stack_path=None, **options):
    options.setdefault("device", "cpu")
    return predict_map(files["models"][name][0], stack_path or files["stack_path"], str(out), **options)


@pytest.mark.parametrize("name,method", [("lenet", "dense"), ("vgg8", "patches"), ("cnn1d", "vectors")])
def test_map_equals_per_patch_torch(files, tmp_path, name, method):
    out = tmp_path / "map.tif"
    lines = []
    report = predict(files, name, out, batch_size=37, log=lines.append)
    values, src = read_map(out)
    expected = padded_reference(files["models"][name][1], files["stack"])
    assert report.method == method and report.provider == CPU and (report.rows, report.cols) == (40, 50)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE[name])
    assert np.nanstd(expected) > 0.05  # the map varies enough for the tolerance to mean something
    assert report.valid_cells == np.count_nonzero(~np.isnan(expected))
    assert not np.isnan(values).any() and report.valid_cells == 40 * 50  # no hole: windows at the edges are padded
    assert src.nodata == NODATA and src.descriptions == ("prospectivity",) and src.dtypes == ("float32",)
    assert src.transform == rasterio.transform.Affine(100.0, 0, GRID.x_min, 0, -100.0, GRID.y_max)
    assert src.crs.to_epsg() == 32650
    tags = src.tags
    card = json.loads(tags["DEEPPROSPECT_MODEL_CARD"])
    assert tags["DEEPPROSPECT_ALGORITHM"] == "predict"
    assert card == {"architecture": name, "metrics": read_card(files["models"][name][0])["metrics"],
                    "band_names": NAMES, "seed": 1, "model_file": f"{name}.onnx",
                    "patch_size": 1 if name == "cnn1d" else 16}
    assert card["metrics"]["validation"]["auc"] == 0.75
    prediction = json.loads(tags["DEEPPROSPECT_PREDICTION"])
    assert prediction["window_fill"] == WINDOW_FILL == 0.0 and "outside the stack" in prediction["padding"]
    assert prediction["study_area"] is False
    assert any("CPUExecutionProvider" in line for line in lines)


@pytest.mark.parametrize("name,stride,method", [("lenet", 3, "dense"), ("lenet", 5, "patches"), ("vgg8", 4, "patches"),
                                                ("cnn1d", 3, "vectors")])
def test_stride_gives_a_coarser_grid_of_block_centre_windows(files, tmp_path, name, stride, method):
    out = tmp_path / "coarse.tif"
    report = predict(files, name, out, stride=stride)
    values, src = read_map(out)
    shape = (-(-40 // stride), -(-50 // stride))  # ⌈rows / stride⌉ × ⌈cols / stride⌉
    assert report.method == method and values.shape == (report.rows, report.cols) == shape
    assert src.res == report.pixel_size == (100.0 * stride, 100.0 * stride) and src.bounds.left == GRID.x_min
    expected = padded_reference(files["models"][name][1], files["stack"], stride)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE[name])
    assert json.loads(src.tags["DEEPPROSPECT_PREDICTION"])["stride"] == stride


def test_blocks_are_one_prediction_per_patch_sized_block(files, tmp_path):
    out = tmp_path / "blocks.tif"
    report = predict(files, "lenet", out, mode="blocks", stride=7)  # stride is ignored in block mode
    values, src = read_map(out)
    assert values.shape == (3, 4) and src.res == (1600.0, 1600.0) and report.method == "patches"
    stack = files["stack"]
    model = files["models"]["lenet"][1]
    import torch

    for r in range(3):
        for c in range(4):
            block = stack[:, 16 * r:16 * r + 16, 16 * c:16 * c + 16]
            if block.shape[1:] != (16, 16):  # partial blocks: their own (centre) cell is beyond the stack: nodata
                assert np.isnan(values[r, c])
                continue
            with torch.no_grad():
                expected = torch.softmax(model(torch.from_numpy(block[None])).double(), 1)[0, 1].item()
            assert values[r, c] == pytest.approx(expected, abs=TOLERANCE["lenet"])
    assert np.count_nonzero(~np.isnan(values)) == 6


@pytest.mark.parametrize("name,stride", [("lenet", 1), ("vgg8", 2), ("lenet", 5)])
def test_tile_size_does_not_change_the_map(files, tmp_path, name, stride):
    small, large = tmp_path / "small.tif", tmp_path / "large.tif"
    predict(files, name, small, stride=stride, tile_size=7, batch_size=5)  # many tiles, halo crossing them
    predict(files, name, large, stride=stride, tile_size=10_000)
    a, _ = read_map(small)
    b, _ = read_map(large)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_nodata_and_nan_cells_blank_every_window_over_them(files, tmp_path, monkeypatch):
    stack = files["stack"].copy()
    stack[0, 20, 25] = np.nan  # written as the nodata value
    stack[2, 5:8, 3] = np.nan
    path = str(tmp_path / "holes.tif")
    write_geotiff(path, stack, GRID, NAMES, metadata={"DEEPPROSPECT_STACK": json.dumps(files["recipe"])})
    with rasterio.open(path, "r+") as dst:  # a raw NaN that is not the nodata value
        band = dst.read(2)
        band[30, 40] = np.nan
        dst.write(band, 2)
    stack[1, 30, 40] = np.nan
    fed = []
    real_run = inference._TilePredictor._run

    def spy(self, feed):
        fed.append(any(bool(np.isnan(values).any()) for values in feed.values()))
        return real_run(self, feed)

    monkeypatch.setattr(inference._TilePredictor, "_run", spy)
    for name in ("lenet", "vgg8", "cnn1d"):
        out = tmp_path / f"{name}.tif"
        predict(files, name, out, stack_path=path)
        values, _ = read_map(out)
        expected = padded_reference(files["models"][name][1], stack)
        np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
        np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE[name])
        assert np.isnan(values[20, 25]) and np.isnan(values[30, 40]) and np.isnan(values[5:8, 3]).all()
        around = np.zeros(values.shape, bool)
        around[19:22, 24:27] = True
        around[20, 25] = False
        assert not np.isnan(values[around]).any()  # windows holding a nodata cell are padded, not dropped
        assert np.count_nonzero(np.isnan(values)) == 5
    assert fed and not any(fed)  # the model never saw a NaN


@pytest.mark.parametrize("name,tile_size", [("lenet", 256), ("lenet", 7), ("vgg8", 256)])
def test_edge_windows_equal_a_manual_padded_window(files, tmp_path, name, tile_size):
    out = tmp_path / "map.tif"
    predict(files, name, out, tile_size=tile_size)
    values, _ = read_map(out)
    model, stack = files["models"][name][1], files["stack"]
    manual = []
    for r, c in ((0, 0), (39, 49), (3, 45), (38, 2), (20, 0)):
        window = np.full((3, 16, 16), WINDOW_FILL, dtype=np.float32)  # rows r − 8 … r + 7, columns alike
        r0, c0 = max(r - 8, 0), max(c - 8, 0)
        part = stack[:, r0:r + 8, c0:c + 8]
        window[:, r0 - (r - 8):r0 - (r - 8) + part.shape[1], c0 - (c - 8):c0 - (c - 8) + part.shape[2]] = part
        manual.append(window)
    expected = window_probability(model, np.stack(manual))
    got = values[[0, 39, 3, 38, 20], [0, 49, 45, 2, 0]]
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[name])


@pytest.mark.parametrize("name,stride", [("lenet", 1), ("vgg8", 3)])
def test_cells_outside_the_study_area_are_nodata(files, tmp_path, name, stride):
    area = np.zeros(GRID.shape, bool)
    area[5:30, 10:42] = True
    full, inside = tmp_path / "full.tif", tmp_path / "inside.tif"
    predict(files, name, full, stride=stride)
    report = predict(files, name, inside, stride=stride, study_area=area, tile_size=9)
    a, _ = read_map(full)
    b, src = read_map(inside)
    beyond = np.pad(area, ((0, stride), (0, stride)))  # own cells beyond the stack are outside too
    own = beyond[np.arange(a.shape[0]) * stride + stride // 2][:, np.arange(a.shape[1]) * stride + stride // 2]
    assert np.isnan(b[~own]).all() and not np.isnan(b[own]).any() and report.valid_cells == own.sum()
    np.testing.assert_allclose(b[own], a[own], rtol=0, atol=1e-6)  # windows still read evidence outside the area
    assert json.loads(src.tags["DEEPPROSPECT_PREDICTION"])["study_area"] is True
    with pytest.raises(InputError, match=r"study area mask \(40, 49\) does not match the grid \(40 × 50"):
        predict(files, name, tmp_path / "bad.tif", study_area=area[:, :49])
    assert not (tmp_path / "bad.tif").exists()


def test_bands_are_taken_by_name(files, tmp_path):
    # the same bands in another order plus an unused one give the same map
    shuffled = str(tmp_path / "shuffled.tif")
    write_geotiff(shuffled, np.stack([files["stack"][2], np.zeros(GRID.shape), files["stack"][0], files["stack"][1]]),
                  GRID, ["Cu", "Zn", "Au", "As"], metadata={"DEEPPROSPECT_STACK": json.dumps(files["recipe"])})
    predict(files, "lenet", tmp_path / "a.tif")
    predict(files, "lenet", tmp_path / "b.tif", stack_path=shuffled)
    np.testing.assert_array_equal(read_map(tmp_path / "a.tif")[0], read_map(tmp_path / "b.tif")[0])


@pytest.mark.parametrize("names,message", [
    (["Au", "Zn", "Cu"], r"lacks As\. The model needs the bands Au, As, Cu; the stack has Au, Zn, Cu"),
    (["Au", "As", "As"], "more than one band named As"),
])
def test_missing_or_duplicated_bands_are_refused(files, tmp_path, names, message):
    path = str(tmp_path / "bad.tif")
    write_geotiff(path, files["stack"], GRID, names, metadata={"DEEPPROSPECT_STACK": json.dumps(files["recipe"])})
    out = tmp_path / "map.tif"
    with pytest.raises(InputError, match=message):
        predict(files, "lenet", out, stack_path=path)
    assert not out.exists()


def test_other_normalisation_is_refused(files, tmp_path):
    other = str(tmp_path / "other.tif")
    write_stack(other, files["raw"] * 3.0, NAMES, normalise="z-score")  # other statistics
    raw = str(tmp_path / "raw.tif")
    write_geotiff(raw, files["stack"], GRID, NAMES)  # no recipe: raw values
    refusals = ((other, r"statistics of 'As': model .*, stack .*; statistics of 'Au'"), (raw, "normalisation method"))
    for path, message in refusals:
        with pytest.raises(InputError, match=message):
            predict(files, "lenet", tmp_path / "map.tif", stack_path=path)
    assert sorted(os.listdir(tmp_path)) == ["other.tif", "raw.tif"]


def test_grid_differences_only_warn(files, tmp_path):
    path = str(tmp_path / "elsewhere.onnx")
    write_model(path, "lenet", NAMES, 16, files["recipe"], crs="EPSG:4326", pixel_size=(250.0, 250.0))
    report = predict_map(path, files["stack_path"], str(tmp_path / "map.tif"), device="cpu")
    assert any("another CRS" in w for w in report.warnings)
    assert any("250 × 250 pixels" in w for w in report.warnings)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notices (foreign file)
@pytest.mark.parametrize("content,message", [
    (None, "Model file not found"),
    (b"\x08\x07not an onnx model" * 50, "not a readable ONNX model"),
    ("foreign", "not a DeepProspect model"),
])
def test_bad_model_files_are_refused_without_output(files, tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content == "foreign":
        import torch

        torch.onnx.export(torch.nn.Conv2d(3, 2, 16), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    elif content is not None:
        path.write_bytes(content)
    out = tmp_path / "map.tif"
    with pytest.raises(ModelError, match=message):
        predict_map(str(path), files["stack_path"], str(out), device="cpu")
    assert not out.exists()


@pytest.mark.parametrize("name", ["lenet", "vgg8"])
def test_cancel_leaves_nothing(files, tmp_path, name):
    calls = []

    def cancel_on_third():
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        predict(files, name, tmp_path / "map.tif", tile_size=16, batch_size=8, is_cancelled=cancel_on_third)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("options,message", [
    ({"mode": "pixels"}, "Unknown mode"), ({"stride": 0}, "stride must be at least 1"),
    ({"batch_size": 0}, "batch size"), ({"device": "tpu"}, "Unknown device"), ({"tile_size": 0}, "tile size"),
])
def test_bad_options_are_refused(files, tmp_path, options, message):
    with pytest.raises(InputError, match=message):
        predict(files, "lenet", tmp_path / "map.tif", **options)


def test_stack_smaller_than_a_window_and_output_over_the_stack_are_refused(files, tmp_path):
    small = str(tmp_path / "small.tif")
    grid = GridSpec(GRID.x_min, GRID.y_max, 100.0, 100.0, 20, 12, GRID.crs)
    write_geotiff(small, files["stack"][:, :12, :20], grid, NAMES,
                  metadata={"DEEPPROSPECT_STACK": json.dumps(files["recipe"])})
    with pytest.raises(InputError, match=r"smaller than the model's 16 × 16 window"):
        predict(files, "lenet", tmp_path / "map.tif", stack_path=small)
    with pytest.raises(InputError, match="overwrite the evidence stack"):
        predict(files, "lenet", small, stack_path=small)


# ------------------------------------------------------------------------------------------- provider choice


class FakeSession:
    """An InferenceSession that claims the providers it was given (up to ``granted``) and runs on the CPU."""

    granted = (CUDA, CPU)
    fail_run = False
    created: ClassVar[list] = []

    def __init__(self, path, options, providers):
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        self.providers = [p for p in names if p in self.granted]
        self.options = options
        FakeSession.created.append(self)
        self.real = REAL_SESSION(path, options, providers=[CPU])

    def get_providers(self):
        return self.providers

    def run(self, outputs, feed):
        if self.fail_run and self.providers[0] == CUDA:
            raise RuntimeError("CUDA error: out of memory")
        return self.real.run(outputs, feed)


REAL_SESSION = ort.InferenceSession


@pytest.fixture
def fake_ort(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(FakeSession, "created", [])
    monkeypatch.setattr(inference, "_CUDA_PROBE", {})  # a fresh process: CUDA not tried yet
    return monkeypatch


class MissingLibrarySession(FakeSession):
    """A session that cannot get CUDA and says why on file descriptor 2, as onnxruntime does (in red)."""

    granted = (CPU,)
    cuda_tries: ClassVar[list] = []

    def __init__(self, path, options, providers):
        if CUDA in [p[0] if isinstance(p, tuple) else p for p in providers]:
            MissingLibrarySession.cuda_tries.append(path)
            os.write(2, b"\x1b[1;31m[E:onnxruntime:Default, provider_bridge_ort.cc:2458] Failed to load library "
                        b"libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object "
                        b"file: No such file or directory\n[W:onnxruntime:Default] Failed to create "
                        b"CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*. Please install all dependencies\n")
        super().__init__(path, options, providers)


def test_missing_cuda_libraries_are_probed_once_quietly(files, fake_ort, capfd):
    fake_ort.setattr(ort, "InferenceSession", MissingLibrarySession)
    fake_ort.setattr(MissingLibrarySession, "cuda_tries", [])
    path, _ = files["models"]["lenet"]
    card = read_card(path)
    lines = []
    for _ in range(3):
        assert open_session(path, card, "auto", log=lines.append)[1] == CPU
    printed = capfd.readouterr()
    assert "onnxruntime" not in printed.err + printed.out
    assert len(lines) == 3 and len(set(lines)) == 1
    assert re.search(r"CPUExecutionProvider .*the library libcublasLt\.so\.13 is missing; this onnxruntime needs "
                     r"cuDNN 9 and CUDA 13", lines[0])
    assert len(MissingLibrarySession.cuda_tries) == 1  # later runs go straight to the CPU
    with pytest.raises(InputError, match=r"Device .cuda. was chosen.*libcublasLt"):
        open_session(path, card, "cuda")


def test_cuda_is_used_when_a_session_gets_it_and_runs(files, tmp_path, fake_ort):
    lines = []
    report = predict(files, "lenet", tmp_path / "gpu.tif", device="auto", log=lines.append)
    assert report.provider == CUDA and any("CUDAExecutionProvider (the GPU session passed a test run)" in line
                                           for line in lines)
    predict(files, "lenet", tmp_path / "cpu.tif", device="cpu")
    np.testing.assert_array_equal(read_map(tmp_path / "gpu.tif")[0], read_map(tmp_path / "cpu.tif")[0])
    options = FakeSession.created[0].options
    assert options.intra_op_num_threads == os.cpu_count() and options.use_deterministic_compute


@pytest.mark.parametrize("granted,fail_run,why", [
    ((CPU,), False, "lists the CUDA provider but a session could not get it"),
    ((CUDA, CPU), True, r"a test run on the GPU failed \(CUDA error: out of memory\)"),
])
def test_cuda_that_does_not_work_falls_back_to_cpu_or_fails_clearly(files, fake_ort, granted, fail_run, why):
    fake_ort.setattr(FakeSession, "granted", granted)
    fake_ort.setattr(FakeSession, "fail_run", fail_run)
    path, _ = files["models"]["lenet"]
    card = read_card(path)
    lines = []
    session, provider = open_session(path, card, "auto", log=lines.append)
    assert provider == CPU and session.get_providers() == [CPU]
    assert "CPUExecutionProvider" in lines[-1] and re.search(why, lines[-1])
    with pytest.raises(InputError, match=f"Device 'cuda' was chosen but CUDA cannot run this model: .*{why}"):
        open_session(path, card, "cuda")


def test_onnxruntime_without_cuda(files, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    path, _ = files["models"]["cnn1d"]
    lines = []
    assert open_session(path, read_card(path), "auto", log=lines.append)[1] == CPU
    assert "has no CUDA provider" in lines[-1]
    with pytest.raises(InputError, match="install onnxruntime-gpu"):
        open_session(path, read_card(path), "cuda")
