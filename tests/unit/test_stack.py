"""Evidence stack core: alignment, common mask, log-ratio transforms, normalisation and the recipe."""

import json
import os

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.evidence.stack import (
    STACK_TAG,
    ZERO_REPLACEMENT_FRACTION,
    StackInput,
    align_raster,
    apply_stack_recipe,
    band_normalisation,
    build_evidence_stack,
    build_evidence_stack_file,
    make_stack,
    normalisation_differences,
    pivot_basis,
    read_stack_recipe,
    stack_band_names,
    write_evidence_stack,
)
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import read_raster, write_geotiff
from rasterio.warp import Resampling, reproject, transform

CRS = "EPSG:32650"
COARSE = GridSpec(500000.0, 3300400.0, 100.0, 100.0, 4, 4, CRS)


def composition(rng, parts=5, cells=(6, 7)):
    return rng.lognormal(2.0, 1.0, (parts, *cells))


def write(tmp_path, name, bands, grid, names=None, nodata=-9999.0, dtype="float32"):
    path = str(tmp_path / f"{name}.tif")
    write_geotiff(path, np.asarray(bands, dtype=float), grid, names or [f"{name}{i}" for i in range(len(bands))],
                  nodata=nodata, dtype=dtype)
    return path


def bilinear(values, grid, x, y):
    """Bilinear interpolation between the four source pixel centres around (x, y), by hand."""
    col = (x - grid.x_min) / grid.pixel_width - 0.5
    row = (grid.y_max - y) / grid.pixel_height - 0.5
    c0, r0 = int(np.floor(col)), int(np.floor(row))
    fc, fr = col - c0, row - r0
    top = values[r0, c0] * (1 - fc) + values[r0, c0 + 1] * fc
    bottom = values[r0 + 1, c0] * (1 - fc) + values[r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def test_coarser_shifted_raster_is_resampled_bilinearly(tmp_path):
    values = np.random.default_rng(0).uniform(0, 100, (4, 4))
    path = write(tmp_path, "coarse", [values], COARSE)
    template = GridSpec(500060.0, 3300340.0, 40.0, 40.0, 6, 6, CRS)  # finer, offset from the source lattice
    aligned = align_raster(path, template)
    assert aligned.shape == (1, 6, 6)
    xs, ys = template.x_centres(), template.y_centres()
    for r in range(6):
        for c in range(6):
            assert aligned[0, r, c] == pytest.approx(bilinear(values, COARSE, xs[c], ys[r]), rel=1e-5)


def test_half_pixel_shift_averages_four_neighbours(tmp_path):
    values = np.random.default_rng(1).uniform(0, 100, (4, 4))
    path = write(tmp_path, "src", [values], COARSE)
    shifted = GridSpec(500050.0, 3300350.0, 100.0, 100.0, 3, 3, CRS)
    aligned = align_raster(path, shifted)[0]
    expected = (values[:-1, :-1] + values[1:, :-1] + values[:-1, 1:] + values[1:, 1:]) / 4
    np.testing.assert_allclose(aligned, expected, rtol=1e-5)


def test_categorical_raster_keeps_class_values_by_nearest(tmp_path):
    classes = np.random.default_rng(2).choice([1, 2, 7], (4, 4))
    path = write(tmp_path, "geology", [classes], COARSE, nodata=255, dtype="uint8")
    template = GridSpec(500010.0, 3300390.0, 30.0, 30.0, 12, 12, CRS)
    aligned = align_raster(path, template, categorical=True)[0]
    rows = ((COARSE.y_max - template.y_centres()) // 100).astype(int)
    cols = ((template.x_centres() - COARSE.x_min) // 100).astype(int)
    np.testing.assert_array_equal(aligned, classes[np.ix_(rows, cols)])
    assert set(np.unique(aligned)) <= {1, 2, 7}


def test_reprojection_is_logged_and_cells_outside_the_raster_are_nodata(tmp_path):
    values = np.full((1, 4, 4), 5.0)
    other = GridSpec(COARSE.x_min - 1_000_000 + 1e-6, COARSE.y_max, 100, 100, 4, 4, CRS)
    path = write(tmp_path, "moved", values, other)
    with pytest.raises(InputError, match=r"'moved'.*does not overlap the template"):
        align_raster(path, COARSE, name="moved")
    template = GridSpec(500000.0, 3304000.0, 200.0, 200.0, 40, 40, CRS)
    (x,), (y,) = transform(CRS, "EPSG:32651", [504000.0], [3300000.0])  # the template's centre, next UTM zone
    utm51 = GridSpec(round(x) - 3000.0, round(y) + 3000.0, 100.0, 100.0, 60, 60, "EPSG:32651")
    path = write(tmp_path, "zone51", np.full((1, 60, 60), 5.0), utm51)
    messages = []
    aligned = align_raster(path, template, name="zone51", log=messages.append)
    assert any("'zone51' is in EPSG:32651; reprojected" in m for m in messages)
    assert np.nanmin(aligned) == pytest.approx(5.0) and np.nanmax(aligned) == pytest.approx(5.0)
    assert np.isnan(aligned).any() and (~np.isnan(aligned)).any()


def test_raster_with_only_nodata_on_the_template_is_refused(tmp_path):
    path = write(tmp_path, "empty", np.full((1, 4, 4), np.nan), COARSE)
    with pytest.raises(InputError, match="no valid cell"):
        align_raster(path, COARSE, name="empty")


def test_band_names_are_derived_and_made_unique():
    messages = []
    names = stack_band_names([["Cu", "Au"], ["", ""], ["Cu"]], ["idw", "faults", "other"], messages.append)
    assert names == [["Cu", "Au"], ["faults_b1", "faults_b2"], ["Cu_2"]]
    assert any("'faults' has bands without a name" in m for m in messages)
    assert any("'Cu'" in m and "'Cu_2'" in m for m in messages)


def test_common_mask_makes_a_cell_missing_in_any_band_missing_in_all():
    rng = np.random.default_rng(3)
    bands = composition(rng, 3)
    bands[1, 2, 3] = np.nan
    bands[2, 0, 0] = np.nan
    stack, _, _ = make_stack(bands, ["a", "b", "c"], normalise="z-score")
    assert np.isnan(stack[:, 2, 3]).all() and np.isnan(stack[:, 0, 0]).all()
    assert np.isnan(stack).sum() == 2 * 3


def test_clr_rows_sum_to_zero_and_bands_are_named_after_elements():
    bands = composition(np.random.default_rng(4), 5)
    stack, names, recipe = make_stack(bands, ["Cu", "Pb", "Zn", "Au", "As"], transform="clr")
    assert names == ["clr_Cu", "clr_Pb", "clr_Zn", "clr_Au", "clr_As"]
    np.testing.assert_allclose(stack.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(stack[0], np.log(bands[0]) - np.log(bands).mean(axis=0))
    assert recipe["transform"]["bands"] == ["Cu", "Pb", "Zn", "Au", "As"]


def test_pivot_basis_is_orthonormal_and_follows_the_pivot_formula():
    d = 6
    basis = pivot_basis(d)
    np.testing.assert_allclose(basis @ basis.T, np.eye(d - 1), atol=1e-12)
    np.testing.assert_allclose(basis.sum(axis=1), 0.0, atol=1e-12)
    x = np.random.default_rng(5).lognormal(0, 1, d)
    for i in range(1, d):  # 1-based as in the formula
        gmean = np.exp(np.log(x[i:]).mean())
        expected = np.sqrt((d - i) / (d - i + 1)) * np.log(x[i - 1] / gmean)
        assert basis[i - 1] @ np.log(x) == pytest.approx(expected)


def test_ilr_is_isometric_and_invertible():
    rng = np.random.default_rng(6)
    bands = composition(rng, 5, (1, 40))
    names = ["Cu", "Pb", "Zn", "Au", "As"]
    stack, out_names, recipe = make_stack(bands, names, transform="ilr")
    assert out_names == ["ilr1", "ilr2", "ilr3", "ilr4"] and recipe["transform"]["bands"] == names
    z = stack[:, 0, :].T  # (cells, D-1)
    clr = np.log(bands[:, 0, :].T)
    clr -= clr.mean(axis=1, keepdims=True)
    ilr_distance = np.linalg.norm(z[:, None] - z[None], axis=-1)
    aitchison = np.linalg.norm(clr[:, None] - clr[None], axis=-1)
    np.testing.assert_allclose(ilr_distance, aitchison, atol=1e-10)
    back = np.exp(z @ pivot_basis(5))
    closure = bands[:, 0, :].T / bands[:, 0, :].T.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(back / back.sum(axis=1, keepdims=True), closure, rtol=1e-10)


def test_transform_group_takes_the_place_of_its_first_band_and_follows_the_given_order():
    rng = np.random.default_rng(7)
    bands = np.concatenate([rng.uniform(0, 1, (1, 6, 7)), composition(rng, 3), rng.choice([1.0, 2.0], (1, 6, 7))])
    stack, names, recipe = make_stack(bands, ["dist", "Cu", "Pb", "Zn", "rock"], categorical=["rock"],
                                      transform="ilr", transform_bands=["Zn", "Cu", "Pb"])
    assert names == ["dist", "ilr1", "ilr2", "rock_1", "rock_2"]
    assert recipe["transform"]["bands"] == ["Zn", "Cu", "Pb"]
    assert stack[1] == pytest.approx(np.sqrt(2 / 3) * np.log(bands[3] / np.sqrt(bands[1] * bands[2])))
    np.testing.assert_array_equal(stack[0], bands[0])
    np.testing.assert_array_equal(stack[3], bands[4] == 1.0)


def test_default_transform_bands_are_the_continuous_ones():
    rng = np.random.default_rng(8)
    bands = np.concatenate([composition(rng, 2), rng.choice([1.0, 2.0], (1, 6, 7))])
    stack, names, _ = make_stack(bands, ["Cu", "Pb", "rock"], categorical=["rock"], transform="log10")
    assert names == ["log10_Cu", "log10_Pb", "rock_1", "rock_2"]
    np.testing.assert_allclose(stack[:2], np.log10(bands[:2]))


def test_zero_and_negative_values_are_replaced_before_log_ratios():
    bands = composition(np.random.default_rng(9), 3)
    bands[0, 0, :3] = [0.0, -1.0, 0.0]
    smallest = bands[0][bands[0] > 0].min()
    messages = []
    stack, _, recipe = make_stack(bands, ["Cu", "Pb", "Zn"], transform="clr", log=messages.append)
    replacement = ZERO_REPLACEMENT_FRACTION * smallest
    assert recipe["transform"]["replacement"]["Cu"] == pytest.approx(replacement)
    assert any("'Cu': 3 value(s) ≤ 0 replaced" in m for m in messages)
    logs = np.log([replacement, bands[1, 0, 0], bands[2, 0, 0]])
    assert stack[0, 0, 0] == pytest.approx(logs[0] - logs.mean())
    bands[2] = 0.0
    with pytest.raises(InputError, match="'Zn' has no positive value"):
        make_stack(bands, ["Cu", "Pb", "Zn"], transform="clr")


def test_z_score_gives_mean_0_and_std_1_over_valid_cells_and_min_max_gives_0_to_1():
    rng = np.random.default_rng(10)
    bands = np.concatenate([composition(rng, 2, (30, 30)), rng.choice([3.0, 4.0], (1, 30, 30))])
    bands[0, :5] = np.nan
    stack, _, recipe = make_stack(bands, ["Cu", "Pb", "rock"], categorical=["rock"], normalise="z-score")
    valid = ~np.isnan(stack[0])
    assert valid.sum() == 25 * 30
    for band in stack[:2]:
        assert band[valid].mean() == pytest.approx(0.0, abs=1e-12)
        assert band[valid].std() == pytest.approx(1.0)
    np.testing.assert_array_equal(stack[2][valid], bands[2][valid] == 3.0)  # indicator bands are not normalised
    assert set(recipe["normalise"]["statistics"]) == {"Cu", "Pb"}
    stack, _, _ = make_stack(bands, ["Cu", "Pb", "rock"], categorical=["rock"], normalise="min-max")
    assert np.nanmin(stack[:2], axis=(1, 2)) == pytest.approx([0, 0])
    assert np.nanmax(stack[:2], axis=(1, 2)) == pytest.approx([1, 1])


def test_constant_band_is_shifted_not_divided_by_zero():
    bands = np.stack([np.full((4, 4), 3.0), np.arange(16.0).reshape(4, 4)])
    messages = []
    stack, _, _ = make_stack(bands, ["flat", "ramp"], normalise="z-score", log=messages.append)
    np.testing.assert_array_equal(stack[0], 0.0)
    assert any("'flat' is constant" in m for m in messages)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"transform": "clr", "transform_bands": ["Cu", "Ni"]}, "Transform band.*Ni.*Available bands: Cu, Pb, rock"),
    ({"transform": "ilr", "transform_bands": ["Cu"]}, "ilr transform needs at least 2 bands"),
    ({"transform": "clr", "transform_bands": ["Cu", "rock"]}, "rock are categorical"),
    ({"transform": "sqrt"}, "Unknown transform"),
    ({"normalise": "robust"}, "Unknown normalisation"),
])
def test_bad_transform_settings_are_refused_with_a_clear_message(kwargs, message):
    bands = composition(np.random.default_rng(11), 3)
    with pytest.raises(InputError, match=message):
        make_stack(bands, ["Cu", "Pb", "rock"], categorical=["rock"], **kwargs)


