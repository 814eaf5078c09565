"""Prospective area of ensemble members and rules by known ground, and he2024's spread statistics."""

import numpy as np
import pytest
import rasterio
from deepprospect.core.errors import Cancelled, InputError
from deepprospect.core.grid import GridSpec
from deepprospect.core.mapping.ensemble import combine, ensemble_rasters
from deepprospect.core.mapping.ensemble_compare import (
    CATEGORIES,
    ENSEMBLE,
    MEMBER,
    STATISTICS,
    Spread,
    compare_areas,
    spread,
    table_rows,
)
from deepprospect.core.raster_io import NODATA, write_geotiff

# he2024 Table 2: ore-bearing areas predicted, of them in known ore-bearing areas, in unknown areas, in known
# non-ore areas; and the printed "standard deviation" and "coefficient of variation" of each group.
HE2024_MEMBERS = {"LeNet": (49, 18, 29, 2), "AlexNet": (58, 26, 30, 2), "VGG 16": (45, 28, 15, 2),
                  "ResNet 50": (43, 28, 14, 1), "Mobilenet V2": (49, 29, 19, 1), "VIT": (45, 28, 17, 0)}
HE2024_RULES = {"Simple average": (51, 30, 21, 0), "Majority voting": (42, 30, 12, 0),
                "Plurality voting": (47, 30, 17, 0), "Weighted average": (49, 30, 19, 0),
                "Weighted voting": (49, 30, 19, 0)}
PRINTED = {"members": ((3.83, 2.78, 5.89, 0.67), (0.08, 0.11, 0.28, 0.50)),
           "rules": ((2.48, 0, 2.48, 0), (0.05, 0, 0.14, 0))}


@pytest.mark.parametrize(("counts", "printed"), [(HE2024_MEMBERS, PRINTED["members"]),
                                                 (HE2024_RULES, PRINTED["rules"])])
def test_spread_reproduces_he2024_table_2_exactly(counts, printed):
    columns = np.array(list(counts.values())).T
    spreads = [spread(column) for column in columns]
    assert [round(s.mean_absolute_deviation, 2) for s in spreads] == list(printed[0])
    assert [round(s.relative_mean_absolute_deviation, 2) for s in spreads] == list(printed[1])
    # the printed "standard deviation" is not one: neither the population nor the sample one gives it
    for column, value in zip(columns, printed[0]):
        if column.std() > 0:
            assert round(column.std(), 2) != value and round(column.std(ddof=1), 2) != value


def test_spread_of_equal_values_is_zero_and_of_nothing_is_refused():
    assert spread([0, 0, 0]) == Spread(0.0, 0.0, 0.0) and spread([5, 5]) == Spread(5.0, 0.0, 0.0)
    assert spread([1, 3]) == Spread(2.0, 1.0, 0.5)
    with pytest.raises(InputError, match="empty group"):
        spread([])


GRID = GridSpec(500000.0, 7000000.0, 100.0, 100.0, 30, 40, "EPSG:32750")  # 40 rows × 30 columns of 1 ha


def write_map(path, values, strip_rows=4):
    """A one-band map stored in strips of ``strip_rows`` rows, so small windows cut it into many."""
    write_geotiff(str(path), np.asarray(values, dtype=np.float64)[None], GRID, ["prospectivity"])
    with rasterio.open(path) as src:
        profile = {**src.profile, "blockysize": strip_rows}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(np.isnan(values), NODATA, values).astype("float32"), 1)
        dst.set_band_description(1, "prospectivity")
    return str(path)


def centre_xy(rows, cols):
    return np.column_stack([GRID.x_min + (np.asarray(cols) + 0.5) * 100.0,
                            GRID.y_max - (np.asarray(rows) + 0.5) * 100.0])


@pytest.fixture
def study(tmp_path):
    rng = np.random.default_rng(11)
    maps = rng.uniform(0, 1, (4, 40, 30))
    maps[0, :2, :] = np.nan  # a margin only one member lacks
    maps[2, 10, 10] = np.nan
    members = [write_map(tmp_path / f"m{i}.tif", m) for i, m in enumerate(maps)]
    ensembles, classes = [], []
    for method in ("average", "majority_vote", "plurality_vote", "weighted_vote"):
        path, class_path = str(tmp_path / f"{method}.tif"), str(tmp_path / f"{method}_class.tif")
        ensemble_rasters(members, path, method, weights=[1, 2, 3, 4], threshold=0.4, classes=class_path,
                         uncertainty=None)
        ensembles.append(path)
        classes.append(class_path)
    deposit_rc = np.array([(5, 5), (5, 5), (20, 7), (39, 29), (0, 0), (12, 20)])  # two in one cell, one on the margin
    barren_rc = np.array([(30, 3), (20, 7), (25, 25)])  # (20, 7) also holds a deposit: a deposit cell
    barren_area = np.zeros((40, 30), bool)
    barren_area[33:38, 10:16] = True
    return maps.astype(np.float32).astype(np.float64), members, ensembles, classes, deposit_rc, barren_rc, barren_area


