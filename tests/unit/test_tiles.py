"""Tiled steps in this process and on a Dask cluster (2 worker processes): the same prediction, density,
distance and IDW maps and evidence stacks bit for bit, tiny tiles so that tile edges, halos and nodata cross
tiles, cancel without a file, and clear messages when dask is missing or the scheduler cannot be reached."""

import functools
import json
import operator
import os
import sys
import time

import numpy as np
import pytest
import rasterio
from deepprospect.core import tiles
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.evidence.stack import StackInput, build_evidence_stack_file
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding import density
from deepprospect.core.gridding.density import FeatureSet, density_tiles, distance_to_features, feature_density
from deepprospect.core.gridding.idw import IdwSettings, idw_blocks
from deepprospect.core.progress import check_cancelled
from deepprospect.core.raster_io import NODATA, grid_profile, write_geotiff
from deepprospect.core.tiles import SCHEDULER_ENV, Tile, grid_tiles, map_tiles, tile_members, write_tiles
from deepprospect.models.inference import predict_map
from model_factory import GRID, evidence, write_model, write_stack

NAMES = ["Au", "As", "Cu"]
FEATURE_GRID = GridSpec(0.0, 330.0, 10.0, 10.0, 41, 33, "EPSG:32650")
RADIUS = 35.0  # 3.5 cells: a density tile of 4 × 4 cells reaches features a tile or two away


def bits(values: np.ndarray) -> np.ndarray:
    """The float32 values as their bit patterns, so that equality means the same bits (and -0.0 ≠ 0.0)."""
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def read_file(path):
    with rasterio.open(path) as src:
        return src.read(1), src.tags(), src.descriptions


def read_all_bands(path):
    with rasterio.open(path) as src:
        return src.read(), src.tags(), src.descriptions


@pytest.fixture(autouse=True)
def no_scheduler_in_the_environment(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)


@pytest.fixture(scope="module")
def features():
    """Random polylines (some leaving the grid), points and a polygon with a hole, seeded."""
    rng = np.random.default_rng(3)
    geometries = [{"type": "LineString", "coordinates": (rng.uniform(-40, 450, 2)
                                                         + rng.normal(0, 30, (6, 2)).cumsum(axis=0)).tolist()}
                  for _ in range(9)]
    geometries.append({"type": "MultiPoint", "coordinates": rng.uniform(0, 400, (7, 2)).tolist()})
    ring = [[100, 60], [260, 80], [240, 230], [120, 210], [100, 60]]
    hole = [[150, 120], [200, 120], [200, 170], [150, 170], [150, 120]]
    geometries.append({"type": "Polygon", "coordinates": [ring, hole]})
    return FeatureSet.from_geojson(geometries, rng.uniform(0.5, 2.0, len(geometries)))


@pytest.fixture(scope="module")
def prediction_inputs(tmp_path_factory):
    """A z-scored 3-band stack on 40 × 50 cells with nodata across the edges of 7-cell tiles, and three models."""
    folder = tmp_path_factory.mktemp("tiles")
    stack, recipe = write_stack(str(folder / "clean.tif"), evidence(3), NAMES, normalise="z-score")
    stack[0, 6:8, 6:8] = np.nan  # a hole on the corner of four tiles
    stack[2, 13, 12:16] = np.nan
    stack[:, 20:23, 27:30] = np.nan
    path = str(folder / "stack.tif")
    write_geotiff(path, stack, GRID, NAMES, metadata={"DEEPPROSPECT_STACK": json.dumps(recipe)})
    models = {}
    for name, patch in (("lenet", 16), ("vgg8", 16), ("cnn1d", 1)):
        models[name] = str(folder / f"{name}.onnx")
        write_model(models[name], name, NAMES, patch, recipe)
    return path, models


# ------------------------------------------------------------------------------------------- the executor


