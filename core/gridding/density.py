"""Distance, density and buffer-distance density of vector features (points, lines, polygons) on a grid.

Three evidence maps, all evaluated at pixel centres ``x`` of a :class:`GridSpec`:

* **distance** — Euclidean distance (map units) from ``x`` to the nearest point of the features: of a line,
  of a polygon's outline or a point feature, and 0 inside a polygon (a pixel whose centre it holds, as
  ``gdal_rasterize`` decides). Exact, not to burnt pixels, and features outside the grid count: the
  distance to points spaced along the features bounds each cell's distance from above, so only the
  segments that can come closer than that bound are measured (see :func:`distance_tiles`). At least
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

**Tiles.** Every map is computed tile by tile (:func:`density_tiles`, :func:`distance_tiles`), in this process or
on a Dask cluster (:mod:`.tiles`), so memory holds a few tiles and the features, never the grid. A density tile
gets the features within the radius of it (a halo of the radius) and a distance tile the segments that can be
nearest to one of its cells; polygons are rasterised on blocks fixed on the grid. Each cell sums the same terms in
the same order whatever the tiles, so the map is the same bit for bit for any tile size and wherever tiles run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.features import MergeAlg, rasterize
from rasterio.transform import Affine
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from ..errors import InputError
from ..grid import GridSpec
from ..progress import CancelFn, LogFn, ProgressFn
from ..raster_io import TILE
from ..tiles import Tile, assemble, grid_tiles, map_tiles, tile_members

# ∫_{R²} k divided by π B², per kernel.
KERNEL_MASS = {"uniform": 1.0, "triangular": 1.0 / 3.0, "epanechnikov": 0.5, "quartic": 1.0 / 3.0}
KERNELS = tuple(KERNEL_MASS)
# Polygons: sub-pixels per pixel side used to measure their area and average the kernel.
POLYGON_SUPERSAMPLING = 4
# Cells per side of the tiles computed at once (bounds memory; the values do not depend on it).
TILE_SIZE = 2 * TILE  # measured a little faster than TILE (fewer features split between tiles)
# Polygons are rasterised (and convolved) on blocks of this many cells per side, fixed on the grid's upper-left
# corner, so that a tile of any size or position gets the same values.
POLYGON_BLOCK = 256
# Cells per side of the blocks rasterised to check that a feature falls on the grid.
CHECK_BLOCK = 2048
# Distance: cells per side of the blocks of a tile whose candidate segments are found together.
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


def distance_tiles(
    features: FeatureSet,
    grid: GridSpec,
    *,
    tile_size: int = TILE_SIZE,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Distance (map units, float32) from every pixel centre to the nearest point of the features (0 inside
    polygons), tile by tile: ``(tile, values)`` in the order tiles complete (see :func:`.tiles.map_tiles`).

    Points spaced at most ``spacing`` apart along every segment (points are zero-length segments, polygons
    their outlines) bound the distances from above: for a block of cells with centre ``c`` and half-diagonal
    ``h``, no cell is farther than ``u + h`` from the features, ``u`` the distance from ``c`` to the nearest
    spaced point. A segment can only be the nearest to one of the block's cells if it has a point within
    ``u + 2h`` of ``c``, hence a spaced point within ``u + 2h + spacing / 2``: only those segments are
    measured, exactly. The bound picks each tile's candidate segments from the spaced points of all features
    (held here: :func:`memory_bytes` says how much), then the tile's :data:`DISTANCE_TILE` blocks pick theirs
    among them. A cell's value is the smallest exact distance to a segment, whichever tile holds it, so any
    tile size gives the same bits.

    Args:
        features: points, segments and polygons, in the grid's CRS; at least one must fall on the grid.
        grid: the output grid.
        tile_size: cells per tile side.
        scheduler: a Dask scheduler address (or :data:`.tiles.SCHEDULER_ENV`); None: this process.
        progress, is_cancelled, log: callbacks (0–100 by tiles, cancel flag between tiles, messages).
    """
    if not _any_feature_on(features, grid):
        raise InputError("No feature lies on the output grid; check the extent or the template.")
    segments = _outline_segments(features)
    samples, owner, spacing = _spaced_points(segments, grid)
    tree = cKDTree(samples)
    tiles = grid_tiles(grid.rows, grid.cols, tile_size)
    polygons_near = _polygon_blocks(features, grid, 0.0)

    def tasks() -> Iterator[_DistanceTask]:
        for tile in tiles:
            centre, half = _circle(grid, tile)
            upper, _ = tree.query(centre)
            reach = (upper + 2.0 * half + spacing / 2.0) * (1.0 + 1e-9) + 1e-9
            candidates = segments[np.unique(owner[tree.query_ball_point(centre, reach)])]
            yield _DistanceTask(tile, grid, candidates, polygons_near(tile))

    done = map_tiles(_distance_tile, tasks(), len(tiles), scheduler=scheduler, progress=progress,
                     is_cancelled=is_cancelled, log=log)
    return ((task.tile, values) for task, values in done)


