"""Z_AUC screening core: the formulas by hand and against gao2022, ROC, selection, direction, seeds, bad input."""

import numpy as np
import pytest
import rasterio
from deepprospect.core.bands import ArrayBands, RasterBands
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.evidence.screening import (
    ScreeningSettings,
    auc_standard_error,
    plot_z_scores,
    screen_bands,
    svm_auc,
    z_auc,
)
from deepprospect.core.evidence.transforms import log10_positive
from deepprospect.core.grid import GridSpec
from deepprospect.core.gridding.idw import idw_grid
from deepprospect.core.raster_io import read_raster, write_band_subset, write_geotiff
from deepprospect.core.synthetic import make_survey
from scipy import ndimage
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

GRID = GridSpec(0.0, 6000.0, 100.0, 100.0, 60, 60, "EPSG:32650")


def test_s_auc_and_z_equal_a_hand_computation():
    # AUC 0.8, n_a 10, n_n 40: Q1 = 0.8/1.2 = 0.666667, Q2 = 2·0.64/1.8 = 0.711111,
    # S² = [0.16 + 9·(0.666667 − 0.64) + 39·(0.711111 − 0.64)] / 400 = (0.16 + 0.24 + 2.773333) / 400 = 0.00793333
    assert auc_standard_error(0.8, 10, 40) == pytest.approx(np.sqrt(0.0079333333), rel=1e-8)
    assert z_auc(0.8, 10, 40) == pytest.approx(0.3 / np.sqrt(0.0079333333), rel=1e-8)  # 3.368165
    # AUC 0.6, n_a 30, n_n 300: Q1 = 0.428571, Q2 = 0.45,
    # S² = [0.24 + 29·0.0685714 + 299·0.09] / 9000 = 29.1385714 / 9000 = 0.00323762
    assert auc_standard_error(0.6, 30, 300) == pytest.approx(np.sqrt(29.1385714 / 9000), rel=1e-7)
    assert z_auc(0.6, 30, 300) == pytest.approx(1.757467, abs=1e-6)
    assert z_auc(0.5, 30, 300) == 0.0
    np.testing.assert_allclose(z_auc([0.8, 0.6], [10, 30], [40, 300]), [3.368165, 1.757467], atol=1e-6)


def test_the_formulas_reproduce_the_gao2022_table():
    # gao2022 Table 1 (= gao2023 Table 2): element AUC and Z_AUC; the class sizes are not stated, 122 each fits
    # every row to the rounding of the printed AUC.
    table = {"Au": (0.6024, 2.8395), "Sn": (0.6065, 2.9595), "Ag": (0.6762, 5.1563), "Mn": (0.5573, 1.5617),
             "Zn": (0.5450, 1.2232), "Sb": (0.5942, 2.6017), "Hg": (0.6393, 3.9516), "W": (0.5778, 2.1341),
             "B": (0.5901, 2.4839), "Cu": (0.6311, 3.6977), "Ba": (0.6147, 3.2020), "Pb": (0.5778, 2.1341),
             "As": (0.5655, 1.7893), "Bi": (0.5901, 2.4839), "Mo": (0.5983, 2.7203), "F": (0.5696, 1.9037)}
    auc, z = np.array(list(table.values())).T
    np.testing.assert_allclose(z_auc(auc, 122, 122), z, atol=3e-3)
    selected = sorted(name for name, value in zip(table, z_auc(auc, 122, 122)) if value > 2.58)
    assert selected == sorted(["Au", "Sn", "Cu", "Ag", "Ba", "Sb", "Hg", "Mo"])  # the paper's eight


def halo_stack(seed=0, inverted=False):
    """Seeded bands on GRID: a Gaussian halo around 12 deposits (optionally a negative one), and noise."""
    rng = np.random.default_rng(seed)
    deposits = rng.uniform(500, 5500, (12, 2))
    centres = GRID.cell_centres().reshape(GRID.rows, GRID.cols, 2)
    distance = np.min(np.linalg.norm(centres[:, :, None, :] - deposits, axis=-1), axis=-1)
    halo = np.exp(-((distance / 400.0) ** 2)) * (-1 if inverted else 1)
    stack = np.stack([halo + 0.3 * rng.standard_normal(GRID.shape), rng.standard_normal(GRID.shape),
                      distance + 50 * rng.standard_normal(GRID.shape)])
    return stack, deposits, ["halo", "noise", "distance"]


def test_halo_is_selected_high_noise_is_not_and_distance_is_low():
    stack, deposits, names = halo_stack()
    result = screen_bands(stack, GRID, deposits, names)
    halo, noise, distance = result.scores
    assert halo.selected and halo.direction == "high" and halo.z > 2.58
    assert not noise.selected and noise.z < 2.58
    assert distance.selected and distance.direction == "low"
    assert result.selected == [0, 2]
    assert (halo.n_deposit, halo.n_background) == (12, 120)
    assert halo.p_value == pytest.approx(norm.sf(halo.z))


