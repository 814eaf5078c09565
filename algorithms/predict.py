"""deepprospect:predict — a trained model file applied to an evidence stack: the prospectivity map."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..compat import FILE_BEHAVIOUR_FILE
from ..core.errors import InputError
from ..models.inference import DEVICES, MODES, predict_map
from .base import DeepProspectAlgorithm
from .parameters import DEVICE_HELP, add_scheduler_parameter, explained, named_enum, scheduler_parameter
from .qgis_io import feedback_callbacks
from .study_area import add_study_area, study_area_cells
from .styles import StyleOnLoad


class Predict(DeepProspectAlgorithm):
    """Run a DeepProspect model over an evidence stack, tile by tile, into a prospectivity raster."""

    MODEL, STACK, MODE, STRIDE, BATCH_SIZE, DEVICE, OUTPUT = (
        "MODEL", "STACK", "MODE", "STRIDE", "BATCH_SIZE", "DEVICE", "OUTPUT")

    NAME = "predict"
    DISPLAY_NAME = "Prospectivity map"
    GROUP = "models"
    TAGS = (
        "prospectivity", "mineral potential", "favourability", "prediction", "inference", "ONNX", "map",
    )
    MEMORY_HINT = "Lower 'Windows per batch' (BATCH_SIZE)"
    HELP = (
        "Applies a trained model file (.onnx, written by DeepProspect) to an evidence stack and writes a "
        "prospectivity map: for each cell, the model's probability (0-1) that the window of evidence around it "
        "looks like the deposit windows it was trained on.<br><br>"
        "<b>Window of a cell</b>: the same as in training: p × p cells (p = the model's patch size) around the "
        "cell (for even p it reaches one cell further up and left than down and right: rows r − p/2 … r + p/2 − 1). "
        "Element-vector models (1D CNN, MLP) read the cell alone; the AFFCNN reads the window and the cell's "
        "vector. Windows are padded as in training: where a window runs "
        "off the stack or over nodata, those values read 0.0 (the mean of a z-scored band), so every cell with data "
        "gets a value, up to the stack's edges. A cell that is itself nodata (in any of the model's bands) stays "
        "nodata.<br>"
        "<b>Study area</b> (optional polygons; holes and features whose hole field is TRUE are subtracted): cells "
        "whose centre lies outside are nodata and are not computed; "
        "windows still read the evidence around them.<br>"
        "<b>Predict</b>: <i>every cell</i>, or with a <i>stride</i> k > 1 one value per k × k cells (a map k times "
        "coarser, aligned on the stack's top-left corner; each value is the window of the block's centre cell), "
        "which is k² times faster; <i>blocks of the patch size</i>: one value per p × p block, the model reading "
        "exactly that block (as he2024 and gao2022 predict), stride ignored. A block (or k × k cell) whose centre "
        "cell lies beyond the stack's last row or column is nodata.<br>"
        "<b>Checks</b>: the model's bands are taken from the stack by name in the model's order (other bands are "
        "ignored); a missing band, or a stack transformed or normalised differently from the training stack, "
        "stops the run and says what differs. A different CRS or pixel size only warns.<br>"
        "<b>Speed</b>: LeNet models scan whole tiles in one pass (fast scanning), about a microsecond per cell on "
        "a 2-core CPU; other models read each window separately, from about 0.1 ms (small nets) to several ms "
        "(ResNet) per cell: use a stride for a first look at large areas. <i>Device</i>: the GPU (CUDA) when "
        "onnxruntime can really use it, else the CPU; the log says which ran and why. <i>Dask scheduler</i> "
        "(advanced): the tiles are predicted by the workers of a Dask cluster, with the same map.<br>"
        "<b>Output</b>: a float32 GeoTIFF, band 'prospectivity', styled 0-1 on load; its metadata names the model "
        "(architecture, validation metrics, bands, seed, file, patch size) for the ensemble step, and records the "
        "window rule and padding (tag DEEPPROSPECT_PREDICTION)."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API name
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model file (.onnx)", FILE_BEHAVIOUR_FILE, extension="onnx"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Evidence stack"))
        self.addParameter(explained(named_enum(self.MODE, "Predict", MODES),
                                    "cells = every cell (see stride); blocks = one value per patch-sized block."))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride (cells; 1 = every cell, k = one value per k × k cells)", defaultValue=1, minValue=1))
        self.addParameter(explained(
            QgsProcessingParameterNumber(self.BATCH_SIZE, "Windows per batch", defaultValue=256, minValue=1),
            "Windows the model reads at once: larger is faster until memory runs short.", advanced=True))
        self.addParameter(explained(named_enum(self.DEVICE, "Device", DEVICES), DEVICE_HELP))
        add_study_area(self)
        add_scheduler_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Prospectivity map"))

    def compute(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if layer is None or layer.providerType() != "gdal":
            raise InputError("The evidence stack must be a file raster (GeoTIFF) that GDAL can open.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        progress, is_cancelled = feedback_callbacks(feedback)
        report = predict_map(
            self.parameterAsFile(parameters, self.MODEL, context), layer.source(), output,
            mode=self.parameterAsEnumString(parameters, self.MODE, context),
            stride=self.parameterAsInt(parameters, self.STRIDE, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context),
            study_area=study_area_cells(self, parameters, layer.source(), context, feedback),
            scheduler=scheduler_parameter(self, parameters, context), progress=progress, is_cancelled=is_cancelled,
            log=feedback.pushInfo, warn=feedback.pushWarning)
        StyleOnLoad.attach(context, output, "prospectivity.qml", name=f"Prospectivity ({report.architecture})")
        return {self.OUTPUT: report.output}
