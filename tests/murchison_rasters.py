"""Evidence rasters computed from the real Murchison data, for screening tests (no QGIS needed)."""

from __future__ import annotations

import numpy as np
from deepprospect.core.grid import GridSpec
from deepprospect.core.raster_io import write_geotiff
from osgeo import ogr
from rasterio.features import rasterize
from rasterio.transform import Affine
from scipy.ndimage import distance_transform_edt

MURCHISON_CRS = "EPSG:20350"
# The Murchison gold deposits' extent, padded, in EPSG:20350 metres.
MURCHISON_EXTENT = (380000.0, 6700000.0, 690000.0, 7100000.0)


def fault_lines(gpkg: str) -> list[list[tuple[float, float]]]:
    """Vertices of every Murchison fault segment (layer ``murchison_faults``)."""
    source = ogr.Open(gpkg)
    lines = []
    for feature in source.GetLayerByName("murchison_faults"):
        geometry = feature.GetGeometryRef()
        lines.append([geometry.GetPoint_2D(i) for i in range(geometry.GetPointCount())])
    return lines


def fault_distance_stack(gpkg: str, path: str, pixel: float = 2000.0, seed: int = 0,
                         band_names: tuple[str, str] | None = ("fault_distance", "noise")) -> GridSpec:
    """Write a 2-band GeoTIFF: distance (m) to the nearest rasterised fault, and seeded noise."""
    grid = GridSpec.from_extent(*MURCHISON_EXTENT, pixel, MURCHISON_CRS)
    transform = Affine(grid.pixel_width, 0, grid.x_min, 0, -grid.pixel_height, grid.y_max)
    shapes = [{"type": "LineString", "coordinates": line} for line in fault_lines(gpkg)]
    on_fault = rasterize(shapes, out_shape=grid.shape, transform=transform, all_touched=True, dtype="uint8") > 0
    distance = distance_transform_edt(~on_fault, sampling=(grid.pixel_height, grid.pixel_width))
    noise = np.random.default_rng(seed).standard_normal(grid.shape)
    write_geotiff(path, np.stack([distance, noise]), grid, list(band_names or ("", "")))
    return grid