def distance_to_features(features: FeatureSet, grid: GridSpec, **options) -> np.ndarray:
    """The whole (rows, cols) float32 map of :func:`distance_tiles` (same options), for grids that fit in memory."""
    return assemble(grid.shape, distance_tiles(features, grid, **options))


def density_tiles(
    features: FeatureSet,
    grid: GridSpec,
    radius: float,
    kernel: str = "uniform",
    *,
    tile_size: int = TILE_SIZE,
    scheduler: str | None = None,
    progress: ProgressFn = None,
    is_cancelled: CancelFn = None,
    log: LogFn = None,
) -> Iterator[tuple[Tile, np.ndarray]]:
    """Kernel density of the features at every pixel centre (float32; see the module docstring), tile by tile:
    ``(tile, values)`` in the order tiles complete (see :func:`.tiles.map_tiles`).

    A tile gets the features within ``radius`` of it (its halo) and adds their integrals cell by cell in the
    features' order, as over the whole grid; polygons are measured on :data:`POLYGON_BLOCK` blocks fixed on
    the grid. So any tile size, here or on Dask, gives the same bits.

    Args:
        features: points, segments and polygons with their weights, in the grid's CRS.
        grid: the output grid.
        radius: search radius (``uniform``) or buffer distance ``B`` (decaying kernels), map units.
        kernel: one of :data:`KERNELS`.
        tile_size: cells per tile side.
        scheduler: a Dask scheduler address (or :data:`.tiles.SCHEDULER_ENV`); None: this process.
        progress, is_cancelled, log: callbacks (0–100 by tiles, cancel flag between tiles, messages).
    """
    if not (radius > 0 and math.isfinite(radius)):
        raise InputError(f"The radius / buffer distance must be greater than zero (got {radius:g}).")
    if kernel not in KERNEL_MASS:
        raise InputError(f"Unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}.")
    segments, segment_weights = features.segments, features.segment_weights
    keep = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]) > 0
    segments, segment_weights = segments[keep], segment_weights[keep]
    points = features.points
    boxes = np.concatenate([np.column_stack([segments[:, [0, 2]].min(1), segments[:, [1, 3]].min(1),
                                             segments[:, [0, 2]].max(1), segments[:, [1, 3]].max(1)]),
                            np.hstack([points, points])])
    tiles = grid_tiles(grid.rows, grid.cols, tile_size)
    near = tile_members(_reach(grid, boxes, radius), grid.rows, grid.cols, tile_size)
    polygons_near = _polygon_blocks(features, grid, radius)

    def tasks() -> Iterator[_DensityTask]:
        for index, tile in enumerate(tiles):
            chosen = near(index)
            lines, dots = chosen[chosen < len(segments)], chosen[chosen >= len(segments)] - len(segments)
            yield _DensityTask(tile, grid, radius, kernel, segments[lines], segment_weights[lines], points[dots],
                               features.point_weights[dots], polygons_near(tile))

    done = map_tiles(_density_tile, tasks(), len(tiles), scheduler=scheduler, progress=progress,
                     is_cancelled=is_cancelled, log=log)
    return ((task.tile, values) for task, values in done)


def feature_density(features: FeatureSet, grid: GridSpec, radius: float, kernel: str = "uniform",
                    **options) -> np.ndarray:
    """The whole (rows, cols) float32 map of :func:`density_tiles` (same options), for grids that fit in memory."""
    return assemble(grid.shape, density_tiles(features, grid, radius, kernel, **options))