def test_no_common_valid_cell_is_refused():
    bands = composition(np.random.default_rng(12), 2)
    bands[0, :3] = np.nan
    bands[1, 3:] = np.nan
    with pytest.raises(InputError, match="No cell has a value in every band"):
        make_stack(bands, ["Cu", "Pb"])


def geology(rng, counts, shape=(20, 10)):
    """A categorical band holding each class ``count`` times (shuffled) in a ``shape`` grid."""
    codes = np.concatenate([np.full(count, float(value)) for value, count in counts.items()])
    return rng.permutation(codes).reshape(1, *shape)


def test_common_classes_get_an_indicator_band_and_rare_ones_go_to_other():
    rng = np.random.default_rng(20)
    classes = geology(rng, {585: 120, 81641: 59, 5: 11, 12: 4, 7: 3, 9: 2, -1: 1})
    classes[classes == -1] = np.nan  # nodata: 199 valid cells, so 12 covers 2.01 %, 7 1.5 %, 9 1.0 %
    bands = np.concatenate([composition(rng, 1, (20, 10)), classes])
    messages = []
    for normalise in ("z-score", "min-max"):
        stack, names, recipe = make_stack(bands, ["Cu", "geo"], categorical=["geo"], normalise=normalise,
                                          min_class_share=0.02, log=messages.append)
        assert names == ["Cu", "geo_5", "geo_12", "geo_585", "geo_81641", "geo_other"]
        assert recipe["indicators"] == {"geo": {"classes": [5, 12, 585, 81641], "other_classes": [7, 9]}}
        assert set(recipe["normalise"]["statistics"]) == {"Cu"}  # indicator bands are neither scaled nor shifted
        valid = ~np.isnan(classes[0])
        assert (np.isnan(stack) == ~valid).all()  # the categorical raster's nodata stays nodata
        indicators = stack[1:, valid]
        assert set(np.unique(indicators)) == {0.0, 1.0}
        np.testing.assert_array_equal(indicators.sum(axis=0), 1.0)  # every valid cell is in exactly one band
        for band, value in zip(stack[1:5], [5, 12, 585, 81641]):
            np.testing.assert_array_equal(band[valid], classes[0][valid] == value)
        np.testing.assert_array_equal(stack[5][valid], np.isin(classes[0][valid], [7, 9]))
    assert any("'geo': 6 class(es)" in m and "2 rarer class(es)" in m and "geo_other" in m for m in messages)
    _, names, recipe = make_stack(bands, ["Cu", "geo"], categorical=["geo"], min_class_share=0.0)
    assert names[-1] == "geo_81641" and recipe["indicators"]["geo"]["other_classes"] == []  # no empty other band


