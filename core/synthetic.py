"""Seeded synthetic geochemical survey: soil samples, faults, deposits and barren drill holes.

Real surveys rarely come with everything a prospectivity workflow needs (many elements, mapped faults,
known deposits *and* drilled barren holes), and they cannot be shipped with tests. This module builds a
survey that has all of it, with the structure the workflow is meant to find:

* **Faults** are random-walk polylines: a few long regional faults along one regional strike, and shorter
  splays branching off them or lying between them.
* **Deposits** are structurally controlled: most lie within a few hundred metres of a fault, preferably where
  faults are dense (junctions, splays). **Barren holes** tested targets (some on faults) but found nothing;
  each lies more than :data:`BARREN_MIN_DISTANCE_M` from every deposit.
* **Sample values** are log-normal. Their log-values are multivariate normal with the correlation matrix
  ``L Lᵀ + Ψ`` of a factor model whose factors are element associations (orogenic gold Au-As-Sb-Bi-W,
  porphyry Cu-Mo-Au, base metal Pb-Zn-Ag, mafic Ni-Cr-Co-Fe-Mg, felsic K-Ba, Fe-Mn oxides), so the
  correlation matrix is positive definite by construction. Part of each factor is a Gaussian-smoothed random
  field and the mafic/felsic factors shift with two lithology domains, so neighbouring samples correlate.
  Elements in :data:`HALO_AMPLITUDES` get a multiplicative halo around each deposit, decaying with distance,
  so element screening has something to find; the other elements carry no deposit signal.
* A small fraction of values of a few elements is missing (NaN), to exercise null handling.

Every random draw comes from one ``numpy.random.default_rng(seed)`` in a fixed order, so a seed gives
bit-identical arrays on one platform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import InputError

CRS = "EPSG:32650"
X0 = 400000.0
Y0 = 3300000.0

# Element symbol -> (unit, median background, standard deviation of log10 value). Typical soil values.
ELEMENTS: dict[str, tuple[str, float, float]] = {
    "Au": ("ppb", 2.0, 0.40),
    "Ag": ("ppm", 0.08, 0.25),
    "Cu": ("ppm", 25.0, 0.22),
    "Pb": ("ppm", 22.0, 0.20),
    "Zn": ("ppm", 60.0, 0.20),
    "As": ("ppm", 8.0, 0.30),
    "Sb": ("ppm", 0.6, 0.28),
    "Mo": ("ppm", 0.8, 0.25),
    "Bi": ("ppm", 0.2, 0.25),
    "W": ("ppm", 1.5, 0.25),
    "Fe": ("%", 3.5, 0.12),
    "Mn": ("ppm", 600.0, 0.20),
    "Ni": ("ppm", 25.0, 0.25),
    "Cr": ("ppm", 60.0, 0.22),
    "Co": ("ppm", 12.0, 0.20),
    "Mg": ("%", 0.8, 0.20),
    "K": ("%", 1.8, 0.12),
    "Ba": ("ppm", 450.0, 0.15),
}

# Factor loadings of the element associations (factor -> element -> loading). Each element's squared
# loadings sum to < 1; the rest of its variance is its own noise.
ASSOCIATIONS: dict[str, dict[str, float]] = {
    "orogenic_gold": {"Au": 0.65, "As": 0.80, "Sb": 0.70, "Bi": 0.60, "W": 0.50},
    "porphyry": {"Cu": 0.70, "Mo": 0.70, "Au": 0.35},
    "base_metal": {"Pb": 0.80, "Zn": 0.80, "Ag": 0.70},
    "mafic": {"Ni": 0.85, "Cr": 0.80, "Co": 0.70, "Fe": 0.55, "Mg": 0.75},
    "felsic": {"K": 0.80, "Ba": 0.75},
    "oxide": {"Fe": 0.50, "Mn": 0.75, "Co": 0.35},
}
# Share of each factor's variance that is spatially smooth (the rest varies from sample to sample).
SPATIAL_SHARE = 0.5
# Correlation length of the smooth factor fields and of the lithology field (Gaussian sigma, metres).
FACTOR_SIGMA_M = 1500.0
LITHOLOGY_SIGMA_M = 3000.0
# Greenstone where the standardised lithology field exceeds this; its shift of the mafic and felsic factors.
GREENSTONE_THRESHOLD = 0.3
LITHOLOGY_SHIFT = 1.0
# Cells per side of the lattice the smooth fields are drawn on.
FIELD_CELLS = 200

# Halo: log10 uplift at a deposit (scaled by the deposit's strength), decaying as exp(-(d / r) ** 2) with
# the deposit's radius r drawn from HALO_RADIUS_M.
HALO_AMPLITUDES: dict[str, float] = {"Au": 1.3, "As": 0.9, "Sb": 0.7, "Bi": 0.5, "W": 0.4, "Cu": 0.5, "Mo": 0.5}
HALO_RADIUS_M = (400.0, 1500.0)
DEPOSIT_STRENGTH = (0.6, 1.2)

# Fraction of values missing, per element (random samples not analysed for it).
MISSING_FRACTIONS: dict[str, float] = {"Bi": 0.025, "W": 0.015, "Sb": 0.01}

# Fault geometry (metres, radians).
REGIONAL_FAULT_SHARE = 0.2
FAULT_STEP_M = 200.0
SPLAY_LENGTH_M = (1500.0, 7000.0)
SPLAY_ANGLE = (np.radians(20.0), np.radians(60.0))
SPLAY_FROM_REGIONAL = 0.7
HEADING_NOISE = 0.06
HEADING_REVERSION = 0.1
DENSIFY_STEP_M = 50.0
# A splay cut short by the square's edge to fewer vertices than this is dropped and drawn again.
MIN_SPLAY_VERTICES = 5

# Deposits and barren holes (metres).
DEPOSIT_NEAR_FAULT_SHARE = 0.85
DEPOSIT_FAULT_OFFSET_SD_M = 250.0
FAULT_DENSITY_RADIUS_M = 1000.0
DEPOSIT_MIN_SPACING_M = 700.0
EDGE_MARGIN_M = 300.0
BARREN_NEAR_FAULT_SHARE = 0.5
BARREN_MIN_DISTANCE_M = 1200.0
# Candidate points drawn per rejection-sampling round, and the most rounds tried.
CANDIDATE_BATCH = 256
MAX_ROUNDS = 20


@dataclass(frozen=True, eq=False)
class SyntheticSurvey:
    """A synthetic survey in one projected CRS; all arrays are read-only.

    Attributes:
        crs: authority id of the CRS of every coordinate (UTM zone 50N).
        x0: west edge of the survey square (metres).
        y0: south edge of the survey square (metres).
        side_m: side of the survey square (metres).
        seed: the seed the survey was generated with.
        sample_xy: (n, 2) sample x, y.
        element_names: element symbols, one per column of ``values``.
        units: unit of each element ("ppb" for Au, "%" for Fe, Mg and K, else "ppm").
        values: (n, f) concentrations in ``units``; NaN where a sample was not analysed.
        halo_elements: elements that carry a halo around deposits; the others carry no deposit signal.
        faults: (m, 2) polylines, the regional faults first.
        fault_names: one name per fault ("Regional fault 1", "Fault 5", ...).
        deposit_xy: (d, 2) deposit locations.
        barren_xy: (b, 2) barren drill-hole collars.
    """

    crs: str
    x0: float
    y0: float
    side_m: float
    seed: int
    sample_xy: np.ndarray
    element_names: list[str]
    units: list[str]
    values: np.ndarray
    halo_elements: list[str]
    faults: list[np.ndarray]
    fault_names: list[str]
    deposit_xy: np.ndarray
    barren_xy: np.ndarray

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The survey square as (x_min, y_min, x_max, y_max)."""
        return self.x0, self.y0, self.x0 + self.side_m, self.y0 + self.side_m