def memory_bytes(features: FeatureSet, grid: GridSpec, radius: float, kernel: str | None,
                 tile_size: int = TILE_SIZE) -> int:
    """Upper estimate of the memory a run needs in this process (``kernel=None``: distance): a tile's work plus
    what depends on the features (the spaced points of distance, a polygon block), not the grid's size."""
    side = min(tile_size, max(grid.rows, grid.cols))
    items = len(features.segments) + len(features.points) + len(features.polygons)
    total = 16 * side * side + 64 * items
    if kernel is None:
        segments = _outline_segments(features)
        samples = int(_spacing(segments, grid)[1].sum()) + len(segments)
        return total + 80 * samples + 8 * 8 * PAIR_BLOCK
    total += 12 * 8 * min(side * side, WINDOW_CELLS)
    if features.polygons:
        padded = (POLYGON_BLOCK + 2 * math.ceil(radius / grid.pixel_height) + 1) * (
            POLYGON_BLOCK + 2 * math.ceil(radius / grid.pixel_width) + 1)
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


@dataclass(frozen=True)
class _DistanceTask:
    """One tile of a distance map with its candidate segments and the polygons of its blocks."""

    tile: Tile
    grid: GridSpec
    segments: np.ndarray
    polygon_blocks: tuple


@dataclass(frozen=True)
class _DensityTask:
    """One tile of a density map with the features within the radius of it."""

    tile: Tile
    grid: GridSpec
    radius: float
    kernel: str
    segments: np.ndarray
    segment_weights: np.ndarray
    points: np.ndarray
    point_weights: np.ndarray
    polygon_blocks: tuple


def _distance_tile(task: _DistanceTask) -> np.ndarray:
    """Exact distances of a tile's cells to its candidate segments, 0 inside polygons (see distance_tiles)."""
    tile, grid = task.tile, task.grid
    samples, owner, spacing = _spaced_points(task.segments, grid)
    tree = cKDTree(samples)
    xs, ys = grid.x_centres()[tile.slices[1]], grid.y_centres(tile.row, tile.row + tile.height)
    out = np.empty((tile.height, tile.width), dtype=np.float32)
    blocks = grid_tiles(tile.height, tile.width, DISTANCE_TILE)
    corners = np.array([[xs[b.col], ys[b.row], xs[b.col + b.width - 1], ys[b.row + b.height - 1]] for b in blocks])
    centres = (corners[:, :2] + corners[:, 2:]) / 2.0
    halves = np.hypot(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]) / 2.0
    upper, _ = tree.query(centres)
    reaches = (upper + 2.0 * halves + spacing / 2.0) * (1.0 + 1e-9) + 1e-9
    for block, centre, reach in zip(blocks, centres, reaches):
        rows, cols = block.slices
        xy = np.column_stack([np.tile(xs[cols], block.height), np.repeat(ys[rows], block.width)])
        candidates = task.segments[np.unique(owner[tree.query_ball_point(centre, reach)])]
        out[rows, cols] = _segment_distance(xy, candidates).reshape(block.height, block.width)
    for block, polygons, _ in task.polygon_blocks:
        inside = rasterize(polygons, out_shape=(block.height, block.width), transform=_affine(_sub_grid(grid, block)),
                           fill=0, default_value=1, dtype="uint8", all_touched=False)
        tile_part, block_part = _overlap(tile, block)
        out[tile_part][inside[block_part].astype(bool)] = 0.0
    return out


def _density_tile(task: _DensityTask) -> np.ndarray:
    """Density of a tile's cells: its segments, then points, then polygon blocks, added cell by cell in order."""
    tile, grid, radius, kernel = task.tile, task.grid, task.radius, task.kernel
    out = np.zeros((tile.height, tile.width), dtype=np.float64)
    _add_segments(out, tile, task.segments, task.segment_weights, grid, radius, kernel)
    _add_points(out, tile, task.points, task.point_weights, grid, radius, kernel)
    for block, polygons, weights in task.polygon_blocks:
        tile_part, block_part = _overlap(tile, block)
        out[tile_part] += _polygon_density(block, polygons, weights, grid, radius, kernel)[block_part]
    return (out / (KERNEL_MASS[kernel] * math.pi * radius * radius)).astype(np.float32)


