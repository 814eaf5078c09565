"""QGIS and Qt names this plugin uses, in their scoped form (QGIS ≥ 3.36 and QGIS 4 / Qt6) with a fallback to the
QGIS 3.22 names, so one code base runs on both. Everything else imports these names from here, and a test fails on
an unscoped QGIS enum, a direct PyQt5 import or ``exec_()`` anywhere else."""

from __future__ import annotations

from typing import Any

import qgis.core
from qgis.PyQt import QtCore


def _name(scoped: str, legacy: str, namespace: Any = qgis.core) -> Any:
    """The member at the dotted path ``scoped`` when this QGIS has it, else the one at ``legacy``."""
    for path in (scoped, legacy):
        value = namespace
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        return value
    raise AttributeError(f"Neither {scoped} nor {legacy} exists in this QGIS.")


# Processing: source types of layer parameters
SOURCE_POINT = _name("Qgis.ProcessingSourceType.VectorPoint", "QgsProcessing.TypeVectorPoint")
SOURCE_POLYGON = _name("Qgis.ProcessingSourceType.VectorPolygon", "QgsProcessing.TypeVectorPolygon")
SOURCE_ANY_GEOMETRY = _name("Qgis.ProcessingSourceType.VectorAnyGeometry", "QgsProcessing.TypeVectorAnyGeometry")
SOURCE_VECTOR = _name("Qgis.ProcessingSourceType.Vector", "QgsProcessing.TypeVector")
SOURCE_RASTER = _name("Qgis.ProcessingSourceType.Raster", "QgsProcessing.TypeRaster")
SOURCE_FILE = _name("Qgis.ProcessingSourceType.File", "QgsProcessing.TypeFile")

# Processing: parameter flags and kinds
FLAG_ADVANCED = _name("Qgis.ProcessingParameterFlag.Advanced", "QgsProcessingParameterDefinition.FlagAdvanced")
FLAG_OPTIONAL = _name("Qgis.ProcessingParameterFlag.Optional", "QgsProcessingParameterDefinition.FlagOptional")
NUMBER_INTEGER = _name("Qgis.ProcessingNumberParameterType.Integer", "QgsProcessingParameterNumber.Integer")
NUMBER_DOUBLE = _name("Qgis.ProcessingNumberParameterType.Double", "QgsProcessingParameterNumber.Double")
FIELD_NUMERIC = _name("Qgis.ProcessingFieldParameterDataType.Numeric", "QgsProcessingParameterField.Numeric")
FILE_BEHAVIOUR_FILE = _name("Qgis.ProcessingFileParameterBehavior.File", "QgsProcessingParameterFile.File")
FILE_BEHAVIOUR_FOLDER = _name("Qgis.ProcessingFileParameterBehavior.Folder", "QgsProcessingParameterFile.Folder")

# Geometry and layer types
GEOMETRY_POINT = _name("Qgis.GeometryType.Point", "QgsWkbTypes.PointGeometry")
GEOMETRY_POLYGON = _name("Qgis.GeometryType.Polygon", "QgsWkbTypes.PolygonGeometry")
WKB_NO_GEOMETRY = _name("Qgis.WkbType.NoGeometry", "QgsWkbTypes.NoGeometry")
WKB_POINT = _name("Qgis.WkbType.Point", "QgsWkbTypes.Point")
WKB_MULTIPOLYGON = _name("Qgis.WkbType.MultiPolygon", "QgsWkbTypes.MultiPolygon")
LAYER_RASTER = _name("Qgis.LayerType.Raster", "QgsMapLayerType.RasterLayer")

# Features, CRS text, messages
FAST_INSERT = _name("QgsFeatureSink.Flag.FastInsert", "QgsFeatureSink.FastInsert")
REQUEST_NO_GEOMETRY = _name("Qgis.FeatureRequestFlag.NoGeometry", "QgsFeatureRequest.NoGeometry")
WKT_GDAL = _name("Qgis.CrsWktVariant.PreferredGdal", "QgsCoordinateReferenceSystem.WKT_PREFERRED_GDAL")
MESSAGE_WARNING = _name("Qgis.MessageLevel.Warning", "Qgis.Warning")
MODEL_SOURCE_STATIC = _name("Qgis.ProcessingModelChildParameterSource.StaticValue",
                            "QgsProcessingModelChildParameterSource.StaticValue")

# Attribute field types: QMetaType from QGIS 3.38 on (required by Qt6), QVariant before.
_SCOPED_FIELDS = qgis.core.Qgis.QGIS_VERSION_INT >= 33800
FIELD_INT = QtCore.QMetaType.Type.Int if _SCOPED_FIELDS else QtCore.QVariant.Int
FIELD_DOUBLE = QtCore.QMetaType.Type.Double if _SCOPED_FIELDS else QtCore.QVariant.Double
FIELD_STRING = QtCore.QMetaType.Type.QString if _SCOPED_FIELDS else QtCore.QVariant.String
FIELD_BOOL = QtCore.QMetaType.Type.Bool if _SCOPED_FIELDS else QtCore.QVariant.Bool