def test_inverted_halo_is_low_and_roc_auc_matches_sklearn():
    stack, deposits, names = halo_stack(seed=1, inverted=True)
    result = screen_bands(stack, GRID, deposits, names)
    cells = np.concatenate([result.deposit_cells, result.background_cells])
    labels = np.r_[np.ones(result.deposit_cells.size), np.zeros(result.background_cells.size)]
    for band, score in zip(stack, result.scores):
        raw = roc_auc_score(labels, band.ravel()[cells])
        assert score.roc_auc == pytest.approx(max(raw, 1 - raw), abs=1e-12)
        assert score.direction == ("high" if raw >= 0.5 else "low")
    assert result.scores[0].direction == "low" and result.scores[0].selected


def test_synthetic_survey_halo_elements_are_selected():
    survey = make_survey()
    grid = GridSpec.from_extent(*survey.bounds, 250, survey.crs)
    logged, _ = log10_positive(survey.values)
    stack = idw_grid(survey.sample_xy, logged, grid)
    result = screen_bands(stack, grid, survey.deposit_xy, survey.element_names, survey.barren_xy)
    selected = {survey.element_names[i] for i in result.selected}
    assert {"Au", "As", "Cu", "Sb"} <= selected
    assert not selected & {"Ni", "Cr", "K", "Ba", "Mn", "Pb", "Zn"}  # no deposit signal in these
    assert result.n_barren_cells == len(survey.barren_xy)


def test_same_seed_same_result_other_seed_other_background():
    stack, deposits, names = halo_stack()
    first = screen_bands(stack, GRID, deposits, names, settings=ScreeningSettings(seed=7))
    again = screen_bands(stack, GRID, deposits, names, settings=ScreeningSettings(seed=7), workers=1)
    other = screen_bands(stack, GRID, deposits, names, settings=ScreeningSettings(seed=8))
    assert first.scores == again.scores
    np.testing.assert_array_equal(first.background_cells, again.background_cells)
    assert not np.array_equal(first.background_cells, other.background_cells)


def test_svm_auc_is_cross_validated_so_noise_scores_near_half():
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    # A flexible RBF SVM scored on its own training cells would reach far above 0.5 on noise.
    assert abs(svm_auc(rng.standard_normal(330), labels) - 0.5) < 0.15
    assert svm_auc(np.where(labels, 3.0, 0.0) + rng.standard_normal(330), labels) > 0.9


def test_points_outside_on_nodata_and_shared_cells_are_reported_and_skipped():
    stack, deposits, names = halo_stack()
    stack[:, :10, :] = np.nan  # top 10 rows: nodata in every band
    stack[1, 50:, :] = np.nan  # bottom rows: nodata in the noise band only
    extra = np.array([[-500.0, 100.0], [300.0, 5950.0], deposits[0] + 1.0])
    barren = np.array([deposits[1], [3050.0, 3050.0], [3060.0, 3060.0]])
    result = screen_bands(stack, GRID, np.vstack([deposits, extra]), names, barren)
    notes = " ".join(result.notes)
    assert "1 deposit(s) outside" in notes and "deposit(s) on nodata" in notes and "share a cell" in notes
    assert "barren cell(s) also hold a deposit" in notes and "1 barren point(s) share a cell" in notes
    on_data = np.isfinite(stack[0]).ravel()
    assert on_data[result.deposit_cells].all() and on_data[result.background_cells].all()
    assert result.n_barren_cells == 1
    assert result.scores[1].n_deposit < result.scores[0].n_deposit and "noise: nodata at" in notes


def test_exclusion_distance_keeps_background_away_from_deposits():
    stack, deposits, names = halo_stack()
    result = screen_bands(stack, GRID, deposits, names, settings=ScreeningSettings(exclusion_distance=450.0))
    centres = GRID.cell_centres()
    gaps = np.linalg.norm(centres[result.background_cells][:, None] - centres[result.deposit_cells], axis=-1)
    assert gaps.min() > 450.0


def test_bad_input_is_refused_with_a_clear_message():
    stack, deposits, names = halo_stack()
    with pytest.raises(InputError, match="Only 1 deposit cell"):
        screen_bands(stack, GRID, deposits[:1], names)
    with pytest.raises(InputError, match=r"Only 0 deposit cell.* 12 deposit\(s\) outside the stack"):
        screen_bands(stack, GRID, deposits + 10000.0, names)
    with pytest.raises(InputError, match="non-deposit"):
        screen_bands(stack, GRID, deposits, names, settings=ScreeningSettings(background_ratio=0))
    with pytest.raises(InputError, match="band names"):
        screen_bands(stack, GRID, deposits, names[:2])
    with pytest.raises(InputError, match="at least 2 folds"):
        ScreeningSettings(folds=1)
    stack[2].ravel()[[int(c) for c in screen_bands(stack, GRID, deposits, names).deposit_cells[1:]]] = np.nan
    unscored = screen_bands(stack, GRID, deposits, names).scores[2]
    assert np.isnan(unscored.z) and not unscored.selected and unscored.direction == ""


