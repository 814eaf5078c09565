"""DeepProspect QGIS plugin: deep-learning mineral prospectivity mapping as Processing algorithms.

Kept free of imports at module level: QGIS calls :func:`classFactory`, and test runners may import
this file as a package under any folder name.
"""


def classFactory(iface):  # noqa: N802 - name required by QGIS
    """Entry point QGIS calls to create the plugin."""
    from .plugin import DeepProspectPlugin

    return DeepProspectPlugin(iface)
