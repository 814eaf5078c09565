"""Distance, density and buffer-distance density of vector features (points, lines, polygons) on a grid.

Three evidence maps, all evaluated at pixel centres ``x`` of a :class:`GridSpec`:

* **distance** — Euclidean distance (map units) from ``x`` to the nearest point of the features: of a line,
  of a polygon's outline or a point feature, and 0 inside a polygon (a pixel whose centre it holds, as
  ``gdal_rasterize`` decides). Exact, not to burnt pixels, and features outside the grid count: the
  distance to points spaced along the features bounds each cell's distance from above, so only the
  segments that can come closer than that bound are measured (see :func:`distance_to_features`). At least
  one feature must fall on the grid.
* **density** within a radius ``r`` (``kernel="uniform"``) — as ``qgis:linedensity``:
  ``D(x) = Σ_i w_i · |F_i ∩ disk(x, r)| / (π r²)``, where ``|·|`` is the length of a line (per map unit²),
  the area of a polygon (a fraction of the disk) or the count of points.
* **buffer-distance density** (he2024, "continuous buffer distance" plus density) within a buffer distance
  ``B`` (``kernel="triangular"`` by default)::

      BDD(x) = (1 / N_B) · Σ_i w_i ∫_{F_i} k(|x − s|) dμ_i(s),    k(d) = 1 − d/B for d < B, 0 beyond,

  with ``μ_i`` the length measure of a line, the area of a polygon or a unit mass at a point, and
  ``N_B = ∫_{R²} k = π B² / 3``, so BDD has the units of a density (length per area for lines). The
  influence of a feature falls continuously from its trace to zero at the buffer distance, and it adds up
  where features are many, long or large: a map that carries proximity and development intensity at once.
  The other decays ``k(d) = 1 − (d/B)²`` (``epanechnikov``, ``N_B = π B²/2``) and ``(1 − (d/B)²)²``
  (``quartic``, ``N_B = π B²/3``) are offered too; ``uniform`` (``k = 1``, ``N_B = π B²``) is the density.

Lines and points are integrated exactly: for a segment, the part inside ``disk(x, B)`` is an interval of
its arc length and ``∫ k`` over it has a closed form (``k`` is a polynomial in ``d`` or ``d²``). Polygons
are sampled: their area in each pixel is measured on a 4 × 4 sub-pixel raster and convolved with the kernel
averaged over the same sub-pixels (an FFT convolution), rescaled so that it sums to ``N_B`` exactly: a
disk that lies inside a polygon gives exactly 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.features import MergeAlg, rasterize
from rasterio.transform import Affine
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from .errors import InputError
from .grid import GridSpec
from .progress import CancelFn, ProgressFn, check_cancelled, report

# ∫_{R²} k divided by π B², per kernel.
KERNEL_MASS = {"uniform": 1.0, "triangular": 1.0 / 3.0, "epanechnikov": 0.5, "quartic": 1.0 / 3.0}
KERNELS = tuple(KERNEL_MASS)
# Polygons: sub-pixels per pixel side used to measure their area and average the kernel.
POLYGON_SUPERSAMPLING = 4
# Distance: cells per side of the tiles whose candidate segments are found together.
DISTANCE_TILE = 16
# Distance: most points spaced along the features (beyond it they are spaced wider; the result stays exact).
MAX_SAMPLES = 1 << 21
# Distance: cell-segment pairs measured at once (bounds working memory to ~100 MiB).
PAIR_BLOCK = 1 << 21
# Polygon densities below this fraction of the largest possible value are FFT round-off, set to 0.
FFT_ZERO = 1e-9
# Largest number of cells evaluated at once for one segment (bounds working memory to ~100 MiB).
WINDOW_CELLS = 1 << 20


@dataclass(frozen=True)
class FeatureSet:
    """Features split by kind, in the grid's CRS: points, line segments and polygons, each with a weight.

    ``segments`` rows are ``x0, y0, x1, y1``; polygons are GeoJSON-like ``Polygon`` mappings.
    """

    points: np.ndarray
    point_weights: np.ndarray
    segments: np.ndarray
    segment_weights: np.ndarray
    polygons: tuple
    polygon_weights: np.ndarray

    @classmethod
    def from_geojson(cls, geometries: Sequence[Mapping], weights: Sequence[float] | None = None) -> FeatureSet:
        """Split GeoJSON-like geometries (any type, Z ignored) into points, segments and polygons."""
        weights = np.ones(len(geometries)) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(geometries),):
            raise InputError(f"There are {len(geometries)} features but {weights.size} weights.")
        if not np.isfinite(weights).all():
            raise InputError("Some feature weights are missing or not finite; fill or drop them first.")
        points, point_w, segments, segment_w, polygons, polygon_w = [], [], [], [], [], []
        for geometry, weight in zip(geometries, weights):
            for kind, coords in _parts(geometry):
                if kind == "Point":
                    points.append(coords[:2])
                    point_w.append(weight)
                elif kind == "LineString":
                    xy = np.asarray(coords, dtype=np.float64).reshape(len(coords), -1)[:, :2]
                    if len(xy) >= 2:
                        segments.append(np.hstack([xy[:-1], xy[1:]]))
                        segment_w.append(np.full(len(xy) - 1, weight))
                else:
                    polygons.append({"type": "Polygon", "coordinates": [[tuple(v[:2]) for v in ring]
                                                                        for ring in coords]})
                    polygon_w.append(weight)
        result = cls(
            np.asarray(points, dtype=np.float64).reshape(-1, 2), np.asarray(point_w, dtype=np.float64),
            np.concatenate(segments) if segments else np.zeros((0, 4)),
            np.concatenate(segment_w) if segment_w else np.zeros(0),
            tuple(polygons), np.asarray(polygon_w, dtype=np.float64),
        )
        if result.is_empty:
            raise InputError("The layer has no point, line or polygon geometry to measure.")
        if not (np.isfinite(result.points).all() and np.isfinite(result.segments).all()):
            raise InputError("Some feature coordinates are not finite numbers; fix or remove those features.")
        return result

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to measure."""
        return not (len(self.points) or len(self.segments) or self.polygons)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of every vertex."""
        xy = [self.points, self.segments[:, :2], self.segments[:, 2:]]
        xy += [np.asarray(ring, dtype=np.float64) for polygon in self.polygons for ring in polygon["coordinates"]]
        stacked = np.concatenate([a.reshape(-1, 2) for a in xy])
        return (*stacked.min(axis=0), *stacked.max(axis=0))

    def shapes(self) -> Iterator[dict]:
        """Every feature as a GeoJSON geometry to burn; polygon outlines too, so thin polygons never vanish."""
        for x, y in self.points:
            yield {"type": "Point", "coordinates": (x, y)}
        if len(self.segments):
            yield {"type": "MultiLineString", "coordinates": self.segments.reshape(-1, 2, 2).tolist()}
        for polygon in self.polygons:
            yield polygon
            yield {"type": "MultiLineString", "coordinates": polygon["coordinates"]}


def rasterize_features(features: FeatureSet, grid: GridSpec) -> np.ndarray:
    """Boolean (rows, cols) mask of the pixels ``gdal_rasterize`` (not all-touched) burns, plus polygon outlines."""
    mask = rasterize(features.shapes(), out_shape=grid.shape, transform=_affine(grid), fill=0,
                     default_value=1, dtype="uint8", all_touched=False)
    return mask.astype(bool)


def distance_to_features(
    features: FeatureSet, grid: GridSpec, *, progress: ProgressFn = None, is_cancelled: CancelFn = None
) -> np.ndarray:
    """Distance (map units, float32) from every pixel centre to the nearest point of the features (0 inside polygons).

    Points spaced at most ``spacing`` apart along every segment (points are zero-length segments, polygons
    their outlines) bound the distances from above: for a tile of cells with centre ``c`` and half-diagonal
    ``h``, no cell is farther than ``u + h`` from the features, ``u`` the distance from ``c`` to the nearest
    spaced point. A segment can only be the nearest to one of the tile's cells if it has a point within
    ``u + 2h`` of ``c``, hence a spaced point within ``u + 2h + spacing / 2``: only those segments are
    measured, exactly.
    """
    if not rasterize_features(features, grid).any():
        raise InputError("No feature lies on the output grid; check the extent or the template.")
    segments = _outline_segments(features)
    samples, owner, spacing = _spaced_points(segments, grid)
    tree = cKDTree(samples)
    out = np.empty(grid.shape, dtype=np.float32)
    xs, ys = grid.x_centres(), grid.y_centres()
    tiles = [(slice(r, min(r + DISTANCE_TILE, grid.rows)), slice(c, min(c + DISTANCE_TILE, grid.cols)))
             for r in range(0, grid.rows, DISTANCE_TILE) for c in range(0, grid.cols, DISTANCE_TILE)]
    corners = np.array([[xs[c.start], ys[r.start], xs[c.stop - 1], ys[r.stop - 1]] for r, c in tiles])
    centres = (corners[:, :2] + corners[:, 2:]) / 2.0
    halves = np.hypot(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]) / 2.0
    upper, _ = tree.query(centres, workers=-1)
    reaches = (upper + 2.0 * halves + spacing / 2.0) * (1.0 + 1e-9) + 1e-9
    for i, ((rows, cols), centre, reach) in enumerate(zip(tiles, centres, reaches)):
        if i % 64 == 0:
            check_cancelled(is_cancelled)
            report(progress, 95.0 * i / len(tiles))
        xy = np.column_stack([np.tile(xs[cols], len(ys[rows])), np.repeat(ys[rows], len(xs[cols]))])
        candidates = segments[np.unique(owner[tree.query_ball_point(centre, reach)])]
        out[rows, cols] = _segment_distance(xy, candidates).reshape(len(ys[rows]), len(xs[cols]))
    if features.polygons:
        inside = rasterize(features.polygons, out_shape=grid.shape, transform=_affine(grid), fill=0,
                           default_value=1, dtype="uint8", all_touched=False)
        out[inside.astype(bool)] = 0.0
    report(progress, 100)
    return out


def feature_density(
    features: FeatureSet,
    grid: GridSpec,
    radius: float,
    kernel: str = "uniform",
    *,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
) -> np.ndarray:
    """Kernel density of the features at every pixel centre (float32); see the module docstring.

    Args:
        features: points, segments and polygons with their weights, in the grid's CRS.
        grid: the output grid.
        radius: search radius (``uniform``) or buffer distance ``B`` (decaying kernels), map units.
        kernel: one of :data:`KERNELS`.
        progress: called with 0–100.
        is_cancelled: polled between blocks of features; a True answer raises :class:`Cancelled`.
    """
    if not (radius > 0 and math.isfinite(radius)):
        raise InputError(f"The radius / buffer distance must be greater than zero (got {radius:g}).")
    if kernel not in KERNEL_MASS:
        raise InputError(f"Unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}.")
    out = np.zeros(grid.shape, dtype=np.float64)
    for done in _add_segments(out, features.segments, features.segment_weights, grid, radius, kernel):
        check_cancelled(is_cancelled)
        report(progress, 70.0 * done)
    for done in _add_points(out, features.points, features.point_weights, grid, radius, kernel):
        check_cancelled(is_cancelled)
        report(progress, 70.0 + 10.0 * done)
    if features.polygons:
        out += _polygon_density(features, grid, radius, kernel)
    report(progress, 100)
    return (out / (KERNEL_MASS[kernel] * math.pi * radius * radius)).astype(np.float32)


def memory_bytes(features: FeatureSet, grid: GridSpec, radius: float, kernel: str | None) -> int:
    """Upper estimate of the memory a run needs (``kernel=None``: distance)."""
    if kernel is None:
        segments = _outline_segments(features)
        samples = int(_spacing(segments, grid)[1].sum()) + len(segments)
        return 8 * grid.cell_count + 80 * samples + 8 * 8 * PAIR_BLOCK
    total = 12 * grid.cell_count + 12 * 8 * WINDOW_CELLS
    if features.polygons:
        padded = (grid.rows + 2 * math.ceil(radius / grid.pixel_height) + 1) * (
            grid.cols + 2 * math.ceil(radius / grid.pixel_width) + 1)
        total += (8 * POLYGON_SUPERSAMPLING ** 2 + 64) * padded
    return total


def kernel_value(distance: np.ndarray, radius: float, kernel: str) -> np.ndarray:
    """k(d) of the module docstring (not normalised): 1 at d = 0, 0 from d = radius on."""
    q = np.minimum(np.asarray(distance, dtype=np.float64) / radius, 1.0)
    inside = q < 1.0
    if kernel == "uniform":
        return inside.astype(np.float64)
    if kernel == "triangular":
        return 1.0 - q
    if kernel == "epanechnikov":
        return 1.0 - q * q
    return (1.0 - q * q) ** 2


def _kernel_integral(lo: np.ndarray, hi: np.ndarray, h2: np.ndarray, radius: float, kernel: str) -> np.ndarray:
    """∫_lo^hi k(sqrt(h² + t²)) dt in closed form, valid while h² + t² ≤ radius² on [lo, hi]."""
    if kernel == "uniform":
        return hi - lo
    b2 = radius * radius
    if kernel == "triangular":
        # ∫ sqrt(h² + t²) dt = (t ρ + h² asinh(t/h)) / 2, and asinh(a) − asinh(b) = asinh(a√(1+b²) − b√(1+a²))
        rho_lo, rho_hi = np.sqrt(h2 + lo * lo), np.sqrt(h2 + hi * hi)
        h2 = np.maximum(h2, (1e-12 * radius) ** 2)  # h² asinh(…/h²) → 0 as h → 0
        asinh = np.arcsinh((hi * rho_lo - lo * rho_hi) / h2)
        return hi - lo - (hi * rho_hi - lo * rho_lo + h2 * asinh) / (2.0 * radius)
    a = 1.0 - h2 / b2

    def primitive(tau: np.ndarray) -> np.ndarray:
        t2 = tau * tau / b2
        if kernel == "epanechnikov":
            return tau * (a - t2 / 3.0)
        return tau * (a * a - 2.0 * a * t2 / 3.0 + t2 * t2 / 5.0)

    return primitive(hi) - primitive(lo)


def _add_segments(out: np.ndarray, segments: np.ndarray, weights: np.ndarray, grid: GridSpec,
                  radius: float, kernel: str) -> Iterator[float]:
    """Add w ∫_segment k(|x − s|) ds to ``out`` for every segment; yields the fraction done."""
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    keep = lengths > 0
    segments, weights, lengths = segments[keep], weights[keep], lengths[keep]
    xs, ys, r2 = grid.x_centres(), grid.y_centres(), radius * radius
    step = max(1, len(segments) // 50)
    for i, ((x0, y0, x1, y1), weight, length) in enumerate(zip(segments, weights, lengths)):
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        for rows, cols in _windows(grid, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), radius):
            px, py = xs[cols] - x0, ys[rows] - y0
            along = px * ux + py[:, None] * uy  # arc length of the foot of the perpendicular
            across2 = np.square(py[:, None] * ux - px * uy)
            half = np.sqrt(np.maximum(r2 - across2, 0.0))
            lo = np.maximum(-along, -half)  # the chord inside the disk, relative to the foot
            hi = np.minimum(length - along, half)
            hit = hi > lo
            value = _kernel_integral(lo, hi, across2, radius, kernel)
            out[rows, cols] += np.where(hit, weight * value, 0.0)
        if i % step == 0:
            yield i / len(segments)
    yield 1.0


def _add_points(out: np.ndarray, points: np.ndarray, weights: np.ndarray, grid: GridSpec,
                radius: float, kernel: str) -> Iterator[float]:
    """Add w k(|x − p|) to ``out`` for every point; yields the fraction done."""
    xs, ys = grid.x_centres(), grid.y_centres()
    step = max(1, len(points) // 20)
    for i, ((x, y), weight) in enumerate(zip(points, weights)):
        for rows, cols in _windows(grid, x, y, x, y, radius):
            distance = np.hypot(xs[cols] - x, (ys[rows] - y)[:, None])
            out[rows, cols] += weight * kernel_value(distance, radius, kernel)
        if i % step == 0:
            yield i / len(points)
    yield 1.0


def _outline_segments(features: FeatureSet) -> np.ndarray:
    """(n, 4) segments x0, y0, x1, y1 of the lines, the polygon rings and the points (zero-length)."""
    parts = [features.segments, np.hstack([features.points, features.points])]
    for polygon in features.polygons:
        for ring in polygon["coordinates"]:
            xy = np.asarray(ring, dtype=np.float64).reshape(len(ring), -1)[:, :2]
            parts.append(np.hstack([xy[:-1], xy[1:]]))
    return np.concatenate([p.reshape(-1, 4) for p in parts])


def _spacing(segments: np.ndarray, grid: GridSpec) -> tuple[float, np.ndarray]:
    """Spacing of the points along the segments (the pixel size, or wider beyond MAX_SAMPLES points) and the
    number of steps along each segment."""
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    spacing = max(min(grid.pixel_width, grid.pixel_height), float(lengths.sum()) / MAX_SAMPLES)
    return spacing, np.maximum(np.ceil(lengths / spacing).astype(np.int64), 1)


def _spaced_points(segments: np.ndarray, grid: GridSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """Points along every segment (both ends included) at most ``spacing`` apart, the segment of each, and spacing."""
    spacing, steps = _spacing(segments, grid)
    owner = np.repeat(np.arange(len(segments)), steps + 1)
    first = np.repeat(np.cumsum(steps + 1) - (steps + 1), steps + 1)
    t = (np.arange(owner.size) - first) / steps[owner]
    start, end = segments[owner, :2], segments[owner, 2:]
    return start + t[:, None] * (end - start), owner, spacing


def _segment_distance(xy: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Distance from every point of ``xy`` (n, 2) to the nearest of ``segments`` (k, 4), in blocks of pairs."""
    best = np.full(len(xy), np.inf)
    block = max(1, PAIR_BLOCK // max(len(xy), 1))
    for start in range(0, len(segments), block):
        x0, y0, x1, y1 = segments[start:start + block].T
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        px, py = xy[:, :1] - x0, xy[:, 1:] - y0
        t = np.clip((px * dx + py * dy) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
        best = np.minimum(best, (np.square(px - t * dx) + np.square(py - t * dy)).min(axis=1))
    return np.sqrt(best)


def _windows(grid: GridSpec, x_min: float, y_min: float, x_max: float, y_max: float,
             radius: float) -> Iterator[tuple[slice, slice]]:
    """Row/column slices of the pixels within ``radius`` of a box, in blocks of at most WINDOW_CELLS."""
    c0 = max(0, math.ceil((x_min - radius - grid.x_min) / grid.pixel_width - 0.5))
    c1 = min(grid.cols, math.floor((x_max + radius - grid.x_min) / grid.pixel_width - 0.5) + 1)
    r0 = max(0, math.ceil((grid.y_max - y_max - radius) / grid.pixel_height - 0.5))
    r1 = min(grid.rows, math.floor((grid.y_max - y_min + radius) / grid.pixel_height - 0.5) + 1)
    if c1 <= c0 or r1 <= r0:
        return
    block = max(1, WINDOW_CELLS // (c1 - c0))
    for start in range(r0, r1, block):
        yield slice(start, min(start + block, r1)), slice(c0, c1)


def _polygon_density(features: FeatureSet, grid: GridSpec, radius: float, kernel: str) -> np.ndarray:
    """Σ w ∫_polygon k: sub-pixel area per pixel (padded by the radius) convolved with the pixel-mean kernel."""
    s = POLYGON_SUPERSAMPLING
    pad_x, pad_y = math.ceil(radius / grid.pixel_width), math.ceil(radius / grid.pixel_height)
    work = _padded(grid, pad_y, pad_y, pad_x, pad_x)
    fine = GridSpec(work.x_min, work.y_max, work.pixel_width / s, work.pixel_height / s,
                    work.cols * s, work.rows * s, work.crs)
    burnt = rasterize(zip(features.polygons, features.polygon_weights), out_shape=fine.shape,
                      transform=_affine(fine), fill=0.0, dtype="float64", merge_alg=MergeAlg.add)
    sub_area = fine.pixel_width * fine.pixel_height
    area = burnt.reshape(work.rows, s, work.cols, s).sum(axis=(1, 3)) * sub_area
    # kernel at sub-pixel offsets, averaged over each pixel's s × s sub-pixels
    offsets_x = (np.arange(-pad_x * s, (pad_x + 1) * s) - (s - 1) / 2.0) * fine.pixel_width
    offsets_y = (np.arange(-pad_y * s, (pad_y + 1) * s) - (s - 1) / 2.0) * fine.pixel_height
    k = kernel_value(np.hypot(offsets_x, offsets_y[:, None]), radius, kernel)
    k = k.reshape(2 * pad_y + 1, s, 2 * pad_x + 1, s).mean(axis=(1, 3))
    k *= KERNEL_MASS[kernel] * math.pi * radius * radius / (k.sum() * grid.pixel_width * grid.pixel_height)
    result = fftconvolve(area, k, mode="valid")
    # FFT round-off leaves ~1e-16 of the largest value everywhere: below 1e-9 of the largest possible value is 0
    # (in magnitude: weights may be negative)
    result[np.abs(result) < FFT_ZERO * np.abs(area).max() * np.abs(k).sum()] = 0.0
    return result


def _padded(grid: GridSpec, top: int, bottom: int, left: int, right: int) -> GridSpec:
    if not (top or bottom or left or right):
        return grid
    return GridSpec(grid.x_min - left * grid.pixel_width, grid.y_max + top * grid.pixel_height,
                    grid.pixel_width, grid.pixel_height, grid.cols + left + right, grid.rows + top + bottom,
                    grid.crs)


def _affine(grid: GridSpec) -> Affine:
    return Affine(grid.pixel_width, 0.0, grid.x_min, 0.0, -grid.pixel_height, grid.y_max)


def _parts(geometry: Mapping) -> Iterable[tuple[str, list]]:
    """(Point | LineString | Polygon, coordinates) of every part of a GeoJSON-like geometry."""
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "GeometryCollection":
        for member in geometry.get("geometries", []):
            yield from _parts(member)
    elif kind in ("Point", "LineString", "Polygon"):
        if coords:
            yield kind, coords
    elif kind in ("MultiPoint", "MultiLineString", "MultiPolygon"):
        for part in coords or []:
            if part:
                yield kind[5:], part
    elif kind is not None:
        raise InputError(f"Unsupported geometry type '{kind}'.")