def expected_counts(prospective, common, deposit_rc, barren_rc, barren_area):
    category = np.full((40, 30), 1)
    category[barren_area] = 2
    category[tuple(barren_rc.T)] = 2
    category[tuple(deposit_rc.T)] = 0
    return {name: int((prospective & common & (category == index)).sum()) for index, name in enumerate(CATEGORIES)}


def test_counts_by_ground_equal_the_whole_array_ones_in_small_windows(study):
    maps, members, ensembles, classes, deposit_rc, barren_rc, barren_area = study
    steps = []
    comparison = compare_areas(members, ensembles + classes[:1], centre_xy(*deposit_rc.T), threshold=0.4,
                               barren_xy=centre_xy(*barren_rc.T), barren_area=barren_area, window_cells=120,
                               progress=steps.append)
    assert len(steps) == 10 and steps[-1] == 100  # 40 rows in windows of 4 rows
    common = ~np.isnan(maps).any(axis=0)
    prospective = [m >= 0.4 for m in maps]
    for method in ("average", "majority_vote", "plurality_vote", "weighted_vote"):
        prospective.append(combine(maps, method, weights=[1, 2, 3, 4], threshold=0.4)[2] == 1)
    prospective.append(prospective[4])  # the average's class raster
    assert [row.group for row in comparison.rows] == [MEMBER] * 4 + [ENSEMBLE] * 5
    for row, expected in zip(comparison.rows, prospective):
        assert row.by_category == expected_counts(expected, common, deposit_rc, barren_rc, barren_area), row.name
        assert row.prospective == int((expected & common).sum())
    assert [row.rule for row in comparison.rows[4:]] == [
        "simple average: probability ≥ 0.4", "majority voting: vote share > 1/2", "plurality voting: vote share ≥ 1/2",
        "weighted voting: vote share ≥ 1/2", "simple average: class raster = 1"]
    assert comparison.cells == expected_counts(np.ones((40, 30), bool), common, deposit_rc, barren_rc, barren_area)
    assert comparison.cells["deposit"] == 4 and comparison.cells["barren"] == 2 + 30
    assert any("61 cell(s) with a value in some maps only" in note for note in comparison.notes)
    members_spread = comparison.spreads[MEMBER]["other"]
    others = [row.by_category["other"] for row in comparison.rows[:4]]
    assert members_spread.mean_absolute_deviation == pytest.approx(np.mean(np.abs(np.subtract(others,
                                                                                              np.mean(others)))))
    assert comparison.cell_km2 == pytest.approx(0.01)


def test_table_rows_give_counts_areas_and_the_spread_rows(study):
    _, members, ensembles, _, deposit_rc, _, _ = study
    comparison = compare_areas(members, ensembles, centre_xy(*deposit_rc.T), threshold=0.4)
    rows = table_rows(comparison)
    assert len(rows) == 1 + 8 + 2 * len(STATISTICS)
    assert rows[0]["group"] == "all cells" and rows[0]["prospective_cells"] == sum(comparison.cells.values())
    first = rows[1]
    assert first["map"] == "m0.tif" and first["statistic"] == "count"
    assert first["deposit_km2"] == pytest.approx(first["deposit_cells"] * 0.01)
    relative = [r for r in rows if r["statistic"] == "relative_mean_absolute_deviation"]
    assert [r["group"] for r in relative] == [MEMBER, ENSEMBLE]
    assert all(r["other_cells"] == r["other_km2"] for r in relative)  # a ratio, the same for cells and areas
    mad = next(r for r in rows if r["group"] == ENSEMBLE and r["statistic"] == "mean_absolute_deviation")
    assert mad["prospective_cells"] == pytest.approx(comparison.spreads[ENSEMBLE]["prospective"]
                                                     .mean_absolute_deviation)


def test_bad_inputs_and_cancel(study, tmp_path):
    _, members, ensembles, _, deposit_rc, _, _ = study
    deposits = centre_xy(*deposit_rc.T)
    with pytest.raises(InputError, match="at least two member maps"):
        compare_areas(members[:1], ensembles, deposits)
    with pytest.raises(InputError, match="No deposit lies on the maps' grid"):
        compare_areas(members, ensembles, deposits + 1e6)
    uncertainty = str(tmp_path / "u.tif")
    ensemble_rasters(members, str(tmp_path / "e.tif"), "average", uncertainty=uncertainty)
    with pytest.raises(InputError, match="uncertainty map"):
        compare_areas(members, [uncertainty], deposits)
    percent = write_map(tmp_path / "percent.tif", np.full((40, 30), 50.0))
    with pytest.raises(InputError, match="probabilities from 0 to 1"):
        compare_areas([*members, percent], [], deposits)
    with pytest.raises(InputError, match="threshold"):
        compare_areas(members, [], deposits, threshold=1.5)
    with pytest.raises(Cancelled):
        compare_areas(members, ensembles, deposits, is_cancelled=lambda: True)
    bare = write_map(tmp_path / "bare.tif", np.full((40, 30), 0.7))
    comparison = compare_areas(members, [bare], deposits, threshold=0.5)
    assert any("no ensemble record" in note for note in comparison.notes)
    assert comparison.rows[-1].rule == "ensemble: probability ≥ 0.5"
    assert any("voted at probability ≥ 0.4" in note
               for note in compare_areas(members, ensembles, deposits, threshold=0.5).notes)
