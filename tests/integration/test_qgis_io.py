"""algorithms.qgis_io.read_points: chunked reading gives every sample, multipoint parts and NULLs included."""

import numpy as np
from deepprospect.algorithms import qgis_io
from layer_factory import wkt_layer
from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsProcessingContext, QgsProcessingFeatureSource


def test_points_are_read_in_chunks_into_arrays(monkeypatch):
    monkeypatch.setattr(qgis_io, "READ_CHUNK", 3)  # several chunks, the last one partial
    wkts = [f"MultiPoint(({i} {2 * i}), ({i} {2 * i + 1}))" if i % 4 == 0 else f"MultiPoint(({i} {2 * i}))"
            for i in range(10)]
    layer = wkt_layer(wkts, "MultiPoint", fields={"Cu": [str(i) if i != 5 else "n/a" for i in range(10)]})
    layer.dataProvider().addFeatures([QgsFeature(layer.fields())])  # no geometry: skipped
    context = QgsProcessingContext()
    points, values = qgis_io.read_points(QgsProcessingFeatureSource(layer, context), ["Cu"],
                                         QgsCoordinateReferenceSystem("EPSG:32650"), context)
    expected = [(i, 2 * i + part, np.nan if i == 5 else i) for i in range(10) for part in range(1 + (i % 4 == 0))]
    np.testing.assert_array_equal(np.column_stack([points, values]), np.array(expected, dtype=float))
    assert points.flags.c_contiguous and values.flags.c_contiguous and values.shape == (len(expected), 1)
