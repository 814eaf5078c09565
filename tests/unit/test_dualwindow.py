"""Dual-window anomaly detector (zhang2021): ring geometry, equal to a brute-force torch computation across tiles
and nodata, a planted anomaly peaks, window sweep table, refusals without output, cancel."""

import csv
import json

import numpy as np
import pytest
import rasterio
import torch
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.evidence.stack import band_normalisation
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from deepprospect.models.dualwindow import (
    DUAL_WINDOW_TAG,
    PAPER_WINDOWS,
    dual_window_map,
    parse_windows,
    ring_offsets,
    sweep_windows,
)
from deepprospect.models.inference import predict_map
from deepprospect.models.onnx_io import export_onnx, make_card
from model_factory import evidence, write_model, write_stack

NAMES = ["Au", "As", "Cu"]
GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 23, 17, "EPSG:32650")  # 17 rows × 23 columns


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A z-scored 3-band stack with nodata cells, and a random-weight pixel-pair model (and a vector model)."""
    folder = tmp_path_factory.mktemp("dualwindow")
    stack, recipe = write_stack(str(folder / "clean.tif"), evidence(3, GRID), NAMES, GRID, normalise="z-score")
    stack = stack.astype(np.float32)
    stack[0, 4, 5] = np.nan
    stack[:, 10:12, 0:3] = np.nan
    stack[2, 16, 22] = np.nan
    path = str(folder / "stack.tif")
    write_geotiff(path, stack, GRID, NAMES, metadata={"DEEPPROSPECT_STACK": json.dumps(recipe)})
    model = write_model(str(folder / "pair.onnx"), "ppf_cnn1d", NAMES, 1, recipe, GRID)
    write_model(str(folder / "vector.onnx"), "cnn1d", NAMES, 1, recipe, GRID)
    return {"folder": folder, "stack": stack, "path": path, "model": model, "recipe": recipe}


def brute_force(model, stack: np.ndarray, inner: int, outer: int, stride: int = 1) -> np.ndarray:
    """D(T) cell by cell with torch: mean softmax class 1 of (T, ring cell) over ring cells on the stack with data."""
    _, rows, cols = stack.shape
    valid = ~np.isnan(stack).any(axis=0)
    out = np.full((rows, cols), np.nan)
    reach = outer // 2
    for r in range(rows):
        for c in range(cols):
            if not valid[r, c]:
                continue
            ring = [(r + dr, c + dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)
                    if max(abs(dr), abs(dc)) > inner // 2 and dr % stride == 0 and dc % stride == 0
                    and 0 <= r + dr < rows and 0 <= c + dc < cols and valid[r + dr, c + dc]]
            if not ring:
                continue
            pairs = np.stack([np.stack((stack[:, r, c], stack[:, i, j])) for i, j in ring]).astype(np.float32)
            with torch.no_grad():
                out[r, c] = torch.softmax(model(torch.from_numpy(pairs)).double(), 1)[:, 1].mean().item()
    return out


def read(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.tags(), src.descriptions


def test_ring_offsets_follow_the_paper_sketch_and_windows():
    assert len(ring_offsets(3, 5)) == 16  # zhang2021 Fig. 7: {T,1} … {T,16}
    assert len(ring_offsets(13, 35)) == 35 * 35 - 13 * 13 == 1056
    strided = ring_offsets(13, 35, 2)
    assert (strided % 2 == 0).all() and len(strided) == 17 * 17 - 7 * 7  # even offsets −16 … 16 beyond ±6
    assert set(map(tuple, strided)) == {(-a, -b) for a, b in strided}  # symmetric
    for bad in ((4, 7), (5, 5), (7, 5), (0, 3)):
        with pytest.raises(InputError, match="window"):
            ring_offsets(*bad)
    with pytest.raises(InputError, match="stride"):
        ring_offsets(3, 5, 3)
    assert parse_windows("5,7; 13,35\n9,35") == [(5, 7), (13, 35), (9, 35)]
    with pytest.raises(InputError, match="inner,outer"):
        parse_windows("5-7")


@pytest.mark.parametrize("inner,outer,stride,tile", [(3, 5, 1, 4), (1, 7, 1, 5), (3, 9, 2, 6)])
def test_map_equals_brute_force_across_tiles_and_nodata(files, tmp_path, inner, outer, stride, tile):
    out = str(tmp_path / "d.tif")
    lines = []
    report = dual_window_map(str(files["folder"] / "pair.onnx"), files["path"], out, inner=inner,
                             outer=outer, ring_stride=stride, tile_size=tile, batch_size=50, device="cpu",
                             log=lines.append)
    values, tags, names = read(out)
    expected = brute_force(files["model"], files["stack"], inner, outer, stride)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-4)
    assert np.nanstd(expected) > 0.01 and report.valid_cells == np.count_nonzero(~np.isnan(expected))
    assert names == ("dissimilarity",) and tags["DEEPPROSPECT_ALGORITHM"] == "dualwindow"
    assert json.loads(tags[DUAL_WINDOW_TAG])["ring_cells"] == report.ring_cells == len(ring_offsets(inner, outer,
                                                                                                       stride))
    assert any("pairs per cell" in line for line in lines)


class Difference(torch.nn.Module):
    """A pair "model" whose logit of dissimilar grows with the gap between the two cells' band 0."""

    input_kind, in_bands, patch_size = "pair", 3, 1

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(4.0))

    def forward(self, x):
        gap = (x[:, 0, 0] - x[:, 1, 0]).abs()
        return torch.stack((torch.zeros_like(gap), self.scale * gap - 4.0), dim=1)

    def input_shape(self, batch=1):
        return (batch, 2, 3)


