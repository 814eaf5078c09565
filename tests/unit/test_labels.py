"""core.sampling.labels and core.sampling.augment: positives, negatives, split, leakage check, windows,
augmentation, files."""

import json

import numpy as np
import pytest
from deepprospect.core import memory
from deepprospect.core.bands import RasterBands
from deepprospect.core.errors import Cancelled, InputError, ResourceError
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from deepprospect.core.sampling import labels
from deepprospect.core.sampling.augment import AugmentSettings, crop_offsets, dihedral, smote_pairs
from deepprospect.core.sampling.labels import (
    ARRAYS,
    NO_WINDOW,
    SHARED,
    LabelSettings,
    build_training_set,
    cell_xy,
    check_no_leakage,
    disc_offsets,
    leaking_windows,
    load_training_set,
    point_cells,
    save_training_set,
    study_area_mask,
    valid_windows,
)
from deepprospect.core.sampling.nearest import DepositCells
from deepprospect.core.sampling.stored_arrays import StoredArray
from deepprospect.core.sampling.windows import WINDOW_FILL
from scipy import ndimage

GRID = GridSpec(0.0, 600.0, 10.0, 10.0, 60, 60, "EPSG:32650")


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 60, 60)).astype(np.float32)


def lattice_deposits(step=150.0):
    """Deposits on a lattice, far enough apart to be separate groups (cell centres + a small offset)."""
    xs = np.arange(105.0, 560.0, step)
    return np.array([(x + 2, y - 3) for x in xs for y in xs])


def build(stack, deposits=None, **kwargs):
    augment = kwargs.pop("augment", None)
    barren = kwargs.pop("barren", None)
    mask = kwargs.pop("study_area", None)
    settings = LabelSettings(**{"patch_size": 4, **kwargs})
    return build_training_set(stack, GRID, ["a", "b", "c"], lattice_deposits() if deposits is None else deposits,
                              barren, mask, settings, augment)


def cells(ts, kinds):
    rows = ts.window_rc[np.isin(ts.kind, kinds)] + ts.manifest["patch_size"] // 2
    return {tuple(rc) for rc in rows}