def make_survey(
    seed: int = 20241,
    n_samples: int = 1500,
    side_m: float = 20000.0,
    n_faults: int = 24,
    n_deposits: int = 24,
    n_barren: int = 30,
) -> SyntheticSurvey:
    """Generate a seeded synthetic soil survey with faults, deposits and barren holes.

    Distances (halo radius, deposit spacing, barren-hole clearance) are physical, in metres, so a square much
    smaller than the default may not fit the requested deposits and barren holes.

    Args:
        seed: seed of the one random generator every draw comes from.
        n_samples: number of soil samples, on a jittered grid with some sites missed.
        side_m: side of the survey square (metres), whose south-west corner is (X0, Y0).
        n_faults: number of fault polylines, about a fifth of them regional.
        n_deposits: number of known deposits.
        n_barren: number of barren drill holes.

    Returns:
        The survey.

    Raises:
        InputError: a count is out of range, or the deposits or barren holes do not fit in the square.
    """
    if n_samples < 1 or n_faults < 1 or n_deposits < 1 or n_barren < 0:
        raise InputError(
            "Need at least one sample, fault and deposit and no negative count of barren holes "
            f"(got {n_samples}, {n_faults}, {n_deposits}, {n_barren})."
        )
    if not side_m > 2 * EDGE_MARGIN_M:
        raise InputError(f"The survey square must be wider than {2 * EDGE_MARGIN_M:g} m (got {side_m}).")
    rng = np.random.default_rng(seed)
    lo = np.array([X0, Y0])
    hi = lo + side_m

    faults, fault_names = _faults(rng, lo, hi, n_faults)
    fault_points = np.concatenate([_densify(f, DENSIFY_STEP_M) for f in faults])
    deposits = _deposits(rng, lo, hi, fault_points, n_deposits)
    barren = _barren_holes(rng, lo, hi, fault_points, deposits, n_barren)
    sample_xy = _sample_sites(rng, lo, side_m, n_samples)
    log_values = _background(rng, sample_xy, lo, side_m) + _halos(rng, sample_xy, deposits)
    values = 10.0**log_values
    names = list(ELEMENTS)
    for element, fraction in MISSING_FRACTIONS.items():
        values[rng.random(n_samples) < fraction, names.index(element)] = np.nan

    arrays = [sample_xy, values, deposits, barren, *faults]
    for array in arrays:
        array.setflags(write=False)
    return SyntheticSurvey(
        crs=CRS,
        x0=X0,
        y0=Y0,
        side_m=float(side_m),
        seed=seed,
        sample_xy=sample_xy,
        element_names=names,
        units=[unit for unit, _, _ in ELEMENTS.values()],
        values=values,
        halo_elements=list(HALO_AMPLITUDES),
        faults=faults,
        fault_names=fault_names,
        deposit_xy=deposits,
        barren_xy=barren,
    )