def test_indicator_recipe_gives_the_same_bands_on_a_new_area_with_other_classes():
    rng = np.random.default_rng(21)
    train = np.concatenate([composition(rng, 1, (10, 10)), geology(rng, {1: 49, 2: 49, 3: 1, 4: 1}, (10, 10))])
    _, names, recipe = make_stack(train, ["Cu", "geo"], categorical=["geo"], normalise="z-score")
    assert names == ["Cu", "geo_1", "geo_2", "geo_other"]
    recipe = json.loads(json.dumps(recipe))  # as read back from the stack's tag
    new = np.concatenate([composition(rng, 1, (10, 10)), geology(rng, {1: 70, 3: 15, 8: 15}, (10, 10))])  # 8 unseen
    messages = []
    stack, again = apply_stack_recipe(new, ["Cu", "geo"], recipe, log=messages.append)
    assert again == names
    np.testing.assert_array_equal(stack[1], new[1] == 1)
    np.testing.assert_array_equal(stack[2], 0.0)  # a training class absent here: an all-zero band
    np.testing.assert_array_equal(stack[3], np.isin(new[1], [3, 8]))  # rare in training or unseen: other
    assert any("class(es) 8 did not occur where the recipe was made; they go to geo_other" in m for m in messages)
    _, _, common_only = make_stack(train, ["Cu", "geo"], categorical=["geo"], min_class_share=0.0)
    stack, _ = apply_stack_recipe(new, ["Cu", "geo"], common_only, log=messages.append)
    assert stack[1:, new[1] == 8].sum() == 0 and "are 0 in every indicator band" in messages[-1]