def test_cancel_raises():
    stack, deposits, names = halo_stack()
    with pytest.raises(Cancelled):
        screen_bands(stack, GRID, deposits, names, is_cancelled=lambda: True)


def test_chart_and_band_subset(tmp_path):
    stack, deposits, names = halo_stack()
    result = screen_bands(stack, GRID, deposits, names)
    chart = tmp_path / "z.png"
    plot_z_scores(result, str(chart), 2.58)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    source, subset = str(tmp_path / "stack.tif"), str(tmp_path / "subset.tif")
    write_geotiff(source, stack, GRID, names, metadata={"RECIPE": "r"}, band_metadata=[{"K": n} for n in names])
    write_band_subset(source, subset, result.selected, metadata={"EXTRA": "1"}, band_metadata=[{"Z": "1"}] * 2)
    with rasterio.open(source) as src, rasterio.open(subset) as dst:
        assert dst.descriptions == ("halo", "distance") and dst.transform == src.transform
        assert dst.tags()["RECIPE"] == "r" and dst.tags()["EXTRA"] == "1"
        assert dst.tags(2)["K"] == "distance" and dst.tags(2)["Z"] == "1"
        np.testing.assert_array_equal(dst.read(2), src.read(3))


class RecordingBands(ArrayBands):
    """An array band source that records the windows read."""

    def __init__(self, array):
        super().__init__(array)
        self.windows = []

    def read(self, window):
        self.windows.append(window)
        return super().read(window)


@pytest.mark.parametrize("exclusion", [0.0, 450.0])
def test_a_stack_file_screened_window_by_window_gives_the_cells_and_scores_of_the_whole_array(tmp_path, exclusion):
    stack, deposits, names = halo_stack(seed=3)
    stack[:, 20:33, 14:41] = np.nan  # nodata across windows
    stack[1, :4] = np.nan
    barren = np.vstack([deposits[:2] + 250.0, [[2050.0, 3950.0], [99999.0, 0.0]]])
    path = str(tmp_path / "stack.tif")
    write_geotiff(path, stack, GRID, names)
    settings = ScreeningSettings(exclusion_distance=exclusion, background_ratio=4.0, seed=11)
    whole = screen_bands(read_raster(path)[0], GRID, deposits, names, barren, settings, workers=1)
    recording = RecordingBands(read_raster(path)[0])
    windowed = screen_bands(recording, GRID, deposits, names, barren, settings, workers=1, window=7)
    with RasterBands(path) as bands:
        from_file = screen_bands(bands, GRID, deposits, names, barren, settings, workers=1, window=16)
    for result in (windowed, from_file):
        np.testing.assert_array_equal(result.deposit_cells, whole.deposit_cells)
        np.testing.assert_array_equal(result.background_cells, whole.background_cells)
        assert result.notes == whole.notes and result.n_barren_cells == whole.n_barren_cells == 2
        assert repr(result.scores) == repr(whole.scores)
    assert max(window.width for window in recording.windows) <= 7
    assert max(window.height for window in recording.windows) <= 7


def test_the_background_drawn_window_by_window_is_the_old_whole_grid_draw():
    stack, deposits, names = halo_stack(seed=4)
    stack[:, 10:25, 5:50] = np.nan
    settings = ScreeningSettings(exclusion_distance=350.0, background_ratio=3.0, seed=5)
    result = screen_bands(stack, GRID, deposits, names, settings=settings, workers=1, window=9)
    # the draw of the whole-grid implementation: a seeded choice among the flat indices of the candidate cells
    away = np.ones(GRID.cell_count, dtype=bool)
    away[result.deposit_cells] = False
    distance = ndimage.distance_transform_edt(away.reshape(GRID.shape), sampling=(100.0, 100.0)).ravel()
    pool = np.isfinite(stack).any(axis=0).ravel() & (distance > 350.0)
    pool[result.deposit_cells] = False
    expected = np.random.default_rng(5).choice(np.flatnonzero(pool), size=3 * len(result.deposit_cells),
                                               replace=False)
    np.testing.assert_array_equal(result.background_cells, np.sort(expected))


def test_a_band_subset_of_a_tiled_stack_is_copied_block_by_block(tmp_path):
    grid = GridSpec(0.0, 30000.0, 100.0, 100.0, 300, 270, "EPSG:32650")
    bands = np.random.default_rng(6).normal(size=(3, 270, 300))
    bands[1, 100:120] = np.nan
    source, subset = str(tmp_path / "stack.tif"), str(tmp_path / "subset.tif")
    write_geotiff(source, bands, grid, ["a", "b", "c"])
    write_band_subset(source, subset, [2, 1])
    with rasterio.open(source) as src, rasterio.open(subset) as dst:
        assert dst.block_shapes == [(256, 256)] * 2 and dst.descriptions == ("c", "b")
        np.testing.assert_array_equal(dst.read(), src.read([3, 2]))