def correlation_matrix() -> np.ndarray:
    """The correlation matrix ``L Lᵀ + Ψ`` of the element log-values (before spatial fields and halos).

    Returns:
        (f, f) matrix in the order of :data:`ELEMENTS`, unit diagonal.
    """
    loadings = _loadings()
    return loadings @ loadings.T + np.diag(1.0 - (loadings**2).sum(axis=1))


def _loadings() -> np.ndarray:
    """Factor loadings as an (elements, factors) matrix."""
    names = list(ELEMENTS)
    loadings = np.zeros((len(names), len(ASSOCIATIONS)))
    for k, members in enumerate(ASSOCIATIONS.values()):
        for element, loading in members.items():
            loadings[names.index(element), k] = loading
    return loadings


def _inside(points: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Mask of points inside the square shrunk by ``margin``."""
    return np.all((points >= lo + margin) & (points <= hi - margin), axis=-1)


def _walk(
    rng: np.random.Generator, start: np.ndarray, heading: float, n_steps: int, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """A random-walk polyline from ``start``, its heading reverting to the initial one, cut where it leaves."""
    vertices = [start]
    theta = heading
    for noise in rng.normal(0.0, HEADING_NOISE, n_steps):
        theta += noise - HEADING_REVERSION * (theta - heading)
        step = vertices[-1] + FAULT_STEP_M * np.array([np.cos(theta), np.sin(theta)])
        if not _inside(step, lo, hi):
            break
        vertices.append(step)
    return np.array(vertices)


def _faults(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n_faults: int
) -> tuple[list[np.ndarray], list[str]]:
    """Regional faults across the square along one strike, then splays off them or between them."""
    side = hi[0] - lo[0]
    strike = rng.uniform(0.0, np.pi)
    normal = np.array([-np.sin(strike), np.cos(strike)])
    n_regional = max(1, round(REGIONAL_FAULT_SHARE * n_faults))
    offsets = (np.linspace(-0.35, 0.35, n_regional) + rng.uniform(-0.05, 0.05, n_regional)) * side
    max_steps = int(2 * side / FAULT_STEP_M)
    faults = []
    for offset in offsets:
        centre = (lo + hi) / 2 + offset * normal
        forward = _walk(rng, centre, strike, max_steps, lo, hi)
        backward = _walk(rng, centre, strike + np.pi, max_steps, lo, hi)
        faults.append(np.concatenate([backward[:0:-1], forward]))
    regional_vertices = np.concatenate(faults)
    while len(faults) < n_faults:
        if rng.random() < SPLAY_FROM_REGIONAL:
            start = regional_vertices[rng.integers(len(regional_vertices))]
        else:
            start = rng.uniform(lo, hi)
        heading = strike + rng.choice([-1.0, 1.0]) * rng.uniform(*SPLAY_ANGLE) + rng.choice([0.0, np.pi])
        n_steps = int(rng.uniform(*SPLAY_LENGTH_M) / FAULT_STEP_M)
        splay = _walk(rng, start, heading, n_steps, lo, hi)
        if len(splay) >= MIN_SPLAY_VERTICES:
            faults.append(splay)
    names = [f"Regional fault {i + 1}" for i in range(n_regional)]
    names += [f"Fault {i + 1}" for i in range(n_regional, n_faults)]
    return faults, names


def _densify(polyline: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` metres along a polyline (its vertices' spacing made even)."""
    chainage = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(polyline, axis=0).T))])
    at = np.linspace(0.0, chainage[-1], max(2, int(np.ceil(chainage[-1] / step)) + 1))
    return np.column_stack([np.interp(at, chainage, polyline[:, 0]), np.interp(at, chainage, polyline[:, 1])])