def _add_segments(out: np.ndarray, tile: Tile, segments: np.ndarray, weights: np.ndarray, grid: GridSpec,
                  radius: float, kernel: str) -> None:
    """Add w ∫_segment k(|x − s|) ds to the cells of ``tile`` (``out``) for every segment, in order."""
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    xs, ys, r2 = grid.x_centres(), grid.y_centres(), radius * radius
    for (x0, y0, x1, y1), weight, length in zip(segments, weights, lengths):
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        for rows, cols in _windows(grid, tile, min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), radius):
            px, py = xs[cols] - x0, ys[rows] - y0
            along = px * ux + py[:, None] * uy  # arc length of the foot of the perpendicular
            across2 = np.square(py[:, None] * ux - px * uy)
            half = np.sqrt(np.maximum(r2 - across2, 0.0))
            lo = np.maximum(-along, -half)  # the chord inside the disk, relative to the foot
            hi = np.minimum(length - along, half)
            hit = hi > lo
            value = _kernel_integral(lo, hi, across2, radius, kernel)
            out[_local(tile, rows, cols)] += np.where(hit, weight * value, 0.0)


def _add_points(out: np.ndarray, tile: Tile, points: np.ndarray, weights: np.ndarray, grid: GridSpec,
                radius: float, kernel: str) -> None:
    """Add w k(|x − p|) to the cells of ``tile`` (``out``) for every point, in order."""
    xs, ys = grid.x_centres(), grid.y_centres()
    for (x, y), weight in zip(points, weights):
        for rows, cols in _windows(grid, tile, x, y, x, y, radius):
            distance = np.hypot(xs[cols] - x, (ys[rows] - y)[:, None])
            out[_local(tile, rows, cols)] += weight * kernel_value(distance, radius, kernel)


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


