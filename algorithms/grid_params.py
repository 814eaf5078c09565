"""Output-grid parameters shared by algorithms that create rasters: template, extent, pixel size, CRS."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingParameterCrs,
    QgsProcessingParameterExtent,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsRectangle,
)

from ..compat import NUMBER_DOUBLE
from ..core.errors import InputError
from ..core.grid import GridSpec
from .qgis_io import crs_to_string, grid_from_raster_layer, require_projected

TEMPLATE = "TEMPLATE"
EXTENT = "EXTENT"
PIXEL_SIZE = "PIXEL_SIZE"
OUTPUT_CRS = "OUTPUT_CRS"


def add_grid_parameters(algorithm) -> None:
    """Declare TEMPLATE, EXTENT, PIXEL_SIZE and OUTPUT_CRS on ``algorithm``."""
    algorithm.addParameter(QgsProcessingParameterRasterLayer(
        TEMPLATE, "Template raster (snap the output to its CRS, transform and size)", optional=True))
    algorithm.addParameter(QgsProcessingParameterExtent(
        EXTENT, "Output extent (default: the input layer's extent)", optional=True))
    algorithm.addParameter(QgsProcessingParameterNumber(
        PIXEL_SIZE, "Pixel size (output CRS units; not needed with a template)",
        NUMBER_DOUBLE, defaultValue=0.0, optional=True))
    algorithm.addParameter(QgsProcessingParameterCrs(
        OUTPUT_CRS, "Output CRS (projected; default: the input layer's CRS)", optional=True))


def resolve_output_crs(algorithm, parameters, context, layer_crs, layer_name: str, layer_extent: QgsRectangle):
    """The CRS the grid is computed in: the template's, else OUTPUT_CRS, else the layer's; never geographic.

    Returns (crs, template grid or None).
    """
    template = algorithm.parameterAsRasterLayer(parameters, TEMPLATE, context)
    if template is not None:
        crs, grid = template.crs(), grid_from_raster_layer(template)
        require_projected(crs, f"The template raster '{template.name()}'", layer_crs, layer_extent)
        return crs, grid
    crs = algorithm.parameterAsCrs(parameters, OUTPUT_CRS, context)
    if crs.isValid():
        require_projected(crs, "The output CRS", layer_crs, layer_extent)
        return crs, None
    require_projected(layer_crs, layer_name, layer_crs, layer_extent)
    return layer_crs, None


def build_grid(algorithm, parameters, context, crs: QgsCoordinateReferenceSystem,
               data_bounds: tuple[float, float, float, float]) -> GridSpec:
    """Grid from EXTENT (or the data's bounds, padded by half a pixel) and PIXEL_SIZE, in ``crs``."""
    pixel = algorithm.parameterAsDouble(parameters, PIXEL_SIZE, context)
    if not pixel > 0:
        raise InputError(
            f"The pixel size must be greater than zero (got {pixel:g}); give a pixel size or a template raster."
        )
    if parameters.get(EXTENT):
        extent = algorithm.parameterAsExtent(parameters, EXTENT, context, crs)
        bounds = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum())
    else:
        half = pixel / 2.0
        x_min, y_min, x_max, y_max = data_bounds
        bounds = (x_min - half, y_min - half, x_max + half, y_max + half)
    return GridSpec.from_extent(*bounds, pixel, crs_to_string(crs))