def test_default_radius_gives_3x3_and_2_5_cells_the_21_cell_disc(stack):
    assert len(disc_offsets(np.hypot(10, 10), 10, 10)) == 9
    disc = disc_offsets(25.0, 10, 10)
    assert len(disc) == 21 and (np.hypot(*disc.T) <= 2.5).all()
    ts = build(stack, deposits=np.array([[305.0, 295.0]]), validation_fraction=0, test_fraction=0)
    assert cells(ts, ["deposit"]) == {(30, 30)}
    assert cells(ts, ["deposit", "neighbour"]) == {(30 + i, 30 + j) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    ts = build(stack, deposits=np.array([[305.0, 295.0]]), positive_radius=25.0, validation_fraction=0,
               test_fraction=0)
    assert len(cells(ts, ["deposit", "neighbour"])) == 21


def test_counts_exclusion_buffer_and_repeats(stack):
    ts = build(stack, n_repeats=3, negative_ratio=2.0, exclusion_buffer=40.0)
    positives = int((ts.y == 1).sum())
    assert positives == 16 * 9 and ts.manifest["deposit_cells"] == 16
    assert (ts.repeat[ts.y == 1] == SHARED).all()
    dropped = sum(int(n.split()[0]) for n in ts.manifest["notes"] if "overlapped" in n)
    assert (ts.repeat == 0).sum() + (ts.repeat == 1).sum() + (ts.repeat == 2).sum() + dropped == 3 * 2 * positives
    assert [r["seed"] for r in ts.manifest["repeats"]] == [42, 43, 44]
    rows, cols, _ = point_cells(lattice_deposits(), GRID)
    deposit_xy = cell_xy(rows, cols, GRID)
    negative_xy = ts.centre_xy[ts.y == 0]
    gaps = np.hypot(*(negative_xy[:, None, :] - deposit_xy[None]).transpose(2, 0, 1))
    assert gaps.min() > 40.0
    counts = ts.manifest["counts"]
    assert sum(c["positive"] + c["negative"] for c in counts.values()) == len(ts)


def test_barren_points_become_negatives_and_conflicts_are_skipped(stack):
    barren = np.array([[205.0, 505.0], [455.0, 355.0], [117.0, 412.0]])  # the last is on a deposit's 3×3
    ts = build(stack, barren=barren, validation_fraction=0, test_fraction=0)
    assert cells(ts, ["barren"]) == {(9, 20), (24, 45)}
    assert (ts.y[ts.kind == "barren"] == 0).all() and (ts.repeat[ts.kind == "barren"] == SHARED).all()
    assert any("1 barren point(s) on a positive cell" in n for n in ts.manifest["notes"])


def test_split_has_no_leakage_and_keeps_deposit_neighbourhoods_together(stack):
    ts = build(stack, n_repeats=2, augment=AugmentSettings(positive_crops=3, positive_shift_x=1, positive_shift_y=2,
                                                           negative_crops=2, negative_shift_x=3, negative_shift_y=3))
    assert set(ts.split) == {"train", "validation", "test"}
    assert not leaking_windows(ts.window_rc, ts.split, 4).any()
    check_no_leakage(ts.window_rc, ts.split, 4)
    augmented = ~np.isin(ts.kind, ["deposit", "neighbour", "barren", "random"])
    assert (ts.split[augmented] == "train").all()
    for rc in ts.window_rc[ts.kind == "deposit"]:
        near = (np.abs(ts.window_rc - rc).max(axis=1) <= 1) & (ts.y == 1) & ~augmented
        assert len(set(ts.split[near])) == 1


def test_the_leakage_check_catches_a_constructed_overlap():
    window_rc = np.array([[0, 0], [3, 3], [4, 0], [10, 10]])
    split = np.array(["train", "validation", "test", "test"])
    assert leaking_windows(window_rc, split, 4).tolist() == [False, True, False, False]
    with pytest.raises(InputError, match="1 validation/test window"):
        check_no_leakage(window_rc, split, 4)


def test_positives_that_would_leak_stop_the_run(stack):
    with pytest.raises(InputError, match="overlap training positive windows"):
        build(stack, split_method="blocks", split_distance=100.0, patch_size=16)


def test_blocks_split_runs_without_leakage(stack):
    ts = build(stack, split_method="blocks", split_distance=150.0, patch_size=3)
    assert set(ts.split) == {"train", "validation", "test"}
    check_no_leakage(ts.window_rc, ts.split, 3)


def test_reproducible_for_a_seed_and_different_for_another(stack):
    augment = AugmentSettings(positive_crops=2, positive_shift_x=1, positive_shift_y=1, flips=True,
                              noise_variance=0.01, smote=True)
    one, two = build(stack, augment=augment, n_repeats=2), build(stack, augment=augment, n_repeats=2)
    for name in ("x_patch", "x_vector", "y", "split", "kind", "repeat", "window_rc"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    other = build(stack, augment=augment, n_repeats=2, seed=7)
    assert not np.array_equal(one.window_rc[one.kind == "random"], other.window_rc[other.kind == "random"])


def test_crop_shifts_count_and_range(stack):
    offsets = crop_offsets(40, 50, 12, 24, np.random.default_rng(1))
    assert offsets.shape == (40, 50, 2)
    assert (np.abs(offsets[..., 1]) <= 12).all() and (np.abs(offsets[..., 0]) <= 24).all()
    assert (np.abs(offsets).sum(axis=2) > 0).all()
    assert all(len({tuple(o) for o in sample}) == 50 for sample in offsets)
    with pytest.raises(InputError, match="distinct shifts"):
        AugmentSettings(positive_crops=9, positive_shift_x=1, positive_shift_y=0)
    ts = build(stack, validation_fraction=0, test_fraction=0,
               augment=AugmentSettings(positive_crops=5, positive_shift_x=2, positive_shift_y=3))
    crops = ts.window_rc[ts.kind == "crop"]
    dropped = sum(int(n.split()[0]) for n in ts.manifest["notes"] if "crop" in n)
    assert len(crops) + dropped == 5 * int(((ts.y == 1) & (ts.kind != "crop")).sum())
    originals = ts.window_rc[np.isin(ts.kind, ["deposit", "neighbour"])]
    shift = crops[:, None, :] - originals[None]
    fits = (np.abs(shift[..., 0]) <= 3) & (np.abs(shift[..., 1]) <= 2)
    assert fits.any(axis=1).all() and (ts.y[ts.kind == "crop"] == 1).all()


def test_flips_preserve_the_label_and_are_symmetries(stack):
    window = np.arange(2 * 16, dtype=np.float32).reshape(2, 4, 4)
    images = {dihedral(window, code).tobytes() for code in range(8)}
    assert len(images) == 8
    ts = build(stack, validation_fraction=0, test_fraction=0, augment=AugmentSettings(flips=True))
    flips = np.flatnonzero(ts.kind == "flip")
    originals = np.flatnonzero(np.isin(ts.kind, ["deposit", "neighbour", "random"]))
    assert len(flips) == len(originals)
    for f, o in zip(flips, originals):
        assert ts.y[f] == ts.y[o] and (ts.window_rc[f] == ts.window_rc[o]).all()
        assert any(np.array_equal(ts.x_patch[f], dihedral(ts.x_patch[o], c)) for c in range(1, 8))


def test_noise_copy_has_the_asked_variance(stack):
    ts = build(stack, validation_fraction=0, test_fraction=0, augment=AugmentSettings(noise_variance=0.01))
    noisy, plain = ts.x_patch[ts.kind == "noise"], ts.x_patch[np.isin(ts.kind, ["deposit", "neighbour", "random"])]
    assert noisy.dtype == np.float32 and abs(float((noisy - plain).var()) - 0.01) < 0.001


def test_smote_balances_the_classes(stack):
    ts = build(stack, n_repeats=2, negative_ratio=3.0, augment=AugmentSettings(smote=True))
    for r in (0, 1):
        members = (ts.split == "train") & np.isin(ts.repeat, [SHARED, r])
        assert (ts.y[members] == 1).sum() == (ts.y[members] == 0).sum()
    smote = ts.kind == "smote"
    assert smote.any() and (ts.y[smote] == 1).all() and np.isnan(ts.centre_xy[smote]).all()
    assert (ts.window_rc[smote] == NO_WINDOW).all()
    base, neighbour, gap = smote_pairs(np.arange(10.0).reshape(5, 2), 7, 2, np.random.default_rng(0))
    assert (base != neighbour).all() and ((gap >= 0) & (gap < 1)).all()


def test_round_trip(stack, tmp_path):
    ts = build(stack, augment=AugmentSettings(flips=True), n_repeats=2)
    path = tmp_path / "set.npz"
    save_training_set(str(path), ts)
    back = load_training_set(str(path))
    for name in ("x_patch", "x_vector", "y", "split", "kind", "repeat", "centre_xy", "window_rc"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ts, name))
    assert back.x_patch.dtype == np.float32 and back.x_patch.shape[1:] == (3, 4, 4)
    assert back.manifest == json.loads(json.dumps(ts.manifest))
    np.testing.assert_array_equal(back.x_vector, back.x_patch[:, :, 2, 2])
    assert [p.name for p in tmp_path.iterdir()] == ["set.npz"]
    vectors_only = load_training_set(str(path), patches=False)
    assert vectors_only.x_patch.shape == (len(ts), 0, 0, 0)
    np.testing.assert_array_equal(vectors_only.x_vector, ts.x_vector)


def test_windows_can_stay_in_the_file_and_be_read_by_rows(stack, tmp_path):
    ts = build(stack, augment=AugmentSettings(flips=True), n_repeats=2)
    path = tmp_path / "set.npz"
    save_training_set(str(path), ts)
    on_disk = load_training_set(str(path), on_disk=True)
    rng = np.random.default_rng(0)
    for name in ("x_patch", "x_vector"):
        stored, expected = getattr(on_disk, name), getattr(ts, name)
        assert isinstance(stored, StoredArray) and stored.shape == expected.shape and len(stored) == len(ts)
        rows = rng.permutation(len(ts))[:7]
        for index in (slice(None), slice(3, 11), slice(None, None, -2), rows, np.sort(rows), ts.split == "test",
                      np.array([], np.int64), -1, 5):
            np.testing.assert_array_equal(stored[index], expected[index])
        with pytest.raises(IndexError):
            stored[len(ts)]
        with pytest.raises(IndexError):
            stored[0, 0]
    for name in ("y", "split", "kind", "repeat", "centre_xy", "window_rc"):
        np.testing.assert_array_equal(getattr(on_disk, name), getattr(ts, name))
    assert on_disk.manifest == json.loads(json.dumps(ts.manifest))


def test_compressed_sets_written_before_stay_readable(stack, tmp_path):
    ts = build(stack)
    path = tmp_path / "old.npz"
    np.savez_compressed(path, manifest=np.array(json.dumps(ts.manifest)),
                        **{name: getattr(ts, name) for name in ("x_patch", "x_vector", "y", "split", "kind", "repeat",
                                                                "centre_xy", "window_rc")})
    for on_disk in (False, True):
        back = load_training_set(str(path), on_disk=on_disk)
        assert isinstance(back.x_patch, np.ndarray)  # a compressed member cannot be read in place: it is read whole
        np.testing.assert_array_equal(back.x_patch, ts.x_patch)
        np.testing.assert_array_equal(back.kind, ts.kind)


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_training_set(str(tmp_path / "none.npz"))
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(InputError, match="not a DeepProspect training set"):
        load_training_set(str(tmp_path / "other.npz"))


def test_complete_windows_are_found(stack):
    invalid = np.zeros((8, 8), bool)
    invalid[5, 5] = True
    for p in (3, 4):
        ok = valid_windows(invalid, p)
        for r in range(8):
            for c in range(8):
                r0, c0 = r - p // 2, c - p // 2
                inside = r0 >= 0 and c0 >= 0 and r0 + p <= 8 and c0 + p <= 8
                assert ok[r, c] == (inside and not invalid[max(r0, 0):r0 + p, max(c0, 0):c0 + p].any())


@pytest.mark.parametrize("patch", [4, 5])
def test_positives_at_the_edge_and_by_nodata_keep_padded_windows(stack, patch):
    holed = stack.copy()
    holed[1, 8, 11] = np.nan  # in the windows of the deposit at cell (10, 10), not on a positive
    ts = build(holed, deposits=np.array([[5.0, 595.0], [105.0, 495.0], [305.0, 295.0]]), validation_fraction=0,
               test_fraction=0, patch_size=patch, augment=AugmentSettings(flips=True))
    assert cells(ts, ["deposit", "neighbour"]) >= {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert int((ts.y == 1).sum()) == 2 * (4 + 9 + 9)  # every on-grid neighbour, once unflipped, once flipped
    assert ts.manifest["window_fill"] == WINDOW_FILL == 0.0
    assert not any("skipped" in n for n in ts.manifest["notes"])
    margin, h = patch, patch // 2
    padded = np.pad(holed, ((0, 0), (margin, margin), (margin, margin)), constant_values=np.nan)
    padded[np.isnan(padded)] = WINDOW_FILL
    originals = np.flatnonzero(ts.kind != "flip")
    for i in originals:
        r0, c0 = ts.window_rc[i] + margin
        np.testing.assert_array_equal(ts.x_patch[i], padded[:, r0:r0 + patch, c0:c0 + patch])
        np.testing.assert_array_equal(ts.x_vector[i], holed[:, ts.window_rc[i, 0] + h, ts.window_rc[i, 1] + h])
    assert (ts.window_rc[ts.kind == "deposit"] == [-h, -h]).all(axis=1).any()


def test_bad_deposits_are_reported_skipped_or_refused(stack):
    holed = stack.copy()
    holed[:, 30, 30] = np.nan
    deposits = np.array([[305.0, 295.0], [-50.0, 20.0], [155.0, 455.0], [156.0, 456.0]])
    ts = build(holed, deposits=deposits, validation_fraction=0, test_fraction=0)
    notes = " ".join(ts.manifest["notes"])
    assert "1 deposit(s) outside the stack grid" in notes and "1 deposit(s) on nodata" in notes
    assert "1 deposit(s) shared a cell" in notes and ts.manifest["deposit_cells"] == 1
    with pytest.raises(InputError, match="No deposit lies on valid stack data"):
        build(holed, deposits=np.array([[305.0, 295.0], [-50.0, 20.0]]))


def kolari_like(spacing=70.0, centre=(300.0, 300.0), n=17):
    """``n`` deposits packed in one cluster (the Kolari IOCG layout): a lattice ``spacing`` apart, cell centres."""
    side = int(np.ceil(np.sqrt(n)))
    offsets = np.array([(i, j) for i in range(side) for j in range(side)][:n]) * spacing
    return np.asarray(centre) + 5.0 + offsets - offsets.mean(axis=0).round(-1)


def test_one_cluster_is_regrouped_at_the_window_gap_instead_of_failing(stack):
    # 70 m apart (7 cells): one group at the automatic 113 m, but windows of 4 + 2 × 1 cells cannot overlap.
    ts = build(stack, deposits=kolari_like(), n_repeats=2)
    fallback = ts.manifest["split"]["fallback"]
    assert fallback["method_used"] == "groups" and fallback["dropped_splits"] == []
    assert "regrouped into 17 deposit groups" in fallback["steps"][0]
    assert "1 deposit groups" in fallback["reason"]
    assert any(n.startswith("Split fallback") for n in ts.manifest["notes"])
    assert set(ts.split) == {"train", "validation", "test"}
    check_no_leakage(ts.window_rc, ts.split, 4)


@pytest.mark.parametrize("deposits, dropped, splits", [
    (kolari_like(spacing=20.0), ["validation", "test"], {"train"}),  # one tight cluster: train only
    (np.vstack([kolari_like(spacing=20.0, n=9), kolari_like(spacing=20.0, n=8, centre=(100.0, 500.0))]),
     ["validation"], {"train", "test"}),
])
def test_too_few_groups_drop_validation_then_test(stack, deposits, dropped, splits):
    ts = build(stack, deposits=deposits, split_method="blocks")
    fallback = ts.manifest["split"]["fallback"]
    assert fallback["dropped_splits"] == dropped and set(ts.split) == splits
    assert fallback["fractions_used"]["validation"] == 0.0
    assert "training cannot stop early" in " ".join(ts.manifest["notes"])
    check_no_leakage(ts.window_rc, ts.split, 4)
    assert build(stack).manifest["split"]["fallback"] is None


@pytest.mark.parametrize("method", ["groups", "blocks"])
def test_every_split_holds_the_negative_ratio_for_clustered_deposits(stack, method):
    deposits = np.vstack([kolari_like(), kolari_like(spacing=70.0, n=4, centre=(100.0, 500.0))])
    barren = np.array([[55.0, 55.0], [555.0, 55.0], [55.0, 305.0], [305.0, 555.0], [545.0, 545.0]])
    ts = build(stack, deposits=deposits, barren=barren, n_repeats=2, negative_ratio=1.5, split_method=method,
               split_distance=0.0 if method == "groups" else 200.0)
    assert set(ts.split) == {"train", "validation", "test"}
    for r in (0, 1):
        for split in ("train", "validation", "test"):
            members = (ts.split == split) & np.isin(ts.repeat, [SHARED, r])
            positives, negatives = int((ts.y[members] == 1).sum()), int((ts.y[members] == 0).sum())
            assert negatives == round(1.5 * positives), (r, split, positives, negatives)
            drawn = ts.manifest["repeats"][r]["random_per_split"][split]
            assert drawn == negatives - int((members & (ts.kind == "barren")).sum())
    check_no_leakage(ts.window_rc, ts.split, 4)


def test_a_patch_larger_than_the_stack_is_refused(stack):
    with pytest.raises(InputError, match="larger than the stack"):
        build(stack, patch_size=61)


def test_study_area_with_holes(stack):
    square = {"type": "Polygon", "coordinates": [[(100, 100), (500, 100), (500, 500), (100, 500), (100, 100)]]}
    hole = {"type": "Polygon", "coordinates": [[(200, 200), (400, 200), (400, 400), (200, 400), (200, 200)]]}
    mask = study_area_mask([square], GRID, [hole])
    assert mask.sum() == 40 * 40 - 20 * 20 and not mask[30, 30] and mask[15, 15]
    ts = build(stack, study_area=mask, negative_ratio=3, validation_fraction=0, test_fraction=0)
    centres = ts.window_rc + 2
    assert mask[centres[:, 0], centres[:, 1]].all()
    as_bytes = build(stack, study_area=mask.astype(np.uint8), negative_ratio=3, validation_fraction=0, test_fraction=0)
    np.testing.assert_array_equal(as_bytes.window_rc, ts.window_rc)  # a 0/1 array is the same mask
    with pytest.raises(InputError, match="no polygons"):
        study_area_mask([], GRID)


def test_cancel_raises(stack):
    with pytest.raises(Cancelled):
        build_training_set(stack, GRID, ["a", "b", "c"], lattice_deposits(), settings=LabelSettings(patch_size=4),
                           is_cancelled=lambda: True)


def test_disc_keeps_cells_exactly_at_the_radius_despite_rounding():
    assert len(disc_offsets(2.9999999999, 1.0, 1.0)) == 29  # the ring at distance 3 (4 cells) is in
    assert len(disc_offsets(0.3, 0.1, 0.1)) == 29  # 0.3 // 0.1 == 2.0 in floating point


def test_a_split_without_negatives_is_refused_naming_the_parameter(stack):
    with pytest.raises(InputError, match=r"The train split would hold \d+ positive\(s\) and no negative.*raise the "
                                         "negative ratio"):
        build(stack, negative_ratio=0.0)
    with pytest.raises(InputError, match=r"no negative.*lower the exclusion buffer"):
        build(stack, exclusion_buffer=5000.0)  # every cell within the buffer of a deposit
    barren = np.array([[185.0, 185.0], [485.0, 335.0]])  # between the lattice deposits
    ts = build(stack, negative_ratio=0.0, barren=barren, validation_fraction=0, test_fraction=0)
    assert set(ts.split) == {"train"} and (ts.y == 0).sum() == 2  # barren points alone are enough


def test_a_stack_file_read_around_the_samples_gives_the_training_set_of_the_whole_array(stack, tmp_path):
    holed = stack.copy()
    holed[:, 20:26, 0:33] = np.nan
    path = str(tmp_path / "stack.tif")
    write_geotiff(path, holed, GRID, ["a", "b", "c"])
    augment = AugmentSettings(positive_crops=2, positive_shift_x=3, positive_shift_y=3, flips=True,
                              noise_variance=0.01, smote=True)
    settings = LabelSettings(patch_size=7, exclusion_buffer=25.0, negative_ratio=2.0)
    barren = np.array([[55.0, 45.0], [405.0, 155.0]])
    whole = build_training_set(holed, GRID, ["a", "b", "c"], lattice_deposits(), barren, None, settings, augment)
    with RasterBands(path) as bands:
        windowed = build_training_set(bands, GRID, ["a", "b", "c"], lattice_deposits(), barren, None, settings,
                                      augment)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(windowed, name), getattr(whole, name))
    assert windowed.manifest == whole.manifest and (whole.kind == "smote").any()
    assert (windowed.x_patch[:, :, 3, 3] != WINDOW_FILL).any() and (windowed.x_patch == WINDOW_FILL).any()


def test_the_grid_sized_sampling_is_refused_up_front_when_memory_is_short(stack, monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1000)
    with pytest.raises(ResourceError, match=r"Sampling on 60 × 60 cells would need about .*larger cells or a smaller"):
        build(stack, exclusion_buffer=20.0)


@pytest.mark.parametrize("pixel", [0.3, 0.1, 0.00025, 7.5])
def test_a_cell_exactly_one_buffer_away_is_excluded_wherever_it_lies(pixel, monkeypatch):
    """The buffer is decided on integer offsets times the pixel size, as the distance transform does; the tree's
    own distances (differences of rounded coordinates) let some cells at exactly the buffer through."""
    monkeypatch.setattr(labels, "_BAND_CELLS", 64)
    grid = GridSpec(0.0, 60 * pixel, pixel, pixel, 7, 60, "EPSG:32650")
    deposit_rc = np.array([[r, c] for r in range(2, 58, 5) for c in (1, 3, 5)])
    away = np.ones(grid.shape, dtype=bool)
    away[deposit_rc[:, 0], deposit_rc[:, 1]] = False
    no_positives = labels._Samples.make([], [], 1, 0, "block", labels.SHARED)
    for cells in (1, 2):
        buffer = cells * pixel
        expected = ndimage.distance_transform_edt(away, sampling=(pixel, pixel)) > buffer
        found = labels._negative_candidates(grid, np.ones(grid.shape, dtype=bool), no_positives, deposit_rc, buffer)
        np.testing.assert_array_equal(found, expected)


def test_the_exactly_nearest_deposit_decides_the_buffer_when_the_tree_picks_another():
    """0.3 × 0.1 pixels: from cell (20, 42) one deposit is one column away (0.3 exactly) and another three rows
    away (0.30000000000000004 as the tree computes it); the cell is within the buffer, as the distance transform
    says, whichever the tree reports as nearest."""
    grid = GridSpec(500000.0, 7000000.0, 0.3, 0.1, 60, 60, "EPSG:32650")
    deposit_rc = np.array([[20, 43], [23, 42]])
    away = np.ones(grid.shape, dtype=bool)
    away[deposit_rc[:, 0], deposit_rc[:, 1]] = False
    expected = ndimage.distance_transform_edt(away, sampling=(0.1, 0.3)) > 0.3
    no_positives = labels._Samples.make([], [], 1, 0, "block", labels.SHARED)
    found = labels._negative_candidates(grid, np.ones(grid.shape, dtype=bool), no_positives, deposit_rc, 0.3)
    assert not found[20, 42]
    np.testing.assert_array_equal(found, expected)
    assert DepositCells(np.empty((0, 2)), grid).beyond(np.array([[0, 0]]), np.inf).all()  # no deposit: all away
    assert not DepositCells(deposit_rc, grid).beyond(np.array([[0, 0]]), np.inf).any()


def test_grid_wide_searches_a_band_of_rows_at_a_time_equal_the_whole_grid(monkeypatch):
    """Nearest deposits (split regions, exclusion buffer) and random draws work in bands of rows; with bands of 37
    cells (partial rows) they give what the whole-grid forms give: the distance transform's distances, and the
    listed cells of a mask."""
    monkeypatch.setattr(labels, "_BAND_CELLS", 37)
    rng = np.random.default_rng(5)
    grid = GridSpec(0.0, 23 * 7.5, 10.0, 7.5, 29, 23, "EPSG:32650")
    deposit_rc = np.unique(np.column_stack([rng.integers(0, 23, 9), rng.integers(0, 29, 9)]), axis=0)
    split = rng.integers(0, 3, len(deposit_rc)).astype(np.int8)
    away = np.ones(grid.shape, dtype=bool)
    away[deposit_rc[:, 0], deposit_rc[:, 1]] = False
    expected = ndimage.distance_transform_edt(away, sampling=(7.5, 10.0))
    region = labels._nearest_deposit_region(deposit_rc, split, grid)
    seen = np.zeros(grid.shape, dtype=int)
    deposits = DepositCells(deposit_rc, grid)
    for rows, cells in labels._band_cells(grid):
        seen[rows] += 1
        distance, index = deposits.nearest(cells)
        np.testing.assert_allclose(distance.reshape(-1, grid.cols), expected[rows], rtol=1e-12)
        np.testing.assert_array_equal(region[rows], split[index].reshape(-1, grid.cols))
    assert (seen == 1).all() and set(np.unique(region)) == set(split)
    mask = rng.random(grid.shape) < 0.3
    pool = labels._CellPool(mask[rows] for rows in labels._row_bands(grid.shape))
    positions = rng.permutation(pool.size)[:50]
    assert pool.size == mask.sum()
    np.testing.assert_array_equal(pool.cells(positions), np.flatnonzero(mask)[positions])