def test_indicator_bands_are_part_of_the_normalisation_contract():
    rng = np.random.default_rng(22)
    bands = np.concatenate([composition(rng, 1), geology(rng, {1: 20, 2: 20, 3: 2}, (6, 7))])
    _, names, recipe = make_stack(bands, ["Cu", "geo"], categorical=["geo"], normalise="z-score",
                                  min_class_share=0.1)
    extract = band_normalisation(recipe, names)
    assert extract["indicators"] == {"geo_1": {"band": "geo", "class": 1}, "geo_2": {"band": "geo", "class": 2},
                                     "geo_other": {"band": "geo", "other_than": [1, 2]}}
    assert "indicators" not in band_normalisation(recipe, ["Cu"])  # extracts stored before indicators still match
    _, _, fewer = make_stack(bands, ["Cu", "geo"], categorical=["geo"], normalise="z-score", min_class_share=0.5)
    differences = normalisation_differences(band_normalisation(recipe, ["geo_other"]),
                                            band_normalisation(fewer, ["geo_other"]))
    assert len(differences) == 1 and differences[0].startswith("indicator bands")


@pytest.mark.parametrize(("kwargs", "names", "message"), [
    ({"min_class_share": 1.5}, ["Cu", "geo"], "minimum class share must be between 0 and 1"),
    ({}, ["geo_1", "geo"], r"Band name\(s\) geo_1 would be given twice"),
])
def test_bad_categorical_settings_are_refused(kwargs, names, message):
    bands = np.concatenate([composition(np.random.default_rng(23), 1), np.ones((1, 6, 7))])
    with pytest.raises(InputError, match=message):
        make_stack(bands, names, categorical=["geo"], **kwargs)


def inputs_on_disk(tmp_path):
    """An element raster (3 bands), an unnamed continuous raster and a categorical one, on different grids."""
    rng = np.random.default_rng(13)
    elements = composition(rng, 3, (20, 20))
    elements[0, 0, :4] = 0.0
    elements[1, 5, 5] = np.nan
    fine = GridSpec(500000.0, 3302000.0, 100.0, 100.0, 20, 20, CRS)
    coarse = GridSpec(499900.0, 3302100.0, 300.0, 300.0, 8, 8, CRS)
    paths = [write(tmp_path, "elements", elements, fine, ["Cu", "Pb", "Zn"]),
             write(tmp_path, "faults", rng.uniform(0, 5, (1, 8, 8)), coarse, [""]),
             write(tmp_path, "geology", rng.choice([1, 2, 3], (1, 8, 8)), coarse, ["rock"], nodata=0,
                   dtype="uint8")]
    inputs = [StackInput(paths[0], "elements"), StackInput(paths[1], "faults"),
              StackInput(paths[2], "geology", categorical=True)]
    return inputs, fine


