"""What every DeepProspect algorithm shares: naming, groups, help, icon, the checks that run before any
work (outputs that would overwrite an input, fields that do not exist, numbers out of range), outputs that
appear together or not at all, and error translation."""

from __future__ import annotations

import difflib
import errno
import os
import re
from contextlib import nullcontext

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProperty,
    QgsProviderRegistry,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..compat import FLAG_ADVANCED, FLAG_OPTIONAL, LAYER_RASTER, NUMBER_DOUBLE, NUMBER_INTEGER, SOURCE_FILE
from ..core.errors import DeepProspectError, InputError
from ..core.metadata import plugin_metadata
from ..core.outputs import check_writable, output_set, pending_outputs, temporary_beside

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons", "deepprospect.svg")

# group id -> display name, in pipeline order
GROUPS = {
    "setup": "0 · Set-up",
    "evidence": "1 · Evidence layers",
    "trainingdata": "2 · Training data",
    "models": "3 · Models",
    "maps": "4 · Prospectivity maps",
}


INT, DOUBLE = NUMBER_INTEGER, NUMBER_DOUBLE
TEMPORARY_OUTPUT = "TEMPORARY_OUTPUT"
# Files that belong to a raster or vector file: an output must not replace them for an input either.
_SIDECARS = (".aux.xml", ".ovr", ".msk")
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")


class DeepProspectAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, GROUP, HELP, TAGS, HELP_ANCHOR and implement ``compute``.

    ``TAGS`` are the words the Toolbox search finds the algorithm by; ``HELP_ANCHOR`` is the README section its
    help link opens (the algorithm table unless a section of its own says more); ``MEMORY_HINT`` names what
    lowers memory use, for the message of a run out of memory.
    """

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    HELP = ""
    TAGS: tuple[str, ...] = ()
    HELP_ANCHOR = "algorithms"
    MEMORY_HINT = "Use a coarser grid (larger cell size) or a smaller extent"

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802 - QGIS API name
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP])

    def groupId(self) -> str:  # noqa: N802 - QGIS API name
        return self.GROUP

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API name
        return self.tr(self.HELP)

    def tags(self) -> list[str]:
        return [self.tr(tag) for tag in self.TAGS]

    def helpUrl(self) -> str:  # noqa: N802 - QGIS API name
        return f"{plugin_metadata('homepage')}#{self.HELP_ANCHOR}"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def createInstance(self) -> DeepProspectAlgorithm:  # noqa: N802 - QGIS API name
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate(type(self).__name__, text)

    def add_numbers(self, table) -> None:
        """Number parameters from rows (KEY, label, INT or DOUBLE, default, minimum, advanced)."""
        for key, label, kind, default, minimum, advanced in table:
            parameter = QgsProcessingParameterNumber(key, label, kind, defaultValue=default, minValue=minimum)
            if advanced:
                parameter.setFlags(parameter.flags() | FLAG_ADVANCED)
            self.addParameter(parameter)

    def read_numbers(self, table, parameters, context) -> dict:
        """The values of :meth:`add_numbers` rows, keyed by the lower-case key (a settings field name)."""
        read = {INT: self.parameterAsInt, DOUBLE: self.parameterAsDouble}
        return {key.lower(): read[kind](parameters, key, context) for key, _, kind, *_ in table}

    def checkParameterValues(self, parameters, context):  # noqa: N802 - QGIS API name
        """QGIS's checks, with numbers out of range named with their range (QGIS says only 'incorrect'), and keys
        this algorithm does not have refused (QGIS would ignore a misspelt or renamed key and use the default)."""
        known = [definition.name() for definition in self.parameterDefinitions()]
        for key in parameters:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]}?" if close else ""
                return False, (f"{self.displayName()} has no parameter {key}.{hint} Its parameters are: "
                               f"{', '.join(known)}.")
        for definition in self.parameterDefinitions():
            if isinstance(definition, QgsProcessingParameterNumber) and parameters.get(definition.name()) is not None:
                message = _range_message(definition, parameters[definition.name()])
                if message:
                    return False, message
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API name
        """Check the parameters, run, and move every output into place together; errors become plain messages."""
        try:
            self._check_fields(parameters, context)
            inputs = self._inputs(parameters, context)
            _check_raster_crs(inputs)
            # Resolved once: asking QGIS again would reset what the run attaches to the layers it loads.
            self._destinations = {definition.name(): self._file_destination(parameters, definition, context)
                                  for definition in self.destinationParameterDefinitions()}
            self._check_outputs(inputs)
            with output_set(), _bounded_gdal_cache():
                results = self.compute(parameters, context, feedback)
            self._check_written(results)
            return results
        except DeepProspectError as error:
            message = str(error)
        except MemoryError:
            message = (f"{self.displayName()} ran out of memory. {self.MEMORY_HINT}, or close other programs "
                       "and run it again.")
        except (OSError, RuntimeError) as error:
            message = self._resource_message(error)
            if message is None:
                raise
        # The traceback of what is raised here outlives the run (QGIS keeps it), so it must not reach layers:
        # raised outside the except block (no chained compute() frame) and with this frame's references
        # dropped. A layer kept alive that way outlives QGIS and crashes Python at exit.
        del parameters, context, feedback
        raise QgsProcessingException(message)

    def compute(self, parameters, context, feedback) -> dict:
        """Do the work; raise a DeepProspectError subclass for anything the user must fix."""
        raise NotImplementedError

    def parameterAsSink(self, parameters, name, context, fields, geometry_type, crs, *args):  # noqa: N802
        """A feature sink written to a temporary file beside its destination and moved into place with the other
        outputs when the run succeeds; a sink that cannot be created is an error, not a silent skip."""
        destination = self._destinations.get(name)
        if destination is None:
            sink, dest_id = super().parameterAsSink(parameters, name, context, fields, geometry_type, crs, *args)
        else:
            temporary = temporary_beside(destination)
            os.remove(temporary)  # the writer creates it; only the unique name was wanted
            redirected = dict(parameters)
            definition = QgsProcessingOutputLayerDefinition(parameters[name]) \
                if isinstance(parameters[name], QgsProcessingOutputLayerDefinition) \
                else QgsProcessingOutputLayerDefinition(destination)
            definition.sink = QgsProperty.fromValue(temporary)
            redirected[name] = definition
            sink, dest_id = super().parameterAsSink(redirected, name, context, fields, geometry_type, crs, *args)
            if sink is not None:
                _register_sink(context, temporary, destination)
                dest_id = destination
        if sink is None and self.parameterDefinition(name).flags() & FLAG_OPTIONAL \
                and parameters.get(name) is None:
            return None, None
        if sink is None:
            raise InputError(f"Could not create the output '{self.parameterDefinition(name).description()}' at "
                             f"{destination or parameters.get(name)}: check that the folder exists and is writable "
                             "and that the extension is a vector format (.gpkg, .shp, .csv).")
        return sink, dest_id

    def _file_destination(self, parameters, definition, context) -> str | None:
        """The file an output parameter writes (None for temporary, memory, database or skipped outputs)."""
        name = definition.name()
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.staticValue()
        if not value or not isinstance(value, str) or value == TEMPORARY_OUTPUT:
            return None
        if isinstance(definition, QgsProcessingParameterFileDestination):
            path = self.parameterAsFileOutput(parameters, name, context)
        else:
            path = self.parameterAsOutputLayer(parameters, name, context)
        if not path or re.match(r"^[A-Za-z][A-Za-z0-9]+:", path) or "|" in path:
            return None
        return path

    def _check_outputs(self, inputs: list[tuple]) -> None:
        """Refuse an output that would replace an input (or its sidecar files), share a path with another
        output, get a file type other than its extension says, or go to a folder that cannot be written."""
        read = {}
        for definition, item in inputs:
            path = item if isinstance(item, str) else _layer_file(item)
            read.update(dict.fromkeys(_footprint(path), definition.description()))
        outputs: dict[str, str] = {}
        for definition in self.destinationParameterDefinitions():
            path = self._destinations[definition.name()]
            if path is None:
                continue
            label = definition.description()
            for part in _footprint(path):
                if part in read:
                    raise InputError(f"The output '{label}' ({path}) would overwrite the input '{read[part]}'. "
                                     "Choose another file name for the output; inputs are never changed.")
                if part in outputs and outputs[part] != label:
                    raise InputError(f"The outputs '{outputs[part]}' and '{label}' are both set to {path}; give "
                                     "each output its own file name.")
                outputs[part] = label
            _check_extension(definition, path)
            check_writable(path)

    def _inputs(self, parameters, context) -> list[tuple]:
        """(definition, layer or file path) for every layer and file the run reads, each resolved once."""
        inputs = []
        for definition in self.parameterDefinitions():
            name = definition.name()
            if definition.isDestination() or parameters.get(name) is None:
                continue
            if isinstance(definition, QgsProcessingParameterFile):
                items = [self.parameterAsFile(parameters, name, context)]
            elif isinstance(definition, QgsProcessingParameterRasterLayer):
                items = [self.parameterAsRasterLayer(parameters, name, context)]
            elif isinstance(definition, QgsProcessingParameterMultipleLayers):
                items = self.parameterAsFileList(parameters, name, context) \
                    if definition.layerType() == SOURCE_FILE else self.parameterAsLayerList(parameters, name, context)
            elif definition.type() in ("source", "vector"):
                items = [self.parameterAsVectorLayer(parameters, name, context)]
            else:
                continue
            inputs += [(definition, item) for item in items if item is not None and item != ""]
        return inputs

    def _check_fields(self, parameters, context) -> None:
        """Every field parameter names fields its layer has (QGIS itself does not check)."""
        for definition in self.parameterDefinitions():
            if not isinstance(definition, QgsProcessingParameterField) or not parameters.get(definition.name()):
                continue
            source = self.parameterAsSource(parameters, definition.parentLayerParameterName(), context)
            if source is None:
                continue
            names = source.fields().names()
            for field in self.parameterAsFields(parameters, definition.name(), context):
                if field not in names:
                    raise InputError(f"'{definition.description()}': the layer '{source.sourceName()}' has no field "
                                     f"'{field}'. Its fields are: {', '.join(names) or 'none'}.")

    def _check_written(self, results: dict) -> None:
        """Every output the run reports exists on disk (a run never ends 'done' without them)."""
        for definition in self.destinationParameterDefinitions():
            path = self._destinations[definition.name()]
            if path is not None and results.get(definition.name()) and not os.path.exists(path):
                raise InputError(f"The output '{definition.description()}' was not written to {path}.")

    def _resource_message(self, error: Exception) -> str | None:
        """A plain message for out-of-memory on the GPU and for disk or file errors; None for other errors."""
        text = str(error)
        if "out of memory" in text.lower() or type(error).__name__ == "OutOfMemoryError":
            return (f"{self.displayName()} ran out of GPU memory. {self.MEMORY_HINT}, or choose the CPU device. "
                    f"({text.splitlines()[0] if text else type(error).__name__})")
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{self.displayName()}: the disk is full ({error.filename or ''}). Free space or write elsewhere."
        if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EROFS, errno.ENOENT):
            return f"{self.displayName()}: cannot access {error.filename or 'a file'}: {error.strerror}."
        if type(error).__module__.startswith("rasterio"):
            return f"{self.displayName()}: GDAL could not read or write a raster: {text}"
        return None


def _bounded_gdal_cache():
    """:func:`..core.raster_io.bounded_gdal_cache`, or nothing where rasterio is not installed (the package
    installer runs there)."""
    try:
        from ..core.raster_io import bounded_gdal_cache
    except ImportError:
        return nullcontext()
    return bounded_gdal_cache()


def _register_sink(context, temporary: str, destination: str) -> None:
    """Move the temporary sink file into place at the end of the run, and load it under its real path."""
    pending_outputs().add(temporary, destination)
    layers = context.layersToLoadOnCompletion()
    if temporary in layers:
        layers[destination] = layers.pop(temporary)
        context.setLayersToLoadOnCompletion(layers)


def _layer_file(layer) -> str:
    """The file a layer reads (its source without GDAL/OGR options such as |layername=)."""
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    return parts.get("path") or layer.source()


def _check_raster_crs(inputs: list[tuple]) -> None:
    """Refuse a raster whose CRS was overridden in QGIS: the steps read the file, so they would use the file's
    CRS while the map canvas shows another one."""
    for definition, layer in inputs:
        if isinstance(layer, str) or layer.type() != LAYER_RASTER or layer.providerType() != "gdal":
            continue
        assigned, stored = layer.crs(), layer.dataProvider().crs()
        if assigned.isValid() and stored.isValid() and assigned != stored:
            raise InputError(
                f"'{definition.description()}': the layer '{layer.name()}' is shown in QGIS in "
                f"{assigned.authid() or assigned.description()}, but its file says "
                f"{stored.authid() or stored.description()}, and DeepProspect reads the file. Write the "
                "CRS into the file (Raster ▸ Projections ▸ Assign Projection) or reset the layer's CRS.")


def _footprint(path: str) -> set[str]:
    """The real paths of a file and of the files that belong to it."""
    real = os.path.realpath(path)
    stem, extension = os.path.splitext(real)
    parts = {real} | {real + sidecar for sidecar in _SIDECARS}
    if extension.lower() in _SHAPEFILE_PARTS:
        parts |= {stem + part for part in _SHAPEFILE_PARTS}
    return parts


def _check_extension(definition, path: str) -> None:
    """A raster output must be a GeoTIFF and a file output must end as its filter says."""
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if isinstance(definition, QgsProcessingParameterRasterDestination):
        allowed = ["tif", "tiff"]
    elif isinstance(definition, QgsProcessingParameterFileDestination):
        allowed = [found.lower() for found in re.findall(r"\*\.(\w+)", definition.fileFilter())]
    else:
        return
    if allowed and extension not in allowed:
        raise InputError(f"The output '{definition.description()}' is written as {allowed[0].upper()}, but {path} "
                         f"ends in '.{extension}'. Give a file name ending in .{allowed[0]}.")


def _range_message(definition: QgsProcessingParameterNumber, value) -> str | None:
    """'X must be between a and b (got v)' when ``value`` is a number outside the parameter's range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    low, high = definition.minimum(), definition.maximum()
    low_bounded, high_bounded = low > -1e300, high < 1e300
    if (low_bounded and number < low) or (high_bounded and number > high):
        if low_bounded and high_bounded:
            allowed = f"between {low:g} and {high:g}"
        else:
            allowed = f"at least {low:g}" if low_bounded else f"at most {high:g}"
        return f"'{definition.description()}' ({definition.name()}) must be {allowed}; {number:g} was given."
    return None
