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


@pytest.fixture(autouse=True)
def headless_result_loading(monkeypatch):
    """Load results as a desktop without a layer tree does: QGIS ≥ 3.34 passes the interface's layer tree to C++
    when it loads results (``runAndLoadResults``), and the test interface's is a mock that C++ refuses."""
    from processing.gui import Postprocessing

    if hasattr(Postprocessing, "iface"):
        monkeypatch.setattr(Postprocessing, "iface", None)


def _runner():
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


@pytest.fixture
def run_alg(deepprospect_provider):
    """Run a Processing algorithm by id (see _runner)."""
    return _runner()


@pytest.fixture(scope="module")
def run_alg_module(deepprospect_provider):
    """``run_alg`` for module-scoped fixtures."""
    return _runner()


_BATTERY: dict[str, list[bool]] = {}


def pytest_runtest_logreport(report):
    """Record the outcome of every bad-input battery case, by algorithm."""
    if "test_bad_input_battery.py::test_bad_input_is_handled[" in report.nodeid and (
            report.when == "call" or report.outcome != "passed"):
        algorithm = report.nodeid.split("[", 1)[1].split("-", 1)[0]
        _BATTERY.setdefault(algorithm, []).append(report.outcome == "passed")


def pytest_terminal_summary(terminalreporter):
    """The battery's figure: cases tried and handled, by algorithm."""
    if not _BATTERY:
        return
    terminalreporter.section("bad-input battery")
    for algorithm, outcomes in sorted(_BATTERY.items()):
        terminalreporter.write_line(f"{algorithm:18} {sum(outcomes):3d} of {len(outcomes):3d} handled")
    total = [outcome for outcomes in _BATTERY.values() for outcome in outcomes]
    terminalreporter.write_line(f"{'all':18} {sum(total):3d} of {len(total):3d} handled")