def test_recipe_round_trip_reproduces_the_written_stack(tmp_path):
    inputs, grid = inputs_on_disk(tmp_path)
    progress = []
    stack, names, recipe = build_evidence_stack(inputs, grid, transform="ilr", transform_bands=["Cu", "Pb", "Zn"],
                                                normalise="z-score", progress=progress.append)
    assert names == ["ilr1", "ilr2", "faults_b1", "rock_1", "rock_2", "rock_3"] and progress[-1] == 95.0
    out = str(tmp_path / "stack.tif")
    write_evidence_stack(out, stack, grid, names, recipe)
    written, written_grid, written_names = read_raster(out)
    assert written_names == names and written_grid.geotransform == grid.geotransform
    assert np.isnan(written[:, 5, 5]).all()  # one nodata cell of Pb is nodata in every band
    with rasterio.open(out) as src:
        assert json.loads(src.tags()[STACK_TAG]) == recipe
    stored = read_stack_recipe(out)
    raw = np.concatenate([
        read_raster(inputs[0].path)[0],
        build_evidence_stack(inputs[1:2], grid)[0],
        align_raster(inputs[2].path, grid, categorical=True),
    ])
    raw_names = ["Cu", "Pb", "Zn", "faults_b1", "rock"]
    again, again_names = apply_stack_recipe(raw[::-1], raw_names[::-1], stored)  # bands are matched by name
    assert again_names == names
    np.testing.assert_allclose(written, again, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_a_study_area_leaves_outside_cells_nodata_and_out_of_every_statistic(tmp_path):
    inputs, grid = inputs_on_disk(tmp_path)
    inside = np.zeros(grid.shape, dtype=bool)
    inside[2:15, 3:12] = True
    messages = []
    stack, _, recipe = build_evidence_stack(inputs, grid, normalise="z-score", min_class_share=0.1,
                                            study_area=inside, log=messages.append)
    raw = np.concatenate([align_raster(item.path, grid, categorical=item.categorical) for item in inputs])
    valid = inside & ~np.isnan(raw).any(axis=0)
    assert (np.isnan(stack) == ~valid).all()
    for index, name in enumerate(["Cu", "Pb", "Zn", "faults_b1"]):
        assert recipe["normalise"]["statistics"][name] == pytest.approx(
            {"mean": raw[index][valid].mean(), "std": raw[index][valid].std()})
    classes, counts = np.unique(raw[4][valid], return_counts=True)
    assert recipe["indicators"]["rock"]["classes"] == [int(c) for c in classes[counts >= 0.1 * valid.sum()]]
    assert any(f"{inside.sum()} of 400 cells lie inside the study area" in m for m in messages)
    with pytest.raises(InputError, match="No cell inside the study area has a value"):
        build_evidence_stack(inputs, grid, study_area=np.isnan(raw[1]))  # only where Pb is nodata
    with pytest.raises(InputError, match="does not match the grid"):
        build_evidence_stack(inputs, grid, study_area=inside[1:])


def test_recipe_reuses_the_recorded_statistics_on_new_data():
    rng = np.random.default_rng(14)
    train = composition(rng, 2)
    _, _, recipe = make_stack(train, ["Cu", "Pb"], transform="log10", normalise="z-score")
    new = composition(rng, 2) * 10
    stack, _ = apply_stack_recipe(new, ["Cu", "Pb"], recipe)
    stats = recipe["normalise"]["statistics"]["log10_Cu"]
    np.testing.assert_allclose(stack[0], (np.log10(new[0]) - stats["mean"]) / stats["std"])
    with pytest.raises(InputError, match=r"lacks the band.*Pb"):
        apply_stack_recipe(new[:1], ["Cu"], recipe)


def test_reading_a_recipe_from_a_plain_raster_is_refused(tmp_path):
    path = write(tmp_path, "plain", np.ones((1, 4, 4)), COARSE)
    with pytest.raises(InputError, match="not a DeepProspect evidence stack"):
        read_stack_recipe(path)
    with pytest.raises(InputError, match="Not an evidence-stack recipe"):
        apply_stack_recipe(np.ones((1, 4, 4)), ["a"], {"transform": {"method": "none"}})


def test_no_inputs_unreadable_inputs_and_cancel_are_refused(tmp_path):
    inputs, grid = inputs_on_disk(tmp_path)
    with pytest.raises(InputError, match="No input rasters"):
        build_evidence_stack([], grid)
    (tmp_path / "junk.tif").write_text("not a raster")
    with pytest.raises(InputError, match="Cannot open the raster 'junk'"):
        build_evidence_stack([StackInput(str(tmp_path / "junk.tif"), "junk")], grid)
    with pytest.raises(InputError, match="not in the stack: Ni"):  # checked before aligning (and cancelling)
        build_evidence_stack(inputs, grid, transform="clr", transform_bands=["Cu", "Ni"], is_cancelled=lambda: True)
    with pytest.raises(Cancelled):
        build_evidence_stack(inputs, grid, is_cancelled=lambda: True)


def test_log_ratio_of_grids_already_in_log10_is_refused(tmp_path):
    grid = GridSpec(500000.0, 3302000.0, 100.0, 100.0, 7, 6, CRS)
    logged = str(tmp_path / "logged.tif")
    write_geotiff(logged, np.log10(composition(np.random.default_rng(3), 3)), grid, ["Cu", "Pb", "Zn"],
                  metadata={"VALUE_TRANSFORM": "log10"})
    for method in ("log10", "clr", "ilr"):
        with pytest.raises(InputError, match="Cu, Pb, Zn: already log10 values"):
            build_evidence_stack([StackInput(logged, "elements")], grid, transform=method)
    stack, names, _ = build_evidence_stack([StackInput(logged, "elements")], grid, normalise="z-score")
    assert names == ["Cu", "Pb", "Zn"] and np.isfinite(stack).all()


def test_the_reach_of_each_input_is_recorded_under_its_own_band_names(tmp_path):
    grid = GridSpec(500000.0, 3302000.0, 100.0, 100.0, 7, 6, CRS)
    rng = np.random.default_rng(15)
    paths = []
    for name, tags in (("Cu", {"IDW_RADIUS": "5000"}), ("Pb", {}), ("faults", {"RADIUS": "800"})):
        paths.append(str(tmp_path / f"{name}.tif"))
        write_geotiff(paths[-1], composition(rng, 1, grid.shape), grid, [name], metadata=tags)
    inputs = [StackInput(path, name) for path, name in zip(paths, ["Cu", "Pb", "faults"])]
    _, names, recipe = build_evidence_stack(inputs, grid, transform="ilr", transform_bands=["Cu", "Pb", "faults"])
    assert names == ["ilr1", "ilr2"] and recipe["evidence_reach"] == {"Cu": 5000.0, "faults": 800.0}


def test_band_normalisation_keeps_only_what_the_listed_bands_depend_on():
    rng = np.random.default_rng(4)
    raw = rng.uniform(1, 50, size=(3, 6, 6))
    _, names, recipe = make_stack(raw, ["Au", "Cu", "Zn"], transform="log10", transform_bands=["Au", "Cu"],
                                  normalise="z-score")
    assert names == ["log10_Au", "log10_Cu", "Zn"]
    au_only = band_normalisation(recipe, ["log10_Au"])
    assert au_only["transform"]["bands"] == ["Au"] and list(au_only["transform"]["replacement"]) == ["Au"]
    assert list(au_only["statistics"]) == ["log10_Au"] and au_only["normalise"] == "z-score"
    zn_only = band_normalisation(recipe, ["Zn"])
    assert zn_only["transform"] == {"method": "none"}
    # A stack rebuilt with an extra band still matches for the bands the model uses.
    _, _, wider = make_stack(np.concatenate([raw, raw[:1] * 2]), ["Au", "Cu", "Zn", "Pb"], transform="log10",
                             transform_bands=["Au", "Cu", "Pb"], normalise="z-score")
    assert normalisation_differences(au_only, band_normalisation(wider, ["log10_Au"])) == []
    # Other statistics, another method or raw values are reported band by band.
    _, _, minmax = make_stack(raw, ["Au", "Cu", "Zn"], transform="log10", transform_bands=["Au", "Cu"],
                              normalise="min-max")
    differences = normalisation_differences(au_only, band_normalisation(minmax, ["log10_Au"]))
    assert any("normalisation method" in d for d in differences)
    assert any("statistics of 'log10_Au'" in d for d in differences)
    raw_values = band_normalisation(None, ["log10_Au"])
    assert raw_values["transform"] == {"method": "none"} and raw_values["statistics"] == {}
    assert any(d.startswith("transform") for d in normalisation_differences(au_only, raw_values))


def test_how_the_input_grids_were_made_is_part_of_the_extract():
    raw = np.random.default_rng(6).uniform(1, 50, size=(3, 5, 5))
    _, _, recipe = make_stack(raw, ["Au", "Cu", "dist"], transform="clr", transform_bands=["Au", "Cu"])
    assert "value_transforms" not in band_normalisation(recipe, ["clr_Au"])  # recipes from before the record
    recipe["input_value_transforms"] = {"Au": "log10", "Cu": "none", "dist": "none"}
    extract = band_normalisation(recipe, ["clr_Au", "dist"])
    assert extract["value_transforms"] == {"Au": "log10", "Cu": "none", "dist": "none"}
    other = {**recipe, "input_value_transforms": {"Au": "none", "Cu": "none", "dist": "none"}}
    assert normalisation_differences(extract, band_normalisation(other, ["clr_Au", "dist"])) == [
        'input grids (log10 or raw): model {"Au": "log10", "Cu": "none", "dist": "none"}, '
        'stack {"Au": "none", "Cu": "none", "dist": "none"}']


def test_ilr_bands_depend_on_every_part():
    raw = np.random.default_rng(5).uniform(1, 50, size=(3, 5, 5))
    _, _, recipe = make_stack(raw, ["Au", "Cu", "Zn"], transform="ilr")
    extract = band_normalisation(recipe, ["ilr2"])
    assert extract["transform"]["bands"] == ["Au", "Cu", "Zn"]
    _, _, rebuilt = make_stack(raw.copy(), ["Au", "Cu", "Zn"], transform="ilr")
    assert normalisation_differences(extract, band_normalisation(rebuilt, ["ilr2"])) == []
    _, _, reordered = make_stack(raw, ["Au", "Cu", "Zn"], transform="ilr", transform_bands=["Zn", "Cu", "Au"])
    assert normalisation_differences(extract, band_normalisation(reordered, ["ilr2"]))


def inputs_across_windows(tmp_path):
    """Inputs whose nodata and edges cross small windows: elements with a nodata block and zeros on the template
    grid, a coarser continuous raster, a coarser categorical one with nodata, and a raster on the template's
    lattice that covers only part of the grid (read without warping)."""
    rng = np.random.default_rng(31)
    grid = GridSpec(500000.0, 3302000.0, 100.0, 100.0, 23, 19, CRS)
    elements = composition(rng, 3, grid.shape)
    elements[:2, 4:10, 2:9] = np.nan
    elements[0, 0, :4] = 0.0
    coarse = GridSpec(499900.0, 3302100.0, 300.0, 300.0, 9, 8, CRS)
    classes = rng.choice([1, 2, 3, 4], (1, 8, 9), p=[0.5, 0.3, 0.17, 0.03])
    classes[0, 5, 2:4] = 0
    part = GridSpec(grid.x_min + 300.0, grid.y_max + 200.0, 100.0, 100.0, 18, 19, CRS)
    paths = [write(tmp_path, "elements", elements, grid, ["Cu", "Pb", "Zn"]),
             write(tmp_path, "faults", rng.uniform(0, 5, (1, 8, 9)), coarse, ["faults"]),
             write(tmp_path, "geology", classes, coarse, ["rock"], nodata=0, dtype="uint8"),
             write(tmp_path, "part", np.where(np.arange(19 * 18).reshape(1, 19, 18) == 5 * 18 + 7, np.nan,
                                              rng.uniform(1, 2, (1, 19, 18))), part, ["part"])]
    inside = np.zeros(grid.shape, dtype=bool)
    inside[1:17, 2:21] = True
    inside[6:9, 10:14] = False
    inputs = [StackInput(paths[0], "elements"), StackInput(paths[1], "faults"),
              StackInput(paths[2], "geology", categorical=True), StackInput(paths[3], "part")]
    return inputs, grid, inside


@pytest.mark.parametrize(("transform", "normalise", "window"), [
    ("none", "z-score", 3), ("none", "min-max", 7), ("ilr", "z-score", 4), ("log10", "min-max", 5),
    ("clr", "none", 3), ("ilr", "z-score", 512)])
def test_stack_written_window_by_window_equals_the_stack_built_in_memory(tmp_path, transform, normalise, window):
    inputs, grid, inside = inputs_across_windows(tmp_path)
    options = {"transform": transform, "normalise": normalise, "min_class_share": 0.05, "study_area": inside,
               "transform_bands": ["Zn", "Cu", "Pb"] if transform != "none" else None}
    in_memory, windowed = [], []
    stack, names, recipe = build_evidence_stack(inputs, grid, log=in_memory.append, **options)
    reference = str(tmp_path / "in_memory.tif")
    write_evidence_stack(reference, stack, grid, names, recipe)
    out = str(tmp_path / "windowed.tif")
    progress = []
    written_names, written_recipe = build_evidence_stack_file(out, inputs, grid, window=window,
                                                              log=windowed.append, progress=progress.append,
                                                              **options)
    expected, _, _ = read_raster(reference)
    written, written_grid, names_in_file = read_raster(out)
    assert written_names == names_in_file == names and written_grid.geotransform == grid.geotransform
    assert np.isnan(written).any() and (np.isnan(written) == np.isnan(expected)).all()
    np.testing.assert_allclose(written, expected, rtol=2e-7, atol=1e-6, equal_nan=True)  # float32 rounding
    assert read_stack_recipe(out) == written_recipe
    assert {key: value for key, value in written_recipe.items() if key != "normalise"} == {
        key: value for key, value in recipe.items() if key != "normalise"}
    assert normalisation_differences(band_normalisation(recipe, names), band_normalisation(written_recipe, names),
                                     rel_tol=1e-12) == []
    assert windowed == in_memory  # the same notes: valid cells, study area, zero replacement, classes
    assert progress == sorted(progress) and progress[-1] == 100.0


def test_a_recipe_re_applied_window_by_window_equals_the_in_memory_one(tmp_path):
    inputs, grid, inside = inputs_across_windows(tmp_path)
    _, _, recipe = build_evidence_stack(inputs, grid, transform="ilr", transform_bands=["Cu", "Pb", "Zn"],
                                        normalise="z-score", min_class_share=0.2)  # classes 3 and 4 go to other
    new_classes = np.random.default_rng(32).choice([1, 2, 5], (1, 8, 9))  # 5 never seen, 3 and 4 absent
    coarse = GridSpec(499900.0, 3302100.0, 300.0, 300.0, 9, 8, CRS)
    new_inputs = [*inputs[:2], StackInput(write(tmp_path, "new_geology", new_classes, coarse, ["rock"], nodata=0,
                                                dtype="uint8"), "geology", categorical=True), inputs[3]]
    in_memory, windowed = [], []
    stack, names, _ = build_evidence_stack(new_inputs, grid, recipe=recipe, study_area=inside, log=in_memory.append)
    out = str(tmp_path / "reapplied.tif")
    written_names, written_recipe = build_evidence_stack_file(out, new_inputs, grid, recipe=recipe, window=4,
                                                              study_area=inside, log=windowed.append)
    assert written_names == names and written_recipe == recipe == read_stack_recipe(out)
    np.testing.assert_allclose(read_raster(out)[0], stack, rtol=2e-7, atol=1e-6, equal_nan=True)
    assert sorted(windowed) == sorted(in_memory)
    assert any("class(es) 5 did not occur where the recipe was made; they go to rock_other" in m for m in windowed)


def test_a_raster_on_the_template_lattice_is_read_as_is_and_off_its_extent_is_nodata(tmp_path):
    inputs, grid, _ = inputs_across_windows(tmp_path)
    values = read_raster(inputs[3].path)[0][0]
    assert np.isnan(values[5, 7])
    aligned = align_raster(inputs[3].path, grid)[0]
    expected = np.full(grid.shape, np.nan)
    expected[:17, 3:21] = values[2:]  # the raster starts 3 columns right of and 2 rows above the grid
    np.testing.assert_array_equal(aligned, expected)
    warped = np.full(grid.shape, np.nan)  # what warping gives: the same values, to rounding
    with rasterio.open(inputs[3].path) as src:
        reproject(rasterio.band(src, 1), warped, src_nodata=src.nodata, dst_crs=CRS, dst_nodata=np.nan,
                  dst_transform=rasterio.transform.Affine(100.0, 0.0, grid.x_min, 0.0, -100.0, grid.y_max),
                  resampling=Resampling.bilinear)
    np.testing.assert_allclose(aligned, warped, rtol=1e-12, equal_nan=True)


def test_a_reprojected_raster_is_warped_window_by_window_as_on_the_whole_grid(tmp_path):
    (x,), (y,) = transform(CRS, "EPSG:32651", [501200.0], [3302800.0])
    utm51 = GridSpec(round(x) - 2000.0, round(y) + 2000.0, 150.0, 150.0, 27, 27, "EPSG:32651")
    values = np.random.default_rng(33).uniform(0, 100, (27, 27))
    path = write(tmp_path, "zone51", values[None], utm51)
    out = str(tmp_path / "stack.tif")
    finer = GridSpec(500400.0, 3303600.0, 100.0, 100.0, 16, 16, CRS)  # upsampled: plain bilinear, by hand
    build_evidence_stack_file(out, [StackInput(path, "zone51")], finer, window=5)
    written = read_raster(out)[0][0]
    rows, cols = np.nonzero(~np.isnan(written))
    assert len(rows) > 0.9 * written.size
    source_x, source_y = transform(CRS, "EPSG:32651", finer.x_centres()[cols], finer.y_centres()[rows])
    for r, c, sx, sy in zip(rows, cols, source_x, source_y):
        assert written[r, c] == pytest.approx(bilinear(values, utm51, sx, sy), rel=1e-4)
    # Coarser pixels: GDAL widens the bilinear kernel by one scale for the whole grid, not one per window.
    coarser = GridSpec(499000.0, 3305000.0, 200.0, 200.0, 20, 20, CRS)  # the raster covers part of it
    build_evidence_stack_file(out, [StackInput(path, "zone51")], coarser, window=3)
    whole = align_raster(path, coarser)
    assert 0.05 < np.isnan(whole).mean() < 0.5
    np.testing.assert_allclose(read_raster(out)[0], whole, rtol=0, atol=0.02, equal_nan=True)  # values 0-100


def test_a_windowed_stack_refuses_what_the_in_memory_one_refuses_and_leaves_no_file(tmp_path):
    inputs, grid, inside = inputs_across_windows(tmp_path)
    out = tmp_path / "out" / "stack.tif"
    out.parent.mkdir()
    empty = write(tmp_path, "empty", np.full((1, 4, 4), np.nan), GridSpec(500000.0, 3302000.0, 100.0, 100.0, 4, 4,
                                                                             CRS), ["empty"])
    cases = [({"inputs": [*inputs, StackInput(empty, "empty")]}, Cancelled, "Cancelled", True),
             ({"inputs": [*inputs, StackInput(empty, "empty")]}, InputError, "'empty' has no valid cell", False),
             ({"study_area": ~inside & np.isnan(align_raster(inputs[0].path, grid)[0])}, InputError,
              "No cell inside the study area has a value", False),
             ({"study_area": inside[1:]}, InputError, "does not match the grid", False),
             ({"transform": "clr", "transform_bands": ["Cu", "rock"]}, InputError, "rock are categorical", False)]
    for overrides, error, message, cancel in cases:
        options = {"inputs": inputs, **overrides}
        with pytest.raises(error, match=message):
            build_evidence_stack_file(str(out), options.pop("inputs"), grid, window=4, **options,
                                      is_cancelled=(lambda: True) if cancel else None)
        assert os.listdir(out.parent) == []