def _near_faults(rng: np.random.Generator, fault_points: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` points offset from fault points drawn with ``weights``, by a half-normal distance."""
    picked = fault_points[rng.choice(len(fault_points), n, p=weights)]
    angle = rng.uniform(0.0, 2 * np.pi, n)
    distance = np.abs(rng.normal(0.0, DEPOSIT_FAULT_OFFSET_SD_M, n))
    return picked + distance[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])


def _accept(
    draw: Callable[[int], np.ndarray],
    n: int,
    lo: np.ndarray,
    hi: np.ndarray,
    avoid: np.ndarray,
    avoid_distance: float,
    spacing: float,
    what: str,
) -> np.ndarray:
    """Rejection sampling of ``n`` points from ``draw(batch)``.

    A candidate is kept if it lies inside the square (less the edge margin), farther than ``avoid_distance``
    from every point of ``avoid``, and at least ``spacing`` from the points already kept.
    """
    kept: list[np.ndarray] = []
    avoid_tree = cKDTree(avoid) if len(avoid) else None
    rounds = 0
    while len(kept) < n:
        if rounds == MAX_ROUNDS:
            raise InputError(f"Could not place {n} {what} in the survey square; make it larger or ask for fewer.")
        rounds += 1
        candidates = draw(CANDIDATE_BATCH)
        candidates = candidates[_inside(candidates, lo, hi, EDGE_MARGIN_M)]
        if avoid_tree is not None:
            candidates = candidates[avoid_tree.query(candidates)[0] > avoid_distance]
        for point in candidates:
            if len(kept) < n and (not kept or np.min(np.hypot(*(np.array(kept) - point).T)) >= spacing):
                kept.append(point)
    return np.array(kept).reshape(n, 2)


def _deposits(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, fault_points: np.ndarray, n: int) -> np.ndarray:
    """Deposits near faults, preferring fault-dense places (junctions, splays); a few away from faults."""
    density = cKDTree(fault_points).query_ball_point(fault_points, FAULT_DENSITY_RADIUS_M, return_length=True)
    weights = density.astype(float) ** 2
    weights /= weights.sum()

    def draw(batch: int) -> np.ndarray:
        near = _near_faults(rng, fault_points, weights, batch)
        return np.where((rng.random(batch) < DEPOSIT_NEAR_FAULT_SHARE)[:, None], near, rng.uniform(lo, hi, (batch, 2)))

    return _accept(draw, n, lo, hi, np.empty((0, 2)), 0.0, DEPOSIT_MIN_SPACING_M, "deposits")


def _barren_holes(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, fault_points: np.ndarray, deposits: np.ndarray, n: int
) -> np.ndarray:
    """Drill holes that found nothing: half on fault targets, half anywhere, all far from every deposit."""
    weights = np.full(len(fault_points), 1.0 / len(fault_points))

    def draw(batch: int) -> np.ndarray:
        near = _near_faults(rng, fault_points, weights, batch)
        return np.where((rng.random(batch) < BARREN_NEAR_FAULT_SHARE)[:, None], near, rng.uniform(lo, hi, (batch, 2)))

    return _accept(draw, n, lo, hi, deposits, BARREN_MIN_DISTANCE_M, 0.0, "barren holes")


def _sample_sites(rng: np.random.Generator, lo: np.ndarray, side: float, n: int) -> np.ndarray:
    """Soil-survey layout: a square grid with sites jittered inside their cells, some sites missed."""
    per_side = int(np.ceil(np.sqrt(n)))
    spacing = side / per_side
    cells = np.sort(rng.choice(per_side * per_side, n, replace=False))
    rows, cols = np.divmod(cells, per_side)
    jitter = rng.uniform(-0.4, 0.4, (n, 2)) * spacing
    return lo + (np.column_stack([cols, rows]) + 0.5) * spacing + jitter


def _smooth_field(rng: np.random.Generator, sigma_cells: float) -> np.ndarray:
    """A Gaussian-smoothed white-noise field on the lattice, standardised to mean 0 and sd 1."""
    field = ndimage.gaussian_filter(rng.standard_normal((FIELD_CELLS, FIELD_CELLS)), sigma_cells, mode="wrap")
    return (field - field.mean()) / field.std()


def _background(rng: np.random.Generator, xy: np.ndarray, lo: np.ndarray, side: float) -> np.ndarray:
    """log10 background values: factor model with smooth factor fields and two lithology domains."""
    cell = side / FIELD_CELLS
    # Lattice coordinates (row, col) of the samples, pixel centres at integers.
    coords = ((xy - lo) / cell - 0.5)[:, ::-1].T
    factor_names = list(ASSOCIATIONS)
    lithology = ndimage.map_coordinates(_smooth_field(rng, LITHOLOGY_SIGMA_M / cell), coords, order=1, mode="nearest")
    greenstone = np.where(lithology > GREENSTONE_THRESHOLD, LITHOLOGY_SHIFT, -LITHOLOGY_SHIFT)
    factors = np.empty((len(xy), len(factor_names)))
    for k in range(len(factor_names)):
        field = ndimage.map_coordinates(_smooth_field(rng, FACTOR_SIGMA_M / cell), coords, order=1, mode="nearest")
        factors[:, k] = np.sqrt(SPATIAL_SHARE) * field + np.sqrt(1 - SPATIAL_SHARE) * rng.standard_normal(len(xy))
    factors[:, factor_names.index("mafic")] += greenstone
    factors[:, factor_names.index("felsic")] -= greenstone
    loadings = _loadings()
    unique = np.sqrt(1.0 - (loadings**2).sum(axis=1))
    z = factors @ loadings.T + unique * rng.standard_normal((len(xy), len(ELEMENTS)))
    median = np.log10([m for _, m, _ in ELEMENTS.values()])
    sd = np.array([s for _, _, s in ELEMENTS.values()])
    return median + sd * z


def _halos(rng: np.random.Generator, xy: np.ndarray, deposits: np.ndarray) -> np.ndarray:
    """log10 uplift of the halo elements: sum over deposits of strength * amplitude * exp(-(d / r)²)."""
    radius = rng.uniform(*HALO_RADIUS_M, len(deposits))
    strength = rng.uniform(*DEPOSIT_STRENGTH, len(deposits))
    distance = np.hypot(*(xy[:, None, :] - deposits[None, :, :]).transpose(2, 0, 1))
    halo = (strength * np.exp(-((distance / radius) ** 2))).sum(axis=1)
    amplitude = np.array([HALO_AMPLITUDES.get(name, 0.0) for name in ELEMENTS])
    return halo[:, None] * amplitude