def test_planted_anomaly_peaks(tmp_path):
    grid = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 15, 15, "EPSG:32650")
    raw = np.exp(0.05 * np.random.default_rng(0).standard_normal((3, 15, 15)))
    raw[0, 7, 7] = 30.0  # one cell unlike its homogeneous surroundings
    _, recipe = write_stack(str(tmp_path / "s.tif"), raw, NAMES, grid, normalise="z-score")
    card = make_card("ppf_cnn1d", NAMES, band_normalisation(recipe, NAMES), 1, (100.0, 100.0), grid.crs,
                     input_kind="pair")
    export_onnx(Difference(), str(tmp_path / "m.onnx"), card, 3, 1)
    report = dual_window_map(str(tmp_path / "m.onnx"), str(tmp_path / "s.tif"), str(tmp_path / "d.tif"), inner=3,
                             outer=7, tile_size=4, device="cpu")
    values, _, _ = read(str(tmp_path / "d.tif"))
    assert report.valid_cells == 225 and np.nanargmax(values) == 7 * 15 + 7
    assert values[7, 7] > 0.9 and np.median(values) < 0.3


def test_sweep_writes_an_auc_per_window_pair(files, tmp_path):
    table = str(tmp_path / "sweep.csv")
    deposits = np.array([[500000.0 + 100 * 6.5, 7000000.0 - 100 * 8.5], [500000.0 + 100 * 15.5, 7000000.0 - 250]])
    rows = sweep_windows(str(files["folder"] / "pair.onnx"), files["path"], deposits, table, [(3, 5), (1, 7)],
                         tile_size=8, device="cpu")
    with open(table, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(int(r["inner"]), int(r["outer"])) for r in written] == [(3, 5), (1, 7)]
    assert [int(r["ring_cells"]) for r in written] == [16, 48]
    assert all(0.0 <= float(r["auc"]) <= 1.0 and int(r["deposits"]) == 2 for r in written)
    assert [row["auc"] for row in rows] == pytest.approx([float(r["auc"]) for r in written])
    assert PAPER_WINDOWS[-1] == (13, 35)


def test_refusals_leave_no_output(files, tmp_path):
    out = tmp_path / "x.tif"
    with pytest.raises(InputError, match="not a pixel-pair model"):
        dual_window_map(str(files["folder"] / "vector.onnx"), files["path"], str(out), inner=3, outer=5, device="cpu")
    with pytest.raises(InputError, match="Dual-window anomaly"):
        predict_map(str(files["folder"] / "pair.onnx"), files["path"], str(out), device="cpu")
    other = str(tmp_path / "other.tif")
    write_stack(other, evidence(2, GRID), ["Au", "Zn"], GRID, normalise="z-score")
    with pytest.raises(InputError, match="lacks As, Cu"):
        dual_window_map(str(files["folder"] / "pair.onnx"), other, str(out), inner=3, outer=5, device="cpu")
    with pytest.raises(Cancelled):
        dual_window_map(str(files["folder"] / "pair.onnx"), files["path"], str(out), inner=3, outer=5, device="cpu",
                        tile_size=4, is_cancelled=lambda: True)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["other.tif"]
