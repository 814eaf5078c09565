"""deepprospect:dualwindow — a pixel-pair model's dual-window anomaly map (zhang2021), with an optional window sweep."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..compat import FILE_BEHAVIOUR_FILE, SOURCE_POINT
from ..core.errors import InputError
from ..core.outputs import check_writable
from ..models.dualwindow import DEFAULT_BATCH, PAPER_WINDOWS, dual_window_map, parse_windows, sweep_windows
from ..models.inference import DEVICES
from .base import DeepProspectAlgorithm
from .parameters import DEVICE_HELP, explained, named_enum
from .qgis_io import feedback_callbacks, point_parameter
from .styles import StyleOnLoad

_PAPER_WINDOWS = "; ".join(f"{inner},{outer}" for inner, outer in PAPER_WINDOWS)


class DualWindow(DeepProspectAlgorithm):
    """Mean dissimilarity between each cell and the ring of cells between two windows around it."""

    MODEL, STACK, INNER, OUTER, RING_STRIDE, BATCH_SIZE, DEVICE, OUTPUT = (
        "MODEL", "STACK", "INNER", "OUTER", "RING_STRIDE", "BATCH_SIZE", "DEVICE", "OUTPUT")
    DEPOSITS, WINDOWS, SWEEP_TABLE, CELLS = "DEPOSITS", "WINDOWS", "SWEEP_TABLE", "CELLS"

    NAME = "dualwindow"
    DISPLAY_NAME = "Dual-window anomaly (pixel pairs)"
    GROUP = "maps"
    TAGS = (
        "anomaly", "dual window", "pixel pair", "PPF", "geochemical anomaly", "1D CNN", "ONNX", "zhang2021",
    )
    MEMORY_HINT = "Lower 'Pairs per batch' (BATCH_SIZE)"
    HELP = (
        "Maps multivariate anomalies with a pixel-pair model, after Zhang et al. 2021 (pixel-pair features and a "
        "deep 1D CNN; dual-window detector of Liu &amp; Chang 2013). Train the model with 'Train prospectivity "
        "model', architecture ppf_cnn1d (preset zhang2021): it learns whether two cells are of the same class "
        "(similar) or not (dissimilar) from the pairs of training cells.<br><br>"
        "<b>Score</b>: for each cell T, the pairs (T, ring cell) over the ring of cells inside the outer window "
        "and outside the inner window (both odd, in cells, centred on T; inner 3 / outer 5 gives the paper's 16 "
        "pairs, its best map 13 / 35 gives 1,056); the value is the mean probability that the pair is "
        "dissimilar, 0-1: high where T differs from its surroundings.<br>"
        "<b>Nodata</b>: a cell that is nodata in a model band stays nodata; ring cells that are nodata or beyond "
        "the stack are skipped.<br>"
        "<b>Checks</b>: the model's bands are taken from the stack by name, and the stack's transform and "
        "normalisation must be the training stack's, as for 'Prospectivity map'.<br>"
        "<b>Speed</b>: every cell costs one network run per ring cell. Measured on a busy 2-core CPU: about 11,000 "
        "pairs per second with 39 bands, so a full 13 / 35 ring takes about 0.1 s per cell (some 27 hours per "
        "million cells; the paper's 251 × 310 grid about 2 hours). The GPU (CUDA, device auto) is far faster. "
        "<i>Ring stride</i> k &gt; 1 scores only the ring cells whose row and column offsets are multiples of k: "
        "stride 2 cuts a 13 / 35 ring to 240 pairs (4.4× faster), stride 3 to 96 (11×), for a first look.<br>"
        "<b>Window sweep</b> (optional, the paper's Fig. 9): with known deposits and a sweep table, the map of "
        "each window pair listed (default: the paper's eight) is scored by its ROC AUC (deposit cells against "
        "every other cell with data) into a CSV table (inner, outer, ring stride, ring cells, AUC, deposits, "
        "cells, seconds); the sweep multiplies the run time by the number of pairs.<br>"
        "<b>Output</b>: a float32 GeoTIFF, band 'dissimilarity', with the model and windows in its metadata "
        "(tag DEEPPROSPECT_DUAL_WINDOW). Cancel stops between batches and writes nothing."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Pixel-pair model file (.onnx)", FILE_BEHAVIOUR_FILE, extension="onnx"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack"))
        self.addParameter(QgsProcessingParameterNumber(
            self.INNER, "Inner window (cells, odd)", defaultValue=13, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.OUTER, "Outer window (cells, odd)", defaultValue=35, minValue=3))
        self.addParameter(explained(QgsProcessingParameterNumber(
            self.RING_STRIDE, "Ring stride (1 = every ring cell)", defaultValue=1, minValue=1),
            "k > 1 scores the ring cells whose offsets are multiples of k: about k² times faster."))
        self.addParameter(explained(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Pairs per batch", defaultValue=DEFAULT_BATCH, minValue=1),
            "Pairs the model scores at once (whole rings): larger is faster until memory runs short.",
            advanced=True))
        self.addParameter(explained(named_enum(self.DEVICE, "Device", DEVICES), DEVICE_HELP))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.DEPOSITS, "Known deposits (window sweep)", [SOURCE_POINT], optional=True))
        self.addParameter(explained(QgsProcessingParameterString(
            self.WINDOWS, "Window pairs to sweep (inner,outer; …)", _PAPER_WINDOWS, optional=True),
            "Pairs 'inner,outer' separated by semicolons; default: zhang2021's eight (Figs. 8-9)."))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Dual-window anomaly map"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.SWEEP_TABLE, "Window sweep table (AUC per window pair)", "CSV files (*.csv)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.CELLS, "Cells scored"))

    def compute(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The evidence stack must be a file raster (GeoTIFF) that GDAL can open.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        table = self.parameterAsFileOutput(parameters, self.SWEEP_TABLE, context) or None
        model = self.parameterAsFile(parameters, self.MODEL, context)
        options = {"ring_stride": self.parameterAsInt(parameters, self.RING_STRIDE, context),
                   "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                   "device": self.parameterAsEnumString(parameters, self.DEVICE, context)}
        deposits, windows = None, []
        if table:
            check_writable(table)
            deposits = point_parameter(self, parameters, self.DEPOSITS, "deposit", layer.crs(), context, feedback,
                                       required=True)
            windows = parse_windows(self.parameterAsString(parameters, self.WINDOWS, context) or _PAPER_WINDOWS)
        progress, is_cancelled = feedback_callbacks(feedback)
        share = 1.0 / (1 + len(windows))
        report = dual_window_map(
            model, layer.source(), output, inner=self.parameterAsInt(parameters, self.INNER, context),
            outer=self.parameterAsInt(parameters, self.OUTER, context), **options,
            progress=lambda p: progress(p * share), is_cancelled=is_cancelled, log=feedback.pushInfo,
            warn=feedback.pushWarning)
        if table:
            sweep_windows(model, layer.source(), deposits, table, windows, **options,
                          progress=lambda p: progress(100 * share + p * (1 - share)), is_cancelled=is_cancelled,
                          log=feedback.pushInfo)
        StyleOnLoad.attach(context, output, "prospectivity.qml", name="Dual-window anomaly")
        return {self.OUTPUT: report.output, self.SWEEP_TABLE: table, self.CELLS: report.valid_cells}
