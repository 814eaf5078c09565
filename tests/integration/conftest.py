"""QGIS-level fixtures: Processing initialised with the DeepProspect provider registered."""

import gc

import pytest
from qgis.core import QgsApplication


@pytest.fixture(scope="session")
def deepprospect_provider(qgis_app, qgis_processing):
    """Register the provider once per session (and keep a reference so it is not collected)."""
    from deepprospect.algorithms.provider import DeepProspectProvider, register

    provider = DeepProspectProvider()
    register(provider)
    yield provider
    QgsApplication.processingRegistry().removeProvider(provider)


@pytest.fixture
def run_alg(deepprospect_provider):
    """Run a Processing algorithm by id with a fresh context and feedback; returns its result dict."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject

    def run(algorithm_id: str, parameters: dict, feedback=None) -> dict:
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        try:
            return processing.run(algorithm_id, parameters, context=context,
                                  feedback=feedback or QgsProcessingFeedback())
        except QgsProcessingException as error:
            message = str(error)
        # Re-raise without the traceback: a context kept alive by it and destroyed later, at random, breaks
        # QGIS 3.22's shared GeoPackage connections for layers opened after it.
        del context
        gc.collect()
        raise QgsProcessingException(message)

    return run