def _windows(grid: GridSpec, tile: Tile, x_min: float, y_min: float, x_max: float, y_max: float,
             radius: float) -> Iterator[tuple[slice, slice]]:
    """Row/column slices (of the grid) of the cells of ``tile`` within ``radius`` of a box, in blocks of at most
    WINDOW_CELLS."""
    c0 = max(tile.col, math.ceil((x_min - radius - grid.x_min) / grid.pixel_width - 0.5))
    c1 = min(tile.col + tile.width, math.floor((x_max + radius - grid.x_min) / grid.pixel_width - 0.5) + 1)
    r0 = max(tile.row, math.ceil((grid.y_max - y_max - radius) / grid.pixel_height - 0.5))
    r1 = min(tile.row + tile.height, math.floor((grid.y_max - y_min + radius) / grid.pixel_height - 0.5) + 1)
    if c1 <= c0 or r1 <= r0:
        return
    block = max(1, WINDOW_CELLS // (c1 - c0))
    for start in range(r0, r1, block):
        yield slice(start, min(start + block, r1)), slice(c0, c1)


def _reach(grid: GridSpec, boxes: np.ndarray, radius: float) -> np.ndarray:
    """(n, 4) cell ranges ``row_start, row_stop, col_start, col_stop`` holding the cells within ``radius`` of
    each box ``x_min, y_min, x_max, y_max`` (one cell wider each way than :func:`_windows`; not clipped)."""
    def cells(low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return np.column_stack([np.floor(low - 0.5) - 1, np.floor(high - 0.5) + 2]).clip(-1, 2**53)

    rows = cells((grid.y_max - boxes[:, 3] - radius) / grid.pixel_height,
                 (grid.y_max - boxes[:, 1] + radius) / grid.pixel_height)
    cols = cells((boxes[:, 0] - radius - grid.x_min) / grid.pixel_width,
                 (boxes[:, 2] + radius - grid.x_min) / grid.pixel_width)
    return np.hstack([rows, cols]).astype(np.int64)


def _polygon_blocks(features: FeatureSet, grid: GridSpec, radius: float
                    ) -> Callable[[Tile], tuple[tuple[Tile, tuple, np.ndarray], ...]]:
    """For a tile: the :data:`POLYGON_BLOCK` blocks of the grid it overlaps, each with the polygons (and their
    weights) that can reach the block's cells within ``radius``; blocks no polygon reaches are left out."""
    if not features.polygons:
        return lambda tile: ()
    side = POLYGON_BLOCK
    blocks = grid_tiles(grid.rows, grid.cols, side)
    boxes = np.array([(*np.min(ring, axis=0), *np.max(ring, axis=0))
                      for ring in (np.asarray(p["coordinates"][0], dtype=np.float64) for p in features.polygons)])
    margin = 2.0 * max(grid.pixel_width, grid.pixel_height)  # a pixel-mean kernel reaches past the radius
    near = tile_members(_reach(grid, boxes, radius + margin), grid.rows, grid.cols, side)
    per_row = math.ceil(grid.cols / side)

    def around(tile: Tile) -> tuple[tuple[Tile, tuple, np.ndarray], ...]:
        found = []
        for block_row in range(tile.row // side, (tile.row + tile.height - 1) // side + 1):
            for block_col in range(tile.col // side, (tile.col + tile.width - 1) // side + 1):
                chosen = near(block_row * per_row + block_col)
                if len(chosen):
                    found.append((blocks[block_row * per_row + block_col],
                                  tuple(features.polygons[i] for i in chosen), features.polygon_weights[chosen]))
        return tuple(found)

    return around


def _polygon_density(block: Tile, polygons: Sequence[Mapping], weights: np.ndarray, grid: GridSpec, radius: float,
                     kernel: str) -> np.ndarray:
    """Σ w ∫_polygon k on a block: sub-pixel area per pixel (the block padded by the radius) convolved with the
    pixel-mean kernel."""
    s = POLYGON_SUPERSAMPLING
    pad_x, pad_y = math.ceil(radius / grid.pixel_width), math.ceil(radius / grid.pixel_height)
    work = _sub_grid(grid, block, pad_y, pad_x)
    fine = GridSpec(work.x_min, work.y_max, work.pixel_width / s, work.pixel_height / s,
                    work.cols * s, work.rows * s, work.crs)
    burnt = rasterize(zip(polygons, weights), out_shape=fine.shape, transform=_affine(fine), fill=0.0,
                      dtype="float64", merge_alg=MergeAlg.add)
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


def _any_feature_on(features: FeatureSet, grid: GridSpec) -> bool:
    """Whether :func:`rasterize_features` burns a cell of the grid, rasterising blocks of CHECK_BLOCK cells."""
    return any(rasterize_features(features, _sub_grid(grid, block)).any()
               for block in grid_tiles(grid.rows, grid.cols, CHECK_BLOCK))


def _circle(grid: GridSpec, tile: Tile) -> tuple[np.ndarray, float]:
    """Centre and half-diagonal of the pixel centres of a tile."""
    x0 = grid.x_min + (tile.col + 0.5) * grid.pixel_width
    x1 = grid.x_min + (tile.col + tile.width - 0.5) * grid.pixel_width
    y0 = grid.y_max - (tile.row + 0.5) * grid.pixel_height
    y1 = grid.y_max - (tile.row + tile.height - 0.5) * grid.pixel_height
    return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0]), math.hypot(x1 - x0, y1 - y0) / 2.0


def _sub_grid(grid: GridSpec, tile: Tile, pad_rows: int = 0, pad_cols: int = 0) -> GridSpec:
    """The grid of a tile's cells, padded by whole cells each way."""
    return GridSpec(grid.x_min + (tile.col - pad_cols) * grid.pixel_width,
                    grid.y_max - (tile.row - pad_rows) * grid.pixel_height, grid.pixel_width, grid.pixel_height,
                    tile.width + 2 * pad_cols, tile.height + 2 * pad_rows, grid.crs)


def _overlap(tile: Tile, block: Tile) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The cells two windows share, as slices of an array of ``tile`` and of an array of ``block``."""
    r0, r1 = max(tile.row, block.row), min(tile.row + tile.height, block.row + block.height)
    c0, c1 = max(tile.col, block.col), min(tile.col + tile.width, block.col + block.width)
    return ((slice(r0 - tile.row, r1 - tile.row), slice(c0 - tile.col, c1 - tile.col)),
            (slice(r0 - block.row, r1 - block.row), slice(c0 - block.col, c1 - block.col)))


def _local(tile: Tile, rows: slice, cols: slice) -> tuple[slice, slice]:
    """Grid slices inside a tile as slices of the tile's array."""
    return slice(rows.start - tile.row, rows.stop - tile.row), slice(cols.start - tile.col, cols.stop - tile.col)


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