def test_tiles_cover_the_grid_once_and_members_are_the_items_reaching_a_tile():
    cover = np.zeros((23, 30), int)
    for tile in grid_tiles(23, 30, 7):
        cover[tile.slices] += 1
    assert (cover == 1).all() and grid_tiles(23, 30, 7)[6] == Tile(7, 7, 7, 7)
    rng = np.random.default_rng(0)
    starts = rng.integers(-10, 35, (60, 2))
    ranges = np.column_stack([starts[:, 0], starts[:, 0] + rng.integers(0, 12, 60),
                              starts[:, 1], starts[:, 1] + rng.integers(0, 12, 60)])
    members = tile_members(ranges, 23, 30, 7)
    for index, tile in enumerate(grid_tiles(23, 30, 7)):
        reach = [i for i, (r0, r1, c0, c1) in enumerate(ranges)
                 if max(r0, tile.row) < min(r1, tile.row + 7, 23) and max(c0, tile.col) < min(c1, tile.col + 7, 30)]
        assert members(index).tolist() == reach


def test_tiles_written_in_any_order_make_one_file_with_nodata_and_a_failure_leaves_none(tmp_path):
    values = np.arange(2 * 23 * 30, dtype=np.float32).reshape(2, 23, 30)
    values[0, 5:12, 3:9] = np.nan  # nodata across tiles
    grid = GridSpec(0.0, 230.0, 10.0, 10.0, 30, 23, "EPSG:32650")
    pieces = [(tile, values[(slice(None), *tile.slices)]) for tile in grid_tiles(23, 30, 7)][::-1]
    out = tmp_path / "map.tif"
    valid = write_tiles(str(out), grid_profile(grid, 2), ["a", "b"], {"A": "1"}, pieces)
    assert valid == np.count_nonzero(~np.isnan(values))
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), np.where(np.isnan(values), NODATA, values))
        assert src.tags()["A"] == "1" and src.descriptions == ("a", "b")
    one_band = [(tile, values[0][tile.slices]) for tile in grid_tiles(23, 30, 5)]
    write_tiles(str(tmp_path / "one.tif"), grid_profile(grid), ["a"], {}, one_band)
    np.testing.assert_array_equal(read_file(tmp_path / "one.tif")[0], np.where(np.isnan(values[0]), NODATA, values[0]))
    pieces = one_band

    def failing():
        yield pieces[0]
        raise InputError("broken")

    with pytest.raises(InputError, match="broken"):
        write_tiles(str(tmp_path / "failed.tif"), grid_profile(grid), ["a"], {}, failing())
    assert sorted(os.listdir(tmp_path)) == ["map.tif", "one.tif"]


