"""Block labels (core.sampling.blocks through core.sampling.labels): counts checked by hand, unknown blocks,
barren-only negatives."""

import numpy as np
import pytest
from deepprospect.core.errors import InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.sampling.blocks import block_starts, blocks_holding
from deepprospect.core.sampling.labels import (
    LabelSettings,
    build_training_set,
    check_no_leakage,
    load_training_set,
    save_training_set,
)

# 12 × 12 cells of 10 m; deposits in cells (1, 1) and (9, 9).
GRID = GridSpec(0.0, 120.0, 10.0, 10.0, 12, 12, "EPSG:32650")
DEPOSITS = np.array([[15.0, 105.0], [95.0, 25.0]])
ALL_TRAIN = {"validation_fraction": 0.0, "test_fraction": 0.0}


@pytest.fixture(scope="module")
def stack():
    return np.random.default_rng(0).normal(size=(2, 12, 12)).astype(np.float32)


def build(stack, barren=None, barren_area=None, study_area=None, **kwargs):
    settings = LabelSettings(**{"patch_size": 4, "labelling": "blocks", "block_size": 4, **ALL_TRAIN, **kwargs})
    return build_training_set(stack, GRID, ["a", "b"], DEPOSITS, barren, study_area, settings,
                              barren_area=barren_area)


def block_of(ts):
    """(block row start, block col start) of every sample: its window's origin when the patch is the block."""
    return {tuple(rc) for rc in ts.window_rc.tolist()}


def test_block_starts_and_holding():
    assert block_starts(12, 4, 4).tolist() == [0, 4, 8]
    assert block_starts(12, 4, 2).tolist() == [0, 2, 4, 6, 8]  # block 10 would centre on row 12, off the grid
    assert block_starts(10, 4, 4).tolist() == [0, 4]  # rows 8, 9 lie in no block
    point, block = blocks_holding(np.array([[1, 1], [9, 9]]), 5, 5, 4, 2)
    # (1, 1) lies in block (0, 0) only; (9, 9) in blocks starting at 6 and 8 on both axes: (3|4, 3|4)
    assert sorted(zip(point.tolist(), block.tolist())) == [(0, 0), (1, 18), (1, 19), (1, 23), (1, 24)]


def test_side_by_side_blocks_all_negatives(stack):
    ts = build(stack)
    # 3 × 3 blocks; the ones at (0, 0) and (8, 8) hold the deposits, the other 7 are negatives
    assert ts.manifest["labelling"]["blocks"] == {"total": 9, "positive": 2, "negative": 7, "unknown": 0,
                                                  "unusable": 0, "dropped": 0}
    assert len(ts) == 9 and set(ts.kind) == {"block"} and (ts.repeat == -1).all()
    assert block_of(ts) == {(r, c) for r in (0, 4, 8) for c in (0, 4, 8)}
    positives = {tuple(rc) for rc in ts.window_rc[ts.y == 1].tolist()}
    assert positives == {(0, 0), (8, 8)}
    # the patch is the block: the window is the block's cells, x_vector its centre cell (start + 2)
    i = int(np.flatnonzero((ts.window_rc == [4, 8]).all(axis=1))[0])
    np.testing.assert_array_equal(ts.x_patch[i], stack[:, 4:8, 8:12])
    np.testing.assert_array_equal(ts.x_vector[i], stack[:, 6, 10])


def test_overlapping_blocks_counts(stack):
    ts = build(stack, block_stride=2)
    # 5 × 5 blocks; (1, 1) is in block (0, 0) only, (9, 9) in the 4 blocks starting at 6 or 8 on both axes
    blocks = ts.manifest["labelling"]["blocks"]
    assert blocks == {"total": 25, "positive": 5, "negative": 20, "unknown": 0, "unusable": 0, "dropped": 0}
    assert {tuple(rc) for rc in ts.window_rc[ts.y == 1].tolist()} == {(0, 0), (6, 6), (6, 8), (8, 6), (8, 8)}
    assert ts.manifest["labelling"]["block_stride"] == 2


def test_barren_only_negatives_and_unknown_blocks_never_sampled(stack):
    barren = np.array([[95.0, 65.0]])  # cell (5, 9): block (4, 8)
    area = np.zeros(GRID.shape, dtype=bool)
    area[8:12, 0:4] = True  # block (8, 0) wholly inside
    area[0:3, 8:12] = True  # block (0, 8) only partly inside: not verified
    ts = build(stack, barren=barren, barren_area=area, block_negatives="barren")
    assert ts.manifest["labelling"]["blocks"] == {"total": 9, "positive": 2, "negative": 2, "unknown": 5,
                                                  "unusable": 0, "dropped": 0}
    assert {tuple(rc) for rc in ts.window_rc[ts.y == 0].tolist()} == {(4, 8), (8, 0)}
    assert len(ts) == 4  # the 5 unknown blocks are not in the set
    assert ts.manifest["labelling"]["negatives"] == "barren"


def test_barren_only_negatives_need_barren_data(stack):
    with pytest.raises(InputError, match="barren points or barren areas"):
        build(stack, block_negatives="barren")


def test_exclusion_buffer_and_study_area_make_unknown_and_unusable(stack):
    area = np.ones(GRID.shape, dtype=bool)
    area[6, 6] = False  # centre of block (4, 4)
    ts = build(stack, study_area=area, exclusion_buffer=35.0)
    # centres (6, 10) and (10, 6) lie 31.6 m from deposit (9, 9): unknown; (4, 4) is unusable
    assert ts.manifest["labelling"]["blocks"] == {"total": 9, "positive": 2, "negative": 4, "unknown": 2,
                                                  "unusable": 1, "dropped": 0}
    assert not ({(4, 8), (8, 4), (4, 4)} & block_of(ts))


def test_spatial_split_without_leakage_and_manifest(stack, tmp_path):
    rng = np.random.default_rng(3)
    big = rng.normal(size=(2, 60, 60)).astype(np.float32)
    grid = GridSpec(0.0, 600.0, 10.0, 10.0, 60, 60, "EPSG:32650")
    xs = np.arange(105.0, 560.0, 150.0)
    deposits = np.array([(x + 2, y - 3) for x in xs for y in xs])
    settings = LabelSettings(patch_size=4, labelling="blocks", block_size=4, seed=7)
    ts = build_training_set(big, grid, ["a", "b"], deposits, settings=settings)
    again = build_training_set(big, grid, ["a", "b"], deposits, settings=settings)
    np.testing.assert_array_equal(ts.window_rc, again.window_rc)
    np.testing.assert_array_equal(ts.split, again.split)
    assert set(ts.split) == {"train", "validation", "test"}
    check_no_leakage(ts.window_rc, ts.split, 4)
    blocks = ts.manifest["labelling"]["blocks"]
    assert blocks["positive"] == 16 == int(ts.y.sum())
    assert blocks["negative"] == int((ts.y == 0).sum())
    assert sum(blocks[k] for k in ("positive", "negative", "unknown", "unusable", "dropped")) == blocks["total"] == 225
    assert ts.manifest["positive_radius"] is None and ts.manifest["labelling"]["mode"] == "blocks"
    path = str(tmp_path / "blocks.npz")
    save_training_set(path, ts)
    assert load_training_set(path).manifest["labelling"] == ts.manifest["labelling"]


def test_patch_smaller_than_block_is_its_centre(stack):
    ts = build(stack, block_size=6, patch_size=2)
    # blocks of 6 start at 0 and 6; patch 2 around centre cell start + 3 covers rows start + 2 … start + 3
    assert {tuple(rc) for rc in ts.window_rc.tolist()} == {(2, 2), (2, 8), (8, 2), (8, 8)}
    assert any("smaller than the block size" in note for note in ts.manifest["notes"])


def test_cells_mode_unchanged(stack):
    ts = build_training_set(stack, GRID, ["a", "b"], DEPOSITS, settings=LabelSettings(patch_size=4, **ALL_TRAIN))
    assert ts.manifest["labelling"] == {"mode": "cells"} and "block" not in set(ts.kind)


@pytest.mark.parametrize("kwargs", [{"labelling": "tiles"}, {"block_negatives": "none"}, {"block_size": 0},
                                    {"block_size": 4, "block_stride": 5}])
def test_bad_block_settings(kwargs):
    with pytest.raises(InputError):
        LabelSettings(**kwargs)