def test_an_address_without_dask_says_what_to_do_and_runs_without_it(monkeypatch, features):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails as if not installed
    with pytest.raises(InputError, match=rf"dask.distributed is not installed.*unset {SCHEDULER_ENV}"):
        feature_density(features, FEATURE_GRID, RADIUS, scheduler="tcp://127.0.0.1:8786")
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://127.0.0.1:8786")
    with pytest.raises(InputError, match=r"dask\.distributed is not installed"):
        feature_density(features, FEATURE_GRID, RADIUS)
    monkeypatch.setenv(SCHEDULER_ENV, " ")
    assert feature_density(features, FEATURE_GRID, RADIUS).max() > 0  # no address: in this process


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch, features):
    pytest.importorskip("distributed")
    monkeypatch.setattr(tiles, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(InputError, match=r"Cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        feature_density(features, FEATURE_GRID, RADIUS, scheduler="tcp://127.0.0.1:9")


def test_an_error_on_a_worker_reaches_the_caller_as_it_is(dask_scheduler):
    with pytest.raises(Cancelled):
        list(map_tiles(check_cancelled, [functools.partial(bool, 1)], 1, scheduler=dask_scheduler))
    assert [task.args for task, _ in map_tiles(check_cancelled, [functools.partial(bool, 0)] * 5, 5,
                                               scheduler=dask_scheduler)] == [(0,)] * 5


def test_shared_inputs_come_first_here_and_on_dask(dask_scheduler):
    """``shared`` (sent to each worker once on Dask) is the first argument of every task's call."""
    for scheduler in (None, dask_scheduler):
        done = map_tiles(operator.sub, range(5), 5, shared=np.arange(3) * 10, scheduler=scheduler)
        assert sorted((task, values.tolist()) for task, values in done) == [
            (task, [-task, 10 - task, 20 - task]) for task in range(5)]


# ----------------------------------------------------------------------------- same maps here and on Dask


@pytest.mark.parametrize("kernel", ["triangular", "uniform"])
def test_density_is_the_same_bits_for_any_tiles_here_or_on_dask(dask_scheduler, features, monkeypatch, kernel):
    monkeypatch.setattr(density, "POLYGON_BLOCK", 16)  # several polygon blocks, each crossing tiles
    whole = feature_density(features, FEATURE_GRID, RADIUS, kernel, tile_size=10_000)
    tiny = feature_density(features, FEATURE_GRID, RADIUS, kernel, tile_size=4)
    lines = []
    on_dask = feature_density(features, FEATURE_GRID, RADIUS, kernel, tile_size=4, scheduler=dask_scheduler,
                              log=lines.append)
    np.testing.assert_array_equal(bits(tiny), bits(whole))
    np.testing.assert_array_equal(bits(on_dask), bits(whole))
    assert whole.max() > 0 and (whole == 0).any() and any("2 worker(s)" in line for line in lines)


def test_distance_is_the_same_bits_for_any_tiles_here_or_on_dask(dask_scheduler, features):
    whole = distance_to_features(features, FEATURE_GRID, tile_size=10_000)
    tiny = distance_to_features(features, FEATURE_GRID, tile_size=5)
    on_dask = distance_to_features(features, FEATURE_GRID, tile_size=5, scheduler=dask_scheduler)
    np.testing.assert_array_equal(bits(tiny), bits(whole))
    np.testing.assert_array_equal(bits(on_dask), bits(whole))
    assert (whole == 0).any() and whole.max() > 20.0  # inside the polygon, and far from everything


def test_the_environment_variable_sends_tiles_to_dask(dask_scheduler, features, monkeypatch):
    here = feature_density(features, FEATURE_GRID, RADIUS, tile_size=6)
    monkeypatch.setenv(SCHEDULER_ENV, dask_scheduler)
    lines = []
    there = feature_density(features, FEATURE_GRID, RADIUS, tile_size=6, log=lines.append)
    assert any(dask_scheduler in line for line in lines)
    np.testing.assert_array_equal(bits(there), bits(here))


@pytest.mark.parametrize("name,options", [
    ("lenet", {"tile_size": 7}),  # fast scanning, halo of 15 cells across tiles
    ("vgg8", {"tile_size": 9, "stride": 2, "batch_size": 5}),
    ("cnn1d", {"tile_size": 7}),
    ("lenet", {"mode": "blocks"}),
])
def test_prediction_on_dask_is_the_in_process_map(dask_scheduler, prediction_inputs, tmp_path, name, options):
    stack, models = prediction_inputs
    area = np.zeros(GRID.shape, bool)
    area[2:37, 4:46] = True
    here_path, there_path = str(tmp_path / "here.tif"), str(tmp_path / "dask.tif")
    here = predict_map(models[name], stack, here_path, device="cpu", study_area=area, **options)
    lines = []
    there = predict_map(models[name], stack, there_path, device="cpu", study_area=area, scheduler=dask_scheduler,
                        log=lines.append, **options)
    a, a_tags, a_names = read_file(here_path)
    b, b_tags, b_names = read_file(there_path)
    np.testing.assert_array_equal(bits(b), bits(a))
    assert (a_tags, a_names) == (b_tags, b_names) and there.valid_cells == here.valid_cells
    assert (a == NODATA).any() and (a != NODATA).any()
    assert any("Dask cluster" in line for line in lines) and "Dask workers" in there.provider


def test_cancel_on_dask_cancels_the_tiles_and_leaves_no_file(dask_scheduler, prediction_inputs, features, tmp_path):
    import distributed

    stack, models = prediction_inputs
    calls = []

    def cancel_on_fourth():
        calls.append(1)
        return len(calls) >= 4

    with pytest.raises(Cancelled):
        predict_map(models["vgg8"], stack, str(tmp_path / "map.tif"), device="cpu", tile_size=5,
                    scheduler=dask_scheduler, is_cancelled=cancel_on_fourth)
    with pytest.raises(Cancelled):
        write_tiles(str(tmp_path / "density.tif"), grid_profile(FEATURE_GRID), ["density"], {},
                    density_tiles(features, FEATURE_GRID, RADIUS, tile_size=4, scheduler=dask_scheduler,
                                  is_cancelled=lambda: True))
    assert os.listdir(tmp_path) == []
    with distributed.Client(dask_scheduler, set_as_default=False) as client:
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0  # nothing left


@pytest.mark.parametrize("settings", [IdwSettings(max_points=6, radius=60.0, min_points=2),
                                      IdwSettings(max_points=0, radius=45.0, min_points=2),
                                      IdwSettings(power=2.5, max_points=0)])  # nearest; radius alone; all samples
def test_idw_on_dask_is_the_in_process_map(dask_scheduler, tmp_path, settings):
    rng = np.random.default_rng(21)
    points = rng.uniform([-20.0, -10.0], [420.0, 350.0], (60, 2))
    points[:3] = [[5.0, 325.0], [105.0, 205.0], [105.0, 205.0]]  # on pixel centres, two coincident
    values = rng.lognormal(0.0, 1.0, (60, 3))
    values[::4, 1] = np.nan  # a field with missing values: its own search
    lines, paths = [], []
    for scheduler in (None, dask_scheduler):
        paths.append(str(tmp_path / f"idw_{len(paths)}.tif"))
        blocks = idw_blocks(points, values, FEATURE_GRID, settings, block_side=6, scheduler=scheduler,
                            log=lines.append)
        write_tiles(paths[-1], grid_profile(FEATURE_GRID, len(NAMES)), NAMES, {}, blocks)
    (here, here_tags, here_names), (there, there_tags, there_names) = map(read_all_bands, paths)
    np.testing.assert_array_equal(bits(there), bits(here))
    assert (here_tags, here_names) == (there_tags, there_names) and any("2 worker(s)" in line for line in lines)
    assert (here[0] != NODATA).any() and (here[0] == NODATA).any() == bool(settings.radius)


def stack_inputs(folder):
    """Three element bands on the grid (a zero and a nodata cell), a coarser shifted raster and a categorical one
    with nodata, written to ``folder``."""
    rng = np.random.default_rng(22)
    coarse = GridSpec(FEATURE_GRID.x_min - 15.0, FEATURE_GRID.y_max + 15.0, 30.0, 30.0, 13, 16, FEATURE_GRID.crs)
    elements = rng.lognormal(0.0, 0.5, (3, *FEATURE_GRID.shape))
    elements[0, 0, :4] = 0.0
    elements[1, 9:11, 5:8] = np.nan
    geology = rng.choice([1.0, 2.0, 3.0, 4.0], (1, *coarse.shape), p=[0.5, 0.3, 0.18, 0.02])
    geology[0, 4, 4] = np.nan
    paths = [str(folder / f"{name}.tif") for name in ("elements", "faults", "geology")]
    write_geotiff(paths[0], elements, FEATURE_GRID, NAMES)
    write_geotiff(paths[1], rng.uniform(0, 5, (1, *coarse.shape)), coarse, ["faults"])
    write_geotiff(paths[2], geology, coarse, ["rock"])
    return [StackInput(paths[0], "elements"), StackInput(paths[1], "faults"),
            StackInput(paths[2], "geology", categorical=True)]


def test_the_evidence_stack_on_dask_is_the_in_process_file(dask_scheduler, tmp_path):
    inputs = stack_inputs(tmp_path)
    area = np.ones(FEATURE_GRID.shape, bool)
    area[30:, 20:] = False
    options = {"transform": "ilr", "normalise": "z-score", "study_area": area, "window": 5}
    lines, paths = [], []
    for scheduler in (None, dask_scheduler, None, dask_scheduler):
        paths.append(str(tmp_path / f"stack_{len(paths)}.tif"))
        build_evidence_stack_file(paths[-1], inputs, FEATURE_GRID, scheduler=scheduler, log=lines.append, **options)
        if len(paths) == 2:  # then the recipe of the first re-applied: the last pass only
            options = {"recipe": json.loads(read_all_bands(paths[0])[1]["DEEPPROSPECT_STACK"]), "window": 4}
    here, there, again_here, again_there = map(read_all_bands, paths)
    np.testing.assert_array_equal(bits(there[0]), bits(here[0]))
    np.testing.assert_array_equal(bits(again_there[0]), bits(again_here[0]))
    assert here[1:] == there[1:] and again_here[1:] == again_there[1:]
    assert (here[0] == NODATA).any() and (here[0] != NODATA).any() and len(here[2]) == 7
    assert sum("2 worker(s)" in line for line in lines) == 2
